//! The spare segment (`wal::spare`): rotations use it, it is allocated (not sparse), a
//! clean close removes it, recovery removes a leftover, and its failures are handled:
//! a failed write leaves no spare and commits go on, a failed fdatasync poisons.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::{Backend, commit_step, dump, for_each_backend};
use walstore::storage::SimStorage;
use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::{Error, Options, Store};

const SPARE: &str = "00000000000000000000.wal.tmp";
const SEGMENT_BYTES: u64 = 16 * 1024;

fn options(backend: &Backend) -> Options {
    backend
        .options()
        .segment_bytes(SEGMENT_BYTES)
        .checkpoint_wal_bytes(0)
        .background_checkpoints(false)
}

fn has_spare(backend: &Backend) -> bool {
    backend.names().iter().any(|n| n == SPARE)
}

/// Commits steps from `from` until a second segment exists; returns the next step.
fn commit_until_rotated(backend: &Backend, store: &Store, from: u64) -> u64 {
    let mut i = from;
    while backend.names_ending(".wal").len() < 2 {
        commit_step(store, i);
        i += 1;
        assert!(i < from + 1000, "no rotation after 1000 commits");
    }
    i
}

#[test]
fn a_rotation_makes_the_next_segment_from_the_zeroed_spare() {
    for_each_backend(|backend| {
        let store = options(backend).open(&backend.dir).expect("open");
        assert!(
            !has_spare(backend),
            "[{}] no spare before a commit",
            backend.name
        );
        commit_step(&store, 1);
        assert!(
            has_spare(backend),
            "[{}] a commit asks for a spare",
            backend.name
        );
        assert_eq!(
            backend.read(SPARE),
            vec![0u8; SEGMENT_BYTES as usize],
            "[{}] the spare is zeros",
            backend.name
        );
        let next = commit_until_rotated(backend, &store, 2);
        let segments = backend.names_ending(".wal");
        let rotated = backend.read(&segments[1]);
        assert_eq!(rotated.len() as u64, SEGMENT_BYTES, "[{}]", backend.name);
        if backend.sim.is_none() {
            // Holding one group, the rotated segment has all its blocks: a sparse one
            // would have only the header's and the group's.
            use std::os::unix::fs::MetadataExt;
            let blocks_bytes = |name: &str| {
                std::fs::metadata(backend.path(name))
                    .expect("stat")
                    .blocks()
                    * 512
            };
            assert!(
                blocks_bytes(&segments[1]) >= SEGMENT_BYTES,
                "the rotated segment is allocated: {} bytes",
                blocks_bytes(&segments[1])
            );
        }
        // The rotation asked for the next spare.
        commit_step(&store, next);
        assert!(
            has_spare(backend),
            "[{}] a new spare after the rotation",
            backend.name
        );
        let before = dump(&store);
        drop(store);
        assert!(
            backend.names().iter().all(|n| !n.ends_with(".tmp")),
            "[{}] a clean close leaves no temporary: {:?}",
            backend.name,
            backend.names()
        );
        if backend.sim.is_none() {
            // The clean close gave the zeros after the last record back as a hole, so
            // the next open reads only the records.
            use std::os::unix::fs::MetadataExt;
            let active = backend.names_ending(".wal").pop().expect("a segment");
            let blocks_bytes = std::fs::metadata(backend.path(&active))
                .expect("stat")
                .blocks()
                * 512;
            assert!(
                blocks_bytes < SEGMENT_BYTES,
                "the active segment's unused zeros are a hole after close: {blocks_bytes} bytes"
            );
        }
        let reopened = options(backend).open(&backend.dir).expect("reopen");
        assert_eq!(dump(&reopened), before, "[{}]", backend.name);
        assert!(reopened.recovery_report().temps_removed.is_empty());
    });
}

#[test]
fn a_spare_left_by_a_crash_is_removed_and_nothing_is_lost() {
    let backend = Backend::sim(11);
    let sim: &SimStorage = backend.sim.as_ref().expect("sim");
    let store = options(&backend).open(&backend.dir).expect("open");
    let next = commit_until_rotated(&backend, &store, 1);
    commit_step(&store, next);
    assert!(has_spare(&backend));
    let before = dump(&store);
    sim.crash(CrashMode::Random);
    drop(store);
    let reopened = options(&backend).open(&backend.dir).expect("recover");
    assert_eq!(
        dump(&reopened),
        before,
        "every acknowledged commit survives"
    );
    let removed = &reopened.recovery_report().temps_removed;
    assert!(
        removed.iter().all(|p| p.ends_with(SPARE)),
        "only the spare: {removed:?}"
    );
    assert!(!has_spare(&backend), "recovery removed the spare");
    commit_step(&reopened, next + 1);
}

