//! The commit path: group commit into the active segment.
//!
//! 1. A committer frames its record under the log mutex (taking the next lsn) and queues it.
//! 2. If no leader is writing, it becomes the leader: it takes the whole queue, releases
//!    the mutex, writes the queue with one `pwrite`, and (if any queued commit asked for
//!    [`Durability::Immediate`]) issues one `fdatasync`. New commits queue up meanwhile:
//!    they form the next group.
//! 3. On success the leader re-takes the mutex, applies the group to the working version
//!    in lsn order, publishes it to readers, and wakes everyone. Readers therefore never
//!    see a transaction before it is durable.
//! 4. On failure the store is poisoned: no fsync is retried and nothing more is
//!    acknowledged until the store is reopened (PostgreSQL's fsyncgate lesson).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::MutexGuard;

use super::Inner;
use super::options::Durability;
use crate::error::{Error, Result};
use crate::model::op::Op;
use crate::state::Version;
use crate::wal::record;
use crate::wal::segment::{self, ActiveSegment};

/// The writer's side of the log, behind `Inner::log`.
#[derive(Debug)]
pub(crate) struct Log {
    /// The lsn the next commit takes.
    pub next_lsn: u64,
    /// Highest lsn written to the OS.
    pub written_lsn: u64,
    /// Highest lsn known durable (fdatasync'd).
    pub durable_lsn: u64,
    /// Framed records waiting for a leader.
    pub queue: Vec<u8>,
    /// Their transactions, in lsn order.
    pub queued: Vec<Queued>,
    /// Whether a leader is writing (and has taken `segment`).
    pub leader: bool,
    /// The segment being appended to (`None` while a leader writes).
    pub segment: Option<ActiveSegment>,
    /// The state after every applied transaction.
    pub working: Version,
    /// Set once a write or fsync failed.
    pub failure: Option<Failure>,
    /// WAL bytes written since the last checkpoint began.
    pub wal_bytes_since_checkpoint: u64,
    /// A reader's position in the WAL: `(segment first lsn, offset of the next record)`.
    pub tail: Option<(u64, u64)>,
    /// Start a new segment with the next group: a checkpoint just began, so the records
    /// after its snapshot start a segment of their own and an open reads only those.
    pub rotate_requested: bool,
    /// The store id a reader follows; `None` while the store it opened had no file yet.
    pub reader_store_id: Option<crate::header::StoreId>,
    /// Offset in the active segment up to which its bytes are known durable.
    pub synced_offset: u64,
}

/// How a leader writes one group.
#[derive(Debug, Clone, Copy)]
struct GroupPlan {
    /// The group's first lsn (a new segment is named after it).
    first_lsn: u64,
    /// Whether any of its commits asked for `Durability::Immediate`.
    sync: bool,
    /// Whether the active segment holds written but unsynced records.
    unsynced_before: bool,
    /// Offset up to which the active segment is known durable.
    synced_offset: u64,
    /// Start a new segment first (a checkpoint began).
    rotate: bool,
}

/// A queued transaction.
#[derive(Debug)]
pub(crate) struct Queued {
    pub lsn: u64,
    pub ops: Vec<Op>,
    pub sync: bool,
}

/// What failed, kept to answer the committers of the failed group.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub last_lsn: u64,
    pub op: &'static str,
    pub path: PathBuf,
    pub kind: FailureKind,
}

#[derive(Debug, Clone)]
pub(crate) enum FailureKind {
    Os(std::io::ErrorKind, Option<i32>),
    NoSpace,
    Gone(PathBuf),
    Other(String),
}

impl Failure {
    fn from_error(error: &Error, last_lsn: u64) -> Failure {
        let (op, path, kind) = match error {
            Error::Io { op, path, source } => (
                *op,
                path.clone(),
                FailureKind::Os(source.kind(), source.raw_os_error()),
            ),
            Error::NoSpace { path } => ("write", path.clone(), FailureKind::NoSpace),
            Error::StoreGone { dir } => ("commit", dir.clone(), FailureKind::Gone(dir.clone())),
            other => (
                "commit",
                PathBuf::new(),
                FailureKind::Other(other.to_string()),
            ),
        };
        Failure {
            last_lsn,
            op,
            path,
            kind,
        }
    }

    /// The error to give a committer of the failed group.
    fn to_error(&self) -> Error {
        match &self.kind {
            FailureKind::Os(_, Some(code)) => Error::io(
                self.op,
                &self.path,
                std::io::Error::from_raw_os_error(*code),
            ),
            FailureKind::Os(kind, None) => {
                Error::io(self.op, &self.path, std::io::Error::from(*kind))
            }
            FailureKind::NoSpace => Error::NoSpace {
                path: self.path.clone(),
            },
            FailureKind::Gone(dir) => Error::StoreGone { dir: dir.clone() },
            FailureKind::Other(message) => Error::Io {
                op: self.op,
                path: self.path.clone(),
                source: std::io::Error::other(message.clone()),
            },
        }
    }
}

