//! A version: the state at one lsn, cheap to clone and never mutated once published.
//!
//! ```text
//! active  (changes since the checkpoint in progress began; newest wins)
//! frozen  (changes a running checkpoint is writing out; None when idle)
//! replayed (changes recovery read from the WAL, sorted once; see `replayed.rs`)
//! base    (the snapshot file the store opened or last checkpointed)
//! ```
//! The overlays are persistent maps (imbl): cloning is O(1) and a commit touches
//! O(log n) nodes, so a reader holding an old version never blocks or copies.

use std::sync::Arc;

use super::replayed::Replayed;
use super::scan::{Scan, ValueRef};
use crate::error::Result;
use crate::model::op::KvState;
use crate::snapshot::reader::Snapshot;

/// An overlay: key to value, `None` for a deletion that hides an older layer's value.
pub type Layer = imbl::OrdMap<Arc<[u8]>, Option<Arc<[u8]>>>;

/// The state at one lsn.
#[derive(Debug, Clone, Default)]
pub struct Version {
    /// The lsn of the last transaction applied.
    pub lsn: u64,
    /// The snapshot the overlays sit on.
    pub base: Option<Arc<Snapshot>>,
    /// Changes being written by a running checkpoint.
    pub frozen: Option<Layer>,
    /// Newest changes.
    pub active: Layer,
    /// Changes replayed from the WAL at open, below both overlays (dropped by the
    /// checkpoint that writes them out).
    pub replayed: Option<Arc<Replayed>>,
}

impl Version {
    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<ValueRef<'_>>> {
        if let Some(found) = self.active.get(key) {
            return Ok(found.clone().map(ValueRef::Shared));
        }
        if let Some(found) = self.frozen.as_ref().and_then(|layer| layer.get(key)) {
            return Ok(found.clone().map(ValueRef::Shared));
        }
        if let Some(found) = self.replayed.as_ref().and_then(|layer| layer.get(key)) {
            return Ok(found.map(ValueRef::Borrowed));
        }
        match &self.base {
            Some(base) => Ok(base.get(key)?.map(ValueRef::Borrowed)),
            None => Ok(None),
        }
    }

    /// Every live entry whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Scan<'_>> {
        Scan::new(self, prefix)
    }

    /// Number of overlay entries (a measure of un-checkpointed state).
    pub fn overlay_len(&self) -> usize {
        self.active.len()
            + self.frozen.as_ref().map_or(0, Layer::len)
            + self.replayed.as_ref().map_or(0, |layer| layer.len())
    }

    /// Moves the active overlay into `frozen`, for a checkpoint to write out.
    pub fn freeze(&mut self) {
        debug_assert!(self.frozen.is_none(), "one checkpoint at a time");
        self.frozen = Some(std::mem::take(&mut self.active));
    }

    /// Undoes [`Version::freeze`] after a failed checkpoint: newer active entries win.
    pub fn thaw(&mut self) {
        if let Some(frozen) = self.frozen.take() {
            let active = std::mem::take(&mut self.active);
            self.active = active.union(frozen);
        }
    }

    /// Replaces `base`, `frozen` and `replayed` by the snapshot a checkpoint just wrote
    /// (from a version frozen after recovery, so it holds the replayed changes).
    pub fn install(&mut self, snapshot: Arc<Snapshot>) {
        self.base = Some(snapshot);
        self.frozen = None;
        self.replayed = None;
    }
}

impl KvState for Version {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(Version::get(self, key)?.map(|value| value.to_vec()))
    }

    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let key: Arc<[u8]> = key.into();
        match value {
            Some(value) => {
                self.active.insert(key, Some(value.into()));
            }
            None => {
                let hidden_below = self.frozen.as_ref().is_some_and(|l| l.contains_key(&*key))
                    || self
                        .replayed
                        .as_ref()
                        .is_some_and(|l| l.get(&key).is_some())
                    || self
                        .base
                        .as_ref()
                        .is_some_and(|b| b.get(&key).ok().flatten().is_some());
                if hidden_below {
                    self.active.insert(key, None);
                } else {
                    self.active.remove(&*key);
                }
            }
        }
    }
}
