//! The full-text index.
//!
//! A transaction logs a document's terms (`IndexDoc`) or its removal (`RemoveDoc`): a
//! delta in proportion to the document, in the same WAL record as the rest of the
//! transaction. Each document gets a fresh integer id. Its postings go into an
//! in-memory segment ([`overlay`]); a checkpoint merges the segments into the
//! snapshot's posting lists ([`posting`], [`merge`]), dropping removed documents.
//! Searches read the stored lists, the segments and the removals together ([`view`],
//! [`cursor`]) and rank with block-max WAND ([`topk`], [`search`]).

pub mod cursor;
pub mod merge;
pub mod overlay;
pub mod posting;
pub mod search;
pub mod segment;
mod term_counts;
pub mod tokenizer;
pub mod topk;
pub mod view;

use serde::{Deserialize, Serialize};

/// A document's indexed terms, sorted by term, each with its frequency (>= 1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DocTerms {
    /// `(term, frequency)`, sorted by term, terms unique.
    pub terms: Vec<(String, u32)>,
}

impl DocTerms {
    /// Tokenizes `text` and counts each token (one allocation per distinct term, and a
    /// few per document).
    pub fn from_text(text: &str) -> DocTerms {
        DocTerms {
            terms: term_counts::counted_terms(text),
        }
    }

    /// The document's length in tokens (BM25's `|D|`).
    pub fn token_count(&self) -> u64 {
        self.terms.iter().map(|(_, count)| u64::from(*count)).sum()
    }
}

/// The longest document, in tokens (a posting stores its length as a u32).
pub const DOC_TOKENS_MAX: u64 = u32::MAX as u64;

/// Totals over the whole index (for BM25's average document length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FtsStats {
    /// Number of documents.
    pub docs: u64,
    /// Sum of all documents' token counts.
    pub tokens: u64,
}

/// What the store keeps under the FTS stats key: the totals, and the next doc id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FtsTotals {
    /// Number of documents.
    pub docs: u64,
    /// Sum of all documents' token counts.
    pub tokens: u64,
    /// The id the next indexed document gets (ids are never reused).
    pub next_doc_id: u64,
}

/// What the store keeps per document name: its id and length. Encoded as two varints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocEntry {
    /// The document's id (its postings carry it).
    pub id: u64,
    /// Its length in tokens.
    pub len: u32,
}

impl DocEntry {
    /// `varint id, varint len`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8);
        crate::codec::put_varint(&mut out, self.id);
        crate::codec::put_varint(&mut out, u64::from(self.len));
        out
    }

    /// Decodes a stored entry.
    pub fn decode(bytes: &[u8]) -> crate::Result<DocEntry> {
        let mut pos = 0;
        let id = crate::codec::get_varint(bytes, &mut pos);
        let len = crate::codec::get_varint(bytes, &mut pos).and_then(|l| u32::try_from(l).ok());
        match (id, len) {
            (Some(id), Some(len)) if pos == bytes.len() => Ok(DocEntry { id, len }),
            _ => Err(crate::Error::Conversion(
                "stored fts document entry does not decode".into(),
            )),
        }
    }
}
