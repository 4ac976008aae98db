//! Indexing-run state: a writer marks a run started, updates its progress and clears it
//! when done, all in ordinary transactions, so readers (a search server in another
//! process) can tell that results may be incomplete, and wait for the run to end.
//!
//! The state lives under the reserved metadata key [`RUN_KEY`]. A run still recorded when
//! a writer opens the store belonged to a writer that died (the lock is exclusive), and
//! the recovery report names it as interrupted.

use serde::{Deserialize, Serialize};

/// The reserved metadata key of the run in progress.
pub const RUN_KEY: &str = "walstore.indexing";

/// An indexing run in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The indexing process.
    pub pid: u32,
    /// Its host.
    pub host: String,
    /// When the run started, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// How many files the run plans to look at, if known.
    pub planned_files: Option<u64>,
    /// How many it has looked at so far.
    pub done_files: u64,
}

impl RunInfo {
    /// A run of this process, starting now.
    pub fn start(planned_files: Option<u64>) -> RunInfo {
        let holder = crate::store::LockHolder::current();
        RunInfo {
            pid: holder.pid,
            host: holder.host,
            started_unix_ms: holder.since_unix_ms,
            planned_files,
            done_files: 0,
        }
    }
}
