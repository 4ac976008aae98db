//! The FTS index as one version sees it: the snapshot's stored lists, the frozen and
//! active overlays' segments, and every removal since the snapshot.

use super::cursor::{self, Source, TermCursor};
use super::posting::StoredList;
use crate::error::{Error, Result};
use crate::model::keys::{self, Tag};
use crate::state::Version;

/// A read-only view of one version's FTS index.
#[derive(Debug)]
pub struct FtsView<'a> {
    version: &'a Version,
    /// Removed doc ids, sorted: the union of both overlays' removals.
    removed: Vec<u64>,
}

impl<'a> FtsView<'a> {
    /// The view of `version` (which must be sealed: see [`Version::seal`]).
    pub fn new(version: &'a Version) -> FtsView<'a> {
        debug_assert!(!version.has_unsealed(), "a published version is sealed");
        let mut removed: Vec<u64> = version.fts.removed.iter().copied().collect();
        if let Some(frozen) = &version.fts_frozen {
            removed.extend(frozen.removed.iter().copied());
            removed.sort_unstable();
        }
        FtsView { version, removed }
    }

    /// Removed doc ids whose postings may still be in lists, sorted.
    pub fn removed(&self) -> &[u64] {
        &self.removed
    }

    /// Every source of `term`'s postings, oldest first.
    pub fn sources(&self, term: &str) -> Result<Vec<Source<'a>>> {
        let mut out = Vec::new();
        if let Some(base) = &self.version.base
            && let Some(bytes) = base.get(&keys::simple(Tag::FtsPosting, term))?
        {
            let offset = base.offset_of(bytes);
            let list = StoredList::open(bytes)
                .map_err(|e| cursor::corrupt(base.path(), offset, term, e))?;
            out.push(Source::Stored {
                list,
                file: base.path(),
                offset,
            });
        }
        let overlays = self.version.fts_frozen.iter().chain([&self.version.fts]);
        for overlay in overlays {
            for segment in overlay.segments.iter() {
                if let Some(postings) = segment.find(term) {
                    out.push(Source::Memory(postings));
                }
            }
        }
        Ok(out)
    }

    /// A cursor over `term`'s live postings.
    pub fn cursor<'v>(&'v self, term: &'v str) -> Result<TermCursor<'v>>
    where
        'a: 'v,
    {
        TermCursor::new(term, self.sources(term)?, &self.removed)
    }

    /// The number of live documents containing `term` (BM25's df): the postings of
    /// every source, less those of removed documents.
    pub fn doc_freq(&self, cursor: &TermCursor<'_>) -> Result<u64> {
        let total: usize = cursor.sources().iter().map(Source::len).sum();
        if self.removed.is_empty() {
            return Ok(total as u64);
        }
        let mut all = TermCursor::new(cursor.term(), cursor.sources().to_vec(), &[])?;
        // Only removed ids within the term's doc range can be among its postings.
        let first = self.removed.partition_point(|&id| id < all.doc());
        let mut dead = 0usize;
        for &doc in self.removed.get(first..).unwrap_or_default() {
            if all.doc() == cursor::END {
                break;
            }
            all.seek(doc)?;
            if all.doc() == doc {
                dead += 1;
            }
        }
        Ok(total.saturating_sub(dead) as u64)
    }

    /// Index terms starting with `prefix`, sorted, at most `max` (live or not: a term
    /// whose documents were all removed is dropped at the next checkpoint).
    pub fn terms(&self, prefix: &str, max: usize) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        if let Some(base) = &self.version.base {
            let start = keys::simple(Tag::FtsPosting, prefix);
            let mut scan = base.seek(&start)?;
            while out.len() < max
                && let Some((key, _)) = scan.next_entry()?
            {
                if !key.starts_with(&start) {
                    break;
                }
                let term = keys::split_simple(key).ok_or_else(|| {
                    Error::corrupt(base.path(), scan.position(), "an index term is not UTF-8")
                })?;
                out.push(term);
            }
        }
        let overlays = self.version.fts_frozen.iter().chain([&self.version.fts]);
        for overlay in overlays {
            for segment in overlay.segments.iter() {
                let mut i = segment.lower_bound(prefix);
                let mut taken = 0;
                while i < segment.terms() && taken < max && segment.term(i).starts_with(prefix) {
                    out.push(segment.term(i).to_owned());
                    i += 1;
                    taken += 1;
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(max);
        Ok(out)
    }

    /// The name of document `id`.
    pub fn doc_name(&self, id: u64) -> Result<String> {
        let bytes = self
            .version
            .get(&keys::doc_name(id))?
            .ok_or_else(|| Error::Conversion(format!("fts document id {id} has no name")))?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::Conversion(format!("fts document id {id}: name is not UTF-8")))
    }
}
