//! When durable commits sync: background writers (snapshots, spare segments) give way to
//! them (`storage::pacing`), and write at full speed when none run.
//!
//! Only commits of *other* threads count: a thread that commits and then checkpoints (the
//! `walstore index` command) has nothing to give way to. Such a checkpoint also runs on
//! the caller's thread, not on a lowered one: a new thread's allocations go to a new
//! glibc arena, which the `index` command's peak RSS showed (294–323 MB against 187–254
//! MB; the same with `MALLOC_ARENA_MAX=1`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::storage::pacing::{Foreground, NoForeground};

/// How a long background write (a snapshot, a spare) treats the commits beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// Beside other threads' commits (a user's `checkpoint`, the background thread): if
    /// they are running when it starts, written at a lower CPU priority (`priority.rs`);
    /// its write-back gives way to them whenever they run.
    GiveWay,
    /// Inline in a commit (`background_checkpoints(false)`), whose caller waits for it:
    /// at full speed, on the calling thread.
    FullSpeed,
}

impl super::Inner {
    /// Runs `write`, handing it what its write-back gives way to. `rests`: whether its
    /// steps also rest while commits stream ([`BUSY_SHARE_INVERSE`]): a snapshot's do; a
    /// spare segment's do not (it is small, and a rotation wants it soon).
    pub(crate) fn long_write<T: Send>(
        &self,
        pacing: Pacing,
        thread_name: &str,
        rests: bool,
        write: impl FnOnce(&dyn Foreground) -> T + Send,
    ) -> T {
        match pacing {
            Pacing::GiveWay => {
                let others = OtherThreads {
                    activity: &self.sync_activity,
                    caller: thread_token(),
                    rests,
                };
                match others.streaming() {
                    true => super::priority::run_lowered(thread_name, || write(&others)),
                    false => write(&others),
                }
            }
            Pacing::FullSpeed => write(&NoForeground),
        }
    }
}

/// Commits count as running (small write-back steps) for this long after a durable sync,
/// if syncs end less than [`BUSY_GAP`] apart on average.
pub(crate) const RECENT: Duration = Duration::from_millis(100);
/// Commits at 50 Hz or more are given way to. Less frequent ones (an indexer's large
/// batches, about 20 Hz in `walstore index`) queue behind at most
/// [`crate::storage::pacing::IDLE_AHEAD_BYTES`] of write-back: small steps would cost the
/// checkpoint time, and memory grows meanwhile (peak RSS of `walstore index` 276–281 MB
/// with every commit given way to, against 184–294 MB before pacing existed).
pub(crate) const BUSY_GAP: Duration = Duration::from_millis(20);
/// A stream of commits runs when syncs end this close together on average (and the last
/// one within [`RECENT`]): then a long write starts on a lower-priority thread, and each
/// write-back step waits for the next sync if the last one ended this recently. Not for
/// less frequent commits (an indexer's large batches, 20 Hz in `walstore index`): a
/// lowered checkpoint beside a CPU-bound indexer is slow, and memory grows meanwhile (peak
/// RSS of `walstore index` 289–297 MB with lowering on any commit, 269–277 MB without).
/// An average, not the last gap: a checkpoint often starts while the previous one's
/// unlink has stalled a commit for milliseconds.
pub(crate) const STREAM_GAP: Duration = Duration::from_millis(2);
/// The longest a write-back step waits for its turn.
pub(crate) const TURN_WAIT_MAX: Duration = Duration::from_millis(1);
/// While commits stream, a write-back step of `d` is followed by a rest of `d` times this
/// less one: the writer keeps the device a tenth of the time. Each step delays the commit
/// that meets it in the device's queue (a request costs ~110 µs there, whatever its size
/// up to 128 KiB), so back-to-back steps delayed 40 % of commits and set their p99;
/// rested, about 1 % are. Measured (`cargo bench --bench checkpoint`, each checkpoint
/// measured whole, commit p99 during / without): share 1: 874 / 533 µs (21 checkpoints
/// in 5 s of commits, about 0.2 s each); 5: 459 / 239 and 311 / 478 µs (0.6 s each);
/// 10: 255 / 241 and 338 / 253 µs (1.2 s each); 20: 332 / 272 µs (3 s each). The cost:
/// beside a stream of durable commits, the 1M-fingerprint checkpoint takes about 1.2 s
/// instead of 0.2 s; alone, it runs at full speed as before.
pub(crate) const BUSY_SHARE_INVERSE: u32 = 10;
/// The longest rest after one step: a step slowed by something else (a device stall)
/// must not park the checkpoint for long.
pub(crate) const REST_MAX: Duration = Duration::from_millis(20);
const _: () = assert!(BUSY_SHARE_INVERSE >= 1);
/// How often a waiting step looks whether the sync ended (the timer slack adds ~50 µs).
const TURN_POLL: Duration = Duration::from_micros(20);

