//! When durable commits sync: background writers (snapshots, spare segments) give way to
//! them (`storage::pacing`), and write at full speed when none run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::storage::pacing::{Foreground, NoForeground};

/// How a long background write (a snapshot, a spare) treats the commits beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// On its own thread (a user's `checkpoint`, the background thread): written at a
    /// lower CPU priority (`priority.rs`), with write-back giving way to commits.
    GiveWay,
    /// Inline in a commit (`background_checkpoints(false)`), whose caller waits for it:
    /// at full speed, on the calling thread.
    FullSpeed,
}

impl super::Inner {
    /// Runs `write`, handing it what its write-back gives way to.
    pub(crate) fn long_write<T: Send>(
        &self,
        pacing: Pacing,
        thread_name: &str,
        write: impl FnOnce(&dyn Foreground) -> T + Send,
    ) -> T {
        match pacing {
            Pacing::GiveWay => {
                super::priority::run_lowered(thread_name, || write(&self.sync_activity))
            }
            Pacing::FullSpeed => write(&NoForeground),
        }
    }
}

/// Commits count as running (small write-back steps) for this long after a durable sync.
pub(crate) const RECENT: Duration = Duration::from_millis(100);
/// A write-back step waits for the next sync only if the last one ended this recently: a
/// stream of commits is running. Longer gaps mean commits paused; the step goes at once.
pub(crate) const STREAM_GAP: Duration = Duration::from_millis(2);
/// The longest a write-back step waits for its turn.
pub(crate) const TURN_WAIT_MAX: Duration = Duration::from_millis(1);
/// How often a waiting step looks whether the sync ended (the timer slack adds ~50 µs).
const TURN_POLL: Duration = Duration::from_micros(20);

const _: () = assert!(TURN_WAIT_MAX.as_nanos() < STREAM_GAP.as_nanos());
const _: () = assert!(STREAM_GAP.as_nanos() < RECENT.as_nanos());

/// Counts durable commit syncs, and when the last one ended.
#[derive(Debug)]
pub(crate) struct SyncActivity {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the end of the last durable sync, plus one (0: none).
    last_sync_nanos: AtomicU64,
    /// Durable syncs so far.
    syncs: AtomicU64,
}

impl SyncActivity {
    pub(crate) fn new() -> Self {
        SyncActivity {
            epoch: Instant::now(),
            last_sync_nanos: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        }
    }

    /// A durable commit sync just ended. Two relaxed stores: nothing else is published.
    pub(crate) fn record(&self) {
        self.last_sync_nanos
            .store(self.nanos_now().saturating_add(1), Ordering::Relaxed);
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a durable sync ended within `window`.
    fn synced_within(&self, window: Duration) -> bool {
        let last = self.last_sync_nanos.load(Ordering::Relaxed);
        let window_nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        last != 0 && self.nanos_now().saturating_add(1).saturating_sub(last) < window_nanos
    }

    fn nanos_now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Foreground for SyncActivity {
    fn busy(&self) -> bool {
        self.synced_within(RECENT)
    }

    /// Polls (no cost on the commit path) until the next sync ends, while a stream of
    /// commits runs, for at most [`TURN_WAIT_MAX`].
    fn wait_turn(&self) {
        if !self.synced_within(STREAM_GAP) {
            return;
        }
        let seen = self.syncs.load(Ordering::Relaxed);
        let started = Instant::now();
        while self.syncs.load(Ordering::Relaxed) == seen && started.elapsed() < TURN_WAIT_MAX {
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

    #[test]
    fn a_sync_is_recent_until_the_window_passes() {
        let activity = SyncActivity::new();
        assert!(!activity.busy(), "no sync yet");
        activity.record();
        assert!(activity.busy());
        std::thread::sleep(RECENT + Duration::from_millis(20));
        assert!(!activity.busy());
    }

    #[test]
    fn no_turn_is_waited_for_without_a_stream_of_syncs() {
        let activity = SyncActivity::new();
        assert!(in_one_of_a_few_tries(|| {
            let started = Instant::now();
            activity.wait_turn();
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
            activity.wait_turn();
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
                    activity.wait_turn();
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
}
