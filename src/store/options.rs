//! How a store is opened.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::storage::{FsStorage, Storage};

use super::Store;

/// When `commit` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the record is fdatasync'd (shared with concurrent commits). The default.
    #[default]
    Immediate,
    /// After the record is written to the OS; durable at the next `sync()`, Immediate
    /// commit, segment rotation or checkpoint. For bulk loads and tests.
    None,
}

/// What recovery does with damage in the middle of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Report it as [`crate::Error::Corrupt`] and change nothing. The default.
    #[default]
    Strict,
    /// Cut the log back to the last intact transaction before the damage, moving the cut
    /// bytes into `quarantine/`, and report what the cut transactions touched.
    Salvage,
}

/// Options for [`Store`]; build with [`Store::options`].
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) durability: Durability,
    pub(crate) recovery: RecoveryMode,
    pub(crate) read_only: bool,
    pub(crate) create: bool,
    pub(crate) segment_bytes: u64,
    pub(crate) checkpoint_wal_bytes: u64,
    pub(crate) lock_timeout: Option<Duration>,
    pub(crate) verify_snapshot_on_open: bool,
    pub(crate) background_checkpoints: bool,
    pub(crate) keep_fallback: bool,
    pub(crate) snapshot_parity: bool,
    pub(crate) reuse_snapshot_files: bool,
    pub(crate) direct_io: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            storage: Arc::new(FsStorage),
            durability: Durability::Immediate,
            recovery: RecoveryMode::Strict,
            read_only: false,
            create: true,
            segment_bytes: 4 * 1024 * 1024,
            checkpoint_wal_bytes: 64 * 1024 * 1024,
            lock_timeout: None,
            verify_snapshot_on_open: false,
            background_checkpoints: true,
            keep_fallback: false,
            snapshot_parity: true,
            reuse_snapshot_files: true,
            direct_io: true,
        }
    }
}

impl Options {
    /// The storage to use (default: the real file system).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Default durability of commits (default: [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// What to do with mid-log corruption (default: [`RecoveryMode::Strict`]).
    pub fn recovery(mut self, mode: RecoveryMode) -> Self {
        self.recovery = mode;
        self
    }

    /// Open without the lock and without writing anything (default: false).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Create the directory and the store if missing (default: true; ignored read-only).
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Size each WAL segment is preallocated to; a full one is rotated (default 4 MiB).
    /// An open writer holds up to two segments' worth of allocated zeros (the active
    /// segment and the spare, `wal::spare`), so this is also its fixed disk overhead;
    /// a rotation costs about 0.5 ms once per segment.
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(4096);
        self
    }

    /// Checkpoint automatically once this many WAL bytes were written since the last
    /// checkpoint (default 64 MiB; 0 = never automatically).
    pub fn checkpoint_wal_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_wal_bytes = bytes;
        self
    }

    /// Wait up to this long for the writer lock instead of failing at once.
    pub fn lock_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Check every block of the snapshot at open, rebuilding a damaged one from its
    /// parity sidecar, or else falling back to the previous snapshot if one was kept
    /// (default false: blocks are checked when first read).
    pub fn verify_snapshot_on_open(mut self, verify: bool) -> Self {
        self.verify_snapshot_on_open = verify;
        self
    }

    /// Whether a writer runs a background thread: automatic checkpoints (when
    /// `checkpoint_wal_bytes` is not 0) and spare segments. Also without automatic
    /// checkpoints: the committing thread would otherwise write each spare itself, 32
    /// synced 128 KiB writes after the commit that needs one (measured: with checkpoints
    /// run back to back by the caller, one per checkpoint, the commit tail's main cause).
    pub(crate) fn background_thread(&self) -> bool {
        self.background_checkpoints
    }

    /// Run automatic checkpoints on a background thread (default true), started by the
    /// first request for one or for a spare segment (a writer that never commits starts
    /// none). When false, an automatic checkpoint runs in the committing thread after
    /// its commit.
    pub fn background_checkpoints(mut self, background: bool) -> Self {
        self.background_checkpoints = background;
        self
    }

    /// Keep a fallback after each checkpoint (default false): the previous snapshot and
    /// the WAL since it, so that a newest snapshot found damaged at open falls back to them
    /// and loses nothing (recovery case 2). It guards against damage to a snapshot after
    /// it was written and synced (bit rot, a lost sector), not against crashes: crash
    /// safety is the same either way. It costs about twice the disk space (two copies of
    /// the data and the log between them). Off, as in SQLite or redb, a checkpoint keeps
    /// only the new snapshot and the WAL after it, and a damaged newest snapshot is
    /// reported as `Corrupt` with nothing to fall back on.
    pub fn keep_fallback(mut self, keep: bool) -> Self {
        self.keep_fallback = keep;
        self
    }

    /// Reuse a superseded snapshot's file for the next checkpoint (default true): instead
    /// of deleting it, a checkpoint keeps it, under an exclusive lock, as a spare that the
    /// next one writes over, which spares the file system an allocation and a free (with
    /// online discard, a TRIM) of the whole snapshot. It is kept only while no reader maps
    /// it (readers hold a shared lock) and is removed when the store closes. The cost: one
    /// superseded snapshot's disk space while the writer is open. See
    /// `format-spec/snapshot.md`, "Reusing a superseded snapshot's file".
    pub fn reuse_snapshot_files(mut self, reuse: bool) -> Self {
        self.reuse_snapshot_files = reuse;
        self
    }

    /// Write a parity sidecar `<lsn>.par` beside each snapshot (default true): 6.3 % of
    /// the snapshot's size (up to 64 KiB for a snapshot under 1 MiB), from which recovery rebuilds a snapshot damaged after it was
    /// written (any run of up to 64 KiB per MiB, or scattered 4 KiB pages;
    /// `snapshot::parity`). With `false`, a damaged snapshot is repaired only from a
    /// fallback (`keep_fallback`).
    pub fn snapshot_parity(mut self, parity: bool) -> Self {
        self.snapshot_parity = parity;
        self
    }

    /// Write synced commit groups around the page cache (`O_DIRECT`) where the file
    /// system supports it (default true; Linux 6.1+, which states the alignment): the
    /// `fdatasync` then has no page cache to write back for the group (`wal::direct`).
    /// Groups committed with [`Durability::None`] always go through the page cache.
    pub fn direct_io(mut self, direct: bool) -> Self {
        self.direct_io = direct;
        self
    }

    /// Opens (and recovers) the store in `dir`.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(dir.as_ref(), self)
    }
}