const _: () = assert!(TURN_WAIT_MAX.as_nanos() < STREAM_GAP.as_nanos());
/// A gap counts in the average as at most this long: a pause of minutes is forgotten as
/// soon as one of 50 ms would be.
const GAP_COUNTED_MAX: Duration = Duration::from_millis(50);
/// Each gap weighs 1/32 of the average: one stall of 20 ms (a commit queued behind an
/// unlink) moves a stream's average by about 0.6 ms, while about 30 gaps of a new stream
/// bring it from [`GAP_COUNTED_MAX`] under [`BUSY_GAP`].
const GAP_WEIGHT_INVERSE: u64 = 32;

const _: () = assert!(STREAM_GAP.as_nanos() < BUSY_GAP.as_nanos());
const _: () = assert!(BUSY_GAP.as_nanos() < GAP_COUNTED_MAX.as_nanos());
const _: () = assert!(BUSY_GAP.as_nanos() < RECENT.as_nanos());

/// Counts durable commit syncs, and when the last one ended.
#[derive(Debug)]
pub(crate) struct SyncActivity {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the end of the last durable sync, plus one (0: none).
    last_sync_nanos: AtomicU64,
    /// Durable syncs so far.
    syncs: AtomicU64,
    /// The [`thread_token`] of the thread that made the last one.
    last_sync_thread: AtomicU64,
    /// The average time between two syncs, in nanoseconds: each new gap, cut to
    /// [`GAP_COUNTED_MAX`], weighs 1/[`GAP_WEIGHT_INVERSE`].
    sync_gap_nanos_avg: AtomicU64,
}

/// A number for the calling thread, unique in the process (0: none).
fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|token| *token)
}

/// The commits of threads other than `caller`, as a [`Foreground`].
#[derive(Debug, Clone, Copy)]
struct OtherThreads<'a> {
    activity: &'a SyncActivity,
    caller: u64,
    /// Whether steps rest after themselves while commits stream.
    rests: bool,
}

impl SyncActivity {
    pub(crate) fn new() -> Self {
        SyncActivity {
            epoch: Instant::now(),
            last_sync_nanos: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            last_sync_thread: AtomicU64::new(0),
            sync_gap_nanos_avg: AtomicU64::new(u64::MAX),
        }
    }

    /// A durable commit sync just ended, on this thread. Relaxed stores, read as a hint
    /// (a reader may see the time of one sync with the thread of another).
    /// Only a leader calls it, so calls do not overlap.
    pub(crate) fn record(&self) {
        self.last_sync_thread
            .store(thread_token(), Ordering::Relaxed);
        let now = self.nanos_now().saturating_add(1);
        let last = self.last_sync_nanos.swap(now, Ordering::Relaxed);
        if last != 0 {
            let counted_max = u64::try_from(GAP_COUNTED_MAX.as_nanos()).unwrap_or(u64::MAX);
            let gap = now.saturating_sub(last).min(counted_max);
            let average = match self.sync_gap_nanos_avg.load(Ordering::Relaxed) {
                u64::MAX => gap,
                average => {
                    average
                        .saturating_mul(GAP_WEIGHT_INVERSE - 1)
                        .saturating_add(gap)
                        / GAP_WEIGHT_INVERSE
                }
            };
            self.sync_gap_nanos_avg.store(average, Ordering::Relaxed);
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a durable sync ended within `window`.
    fn synced_within(&self, window: Duration) -> bool {
        let last = self.last_sync_nanos.load(Ordering::Relaxed);
        let window_nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        last != 0 && self.nanos_now().saturating_add(1).saturating_sub(last) < window_nanos
    }

    /// Whether syncs end less than `gap` apart on average.
    fn gaps_below(&self, gap: Duration) -> bool {
        let gap_nanos = u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX);
        self.sync_gap_nanos_avg.load(Ordering::Relaxed) < gap_nanos
    }

    fn nanos_now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl OtherThreads<'_> {
    /// Whether other threads' durable syncs end less than [`STREAM_GAP`] apart on average.
    fn streaming(&self) -> bool {
        self.busy() && self.activity.gaps_below(STREAM_GAP)
    }
}

impl Foreground for OtherThreads<'_> {
    fn busy(&self) -> bool {
        self.activity.synced_within(RECENT)
            && self.activity.gaps_below(BUSY_GAP)
            && self.activity.last_sync_thread.load(Ordering::Relaxed) != self.caller
    }

    /// Rests `BUSY_SHARE_INVERSE - 1` times the step, at most [`REST_MAX`], while
    /// commits still run.
    fn rest_after(&self, step: Duration) {
        if !self.rests || !self.busy() {
            return;
        }
        let rest = step.saturating_mul(BUSY_SHARE_INVERSE - 1).min(REST_MAX);
        std::thread::sleep(rest);
    }

