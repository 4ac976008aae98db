//! Top-k retrieval. Block-max WAND (Ding and Suel, 2011) for queries of a few terms:
//! cursors are ordered by doc id, a pivot is the first doc whose terms' best possible
//! scores could reach the k-th score, and a run of postings whose blocks' bounds cannot
//! reach it is skipped without decoding. Queries of many terms (prefix expansions) and
//! very large limits score every match instead. Both give exactly the ranking of
//! scoring every match: scores are summed in query-term order by the same function,
//! and a doc is skipped only when its bound is strictly below the k-th score.

use std::collections::HashMap;

use super::cursor::{END, TermCursor};
use super::posting::{BlockBound, Posting};
use super::search::Bm25;
use super::view::FtsView;
use crate::error::Result;

/// Queries with more terms than this score every match.
pub const WAND_TERMS_MAX: usize = 8;
/// Limits above this score every match (the top-k list is a sorted vector).
pub const WAND_LIMIT_MAX: usize = 1000;
/// Bounds are inflated by this factor, so floating-point rounding of sums taken in a
/// different order can never prune a doc that reaches the threshold.
const BOUND_SLACK: f64 = 1.0 + 1e-9;

/// What scores a posting.
#[derive(Debug, Clone, Copy)]
pub struct Scoring<'a> {
    /// Per cursor, its term's weight ([`Bm25::weight`]).
    pub weights: &'a [f64],
    /// The query's BM25 constants.
    pub bm25: Bm25,
}

impl Scoring<'_> {
    fn score(&self, term: usize, tf: u32, len: u32) -> f64 {
        self.bm25
            .score(self.weights.get(term).copied().unwrap_or(0.0), tf, len)
    }

    /// The best score a posting of a block with this bound can get.
    fn bound(&self, term: usize, bound: &BlockBound) -> f64 {
        bound
            .impacts()
            .iter()
            .map(|&(tf, len)| self.score(term, tf, len))
            .fold(0.0, f64::max)
            * BOUND_SLACK
    }
}

/// The result of [`top_k`].
#[derive(Debug)]
pub struct Scored {
    /// `(score, doc id)`, best first, ties by document name.
    pub top: Vec<(f64, u64)>,
    /// Documents scored.
    pub matched: usize,
    /// Whether every match was scored (`matched` is then the number of matches).
    pub exhaustive: bool,
    /// Names looked up to order ties, by doc id (some of `top`'s: not to look up again).
    pub names: HashMap<u64, String>,
}

