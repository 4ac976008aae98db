//! Checkpoint write-back that yields to commits.
//!
//! A checkpoint writes its snapshot through the page cache and syncs it at the end: the
//! kernel then sends tens of megabytes to the disk at once, and a commit's `fdatasync`
//! meanwhile waits behind them (measured before pacing: commit p99 16× higher while
//! checkpoints ran back to back). While commits are active (one synced in the last
//! [`RECENT`]), the snapshot writer instead syncs every `PACE_STEP_BYTES`
//! (`snapshot/writer.rs`), each time after waiting, at most [`WAIT_TURN_MAX`], for the
//! commit being synced, if any: the disk then alternates between small steps of the
//! snapshot and the commits. A checkpoint with no commit beside it runs unpaced.
//!
//! Pacing depends on timing, so it is off without a background thread
//! (`background_checkpoints(false)`): the tests that count I/O calls to inject faults at
//! the Nth need the same calls on every run.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Inner;
use crate::snapshot::writer::Pacer;

/// A commit synced within this long ago means commits are active.
const RECENT: Duration = Duration::from_millis(20);
/// Longest a pace step waits for a commit's sync to end.
const WAIT_TURN_MAX: Duration = Duration::from_millis(2);
/// How often the wait looks again.
const WAIT_TURN_POLL: Duration = Duration::from_micros(20);

/// The pacer of one store's checkpoints and backups.
pub(crate) struct CommitPacer<'a>(pub &'a Inner);

impl Pacer for CommitPacer<'_> {
    fn should_pace(&self) -> bool {
        let inner = self.0;
        if !inner.options.background_thread() {
            return false;
        }
        let last = inner.last_sync_end_micros.load(Ordering::Relaxed);
        inner.syncing.load(Ordering::Relaxed)
            || (last > 0
                && inner.micros_since_open().saturating_sub(last) < RECENT.as_micros() as u64)
    }

    fn wait_turn(&self) {
        let deadline = Instant::now() + WAIT_TURN_MAX;
        while self.0.syncing.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(WAIT_TURN_POLL);
        }
    }
}

impl Inner {
    /// Microseconds since the store was opened (at least 1).
    pub(crate) fn micros_since_open(&self) -> u64 {
        (self.opened_at.elapsed().as_micros() as u64).max(1)
    }

    /// Marks a group's sync as started (`true`) or ended (`false`).
    pub(crate) fn note_syncing(&self, syncing: bool) {
        self.syncing.store(syncing, Ordering::Release);
        if !syncing {
            self.last_sync_end_micros
                .store(self.micros_since_open(), Ordering::Relaxed);
        }
    }
}
