//! A transaction's operations kept as the payload of its WAL record, `postcard(Vec<Op>)`,
//! encoded as they are added: no `Op` (and none of its strings) per operation, no encode
//! pass at commit, and the record's bytes are what applying the transaction decodes
//! (blind writes straight into the changes, `recovery::kv_batch`).
//!
//! The count postcard writes first is only known at the end: [`PREFIX`] bytes are kept
//! free in front of the ops and the count is written right-aligned into them.

use serde::Serialize;

use super::fingerprint::Fingerprint;
use super::keys::{self, KEY_BYTES_MAX, Tag};
use super::op::Op;
use super::op::variant::{
    DEL_CONFIG, DEL_FINGERPRINT, DEL_META, PUT_FINGERPRINT, SET_CONFIG, SET_META,
};
use super::value::Value;
use crate::codec::put_varint;
use crate::error::{Error, Result};

/// Room for the longest varint of a `u64`.
const PREFIX: usize = 10;
/// Bytes reserved up front.
const INITIAL_BYTES: usize = 256;

/// Operations being added to a transaction.
#[derive(Debug)]
pub(crate) struct EncodedOps {
    /// [`PREFIX`] free bytes, then the encoded ops.
    buf: Vec<u8>,
    count: u64,
    /// Ops that only set keys (not FTS ops, which read the state).
    blind: usize,
    /// About how much work applying them is ([`crate::store`]'s `apply_weight`).
    weight: usize,
    /// The first op that failed its check: commit reports it.
    invalid: Option<Error>,
    /// The FTS ops, in order, kept as they were added (see [`Payload::fts_ops`]).
    fts_ops: Vec<Op>,
}

impl Default for EncodedOps {
    fn default() -> Self {
        // Room for a few small ops: most transactions then allocate once.
        EncodedOps::with_buffer(Vec::with_capacity(INITIAL_BYTES))
    }
}

impl EncodedOps {
    /// No ops yet, encoded into `buf` (emptied; a committed transaction's, whose memory
    /// is already there: see `Payload::take_buffer`).
    pub(crate) fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.resize(PREFIX, 0);
        EncodedOps {
            buf,
            count: 0,
            blind: 0,
            weight: 0,
            invalid: None,
            fts_ops: Vec::new(),
        }
    }
}

