//! What recovery did, for the caller and the CLI.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::model::op::Op;
use crate::wal::record;

/// The outcome of opening a store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    /// The snapshot loaded, if any.
    pub snapshot: Option<PathBuf>,
    /// The lsn that snapshot covers (0 without one).
    pub snapshot_lsn: u64,
    /// Segments read.
    pub segments_read: usize,
    /// Transactions replayed from the WAL on top of the snapshot.
    pub records_replayed: u64,
    /// The store's lsn after recovery.
    pub lsn: u64,
    /// A torn tail found (and cut, for a writer).
    pub torn_tail: Option<TornTail>,
    /// Bytes cut from the log (torn tail and salvage).
    pub bytes_truncated: u64,
    /// The store's own temporary files removed.
    pub temps_removed: Vec<PathBuf>,
    /// The store's own temporary files seen by a read-only open (not removed), or that a
    /// writer's open could not remove (a failing disk): a later rotation or checkpoint
    /// that needs the same name then fails.
    pub temps_found: Vec<PathBuf>,
    /// Snapshots skipped, and why.
    pub fallbacks: Vec<String>,
    /// Files moved or copied into `quarantine/` (damaged snapshots and their sidecars).
    pub quarantined: Vec<PathBuf>,
    /// Snapshots rebuilt from their parity sidecars (recovery case 2r).
    pub repaired: Vec<SnapshotRepair>,
    /// What salvage cut, in [`crate::RecoveryMode::Salvage`].
    pub salvage: Option<SalvageReport>,
    /// An indexing run recorded as in progress when a writer opened the store: its
    /// process died before finishing it (the writer lock is exclusive).
    pub interrupted_run: Option<crate::run::RunInfo>,
    /// Whether a new WAL segment was created.
    pub created_segment: bool,
    /// Time recovery took.
    pub duration: Duration,
}

/// A damaged snapshot rebuilt from its parity sidecar (`<lsn>.par`).
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRepair {
    /// The snapshot.
    pub snapshot: PathBuf,
    /// The damage found when it was opened.
    pub damage: String,
    /// Byte offsets of the 4 KiB pages rebuilt.
    pub pages: Vec<u64>,
    /// A writer's open: where the damaged bytes were copied before the rebuilt snapshot
    /// replaced them. `None` for a read-only open, which rebuilds it in memory only.
    pub damaged_copy: Option<PathBuf>,
}

/// A torn tail: bytes after the last valid record that were never acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct TornTail {
    /// The segment.
    pub file: PathBuf,
    /// Where the valid log ends.
    pub offset: u64,
    /// Non-zero bytes after it.
    pub bytes_cut: u64,
    /// What was found there.
    pub reason: String,
}

/// What salvage cut away.
#[derive(Debug, Clone, Serialize)]
pub struct SalvageReport {
    /// The segment where the damage starts.
    pub file: PathBuf,
    /// Offset of the damage.
    pub offset: u64,
    /// What was found.
    pub reason: String,
    /// Bytes cut (moved to quarantine).
    pub bytes_cut: u64,
    /// Lsns of the intact records found in the cut bytes, first and last.
    pub lsn_range: Option<(u64, u64)>,
    /// Where the cut bytes went.
    pub quarantined: Vec<PathBuf>,
    /// `(collection, key)` that the intact cut records touched: re-index these.
    pub touched: Vec<(String, String)>,
}

impl SalvageReport {
    /// Finds intact records in cut bytes and records what they touched.
    pub(crate) fn collect_touched(&mut self, bytes: &[u8]) {
        let mut pos = 0usize;
        while let Some(rest) = bytes.get(pos..).filter(|r| r.len() >= record::HEADER_BYTES) {
            let Ok((header, payload)) = record::decode(rest) else {
                pos += record::ALIGN_BYTES as usize;
                continue;
            };
            self.lsn_range = Some(match self.lsn_range {
                Some((low, high)) => (low.min(header.lsn), high.max(header.lsn)),
                None => (header.lsn, header.lsn),
            });
            if let Ok(ops) = postcard::from_bytes::<Vec<Op>>(payload) {
                for op in ops {
                    let (collection, key) = op.touched();
                    let entry = (collection.to_owned(), key);
                    if !self.touched.contains(&entry) {
                        self.touched.push(entry);
                    }
                }
            }
            pos += record::framed_len(payload.len()) as usize;
        }
    }
}
