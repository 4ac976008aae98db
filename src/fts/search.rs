//! BM25 search over the persisted postings, from one consistent read view.
//!
//! score(D) = Σ over query terms t present in D of
//!   idf(t) · tf · (k1 + 1) / (tf + k1 · (1 − b + b · |D| / avgdl))
//! with idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5)), k1 = 1.2, b = 0.75 (Lucene's BM25),
//! N the number of documents, df the documents containing t, |D| the document's length
//! in tokens and avgdl the mean length. Hits are ordered by score, highest first, ties
//! by document name (byte order = code point order).
//!
//! Top-k is computed without scoring every match ([`super::topk`]): block-max WAND
//! skips blocks of postings whose best possible score cannot enter the top k.

use serde::Serialize;

use super::tokenizer;
use super::topk::{self, Scored};
use super::view::FtsView;
use crate::error::Result;
use crate::txn::ReadTxn;

/// BM25 term-frequency saturation.
pub const BM25_K1: f64 = 1.2;
/// BM25 length normalisation.
pub const BM25_B: f64 = 0.75;
/// Most index terms one prefix query expands to.
pub const PREFIX_TERMS_MAX: usize = 1024;

/// One term of a parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryTerm {
    /// Documents containing this token.
    Exact(String),
    /// Documents containing any token that starts with this (`wri*`).
    Prefix(String),
}

/// A parsed query: the OR of its terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Its terms, without duplicates.
    pub terms: Vec<QueryTerm>,
}

impl Query {
    /// Parses whitespace-separated words: `word*` is a prefix query on the word,
    /// lowercased; any other word contributes every token the tokenizer makes of it
    /// (so `atomicWriteJson` also matches `write`).
    pub fn parse(text: &str) -> Query {
        let mut terms = Vec::new();
        for word in text.split_whitespace() {
            let parsed: Vec<QueryTerm> = match word.strip_suffix('*') {
                Some(prefix) => {
                    let prefix: String = prefix
                        .chars()
                        .filter(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                        .to_lowercase();
                    if prefix.is_empty() {
                        Vec::new()
                    } else {
                        vec![QueryTerm::Prefix(prefix)]
                    }
                }
                None => tokenizer::tokens(word)
                    .into_iter()
                    .map(QueryTerm::Exact)
                    .collect(),
            };
            for term in parsed {
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
        }
        Query { terms }
    }
}

/// One matching document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Document name.
    pub doc: String,
    /// BM25 score.
    pub score: f64,
}

/// The hits of a query and the lsn of the view they come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResults {
    /// The lsn of the view searched.
    pub lsn: u64,
    /// Matching documents, best first, at most the limit.
    pub hits: Vec<Hit>,
    /// How many documents matched: exact when `total_matches_exact`, otherwise a lower
    /// bound (pruning skipped documents that could not enter the top k uncounted).
    pub total_matches: usize,
    /// Whether `total_matches` is exact.
    pub total_matches_exact: bool,
    /// The index terms the query used (prefixes expanded).
    pub terms: Vec<String>,
    /// The indexing run in progress in the searched view: results may be incomplete.
    pub indexing: Option<crate::run::RunInfo>,
}

/// BM25 with a query's constants folded in, so scoring a posting costs one division:
/// `score = w · tf / (tf + base + per_len · |D|)` with `w = idf · (k1 + 1)`,
/// `base = k1 · (1 − b)` and `per_len = k1 · b / avgdl`. Every score and every bound
/// is computed by [`Bm25::score`], so pruning compares like with like.
#[derive(Debug, Clone, Copy)]
pub struct Bm25 {
    base: f64,
    per_len: f64,
}

impl Bm25 {
    /// The constants for a mean document length of `avgdl`.
    pub fn new(avgdl: f64) -> Bm25 {
        Bm25 {
            base: BM25_K1 * (1.0 - BM25_B),
            per_len: BM25_K1 * BM25_B / avgdl,
        }
    }

    /// A term's weight `w` from its idf.
    pub fn weight(idf: f64) -> f64 {
        idf * (BM25_K1 + 1.0)
    }

    /// The term's contribution to a document's score.
    pub fn score(&self, weight: f64, tf: u32, len: u32) -> f64 {
        let tf = f64::from(tf);
        weight * tf / (tf + self.base + self.per_len * f64::from(len))
    }
}

/// BM25's inverse document frequency.
pub fn idf(docs: u64, df: u64) -> f64 {
    let (docs, df) = (docs as f64, df as f64);
    (1.0 + (docs - df + 0.5) / (df + 0.5)).ln()
}

/// Runs `query` against `read`, returning at most `limit` hits.
pub fn search(read: &ReadTxn, query: &Query, limit: usize) -> Result<SearchResults> {
    let stats = read.fts_stats()?;
    let avgdl = if stats.docs == 0 {
        1.0
    } else {
        (stats.tokens as f64 / stats.docs as f64).max(f64::MIN_POSITIVE)
    };
    let view = FtsView::new(read.version());
    let mut index_terms: Vec<String> = Vec::new();
    for term in &query.terms {
        let expanded = match term {
            QueryTerm::Exact(token) => vec![token.clone()],
            QueryTerm::Prefix(start) => view.terms(start, PREFIX_TERMS_MAX)?,
        };
        for index_term in expanded {
            if !index_terms.contains(&index_term) {
                index_terms.push(index_term);
            }
        }
    }
    let mut cursors = Vec::new();
    let mut weights = Vec::new();
    let mut used_terms = Vec::new();
    let mut single_df = 0;
    for term in &index_terms {
        let cursor = view.cursor(term)?;
        let df = view.doc_freq(&cursor)?;
        if df == 0 {
            continue;
        }
        single_df = df;
        weights.push(Bm25::weight(idf(stats.docs, df)));
        cursors.push(cursor);
        used_terms.push(term.clone());
    }
    let scoring = topk::Scoring {
        weights: &weights,
        bm25: Bm25::new(avgdl),
    };
    let Scored {
        top,
        matched,
        exhaustive,
        mut names,
    } = topk::top_k(&view, &mut cursors, &scoring, limit)?;
    let (total_matches, total_matches_exact) = if cursors.len() == 1 {
        (usize::try_from(single_df).unwrap_or(usize::MAX), true)
    } else {
        (matched, exhaustive)
    };
    let mut hits = Vec::with_capacity(top.len());
    for (score, doc) in top {
        let doc = match names.remove(&doc) {
            Some(name) => name,
            None => view.doc_name(doc)?,
        };
        hits.push(Hit { doc, score });
    }
    Ok(SearchResults {
        lsn: read.lsn(),
        hits,
        total_matches,
        total_matches_exact,
        terms: used_terms,
        indexing: read.indexing()?,
    })
}
