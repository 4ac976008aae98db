//! Simulated power loss at every sync point. A seeded workload over every collection, with
//! automatic checkpoints and segment rotations, runs against the simulated storage; the
//! n-th fdatasync (or directory fsync) fails and every later write fails too, which
//! freezes the disk right before that sync completed. The disk then crashes in several
//! ways (all unsynced writes lost, all kept, random subsets kept with the last writes
//! torn), is recovered, and must equal the model after a prefix of the transactions that
//! includes every acknowledged one. A sample of the recoveries is itself interrupted by a
//! crash and run again.
//!
//! `WALSTORE_CRASH_TXNS=5000 cargo test --release --test crash_sim -- --nocapture`
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;
mod model;

use std::sync::Arc;

use model::{Model, Workload};
use walstore::storage::SimStorage;
use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::{Options, Store};

const DIR: &str = "/crash/store";

/// What a crash-sim run varies.
#[derive(Debug, Clone, Copy)]
struct Config {
    keep_fallback: bool,
    /// Synced groups written around the page cache (the default) or through it.
    direct_io: bool,
}

fn options(sim: &SimStorage, variant: Config) -> Options {
    Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(16 * 1024)
        .checkpoint_wal_bytes(8 * 1024)
        .background_checkpoints(false)
        .keep_fallback(variant.keep_fallback)
        .direct_io(variant.direct_io)
}

/// Runs the workload until a commit fails. Returns the lsns acknowledged, and whether a
/// checkpoint kept a superseded snapshot's file for reuse on the way (snapshot::reuse).
fn run(sim: &SimStorage, workload: &Workload, variant: Config) -> (Vec<u64>, bool) {
    let mut acknowledged = Vec::new();
    let mut kept_spare = false;
    let Ok(store) = options(sim, variant).open(DIR) else {
        return (acknowledged, kept_spare);
    };
    for txn in &workload.txns {
        let mut write = store.begin_write();
        txn.apply_to(&mut write);
        match write.commit() {
            Ok(lsn) => acknowledged.push(lsn),
            Err(_) => break,
        }
        kept_spare = kept_spare
            || sim
                .file_names(DIR)
                .iter()
                .any(|name| name == "00000000000000000000.snap.tmp");
    }
    (acknowledged, kept_spare)
}

#[test]
fn crash_at_every_sync_point() {
    let variant = Config {
        keep_fallback: true,
        direct_io: true,
    };
    crash_at_every_sync_point_with(variant, 1000);
}

/// The same with `keep_fallback(false)`: checkpoints delete more, and sooner.
#[test]
fn crash_at_every_sync_point_without_a_fallback() {
    let variant = Config {
        keep_fallback: false,
        direct_io: true,
    };
    crash_at_every_sync_point_with(variant, 300);
}

/// The same with every group written through the page cache (`direct_io(false)`, or a
/// file system without direct I/O).
#[test]
fn crash_at_every_sync_point_through_the_page_cache() {
    let variant = Config {
        keep_fallback: true,
        direct_io: false,
    };
    crash_at_every_sync_point_with(variant, 300);
}

fn crash_at_every_sync_point_with(config: Config, default_txns: usize) {
    let txns: usize = std::env::var("WALSTORE_CRASH_TXNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_txns);
    let workload = Workload::generate(0x5eed, txns);
    let model = Model::replay(&workload);
    let (mut points, mut images, mut lost, mut partial, mut recovery_crashes) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    // Crash points reached after a checkpoint kept a superseded snapshot's file for the
    // next one to write over (snapshot::reuse).
    let mut reuse_points = 0u64;
    for kind in [CallKind::SyncData, CallKind::SyncDir] {
        for n in 1.. {
            let probe = SimStorage::new(n);
            probe.inject(Fault {
                at_call: n,
                kind: FaultKind::Eio,
                persistent: true,
                only: Some(kind),
            });
            let (acknowledged, kept_spare) = run(&probe, &workload, config);
            if acknowledged.len() == workload.txns.len() {
                break; // fewer syncs of this kind than n: past the last point
            }
            points += 1;
            reuse_points += u64::from(kept_spare);
            let last_acknowledged = acknowledged.last().copied().unwrap_or(0);
            let attempted = acknowledged.len() as u64 + 1;
            for (variant, mode) in [
                CrashMode::LoseUnsynced,
                CrashMode::KeepUnsynced,
                CrashMode::Random,
                CrashMode::Random,
            ]
            .into_iter()
            .enumerate()
            {
                let sim = probe.fork(n * 4 + variant as u64);
                sim.clear_faults();
                sim.crash(mode);
                images += 1;
                if variant == 3 && n % 5 == 0 {
                    // Crash during recovery, then recover again.
                    let calls = sim.calls();
                    sim.inject(Fault {
                        at_call: calls + 1 + n % 7,
                        kind: FaultKind::Eio,
                        persistent: true,
                        only: None,
                    });
                    let _ = options(&sim, config).open(DIR);
                    sim.clear_faults();
                    sim.crash(CrashMode::Random);
                    recovery_crashes += 1;
                }
                let store = options(&sim, config).open(DIR).unwrap_or_else(|e| {
                    panic!("seed {n} kind {kind:?} mode {mode:?}: recovery failed: {e}")
                });
                let lsn = store.lsn();
                if lsn < last_acknowledged {
                    lost += last_acknowledged - lsn;
                }
                let dump = common::dump(&store);
                if lsn > attempted || dump != model.dumps[lsn as usize] {
                    partial += 1;
                    eprintln!(
                        "MISMATCH seed {n} kind {kind:?} mode {mode:?}: lsn {lsn}, acknowledged {last_acknowledged}"
                    );
                }
                let leftovers: Vec<String> = sim
                    .file_names(DIR)
                    .into_iter()
                    .filter(|n| n.contains(".tmp"))
                    .collect();
                assert!(
                    leftovers.is_empty(),
                    "temps left after recovery: {leftovers:?}"
                );
                let mut write = store.begin_write();
                write.set_meta("after-crash", 1i64);
                assert_eq!(
                    write.commit().expect("the recovered store accepts commits"),
                    lsn + 1
                );
            }
        }
    }
    println!(
        "crash-sim{}{}: {images} crash images from {points} crash points ({txns} transactions, {recovery_crashes} recoveries crashed and rerun, {reuse_points} points after a superseded snapshot's file was kept for reuse), {lost} acknowledged commits lost, {partial} partial transactions",
        if config.keep_fallback {
            ""
        } else {
            " (no fallback)"
        },
        if config.direct_io {
            ""
        } else {
            " (page cache)"
        }
    );
    assert!(
        points > txns as u64,
        "every commit's sync is a crash point: {points}"
    );
    assert_eq!((lost, partial), (0, 0));
    assert!(
        reuse_points > 0,
        "some crash points come after a file was kept for reuse"
    );
}
