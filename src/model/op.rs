//! The logical operations a transaction records. A WAL record's payload is
//! `postcard(Vec<Op>)`; replaying the ops in lsn order against the state rebuilds it.
//!
//! The variant order is part of the on-disk format (postcard writes the variant index):
//! append new variants, never reorder.

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use super::keys::{self, Tag};
use super::value::Value;
use crate::codec::{get_varint, put_varint};
use crate::error::{Error, Result};
use crate::fts::{DocTerms, FtsStats};

/// One change inside a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Sets a metadata key.
    SetMeta {
        /// The key.
        key: String,
        /// The value.
        value: Value,
    },
    /// Deletes a metadata key (absent: no-op).
    DelMeta {
        /// The key.
        key: String,
    },
    /// Sets a config key.
    SetConfig {
        /// The key.
        key: String,
        /// The value.
        value: Value,
    },
    /// Deletes a config key (absent: no-op).
    DelConfig {
        /// The key.
        key: String,
    },
    /// Sets the fingerprint of `path` in namespace `ns`.
    PutFingerprint {
        /// Namespace (`code`, `docs`, ...).
        ns: String,
        /// File path.
        path: String,
        /// The fingerprint.
        fingerprint: Fingerprint,
    },
    /// Deletes a fingerprint (absent: no-op).
    DelFingerprint {
        /// Namespace.
        ns: String,
        /// File path.
        path: String,
    },
    /// Adds or replaces a document in the FTS index, given its tokenized terms.
    IndexDoc {
        /// Document id.
        doc: String,
        /// Its terms.
        terms: DocTerms,
    },
    /// Removes a document from the FTS index (absent: no-op).
    RemoveDoc {
        /// Document id.
        doc: String,
    },
}

/// The key-value view that ops are applied to.
pub trait KvState {
    /// The current value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Sets `key` (`None`: deletes it).
    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>);
}

impl Op {
    /// The collection key this op touches (for salvage reports), as `(collection, name)`.
    pub fn touched(&self) -> (&'static str, String) {
        match self {
            Op::SetMeta { key, .. } | Op::DelMeta { key } => ("metadata", key.clone()),
            Op::SetConfig { key, .. } | Op::DelConfig { key } => ("config", key.clone()),
            Op::PutFingerprint { ns, path, .. } | Op::DelFingerprint { ns, path } => {
                ("fingerprints", format!("{ns}:{path}"))
            }
            Op::IndexDoc { doc, .. } | Op::RemoveDoc { doc } => ("fts", doc.clone()),
        }
    }

    /// Checks bounds before the op is logged, so applying it can never fail on them.
    pub fn check(&self) -> Result<()> {
        match self {
            Op::SetMeta { key, .. } | Op::DelMeta { key } => {
                keys::check_len(&keys::simple(Tag::Metadata, key))
            }
            Op::SetConfig { key, .. } | Op::DelConfig { key } => {
                keys::check_len(&keys::simple(Tag::Config, key))
            }
            Op::PutFingerprint {
                ns,
                path,
                fingerprint,
            } => {
                fingerprint.check()?;
                keys::check_len(&keys::pair(Tag::Fingerprint, ns, path))
            }
            Op::DelFingerprint { ns, path } => {
                keys::check_len(&keys::pair(Tag::Fingerprint, ns, path))
            }
            Op::IndexDoc { doc, terms } => {
                keys::check_len(&keys::simple(Tag::FtsDoc, doc))?;
                for (term, _) in &terms.terms {
                    keys::check_len(&keys::pair(Tag::FtsPosting, term, doc))?;
                }
                Ok(())
            }
            Op::RemoveDoc { doc } => keys::check_len(&keys::simple(Tag::FtsDoc, doc)),
        }
    }

