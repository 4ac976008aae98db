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
                let last_doc = list.last_doc(list.blocks().saturating_sub(1));
                let mut first = posting::Block::default();
                list.decode_block(0, &mut first).map_err(corrupt)?;
                let first_doc = first.postings().first().map_or(0, |p| p.doc);
                if !take_segment && !self.any_removed_within(first_doc, last_doc) {
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

/// Checks every stored posting list of `snapshot`: it decodes, its doc ids ascend, and
/// each names a document of the doc-name section. Returns the postings checked.
pub fn check_postings(snapshot: &Snapshot) -> Result<u64> {
    let mut names = std::collections::HashSet::new();
    let mut cursor = snapshot.seek(&[Tag::FtsDocName as u8])?;
    while let Some((key, _)) = cursor.next_entry()? {
        let Some(id) = key
            .strip_prefix(&[Tag::FtsDocName as u8])
            .and_then(|id| <[u8; 8]>::try_from(id).ok())
        else {
            if key.first() == Some(&(Tag::FtsDocName as u8)) {
                return Err(crate::Error::corrupt(
                    snapshot.path(),
                    cursor.position(),
                    "a document-name key is not 8 bytes of id",
                ));
            }
            break;
        };
        names.insert(u64::from_be_bytes(id));
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
        if let Some(orphan) = postings.iter().find(|p| !names.contains(&p.doc)) {
            return Err(crate::Error::corrupt(
                snapshot.path(),
                offset,
                format!(
                    "posting list of term {term:?} names doc id {}, which has no document",
                    orphan.doc
                ),
            ));
        }
        checked += postings.len() as u64;
    }
    Ok(checked)
}
