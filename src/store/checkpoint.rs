//! Checkpoints: write the state at one lsn as a snapshot (and its parity sidecar), then
//! drop what it makes unnecessary: older snapshots and the WAL it covers (with
//! `keep_fallback(true)`, only what the previous snapshot covers too).
//!
//! 1. Under the log mutex: freeze the working overlay (O(1)); the frozen version is
//!    immutable. Commits go on into a fresh overlay.
//! 2. Without any lock: write `<lsn>.snap.tmp`, fdatasync, rename to `<lsn>.snap`,
//!    fsync the directory (`snapshot::writer`).
//! 3. Under the mutex: install the snapshot as the new base and publish.
//! 4. Delete older snapshots (keeping one's file, renamed, as the spare the next checkpoint
//!    writes over: `snapshot::reuse`) and the segments whose records are all covered by
//!    the new snapshot; fsync the directory. With `Options::keep_fallback(true)`, one older
//!    snapshot and the WAL since it are kept instead, so a damaged newest snapshot falls
//!    back (recovery case 2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::activity::Pacing;
use super::{Inner, WeakInner};
use crate::error::{Error, Result};
use crate::recovery::{DirListing, list, open_snapshot};
use crate::snapshot;
use crate::snapshot::reuse::SpareSnapshot;

/// What a checkpoint did.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointReport {
    /// The lsn the new snapshot covers.
    pub lsn: u64,
    /// Entries written.
    pub entries: u64,
    /// Snapshot size in bytes.
    pub bytes: u64,
    /// Whether a snapshot was written (false: nothing changed since the last one).
    pub written: bool,
    /// WAL segments deleted.
    pub segments_deleted: usize,
    /// Old snapshots deleted, or (one of them) kept as the spare the next checkpoint
    /// writes over (`snapshot::reuse`).
    pub snapshots_deleted: usize,
    /// The snapshot this one was written from turned out damaged, and was rebuilt from
    /// its parity sidecar to write this one (its path).
    pub base_rebuilt: Option<std::path::PathBuf>,
    /// Where that damaged snapshot's bytes went in `quarantine/`: moved there, or, with
    /// `keep_fallback(true)`, copied there before the rebuilt bytes replaced them.
    pub base_quarantined: Option<std::path::PathBuf>,
    /// Time taken.
    pub duration: Duration,
}

