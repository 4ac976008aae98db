//! Long-lived helper threads: a large commit group's run is built, and the overlay stack
//! merged down, on them beside the leader's write and `fdatasync`; the group's garbage is
//! freed on one afterwards.
//!
//! Why: a thread started per group cost the leader 25–30 µs a thread (spawn and join,
//! measured here), and a large group used three, two of them (58 µs) before its write
//! began. A helper waits for jobs on a channel; handing it one costs a send.
//!
//! - A helper runs its jobs one at a time, in the order given. Only the commit leader
//!   (one at a time) gives jobs, so a job waiting for another helper's result never waits
//!   behind a job of its own helper.
//! - Jobs own what they work on (a version, the group behind an `Arc`), so nothing they
//!   borrow outlives the leader. A job reports through a channel of its own; one that
//!   panics drops that channel unsent, which its receiver takes as the failure it is.
//! - A helper starts with its first job (a store that never commits a large group starts
//!   none) and stops, joined, when the store closes or is dropped.

use std::sync::mpsc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

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
}

impl Helper {
    /// A helper whose thread, once started, is named `name`.
    pub(crate) const fn new(name: &'static str) -> Helper {
        Helper {
            name,
            running: Mutex::new(None),
        }
    }

    /// Hands `job` to the helper thread, starting it if needed. `Err(job)` if no thread
    /// could be started (or it is gone): the caller then runs the job itself.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        let mut running = self.running.lock();
        if running.is_none() {
            let (jobs, receiver) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name(self.name.into())
                .spawn(move || {
                    // A panicking job is contained (its caller sees its channel dropped):
                    // the helper goes on with the next.
                    for job in receiver {
                        let _ = unwound(job);
                    }
                });
            match started {
                Ok(thread) => *running = Some(Running { jobs, thread }),
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
        if let Some(Running { jobs, thread }) = running {
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

    use super::Helper;

    #[test]
    fn jobs_run_in_order_and_a_panic_is_contained() {
        let helper = Helper::new("walstore-test-helper");
        assert!(!helper.is_running(), "no thread before the first job");
        let (sender, receiver) = mpsc::channel();
        for i in 0..3 {
            let sender = sender.clone();
            helper
                .submit(Box::new(move || sender.send(i).expect("send")))
                .map_err(|_| "submit")
                .expect("submitted");
        }
        let (panicked_sender, panicked) = mpsc::channel::<u32>();
        helper
            .submit(Box::new(move || {
                let _kept = panicked_sender;
                panic!("a job's bug");
            }))
            .map_err(|_| "submit")
            .expect("submitted");
        assert!(
            panicked.recv().is_err(),
            "the panicked job's channel is dropped"
        );
        let sender_after = sender.clone();
        helper
            .submit(Box::new(move || sender_after.send(3).expect("send")))
            .map_err(|_| "submit")
            .expect("the helper goes on");
        drop(sender);
        helper.stop();
        assert!(!helper.is_running());
        assert_eq!(receiver.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }
}
