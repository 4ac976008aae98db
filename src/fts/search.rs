//! BM25 search over the persisted postings, from one consistent read view.
//!
//! score(D) = Σ over query terms t present in D of
//!   idf(t) · tf · (k1 + 1) / (tf + k1 · (1 − b + b · |D| / avgdl))
//! with idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5)), k1 = 1.2, b = 0.75 (Lucene's BM25),
//! N the number of documents, df the documents containing t, |D| the document's length
//! in tokens and avgdl the mean length. Hits are ordered by score, highest first, ties
//! by document id (byte order = code point order).

use std::collections::HashMap;

use serde::Serialize;

use super::tokenizer;
use crate::error::Result;
use crate::model::keys::{self, Tag};
use crate::model::op::Posting;
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
    /// Document id.
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
    /// How many documents matched in all.
    pub total_matches: usize,
    /// The index terms the query used (prefixes expanded).
    pub terms: Vec<String>,
    /// The indexing run in progress in the searched view: results may be incomplete.
    pub indexing: Option<crate::run::RunInfo>,
}

/// Runs `query` against `read`, returning at most `limit` hits.
pub fn search(read: &ReadTxn, query: &Query, limit: usize) -> Result<SearchResults> {
    let stats = read.fts_stats()?;
    let docs = stats.docs as f64;
    let avgdl = if stats.docs == 0 {
        1.0
    } else {
        (stats.tokens as f64 / docs).max(f64::MIN_POSITIVE)
    };
    let mut scores: HashMap<String, f64> = HashMap::new();
    let mut used_terms = Vec::new();
    for term in &query.terms {
        for (index_term, postings) in postings_of(read, term)? {
            let df = postings.len() as f64;
            let idf = (1.0 + (docs - df + 0.5) / (df + 0.5)).ln();
            for (doc, posting) in postings {
                let tf = f64::from(posting.tf);
                let norm = BM25_K1 * (1.0 - BM25_B + BM25_B * posting.doc_len as f64 / avgdl);
                *scores.entry(doc).or_insert(0.0) += idf * tf * (BM25_K1 + 1.0) / (tf + norm);
            }
            used_terms.push(index_term);
        }
    }
    let total_matches = scores.len();
    let mut hits: Vec<Hit> = scores
        .into_iter()
        .map(|(doc, score)| Hit { doc, score })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.doc.cmp(&b.doc)));
    hits.truncate(limit);
    Ok(SearchResults {
        lsn: read.lsn(),
        hits,
        total_matches,
        terms: used_terms,
        indexing: read.indexing()?,
    })
}

/// An index term and its postings: `(doc, posting)`, sorted by doc.
type TermPostings = (String, Vec<(String, Posting)>);

/// The postings of each index term a query term stands for.
fn postings_of(read: &ReadTxn, term: &QueryTerm) -> Result<Vec<TermPostings>> {
    let prefix = match term {
        QueryTerm::Exact(token) => keys::pair_prefix(Tag::FtsPosting, token),
        QueryTerm::Prefix(start) => keys::simple(Tag::FtsPosting, start),
    };
    let mut out: Vec<TermPostings> = Vec::new();
    for entry in read.version().scan(&prefix)? {
        let (key, value) = entry?;
        let (index_term, doc) = keys::split_pair(&key).ok_or_else(|| {
            crate::Error::Conversion("a stored posting key does not decode".into())
        })?;
        let posting = Posting::decode(&value)?;
        let terms_so_far = out.len();
        match out.last_mut() {
            Some((last, postings)) if *last == index_term => postings.push((doc, posting)),
            _ if terms_so_far >= PREFIX_TERMS_MAX => break,
            _ => out.push((index_term, vec![(doc, posting)])),
        }
    }
    Ok(out)
}
