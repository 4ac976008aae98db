//! Full-text index state: the tokenizer, and what the store persists per document.
//!
//! The store keeps a forward index (document -> its terms with frequencies) and postings
//! (term, document -> frequency) as ordinary keys, so adding or removing a document is a
//! delta proportional to the document, written in the same WAL record as the rest of
//! the transaction.

pub mod search;
pub mod tokenizer;

use serde::{Deserialize, Serialize};

/// A document's indexed terms, sorted by term, each with its frequency (>= 1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DocTerms {
    /// `(term, frequency)`, sorted by term, terms unique.
    pub terms: Vec<(String, u32)>,
}

impl DocTerms {
    /// Tokenizes `text` and counts each token.
    pub fn from_text(text: &str) -> DocTerms {
        let mut tokens = tokenizer::tokens(text);
        tokens.sort_unstable();
        let mut terms: Vec<(String, u32)> = Vec::new();
        for token in tokens {
            match terms.last_mut() {
                Some((last, count)) if *last == token => *count = count.saturating_add(1),
                _ => terms.push((token, 1)),
            }
        }
        DocTerms { terms }
    }

    /// The document's length in tokens (BM25's `|D|`).
    pub fn token_count(&self) -> u64 {
        self.terms.iter().map(|(_, count)| u64::from(*count)).sum()
    }
}

/// Totals over the whole index (for BM25's average document length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FtsStats {
    /// Number of documents.
    pub docs: u64,
    /// Sum of all documents' token counts.
    pub tokens: u64,
}
