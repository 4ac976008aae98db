//! Many writer sessions on one simulated disk, each ending in a
//! clean close, a drop, a process death, a power loss (all unsynced lost, or a random
//! part kept and torn), or a `WriteTxn` that outlives its `Store`. Invariant: a power
//! loss never loses an lsn that was acknowledged durable (an `Immediate` commit, a
//! successful `sync`/`close`, a clean drop, or an open that showed it), and the store
//! content always equals the model at the recovered lsn.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

use walstore::storage::SimStorage;
use walstore::storage::sim::CrashMode;
use walstore::{Durability, Options, Store, Value};

const DIR: &str = "/sessions/store";
const KEYS: u64 = 12;

fn options(sim: &SimStorage, background: bool) -> Options {
    Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(8 * 1024)
        .checkpoint_wal_bytes(12 * 1024)
        .background_checkpoints(background)
}

/// key -> value after each lsn (index = lsn).
type History = Vec<BTreeMap<u64, u64>>;

fn check(store: &Store, history: &History, floor: u64, ctx: &str) {
    let lsn = store.lsn();
    assert!(
        lsn >= floor,
        "{ctx}: lost durable lsns: recovered {lsn} < floor {floor}"
    );
    let expected = &history[usize::try_from(lsn).unwrap()];
    for k in 0..KEYS {
        let got = store
            .read()
            .config(&format!("k{k}"))
            .unwrap()
            .map(|v| match v {
                Value::Int(i) => u64::try_from(i).unwrap(),
                other => panic!("{other:?}"),
            });
        assert_eq!(
            got,
            expected.get(&k).copied(),
            "{ctx}: key k{k} at lsn {lsn}"
        );
    }
}

fn commit(
    store_or_txn: walstore::WriteTxn,
    k: u64,
    v: u64,
    durability: Durability,
) -> walstore::Result<u64> {
    let mut txn = store_or_txn;
    txn.set_config(&format!("k{k}"), Value::from(v));
    // Some filler so segments rotate and checkpoints run.
    txn.set_config(&format!("pad{}", v % 7), Value::from("x".repeat(300)));
    txn.set_durability(durability);
    txn.commit()
}

/// Runs 60 sessions; returns how many opens made no sync (after a clean close).
fn run_seed(seed: u64, background: bool) -> u64 {
    let mut skipped = 0;
    let sim = SimStorage::new(seed);
    let mut rng = Rng::new(seed);
    let mut history: History = vec![BTreeMap::new()];
    let mut floor = 0u64;
    for session in 0..60 {
        let ctx = format!("seed {seed} session {session}");
        let syncs_before = sim.sync_calls();
        let store = match options(&sim, background).open(DIR) {
            Ok(store) => store,
            Err(e) => panic!("{ctx}: open failed: {e}"),
        };
        check(&store, &history, floor, &ctx);
        if sim.sync_calls() == syncs_before {
            skipped += 1;
        }
        history.truncate(usize::try_from(store.lsn()).unwrap() + 1);
        if !store.is_poisoned() {
            // The open made what it recovered durable.
            floor = store.lsn();
        }
        for _ in 0..rng.below(25) {
            let k = rng.below(KEYS);
            let v = rng.below(1_000_000);
            let durability = if rng.below(3) == 0 {
                Durability::Immediate
            } else {
                Durability::None
            };
            match commit(store.begin_write(), k, v, durability) {
                Ok(lsn) => {
                    let mut next = history.last().unwrap().clone();
                    next.insert(k, v);
                    assert_eq!(lsn as usize, history.len(), "{ctx}");
                    history.push(next);
                    if durability == Durability::Immediate {
                        floor = lsn;
                    }
                }
                Err(e) => panic!("{ctx}: commit failed: {e}"),
            }
            if rng.below(20) == 0 {
                store.sync().unwrap();
                floor = store.lsn();
            }
            if rng.below(25) == 0 {
                let _ = store.checkpoint();
            }
        }
        match rng.below(7) {
            0 => {
                let lsn = store.lsn();
                store.close().unwrap();
                floor = lsn;
            }
            1 => {
                let lsn = store.lsn();
                drop(store);
                floor = lsn;
            }
            2 => {
                // Process death: the page cache stays.
                sim.crash(CrashMode::KeepUnsynced);
                drop(store);
            }
            3 => {
                sim.crash(CrashMode::LoseUnsynced);
                drop(store);
            }
            4 => {
                sim.crash(CrashMode::Random);
                drop(store);
            }
            _ => {
                // A WriteTxn outlives its Store (clean close), commits (not durably),
                // then the process dies or power is lost.
                let txn = store.begin_write();
                let lsn = store.lsn();
                drop(store);
                floor = lsn;
                let k = rng.below(KEYS);
                let v = rng.below(1_000_000);
                if let Ok(l) = commit(txn, k, v, Durability::None) {
                    let mut next = history.last().unwrap().clone();
                    next.insert(k, v);
                    assert_eq!(l as usize, history.len(), "{ctx}");
                    history.push(next);
                }
                match rng.below(3) {
                    0 => sim.crash(CrashMode::KeepUnsynced),
                    1 => sim.crash(CrashMode::Random),
                    _ => {}
                }
            }
        }
        // Sometimes a power loss right after the session (nothing new written since).
        if rng.below(4) == 0 {
            sim.crash(CrashMode::LoseUnsynced);
        }
    }
    skipped
}

#[test]
fn sessions_without_background_thread() {
    let skipped: u64 = (1..=60).map(|seed| run_seed(seed, false)).sum();
    assert!(
        skipped > 0,
        "some opens follow a clean close and skip their syncs"
    );
}

#[test]
fn sessions_with_background_thread() {
    let skipped: u64 = (100..=130).map(|seed| run_seed(seed, true)).sum();
    assert!(
        skipped > 0,
        "some opens follow a clean close and skip their syncs"
    );
}
