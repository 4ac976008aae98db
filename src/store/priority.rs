//! Background work (snapshots, spare segments) runs at a lower CPU priority than commits.
//!
//! Why: on a small machine, a checkpoint's encoding and copying takes a core, and the
//! committing thread then waits for a CPU after its `fdatasync` returns. Measured here
//! (scratch harness, the 1M-fingerprint store, checkpoints back to back, three
//! alternated pairs): commit p99 426 / 371 / 402 µs with the checkpointing thread at
//! nice 19 against 579 / 470 / 472 µs at nice 0; nice 10 did as well (366 / 496 / 461 µs
//! against base p99s of 221 / 302 / 246 µs). Nice 10, not 19: the checkpoint must still
//! progress beside a CPU-bound indexer, or the WAL grows.

/// How much lower (in nice levels) background work runs.
pub(crate) const BACKGROUND_NICE_INCREMENT: i32 = 10;
/// Linux's lowest priority.
const NICE_MAX: i32 = 19;

thread_local! {
    /// Whether this thread's priority was lowered already (it is not lowered twice).
    static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Lowers the calling thread's CPU priority by [`BACKGROUND_NICE_INCREMENT`], once. On
/// Linux a nice value belongs to a thread, not to the process. Best effort: a failure (or
/// another system) leaves the priority as it was.
pub(crate) fn lower_this_thread() {
    if LOWERED.replace(true) {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        if let Ok(nice) = getpriority_process(None) {
            let lowered = nice.saturating_add(BACKGROUND_NICE_INCREMENT).min(NICE_MAX);
            let _ = setpriority_process(None, lowered);
        }
    }
}

/// Runs `work` on a short-lived thread of lower priority (the caller waits), or on the
/// calling thread if that was lowered already or no thread can be spawned. For work
/// started on a caller's thread, whose priority is not the store's to change.
pub(crate) fn run_lowered<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> T {
    if LOWERED.get() {
        return work();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn nice() -> i32 {
        rustix::process::getpriority_process(None).unwrap_or(i32::MIN)
    }

    #[cfg(target_os = "linux")]
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

    #[cfg(target_os = "linux")]
    #[test]
    fn a_lowered_thread_is_not_lowered_twice() {
        let once = std::thread::spawn(|| {
            lower_this_thread();
            let lowered = nice();
            lower_this_thread();
            (lowered, run_lowered("test-lowered", nice), nice())
        })
        .join()
        .unwrap_or_default();
        assert_eq!(once.0, once.1);
        assert_eq!(once.0, once.2);
    }
}
