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
//!   thread ([`Priority::OfCaller`]); freeing garbage takes whichever priority runs
//!   ([`Priority::Any`]). Without this, a niced thread that led the first large group
//!   would slow every later commit's apply (found by review).
//! - A helper is `SCHED_BATCH` (`priority::batch_this_thread`): its share of the CPU is
//!   that of its nice value, but waking it never preempts the leader, which must issue
//!   its write first. A helper woken after an idle pause otherwise took the leader's
//!   CPU: with 5 ms idle (`sync` and a sleep) before each 10,000-fingerprint commit,
//!   commit 1.76–1.80 ms against 1.44–1.50 ms with a thread spawned per group; in a
//!   later alternated run, `SCHED_BATCH` helpers 1.21–1.26 ms against spawned threads
//!   1.28–1.30 ms (back to back, without the pauses: 1.02–1.19 ms).
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
            // It finishes what it was given (never a job waiting for this one).
            drop(jobs);
            let _ = thread.join();
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

    /// Stops the thread once it has run the jobs it was given, and joins it.
    pub(crate) fn stop(&self) {
        let running = self.running.lock().take();
        if let Some(Running { jobs, thread, .. }) = running {
            drop(jobs);
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

    /// The nice values and scheduling policies of this process's `walstore-apply` and
    /// `walstore-merge` threads.
    #[cfg(target_os = "linux")]
    fn helper_nices() -> Vec<(String, i32, u32)> {
        let tasks = std::fs::read_dir("/proc/self/task").expect("tasks");
        tasks
            .filter_map(|task| {
                let path = task.ok()?.path();
                let name = std::fs::read_to_string(path.join("comm")).ok()?;
                let name = name.trim();
                if name != "walstore-apply" && name != "walstore-merge" {
                    return None;
                }
                // Fields 19 (nice) and 41 (policy) of `stat`, the 17th and 39th after the
                // command's closing parenthesis.
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                let after = stat.get(stat.rfind(')')? + 2..)?;
                let nice = after.split(' ').nth(16)?.parse().ok()?;
                let policy = after.split(' ').nth(38)?.parse().ok()?;
                Some((name.to_owned(), nice, policy))
            })
            .collect()
    }

    /// A large group led by a niced thread leaves no helper at its priority for a later
    /// leader of normal priority (found by review: a helper inherits the priority of
    /// the thread that starts it, and it was started once for the store's life); and
    /// helpers are `SCHED_BATCH`.
    #[cfg(target_os = "linux")]
    #[test]
    fn helpers_run_at_the_priority_of_the_leader_they_work_for() {
        use std::sync::Arc;

        use crate::storage::SimStorage;
        use crate::{Fingerprint, Store};

        fn large_commit(store: &Store, tag: &str) {
            let mut txn = store.begin_write();
            for i in 0..2_000u32 {
                let fingerprint = Fingerprint::new([1u8; 32], u64::from(i), 1).expect("fp");
                txn.put_fingerprint("ns", &format!("{tag}/{i:05}"), fingerprint);
            }
            txn.commit().expect("commit");
        }

        let store = Arc::new(
            Store::options()
                .storage(Arc::new(SimStorage::new(5)))
                .background_checkpoints(false)
                .open("/probe/store")
                .expect("open"),
        );
        let caller = super::this_thread_nice().expect("nice");
        let low = Arc::clone(&store);
        std::thread::spawn(move || {
            rustix::process::setpriority_process(None, caller + 10).expect("renice");
            large_commit(&low, "low");
            large_commit(&low, "low again");
        })
        .join()
        .expect("niced committer");
        large_commit(&store, "main");
        let nices = helper_nices();
        let batch = u32::try_from(libc::SCHED_BATCH).expect("policy");
        assert!(
            !nices.is_empty()
                && nices
                    .iter()
                    .all(|(_, nice, policy)| *nice == caller && *policy == batch),
            "{nices:?}"
        );
    }
}
