//! Long-lived helper threads: a large commit group's run is built, and the overlay stack
//! merged down, on them beside the leader's write and `fdatasync`; the group's garbage is
//! freed on one afterwards.
//!
//! Why: a thread started per group cost the leader 25–30 µs a thread (spawn and join,
//! measured here), and a large group used three, two of them (58 µs) before its write
//! began. A helper waits for jobs on a channel; handing it one costs a send.
//!
//! - A helper runs its jobs one at a time, in the order given. The commit leader (one at
//!   a time) gives the build and merge jobs, and the build job waits only for the merge
//!   job; a garbage job, which the previous leader may give while the next one leads,
//!   waits for nothing. So no job waits behind one that waits for it.
//! - Jobs own what they work on (a version, the group behind an `Arc`), so nothing they
//!   borrow outlives the leader. A job reports through a channel of its own; one that
//!   panics drops that channel unsent, which its receiver takes as the failure it is.
//! - A new thread inherits its creator's CPU priority (nice value), so a helper runs
//!   group work at the priority of the leader that started it, as a thread started per
//!   group did. A leader of another priority starts the helper again from its own
//!   thread ([`Priority::OfCaller`]): the thread it replaces finishes the jobs it has
//!   (without the leader waiting for them) and is joined when the helper stops. Freeing
//!   garbage takes whichever priority runs ([`Priority::Any`]). Without this, a niced
//!   thread that led the first large group would slow every later commit's apply (found
//!   by review); leaders that alternate priorities start threads as often as a thread
//!   per group did. Only the nice value is matched, not a real-time policy.
//! - A helper is `SCHED_BATCH` (`priority::batch_this_thread`): its share of the CPU is
//!   that of its nice value, but waking it does not preempt the leader, which must issue
//!   its write first (it may still wait for a CPU that other work holds). A helper woken
//!   after an idle pause otherwise took the leader's CPU: with 5 ms idle (`sync` and a
//!   sleep) before each 10,000-fingerprint commit, commit 1.76–1.80 ms against
//!   1.44–1.50 ms with a thread spawned per group; in a later alternated run,
//!   `SCHED_BATCH` helpers 1.21–1.26 ms against spawned threads 1.28–1.30 ms (back to
//!   back, without the pauses: 1.02–1.19 ms).
//! - A helper starts with its first job (a store that never commits a large group starts
//!   none) and stops, joined, when the store closes or is dropped; a transaction that
//!   outlives the store starts it again, and it stops when the last handle goes.

use std::sync::mpsc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::priority::{batch_this_thread, this_thread_nice};
use crate::util::unwound;

/// The store's helpers.
#[derive(Debug)]
pub(crate) struct Helpers {
    /// Builds a large group's run.
    pub build: Helper,
    /// Merges the stack down beside it, and frees a large group's garbage after it.
    pub merge: Helper,
}

impl Helpers {
    pub(crate) const fn new() -> Helpers {
        Helpers {
            build: Helper::new("walstore-apply"),
            merge: Helper::new("walstore-merge"),
        }
    }

    /// Stops and joins both threads (at close).
    pub(crate) fn stop(&self) {
        self.build.stop();
        self.merge.stop();
    }
}

/// Work for a helper.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// One helper thread, started with its first job.
#[derive(Debug)]
pub(crate) struct Helper {
    name: &'static str,
    running: Mutex<Option<Running>>,
    /// Threads replaced by one of another priority: they finish the jobs they were given
    /// (nobody waits for them to) and are joined when the helper stops.
    retired: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Running {
    jobs: mpsc::Sender<Job>,
    thread: JoinHandle<()>,
    /// The nice value it inherited from the thread that started it.
    nice: Option<i32>,
}

/// The priority a job needs its helper to run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// The submitting thread's: work a committer waits for.
    OfCaller,
    /// Any: work nobody waits for (freeing a group's garbage).
    Any,
}

