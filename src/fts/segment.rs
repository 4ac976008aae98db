//! In-memory segments: the postings of documents indexed since the last checkpoint.
//!
//! A segment is immutable once sealed: its terms are sorted, and each term's postings
//! ascend by doc id. Doc ids are assigned in commit order, so every posting of a newer
//! segment has a larger doc id than every posting of an older one (and of the
//! snapshot): concatenating sources oldest first keeps lists sorted, and merging two
//! segments is a merge of their term lists with postings appended.

use super::DocTerms;
use super::posting::Posting;

/// Sorted terms, each with its postings (ascending doc ids).
#[derive(Debug, Default)]
pub struct Segment {
    /// Every doc id in the segment is >= this (the first id its builder was given).
    pub first_doc: u64,
    /// All terms, concatenated in order.
    term_bytes: String,
    /// Per term: end of its bytes in `term_bytes`, end of its postings in `postings`.
    ends: Vec<(usize, usize)>,
    postings: Vec<Posting>,
}

impl Segment {
    /// Number of terms.
    pub fn terms(&self) -> usize {
        self.ends.len()
    }

    /// Number of postings.
    pub fn postings_len(&self) -> usize {
        self.postings.len()
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.term_bytes.capacity()
            + self.ends.capacity() * std::mem::size_of::<(usize, usize)>()
            + self.postings.capacity() * std::mem::size_of::<Posting>()
    }

    fn starts(&self, i: usize) -> (usize, usize) {
        match i.checked_sub(1).and_then(|j| self.ends.get(j)) {
            Some(&previous) => previous,
            None => (0, 0),
        }
    }

    /// Term `i` (< `terms()`).
    pub fn term(&self, i: usize) -> &str {
        let (start, _) = self.starts(i);
        let end = self.ends.get(i).map_or(start, |e| e.0);
        self.term_bytes.get(start..end).unwrap_or_default()
    }

    /// The postings of term `i` (< `terms()`).
    pub fn postings(&self, i: usize) -> &[Posting] {
        let (_, start) = self.starts(i);
        let end = self.ends.get(i).map_or(start, |e| e.1);
        self.postings.get(start..end).unwrap_or_default()
    }

    /// The index of the first term >= `term`.
    pub fn lower_bound(&self, term: &str) -> usize {
        crate::util::partition_point(0..self.terms(), |i| self.term(i) >= term)
    }

    /// The postings of `term`, if the segment has it.
    pub fn find(&self, term: &str) -> Option<&[Posting]> {
        let i = self.lower_bound(term);
        (i < self.terms() && self.term(i) == term).then(|| self.postings(i))
    }

    fn push(&mut self, term: &str, postings: &[Posting]) {
        debug_assert!(!postings.is_empty(), "a segment term has postings");
        self.term_bytes.push_str(term);
        self.postings.extend_from_slice(postings);
        self.ends.push((self.term_bytes.len(), self.postings.len()));
    }

    /// Merges an older and a newer segment (every doc id of `newer` is larger),
    /// dropping the postings of the documents in `dead` (sorted).
    pub fn merge(older: &Segment, newer: &Segment, dead: &[u64]) -> Segment {
        let mut out = Segment {
            first_doc: older.first_doc.min(newer.first_doc),
            term_bytes: String::with_capacity(older.term_bytes.len() + newer.term_bytes.len()),
            ends: Vec::with_capacity(older.terms() + newer.terms()),
            postings: Vec::with_capacity(older.postings.len() + newer.postings.len()),
        };
        let (mut i, mut j) = (0, 0);
        while i < older.terms() || j < newer.terms() {
            let order = match (i < older.terms(), j < newer.terms()) {
                (true, true) => older.term(i).cmp(newer.term(j)),
                (true, false) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    out.push_live(older.term(i), &[older.postings(i)], dead);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push_live(newer.term(j), &[newer.postings(j)], dead);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push_live(older.term(i), &[older.postings(i), newer.postings(j)], dead);
                    i += 1;
                    j += 1;
                }
            }
        }
        out
    }

    /// Appends a term with the postings of `lists` not in `dead` (if any remain).
    fn push_live(&mut self, term: &str, lists: &[&[Posting]], dead: &[u64]) {
        let before = self.postings.len();
        for list in lists {
            if dead.is_empty() {
                self.postings.extend_from_slice(list);
            } else {
                self.postings
                    .extend(list.iter().filter(|p| dead.binary_search(&p.doc).is_err()));
            }
        }
        if self.postings.len() > before {
            self.term_bytes.push_str(term);
            self.ends.push((self.term_bytes.len(), self.postings.len()));
        }
    }
}

/// Documents applied since the last seal, not yet visible to searches.
#[derive(Debug, Clone, Default)]
pub struct SegmentBuilder {
    by_term: foldhash::HashMap<Box<str>, Vec<Posting>>,
    /// The smallest doc id added (every id added later is larger).
    pub first_doc: Option<u64>,
    /// Docs added here and removed again before the seal.
    dropped: Vec<u64>,
}

impl SegmentBuilder {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.first_doc.is_none()
    }

    /// Adds a document (its id larger than every id added before).
    pub fn add(&mut self, doc: u64, len: u32, terms: &DocTerms) {
        self.first_doc.get_or_insert(doc);
        for (term, tf) in &terms.terms {
            let posting = Posting { doc, tf: *tf, len };
            match self.by_term.get_mut(term.as_str()) {
                Some(list) => list.push(posting),
                None => {
                    self.by_term.insert(term.as_str().into(), vec![posting]);
                }
            }
        }
    }

    /// Whether `doc` was added here.
    pub fn holds(&self, doc: u64) -> bool {
        self.first_doc.is_some_and(|first| doc >= first)
    }

    /// Drops a document added here.
    pub fn drop_doc(&mut self, doc: u64) {
        self.dropped.push(doc);
    }

    /// The sealed segment (`None` if it would be empty).
    pub fn seal(self) -> Option<Segment> {
        let mut terms: Vec<(Box<str>, Vec<Posting>)> = self.by_term.into_iter().collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut dropped = self.dropped;
        dropped.sort_unstable();
        let mut segment = Segment {
            first_doc: self.first_doc.unwrap_or(0),
            ..Segment::default()
        };
        for (term, mut postings) in terms {
            if !dropped.is_empty() {
                postings.retain(|p| dropped.binary_search(&p.doc).is_err());
            }
            if !postings.is_empty() {
                segment.push(&term, &postings);
            }
        }
        (segment.terms() > 0).then_some(segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> DocTerms {
        DocTerms::from_text(text)
    }

    #[test]
    fn sealed_segments_merge_with_postings_in_doc_order() {
        let mut a = SegmentBuilder::default();
        a.add(1, 2, &doc("alpha beta"));
        a.add(2, 1, &doc("beta"));
        let mut b = SegmentBuilder::default();
        b.add(3, 2, &doc("beta gamma"));
        b.add(4, 1, &doc("zeta"));
        b.drop_doc(4);
        let merged = Segment::merge(&a.seal().unwrap(), &b.seal().unwrap(), &[]);
        let terms: Vec<&str> = (0..merged.terms()).map(|i| merged.term(i)).collect();
        assert_eq!(terms, ["alpha", "beta", "gamma"]);
        let beta: Vec<u64> = merged.find("beta").unwrap().iter().map(|p| p.doc).collect();
        assert_eq!(beta, [1, 2, 3]);
        assert!(merged.find("zeta").is_none());
        assert_eq!(merged.lower_bound("b"), 1);
    }
}