/// Arms a fault on the `nth` call of `kind` from now.
fn arm(sim: &SimStorage, kind: CallKind, nth: u64, error: FaultKind) {
    sim.inject(Fault {
        at_call: nth,
        kind: error,
        persistent: false,
        only: Some(kind),
    });
}

#[test]
fn a_failed_spare_write_leaves_no_spare_and_commits_go_on() {
    let backend = Backend::sim(12);
    let sim = backend.sim.clone().expect("sim");
    let store = options(&backend).open(&backend.dir).expect("open");
    // The first commit writes its record, then `HEAD`, then the spare's zeros.
    arm(&sim, CallKind::Write, 3, FaultKind::Enospc);
    commit_step(&store, 1);
    assert!(!store.is_poisoned(), "a spare is not the log");
    assert!(!has_spare(&backend), "the failed spare was removed");
    // Rotations fall back to sparse segments; nothing is lost.
    let next = commit_until_rotated(&backend, &store, 2);
    let before = dump(&store);
    drop(store);
    let reopened = options(&backend).open(&backend.dir).expect("reopen");
    assert_eq!(dump(&reopened), before);
    commit_step(&reopened, next);
}

#[test]
fn a_failed_spare_fdatasync_poisons_the_store() {
    // The first commit syncs its record, then the spare.
    a_failed_spare_sync_poisons_the_store(CallKind::SyncData, 2, SEGMENT_BYTES);
}

#[test]
fn a_failed_spare_write_back_poisons_the_store() {
    // The spare's zeros are pushed to the device in steps (`storage::pacing`) before its
    // fdatasync; a failed step may have lost pages that fdatasync would not report. Here
    // the committing thread prepares it (no background thread): write-back is started
    // after each piece, which the fault fails.
    a_failed_spare_sync_poisons_the_store(CallKind::WriteBack, 1, 256 * 1024);
}

fn a_failed_spare_sync_poisons_the_store(kind: CallKind, nth: u64, segment_bytes: u64) {
    let backend = Backend::sim(13);
    let sim = backend.sim.clone().expect("sim");
    let store = options(&backend)
        .segment_bytes(segment_bytes)
        .open(&backend.dir)
        .expect("open");
    arm(&sim, kind, nth, FaultKind::Eio);
    let lsn = commit_step(&store, 1);
    assert_eq!(lsn, 1, "the commit itself was durable and acknowledged");
    assert!(store.is_poisoned(), "a failed fdatasync poisons");
    assert!(!has_spare(&backend));
    let mut txn = store.begin_write();
    txn.set_config("after", walstore::Value::from(1u64));
    assert!(matches!(txn.commit(), Err(Error::Poisoned)));
    let before = dump(&store);
    drop(store);
    sim.crash(CrashMode::LoseUnsynced);
    let reopened = options(&backend).open(&backend.dir).expect("reopen");
    assert_eq!(dump(&reopened), before, "the acknowledged commit survives");
}

#[test]
fn verify_counts_a_live_writers_spare_as_work_in_progress_and_a_dead_ones_as_stray() {
    let backend = Backend::fs();
    let store = options(&backend).open(&backend.dir).expect("open");
    commit_step(&store, 1);
    assert!(has_spare(&backend));
    let live = walstore::verify(backend.storage.as_ref(), &backend.dir).expect("verify");
    assert!(live.problems.is_empty(), "{:?}", live.problems);
    drop(store);
    // What a crash would leave: the spare, and no writer.
    backend.write(SPARE, &[0u8; 4096]);
    let dead = walstore::verify(backend.storage.as_ref(), &backend.dir).expect("verify");
    assert!(
        dead.problems
            .iter()
            .any(|p| p.kind == walstore::verify::ProblemKind::StrayTemp && p.file.ends_with(SPARE)),
        "{:?}",
        dead.problems
    );
}

#[test]
fn no_spare_is_made_on_a_nearly_full_disk() {
    let backend = Backend::sim(14);
    let sim = backend.sim.clone().expect("sim");
    sim.set_available_bytes(Some(3 * SEGMENT_BYTES));
    let store = options(&backend).open(&backend.dir).expect("open");
    let next = commit_until_rotated(&backend, &store, 1);
    assert!(
        !has_spare(&backend),
        "a spare would take blocks the log needs"
    );
    assert!(!store.is_poisoned());
    // Room again: the segment the rotation made asks for a spare, and gets one.
    sim.set_available_bytes(None);
    let next = commit_until_rotated_again(&backend, &store, next);
    commit_step(&store, next);
    assert!(has_spare(&backend));
}

/// Commits until one more segment exists than now; returns the next step.
fn commit_until_rotated_again(backend: &Backend, store: &Store, from: u64) -> u64 {
    let segments = backend.names_ending(".wal").len();
    let mut i = from;
    while backend.names_ending(".wal").len() == segments {
        commit_step(store, i);
        i += 1;
        assert!(i < from + 1000, "no rotation after 1000 commits");
    }
    i
}
