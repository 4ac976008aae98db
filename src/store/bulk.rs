//! Applying a large commit group as one sorted run (`state/stack.rs`).
//!
//! Inserting a group's changes into the active overlay one by one costs a tree insert,
//! a key and a value allocation (and later their frees) per change: 10,000 fingerprints
//! took about 4 ms that way. Instead, the changes of the group's blind ops (metadata,
//! config and fingerprint sets and deletes: their `apply` only sets keys) are appended
//! to one arena, written in place as `Op::apply` would set them, sorted once (the last
//! change of a key winning) and stacked above the active overlay as an immutable layer.
//!
//! The other ops (FTS: they read the document table and totals first) are applied to the
//! version itself, in their order. They read and write only FTS keys, which no blind op
//! touches, so applying them apart from the blind changes gives the state that applying
//! the whole group in lsn order would.

use crate::error::Result;
use crate::model::keys::Tag;
use crate::model::op::{Op, encode};
use crate::model::value::Value;
use crate::recovery::kv_batch;
use crate::state::{self, ReplayBatch, STACK_MAX, Stacked, Version};

use super::commit::Queued;

/// A group with at least this many blind ops is applied as a run; a smaller one is
/// inserted into the active overlay (a run per small group would only be merged again).
pub(super) const RUN_OPS: usize = 512;

/// Number of blind ops in the group.
pub(super) fn blind_ops(queued: &[Queued]) -> usize {
    queued.iter().map(|q| q.payload.blind).sum()
}

/// Applies the group to `working` in lsn order: blind changes as one run stacked above
/// the active overlay, FTS ops in place (see the module docs).
/// `merged_below` gives, once the run is built, the stack merged down to make room for
/// it (see [`merge_room`]), or `None` to merge here if needed.
pub(super) fn apply_as_run(
    working: &mut Version,
    queued: &[Queued],
    merged_below: impl FnOnce() -> Option<Vec<Stacked>>,
) -> Result<()> {
    let mut batch = ReplayBatch::default();
    batch.reserve(queued.iter().map(|q| q.payload.bytes().len()).sum());
    for txn in queued {
        debug_assert_eq!(txn.lsn, working.lsn + 1, "lsns apply densely");
        // Blind writes decoded from the payload in place; FTS ops as the transaction
        // kept them (see the module docs for why apart).
        if kv_batch::decode_blind_into(txn.payload.bytes(), &mut batch) {
            for op in &txn.payload.fts_ops {
                op.apply(working)?;
            }
        } else {
            for op in txn.payload.decode()? {
                if !append_blind(&op, &mut batch)? {
                    op.apply(working)?;
                }
            }
        }
        working.lsn = txn.lsn;
    }
    working.push_run_onto(batch.finish(), merged_below());
    working.seal();
    Ok(())
}

/// How many layers the stack below may keep when this group's run is pushed, if the
/// stack must be merged down first (`state::normalize`): that merge can then run beside
/// the run's building.
pub(super) fn merge_room(working: &Version, queued: &[Queued]) -> Option<usize> {
    // FTS ops of the group write to the active overlay, which goes above the stack.
    let has_fts = queued.iter().any(|q| q.payload.blind < q.payload.count);
    let room = match has_fts {
        true => STACK_MAX - 2,
        false => working.room_below(),
    };
    state::needs_merge(&working.stack, room).then_some(room)
}

/// Appends to `batch` the change a blind op makes (the key and value `Op::apply` sets);
/// `false` for an op that reads the state, which is left to `Op::apply`.
pub(crate) fn append_blind(op: &Op, batch: &mut ReplayBatch) -> Result<bool> {
    match op {
        Op::SetMeta { key, value } => append_simple(batch, Tag::Metadata, key, Some(value))?,
        Op::DelMeta { key } => append_simple(batch, Tag::Metadata, key, None)?,
        Op::SetConfig { key, value } => append_simple(batch, Tag::Config, key, Some(value))?,
        Op::DelConfig { key } => append_simple(batch, Tag::Config, key, None)?,
        Op::PutFingerprint {
            ns,
            path,
            fingerprint,
        } => batch.push_fingerprint(
            ns,
            path,
            Some((&fingerprint.hash, fingerprint.size, fingerprint.mtime)),
        ),
        Op::DelFingerprint { ns, path } => batch.push_fingerprint(ns, path, None),
        Op::IndexDoc { .. } | Op::RemoveDoc { .. } => return Ok(false),
    }
    Ok(true)
}

/// Appends the change of a metadata or config op.
fn append_simple(
    batch: &mut ReplayBatch,
    tag: Tag,
    name: &str,
    value: Option<&Value>,
) -> Result<()> {
    // Encoded first: a failure leaves the batch as it was.
    let value = value.map(encode).transpose()?;
    batch.push_simple(tag, name.as_bytes(), value.as_deref());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fingerprint::Fingerprint;
    use crate::model::op::RecordedSets;

    #[test]
    fn appended_changes_are_what_apply_sets() {
        let ops = vec![
            Op::SetMeta {
                key: "run".into(),
                value: Value::from("2026"),
            },
            Op::DelMeta { key: "x".into() },
            Op::SetConfig {
                key: String::new(),
                value: Value::List(vec![Value::Null, Value::Float(1.5)]),
            },
            Op::DelConfig { key: "c".into() },
            Op::PutFingerprint {
                ns: "a\0b".into(),
                path: "src/é.rs".into(),
                fingerprint: Fingerprint::new([7u8; 32], 1 << 40, -5).expect("fingerprint"),
            },
            Op::PutFingerprint {
                ns: String::new(),
                path: String::new(),
                fingerprint: Fingerprint::new(Vec::new(), 0, i64::MIN).expect("fingerprint"),
            },
            Op::DelFingerprint {
                ns: "code".into(),
                path: "\0".into(),
            },
        ];
        let mut batch = ReplayBatch::default();
        let mut expected = RecordedSets::default();
        for op in &ops {
            assert!(append_blind(op, &mut batch).expect("append"), "{op:?}");
            op.apply(&mut expected).expect("apply");
        }
        let appended: Vec<_> = batch
            .changes()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(appended, expected.0);
        let fts = Op::RemoveDoc { doc: "d".into() };
        assert!(!append_blind(&fts, &mut batch).expect("append"));
        assert_eq!(batch.changes().count(), ops.len(), "nothing appended");
    }
}
