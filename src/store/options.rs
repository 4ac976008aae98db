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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            storage: Arc::new(FsStorage),
            durability: Durability::Immediate,
            recovery: RecoveryMode::Strict,
            read_only: false,
            create: true,
            segment_bytes: 8 * 1024 * 1024,
            checkpoint_wal_bytes: 64 * 1024 * 1024,
            lock_timeout: None,
            verify_snapshot_on_open: false,
            background_checkpoints: true,
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

    /// Size each WAL segment is preallocated to; a full one is rotated (default 8 MiB).
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

    /// Check every block of the snapshot at open, falling back to the previous snapshot
    /// if any is damaged (default false: blocks are checked when first read).
    pub fn verify_snapshot_on_open(mut self, verify: bool) -> Self {
        self.verify_snapshot_on_open = verify;
        self
    }

    /// Whether a writer runs a background thread (checkpoints and spare segments).
    pub(crate) fn background_thread(&self) -> bool {
        self.background_checkpoints && self.checkpoint_wal_bytes > 0
    }

    /// Run automatic checkpoints on a background thread (default true). When false,
    /// an automatic checkpoint runs in the committing thread after its commit.
    pub fn background_checkpoints(mut self, background: bool) -> Self {
        self.background_checkpoints = background;
        self
    }

    /// Opens (and recovers) the store in `dir`.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(dir.as_ref(), self)
    }
}
