//! What a checkpoint writes for the FTS index: each term's stored list, with the
//! postings of the overlays' segments appended and removed documents dropped. A list
//! that neither gained nor lost a posting is copied as it is, without decoding.
//! Merging happens here, off the commit path.

use super::posting::{self, Posting};
use super::segment::Segment;
use crate::error::Result;
use crate::model::keys::{self, Tag};
use crate::snapshot::reader::{Cursor, Snapshot};
use crate::state::Version;

/// One snapshot entry: key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The posting lists a snapshot of `version` holds, in key order: the FTS section of
/// the snapshot (`Version::write_snapshot` writes every other section).
pub fn posting_entries(version: &Version) -> Result<impl Iterator<Item = Result<Entry>> + '_> {
    PostingMerge::new(version)
}

/// The merged posting lists of a version, as snapshot entries.
struct PostingMerge<'a> {
    base: Option<(&'a Snapshot, Cursor<'a>)>,
    base_next: Option<(Vec<u8>, &'a [u8])>,
    segment: Option<std::sync::Arc<Segment>>,
    segment_at: usize,
    removed: Vec<u64>,
}

impl<'a> PostingMerge<'a> {
    fn new(version: &'a Version) -> Result<Self> {
        debug_assert!(!version.has_unsealed(), "a checkpointed version is sealed");
        let mut segments = Vec::new();
        let mut removed = Vec::new();
        for overlay in version.fts_frozen.iter().chain([&version.fts]) {
            segments.extend(overlay.segments.iter().cloned());
            removed.extend(overlay.removed.iter().copied());
        }
        removed.sort_unstable();
        // One segment is used as it is (removed docs are filtered per term below);
        // several are merged, newest first, so each posting is copied O(log n) times.
        let segment = match segments.as_slice() {
            [] => None,
            [only] => Some(only.clone()),
            [.., newest] => {
                let mut merged = Segment::merge(&Segment::default(), newest, &removed);
                for older in segments.iter().rev().skip(1) {
                    merged = Segment::merge(older, &merged, &removed);
                }
                Some(std::sync::Arc::new(merged))
            }
        };
        let base = match &version.base {
            Some(snapshot) => Some((snapshot.as_ref(), snapshot.seek(&[Tag::FtsPosting as u8])?)),
            None => None,
        };
        let mut merge = PostingMerge {
            base,
            base_next: None,
            segment,
            segment_at: 0,
            removed,
        };
        merge.pull_base()?;
        Ok(merge)
    }

    fn pull_base(&mut self) -> Result<()> {
        self.base_next = None;
        if let Some((_, cursor)) = &mut self.base
            && let Some((key, value)) = cursor.next_entry()?
            && key.first() == Some(&(Tag::FtsPosting as u8))
        {
            self.base_next = Some((key.to_vec(), value));
        }
        Ok(())
    }

    /// Whether a removed id lies in `[first_doc, last_doc]`.
    fn any_removed_within(&self, first_doc: u64, last_doc: u64) -> bool {
        let at = self.removed.partition_point(|&id| id < first_doc);
        self.removed.get(at).is_some_and(|&id| id <= last_doc)
    }

    fn is_live(&self, posting: &Posting) -> bool {
        self.removed.binary_search(&posting.doc).is_err()
    }

    /// The next term's entry, or `None` when both sides are done.
    fn next_entry(&mut self) -> Result<Option<Entry>> {
        loop {
            let segment_term = self
                .segment
                .as_ref()
                .filter(|s| self.segment_at < s.terms())
                .map(|s| s.term(self.segment_at));
            let base_term = self
                .base_next
                .as_ref()
                .map(|(key, _)| key.get(1..).unwrap_or_default());
            let (take_base, take_segment) = match (base_term, segment_term) {
                (None, None) => return Ok(None),
                (Some(_), None) => (true, false),
                (None, Some(_)) => (false, true),
                (Some(b), Some(s)) => match b.cmp(s.as_bytes()) {
                    std::cmp::Ordering::Less => (true, false),
                    std::cmp::Ordering::Greater => (false, true),
                    std::cmp::Ordering::Equal => (true, true),
                },
            };
            let (term, out_key): (String, Vec<u8>) = match (take_base, segment_term) {
                (false, Some(s)) => (s.to_owned(), keys::simple(Tag::FtsPosting, s)),
                _ => {
                    let bytes = base_term.unwrap_or_default();
                    let key = [&[Tag::FtsPosting as u8], bytes].concat();
                    (String::from_utf8_lossy(bytes).into_owned(), key)
                }
            };
            let mut postings: Vec<Posting> = Vec::new();
            if take_base && let Some((key, value)) = self.base_next.take() {
                let (snapshot, _) = self.base.as_ref().map(|(s, c)| (*s, c)).unzip();
                let corrupt = |e| match snapshot {
                    Some(s) => super::cursor::corrupt(s.path(), s.offset_of(value), &term, e),
                    None => crate::Error::Conversion(e.into()),
                };
                let list = posting::StoredList::open(value).map_err(corrupt)?;
                // Unchanged unless a segment adds postings or a removed id falls in the
                // list's doc range (its first doc is decoded only when that can matter).
                let unchanged = !take_segment
                    && (self.removed.is_empty() || {
                        let last_doc = list.last_doc(list.blocks().saturating_sub(1));
                        let mut first = posting::Block::default();
                        list.decode_block(0, &mut first).map_err(corrupt)?;
                        let first_doc = first.postings().first().map_or(0, |p| p.doc);
                        !self.any_removed_within(first_doc, last_doc)
                    });
                if unchanged {
                    self.pull_base()?;
                    return Ok(Some((key, value.to_vec())));
                }
                postings = posting::decode_all(value).map_err(corrupt)?;
                postings.retain(|p| self.is_live(p));
                self.pull_base()?;
            }
            if take_segment && let Some(segment) = &self.segment {
                let added = segment.postings(self.segment_at);
                postings.extend(added.iter().filter(|p| self.is_live(p)));
                self.segment_at += 1;
            }
            if !postings.is_empty() {
                return Ok(Some((out_key, posting::encode(&postings))));
            }
        }
    }
}

