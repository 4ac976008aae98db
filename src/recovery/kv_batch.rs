//! Replay's fast path: a record whose operations are all blind key-value writes (set or
//! delete a metadata, config or fingerprint key) is decoded in place, borrowing from the
//! record bytes, straight into a [`ReplayBatch`]: no `Op`, no owned strings, no tree
//! insert. Any other record (FTS operations, which read the state, or bytes this decoder
//! does not accept) returns `false` and takes the general path, `postcard` into
//! `Vec<Op>` then `Op::apply`, which also reports every decode error.
//!
//! What [`decode_into`] (recovery) accepts, it decodes exactly as
//! `postcard::from_bytes::<Vec<Op>>` would, and it appends the keys and values
//! `Op::apply` would set (`tests::fast_path_equals_decode_and_apply`).
//! [`decode_blind_into`] (a committer, on its own payload) does the same, except that it
//! checks no string for UTF-8: the committer encoded every one from a `&str`. The variant
//! indexes are those of `model::op::Op` (part of the format: never reordered).

use crate::codec::{get_postcard_u64, varint_len};
use crate::model::fingerprint::Fingerprint;
use crate::model::keys::Tag;
use crate::model::op::encode;
use crate::model::op::variant::*;
use crate::model::value::Value;
use crate::state::ReplayBatch;

/// What the decoder does with an FTS op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FtsOps {
    /// Not for this path: the record takes the general one.
    Refuse,
    /// Skipped over (checked to be well formed): the caller applies the FTS ops it kept.
    Skip,
}

/// Appends the changes of `payload` (a record's `postcard(Vec<Op>)`) to `batch`.
/// `false`: the record is not for this path; `batch` is as it was.
pub(crate) fn decode_into(payload: &[u8], batch: &mut ReplayBatch) -> bool {
    decode_marked(payload, batch, FtsOps::Refuse)
}

/// Appends the changes of the blind ops of `payload` to `batch`, skipping its FTS ops
/// (`IndexDoc`, `RemoveDoc`): for a committer that still holds those ops decoded. They
/// touch only FTS keys, which no blind op does, so applying them apart gives the same
/// state. The skipped ops are only stepped over, and no string is checked for UTF-8:
/// the committer encoded every one from a `&str` (checking each term's UTF-8 again made
/// `walstore index` about 10 % slower, in alternated runs; a blind op's took about an
/// eighth of the apply thread's samples in a profile of 10,000-fingerprint commits).
/// `false`: bytes this decoder does not accept; `batch` is as it was.
pub(crate) fn decode_blind_into(payload: &[u8], batch: &mut ReplayBatch) -> bool {
    decode_marked(payload, batch, FtsOps::Skip)
}

fn decode_marked(payload: &[u8], batch: &mut ReplayBatch, fts: FtsOps) -> bool {
    let mark = batch.mark();
    let done = decode(payload, batch, fts).is_some();
    if !done {
        batch.undo(mark);
    }
    done
}

/// Steps over a length-prefixed byte string.
fn skip_bytes(bytes: &[u8], pos: &mut usize) -> Option<()> {
    let len = usize::try_from(get_postcard_u64(bytes, pos)?).ok()?;
    let end = pos.checked_add(len)?;
    (end <= bytes.len()).then(|| *pos = end)
}

/// A length-prefixed string's bytes; checked to be UTF-8 unless `fts` is
/// [`FtsOps::Skip`], the committer's own payload, which it encoded from `&str`s (see
/// [`decode_blind_into`]).
fn take_str<'a>(bytes: &'a [u8], pos: &mut usize, fts: FtsOps) -> Option<&'a [u8]> {
    let len = usize::try_from(get_postcard_u64(bytes, pos)?).ok()?;
    let raw = bytes.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    match fts {
        FtsOps::Skip => Some(raw),
        FtsOps::Refuse => std::str::from_utf8(raw).ok().map(str::as_bytes),
    }
}

/// A stored fingerprint (`postcard(Fingerprint)`) at `*pos`, as its bytes: only if they
/// are what [`Fingerprint::put_stored`] writes for the values they decode to (no varint
/// longer than it need be), so copying them stores what `Op::apply` would.
fn take_stored_fingerprint<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    let (hash, size, mtime) = Fingerprint::take_stored_parts(bytes, pos)?;
    let stored = bytes.get(start..*pos)?;
    let zigzag = ((mtime << 1) ^ (mtime >> 63)) as u64;
    let canonical_bytes =
        varint_len(hash.len() as u64) + hash.len() + varint_len(size) + varint_len(zigzag);
    (stored.len() == canonical_bytes).then_some(stored)
}

