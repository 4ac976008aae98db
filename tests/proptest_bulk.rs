//! Model-based property test of large commit groups (applied as sorted runs stacked
//! above the active overlay) mixed with small ones: random sequences of large (>= 512
//! ops) and small transactions, deletions, checkpoints, reopens and crashes, against
//! `BTreeMap` models (after a crash: the model after the transaction the store recovered
//! to, at least the last durable one). After every step every fingerprint, metadata key and document is compared
//! (point reads, full and prefix scans), and readers taken earlier must still see the
//! state of their time.
//!
//! `PROPTEST_CASES=200 cargo test --release --test proptest_bulk`
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use walstore::storage::SimStorage;
use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::{Durability, Fingerprint, ReadTxn, Store, Value};

const DIR: &str = "/bulk/store";
const NAMESPACES: [&str; 2] = ["code", "do\0cs"];

#[derive(Debug, Clone)]
enum Change {
    Put(usize, u32, u64),
    Del(usize, u32),
    SetMeta(u8, i64),
    DelMeta(u8),
    IndexDoc(u8),
    RemoveDoc(u8),
}

#[derive(Debug, Clone)]
enum Step {
    Commit(Vec<Change>, bool),
    Checkpoint,
    /// A checkpoint whose snapshot rename fails: the frozen layers are thawed.
    FailedCheckpoint,
    Reopen,
    Crash(CrashMode),
    /// Keep a reader of the current state, checked at the end.
    HoldReader,
}

fn change() -> impl Strategy<Value = Change> {
    let ns = 0..NAMESPACES.len();
    let path = 0u32..1500;
    prop_oneof![
        12 => (ns.clone(), path.clone(), any::<u64>()).prop_map(|(n, p, h)| Change::Put(n, p, h)),
        4 => (ns, path).prop_map(|(n, p)| Change::Del(n, p)),
        1 => (0u8..16, any::<i64>()).prop_map(|(k, v)| Change::SetMeta(k, v)),
        1 => (0u8..16).prop_map(Change::DelMeta),
    ]
}

fn fts_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0u8..4).prop_map(Change::IndexDoc),
        (0u8..4).prop_map(Change::RemoveDoc),
    ]
}