impl Inner {
    /// Logs and applies one transaction; returns its lsn once it is as durable as asked.
    pub(crate) fn commit(&self, ops: Vec<Op>, durability: Durability) -> Result<u64> {
        let payload = postcard::to_allocvec(&ops)
            .map_err(|e| Error::Conversion(format!("encode transaction: {e}")))?;
        if payload.len() > record::PAYLOAD_BYTES_MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "transaction encodes to {} bytes, at most {} allowed",
                payload.len(),
                record::PAYLOAD_BYTES_MAX
            )));
        }
        let mut log = self.writer_log()?;
        if log.failure.is_some() {
            return Err(Error::Poisoned);
        }
        let lsn = log.next_lsn;
        log.next_lsn += 1;
        let durable_lsn = log.durable_lsn;
        record::encode_into(&mut log.queue, lsn, durable_lsn, &payload);
        let sync = durability == Durability::Immediate;
        log.queued.push(Queued { lsn, ops, sync });
        loop {
            if log.working.lsn >= lsn && (!sync || log.durable_lsn >= lsn) {
                return Ok(lsn);
            }
            if let Some(failure) = &log.failure {
                return Err(if lsn <= failure.last_lsn {
                    failure.to_error()
                } else {
                    Error::Poisoned
                });
            }
            if !log.leader {
                self.lead(&mut log);
                continue;
            }
            self.log_cond.wait(&mut log);
        }
    }

    /// Makes every written transaction durable.
    pub(crate) fn sync(&self) -> Result<()> {
        let mut log = self.writer_log()?;
        loop {
            if log.failure.is_some() {
                return Err(Error::Poisoned);
            }
            if !log.leader && log.queued.is_empty() {
                break;
            }
            if !log.leader {
                self.lead(&mut log);
                continue;
            }
            self.log_cond.wait(&mut log);
        }
        if log.durable_lsn >= log.written_lsn {
            return Ok(());
        }
        let target = log.written_lsn;
        let Some(segment) = log.segment.take() else {
            return Err(Error::Poisoned);
        };
        log.leader = true;
        let synced_offset = log.synced_offset;
        let result = MutexGuard::unlocked(&mut log, || {
            segment.file.sync_data().map_err(|e| {
                discard_unsynced(&segment, synced_offset);
                Error::io("fdatasync", &segment.path, e)
            })
        });
        let written_offset = segment.write_offset;
        log.segment = Some(segment);
        log.leader = false;
        match result {
            Ok(()) => {
                log.synced_offset = written_offset;
                log.durable_lsn = log.durable_lsn.max(target);
                self.log_cond.notify_all();
                Ok(())
            }
            Err(error) => {
                self.poison(&mut log, &error, target);
                Err(error)
            }
        }
    }

    fn writer_log(&self) -> Result<MutexGuard<'_, Log>> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(self.log.lock())
    }

    /// Writes (and syncs) the queued group. Called with the mutex held, as the leader.
    fn lead(&self, log: &mut MutexGuard<'_, Log>) {
        let batch = std::mem::take(&mut log.queue);
        let queued = std::mem::take(&mut log.queued);
        let (Some(first), Some(last)) =
            (queued.first().map(|q| q.lsn), queued.last().map(|q| q.lsn))
        else {
            return;
        };
        let Some(mut segment) = log.segment.take() else {
            return;
        };
        let sync = queued.iter().any(|q| q.sync);
        let unsynced_before = log.written_lsn > log.durable_lsn;
        let synced_offset = log.synced_offset;
        let rotate = std::mem::take(&mut log.rotate_requested);
        log.leader = true;
        let result = MutexGuard::unlocked(log, || {
            let plan = GroupPlan {
                first_lsn: first,
                sync,
                unsynced_before,
                synced_offset,
                rotate,
            };
            let written = self.write_group(&mut segment, &batch, &plan)?;
            self.publish_head(last);
            Ok(written)
        });
        log.leader = false;
        match result {
            Ok(new_segment) => {
                if new_segment.is_some() {
                    log.synced_offset = crate::header::HEADER_BYTES as u64;
                }
                log.segment = Some(new_segment.unwrap_or(segment));
                log.written_lsn = last;
                if sync {
                    log.durable_lsn = last;
                    log.synced_offset = log.segment.as_ref().map_or(0, |s| s.write_offset);
                }
                log.wal_bytes_since_checkpoint += batch.len() as u64;
                if let Err(error) = apply(&mut log.working, &queued) {
                    self.poison(log, &error, last);
                    return;
                }
                *self.published.write() = Arc::new(log.working.clone());
                // Searches filter removed documents until a checkpoint drops them, and
                // each query term pays a seek per removed id: bound that work too.
                if self.options.checkpoint_wal_bytes > 0
                    && (log.wal_bytes_since_checkpoint >= self.options.checkpoint_wal_bytes
                        || log.working.fts.removed.len() >= FTS_REMOVED_CHECKPOINT
                        || fts_memory_is_due(&log.working))
                {
                    self.request_checkpoint();
                }
            }
            Err(error) => {
                log.segment = Some(segment);
                self.poison(log, &error, last);
            }
        }
        self.log_cond.notify_all();
    }

    /// Tells live readers in other processes how far they may read (`head.rs`). A hint:
    /// a failure only delays them, so it is not an error of the commit.
    fn publish_head(&self, lsn: u64) {
        if let Some(head) = &self.head {
            let _ = head.write_all_at(&super::head::encode(self.store_id, lsn), 0);
        }
    }

    /// Rotates if needed, writes, syncs, and checks the directory is still ours.
    /// Returns the new segment after a rotation.
    fn write_group(
        &self,
        segment: &mut ActiveSegment,
        batch: &[u8],
        plan: &GroupPlan,
    ) -> Result<Option<ActiveSegment>> {
        let GroupPlan {
            first_lsn,
            sync,
            unsynced_before,
            synced_offset,
            rotate,
        } = *plan;
        let mut rotated = None;
        let full = rotate || segment.write_offset + batch.len() as u64 > self.options.segment_bytes;
        if full && segment.write_offset > crate::header::HEADER_BYTES as u64 {
            // A segment is durable before the next one exists (recovery case 7).
            if unsynced_before {
                segment.file.sync_data().map_err(|e| {
                    discard_unsynced(segment, synced_offset);
                    Error::io("fdatasync", &segment.path, e)
                })?;
            }
            rotated = Some(segment::create(
                self.storage.as_ref(),
                &self.dir,
                self.store_id,
                first_lsn,
                self.options.segment_bytes,
            )?);
        }
        let target_synced = match rotated {
            Some(_) => crate::header::HEADER_BYTES as u64,
            None => synced_offset,
        };
        let target = rotated.as_mut().unwrap_or(segment);
        let written = target
            .file
            .write_all_at(batch, target.write_offset)
            .map_err(|e| Error::io("write", &target.path, e))
            .and_then(|()| {
                target.write_offset += batch.len() as u64;
                match sync {
                    true => target
                        .file
                        .sync_data()
                        .map_err(|e| Error::io("fdatasync", &target.path, e)),
                    false => Ok(()),
                }
            });
        if let Err(error) = written {
            discard_unsynced(target, target_synced);
            return Err(error);
        }
        self.check_not_gone()?;
        Ok(rotated)
    }

    /// Fails if the store directory was deleted or replaced under us. One `stat` of the
    /// directory path: an `fstat` of the segment after the write would cost a journal
    /// round trip on ext4 (measured: +60 µs per commit), and a deleted directory already
    /// fails the `stat`.
    fn check_not_gone(&self) -> Result<()> {
        let identity = self.storage.dir_identity(&self.dir).ok();
        if identity.is_none() || identity != self.dir_identity {
            return Err(Error::StoreGone {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    pub(crate) fn poison(&self, log: &mut Log, error: &Error, last_lsn: u64) {
        log.failure = Some(Failure::from_error(error, last_lsn));
        self.poisoned.store(true, Ordering::Release);
        self.log_cond.notify_all();
    }
}

/// After a failed write or fdatasync, cuts the segment back to what is known durable (best
/// effort: the store is poisoned anyway). The kernel may keep the failed bytes in the page
/// cache, marked clean, and never write them (fsyncgate): a store reopened in the same
/// boot would read them, replay transactions that are not durable, and append records
/// whose `durable_lsn` claims they are, which a power loss then turns into corruption.
/// Only never-acknowledged bytes are cut: an `Immediate` commit is acknowledged only after
/// an fdatasync that covered it succeeded.
fn discard_unsynced(segment: &ActiveSegment, synced_offset: u64) {
    if synced_offset < segment.write_offset {
        let _ = segment.file.set_len(synced_offset);
    }
}

/// Removed FTS documents (since the snapshot) that request a checkpoint.
const FTS_REMOVED_CHECKPOINT: usize = 4096;
/// Memory of in-memory FTS segments that requests a checkpoint (which moves them into
/// the mapped snapshot), bounding an index build's resident memory.
const FTS_SEGMENT_BYTES_CHECKPOINT: usize = 8 * 1024 * 1024;

/// Whether the in-memory FTS segments are due for a checkpoint: over
/// [`FTS_SEGMENT_BYTES_CHECKPOINT`] and over a quarter of the snapshot, so a long build
/// rewrites the snapshot O(log n) times, not O(n).
fn fts_memory_is_due(working: &Version) -> bool {
    let snapshot_bytes = working.base.as_ref().map_or(0, |s| s.file_bytes());
    let bound = (FTS_SEGMENT_BYTES_CHECKPOINT as u64).max(snapshot_bytes / 4);
    working.fts.heap_bytes() as u64 >= bound
}

/// Applies a group to the working version in lsn order.
fn apply(working: &mut Version, queued: &[Queued]) -> Result<()> {
    for txn in queued {
        debug_assert_eq!(txn.lsn, working.lsn + 1, "lsns apply densely");
        for op in &txn.ops {
            op.apply(working)?;
        }
        working.lsn = txn.lsn;
    }
    working.seal();
    Ok(())
}
