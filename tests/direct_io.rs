//! Synced groups written around the page cache (`wal::direct`): the segments they leave
//! are the bytes buffered appends leave, groups committed with `Durability::None` (through
//! the page cache) mix with them in one block, and every acknowledged durable commit
//! survives a power loss after it, also when the appends follow a torn tail that
//! recovery cut. With 512- and 4096-byte blocks.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::Rng;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use walstore::storage::sim::CrashMode;
use walstore::storage::{FsStorage, SimStorage, Storage};
use walstore::{Durability, Options, Store, Value};

const DIR: &str = "/direct/store";

fn options(storage: Arc<dyn Storage>, direct_io: bool) -> Options {
    Store::options()
        .storage(storage)
        .segment_bytes(16 * 1024)
        .checkpoint_wal_bytes(0)
        .background_checkpoints(false)
        .direct_io(direct_io)
}

/// Commit `i`: a config value whose length varies (records of 40 to about 2,000 bytes,
/// so groups start and end anywhere in a block and some cross blocks), committed with
/// `Durability::None` two times in three.
fn commit(store: &Store, i: u64) -> u64 {
    let mut txn = store.begin_write();
    let text = "x".repeat(((i * 7_919) % 1_900) as usize);
    txn.set_config(&format!("k{}", i % 40), Value::from(text));
    if !i.is_multiple_of(3) {
        txn.set_durability(Durability::None);
    }
    txn.commit().expect("commit")
}

fn segments(sim: &SimStorage) -> Vec<(String, Vec<u8>)> {
    let mut names = sim.file_names(DIR);
    names.sort();
    names
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .map(|n| {
            let bytes = sim.read_file(Path::new(DIR).join(&n)).expect("segment");
            (n, bytes)
        })
        .collect()
}

#[test]
fn direct_and_buffered_appends_leave_the_same_segments() {
    let [direct, buffered] = [true, false].map(|direct_io| {
        let sim = SimStorage::new(3);
        let store = options(Arc::new(sim.clone()), direct_io)
            .open(DIR)
            .expect("open");
        for i in 1..=120 {
            assert_eq!(commit(&store, i), i);
        }
        store.sync().expect("sync");
        drop(store);
        segments(&sim)
    });
    assert!(direct.len() > 3, "the workload rotates segments");
    assert_eq!(
        direct.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        buffered.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    // Past the header, which holds each store's own id.
    let body = |bytes: &[u8]| bytes[walstore::header::HEADER_BYTES..].to_vec();
    for ((name, direct), (_, buffered)) in direct.iter().zip(&buffered) {
        let (direct, buffered) = (body(direct), body(buffered));
        let first = direct.iter().zip(&buffered).position(|(a, b)| a != b);
        assert!(
            direct == buffered,
            "{name} differs: lengths {} and {}, first at {first:?}",
            direct.len(),
            buffered.len()
        );
    }
}

/// After each durable commit, a power loss (unsynced writes lost, or kept in part and
/// torn) keeps it and everything before it.
#[test]
fn mixed_groups_survive_a_power_loss_after_each_durable_commit() {
    let sim = SimStorage::new(5);
    let store = options(Arc::new(sim.clone()), true)
        .open(DIR)
        .expect("open");
    let reference_sim = SimStorage::new(5);
    let reference = options(Arc::new(reference_sim), false)
        .open(DIR)
        .expect("open reference");
    let mut dumps = vec![common::dump(&reference)];
    for i in 1..=90 {
        commit(&store, i);
        commit(&reference, i);
        dumps.push(common::dump(&reference));
        if !i.is_multiple_of(3) {
            continue;
        }
        for (seed, mode) in [CrashMode::LoseUnsynced, CrashMode::Random]
            .into_iter()
            .enumerate()
        {
            let image = sim.fork(i * 2 + seed as u64);
            image.crash(mode);
            let recovered = options(Arc::new(image), true)
                .open(DIR)
                .unwrap_or_else(|e| panic!("commit {i} {mode:?}: recovery failed: {e}"));
            let lsn = recovered.lsn();
            assert!(lsn >= i, "commit {i} {mode:?}: recovered only up to {lsn}");
            assert!(
                common::dump(&recovered) == dumps[lsn as usize],
                "commit {i} {mode:?}: the state differs"
            );
        }
    }
}

/// On the real file system (direct where it supports it): the same mix, reopened.
#[test]
fn mixed_groups_reopen_on_the_file_system() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let expected = {
        let store = options(Arc::new(FsStorage), true).open(&dir).expect("open");
        for i in 1..=120 {
            assert_eq!(commit(&store, i), i);
        }
        store.sync().expect("sync");
        common::dump(&store)
    };
    let store = options(Arc::new(FsStorage), true)
        .open(&dir)
        .expect("reopen");
    assert_eq!(store.lsn(), 120);
    assert_eq!(common::dump(&store), expected);
    drop(store);
    let report = walstore::verify(&FsStorage, &dir).expect("verify");
    assert!(report.problems.is_empty(), "verify: {report:?}");
    assert_eq!(report.lsn, 120);
}