    /// Applies the op. Deterministic: replay gives the state that commit gave.
    pub fn apply(&self, state: &mut impl KvState) -> Result<()> {
        match self {
            Op::SetMeta { key, value } => {
                state.set(keys::simple(Tag::Metadata, key), Some(encode(value)?))
            }
            Op::DelMeta { key } => state.set(keys::simple(Tag::Metadata, key), None),
            Op::SetConfig { key, value } => {
                state.set(keys::simple(Tag::Config, key), Some(encode(value)?))
            }
            Op::DelConfig { key } => state.set(keys::simple(Tag::Config, key), None),
            Op::PutFingerprint {
                ns,
                path,
                fingerprint,
            } => {
                state.set(
                    keys::pair(Tag::Fingerprint, ns, path),
                    Some(encode(fingerprint)?),
                );
            }
            Op::DelFingerprint { ns, path } => {
                state.set(keys::pair(Tag::Fingerprint, ns, path), None)
            }
            Op::IndexDoc { doc, terms } => {
                remove_doc(state, doc)?;
                let doc_len = terms.token_count();
                for (term, count) in &terms.terms {
                    let posting = Posting {
                        tf: *count,
                        doc_len,
                    };
                    state.set(
                        keys::pair(Tag::FtsPosting, term, doc),
                        Some(posting.encode()),
                    );
                }
                state.set(keys::simple(Tag::FtsDoc, doc), Some(encode(terms)?));
                let mut stats = read_stats(state)?;
                stats.docs += 1;
                stats.tokens += terms.token_count();
                state.set(vec![Tag::FtsStats as u8], Some(encode(&stats)?));
            }
            Op::RemoveDoc { doc } => {
                remove_doc(state, doc)?;
            }
        }
        Ok(())
    }
}

/// Removes `doc`'s postings, forward entry and totals, if it is indexed.
fn remove_doc(state: &mut impl KvState, doc: &str) -> Result<Option<DocTerms>> {
    let doc_key = keys::simple(Tag::FtsDoc, doc);
    let Some(bytes) = state.get(&doc_key)? else {
        return Ok(None);
    };
    let old: DocTerms = decode(&bytes, "fts document")?;
    for (term, _) in &old.terms {
        state.set(keys::pair(Tag::FtsPosting, term, doc), None);
    }
    state.set(doc_key, None);
    let mut stats = read_stats(state)?;
    stats.docs = stats.docs.saturating_sub(1);
    stats.tokens = stats.tokens.saturating_sub(old.token_count());
    state.set(vec![Tag::FtsStats as u8], Some(encode(&stats)?));
    Ok(Some(old))
}

fn read_stats(state: &impl KvState) -> Result<FtsStats> {
    match state.get(&[Tag::FtsStats as u8])? {
        Some(bytes) => decode(&bytes, "fts stats"),
        None => Ok(FtsStats::default()),
    }
}

/// postcard-encodes a stored value.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Conversion(format!("encode: {e}")))
}

/// postcard-decodes a stored value; a failure means the stored bytes are damaged.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    postcard::from_bytes(bytes)
        .map_err(|e| Error::Conversion(format!("stored {what} does not decode: {e}")))
}

/// The value of a posting key: what BM25 needs about one (term, document) pair, so
/// scoring never looks the document up. Encoded as two LEB128 varints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    /// Occurrences of the term in the document.
    pub tf: u32,
    /// The document's length in tokens.
    pub doc_len: u64,
}

impl Posting {
    /// `varint tf, varint doc_len`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8);
        put_varint(&mut out, u64::from(self.tf));
        put_varint(&mut out, self.doc_len);
        out
    }

    /// Decodes a stored posting value.
    pub fn decode(bytes: &[u8]) -> Result<Posting> {
        let mut pos = 0;
        let tf = get_varint(bytes, &mut pos).and_then(|tf| u32::try_from(tf).ok());
        let doc_len = get_varint(bytes, &mut pos);
        match (tf, doc_len) {
            (Some(tf), Some(doc_len)) if pos == bytes.len() => Ok(Posting { tf, doc_len }),
            _ => Err(Error::Conversion("stored posting does not decode".into())),
        }
    }
}