impl Helper {
    /// A helper whose thread, once started, is named `name`.
    pub(crate) const fn new(name: &'static str) -> Helper {
        Helper {
            name,
            running: Mutex::new(None),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// Hands `job` to the helper thread, starting it if needed (again, from this thread,
    /// if it runs at another priority than this thread's and `priority` asks for this
    /// thread's). `Err(job)` if no thread could be started (or it is gone): the caller
    /// then runs the job itself.
    pub(crate) fn submit(&self, job: Job, priority: Priority) -> Result<(), Job> {
        let mut running = self.running.lock();
        let nice = this_thread_nice();
        let other_priority = running
            .as_ref()
            .is_some_and(|current| priority == Priority::OfCaller && current.nice != nice);
        if other_priority && let Some(Running { jobs, thread, .. }) = running.take() {
            // Not joined here: it may still be freeing a group's garbage, which this
            // leader's write must not wait for (found by review). Its channel closed, it
            // ends after the jobs it has; the finished ones are joined now, the rest at
            // `stop`.
            drop(jobs);
            let mut retired = self.retired.lock();
            retired.retain(|old| !old.is_finished());
            retired.push(thread);
        }
        if running.is_none() {
            let (jobs, receiver) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name(self.name.into())
                .spawn(move || {
                    batch_this_thread();
                    // A panicking job is contained (its caller sees its channel dropped):
                    // the helper goes on with the next.
                    for job in receiver {
                        let _ = unwound(job);
                    }
                });
            match started {
                Ok(thread) => *running = Some(Running { jobs, thread, nice }),
                Err(_) => return Err(job),
            }
        }
        let Some(current) = running.as_ref() else {
            return Err(job);
        };
        current.jobs.send(job).map_err(|mpsc::SendError(job)| {
            // Never expected: the thread contains every panic.
            *running = None;
            job
        })
    }

    /// Stops the thread (and any retired one) once it has run the jobs it was given, and
    /// joins it.
    pub(crate) fn stop(&self) {
        let running = self.running.lock().take();
        if let Some(Running { jobs, thread, .. }) = running {
            drop(jobs);
            let _ = thread.join();
        }
        let retired = std::mem::take(&mut *self.retired.lock());
        for thread in retired {
            let _ = thread.join();
        }
    }

    /// Whether its thread runs (for tests).
    #[cfg(test)]
    pub(crate) fn is_running(&self) -> bool {
        self.running.lock().is_some()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::{Helper, Priority};

    #[test]
    fn jobs_run_in_order_and_a_panic_is_contained() {
        let helper = Helper::new("walstore-test-helper");
        assert!(!helper.is_running(), "no thread before the first job");
        let (sender, receiver) = mpsc::channel();
        for i in 0..3 {
            let sender = sender.clone();
            helper
                .submit(
                    Box::new(move || sender.send(i).expect("send")),
                    Priority::OfCaller,
                )
                .map_err(|_| "submit")
                .expect("submitted");
        }
        let (panicked_sender, panicked) = mpsc::channel::<u32>();
        helper
            .submit(
                Box::new(move || {
                    let _kept = panicked_sender;
                    panic!("a job's bug");
                }),
                Priority::Any,
            )
            .map_err(|_| "submit")
            .expect("submitted");
        assert!(
            panicked.recv().is_err(),
            "the panicked job's channel is dropped"
        );
        let sender_after = sender.clone();
        helper
            .submit(
                Box::new(move || sender_after.send(3).expect("send")),
                Priority::OfCaller,
            )
            .map_err(|_| "submit")
            .expect("the helper goes on");
        drop(sender);
        helper.stop();
        assert!(!helper.is_running());
        assert_eq!(receiver.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }

    /// The calling thread's nice value and scheduling policy, from fields 19 and 41 of
    /// `/proc/thread-self/stat` (the 17th and 39th after the command's closing
    /// parenthesis).
    #[cfg(target_os = "linux")]
    fn own_nice_and_policy() -> Option<(i32, i32)> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let after = stat.get(stat.rfind(')')? + 2..)?;
        let mut fields = after.split(' ');
        let nice = fields.nth(16)?.parse().ok()?;
        let policy = fields.nth(21)?.parse().ok()?;
        Some((nice, policy))
    }

    /// Submits, from the calling thread, a job that reports the nice value and policy it
    /// runs with.
    #[cfg(target_os = "linux")]
    fn run_reporting(helper: &Helper, priority: Priority) -> (i32, i32) {
        let (sender, receiver) = mpsc::channel();
        let job = Box::new(move || {
            let _ = sender.send(own_nice_and_policy());
        });
        helper
            .submit(job, priority)
            .map_err(|_| "submit")
            .expect("submitted");
        receiver.recv().expect("reported").expect("read /proc")
    }

    /// Runs `work` on a new thread whose nice value is `nice`.
    #[cfg(target_os = "linux")]
    fn from_niced_thread(nice: i32, work: impl FnOnce() + Send) {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                rustix::process::setpriority_process(None, nice).expect("renice");
                work();
            });
        });
    }

    /// A helper started by a niced leader runs the next leader's work at that leader's
    /// priority (found by review: a helper inherits the priority of the thread that
    /// starts it, and was started once for the store's life), and every helper thread is
    /// `SCHED_BATCH`. Work nobody waits for ([`Priority::Any`]) takes the thread as it is.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_job_runs_at_the_priority_of_the_thread_that_submits_it() {
        let caller = super::this_thread_nice().expect("nice");
        let niced = (caller + 5).min(19);
        assert_ne!(niced, caller, "run the tests below nice 19");
        let batch = libc::SCHED_BATCH;
        let helper = Helper::new("walstore-test-priority");
        from_niced_thread(niced, || {
            assert_eq!(run_reporting(&helper, Priority::OfCaller), (niced, batch));
        });
        assert_eq!(run_reporting(&helper, Priority::Any), (niced, batch));
        assert_eq!(run_reporting(&helper, Priority::OfCaller), (caller, batch));
        helper.stop();
    }

    /// Starting the helper again for another priority never waits for what the thread it
    /// replaces still runs (found by review: a leader's write waited behind the previous
    /// group's garbage, freed at the old leader's priority); that thread finishes its
    /// jobs, and `stop` joins it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_restart_never_waits_for_the_jobs_of_the_thread_it_replaces() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};

        let caller = super::this_thread_nice().expect("nice");
        let helper = Helper::new("walstore-test-restart");
        let freed = Arc::new(AtomicBool::new(false));
        let slow_free = {
            let freed = Arc::clone(&freed);
            Box::new(move || {
                std::thread::sleep(Duration::from_millis(300));
                freed.store(true, Ordering::Release);
            })
        };
        from_niced_thread((caller + 5).min(19), || {
            helper
                .submit(slow_free, Priority::Any)
                .map_err(|_| "submit")
                .expect("submitted");
        });
        let started = Instant::now();
        assert_eq!(run_reporting(&helper, Priority::OfCaller).0, caller);
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(150), "waited {waited:?}");
        assert!(!freed.load(Ordering::Acquire), "the slow job still runs");
        helper.stop();
        assert!(
            freed.load(Ordering::Acquire),
            "stop joined the retired thread"
        );
    }
}