/// A large transaction (>= 512 blind ops, sometimes with FTS ops among them), or a
/// small one.
fn commit() -> impl Strategy<Value = Step> {
    let large = (
        proptest::collection::vec(change(), 512..1200),
        proptest::collection::vec((any::<prop::sample::Index>(), fts_change()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(mut changes, fts, sync)| {
            for (at, change) in fts {
                let at = at.index(changes.len());
                changes.insert(at, change);
            }
            Step::Commit(changes, sync)
        });
    let small = (
        proptest::collection::vec(prop_oneof![4 => change(), 1 => fts_change()], 1..6),
        any::<bool>(),
    )
        .prop_map(|(changes, sync)| Step::Commit(changes, sync));
    prop_oneof![2 => large, 3 => small]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => commit(),
        1 => Just(Step::Checkpoint),
        1 => Just(Step::FailedCheckpoint),
        1 => Just(Step::Reopen),
        1 => prop_oneof![
            Just(CrashMode::KeepUnsynced),
            Just(CrashMode::LoseUnsynced),
            Just(CrashMode::Random),
        ]
        .prop_map(Step::Crash),
        1 => Just(Step::HoldReader),
    ]
}

fn path(p: u32) -> String {
    format!("src/m{:02}/f{p:05}.rs", p % 7)
}

fn fingerprint(h: u64) -> Fingerprint {
    Fingerprint::new(h.to_le_bytes().to_vec(), h % 100_000, h as i64).unwrap()
}

#[derive(Debug, Clone, Default)]
struct Model {
    fingerprints: BTreeMap<(String, String), Fingerprint>,
    meta: BTreeMap<String, Value>,
    docs: BTreeSet<String>,
}

impl Model {
    fn apply(&mut self, change: &Change) {
        match change {
            Change::Put(n, p, h) => {
                self.fingerprints
                    .insert((NAMESPACES[*n].to_owned(), path(*p)), fingerprint(*h));
            }
            Change::Del(n, p) => {
                self.fingerprints
                    .remove(&(NAMESPACES[*n].to_owned(), path(*p)));
            }
            Change::SetMeta(k, v) => {
                self.meta.insert(format!("k{k}"), Value::Int(*v));
            }
            Change::DelMeta(k) => {
                self.meta.remove(&format!("k{k}"));
            }
            Change::IndexDoc(d) => {
                self.docs.insert(format!("doc{d}"));
            }
            Change::RemoveDoc(d) => {
                self.docs.remove(&format!("doc{d}"));
            }
        }
    }
}

fn open(sim: &SimStorage) -> Store {
    Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(64 * 1024)
        .checkpoint_wal_bytes(512 * 1024)
        .background_checkpoints(false)
        .durability(Durability::None)
        .open(Path::new(DIR))
        .expect("open")
}

/// The store (through `read`) shows exactly `model`.
fn check(read: &ReadTxn, model: &Model, what: &str) -> Result<(), TestCaseError> {
    let all: Vec<_> = read
        .all_fingerprints()
        .expect("scan")
        .map(|entry| entry.expect("entry"))
        .map(|(ns, path, fp)| ((ns, path), fp))
        .collect();
    let expected: Vec<_> = model
        .fingerprints
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    prop_assert!(all == expected, "{}: full scan differs", what);
    for ns in NAMESPACES {
        let listed: Vec<_> = read
            .fingerprints(ns)
            .expect("scan")
            .map(|entry| entry.expect("entry"))
            .collect();
        let expected: Vec<_> = model
            .fingerprints
            .range((ns.to_owned(), String::new())..)
            .take_while(|((n, _), _)| n == ns)
            .map(|((_, p), fp)| (p.clone(), fp.clone()))
            .collect();
        prop_assert!(listed == expected, "{}: scan of {:?} differs", what, ns);
    }
    for (n, ns) in NAMESPACES.iter().enumerate() {
        for p in (0..1500).step_by(37 + n) {
            let got = read.fingerprint(ns, &path(p)).expect("get");
            let expected = model.fingerprints.get(&((*ns).to_owned(), path(p)));
            prop_assert_eq!(got.as_ref(), expected, "{}: get {} {}", what, ns, p);
        }
    }
    let meta: BTreeMap<_, _> = read.metadata().expect("metadata").into_iter().collect();
    prop_assert_eq!(&meta, &model.meta, "{}: metadata", what);
    for d in 0..4 {
        let name = format!("doc{d}");
        prop_assert_eq!(
            read.doc(&name).expect("doc").is_some(),
            model.docs.contains(&name),
            "{}: {}",
            what,
            name
        );
    }
    Ok(())
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let sim = SimStorage::new(7);
    let mut store = Some(open(&sim));
    let mut model = Model::default();
    let mut readers: Vec<(ReadTxn, Model)> = Vec::new();
    // The model after each lsn, and the last lsn known durable.
    let mut history: Vec<(u64, Model)> = vec![(0, Model::default())];
    let mut durable = 0u64;
    for (i, step) in steps.iter().enumerate() {
        let what = format!("step {i} ({})", step_name(step));
        match step {
            Step::Commit(changes, sync) => {
                let live = store.as_ref().unwrap();
                let mut txn = live.begin_write();
                if *sync {
                    txn.set_durability(Durability::Immediate);
                }
                for change in changes {
                    match change {
                        Change::Put(n, p, h) => {
                            txn.put_fingerprint(NAMESPACES[*n], &path(*p), fingerprint(*h))
                        }
                        Change::Del(n, p) => txn.delete_fingerprint(NAMESPACES[*n], &path(*p)),
                        Change::SetMeta(k, v) => txn.set_meta(&format!("k{k}"), Value::Int(*v)),
                        Change::DelMeta(k) => txn.delete_meta(&format!("k{k}")),
                        Change::IndexDoc(d) => {
                            txn.index_doc(&format!("doc{d}"), &format!("word{d} common"))
                        }
                        Change::RemoveDoc(d) => txn.remove_doc(&format!("doc{d}")),
                    };
                    model.apply(change);
                }
                let lsn = txn.commit().expect("commit");
                if *sync {
                    durable = lsn;
                }
                history.push((lsn, model.clone()));
            }
            Step::Checkpoint => {
                let live = store.as_ref().unwrap();
                live.checkpoint().expect("checkpoint");
                durable = live.lsn();
            }
            Step::FailedCheckpoint => {
                // Its rename fails: the checkpoint thaws what it froze, under whatever
                // the stack holds, and the next checks see the model still.
                sim.inject(Fault {
                    at_call: 1,
                    kind: FaultKind::Eio,
                    persistent: false,
                    only: Some(CallKind::Rename),
                });
                let _ = store.as_ref().unwrap().checkpoint();
                sim.clear_faults();
            }
            Step::Crash(mode) => {
                sim.crash(*mode);
                drop(store.take());
                let reopened = open(&sim);
                let lsn = reopened.lsn();
                prop_assert!(
                    lsn >= durable,
                    "{}: lsn {} < durable {}",
                    what,
                    lsn,
                    durable
                );
                let at = history.iter().position(|(l, _)| *l == lsn);
                prop_assert!(
                    at.is_some(),
                    "{}: recovered to lsn {} never committed",
                    what,
                    lsn
                );
                history.truncate(at.unwrap() + 1);
                model = history.last().unwrap().1.clone();
                durable = lsn;
                store = Some(reopened);
            }
            Step::Reopen => {
                // Readers keep their versions (and the mapped snapshots) across it.
                store.take().unwrap().close().expect("close");
                store = Some(open(&sim));
            }
            Step::HoldReader => readers.push((store.as_ref().unwrap().read(), model.clone())),
        }
        check(&store.as_ref().unwrap().read(), &model, &what)?;
    }
    for (k, (read, then)) in readers.iter().enumerate() {
        check(read, then, &format!("reader {k}"))?;
    }
    Ok(())
}

fn step_name(step: &Step) -> String {
    match step {
        Step::Commit(changes, sync) => format!("commit of {} ops, sync {sync}", changes.len()),
        other => format!("{other:?}"),
    }
}

#[test]
fn large_and_small_transactions_match_the_model() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(step(), 1..16), |steps| {
            run(&steps)
        })
        .unwrap();
}

