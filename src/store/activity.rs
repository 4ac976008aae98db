//! When durable commits sync: background writers (snapshots, spare segments) give way to
//! them (`storage::pacing`), and write at full speed when none run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::storage::pacing::Foreground;

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
    fn a_turn_ends_with_the_next_sync_or_after_a_bound() {
        let activity = SyncActivity::new();
        // No stream of commits: no wait at all.
        let started = Instant::now();
        activity.wait_turn();
        assert!(started.elapsed() < TURN_WAIT_MAX);
        // A stream, but no next sync: the bound.
        activity.record();
        let started = Instant::now();
        activity.wait_turn();
        assert!(started.elapsed() >= TURN_WAIT_MAX);
        // A stream, and the next sync ends meanwhile: the turn ends before the bound (in
        // one of a few tries, as a loaded machine may oversleep).
        let woken = (0..5).any(|_| {
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
        });
        assert!(woken, "the next sync never ended a turn early");
    }
}