    /// Polls (no cost on the commit path) until the next sync ends, while a stream of
    /// commits runs, for at most [`TURN_WAIT_MAX`].
    fn wait_turn(&self) {
        let activity = self.activity;
        if !activity.synced_within(STREAM_GAP) {
            return;
        }
        let seen = activity.syncs.load(Ordering::Relaxed);
        let started = Instant::now();
        while activity.syncs.load(Ordering::Relaxed) == seen && started.elapsed() < TURN_WAIT_MAX {
            std::thread::sleep(TURN_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `check` held in one of a few tries: a loaded machine may deschedule a
    /// thread for milliseconds between two steps of a timing test.
    fn in_one_of_a_few_tries(check: impl Fn() -> bool) -> bool {
        (0..5).any(|_| check())
    }

    /// The activity seen from a thread that never commits.
    fn beside(activity: &SyncActivity) -> OtherThreads<'_> {
        OtherThreads {
            activity,
            caller: u64::MAX,
            rests: true,
        }
    }

    #[test]
    fn a_sync_is_recent_until_the_window_passes() {
        let activity = SyncActivity::new();
        assert!(!beside(&activity).busy(), "no sync yet");
        activity.record();
        assert!(!beside(&activity).busy(), "one sync: no rate yet");
        activity.record();
        assert!(beside(&activity).busy());
        std::thread::sleep(RECENT + Duration::from_millis(20));
        assert!(!beside(&activity).busy());
    }

    #[test]
    fn a_stream_is_syncs_close_together_on_average() {
        let activity = SyncActivity::new();
        let others = beside(&activity);
        activity.record();
        assert!(!others.streaming(), "one sync is no stream");
        for _ in 0..100 {
            activity.record();
        }
        assert!(others.streaming());
        // One long gap does not end it (one of up to 64 ms, here).
        std::thread::sleep(STREAM_GAP * 4);
        activity.record();
        assert!(others.streaming());
        // Syncs far apart are no stream, but still busy under 20 ms apart.
        let sparse = SyncActivity::new();
        for _ in 0..3 {
            sparse.record();
            std::thread::sleep(STREAM_GAP * 3);
        }
        sparse.record();
        assert!(!beside(&sparse).streaming());
        assert!(beside(&sparse).busy(), "6 ms apart is still busy");
        let rare = SyncActivity::new();
        for _ in 0..3 {
            rare.record();
            std::thread::sleep(BUSY_GAP + Duration::from_millis(5));
        }
        rare.record();
        assert!(!beside(&rare).busy(), "syncs more than 20 ms apart are not");
        // After a long pause, a new stream is one within about a hundred syncs.
        for _ in 0..128 {
            rare.record();
        }
        assert!(beside(&rare).streaming());
    }

    #[test]
    fn a_threads_own_syncs_are_not_a_reason_to_give_way() {
        let activity = SyncActivity::new();
        activity.record();
        activity.record();
        let own = OtherThreads {
            activity: &activity,
            caller: thread_token(),
            rests: true,
        };
        assert!(!own.busy());
        std::thread::scope(|scope| {
            scope.spawn(|| activity.record());
        });
        assert!(own.busy(), "another thread synced");
    }

    #[test]
    fn no_turn_is_waited_for_without_a_stream_of_syncs() {
        let activity = SyncActivity::new();
        assert!(in_one_of_a_few_tries(|| {
            let started = Instant::now();
            beside(&activity).wait_turn();
            started.elapsed() < TURN_WAIT_MAX
        }));
    }

    #[test]
    fn a_turn_waits_for_the_next_sync_for_at_most_the_bound() {
        let activity = SyncActivity::new();
        // A stream, but no next sync: the whole bound (unless the check came too late).
        assert!(in_one_of_a_few_tries(|| {
            activity.record();
            let started = Instant::now();
            beside(&activity).wait_turn();
            let waited = started.elapsed();
            waited >= TURN_WAIT_MAX && waited < TURN_WAIT_MAX * 50
        }));
        // A stream, and the next sync ends meanwhile: less than the bound.
        assert!(in_one_of_a_few_tries(|| {
            let done = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|scope| {
                activity.record();
                let waiter = scope.spawn(|| {
                    let started = Instant::now();
                    beside(&activity).wait_turn();
                    done.store(true, Ordering::Relaxed);
                    started.elapsed()
                });
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_micros(100));
                    activity.record();
                }
                waiter.join().is_ok_and(|waited| waited < TURN_WAIT_MAX)
            })
        }));
    }

    #[test]
    fn a_busy_step_rests_its_share_and_an_idle_one_not_at_all() {
        let activity = SyncActivity::new();
        let step = Duration::from_millis(1);
        // No commits: no rest.
        assert!(in_one_of_a_few_tries(|| {
            let started = Instant::now();
            beside(&activity).rest_after(step);
            started.elapsed() < step
        }));
        // A stream of commits: (share - 1) steps of rest, and never more than the bound.
        for _ in 0..64 {
            activity.record();
        }
        assert!(beside(&activity).busy());
        let started = Instant::now();
        beside(&activity).rest_after(step);
        assert!(started.elapsed() >= step * (BUSY_SHARE_INVERSE - 1));
        let started = Instant::now();
        beside(&activity).rest_after(Duration::from_secs(10));
        let rested = started.elapsed();
        assert!(
            rested >= REST_MAX && rested < Duration::from_secs(5),
            "{rested:?}"
        );
        // A writer that does not rest (a spare segment).
        let unrested = OtherThreads {
            rests: false,
            ..beside(&activity)
        };
        assert!(unrested.busy());
        assert!(in_one_of_a_few_tries(|| {
            let started = Instant::now();
            unrested.rest_after(step);
            started.elapsed() < step
        }));
    }
}
