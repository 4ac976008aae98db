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
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// Every doc id in the segment is >= this (the first id its builder was given).
    pub first_doc: u64,
    /// All terms, concatenated in order.
    term_bytes: String,
    /// Per term: end of its bytes in `term_bytes`, end of its postings in `postings`.
    ends: Vec<(usize, usize)>,
    postings: Vec<Posting>,
    /// The documents added to it and not removed, ascending: a superset of the doc ids
    /// of its postings (so a segment whose documents are all removed is dropped whole).
    docs: Vec<u64>,
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
            + self.docs.capacity() * std::mem::size_of::<u64>()
    }

    /// The segment of one document: its terms are sorted and unique (`Op::apply`
    /// checks), so they are the segment's terms as they are, one posting each.
    fn of_doc(doc: u64, len: u32, terms: &DocTerms) -> Segment {
        debug_assert!(
            terms.terms.windows(2).all(|w| match w {
                [a, b] => a.0 < b.0,
                _ => true,
            }),
            "a document's terms are sorted and unique"
        );
        let bytes = terms.terms.iter().map(|(term, _)| term.len()).sum();
        let mut segment = Segment {
            first_doc: doc,
            term_bytes: String::with_capacity(bytes),
            ends: Vec::with_capacity(terms.terms.len()),
            postings: Vec::with_capacity(terms.terms.len()),
            docs: vec![doc],
        };
        for (term, tf) in &terms.terms {
            segment.term_bytes.push_str(term);
            segment.postings.push(Posting { doc, tf: *tf, len });
            segment
                .ends
                .push((segment.term_bytes.len(), segment.postings.len()));
        }
        segment
    }

    /// Whether every document of the segment is in `dead` (sorted): then none of its
    /// postings is live.
    pub fn all_dead(&self, dead: &[u64]) -> bool {
        self.docs.iter().all(|doc| dead.binary_search(doc).is_ok())
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
            docs: (older.docs.iter().chain(&newer.docs))
                .filter(|doc| dead.binary_search(doc).is_err())
                .copied()
                .collect(),
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
    /// While one document was added (a commit of one document): its segment, built
    /// directly from its sorted terms, so sealing it neither hashes nor sorts.
    single: Option<Segment>,
    /// Two documents or more: postings grouped by term, sorted by term at the seal.
    by_term: foldhash::HashMap<Box<str>, Vec<Posting>>,
    /// Every doc id added, ascending.
    docs: Vec<u64>,
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

    /// Adds a document (its id larger than every id added before; its terms sorted
    /// and unique, as `Op::apply` checks).
    pub fn add(&mut self, doc: u64, len: u32, terms: &DocTerms) {
        if self.first_doc.is_none() {
            self.first_doc = Some(doc);
            self.docs.push(doc);
            self.single = Some(Segment::of_doc(doc, len, terms));
            return;
        }
        if let Some(single) = self.single.take() {
            self.by_term.reserve(single.terms() + terms.terms.len());
            for i in 0..single.terms() {
                self.by_term
                    .insert(single.term(i).into(), single.postings(i).to_vec());
            }
        }
        self.docs.push(doc);
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
        let mut dropped = self.dropped;
        dropped.sort_unstable();
        if let Some(single) = self.single {
            let live = dropped.binary_search(&single.first_doc).is_err();
            return (live && single.terms() > 0).then_some(single);
        }
        let mut terms: Vec<(Box<str>, Vec<Posting>)> = self.by_term.into_iter().collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut docs = self.docs;
        if !dropped.is_empty() {
            docs.retain(|doc| dropped.binary_search(doc).is_err());
        }
        let mut segment = Segment {
            first_doc: self.first_doc.unwrap_or(0),
            docs,
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

    fn contents(segment: &Segment) -> Vec<(String, Vec<Posting>)> {
        (0..segment.terms())
            .map(|i| (segment.term(i).to_owned(), segment.postings(i).to_vec()))
            .collect()
    }

    #[test]
    fn one_document_seals_as_its_sorted_terms_and_a_second_one_joins_it() {
        let mut one = SegmentBuilder::default();
        one.add(7, 4, &doc("beta alpha beta gamma"));
        let sealed = one.seal().unwrap();
        let expected = |term: &str, tf| (term.to_owned(), vec![Posting { doc: 7, tf, len: 4 }]);
        assert_eq!(
            contents(&sealed),
            [
                expected("alpha", 1),
                expected("beta", 2),
                expected("gamma", 1)
            ]
        );
        assert_eq!(sealed.first_doc, 7);
        assert!(sealed.all_dead(&[7]) && !sealed.all_dead(&[6, 8]));

        // A second document moves the first into the by-term map.
        let mut two = SegmentBuilder::default();
        two.add(7, 4, &doc("beta alpha beta gamma"));
        two.add(8, 2, &doc("gamma delta"));
        let sealed = two.seal().unwrap();
        let terms: Vec<&str> = (0..sealed.terms()).map(|i| sealed.term(i)).collect();
        assert_eq!(terms, ["alpha", "beta", "delta", "gamma"]);
        let gamma: Vec<u64> = sealed
            .find("gamma")
            .unwrap()
            .iter()
            .map(|p| p.doc)
            .collect();
        assert_eq!(gamma, [7, 8]);
        assert!(!sealed.all_dead(&[7]) && sealed.all_dead(&[7, 8]));
    }

    #[test]
    fn dropped_documents_leave_no_postings() {
        let mut one = SegmentBuilder::default();
        one.add(3, 1, &doc("alpha"));
        one.drop_doc(3);
        assert!(one.seal().is_none());

        // Dropped, then another document added in the same group.
        let mut two = SegmentBuilder::default();
        two.add(3, 1, &doc("alpha"));
        two.drop_doc(3);
        two.add(4, 2, &doc("alpha beta"));
        let sealed = two.seal().unwrap();
        let alpha: Vec<u64> = sealed
            .find("alpha")
            .unwrap()
            .iter()
            .map(|p| p.doc)
            .collect();
        assert_eq!(alpha, [4]);
        assert!(sealed.all_dead(&[4]));

        let mut empty = SegmentBuilder::default();
        empty.add(5, 0, &DocTerms::default());
        assert!(!empty.is_empty() && empty.seal().is_none());
    }
}
