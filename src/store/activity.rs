//! When durable commits last synced: background writers (snapshots, spare segments) pace
//! their write-back while commits are running (`storage::pacing`), and write at full speed
//! otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Commits count as running for this long after a durable sync.
pub(crate) const RECENT: Duration = Duration::from_millis(100);

/// The time of the last durable commit sync.
#[derive(Debug)]
pub(crate) struct SyncActivity {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the end of the last durable sync, plus one (0: none).
    last_sync_nanos: AtomicU64,
}

impl SyncActivity {
    pub(crate) fn new() -> Self {
        SyncActivity {
            epoch: Instant::now(),
            last_sync_nanos: AtomicU64::new(0),
        }
    }

    /// A durable commit sync just ended.
    pub(crate) fn record(&self) {
        self.last_sync_nanos
            .store(self.nanos_now().saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a durable commit synced within [`RECENT`].
    pub(crate) fn recent(&self) -> bool {
        let last = self.last_sync_nanos.load(Ordering::Relaxed);
        let recent_nanos = u64::try_from(RECENT.as_nanos()).unwrap_or(u64::MAX);
        last != 0 && self.nanos_now().saturating_add(1).saturating_sub(last) < recent_nanos
    }

    fn nanos_now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_is_recent_until_the_window_passes() {
        let activity = SyncActivity::new();
        assert!(!activity.recent(), "no sync yet");
        activity.record();
        assert!(activity.recent());
        std::thread::sleep(RECENT + Duration::from_millis(20));
        assert!(!activity.recent());
    }
}