/// The best `limit` documents for `cursors`.
pub fn top_k(
    view: &FtsView<'_>,
    cursors: &mut [TermCursor<'_>],
    scoring: &Scoring<'_>,
    limit: usize,
) -> Result<Scored> {
    if limit == 0 || cursors.is_empty() {
        return Ok(Scored {
            top: Vec::new(),
            matched: 0,
            exhaustive: cursors.is_empty(),
            names: HashMap::new(),
        });
    }
    if cursors.len() > WAND_TERMS_MAX || limit > WAND_LIMIT_MAX {
        return score_all(view, cursors, scoring, limit);
    }
    let mut top = TopK::new(view, limit);
    let matched = match cursors {
        [cursor] => block_max_single(cursor, scoring, &mut top)?,
        _ => block_max_wand(cursors, scoring, &mut top)?,
    };
    top.finish(matched)
}

/// One term: score block by block, skipping each block whose bound cannot reach the
/// k-th score. Returns the number of documents scored.
fn block_max_single(
    cursor: &mut TermCursor<'_>,
    scoring: &Scoring<'_>,
    top: &mut TopK<'_, '_>,
) -> Result<usize> {
    let mut scored = 0;
    let mut threshold = top.threshold();
    // Scores one posting; below the k-th score it cannot enter (equal may, by name).
    let mut consider = |posting: &Posting, threshold: &mut f64| -> Result<()> {
        let score = scoring.score(0, posting.tf, posting.len);
        scored += 1;
        if score >= *threshold {
            top.offer(score, posting.doc);
            *threshold = top.threshold();
        }
        Ok(())
    };
    while let Some(block) = cursor.shallow(cursor.doc()) {
        if scoring.bound(0, &block) < threshold {
            let before = cursor.doc();
            cursor.seek(block.last_doc.saturating_add(1))?;
            if cursor.doc() == before {
                cursor.advance()?; // never loop in place, whatever the stored bounds say
            }
            continue;
        }
        // Fast path: the whole decoded rest of the block, no removal to skip. (A stored
        // block and the bound's block coincide; in-memory chunks do too.)
        if let Some(rest) = cursor
            .block_rest()
            .filter(|rest| rest.last().is_some_and(|p| p.doc <= block.last_doc))
        {
            for posting in rest {
                consider(posting, &mut threshold)?;
            }
            cursor.skip_block_rest()?;
            continue;
        }
        while let Some(posting) = cursor.posting().filter(|p| p.doc <= block.last_doc) {
            consider(&posting, &mut threshold)?;
            cursor.advance()?;
        }
    }
    Ok(scored)
}

/// Block-max WAND. Returns the number of documents scored.
#[expect(
    clippy::indexing_slicing,
    reason = "every index is a cursor position below cursors.len() (= order.len())"
)]
fn block_max_wand(
    cursors: &mut [TermCursor<'_>],
    scoring: &Scoring<'_>,
    top: &mut TopK<'_, '_>,
) -> Result<usize> {
    let n = cursors.len();
    let max_scores: Vec<f64> = cursors
        .iter()
        .enumerate()
        .map(|(i, c)| c.bounds().map(|b| scoring.bound(i, &b)).fold(0.0, f64::max))
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    let mut scored = 0;
    loop {
        order.sort_by_key(|&i| cursors[i].doc());
        let threshold = top.threshold();
        let mut reach = 0.0;
        let mut pivot = None;
        for (p, &i) in order.iter().enumerate() {
            if cursors[i].doc() == END {
                break;
            }
            reach += max_scores[i];
            if reach >= threshold {
                pivot = Some(p);
                break;
            }
        }
        let Some(mut p) = pivot else {
            break;
        };
        let pivot_doc = cursors[order[p]].doc();
        while p + 1 < n && cursors[order[p + 1]].doc() == pivot_doc {
            p += 1;
        }
        if threshold > f64::NEG_INFINITY {
            // Docs in [pivot_doc, boundary] are matched only by order[..=p] (every other
            // cursor is past the boundary or past the target below), each within the
            // block it would seek to; if those blocks' bounds cannot reach the
            // threshold, skip them all.
            let mut reach = 0.0;
            let mut boundary = END;
            for &i in &order[..=p] {
                if let Some(bound) = cursors[i].shallow(pivot_doc) {
                    reach += scoring.bound(i, &bound);
                    boundary = boundary.min(bound.last_doc);
                }
            }
            if reach < threshold {
                let mut target = boundary.saturating_add(1);
                if let Some(&next) = order.get(p + 1) {
                    target = target.min(cursors[next].doc());
                }
                debug_assert!(target > pivot_doc, "block-max skipping makes progress");
                for &i in &order[..=p] {
                    cursors[i].seek(target)?;
                }
                continue;
            }
        }
        if cursors[order[0]].doc() == pivot_doc {
            let mut score = 0.0;
            for (i, cursor) in cursors.iter().enumerate() {
                if let Some(posting) = cursor.posting().filter(|p| p.doc == pivot_doc) {
                    score += scoring.score(i, posting.tf, posting.len);
                }
            }
            if score >= threshold {
                top.offer(score, pivot_doc);
            }
            scored += 1;
            for cursor in cursors.iter_mut() {
                if cursor.doc() == pivot_doc {
                    cursor.advance()?;
                }
            }
        } else {
            for &i in &order[..p] {
                cursors[i].seek(pivot_doc)?;
            }
        }
    }
    Ok(scored)
}

/// Scores every match, term by term (sums in query-term order, as WAND does).
fn score_all(
    view: &FtsView<'_>,
    cursors: &mut [TermCursor<'_>],
    scoring: &Scoring<'_>,
    limit: usize,
) -> Result<Scored> {
    let mut scores: HashMap<u64, f64> = HashMap::new();
    for (i, cursor) in cursors.iter_mut().enumerate() {
        while let Some(posting) = cursor.posting() {
            *scores.entry(posting.doc).or_insert(0.0) += scoring.score(i, posting.tf, posting.len);
            cursor.advance()?;
        }
    }
    let matched = scores.len();
    let mut all: Vec<(f64, u64)> = scores.into_iter().map(|(d, s)| (s, d)).collect();
    all.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut names = Names::new(view);
    order_ties(&mut all, limit, &mut names)?;
    Ok(Scored {
        top: all,
        matched,
        exhaustive: true,
        names: names.cache,
    })
}

/// Orders by name each run of equal scores in `all` (sorted by score, best first) that
/// reaches into the first `limit`, then keeps the first `limit`.
fn order_ties(all: &mut Vec<(f64, u64)>, limit: usize, names: &mut Names<'_, '_>) -> Result<()> {
    let mut start = 0;
    while start < all.len().min(limit) {
        let score = all.get(start).map_or(0.0, |e| e.0);
        let end = start
            + all
                .get(start..)
                .map_or(0, |rest| rest.partition_point(|e| e.0 == score));
        if end - start > 1 {
            let mut run: Vec<(String, (f64, u64))> = Vec::with_capacity(end - start);
            for &entry in all.get(start..end).unwrap_or_default() {
                run.push((names.get(entry.1)?.to_owned(), entry));
            }
            run.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (slot, (_, entry)) in all
                .get_mut(start..end)
                .unwrap_or_default()
                .iter_mut()
                .zip(run)
            {
                *slot = entry;
            }
        }
        start = end.max(start + 1);
    }
    all.truncate(limit);
    Ok(())
}

/// Document names, looked up once (only to break ties of equal scores).
struct Names<'v, 'a> {
    view: &'v FtsView<'a>,
    cache: HashMap<u64, String>,
}

impl<'v, 'a> Names<'v, 'a> {
    fn new(view: &'v FtsView<'a>) -> Self {
        Names {
            view,
            cache: HashMap::new(),
        }
    }

    fn get(&mut self, doc: u64) -> Result<&str> {
        if !self.cache.contains_key(&doc) {
            let name = self.view.doc_name(doc)?;
            self.cache.insert(doc, name);
        }
        Ok(self.cache.get(&doc).map_or("", String::as_str))
    }
}

/// The best `k` so far by score, best first, and every entry tied with the k-th: ties
/// are ordered by name only at the end ([`TopK::finish`]), so names are looked up only
/// for ties that decide the hits, not for every tie met on the way.
struct TopK<'v, 'a> {
    k: usize,
    items: Vec<(f64, u64)>,
    names: Names<'v, 'a>,
}

impl<'v, 'a> TopK<'v, 'a> {
    fn new(view: &'v FtsView<'a>, k: usize) -> Self {
        TopK {
            k,
            items: Vec::new(),
            names: Names::new(view),
        }
    }

    /// The score a doc must reach to enter (ties may enter by name).
    fn threshold(&self) -> f64 {
        match self.items.get(self.k.wrapping_sub(1)) {
            Some(kth) => kth.0,
            None => f64::NEG_INFINITY,
        }
    }

    fn offer(&mut self, score: f64, doc: u64) {
        if score < self.threshold() {
            return;
        }
        let at = self.items.partition_point(|e| e.0 >= score);
        self.items.insert(at, (score, doc));
        if let Some(kth) = self.items.get(self.k.wrapping_sub(1)).map(|e| e.0) {
            let keep = self.items.partition_point(|e| e.0 >= kth);
            self.items.truncate(keep);
        }
    }

    /// The best `k`, ties by name, with the names looked up (`matched` docs scored).
    fn finish(mut self, matched: usize) -> Result<Scored> {
        order_ties(&mut self.items, self.k, &mut self.names)?;
        Ok(Scored {
            top: self.items,
            matched,
            exhaustive: false,
            names: self.names.cache,
        })
    }
}