impl Inner {
    /// Writes a snapshot of the current state, giving way to commits or not (`pacing`).
    pub(crate) fn checkpoint(&self, pacing: Pacing) -> Result<CheckpointReport> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let _one_at_a_time = self.checkpoint_lock.lock();
        let started = Instant::now();
        let frozen = {
            let mut log = self.log.lock();
            if log.failure.is_some() {
                return Err(Error::Poisoned);
            }
            let base_lsn = log.working.base.as_ref().map_or(0, |s| s.lsn());
            if log.working.lsn == base_lsn {
                return Ok(CheckpointReport {
                    lsn: base_lsn,
                    entries: 0,
                    bytes: 0,
                    written: false,
                    segments_deleted: 0,
                    snapshots_deleted: 0,
                    base_rebuilt: None,
                    base_quarantined: None,
                    duration: started.elapsed(),
                });
            }
            log.working.freeze();
            log.working_gen += 1;
            log.rotate_requested = true;
            log.wal_bytes_since_checkpoint = 0;
            log.working.clone()
        };
        let mut frozen = frozen;
        let lsn = frozen.lsn;
        if let Some(base) = &frozen.base {
            base.advise_full_scan();
        }
        let mut sync_failed = false;
        let write = |frozen: &crate::state::Version, sync_failed: &mut bool| {
            let spare = self.snapshot_spare.lock().take();
            self.long_write(pacing, "walstore-snapshot", true, |foreground| {
                let target = snapshot::writer::Target {
                    storage: self.storage.as_ref(),
                    dir: &self.dir,
                    store_id: self.store_id,
                    lsn,
                    parity: self.options.snapshot_parity,
                };
                snapshot::writer::write_with(
                    target,
                    &mut |out| frozen.write_snapshot(out),
                    foreground,
                    sync_failed,
                    spare,
                )
            })
        };
        let mut written = write(&frozen, &mut sync_failed);
        // Damage in the snapshot being copied from (its blocks are checked only when first
        // read): rebuild it from its sidecar and write from the rebuilt copy instead.
        let mut base_rebuilt = None;
        if !sync_failed
            && let Some(base) = frozen.base.clone()
            && let Some(rebuilt) = rebuilt_base(self.storage.as_ref(), &written, &frozen)
        {
            base_rebuilt = Some((base.path().to_path_buf(), base.lsn(), rebuilt.bytes));
            frozen.base = Some(Arc::new(rebuilt.snapshot));
            written = write(&frozen, &mut sync_failed);
        }
        let installed = written.and_then(|written| {
            let opened = open_snapshot(self.storage.as_ref(), &written.path, false)?;
            Ok((written, opened))
        });
        let (written, opened) = match installed {
            Ok(done) => done,
            Err(error) => {
                let mut log = self.log.lock();
                log.working.thaw();
                log.working_gen += 1;
                if sync_failed {
                    // Never retry a failed fsync (fsyncgate): poison, as a failed WAL sync does.
                    let last = log.written_lsn;
                    self.poison(&mut log, &error, last);
                }
                return Err(error);
            }
        };
        {
            let mut log = self.log.lock();
            log.working.install(Arc::new(opened));
            log.working_gen += 1;
            *self.published.write() = Arc::new(log.working.clone());
            self.rotate_idle(&mut log)?;
        }
        // It holds the old base, whose file prune may keep for reuse only once nothing
        // maps it.
        drop(frozen);
        let base_quarantined = match &base_rebuilt {
            Some((path, base_lsn, bytes)) => {
                Some(self.settle_rebuilt_base(path, *base_lsn, bytes)?)
            }
            None => None,
        };
        let (segments_deleted, snapshots_deleted) = self.prune()?;
        Ok(CheckpointReport {
            lsn,
            entries: written.entries,
            bytes: written.bytes,
            written: true,
            segments_deleted,
            snapshots_deleted,
            base_rebuilt: base_rebuilt.map(|(path, _, _)| path),
            base_quarantined,
            duration: started.elapsed(),
        })
    }

    /// If no commit came since the checkpoint began (so none rotated the segment), start
    /// the next segment now: an open then reads only the records after the snapshot,
    /// never the segment it covers. Runs under the log mutex while no leader writes.
    fn rotate_idle(&self, log: &mut super::commit::Log) -> Result<()> {
        let idle = log.rotate_requested && !log.leader && log.queued.is_empty();
        let Some(segment) = log
            .segment
            .as_ref()
            .filter(|s| idle && s.write_offset > crate::header::HEADER_BYTES as u64)
        else {
            return Ok(());
        };
        let result = (|| {
            // A segment is durable before the next one exists (recovery case 7).
            if log.written_lsn > log.durable_lsn {
                segment.file.sync_data().map_err(|e| {
                    // As on the commit path: never leave failed bytes for a reopen in
                    // this boot to replay as durable (fsyncgate).
                    super::commit::discard_unsynced(segment, log.synced_offset);
                    Error::io("fdatasync", &segment.path, e)
                })?;
            }
            self.next_segment(log.written_lsn + 1)
        })();
        match result {
            Ok(next) => {
                log.segment = Some(next);
                log.durable_lsn = log.written_lsn;
                log.synced_offset = crate::header::HEADER_BYTES as u64;
                log.rotate_requested = false;
                Ok(())
            }
            Err(error) => {
                let last = log.written_lsn;
                self.poison(log, &error, last);
                Err(error)
            }
        }
    }

    /// After a checkpoint written from a base rebuilt in memory (P2 g): the damaged base
    /// file is never simply deleted. Kept as the fallback, it is replaced by the rebuilt
    /// bytes, its own bytes copied into `quarantine/` first (as recovery does); otherwise
    /// it is moved into `quarantine/`, and prune removes its sidecar. Returns where its
    /// bytes went.
    fn settle_rebuilt_base(
        &self,
        path: &std::path::Path,
        lsn: u64,
        rebuilt: &[u8],
    ) -> Result<std::path::PathBuf> {
        use crate::recovery::{quarantine, repair};
        let storage = self.storage.as_ref();
        if !self.options.keep_fallback {
            return quarantine::move_file(storage, &self.dir, path);
        }
        repair::replace_damaged(storage, &self.dir, path, lsn, rebuilt)
    }

    /// Step 4. Never deletes the active segment.
    fn prune(&self) -> Result<(usize, usize)> {
        let listing = list(self.storage.as_ref(), &self.dir)?;
        // Snapshots kept: the new one, and the fallback unless `keep_fallback(false)`.
        let kept = if self.options.keep_fallback { 2 } else { 1 };
        let keep_from = listing.snapshots.len().saturating_sub(kept);
        // The WAL is kept from the oldest kept snapshot on (all of it while that is the
        // only snapshot and a fallback is kept: the fallback is then the empty store).
        let previous_lsn = if listing.snapshots.len() >= kept {
            listing.snapshots.get(keep_from).copied().unwrap_or(0)
        } else {
            0
        };
        let mut removed = (0, 0);
        // A snapshot kept as the spare is written over only once its rename away from its
        // name is durable (the directory fsync below): until then a crash could bring the
        // name back, over whatever the file then held.
        let mut pending_spare = None;
        let retired = self.retire_snapshots(
            listing.snapshots.get(..keep_from).unwrap_or_default(),
            &mut pending_spare,
        );
        let result = retired.and_then(|retired| {
            removed.1 = retired;
            self.prune_the_rest(&listing, keep_from, previous_lsn, &mut removed)
        });
        match result {
            Ok(()) => {
                if let Some(spare) = pending_spare {
                    *self.snapshot_spare.lock() = Some(spare);
                }
                Ok(removed)
            }
            Err(error) => {
                if let Some(spare) = pending_spare {
                    spare.discard(self.storage.as_ref());
                }
                Err(error)
            }
        }
    }

    /// Prune's other steps: sidecars and segments, then the directory fsync.
    fn prune_the_rest(
        &self,
        listing: &DirListing,
        keep_from: usize,
        previous_lsn: u64,
        removed: &mut (usize, usize),
    ) -> Result<()> {
        // Sidecars of the deleted snapshots, and any whose snapshot is gone (a damaged base
        // moved into quarantine, or one an older build pruned).
        let kept_snapshots = listing.snapshots.get(keep_from..).unwrap_or_default();
        let mut sidecars_removed = false;
        for &lsn in &listing.parities {
            if !kept_snapshots.contains(&lsn) {
                self.remove(&snapshot::parity::file_name(lsn))?;
                sidecars_removed = true;
            }
        }
        for pair in listing.segments.windows(2) {
            if let [first, next] = pair
                && *next <= previous_lsn + 1
            {
                self.remove(&crate::wal::segment::file_name(*first))?;
                removed.0 += 1;
            }
        }
        if (*removed != (0, 0) || sidecars_removed)
            && let Err(e) = self.storage.sync_dir(&self.dir)
        {
            let error = Error::io("fsync directory", &self.dir, e);
            let mut log = self.log.lock();
            let last = log.written_lsn;
            self.poison(&mut log, &error, last);
            return Err(error);
        }
        Ok(())
    }

    /// Deletes the superseded snapshots `lsns`; but keeps the first one whose file can be
    /// reused (`snapshot::reuse`: nothing maps it) as `spare`, if the writer holds no spare
    /// yet. Returns how many it deleted or kept.
    fn retire_snapshots(&self, lsns: &[u64], spare: &mut Option<SpareSnapshot>) -> Result<usize> {
        let reuse = self.options.reuse_snapshot_files && self.snapshot_spare.lock().is_none();
        for &lsn in lsns {
            let name = snapshot::file_name(lsn);
            if reuse && spare.is_none() {
                *spare = snapshot::reuse::retire(
                    self.storage.as_ref(),
                    &self.dir,
                    &self.dir.join(&name),
                );
                if spare.is_some() {
                    continue;
                }
            }
            self.remove(&name)?;
        }
        Ok(lsns.len())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        self.storage
            .remove_file(&path)
            .map_err(|e| Error::io("remove", &path, e))
    }
}