/// Large commits while checkpoints run on another thread: a checkpoint that freezes (or
/// installs) while a group is being applied makes the leader apply it again to the new
/// working version; nothing may be lost or reordered.
#[test]
fn large_commits_during_checkpoints_match_the_model() {
    // On the real file system: a group's `fdatasync` takes long enough for checkpoints
    // to freeze and install while it is applied.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let open = || {
        Store::options()
            .segment_bytes(1 << 20)
            .checkpoint_wal_bytes(0)
            .open(dir.path().join("store"))
            .expect("open")
    };
    let store = open();
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut model = Model::default();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                store.checkpoint().expect("checkpoint");
            }
        });
        for round in 0u64..60 {
            let mut txn = store.begin_write();
            for k in 0..600u64 {
                let p = ((round * 211 + k * 7) % 1500) as u32;
                let change = if (round + k) % 5 == 0 {
                    Change::Del((k % 2) as usize, p)
                } else {
                    Change::Put((k % 2) as usize, p, round * 10_000 + k)
                };
                match &change {
                    Change::Put(n, p, h) => {
                        txn.put_fingerprint(NAMESPACES[*n], &path(*p), fingerprint(*h))
                    }
                    Change::Del(n, p) => txn.delete_fingerprint(NAMESPACES[*n], &path(*p)),
                    _ => unreachable!(),
                };
                model.apply(&change);
            }
            txn.commit().expect("commit");
            // Checked now and then only: back-to-back commits overlap the checkpoints.
            if round % 10 == 9 {
                check(&store.read(), &model, &format!("round {round}")).expect("matches");
            }
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    store.close().expect("close");
    check(&open().read(), &model, "reopened").expect("matches");
}
