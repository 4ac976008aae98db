//! The logical operations a transaction records. A WAL record's payload is
//! `postcard(Vec<Op>)`; replaying the ops in lsn order against the state rebuilds it.
//!
//! The variant order is part of the on-disk format (postcard writes the variant index):
//! append new variants, never reorder.

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use super::keys::{self, Tag};
use super::value::Value;
use crate::error::{Error, Result};
use crate::fts::{DOC_TOKENS_MAX, DocEntry, DocTerms, FtsTotals};

/// Postcard's variant index of each [`Op`] (its declaration order: part of the format,
/// never reordered), for the decoders and encoders that work on record bytes directly.
pub(crate) mod variant {
    pub const SET_META: u8 = 0;
    pub const DEL_META: u8 = 1;
    pub const SET_CONFIG: u8 = 2;
    pub const DEL_CONFIG: u8 = 3;
    pub const PUT_FINGERPRINT: u8 = 4;
    pub const DEL_FINGERPRINT: u8 = 5;
    pub const INDEX_DOC: u8 = 6;
    pub const REMOVE_DOC: u8 = 7;
}

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
    /// Adds the postings of a new document.
    fn fts_add(&mut self, doc: DocEntry, terms: &DocTerms);
    /// Removes the postings of document `id`.
    fn fts_remove(&mut self, id: u64);
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
                check_terms(doc, terms)
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
                // Postings need unique, sorted terms: never apply a record that lacks them.
                check_terms(doc, terms)?;
                let mut totals = remove_doc(state, doc)?;
                let len = u32::try_from(terms.token_count()).map_err(|_| {
                    Error::InvalidArgument(format!("document {doc:?} has too many tokens"))
                })?;
                let entry = DocEntry {
                    id: totals.next_doc_id,
                    len,
                };
                totals.next_doc_id = totals
                    .next_doc_id
                    .checked_add(1)
                    .filter(|&next| next < u64::MAX)
                    .ok_or_else(|| Error::Conversion("fts document ids are exhausted".into()))?;
                totals.docs = totals.docs.saturating_add(1);
                totals.tokens = totals.tokens.saturating_add(u64::from(len));
                state.set(keys::simple(Tag::FtsDoc, doc), Some(entry.encode()));
                state.set(keys::doc_name(entry.id), Some(doc.as_bytes().to_vec()));
                state.fts_add(entry, terms);
                state.set(vec![Tag::FtsStats as u8], Some(encode(&totals)?));
            }
            Op::RemoveDoc { doc } => {
                let before = read_totals(state)?;
                let totals = remove_doc(state, doc)?;
                if totals != before {
                    state.set(vec![Tag::FtsStats as u8], Some(encode(&totals)?));
                }
            }
        }
        Ok(())
    }
}

/// A document's terms are non-empty, unique and sorted, each counted >= 1, and its
/// length fits a posting.
fn check_terms(doc: &str, terms: &DocTerms) -> Result<()> {
    if terms.token_count() > DOC_TOKENS_MAX {
        return Err(Error::InvalidArgument(format!(
            "document {doc:?} has {} tokens, at most {DOC_TOKENS_MAX} allowed",
            terms.token_count()
        )));
    }
    let sorted = terms.terms.windows(2).all(|w| match w {
        [a, b] => a.0 < b.0,
        _ => true,
    });
    if !sorted || terms.terms.iter().any(|(t, tf)| t.is_empty() || *tf == 0) {
        return Err(Error::InvalidArgument(format!(
            "document {doc:?}: terms must be non-empty, unique and sorted, each counted >= 1"
        )));
    }
    // A term's posting key is its tag byte and the term.
    if let Some((term, _)) = terms
        .terms
        .iter()
        .find(|(t, _)| t.len() >= keys::KEY_BYTES_MAX)
    {
        return Err(Error::InvalidArgument(format!(
            "document {doc:?}: term of {} bytes, a key holds at most {}",
            term.len(),
            keys::KEY_BYTES_MAX - 1
        )));
    }
    Ok(())
}

/// Removes `doc` if it is indexed; returns the totals without it.
fn remove_doc(state: &mut impl KvState, doc: &str) -> Result<FtsTotals> {
    let mut totals = read_totals(state)?;
    let doc_key = keys::simple(Tag::FtsDoc, doc);
    let Some(bytes) = state.get(&doc_key)? else {
        return Ok(totals);
    };
    let old = DocEntry::decode(&bytes)?;
    state.fts_remove(old.id);
    state.set(keys::doc_name(old.id), None);
    state.set(doc_key, None);
    totals.docs = totals.docs.saturating_sub(1);
    totals.tokens = totals.tokens.saturating_sub(u64::from(old.len));
    Ok(totals)
}

/// The FTS totals stored under the stats key.
pub fn read_totals(state: &impl KvState) -> Result<FtsTotals> {
    match state.get(&[Tag::FtsStats as u8])? {
        Some(bytes) => decode(&bytes, "fts stats"),
        None => Ok(FtsTotals::default()),
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

/// Records the changes blind ops set, against no state (every key reads absent): for
/// tests of code that must set exactly what [`Op::apply`] sets. FTS ops are not for it.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct RecordedSets(pub Vec<(Vec<u8>, Option<Vec<u8>>)>);

#[cfg(test)]
impl KvState for RecordedSets {
    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.0.push((key, value));
    }
    fn fts_add(&mut self, _doc: DocEntry, _terms: &DocTerms) {
        unreachable!("only blind ops are recorded")
    }
    fn fts_remove(&mut self, _id: u64) {
        unreachable!("only blind ops are recorded")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The indexes the byte-level decoders and encoders use are the ones postcard writes.
    #[test]
    fn variant_indexes_are_postcards() {
        let fingerprint = Fingerprint::new([1u8; 32], 2, 3).expect("fingerprint");
        let cases = [
            (
                Op::SetMeta {
                    key: "k".into(),
                    value: Value::from(1u64),
                },
                variant::SET_META,
            ),
            (Op::DelMeta { key: "k".into() }, variant::DEL_META),
            (
                Op::SetConfig {
                    key: "k".into(),
                    value: Value::from(1u64),
                },
                variant::SET_CONFIG,
            ),
            (Op::DelConfig { key: "k".into() }, variant::DEL_CONFIG),
            (
                Op::PutFingerprint {
                    ns: "n".into(),
                    path: "p".into(),
                    fingerprint,
                },
                variant::PUT_FINGERPRINT,
            ),
            (
                Op::DelFingerprint {
                    ns: "n".into(),
                    path: "p".into(),
                },
                variant::DEL_FINGERPRINT,
            ),
            (
                Op::IndexDoc {
                    doc: "d".into(),
                    terms: DocTerms::from_text("a b"),
                },
                variant::INDEX_DOC,
            ),
            (Op::RemoveDoc { doc: "d".into() }, variant::REMOVE_DOC),
        ];
        for (op, index) in cases {
            let bytes = postcard::to_allocvec(&op).expect("encode");
            assert_eq!(bytes.first(), Some(&index), "{op:?}");
        }
    }
}