impl EncodedOps {
    /// Number of ops added.
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }

    fn added(&mut self, blind: bool, weight: usize) {
        self.count += 1;
        self.blind += usize::from(blind);
        self.weight = self.weight.saturating_add(weight);
    }

    fn fail(&mut self, error: Error) {
        if self.invalid.is_none() {
            self.invalid = Some(error);
        }
    }

    fn put_str(&mut self, s: &str) {
        put_varint(&mut self.buf, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn put_value(&mut self, value: &impl Serialize) {
        let buf = std::mem::take(&mut self.buf);
        match postcard::to_extend(value, buf) {
            Ok(buf) => self.buf = buf,
            // The buffer is lost with the error, which commit reports.
            Err(e) => self.fail(Error::Conversion(format!("encode transaction: {e}"))),
        }
    }

    fn check_key_len(&mut self, len: usize) {
        if len > KEY_BYTES_MAX {
            self.fail(Error::InvalidArgument(format!(
                "encoded key is {len} bytes, at most {KEY_BYTES_MAX} allowed"
            )));
        }
    }

    /// Sets (`Some`) or deletes a metadata or config key.
    pub(crate) fn simple(&mut self, tag: Tag, key: &str, value: Option<&Value>) {
        self.check_key_len(1 + key.len());
        let variant = match (tag, value.is_some()) {
            (Tag::Config, true) => SET_CONFIG,
            (Tag::Config, false) => DEL_CONFIG,
            (_, true) => SET_META,
            (_, false) => DEL_META,
        };
        debug_assert!(matches!(tag, Tag::Metadata | Tag::Config), "{tag:?}");
        self.buf.push(variant);
        self.put_str(key);
        if let Some(value) = value {
            self.put_value(value);
        }
        self.added(true, 1);
    }

    /// Sets (`Some`) or deletes a fingerprint.
    pub(crate) fn fingerprint(&mut self, ns: &str, path: &str, fingerprint: Option<&Fingerprint>) {
        self.check_key_len(keys::pair_len(ns, path));
        if let Some(fingerprint) = fingerprint
            && let Err(error) = fingerprint.check()
        {
            self.fail(error);
        }
        self.buf.push(match fingerprint {
            Some(_) => PUT_FINGERPRINT,
            None => DEL_FINGERPRINT,
        });
        self.put_str(ns);
        self.put_str(path);
        if let Some(f) = fingerprint {
            Fingerprint::put_stored(&mut self.buf, &f.hash, f.size, f.mtime);
        }
        self.added(true, 1);
    }

    /// Any op (checked as a commit checks it). An FTS op is also kept as it is.
    pub(crate) fn op(&mut self, op: Op) {
        if let Err(error) = op.check() {
            self.fail(error);
        }
        self.put_value(&op);
        let (blind, weight) = match &op {
            Op::IndexDoc { terms, .. } => (false, terms.terms.len().max(1)),
            Op::RemoveDoc { .. } => (false, 1),
            _ => (true, 1),
        };
        self.added(blind, weight);
        if !blind {
            self.fts_ops.push(op);
        }
    }

    /// The record payload, or the first op's check failure.
    pub(crate) fn finish(self) -> Result<Payload> {
        let EncodedOps {
            mut buf,
            count,
            blind,
            weight,
            invalid,
            fts_ops,
        } = self;
        if let Some(error) = invalid {
            return Err(error);
        }
        let mut varint = Vec::with_capacity(PREFIX);
        put_varint(&mut varint, count);
        let start = PREFIX - varint.len();
        buf.get_mut(start..PREFIX)
            .ok_or_else(|| Error::Conversion("transaction count varint".into()))?
            .copy_from_slice(&varint);
        Ok(Payload {
            buf,
            start,
            count: usize::try_from(count).unwrap_or(usize::MAX),
            blind,
            weight,
            fts_ops,
        })
    }
}

/// A transaction's record payload, `postcard(Vec<Op>)`.
#[derive(Debug)]
pub(crate) struct Payload {
    buf: Vec<u8>,
    start: usize,
    /// Number of ops.
    pub count: usize,
    /// Ops that only set keys.
    pub blind: usize,
    /// About how much work applying them is.
    pub weight: usize,
    /// The FTS ops (`IndexDoc`, `RemoveDoc`), in order: `count - blind` of them. Applied
    /// from here, with the blind ops decoded from the bytes skipping these
    /// (`kv_batch::decode_blind_into`), instead of decoding every term again.
    pub fts_ops: Vec<Op>,
}

impl Payload {
    /// The payload bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Bytes its buffer holds room for.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes the payload's buffer (leaving it empty), to encode another transaction into.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        self.start = 0;
        std::mem::take(&mut self.buf)
    }

    /// The ops.
    pub(crate) fn decode(&self) -> Result<Vec<Op>> {
        postcard::from_bytes(self.bytes())
            .map_err(|e| Error::Conversion(format!("decode transaction: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fts::DocTerms;

    #[test]
    fn payload_is_postcard_of_the_ops() {
        let fp = Fingerprint::new([9u8; 32], 123_456, -1_700_000_000).expect("fingerprint");
        let ops = [
            Op::SetMeta {
                key: "run".into(),
                value: Value::from("x"),
            },
            Op::DelMeta { key: "m".into() },
            Op::SetConfig {
                key: String::new(),
                value: Value::List(vec![Value::Null, Value::Float(2.5)]),
            },
            Op::DelConfig { key: "c".into() },
            Op::PutFingerprint {
                ns: "a\0b".into(),
                path: "p/é.rs".into(),
                fingerprint: fp.clone(),
            },
            Op::DelFingerprint {
                ns: "code".into(),
                path: "q".into(),
            },
            Op::IndexDoc {
                doc: "d".into(),
                terms: DocTerms::from_text("hello world hello"),
            },
            Op::RemoveDoc { doc: "d".into() },
        ];
        for n in [0, 1, 127, 128, 300] {
            let mut encoded = EncodedOps::default();
            let mut all = Vec::new();
            for i in 0..n {
                let op = ops.get(i % ops.len()).expect("op").clone();
                match &op {
                    Op::SetMeta { key, value } => encoded.simple(Tag::Metadata, key, Some(value)),
                    Op::DelMeta { key } => encoded.simple(Tag::Metadata, key, None),
                    Op::SetConfig { key, value } => encoded.simple(Tag::Config, key, Some(value)),
                    Op::DelConfig { key } => encoded.simple(Tag::Config, key, None),
                    Op::PutFingerprint {
                        ns,
                        path,
                        fingerprint,
                    } => encoded.fingerprint(ns, path, Some(fingerprint)),
                    Op::DelFingerprint { ns, path } => encoded.fingerprint(ns, path, None),
                    other => encoded.op(other.clone()),
                }
                all.push(op);
            }
            assert_eq!(encoded.len(), n);
            let payload = encoded.finish().expect("valid");
            assert_eq!(
                payload.bytes(),
                postcard::to_allocvec(&all).expect("encode").as_slice(),
                "{n} ops"
            );
            assert_eq!(payload.decode().expect("decode"), all);
            let fts: Vec<Op> = all
                .iter()
                .filter(|op| matches!(op, Op::IndexDoc { .. } | Op::RemoveDoc { .. }))
                .cloned()
                .collect();
            assert_eq!(payload.fts_ops, fts, "the FTS ops are kept, in order");
            assert_eq!(
                payload.blind,
                all.iter()
                    .filter(|op| !matches!(op, Op::IndexDoc { .. } | Op::RemoveDoc { .. }))
                    .count()
            );
        }
    }

    #[test]
    fn a_failed_check_is_reported_at_finish() {
        let mut encoded = EncodedOps::default();
        encoded.fingerprint("code", &"x".repeat(KEY_BYTES_MAX), None);
        assert!(matches!(encoded.finish(), Err(Error::InvalidArgument(_))));
        let mut encoded = EncodedOps::default();
        let long = Fingerprint {
            hash: vec![0; 33],
            size: 0,
            mtime: 0,
        };
        encoded.fingerprint("code", "p", Some(&long));
        assert!(matches!(encoded.finish(), Err(Error::InvalidArgument(_))));
    }
}
