//! Group commit under concurrency, on the simulated storage: committers on several threads
//! (durable and not), `Store::sync` calls, background checkpoints and segment rotations, and
//! readers, with an fdatasync failure at a seeded point. Then power is lost and the store
//! reopened:
//!
//! - every acknowledged durable commit (an `Immediate` commit that returned its lsn, or a
//!   `Durability::None` commit a later successful `sync` covered) survives;
//! - with `Immediate` commits only, nothing a reader ever saw is lost: the published
//!   state never runs ahead of the durable one;
//! - lsns are unique, and after the failure nothing is acknowledged and no fsync is retried.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test fails loudly"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{Backend, fingerprint};
use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::{Durability, Store};

/// Committers, commits each and operations per commit.
#[derive(Clone, Copy)]
struct Shape {
    threads: u64,
    commits: u64,
    ops: u64,
    /// Segment size and automatic checkpoint threshold, so both happen during the run.
    segment_bytes: u64,
    checkpoint_bytes: u64,
}

const SMALL: Shape = Shape {
    threads: 6,
    commits: 120,
    ops: 1,
    segment_bytes: 8 * 1024,
    checkpoint_bytes: 24 * 1024,
};
/// Large enough to be applied beside the fdatasync (`commit.rs`, `PARALLEL_APPLY_OPS`).
const LARGE: Shape = Shape {
    threads: 3,
    commits: 8,
    ops: 600,
    segment_bytes: 128 * 1024,
    checkpoint_bytes: 256 * 1024,
};

fn key(t: u64, i: u64, k: u64) -> String {
    format!("t{t}/f{i}/{k}")
}

#[derive(Default)]
struct Outcome {
    /// `(thread, i)` → lsn of the commits acknowledged as durable.
    durable: BTreeMap<(u64, u64), u64>,
    /// `(thread, i)` → lsn of `Durability::None` commits (durable once a sync covers them).
    written: BTreeMap<(u64, u64), u64>,
    /// Highest lsn a successful `sync` covered.
    synced: u64,
    /// Every lsn returned.
    lsns: Vec<u64>,
}

