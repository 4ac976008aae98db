//! Background writing (snapshots, spare segments) runs at a lower CPU priority than commits.
//!
//! Why: on a small machine, a checkpoint's encoding and copying takes a core, and the
//! committing thread then waits for a CPU after its `fdatasync` returns. Measured here
//! (scratch harness, the 1M-fingerprint store, checkpoints back to back, three
//! alternated pairs): commit p99 426 / 371 / 402 µs with the checkpointing thread at
//! nice 19 against 579 / 470 / 472 µs at nice 0. Three more pairs, nice 10 against nice
//! 19: 1.66 / 1.64 / 1.88× the base p99 against 1.57 / 1.59 / 1.67× (nice 10 was not
//! paired with nice 0). Nice 10, not 19: the checkpoint must still progress beside a
//! CPU-bound indexer, or the WAL grows.
//!
//! Only the writing itself is lowered, on a short-lived thread: the steps a checkpoint
//! takes under the log mutex (install, rotation) run on the caller's thread, so that a
//! committer never waits for a mutex held by a low-priority thread.
//!
//! The same thread sleeps with a timer slack of 1 µs instead of Linux's 50 µs: its
//! write-back steps poll, in 20 µs sleeps, for a commit's sync to end
//! (`activity.rs`), and start sooner after it. Commit p99 during checkpoints, three runs
//! each of `cargo bench --bench checkpoint`: 349 / 395 / 378 µs (1.98× / 1.94× / 2.00×)
//! with it, 393 / 379 / 417 / 403 / 459 µs (1.75–2.30×) in five runs before.

/// How much lower (in nice levels) background writing runs.
pub(crate) const BACKGROUND_NICE_INCREMENT: i32 = 10;
/// Linux's lowest priority.
#[cfg(target_os = "linux")]
const NICE_MAX: i32 = 19;

/// The timer slack of a lowered thread, in nanoseconds.
#[cfg(target_os = "linux")]
const TIMER_SLACK_NANOS: u64 = 1_000;

/// Lowers the calling thread's CPU priority by [`BACKGROUND_NICE_INCREMENT`] (on Linux a
/// nice value belongs to a thread, not to the process), and sets its timer slack to
/// [`TIMER_SLACK_NANOS`]. Best effort: a failure leaves either as it was.
#[cfg(target_os = "linux")]
fn lower_this_thread() {
    use rustix::process::{getpriority_process, setpriority_process};
    if let Ok(nice) = getpriority_process(None) {
        let lowered = nice.saturating_add(BACKGROUND_NICE_INCREMENT).min(NICE_MAX);
        let _ = setpriority_process(None, lowered);
    }
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(TIMER_SLACK_NANOS));
}

/// Runs `work` on a short-lived thread of lower priority (the caller waits), or on the
/// calling thread if no thread can be spawned.
#[cfg(target_os = "linux")]
pub(crate) fn run_lowered<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> T {
    let mut pending = Some(work);
    let ran = std::thread::scope(|scope| {
        let pending = &mut pending;
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, move || {
                lower_this_thread();
                pending.take().map(|work| work())
            })
            .ok()?;
        handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    match (ran, pending.take()) {
        (Some(out), _) => out,
        (None, Some(work)) => work(),
        (None, None) => unreachable!("the spawned thread took the work and returned it"),
    }
}

/// Makes the calling thread `SCHED_BATCH`: the same CPU share for its nice value, but a
/// wake-up never preempts the running thread. A helper woken by a commit leader must not
/// take the leader's CPU before the leader has issued its write: woken after an idle
/// pause, a plain helper did, and the leader waited for its CPU (`perf sched`: 0.85 ms
/// on average; `helper.rs`). Best effort: a failure leaves the policy as it was.
#[cfg(target_os = "linux")]
pub(crate) fn batch_this_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` that outlives the call, which only reads
    // it; pid 0 is the calling thread.
    #[expect(
        unsafe_code,
        reason = "sched_setscheduler has no safe wrapper in rustix or nix"
    )]
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// Elsewhere: nothing.
#[cfg(not(target_os = "linux"))]
pub(crate) fn batch_this_thread() {}

/// The calling thread's nice value (on Linux a thread's own); `None` where unknown.
#[cfg(target_os = "linux")]
pub(crate) fn this_thread_nice() -> Option<i32> {
    rustix::process::getpriority_process(None).ok()
}

/// Elsewhere: unknown.
#[cfg(not(target_os = "linux"))]
pub(crate) fn this_thread_nice() -> Option<i32> {
    None
}

/// Elsewhere: on the calling thread (no per-thread priority to lower).
#[cfg(not(target_os = "linux"))]
pub(crate) fn run_lowered<T: Send>(_name: &str, work: impl FnOnce() -> T + Send) -> T {
    work()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice() -> i32 {
        rustix::process::getpriority_process(None).unwrap_or(i32::MIN)
    }

    #[test]
    fn lowered_work_runs_at_a_lower_priority_and_the_caller_keeps_its_own() {
        let caller = nice();
        let inside = run_lowered("test-lowered", nice);
        assert_eq!(
            inside,
            caller
                .saturating_add(BACKGROUND_NICE_INCREMENT)
                .min(NICE_MAX)
        );
        assert_eq!(nice(), caller);
    }

    #[test]
    fn lowered_work_sleeps_with_a_fine_timer_slack() {
        let slack = run_lowered("test-lowered", rustix::thread::current_timer_slack);
        assert_eq!(slack.ok(), Some(TIMER_SLACK_NANOS));
    }

    #[test]
    fn a_panic_in_lowered_work_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| run_lowered("test-lowered", || panic!("boom")));
        assert!(caught.is_err());
    }
}
