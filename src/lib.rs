//! # walstore
//!
//! An embedded transactional store for indexers, built on a checksummed write-ahead log.
//! It keeps an indexer's metadata, config, file fingerprints and full-text index in one
//! directory; every update is an atomic transaction, durable before `commit` returns.
//!
//! ```
//! use walstore::{Fingerprint, Store, Value};
//!
//! # fn main() -> walstore::Result<()> {
//! # let tmp = tempfile::tempdir().map_err(|e| walstore::Error::InvalidArgument(e.to_string()))?;
//! let store = Store::open(tmp.path().join("index"))?; // created if missing, recovered if not
//! let mut txn = store.begin_write();
//! txn.set_meta("last_run", Value::from("2026-11-27"))
//!     .put_fingerprint("code", "src/lib.rs", Fingerprint::new([0xab; 32], 1234, 1_700_000_000)?)
//!     .index_doc("src/lib.rs", "fn atomicWriteJson() {}");
//! let lsn = txn.commit()?; // durable (fdatasync'd) when this returns
//! assert_eq!(lsn, 1);
//!
//! let read = store.read(); // a consistent view at one lsn
//! assert_eq!(read.meta("last_run")?, Some(Value::from("2026-11-27")));
//! assert_eq!(read.postings("write")?.count(), 1);
//! store.checkpoint()?; // snapshot by atomic rename; the covered WAL is dropped later
//! # Ok(())
//! # }
//! ```

#![cfg_attr(
    test,
    allow(
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::panic,
        reason = "tests fail loudly"
    )
)]

pub mod codec;
pub mod error;
pub mod fts;
pub mod header;
pub mod model;
pub mod recovery;
pub mod run;
pub mod snapshot;
pub mod state;
pub mod storage;
mod store;
mod txn;
mod util;
pub mod verify;
pub mod wal;

pub use error::{Error, Result};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
pub use fts::search::{Hit, Query, SearchResults};
pub use fts::{DocTerms, FtsStats};
pub use model::fingerprint::{Fingerprint, FingerprintRef};
pub use model::value::Value;
pub use recovery::{RecoveryReport, SalvageReport, SnapshotRepair, TornTail};
pub use run::RunInfo;
pub use store::{
    CheckpointReport, Durability, HEAD_FILE, LOCK_FILE, LockHolder, Options, RecoveryMode, Store,
    lock_holder, read_holder,
};
pub use txn::{ReadTxn, WriteTxn};
pub use util::format_unix_ms;
pub use verify::{Problem, ProblemKind, VerifyReport, verify};