/// Commits one config value of a random size (half of them under 120 bytes, so many
/// groups start and end in one sector), durable or not. Returns `(lsn, value)`.
fn commit_random(store: &Store, rng: &mut Rng, durable: bool) -> (u64, String) {
    let len = match rng.next_u64() % 2 {
        0 => rng.next_u64() % 120,
        _ => rng.next_u64() % 2_500,
    } as usize;
    let lsn = store.lsn() + 1;
    let value: String = format!("{lsn}:")
        .repeat(len + 1)
        .chars()
        .take(len)
        .collect();
    let mut txn = store.begin_write();
    txn.set_config(&format!("k{lsn}"), Value::from(value.clone()));
    if !durable {
        txn.set_durability(Durability::None);
    }
    assert_eq!(txn.commit().expect("commit"), lsn);
    (lsn, value)
}

/// The store holds every value up to its lsn, which is at least `acknowledged`.
fn check(store: &Store, expected: &BTreeMap<u64, String>, acknowledged: u64, what: &str) {
    let lsn = store.lsn();
    assert!(
        lsn >= acknowledged,
        "{what}: lsn {lsn}, acknowledged {acknowledged}"
    );
    let read = store.read();
    for (lsn, value) in expected.range(..=lsn) {
        let found = read.config(&format!("k{lsn}")).expect("read");
        assert_eq!(found, Some(Value::from(value.clone())), "{what}: k{lsn}");
    }
}

/// Durable and unsynced commits, a process death and a power loss that tears the
/// unsynced ones, recovery (which cuts the torn tail), then more commits appended
/// directly after the cut, another tearing power loss, recovery: every acknowledged
/// durable commit is there, intact (found by review: nothing appended after a cut tail
/// was crashed again before).
#[test]
fn appends_after_a_torn_tail_survive_another_power_loss() {
    for block_bytes in [512, 4096] {
        for seed in 1..150u64 {
            let mut rng = Rng::new(seed);
            let sim = SimStorage::new(seed);
            sim.set_direct_block_bytes(block_bytes);
            let mut expected = BTreeMap::new();
            let mut acknowledged = 0;
            let store = options(Arc::new(sim.clone()), true)
                .open(DIR)
                .expect("open");
            for _ in 0..rng.next_u64() % 12 {
                let durable = rng.next_u64().is_multiple_of(3);
                let (lsn, value) = commit_random(&store, &mut rng, durable);
                expected.insert(lsn, value);
                if durable {
                    acknowledged = lsn;
                }
            }
            for _ in 0..1 + rng.next_u64() % 4 {
                let (lsn, value) = commit_random(&store, &mut rng, false);
                expected.insert(lsn, value);
            }
            std::mem::forget(store); // the process dies: no sync at drop
            sim.crash(CrashMode::Random);
            let what = format!("block {block_bytes} seed {seed}");
            let store = options(Arc::new(sim.clone()), true)
                .open(DIR)
                .unwrap_or_else(|e| panic!("{what}: first recovery: {e}"));
            check(&store, &expected, acknowledged, &format!("{what}, first"));
            let recovered = store.lsn();
            expected.retain(|&lsn, _| lsn <= recovered);
            for _ in 0..1 + rng.next_u64() % 12 {
                let durable = !rng.next_u64().is_multiple_of(3);
                let (lsn, value) = commit_random(&store, &mut rng, durable);
                expected.insert(lsn, value);
                if durable {
                    acknowledged = lsn;
                }
            }
            let image = sim.fork(seed + 1_000);
            std::mem::forget(store);
            image.crash(CrashMode::Random);
            let store = options(Arc::new(image), true)
                .open(DIR)
                .unwrap_or_else(|e| panic!("{what}: second recovery: {e}"));
            check(&store, &expected, acknowledged, &format!("{what}, second"));
        }
    }
}
