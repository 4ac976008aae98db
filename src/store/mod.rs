//! The store: open (and recover), write transactions, read views, checkpoints.

mod activity;
pub(crate) use activity::Pacing;
mod bulk;
mod checkpoint;
mod commit;
pub(crate) mod head;
mod helper;
mod lock;
mod options;
mod priority;
mod refresh;
mod spare;

pub use checkpoint::CheckpointReport;
pub use head::HEAD_FILE;
pub use lock::{LOCK_FILE, LockHolder, lock_holder, read_holder};
pub use options::{Durability, Options, RecoveryMode};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use crate::error::{Error, Result};
use crate::header::StoreId;
use crate::recovery::{self, RecoveryReport};
use crate::state::Version;
use crate::storage::{Storage, StorageLock};
use crate::txn::{ReadTxn, WriteTxn};
use commit::Log;

/// An open store. Cheap operations take `&self`; share it across threads with `Arc`.
///
/// Dropping the store stops its background checkpointer and releases the writer lock.
#[derive(Debug)]
pub struct Store {
    inner: Arc<Inner>,
    report: RecoveryReport,
}

/// State shared by the store's handles and its background thread.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) options: Options,
    pub(crate) store_id: StoreId,
    pub(crate) dir_identity: Option<(u64, u64)>,
    pub(crate) read_only: bool,
    pub(crate) published: RwLock<Arc<Version>>,
    pub(crate) log: Mutex<Log>,
    pub(crate) log_cond: Condvar,
    pub(crate) poisoned: AtomicBool,
    pub(crate) checkpoint_lock: Mutex<()>,
    pub(crate) background: Mutex<Background>,
    pub(crate) background_cond: Condvar,
    /// The spare segment's state (`spare.rs`).
    pub(crate) spare: Mutex<spare::SpareSlot>,
    /// A superseded snapshot's file, kept for the next checkpoint to write over
    /// (`snapshot::reuse`).
    pub(crate) snapshot_spare: Mutex<Option<crate::snapshot::reuse::SpareSnapshot>>,
    /// Threads that build a large group's run beside its write (`helper.rs`).
    pub(crate) helpers: helper::Helpers,
    /// A large committed transaction's payload buffer, for the next write transaction
    /// (`commit.rs`, `keep_payload_buffer`).
    pub(crate) payload_buffer: Mutex<Vec<u8>>,
    /// First lsn of the last segment a spare was asked for.
    pub(crate) spare_asked_for: std::sync::atomic::AtomicU64,
    /// The writer's `HEAD` file (see `head.rs`).
    pub(crate) head: Option<Box<dyn crate::storage::StorageFile>>,
    /// When durable commits last synced (`activity.rs`).
    pub(crate) sync_activity: activity::SyncActivity,
    /// This, for the background thread it starts (`Inner::wake_background`).
    weak_self: Weak<Inner>,
    _lock: Option<Box<dyn StorageLock>>,
}

/// Requests to the background thread (or, without one, to the committing thread).
#[derive(Debug, Default)]
pub(crate) struct Background {
    /// A checkpoint is due.
    pub requested: bool,
    /// A spare segment is wanted (`spare.rs`).
    pub spare_wanted: bool,
    pub shutdown: bool,
    /// The error of the last automatic checkpoint, cleared by the next that succeeds.
    pub last_error: Option<Arc<Error>>,
    /// The background thread, started by the first request (a writer that never
    /// commits, or only reads, never starts one: 0.1 ms less per open).
    pub thread: Option<JoinHandle<()>>,
}

/// The requests taken from [`Background`] at once, to run without its lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Work {
    spare: bool,
    checkpoint: bool,
}

impl Background {
    /// Whether anything is requested.
    pub(crate) fn has_work(&self) -> bool {
        self.requested || self.spare_wanted
    }

    /// Takes every request.
    pub(crate) fn take_work(&mut self) -> Work {
        Work {
            spare: std::mem::take(&mut self.spare_wanted),
            checkpoint: std::mem::take(&mut self.requested),
        }
    }
}