impl Inner {
    /// Writes `read`'s state into `dest` as a new copy of this store.
    pub(crate) fn backup(
        &self,
        dest: &std::path::Path,
        read: &crate::txn::ReadTxn,
    ) -> Result<CheckpointReport> {
        let started = Instant::now();
        let storage = self.storage.as_ref();
        if storage
            .exists(dest)
            .map_err(|e| Error::io("stat", dest, e))?
        {
            if list(storage, dest)?.is_store() {
                return Err(Error::InvalidArgument(format!(
                    "backup destination {} already holds a store",
                    dest.display()
                )));
            }
        } else {
            storage
                .create_dir_all(dest)
                .map_err(|e| Error::io("create directory", dest, e))?;
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                storage
                    .sync_dir(parent)
                    .map_err(|e| Error::io("fsync directory", parent, e))?;
            }
        }
        let version = read.version();
        let lsn = version.lsn;
        if let Some(base) = &version.base {
            base.advise_full_scan();
        }
        let write = |version: &crate::state::Version| {
            self.long_write(Pacing::GiveWay, "walstore-backup", true, |foreground| {
                let target = snapshot::writer::Target {
                    storage,
                    dir: dest,
                    store_id: self.store_id,
                    lsn,
                    parity: self.options.snapshot_parity,
                };
                snapshot::writer::write_with(
                    target,
                    &mut |out| version.write_snapshot(out),
                    foreground,
                    &mut false,
                    None,
                )
            })
        };
        let mut written = write(version);
        // As a checkpoint does (P2 g): a damaged snapshot to copy from is rebuilt from its
        // sidecar, in memory only (the source store is not changed by a backup).
        if let Some(rebuilt) = rebuilt_base(self.storage.as_ref(), &written, version) {
            let mut healed = version.clone();
            healed.base = Some(Arc::new(rebuilt.snapshot));
            written = write(&healed);
        }
        let written = written?;
        crate::wal::segment::create(
            storage,
            dest,
            self.store_id,
            lsn + 1,
            self.options.segment_bytes,
        )?;
        Ok(CheckpointReport {
            lsn,
            entries: written.entries,
            bytes: written.bytes,
            written: true,
            segments_deleted: 0,
            snapshots_deleted: 0,
            base_rebuilt: None,
            base_quarantined: None,
            duration: started.elapsed(),
        })
    }
}