fn run(shape: Shape, seed: u64, fail_at_sync: Option<u64>, with_none: bool) {
    let backend = Backend::sim(seed);
    let sim = backend.sim.clone().expect("sim backend");
    let store = Arc::new(
        backend
            .options()
            .segment_bytes(shape.segment_bytes)
            .checkpoint_wal_bytes(shape.checkpoint_bytes)
            .open(&backend.dir)
            .expect("open"),
    );
    if let Some(at_call) = fail_at_sync {
        sim.inject(Fault {
            at_call,
            kind: FaultKind::Eio,
            persistent: false,
            only: Some(CallKind::SyncData),
        });
    }
    let outcome = Mutex::new(Outcome::default());
    let done = AtomicBool::new(false);
    let seen = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let committers: Vec<_> = (0..shape.threads)
            .map(|t| {
                let (store, outcome) = (&store, &outcome);
                scope.spawn(move || {
                    for i in 0..shape.commits {
                        let immediate = !with_none || !(i + t + seed).is_multiple_of(4);
                        let mut txn = store.begin_write();
                        for k in 0..shape.ops {
                            txn.put_fingerprint("code", &key(t, i, k), fingerprint(i + t + k));
                        }
                        if !immediate {
                            txn.set_durability(Durability::None);
                        }
                        let Ok(lsn) = txn.commit() else {
                            return;
                        };
                        let mut outcome = outcome.lock().expect("outcome");
                        outcome.lsns.push(lsn);
                        let into = match immediate {
                            true => &mut outcome.durable,
                            false => &mut outcome.written,
                        };
                        into.insert((t, i), lsn);
                    }
                })
            })
            .collect();
        let syncer = scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let before = store.lsn();
                if store.sync().is_err() {
                    return;
                }
                let mut outcome = outcome.lock().expect("outcome");
                outcome.synced = outcome.synced.max(before);
                drop(outcome);
                std::thread::yield_now();
            }
        });
        let reader = scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let view = store.read();
                let lsn = view.lsn();
                assert!(
                    lsn >= seen.load(Ordering::Acquire),
                    "published lsn went back"
                );
                seen.fetch_max(lsn, Ordering::AcqRel);
                std::thread::yield_now();
            }
        });
        for committer in committers {
            committer.join().expect("committer");
        }
        done.store(true, Ordering::Release);
        syncer.join().expect("syncer");
        reader.join().expect("reader");
    });
    let outcome = outcome.into_inner().expect("outcome");
    let mut lsns = outcome.lsns.clone();
    lsns.sort_unstable();
    let len = lsns.len();
    lsns.dedup();
    assert_eq!(lsns.len(), len, "lsns are unique");

    if store.is_poisoned() {
        let syncs = sim.sync_calls();
        assert!(store.sync().is_err(), "a poisoned store syncs nothing");
        let mut txn = store.begin_write();
        txn.set_meta("after", "failure");
        assert!(
            txn.commit().is_err(),
            "a poisoned store acknowledges nothing"
        );
        assert_eq!(sim.sync_calls(), syncs, "no fsync after the failure");
    } else {
        assert_eq!(
            outcome.durable.len() + outcome.written.len(),
            (shape.threads * shape.commits) as usize,
            "without a failure every commit succeeds"
        );
    }
    let seen = seen.load(Ordering::Acquire);
    // Without a failure, the state built in memory (groups applied beside their sync,
    // large ones through prepared steps) is the state recovery replays from the log.
    let live = match store.is_poisoned() {
        true => None,
        false => {
            store.sync().expect("sync");
            let read = store.read();
            let all: Vec<_> = read.all_fingerprints().expect("scan").collect();
            Some((read.lsn(), format!("{all:?}")))
        }
    };

    sim.crash(CrashMode::LoseUnsynced);
    drop(store);
    let reopened: Store = backend.open();
    let read = reopened.read();
    let mut expected: Vec<((u64, u64), u64)> = outcome.durable.into_iter().collect();
    expected.extend(
        outcome
            .written
            .into_iter()
            .filter(|&(_, lsn)| lsn <= outcome.synced),
    );
    for ((t, i), lsn) in expected {
        for k in [0, shape.ops / 2, shape.ops - 1] {
            assert_eq!(
                read.fingerprint("code", &key(t, i, k)).expect("read"),
                Some(fingerprint(i + t + k)),
                "seed {seed} fail_at_sync {fail_at_sync:?}: acknowledged commit lsn {lsn} lost"
            );
        }
    }
    if let Some((lsn, all)) = live {
        let replayed: Vec<_> = read.all_fingerprints().expect("scan").collect();
        assert_eq!(reopened.lsn(), lsn, "seed {seed}: every commit was synced");
        assert_eq!(
            format!("{replayed:?}"),
            all,
            "seed {seed}: memory == replay"
        );
    }
    if !with_none {
        assert!(
            reopened.lsn() >= seen,
            "seed {seed} fail_at_sync {fail_at_sync:?}: a reader saw lsn {seen}, only {} survived",
            reopened.lsn()
        );
    }
}

#[test]
fn concurrent_commits_without_failure() {
    for seed in 0..4 {
        run(SMALL, seed, None, seed % 2 == 1);
        run(LARGE, seed, None, seed % 2 == 1);
    }
}

#[test]
fn concurrent_commits_with_a_failed_fdatasync() {
    for seed in 0..32u64 {
        run(SMALL, seed, Some(3 + seed * 37 % 500), seed % 2 == 1);
    }
}

#[test]
fn large_concurrent_commits_with_a_failed_fdatasync() {
    for seed in 0..16u64 {
        run(LARGE, seed, Some(2 + seed * 5 % 30), seed % 2 == 1);
    }
}