fn decode(payload: &[u8], batch: &mut ReplayBatch, fts: FtsOps) -> Option<()> {
    let mut pos = 0;
    let count = get_postcard_u64(payload, &mut pos)?;
    for _ in 0..count {
        // A variant index postcard writes in one byte; anything else: the general path.
        let variant = *payload.get(pos)?;
        pos += 1;
        match variant {
            SET_META | SET_CONFIG | DEL_META | DEL_CONFIG => {
                let tag = if variant <= DEL_META {
                    Tag::Metadata
                } else {
                    Tag::Config
                };
                let name = take_str(payload, &mut pos, fts)?;
                let value = if variant == SET_META || variant == SET_CONFIG {
                    let rest = payload.get(pos..)?;
                    let (value, left) = postcard::take_from_bytes::<Value>(rest).ok()?;
                    pos += rest.len() - left.len();
                    Some(encode(&value).ok()?)
                } else {
                    None
                };
                batch.push_simple(tag, name, value.as_deref());
            }
            PUT_FINGERPRINT | DEL_FINGERPRINT => {
                let ns = take_str(payload, &mut pos, fts)?;
                let path = take_str(payload, &mut pos, fts)?;
                let stored = if variant == PUT_FINGERPRINT {
                    Some(take_stored_fingerprint(payload, &mut pos)?)
                } else {
                    None
                };
                batch.push_fingerprint_stored(ns, path, stored);
            }
            // `IndexDoc { doc, terms: DocTerms { terms: Vec<(String, u32)> } }`. Only
            // stepped over: the committer applies the op it kept, and wrote these bytes
            // from it (so their strings are not checked again here).
            INDEX_DOC if fts == FtsOps::Skip => {
                skip_bytes(payload, &mut pos)?;
                let terms = get_postcard_u64(payload, &mut pos)?;
                for _ in 0..terms {
                    skip_bytes(payload, &mut pos)?;
                    get_postcard_u64(payload, &mut pos)?;
                }
            }
            // `RemoveDoc { doc }`.
            REMOVE_DOC if fts == FtsOps::Skip => {
                skip_bytes(payload, &mut pos)?;
            }
            _ => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::op::{Op, RecordedSets};

    fn ops() -> Vec<Op> {
        let mut map = BTreeMap::new();
        map.insert(
            "k".to_owned(),
            Value::List(vec![Value::Null, Value::Float(1.5)]),
        );
        vec![
            Op::SetMeta {
                key: "run".into(),
                value: Value::from("2026"),
            },
            Op::SetMeta {
                key: String::new(),
                value: Value::Map(map),
            },
            Op::DelMeta { key: "gone".into() },
            Op::SetConfig {
                key: "exclude".into(),
                value: Value::Bytes(vec![0, 255]),
            },
            Op::DelConfig { key: "x".into() },
            Op::PutFingerprint {
                ns: "co\0de".into(),
                path: "src/ä.rs".into(),
                fingerprint: Fingerprint::new([0x5a; 32], u64::MAX, i64::MIN).unwrap(),
            },
            Op::PutFingerprint {
                ns: String::new(),
                path: String::new(),
                fingerprint: Fingerprint::new([], 0, -1).unwrap(),
            },
            Op::DelFingerprint {
                ns: "docs".into(),
                path: "README.md".into(),
            },
        ]
    }

    #[test]
    fn fast_path_equals_decode_and_apply() {
        let all = ops();
        for n in 0..=all.len() {
            let ops = all.get(..n).unwrap().to_vec();
            let payload = postcard::to_allocvec(&ops).unwrap();
            let mut expected = RecordedSets::default();
            for op in &ops {
                op.apply(&mut expected).unwrap();
            }
            let mut batch = ReplayBatch::default();
            assert!(decode_into(&payload, &mut batch));
            let got: Vec<_> = batch
                .changes()
                .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                .collect();
            assert_eq!(got, expected.0);
        }
    }

    /// A stored fingerprint with a varint longer than it need be (which postcard may
    /// accept) is not copied as it is: the fast path leaves the record to the general
    /// one, which stores what `Op::apply` sets.
    #[test]
    fn a_fingerprint_with_a_longer_varint_takes_the_general_path() {
        let op = Op::PutFingerprint {
            ns: "code".into(),
            path: "a.rs".into(),
            fingerprint: Fingerprint::new([9u8; 4], 5, 0).unwrap(),
        };
        let canonical = postcard::to_allocvec(&vec![op.clone()]).unwrap();
        // The size, 5, is the byte after the hash; written as `0x85 0x00` instead.
        let size_at = canonical.len() - 2;
        assert_eq!(canonical[size_at], 5);
        let mut longer = canonical.clone();
        longer.splice(size_at..=size_at, [0x85, 0x00]);
        for fts in [FtsOps::Refuse, FtsOps::Skip] {
            let mut batch = ReplayBatch::default();
            assert!(decode_marked(&canonical, &mut batch, fts));
            assert_eq!(batch.changes().count(), 1);
            let mut batch = ReplayBatch::default();
            assert!(!decode_marked(&longer, &mut batch, fts), "{fts:?}");
            assert!(batch.is_empty());
        }
        if let Ok(ops) = postcard::from_bytes::<Vec<Op>>(&longer) {
            assert_eq!(ops, vec![op], "the general path decodes the same op");
        }
    }

    /// The blind ops of `ops`, interleaved with FTS ops.
    fn mixed_ops() -> Vec<Op> {
        let mut mixed = Vec::new();
        for (i, op) in ops().into_iter().enumerate() {
            mixed.push(op);
            mixed.push(match i % 3 {
                0 => Op::IndexDoc {
                    doc: format!("d{i}"),
                    terms: crate::fts::DocTerms::from_text("alpha beta alpha gamma"),
                },
                1 => Op::RemoveDoc { doc: "é".into() },
                _ => Op::IndexDoc {
                    doc: String::new(),
                    terms: crate::fts::DocTerms::default(),
                },
            });
        }
        mixed
    }

    /// The changes `decode_blind_into` must give for `ops`: the blind ops' only.
    fn blind_changes(ops: &[Op]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut expected = RecordedSets::default();
        for op in ops {
            if !matches!(op, Op::IndexDoc { .. } | Op::RemoveDoc { .. }) {
                op.apply(&mut expected).unwrap();
            }
        }
        expected.0
    }

    #[test]
    fn blind_decoding_skips_fts_ops_and_agrees_with_postcard() {
        let mixed = mixed_ops();
        let payload = postcard::to_allocvec(&mixed).unwrap();
        let mut batch = ReplayBatch::default();
        assert!(
            !decode_into(&payload, &mut batch),
            "the replay path refuses FTS ops"
        );
        assert!(decode_blind_into(&payload, &mut batch));
        let got: Vec<_> = batch
            .changes()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(got, blind_changes(&mixed));
        for at in 0..payload.len() {
            for byte in [0x00, 0x01, 0x06, 0x07, 0x7f, 0x80, 0xff] {
                let mut changed = payload.clone();
                changed[at] = byte;
                for cut in [changed.len(), at + 1] {
                    let bytes = &changed[..cut];
                    let mut batch = ReplayBatch::default();
                    if !decode_blind_into(bytes, &mut batch) {
                        assert!(batch.is_empty());
                        continue;
                    }
                    // The skipped FTS ops' strings are not checked (a committer wrote
                    // them from ops it holds): only where postcard accepts too is there
                    // something to compare.
                    let Ok(ops) = postcard::from_bytes::<Vec<Op>>(bytes) else {
                        continue;
                    };
                    let got: Vec<_> = batch
                        .changes()
                        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                        .collect();
                    assert_eq!(got, blind_changes(&ops));
                }
            }
        }
    }

    #[test]
    fn what_the_fast_path_accepts_postcard_accepts_identically() {
        let payload = postcard::to_allocvec(&ops()).unwrap();
        let fts = postcard::to_allocvec(&vec![Op::RemoveDoc { doc: "d".into() }]).unwrap();
        let mut batch = ReplayBatch::default();
        assert!(!decode_into(&fts, &mut batch));
        assert!(batch.is_empty());
        for at in 0..payload.len() {
            for byte in [0x00, 0x01, 0x05, 0x06, 0x7f, 0x80, 0xc3, 0xff] {
                let mut changed = payload.clone();
                changed[at] = byte;
                for cut in [changed.len(), at + 1] {
                    let bytes = &changed[..cut];
                    let mut batch = ReplayBatch::default();
                    if !decode_into(bytes, &mut batch) {
                        assert!(batch.is_empty());
                        continue;
                    }
                    let ops: Vec<Op> = postcard::from_bytes(bytes).unwrap_or_else(|e| {
                        panic!("fast path accepted what postcard refuses: {e}")
                    });
                    let mut expected = RecordedSets::default();
                    for op in &ops {
                        op.apply(&mut expected).unwrap();
                    }
                    let got: Vec<_> = batch
                        .changes()
                        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                        .collect();
                    assert_eq!(got, expected.0);
                }
            }
        }
    }
}
