//! The commit path: group commit into the active segment.
//!
//! 1. A committer frames its record under the log mutex (taking the next lsn) and queues
//!    it with a [`Waiter`] of its own.
//! 2. If no leader is active, it becomes the leader. Otherwise it waits until the leader
//!    of its group gives it the outcome, or hands it the leadership (below): yielding
//!    the CPU for up to 250 µs, then parked. Waking a parked thread costs 30–45 µs on a
//!    VM, and a group's cycle is about one `fdatasync`, so most waits end while yielding
//!    (measured: 4 threads ×2.37 → ×2.73 one thread's commits/s, 16 threads ×5.89 →
//!    ×8.21); the price is CPU spent yielding while waiting.
//! 3. The leader first *gathers*: if fewer commits are queued than took part in the last
//!    cycle (the previous group plus those queued while it was synced), it waits for them,
//!    at most half a recent `fdatasync`: yielding the CPU meanwhile if that deadline is
//!    at most 250 µs away (a timed park overshot it by about 90 µs), parked otherwise.
//!    Without this, committers released by one sync queue up while the next group is
//!    being synced, and groups alternate between two halves of the committers: each sync
//!    would cover half of them.
//! 4. It takes the whole queue, releases the mutex, writes the group with one `pwrite`,
//!    and (if any queued commit asked for [`Durability::Immediate`]) issues one
//!    `fdatasync`. Meanwhile it applies the group to a private copy of the working version
//!    (O(1) to copy; on another thread for a large group, so the apply overlaps the
//!    `fdatasync`; a group of many blind writes as one sorted run, built on a long-lived
//!    helper, `bulk.rs`, `helper.rs`). New commits queue up meanwhile: they form the next
//!    group.
//! 5. On success the leader re-takes the mutex, installs the applied version, publishes it
//!    to readers, and wakes its group's committers one by one (a targeted unpark, no
//!    thundering herd), first handing the leadership to the first commit queued meanwhile.
//!    Readers therefore never see a transaction before it is durable.
//! 6. On failure the store is poisoned: no fsync is retried and nothing more is
//!    acknowledged until the store is reopened (PostgreSQL's fsyncgate lesson).
//!
//! One group is in flight at a time: two concurrent `fdatasync` calls on one file could
//! split a write-back error between them (the kernel reports it once per open file), so
//! one could succeed without its bytes being durable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use super::helper::{Helpers, Priority};
use super::options::Durability;
use super::{Inner, bulk};
use crate::error::{Error, Result};
use crate::model::encoded::Payload;
use crate::model::op::KvState;
use crate::recovery::kv_batch;
use crate::state::Version;
use crate::state::{self, ReplayBatch};
use crate::util::{catching, unwound};
use crate::wal::record;
use crate::wal::segment::ActiveSegment;

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
    /// The buffer of the last group written, emptied, to be the next `queue`: a large
    /// group then frames its record into memory already faulted in, instead of a fresh
    /// allocation (at most [`KEPT_BUFFER_BYTES_MAX`] of it is kept).
    pub spare_queue: Vec<u8>,
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
    /// Commits that took part in the last cycle: the last group and those queued while it
    /// was written. The next leader waits (briefly) for that many.
    pub concurrency: usize,
    /// Whether the leader waits (yielding or parked) for `gather_target` queued commits.
    pub gathering: bool,
    /// How many queued commits the gathering leader waits for.
    pub gather_target: usize,
    /// A `Store::sync` waits for the next group to be synced, whatever its commits asked.
    pub sync_requested: bool,
    /// Recent time to write and sync a group (moving average): bounds the gathering.
    pub sync_time: Duration,
    /// Bumped whenever something other than a group changes `working` (a checkpoint's
    /// freeze, thaw or install), so a leader knows whether its applied copy still holds.
    pub working_gen: u64,
}

impl Log {
    /// A writer's log after recovery: `lsn` applied, written and durable.
    pub(crate) fn new(
        lsn: u64,
        segment: Option<ActiveSegment>,
        working: Version,
        tail: Option<(u64, u64)>,
        reader_store_id: Option<crate::header::StoreId>,
        synced_offset: u64,
    ) -> Log {
        Log {
            next_lsn: lsn + 1,
            written_lsn: lsn,
            durable_lsn: lsn,
            queue: Vec::new(),
            spare_queue: Vec::new(),
            queued: Vec::new(),
            leader: false,
            segment,
            working,
            failure: None,
            wal_bytes_since_checkpoint: 0,
            tail,
            rotate_requested: false,
            reader_store_id,
            synced_offset,
            concurrency: 1,
            gathering: false,
            gather_target: 0,
            sync_requested: false,
            sync_time: INITIAL_SYNC_TIME,
            working_gen: 0,
        }
    }
}