impl Iterator for PostingMerge<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        self.next_entry().transpose()
    }
}

/// Checks the FTS sections of `snapshot` against each other: document entries have
/// unique ids, each with a name and each name with an entry; every posting list decodes
/// (ascending ids, impacts covering the postings), and each posting names a document
/// and carries that document's length. Returns the postings checked.
pub fn check_postings(snapshot: &Snapshot) -> Result<u64> {
    let corrupt =
        |offset: u64, reason: String| crate::Error::corrupt(snapshot.path(), offset, reason);
    // The document table: id -> length, every id unique.
    let mut lengths = std::collections::HashMap::new();
    let mut cursor = snapshot.seek(&[Tag::FtsDoc as u8])?;
    while let Some((key, value)) = cursor.next_entry()? {
        if key.first() != Some(&(Tag::FtsDoc as u8)) {
            break;
        }
        let entry = super::DocEntry::decode(value)
            .map_err(|e| corrupt(cursor.position(), e.to_string()))?;
        if lengths.insert(entry.id, entry.len).is_some() {
            return Err(corrupt(
                cursor.position(),
                format!("two documents share id {}", entry.id),
            ));
        }
    }
    // Every id has a name, and every name an entry.
    let mut names = 0usize;
    let mut cursor = snapshot.seek(&[Tag::FtsDocName as u8])?;
    while let Some((key, _)) = cursor.next_entry()? {
        if key.first() != Some(&(Tag::FtsDocName as u8)) {
            break;
        }
        let id = key
            .get(1..)
            .and_then(|id| <[u8; 8]>::try_from(id).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| {
                corrupt(
                    cursor.position(),
                    "a document-name key is not 8 bytes of id".into(),
                )
            })?;
        if !lengths.contains_key(&id) {
            return Err(corrupt(
                cursor.position(),
                format!("document name of id {id}, which has no document entry"),
            ));
        }
        names += 1;
    }
    if names != lengths.len() {
        return Err(corrupt(
            0,
            format!(
                "{} document entries but {names} document names",
                lengths.len()
            ),
        ));
    }
    let mut checked = 0u64;
    let mut cursor = snapshot.seek(&[Tag::FtsPosting as u8])?;
    while let Some((key, value)) = cursor.next_entry()? {
        let Some(term) = key.strip_prefix(&[Tag::FtsPosting as u8]) else {
            break;
        };
        let term = String::from_utf8_lossy(term);
        let offset = snapshot.offset_of(value);
        let postings = posting::decode_all(value)
            .map_err(|e| super::cursor::corrupt(snapshot.path(), offset, &term, e))?;
        if let Some(bad) = postings
            .iter()
            .find(|p| lengths.get(&p.doc) != Some(&p.len))
        {
            let why = match lengths.get(&bad.doc) {
                None => "which has no document".to_owned(),
                Some(len) => format!("with length {}, but the document's is {len}", bad.len),
            };
            return Err(corrupt(
                offset,
                format!(
                    "posting list of term {term:?} names doc id {} {why}",
                    bad.doc
                ),
            ));
        }
        checked += postings.len() as u64;
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::fts::DocEntry;
    use crate::storage::{SimStorage, Storage};

    /// Writes a snapshot holding one document (id 0, `doc_len` tokens, named `name_id`)
    /// and one posting list for it with length `posting_len`, then checks it.
    fn check(doc_len: u32, name_id: u64, posting_len: u32) -> Result<u64> {
        let storage = SimStorage::new(3);
        let dir = Path::new("/fts-check");
        storage.create_dir_all(dir).expect("dir");
        let entries = vec![
            (
                keys::simple(Tag::FtsDoc, "a.rs"),
                DocEntry {
                    id: 0,
                    len: doc_len,
                }
                .encode(),
            ),
            (
                keys::simple(Tag::FtsPosting, "term"),
                posting::encode(&[Posting {
                    doc: 0,
                    tf: 1,
                    len: posting_len,
                }]),
            ),
            (keys::doc_name(name_id), b"a.rs".to_vec()),
        ];
        let written =
            crate::snapshot::writer::write(&storage, dir, [1; 16], 1, entries.into_iter().map(Ok))
                .expect("write");
        let snapshot = crate::recovery::open_snapshot(&storage, &written.path, true).expect("open");
        check_postings(&snapshot)
    }

    #[test]
    fn verify_cross_checks_postings_with_the_document_table() {
        assert_eq!(check(5, 0, 5).expect("consistent"), 1);
        let wrong_len = check(5, 0, 6).expect_err("length differs");
        assert!(wrong_len.to_string().contains("length 6"), "{wrong_len}");
        let no_entry = check(5, 1, 5).expect_err("name without entry");
        assert!(no_entry.to_string().contains("id 1"), "{no_entry}");
    }
}