impl Store {
    /// Opens the store in `dir` with default options, creating it (and its parents) if
    /// missing, and recovering it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        Options::default().open(dir)
    }

    /// Opens an existing store read-only: no writer lock (a shared lock on the snapshot it
    /// maps), no writes; a torn tail reads as not
    /// committed.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Store> {
        Options::default().read_only(true).open(dir)
    }

    /// Options to open a store with.
    pub fn options() -> Options {
        Options::default()
    }

    pub(crate) fn open_with(dir: &Path, options: Options) -> Result<Store> {
        let storage = options.storage.clone();
        let exists = storage.exists(dir).map_err(|e| Error::io("stat", dir, e))?;
        if options.read_only || !options.create {
            let listing = if exists {
                Some(recovery::list(storage.as_ref(), dir)?)
            } else {
                None
            };
            if !listing.as_ref().is_some_and(|l| l.is_store()) {
                let reason = if exists {
                    "no .wal, .snap or LOCK file in it"
                } else {
                    "it does not exist"
                };
                return Err(Error::NotAStore {
                    dir: dir.to_path_buf(),
                    reason: reason.into(),
                });
            }
        } else if !exists {
            storage
                .create_dir_all(dir)
                .map_err(|e| Error::io("create directory", dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                storage
                    .sync_dir(parent)
                    .map_err(|e| Error::io("fsync directory", parent, e))?;
            }
        }
        let writer = !options.read_only;
        let lock = if writer {
            Some(lock::acquire(storage.as_ref(), dir, options.lock_timeout)?)
        } else {
            None
        };
        let dir_identity = storage.dir_identity(dir).ok();
        // A reader beside a live writer reads only what the writer published as durable.
        let limit = if writer || !storage.is_locked(&dir.join(LOCK_FILE)).unwrap_or(false) {
            u64::MAX
        } else {
            head::read(storage.as_ref(), dir).map_or(0, |(_, lsn)| lsn)
        };
        // Whether the last writer closed cleanly (head.rs): read before recovery decides
        // whether the open-time syncs are needed, through the handle the writer then
        // rewrites it with.
        let head_file = writer
            .then(|| head::open_existing(storage.as_ref(), dir))
            .flatten();
        let closed = head_file
            .as_deref()
            .and_then(head::read_from)
            .filter(|head| head.closed.is_some());
        let recovered =
            recovery::recover_up_to(storage.as_ref(), dir, &options, writer, limit, closed)?;
        // A writer that could not make the replayed records durable opens poisoned and
        // publishes nothing to readers.
        let head = if writer && recovered.sync_error.is_none() {
            head::open_for_writer(
                storage.as_ref(),
                dir,
                head_file,
                recovered.store_id,
                recovered.version.lsn,
            )
        } else {
            None
        };
        // A "closed" HEAD left in place would let the next open skip its syncs after
        // whatever this writer writes: a writer that cannot replace it writes nothing.
        let head_replaced = match (closed, &head) {
            (Some(_), None) if writer => Err(Error::io(
                "write",
                dir.join(head::HEAD_FILE),
                std::io::Error::other("could not replace the closed HEAD"),
            )),
            _ => Ok(()),
        };
        // Names recovery found may not be durable yet (a rename whose directory fsync
        // failed in the previous process): make them so before anything builds on them.
        // If that fails, the store opens poisoned: it reads, but acknowledges nothing.
        // After a clean close there are none: that writer synced every change it made.
        let names_synced = match writer && !recovered.after_clean_close {
            true => storage
                .sync_dir(dir)
                .map_err(|e| Error::io("fsync directory", dir, e)),
            false => Ok(()),
        };
        let synced_offset = recovered.active.as_ref().map_or(0, |a| a.write_offset);
        let recovered_sync_error = recovered.sync_error;
        let version = recovered.version;
        let lsn = version.lsn;
        let mut report = recovered.report;
        if writer {
            report.interrupted_run = ReadTxn::new(Arc::new(version.clone()))
                .indexing()
                .ok()
                .flatten();
        }
        let log = Log::new(
            lsn,
            recovered.active,
            version.clone(),
            recovered.tail,
            (report.segments_read > 0 || report.snapshot.is_some()).then_some(recovered.store_id),
            synced_offset,
        );
        let inner = Arc::new_cyclic(|weak_self| Inner {
            dir: dir.to_path_buf(),
            storage,
            options,
            store_id: recovered.store_id,
            dir_identity,
            read_only: !writer,
            published: RwLock::new(Arc::new(version)),
            log: Mutex::new(log),
            log_cond: Condvar::new(),
            poisoned: AtomicBool::new(false),
            checkpoint_lock: Mutex::new(()),
            background: Mutex::new(Background::default()),
            background_cond: Condvar::new(),
            spare: Mutex::new(spare::SpareSlot::Empty),
            snapshot_spare: Mutex::new(None),
            payload_buffer: Mutex::new(Vec::new()),
            helpers: helper::Helpers::new(),
            spare_asked_for: std::sync::atomic::AtomicU64::new(0),
            head,
            sync_activity: activity::SyncActivity::new(),
            weak_self: weak_self.clone(),
            _lock: lock,
        });
        if let Some(error) = recovered_sync_error
            .as_ref()
            .or(names_synced.as_ref().err())
            .or(head_replaced.as_ref().err())
        {
            let mut log = inner.log.lock();
            inner.poison(&mut log, error, lsn);
        }
        Ok(Store { inner, report })
    }

    /// Begins a write transaction: a batch of changes applied atomically at `commit`.
    pub fn begin_write(&self) -> WriteTxn {
        WriteTxn::new(self.inner.clone(), self.inner.options.durability)
    }

    /// A consistent read view of the latest committed (and, for
    /// [`Durability::Immediate`], durable) state. Costs one `Arc` clone.
    pub fn read(&self) -> ReadTxn {
        ReadTxn::new(self.inner.published.read().clone())
    }

    /// The lsn of the last committed transaction (0 for an empty store).
    pub fn lsn(&self) -> u64 {
        self.inner.published.read().lsn
    }

    /// For a read-only handle: reads what was committed since it last looked (tailing
    /// the WAL, following checkpoints) and returns its new lsn, which never decreases.
    /// A writer's handle is always current; this returns its lsn.
    pub fn refresh(&self) -> Result<u64> {
        self.inner.refresh(&mut |_, _| {})
    }

    /// [`Store::refresh`], calling `on_commit(lsn, ops)` for each transaction read from
    /// the WAL, in lsn order. A reload (after a checkpoint dropped the segment being read)
    /// calls it for none of the transactions it brings in.
    pub fn refresh_with(
        &self,
        on_commit: &mut dyn FnMut(u64, &[crate::model::op::Op]),
    ) -> Result<u64> {
        self.inner.refresh(on_commit)
    }

    /// Refreshes until no indexing run is in progress or `timeout` passes; returns the
    /// run still in progress, if any.
    pub fn wait_for_indexing(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Option<crate::run::RunInfo>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.refresh()?;
            let run = self.read().indexing()?;
            let now = std::time::Instant::now();
            if run.is_none() || now >= deadline {
                return Ok(run);
            }
            std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(10)));
        }
    }

    /// Writes a snapshot of the current state and drops the WAL it makes unnecessary.
    pub fn checkpoint(&self) -> Result<CheckpointReport> {
        self.inner.checkpoint(activity::Pacing::GiveWay)
    }

    /// Makes every commit made with [`Durability::None`] durable.
    pub fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    /// What recovery found and did when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether an earlier failed write or fsync poisoned the store.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    /// What poisoned the store (the failed write or sync, with its path, or the panic),
    /// or `None` if it is not poisoned. Every refused write says only
    /// [`Error::Poisoned`]; this says why.
    pub fn poison_cause(&self) -> Option<Error> {
        self.inner.log.lock().failure.as_ref().map(|f| f.to_error())
    }

    /// Writes a consistent copy of this store's current state into `dest` (created if
    /// missing; must not hold a store): a fresh snapshot and an empty WAL segment. Works
    /// on a read-only handle, beside a live writer.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<CheckpointReport> {
        self.inner.backup(dest.as_ref(), &self.read())
    }

    /// Whether this handle is read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The error of the last automatic checkpoint (run by the background thread, or
    /// after a commit when there is none), if it failed; `None` once one succeeds. A
    /// commit's own result never carries it: the commit was durable either way. The WAL
    /// stays in place until a checkpoint succeeds.
    pub fn last_automatic_checkpoint_error(&self) -> Option<Arc<Error>> {
        self.inner.background.lock().last_error.clone()
    }

    /// Syncs pending [`Durability::None`] commits, stops background work and releases
    /// the lock, reporting any error (dropping the store does the same silently). On a
    /// poisoned store it fails with [`Error::Poisoned`]: [`Durability::None`] commits it
    /// had not synced may be lost (the next open recovers what is durable).
    pub fn close(mut self) -> Result<()> {
        let result = if self.inner.read_only {
            Ok(())
        } else if self.is_poisoned() {
            Err(Error::Poisoned)
        } else {
            self.inner.sync()
        };
        self.stop_background();
        result
    }

    fn stop_background(&mut self) {
        let thread = {
            let mut background = self.inner.background.lock();
            background.shutdown = true;
            background.thread.take()
        };
        self.inner.background_cond.notify_all();
        if let Some(handle) = thread {
            let _ = handle.join();
        }
        self.inner.helpers.stop();
        self.inner.discard_spare();
        if let Some(unused) = self.inner.snapshot_spare.lock().take() {
            unused.discard(self.inner.storage.as_ref());
        }
        if !self.inner.read_only {
            self.inner.punch_unused_tail();
            self.inner.publish_closed();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if !self.inner.read_only && !self.is_poisoned() {
            let _ = self.inner.sync();
        }
        self.stop_background();
    }
}