/// The background thread: prepares a spare segment when one is wanted, and runs a
/// checkpoint whenever one is requested.
pub(crate) fn background_loop(weak: &WeakInner) {
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let work = {
            let mut background = inner.background.lock();
            while !background.has_work() && !background.shutdown {
                inner.background_cond.wait(&mut background);
            }
            if background.shutdown {
                return;
            }
            background.take_work()
        };
        // A panic here (a bug) would end the thread silently, and no checkpoint or spare
        // would run again; the state it was changing may be half done. So it poisons
        // the store, as a failed write does, is reported like a failed checkpoint, and
        // ends the thread (on a poisoned store every later request would fail anyway).
        if !inner.run_work_contained(work, Pacing::GiveWay) {
            return;
        }
    }
}

impl Inner {
    /// [`Inner::run_work`], a panic (a bug) contained: the state it was changing may be
    /// half done, so it poisons the store, as a failed write does, and is reported like
    /// a failed checkpoint (`Store::last_automatic_checkpoint_error`). `false` if so.
    pub(crate) fn run_work_contained(&self, work: super::Work, pacing: Pacing) -> bool {
        if crate::util::unwound(|| self.run_work(work, pacing)).is_some() {
            return true;
        }
        let error = Error::Panicked("a checkpoint or spare segment the writer ran on its own");
        {
            let mut log = self.log.lock();
            let last = log.written_lsn;
            self.poison(&mut log, &error, last);
        }
        self.background.lock().last_error = Some(Arc::new(error));
        false
    }
}

/// P2 g: if writing from `version` failed with damage in its base snapshot (its blocks are
/// checked only when first read), that snapshot rebuilt from its parity sidecar.
fn rebuilt_base<T>(
    storage: &dyn crate::storage::Storage,
    written: &Result<T>,
    version: &crate::state::Version,
) -> Option<crate::recovery::repair::Rebuilt> {
    let (Err(Error::Corrupt { file, .. }), Some(base)) = (written, &version.base) else {
        return None;
    };
    if file.as_path() != base.path() {
        return None;
    }
    crate::recovery::repair::rebuild(storage, base.path(), base.lsn()).ok()
}
