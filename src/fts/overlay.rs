//! The FTS changes a version holds on top of its snapshot: sealed in-memory segments,
//! and the ids of documents removed since the snapshot (or since they were added).
//!
//! Adding a document costs time in proportion to the document: its postings go into a
//! builder, which the writer seals into a segment once per commit group. Segments merge
//! in memory, tiered, so a search sees O(log n) of them; postings of removed documents
//! stay in lists until the checkpoint rewrites them, and searches skip them.

use std::sync::Arc;

use super::DocTerms;
use super::segment::{Segment, SegmentBuilder};

/// A segment is merged into its older neighbour while that neighbour holds at most this
/// many times its postings: sizes then grow geometrically, so a search meets O(log n)
/// segments and a posting is copied O(log n) times before the checkpoint.
const MERGE_RATIO: usize = 2;

/// Sealed segments (oldest first), removals, and documents not yet sealed.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// Sealed segments, oldest first; doc ids ascend across them.
    pub segments: Arc<Vec<Arc<Segment>>>,
    /// Removed documents whose postings lie in the snapshot or in a sealed segment.
    pub removed: imbl::OrdSet<u64>,
    builder: SegmentBuilder,
}

impl Overlay {
    /// Adds a document's postings (visible after [`Overlay::seal`]).
    pub fn add(&mut self, doc: u64, len: u32, terms: &DocTerms) {
        self.builder.add(doc, len, terms);
    }

    /// Removes a document wherever its postings are.
    pub fn remove(&mut self, doc: u64) {
        if self.builder.holds(doc) {
            self.builder.drop_doc(doc);
        } else {
            self.removed.insert(doc);
        }
    }

    /// Approximate heap bytes of the sealed segments.
    pub fn heap_bytes(&self) -> usize {
        self.segments.iter().map(|s| s.heap_bytes()).sum()
    }

    /// Whether documents were added since the last seal.
    pub fn has_unsealed(&self) -> bool {
        !self.builder.is_empty()
    }

    /// Makes the documents added since the last seal visible, as one segment. Merging
    /// drops the postings of removed documents, and their ids from `removed`: every id
    /// at or above the merged run's first lies in the run (older sources hold smaller
    /// ids), so purged ids need no filtering any more.
    pub fn seal(&mut self) {
        let builder = std::mem::take(&mut self.builder);
        let Some(mut newest) = builder.seal() else {
            return;
        };
        let mut segments: Vec<Arc<Segment>> = self.segments.as_ref().clone();
        let mut purged_from = None;
        while let Some(older) = segments.last() {
            if older.postings_len() > MERGE_RATIO * newest.postings_len() {
                break;
            }
            let dead: Vec<u64> = self.removed.range(older.first_doc..).copied().collect();
            // `newest` holds no removed id (a builder drops its own removals, a merge
            // purges them), so when all of `older` is removed it simply goes (as when
            // one document is replaced again and again).
            let newest_clean = dead.last().is_none_or(|&id| id < newest.first_doc);
            if newest_clean && older.all_dead(&dead) {
                newest.first_doc = older.first_doc; // the run's ids start there, as merged
            } else {
                newest = Segment::merge(older, &newest, &dead);
            }
            purged_from = Some(older.first_doc);
            segments.pop();
        }
        if let Some(first) = purged_from {
            let purged: Vec<u64> = self.removed.range(first..).copied().collect();
            for id in purged {
                self.removed.remove(&id);
            }
        }
        if newest.terms() > 0 {
            segments.push(Arc::new(newest));
        }
        self.segments = Arc::new(segments);
    }

    /// Appends a newer overlay's changes (undoing a freeze after a failed checkpoint).
    pub fn absorb(&mut self, newer: Overlay) {
        debug_assert!(!self.has_unsealed(), "a frozen overlay is sealed");
        let mut segments: Vec<Arc<Segment>> = self.segments.as_ref().clone();
        segments.extend(newer.segments.iter().cloned());
        self.segments = Arc::new(segments);
        self.removed = std::mem::take(&mut self.removed).union(newer.removed);
        self.builder = newer.builder;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs_of(overlay: &Overlay, term: &str) -> Vec<u64> {
        let mut docs = Vec::new();
        for segment in overlay.segments.iter() {
            if let Some(postings) = segment.find(term) {
                docs.extend(postings.iter().map(|p| p.doc));
            }
        }
        docs.retain(|doc| !overlay.removed.contains(doc));
        docs
    }

    #[test]
    fn replacing_one_document_again_and_again_keeps_one_segment_and_no_removals() {
        let mut overlay = Overlay::default();
        overlay.add(0, 2, &DocTerms::from_text("alpha beta"));
        overlay.seal();
        for id in 1..50u64 {
            overlay.remove(id - 1);
            let text = if id % 2 == 0 {
                "alpha beta"
            } else {
                "alpha gamma"
            };
            overlay.add(id, 2, &DocTerms::from_text(text));
            overlay.seal();
            assert_eq!(overlay.segments.len(), 1, "after {id}");
            assert!(overlay.removed.is_empty());
            assert_eq!(docs_of(&overlay, "alpha"), [id]);
            assert_eq!(overlay.segments.first().map(|s| s.first_doc), Some(0));
        }
        assert!(docs_of(&overlay, "beta").is_empty());
        assert_eq!(docs_of(&overlay, "gamma"), [49]);
    }

    #[test]
    fn a_partly_removed_segment_is_merged_with_its_live_postings() {
        let mut overlay = Overlay::default();
        overlay.add(0, 2, &DocTerms::from_text("alpha beta"));
        overlay.add(1, 1, &DocTerms::from_text("alpha"));
        overlay.seal();
        overlay.remove(0);
        overlay.add(2, 3, &DocTerms::from_text("alpha beta gamma"));
        overlay.seal();
        assert_eq!(overlay.segments.len(), 1);
        assert!(overlay.removed.is_empty());
        assert_eq!(docs_of(&overlay, "alpha"), [1, 2]);
        assert_eq!(docs_of(&overlay, "beta"), [2]);
    }
}