impl Inner {
    /// Runs taken requests: the spare first (a rotation may wait for it), then the
    /// checkpoint. A failed checkpoint leaves the WAL in place (the next request tries
    /// again); its error is kept for [`Store::last_automatic_checkpoint_error`].
    ///
    /// `pacing`: `GiveWay` on the background thread; `FullSpeed` inline in a commit, whose
    /// caller waits for the work. On the background thread, a spare is not written while
    /// a snapshot is (a checkpoint called by the user): two paced writers would each take
    /// turns with the commits (`storage::pacing`). So a user's checkpoint may wait for a
    /// spare being written, and a committing thread never waits for a checkpoint.
    pub(crate) fn run_work(&self, work: Work, pacing: activity::Pacing) {
        if work.spare {
            self.prepare_spare(pacing);
        }
        if work.checkpoint {
            let outcome = self.checkpoint(pacing).err().map(Arc::new);
            self.background.lock().last_error = outcome;
        }
    }

    /// Wakes the background checkpointer (or notes the request when there is none).
    pub(crate) fn request_checkpoint(&self) {
        let mut background = self.background.lock();
        background.requested = true;
        self.wake_background(background);
    }

    /// Wakes the background thread for the requests just noted in `background`,
    /// starting it first if this writer runs one and has not yet. Should the start fail
    /// (no threads left), the requests wait and the next one tries again; the open and
    /// the commits are unaffected.
    pub(crate) fn wake_background(&self, mut background: MutexGuard<'_, Background>) {
        if self.options.background_thread()
            && !self.read_only
            && !background.shutdown
            && background.thread.is_none()
        {
            let weak = self.weak_self.clone();
            background.thread = std::thread::Builder::new()
                .name("walstore-checkpoint".into())
                .spawn(move || checkpoint::background_loop(&weak))
                .ok();
        }
        drop(background);
        self.background_cond.notify_all();
    }
}

/// Keeps the type visible to `checkpoint.rs` without a cycle.
pub(crate) type WeakInner = Weak<Inner>;