/// The sync time assumed before any was measured.
const INITIAL_SYNC_TIME: Duration = Duration::from_micros(200);
/// Bounds on how long a leader waits for the commits of the last cycle.
const GATHER_MIN: Duration = Duration::from_micros(20);
const GATHER_MAX: Duration = Duration::from_millis(2);
/// The largest buffer kept for reuse, a group's (`Log::spare_queue`) or a transaction's
/// (`Inner::payload_buffer`): a segment's default size, so a store that once committed a
/// huge transaction does not keep its memory.
const KEPT_BUFFER_BYTES_MAX: usize = 4 * 1024 * 1024;
/// A committed payload buffer this large (up to [`KEPT_BUFFER_BYTES_MAX`]) is kept for
/// the next write transaction (`Inner::payload_buffer`): a large transaction then encodes
/// into memory already faulted in, instead of growing a fresh buffer by doubling (10,000
/// fingerprints: 0.9 MB, eleven reallocations). A smaller one costs little to allocate.
const KEPT_PAYLOAD_BYTES_MIN: usize = 64 * 1024;
/// A group with at least this many operations is applied on a second thread while the
/// leader writes and syncs it.
const PARALLEL_APPLY_OPS: usize = 512;
/// A group with fewer ops but at least this much work ([`apply_weight`]: postings of
/// indexed documents, about ten 5 KB documents) is applied on other threads too. One
/// document is not: applying it (~20 µs) costs about what starting a thread does.
const PARALLEL_APPLY_WEIGHT: usize = 8192;

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
    /// The transaction, as its record's payload.
    pub payload: Payload,
    pub sync: bool,
    pub waiter: Arc<Waiter>,
}

/// How a parked committer learns what became of its commit: the leader of its group sets
/// the state under the log mutex, then unparks the thread.
#[derive(Debug)]
pub(crate) struct Waiter {
    thread: Thread,
    state: AtomicU8,
}

/// How long a committer waits by yielding before it parks: a parked thread's wake-up
/// costs 30–45 µs on a VM (an IPI to a halted vCPU).
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(250);

/// Queued, not yet decided.
const WAITING: u8 = 0;
/// Written (and synced if asked), applied and published.
const DONE: u8 = 1;
/// Failed: the store is poisoned.
const FAILED: u8 = 2;
/// Handed the leadership: lead the queue.
const LEAD: u8 = 3;

impl Waiter {
    fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            thread: std::thread::current(),
            state: AtomicU8::new(WAITING),
        })
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }

    /// Parks until the state is no longer `WAITING`, and returns it.
    fn wait(&self) -> u8 {
        let spin_until = Instant::now() + SPIN_BEFORE_PARK;
        while Instant::now() < spin_until {
            let state = self.state.load(Ordering::Acquire);
            if state != WAITING {
                return state;
            }
            std::thread::yield_now();
        }
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state != WAITING {
                return state;
            }
            std::thread::park();
        }
    }

    /// [`Waiter::wait`], until `deadline` at the latest (then returns `WAITING`). Yields
    /// the CPU until then, as [`Waiter::wait`] does at first, if the deadline is within
    /// [`SPIN_BEFORE_PARK`]: a timed park overshot a gathering leader's deadline of about
    /// 70 µs by about 90 µs (timer slack and the wake-up), most cycles of 4 threads.
    fn wait_until(&self, deadline: Instant) -> u8 {
        let spins = deadline.saturating_duration_since(Instant::now()) <= SPIN_BEFORE_PARK;
        loop {
            let state = self.state.load(Ordering::Acquire);
            let now = Instant::now();
            if state != WAITING || now >= deadline {
                return state;
            }
            match spins {
                true => std::thread::yield_now(),
                false => std::thread::park_timeout(deadline - now),
            }
        }
    }

    fn wake(&self) {
        if self.thread.id() != std::thread::current().id() {
            self.thread.unpark();
        }
    }
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
    Panicked(&'static str),
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
            Error::Panicked(what) => ("commit", PathBuf::new(), FailureKind::Panicked(what)),
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
    pub(crate) fn to_error(&self) -> Error {
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
            FailureKind::Panicked(what) => Error::Panicked(what),
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
    pub(crate) fn commit(&self, payload: Payload, durability: Durability) -> Result<u64> {
        if payload.bytes().len() > record::PAYLOAD_BYTES_MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "transaction encodes to {} bytes, at most {} allowed",
                payload.bytes().len(),
                record::PAYLOAD_BYTES_MAX
            )));
        }
        let waiter = Waiter::new();
        let mut log = self.writer_log()?;
        if log.failure.is_some() {
            return Err(Error::Poisoned);
        }
        let lsn = log.next_lsn;
        log.next_lsn += 1;
        let durable_lsn = log.durable_lsn;
        record::encode_into(&mut log.queue, lsn, durable_lsn, payload.bytes());
        let sync = durability == Durability::Immediate;
        log.queued.push(Queued {
            lsn,
            payload,
            sync,
            waiter: Arc::clone(&waiter),
        });
        if log.leader && log.gathering && log.queued.len() >= log.gather_target {
            // The group the leader is gathering is complete: lead it from this thread,
            // which is running already (the gathering one is waiting).
            log.gathering = false;
            self.lead(log);
        } else if !log.leader {
            log.leader = true;
            self.begin_group(log, &waiter);
        } else {
            drop(log);
            if waiter.wait() == LEAD {
                self.begin_group(self.log.lock(), &waiter);
            }
        }
        // Every group a leader takes holds the leader's own commit, so the state is final.
        match waiter.wait() {
            DONE => Ok(lsn),
            _ => {
                let log = self.log.lock();
                Err(match &log.failure {
                    Some(failure) if lsn <= failure.last_lsn => failure.to_error(),
                    _ => Error::Poisoned,
                })
            }
        }
    }

    /// Makes every written transaction durable.
    pub(crate) fn sync(&self) -> Result<()> {
        let mut log = self.writer_log()?;
        let target = log.next_lsn - 1;
        loop {
            if log.failure.is_some() {
                return Err(Error::Poisoned);
            }
            if log.durable_lsn >= target {
                return Ok(());
            }
            if !log.leader {
                break;
            }
            // The leader's group syncs, and its end wakes us.
            log.sync_requested = true;
            self.log_cond.wait(&mut log);
        }
        // No leader, so nothing is queued: every lsn up to `target` is written.
        let target = log.written_lsn;
        let Some(segment) = log.segment.take() else {
            return Err(Error::Poisoned);
        };
        log.leader = true;
        let synced_offset = log.synced_offset;
        let result = MutexGuard::unlocked(&mut log, || {
            // A panic must not leave the leadership taken for ever (see `lead`).
            catching("syncing the log", || {
                segment.file.sync_data().map_err(|e| {
                    discard_unsynced(&segment, synced_offset);
                    Error::io("fdatasync", &segment.path, e)
                })
            })
        });
        let written_offset = segment.write_offset;
        log.segment = Some(segment);
        let result = match result {
            Ok(()) => {
                self.sync_activity.record();
                log.synced_offset = written_offset;
                log.durable_lsn = log.durable_lsn.max(target);
                Ok(())
            }
            Err(error) => {
                self.poison(&mut log, &error, target);
                Err(error)
            }
        };
        let next = self.release(&mut log);
        drop(log);
        wake_all(next.as_ref(), &[]);
        result
    }

    fn writer_log(&self) -> Result<MutexGuard<'_, Log>> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(self.log.lock())
    }

    /// Ends a leadership: hands it to the first commit queued meanwhile (returned, to be
    /// woken once the mutex is released), or fails every queued commit if the store is
    /// poisoned, or clears `leader`. Wakes `sync` and checkpoints waiting for the leader.
    fn release(&self, log: &mut Log) -> Option<Arc<Waiter>> {
        self.log_cond.notify_all();
        if log.failure.is_some() {
            log.queue.clear();
            let failed = std::mem::take(&mut log.queued);
            for queued in &failed {
                queued.waiter.set(FAILED);
            }
            log.leader = false;
            // Woken here: nothing else would, and the mutex is only taken to read the failure.
            for queued in &failed {
                queued.waiter.wake();
            }
            return None;
        }
        match log.queued.first() {
            Some(next) => {
                next.waiter.set(LEAD);
                Some(Arc::clone(&next.waiter))
            }
            None => {
                log.leader = false;
                None
            }
        }
    }

    /// Starts the next group as its leader: at once, or after gathering (see the module
    /// docs, step 3) as many commits as took part in the last cycle. The gathering leader
    /// waits (`Waiter::wait_until`); the commit that completes the group leads it instead
    /// (it is running already), and the gathering one leads what it has if none did by
    /// the deadline. A gathering leader whose group another commit took keeps yielding
    /// until its deadline, then waits as any committer does: CPU spent beside the group's
    /// sync, where a timed park slept.
    fn begin_group(&self, mut log: MutexGuard<'_, Log>, waiter: &Waiter) {
        // Leadership handed over is taken: the state now tells how the commit ends.
        waiter.set(WAITING);
        let target = log.concurrency;
        let gather =
            log.failure.is_none() && log.queued.len() < target && log.queued.iter().any(|q| q.sync);
        if !gather {
            self.lead(log);
            return;
        }
        let deadline = Instant::now() + (log.sync_time / 2).clamp(GATHER_MIN, GATHER_MAX);
        log.gathering = true;
        log.gather_target = target;
        drop(log);
        if waiter.wait_until(deadline) != WAITING {
            return;
        }
        let mut log = self.log.lock();
        if log.gathering {
            log.gathering = false;
            self.lead(log);
        } else {
            // Another commit completed the group and leads it, ours included.
            drop(log);
            waiter.wait();
        }
    }

    /// Leads one group: writes (and syncs) and applies it, publishes, wakes its
    /// committers and hands the leadership on. Called with `leader` set for this thread.
    fn lead(&self, mut log: MutexGuard<'_, Log>) {
        let first_last = (
            log.queued.first().map(|q| q.lsn),
            log.queued.last().map(|q| q.lsn),
        );
        let segment = match (log.failure.is_none(), first_last) {
            (true, (Some(_), Some(_))) => log.segment.take(),
            _ => None,
        };
        let (Some(mut segment), (Some(first), Some(last))) = (segment, first_last) else {
            // Poisoned, or nothing queued, or (never expected) no segment to write to.
            if log.failure.is_none() && !log.queued.is_empty() {
                let last = log.next_lsn - 1;
                self.poison(&mut log, &Error::Poisoned, last);
            }
            let next = self.release(&mut log);
            drop(log);
            wake_all(next.as_ref(), &[]);
            return;
        };
        let spare_queue = std::mem::take(&mut log.spare_queue);
        let mut batch = std::mem::replace(&mut log.queue, spare_queue);
        // Shared with the helper that builds a large group's run (`helper.rs`).
        let mut queued = Arc::new(std::mem::take(&mut log.queued));
        let sync = queued.iter().any(|q| q.sync) || std::mem::take(&mut log.sync_requested);
        let plan = GroupPlan {
            first_lsn: first,
            sync,
            unsynced_before: log.written_lsn > log.durable_lsn,
            synced_offset: log.synced_offset,
            rotate: std::mem::take(&mut log.rotate_requested),
        };
        let mut working = log.working.clone();
        let generation = log.working_gen;
        let (written, applied, took) = MutexGuard::unlocked(&mut log, || {
            // A panic (a bug) would leave the leadership taken for ever, and every other
            // committer, `sync` and the store's drop waiting for it: it fails the group
            // and poisons the store instead, as a failed write does.
            unwound(|| {
                let (written, applied, took) =
                    self.write_and_apply(&mut segment, &batch, &plan, &mut working, &queued);
                if written.is_ok() {
                    self.publish_head(last);
                }
                (written, applied, took)
            })
            .unwrap_or_else(|| {
                let panicked = || Error::Panicked("writing a commit group");
                (Err(panicked()), Err(panicked()), Duration::ZERO)
            })
        });
        if sync {
            log.sync_time = (log.sync_time * 3 + took) / 4;
        }
        let mut replaced = None;
        let outcome = match written {
            Ok(new_segment) => {
                if new_segment.is_some() {
                    log.synced_offset = crate::header::HEADER_BYTES as u64;
                }
                let active = new_segment.unwrap_or(segment);
                self.want_spare_for(&active);
                log.segment = Some(active);
                log.written_lsn = last;
                if sync {
                    log.durable_lsn = last;
                    log.synced_offset = log.segment.as_ref().map_or(0, |s| s.write_offset);
                }
                log.wal_bytes_since_checkpoint += batch.len() as u64;
                // A checkpoint that froze or installed meanwhile changed `working` under
                // the copy: apply the group again, to the current one.
                let applied = match applied {
                    Ok(()) if log.working_gen == generation => {
                        log.working = working;
                        Ok(())
                    }
                    // Under the mutex: a panic would leave the leadership taken for ever,
                    // so it fails the group (and poisons) instead.
                    Ok(()) => catching(APPLYING, || {
                        match bulk::blind_ops(&queued) >= bulk::RUN_OPS {
                            true => bulk::apply_as_run(&mut log.working, &queued, || None),
                            false => apply(&mut log.working, &queued),
                        }
                    }),
                    Err(error) => Err(error),
                };
                match applied {
                    Ok(()) => {
                        let version = Arc::new(log.working.clone());
                        replaced = Some(std::mem::replace(&mut *self.published.write(), version));
                        // Searches filter removed documents until a checkpoint drops
                        // them, and each query term pays a seek per removed id: bound
                        // that work too, and the memory of in-memory segments.
                        if self.options.checkpoint_wal_bytes > 0
                            && (log.wal_bytes_since_checkpoint >= self.options.checkpoint_wal_bytes
                                || fts_removals_are_due(&log.working)
                                || fts_memory_is_due(&log.working))
                        {
                            self.request_checkpoint();
                        }
                        DONE
                    }
                    Err(error) => {
                        self.poison(&mut log, &error, last);
                        FAILED
                    }
                }
            }
            Err(error) => {
                log.segment = Some(segment);
                self.poison(&mut log, &error, last);
                FAILED
            }
        };
        if batch.capacity() <= KEPT_BUFFER_BYTES_MAX {
            batch.clear();
            log.spare_queue = batch;
        }
        // The helper dropped its share before it reported.
        if let Some(queued) = Arc::get_mut(&mut queued) {
            self.keep_payload_buffer(queued);
        }
        for member in queued.iter() {
            member.waiter.set(outcome);
        }
        log.concurrency = queued.len() + log.queued.len();
        let next = self.release(&mut log);
        drop(log);
        wake_all(next.as_ref(), &queued);
        // The group's operations, and the version it replaced (if no reader holds it), are
        // freed after its committers were woken; a large group's on a helper.
        let garbage = (queued, replaced);
        if garbage.0.iter().map(|q| q.payload.count).sum::<usize>() >= PARALLEL_APPLY_OPS {
            // Should no helper run, the job and the garbage are dropped here.
            let _ = (self.helpers.merge).submit(Box::new(move || drop(garbage)), Priority::Any);
        }
    }

    /// Writes (and syncs) the group and applies it to `working`: on a second thread for a
    /// large synced group, so the apply overlaps the `fdatasync`. Returns how long the
    /// write and sync took.
    fn write_and_apply(
        &self,
        segment: &mut ActiveSegment,
        batch: &[u8],
        plan: &GroupPlan,
        working: &mut Version,
        group: &Arc<Vec<Queued>>,
    ) -> (Result<Option<ActiveSegment>>, Result<()>, Duration) {
        let queued = group.as_slice();
        let timed_write = |segment: &mut ActiveSegment| {
            let started = Instant::now();
            let written = self.write_group(segment, batch, plan);
            (written, started.elapsed())
        };
        // Many blind ops: one sorted run (`bulk.rs`).
        if bulk::blind_ops(queued) >= bulk::RUN_OPS {
            return write_and_apply_run(&self.helpers, timed_write, segment, plan, working, group);
        }
        let ops: usize = queued.iter().map(|q| q.payload.count).sum();
        // Many ops, or few heavy ones (indexed documents): applied on other threads.
        if plan.sync && (ops >= PARALLEL_APPLY_OPS || apply_weight(queued) >= PARALLEL_APPLY_WEIGHT)
        {
            let parallel = std::thread::scope(|scope| {
                let (sender, receiver) = std::sync::mpsc::sync_channel(PIPELINE_CHUNKS);
                let working = &mut *working;
                let spawn = |name: &str| std::thread::Builder::new().name(name.into());
                let inserter = spawn("walstore-apply")
                    .spawn_scoped(scope, move || insert_prepared(working, queued, &receiver))
                    .ok()?;
                // Should this spawn fail, the inserter applies everything itself.
                let _ =
                    spawn("walstore-prepare").spawn_scoped(scope, move || prepare(queued, &sender));
                let (written, took) = timed_write(segment);
                let applied = inserter.join().unwrap_or_else(|_| Err(apply_panicked()));
                Some((written, applied, took))
            });
            if let Some(done) = parallel {
                return done;
            }
        }
        let (written, took) = timed_write(segment);
        let applied = match written {
            // A panic would leave the leadership taken for ever: it fails the group.
            Ok(_) => catching(APPLYING, || apply(working, queued)),
            Err(_) => Ok(()),
        };
        (written, applied, took)
    }

    /// Keeps the largest payload buffer of a group (in range: [`KEPT_PAYLOAD_BYTES_MIN`]
    /// to [`KEPT_BUFFER_BYTES_MAX`]) for the next write transaction, if none is kept.
    /// Called once nothing reads the group's payloads any more (written, applied, or
    /// failed: the memory is reusable either way). Before the committers are woken, so
    /// that a thread committing large transactions back to back finds it.
    fn keep_payload_buffer(&self, queued: &mut [Queued]) {
        let in_range = |q: &&mut Queued| {
            (KEPT_PAYLOAD_BYTES_MIN..=KEPT_BUFFER_BYTES_MAX).contains(&q.payload.capacity())
        };
        let Some(largest) = queued
            .iter_mut()
            .filter(in_range)
            .max_by_key(|q| q.payload.capacity())
        else {
            return;
        };
        if let Some(mut kept) = self.payload_buffer.try_lock()
            && kept.capacity() < KEPT_PAYLOAD_BYTES_MIN
        {
            *kept = largest.payload.take_buffer();
        }
    }

    /// Tells live readers in other processes how far they may read (`head.rs`). A hint:
    /// a failure only delays them, so it is not an error of the commit.
    fn publish_head(&self, lsn: u64) {
        if let Some(head) = &self.head {
            let live = super::head::Head::live(self.store_id, lsn).encode();
            let _ = head.write_all_at(live.as_bytes(), 0);
        }
    }

    /// At a clean close, once everything written is synced and no background work runs:
    /// rewrites `HEAD` as closed at the durable lsn, with the stamp of the segment as
    /// left (head.rs), as the writer's last write. Not on a poisoned store, nor with a
    /// group in flight or anything unsynced, nor if the segment cannot be stamped.
    pub(crate) fn publish_closed(&self) {
        let log = self.log.lock();
        if log.failure.is_some() || log.leader || log.written_lsn != log.durable_lsn {
            return;
        }
        let Some(stamp) = log.segment.as_ref().and_then(|s| s.file.stamp().ok()) else {
            return;
        };
        if let Some(head) = &self.head {
            let closed = super::head::Head {
                store_id: self.store_id,
                lsn: log.durable_lsn,
                closed: Some(stamp),
            };
            let _ = head.write_all_at(closed.encode().as_bytes(), 0);
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
            let mut next = self.next_segment(first_lsn)?;
            segment.pass_direct_buffer(&mut next);
            rotated = Some(next);
        }
        let target_synced = match rotated {
            Some(_) => crate::header::HEADER_BYTES as u64,
            None => synced_offset,
        };
        let target = rotated.as_mut().unwrap_or(segment);
        let direct = sync && self.options.direct_io;
        let written = target
            .append(self.storage.as_ref(), batch, direct)
            .map_err(|e| Error::io("write", &target.path, e))
            .and_then(|()| match sync {
                true => target
                    .file
                    .sync_data()
                    .map_err(|e| Error::io("fdatasync", &target.path, e)),
                false => Ok(()),
            });
        if let Err(error) = written {
            discard_unsynced(target, target_synced);
            return Err(error);
        }
        if sync {
            self.sync_activity.record();
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

/// [`Inner::write_and_apply`] for a group of many blind ops: applied as one sorted run,
/// built on a helper if the group is synced (and the stack merged down on another, when
/// full), so both overlap the write and `fdatasync` (`helper.rs`).
fn write_and_apply_run(
    helpers: &Helpers,
    timed_write: impl Fn(&mut ActiveSegment) -> (Result<Option<ActiveSegment>>, Duration),
    segment: &mut ActiveSegment,
    plan: &GroupPlan,
    working: &mut Version,
    group: &Arc<Vec<Queued>>,
) -> (Result<Option<ActiveSegment>>, Result<()>, Duration) {
    if !plan.sync {
        let (written, took) = timed_write(segment);
        let applied = match written {
            Ok(_) => catching(APPLYING, || bulk::apply_as_run(working, group, || None)),
            Err(_) => Ok(()),
        };
        return (written, applied, took);
    }
    // Merging the stack down (when full) and building the run are independent. A merge
    // that panicked or could not be handed over is done by the run's builder instead.
    let merged = bulk::merge_room(working, group).and_then(|room| {
        let mut below = working.stack.clone();
        let (sender, receiver) = mpsc::sync_channel(1);
        let merge = move || {
            state::normalize(&mut below, room);
            let _ = sender.send(below);
        };
        helpers
            .merge
            .submit(Box::new(merge), Priority::OfCaller)
            .ok()
            .map(|()| receiver)
    });
    let (sender, receiver) = mpsc::sync_channel(1);
    let mut owned = std::mem::take(working);
    let shared = Arc::clone(group);
    let build = move || {
        let merged_below = move || merged.and_then(|receiver| receiver.recv().ok());
        let applied = catching(APPLYING, || {
            bulk::apply_as_run(&mut owned, &shared, merged_below)
        });
        // Before reporting: the leader then holds the group alone.
        drop(shared);
        let _ = sender.send((owned, applied));
    };
    let (written, took) = match helpers.build.submit(Box::new(build), Priority::OfCaller) {
        Ok(()) => timed_write(segment),
        // No helper thread: built here, before the write.
        Err(build) => {
            build();
            timed_write(segment)
        }
    };
    let (version, applied) = receiver
        .recv()
        .unwrap_or_else(|_| (Version::default(), Err(apply_panicked())));
    *working = version;
    (written, applied, took)
}

/// After a failed write or fdatasync, cuts the segment back to what is known durable (best
/// effort: the store is poisoned anyway). The kernel may keep the failed bytes in the page
/// cache, marked clean, and never write them (fsyncgate): a store reopened in the same
/// boot would read them, replay transactions that are not durable, and append records
/// whose `durable_lsn` claims they are, which a power loss then turns into corruption.
/// Only never-acknowledged bytes are cut: an `Immediate` commit is acknowledged only after
/// an fdatasync that covered it succeeded.
pub(super) fn discard_unsynced(segment: &ActiveSegment, synced_offset: u64) {
    if synced_offset < segment.write_offset {
        let _ = segment.file.set_len(synced_offset);
    }
}

/// Removed FTS documents (since the snapshot) that request a checkpoint, at least.
const FTS_REMOVED_CHECKPOINT: usize = 4096;

/// Whether enough FTS documents were removed since the snapshot to rewrite its lists:
/// [`FTS_REMOVED_CHECKPOINT`] or an eighth of the snapshot's documents, whichever is more
/// (so removing many documents costs O(log n) rewrites, not one per 4096).
fn fts_removals_are_due(working: &Version) -> bool {
    let docs = working
        .base
        .as_ref()
        .map_or(0, |s| s.section_count(crate::model::keys::Tag::FtsDoc));
    let bound = (FTS_REMOVED_CHECKPOINT as u64).max(docs / 8);
    working.fts.removed.len() as u64 >= bound
}
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

/// One step of a group's apply, prepared on another thread (`prepare`).
enum Step {
    /// Set (or delete) a key: what the op's `apply` does, computed without the state.
    Set(Vec<u8>, Option<Vec<u8>>),
    /// Apply FTS op `.1` that transaction `.0` kept (`Payload::fts_ops`).
    FtsOp(usize, usize),
    /// Transaction `.0` is fully applied.
    End(usize),
}

/// Steps per chunk sent from `prepare` to `insert_prepared`.
const PIPELINE_STEPS: usize = 256;
/// Chunks in flight between them.
const PIPELINE_CHUNKS: usize = 16;

/// Turns the group's ops into steps (keys and encoded values built here, beside the
/// inserting thread). Stops early if the inserter is gone (it failed).
fn prepare(queued: &[Queued], sender: &std::sync::mpsc::SyncSender<Vec<Step>>) {
    let mut chunk = Vec::with_capacity(PIPELINE_STEPS);
    let mut changes = ReplayBatch::default();
    let send_if_full = |chunk: &mut Vec<Step>| {
        if chunk.len() < PIPELINE_STEPS {
            return true;
        }
        let full = std::mem::replace(chunk, Vec::with_capacity(PIPELINE_STEPS));
        sender.send(full).is_ok()
    };
    for (t, txn) in queued.iter().enumerate() {
        changes.clear();
        // Blind writes from the bytes, then the FTS ops the transaction kept (as
        // `apply_txn` does). Bytes this decoder does not accept: the inserting side
        // applies this transaction and the rest itself (`apply`, which reports errors).
        if !kv_batch::decode_blind_into(txn.payload.bytes(), &mut changes) {
            break;
        }
        for (key, value) in changes.changes() {
            chunk.push(Step::Set(key.to_vec(), value.map(<[u8]>::to_vec)));
            if !send_if_full(&mut chunk) {
                return;
            }
        }
        for o in 0..txn.payload.fts_ops.len() {
            chunk.push(Step::FtsOp(t, o));
            if !send_if_full(&mut chunk) {
                return;
            }
        }
        chunk.push(Step::End(t));
    }
    let _ = sender.send(chunk);
}

/// Applies the steps `prepare` sends, in order: the same changes as [`apply`]. If the
/// preparing thread stopped early (or never started), applies the rest itself.
fn insert_prepared(
    working: &mut Version,
    queued: &[Queued],
    receiver: &std::sync::mpsc::Receiver<Vec<Step>>,
) -> Result<()> {
    let mut next = 0;
    for chunk in receiver.iter() {
        for step in chunk {
            match step {
                Step::Set(key, value) => working.set(key, value),
                Step::FtsOp(t, o) => {
                    if let Some(op) = queued.get(t).and_then(|txn| txn.payload.fts_ops.get(o)) {
                        op.apply(working)?;
                    }
                }
                Step::End(t) => {
                    if let Some(txn) = queued.get(t) {
                        debug_assert_eq!(txn.lsn, working.lsn + 1, "lsns apply densely");
                        working.lsn = txn.lsn;
                    }
                    next = t + 1;
                }
            }
        }
    }
    // Only whole transactions were counted: a partly sent one cannot happen (the
    // sender stops only when this side is gone, or before a transaction), so the rest
    // starts at a transaction.
    apply(working, queued.get(next..).unwrap_or_default())
}

/// About how much work applying a group is, in ops: an indexed document counts one per
/// distinct term (its postings), any other op one.
fn apply_weight(queued: &[Queued]) -> usize {
    queued.iter().map(|q| q.payload.weight).sum()
}

/// Applies a group to the working version in lsn order.
fn apply(working: &mut Version, queued: &[Queued]) -> Result<()> {
    let mut changes = ReplayBatch::default();
    changes.reserve(
        queued
            .iter()
            .map(|q| q.payload.bytes().len())
            .max()
            .unwrap_or(0),
    );
    for txn in queued {
        debug_assert_eq!(txn.lsn, working.lsn + 1, "lsns apply densely");
        apply_txn(working, &txn.payload, &mut changes)?;
        working.lsn = txn.lsn;
    }
    working.seal();
    Ok(())
}

/// Applies one transaction: its blind writes decoded straight from the payload into
/// `changes` (reused, no `Op` built), then its FTS ops as the transaction kept them (they
/// touch only FTS keys, which no blind write does, so the order between the two kinds
/// does not matter). Bytes the fast decoder does not accept are decoded into ops and
/// applied one by one.
fn apply_txn(working: &mut Version, payload: &Payload, changes: &mut ReplayBatch) -> Result<()> {
    debug_assert_eq!(payload.fts_ops.len(), payload.count - payload.blind);
    changes.clear();
    if kv_batch::decode_blind_into(payload.bytes(), changes) {
        for (key, value) in changes.changes() {
            working.set_ref(key, value);
        }
        for op in &payload.fts_ops {
            op.apply(working)?;
        }
        return Ok(());
    }
    for op in payload.decode()? {
        op.apply(working)?;
    }
    Ok(())
}

/// What a panicking apply is: it fails the group (and poisons the store) instead of
/// leaving the leadership taken for ever.
const APPLYING: &str = "applying a commit group";

fn apply_panicked() -> Error {
    Error::Panicked(APPLYING)
}

/// Wakes the next leader first (it starts the next group), then a group's committers.
fn wake_all(next: Option<&Arc<Waiter>>, group: &[Queued]) {
    if let Some(next) = next {
        next.wake();
    }
    for member in group {
        member.waiter.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::KEPT_PAYLOAD_BYTES_MIN;
    use crate::storage::SimStorage;
    use crate::{Fingerprint, Store, WriteTxn};

    fn put(store: &Store, paths: std::ops::Range<u32>, size: u64) {
        let mut txn = store.begin_write();
        put_into(&mut txn, paths, size);
        txn.commit().expect("commit");
    }

    fn put_into(txn: &mut WriteTxn, paths: std::ops::Range<u32>, size: u64) {
        for i in paths {
            let fingerprint = Fingerprint::new([7u8; 32], size, 1).expect("fingerprint");
            txn.put_fingerprint("code", &format!("src/{i:06}.rs"), fingerprint);
        }
    }

    /// A large transaction's payload buffer serves the next transactions, which encode
    /// only their own ops into it; a small one's is not kept.
    #[test]
    fn a_large_transactions_buffer_serves_the_next_one() {
        let store = Store::options()
            .storage(Arc::new(SimStorage::new(3)))
            .open("/store")
            .expect("open");
        let kept = || store.inner.payload_buffer.lock().capacity();
        put(&store, 0..10, 1);
        assert_eq!(kept(), 0, "a small transaction's buffer is not kept");
        put(&store, 0..2_000, 2);
        assert!(kept() >= KEPT_PAYLOAD_BYTES_MIN, "kept {} bytes", kept());
        let mut txn = store.begin_write();
        assert_eq!(kept(), 0, "the next transaction took it");
        put_into(&mut txn, 0..3, 3);
        txn.commit().expect("commit");
        assert!(kept() >= KEPT_PAYLOAD_BYTES_MIN, "back after the commit");
        let read = store.read();
        for (i, size) in [(0, 3), (2, 3), (3, 2), (1_999, 2)] {
            let got = read
                .fingerprint("code", &format!("src/{i:06}.rs"))
                .expect("read")
                .expect("present");
            assert_eq!(got.size, size, "path {i}");
        }
        assert_eq!(read.fingerprints("code").expect("scan").count(), 2_000);
        store.close().expect("close");
    }
}
