//! What a checkpoint keeps: by default (`keep_fallback(false)`) only the new snapshot and
//! the WAL after it, and a damaged snapshot is then reported, never replaced by an older
//! state; with `keep_fallback(true)`, also the previous snapshot and the WAL since it (a
//! fallback).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::{Backend, commit_step, dump, for_each_backend};
use walstore::Error;

/// Commits 3 × 40 steps with a checkpoint after each 40; returns the last step.
/// `keep_fallback`: `None` leaves the option at its default.
fn history(backend: &Backend, keep_fallback: Option<bool>) -> (u64, String) {
    let mut options = backend
        .options()
        .segment_bytes(4096)
        .checkpoint_wal_bytes(0);
    if let Some(keep) = keep_fallback {
        options = options.keep_fallback(keep);
    }
    let store = options.open(&backend.dir).expect("open");
    let mut i = 0;
    for _ in 0..3 {
        for _ in 0..40 {
            i += 1;
            commit_step(&store, i);
        }
        store.checkpoint().expect("checkpoint");
    }
    for _ in 0..5 {
        i += 1;
        commit_step(&store, i);
    }
    (i, dump(&store))
}

fn lsns(backend: &Backend, suffix: &str) -> Vec<u64> {
    backend
        .names_ending(suffix)
        .iter()
        .map(|n| n.trim_end_matches(suffix).parse().expect("numbered"))
        .collect()
}

fn bytes_on_disk(backend: &Backend) -> u64 {
    backend
        .names()
        .iter()
        .map(|name| backend.read(name).len() as u64)
        .sum()
}

#[test]
fn without_a_fallback_a_checkpoint_keeps_one_snapshot_and_the_wal_after_it() {
    for keep_fallback in [None, Some(false)] {
        without_a_fallback(keep_fallback);
    }
}

fn without_a_fallback(keep_fallback: Option<bool>) {
    for_each_backend(|backend| {
        let (_, before) = history(backend, keep_fallback);
        let snapshots = lsns(backend, ".snap");
        assert_eq!(snapshots, vec![120], "[{}] only the newest", backend.name);
        let segments = lsns(backend, ".wal");
        assert!(
            segments.iter().all(|&first| first > 120),
            "[{}] no segment the snapshot covers: {segments:?}",
            backend.name
        );
        let reopened = backend.options().open(&backend.dir).expect("reopen");
        assert_eq!(dump(&reopened), before, "[{}]", backend.name);
    });
}

#[test]
fn with_a_fallback_the_previous_snapshot_and_the_wal_since_it_are_kept() {
    for_each_backend(|backend| {
        let (_, before) = history(backend, Some(true));
        assert_eq!(lsns(backend, ".snap"), vec![80, 120], "[{}]", backend.name);
        let segments = lsns(backend, ".wal");
        assert!(
            segments.first().is_some_and(|&first| first <= 81),
            "[{}] the WAL since the previous snapshot: {segments:?}",
            backend.name
        );
        let reopened = backend.options().open(&backend.dir).expect("reopen");
        assert_eq!(dump(&reopened), before, "[{}]", backend.name);
    });
}

#[test]
fn without_a_fallback_the_store_is_smaller() {
    let with = Backend::sim(21);
    history(&with, Some(true));
    let without = Backend::sim(21);
    history(&without, None);
    let (with, without) = (bytes_on_disk(&with), bytes_on_disk(&without));
    assert!(
        without < with,
        "{without} bytes without a fallback, {with} with"
    );
}

#[test]
fn without_a_fallback_a_damaged_snapshot_is_reported_not_replaced() {
    for_each_backend(|backend| {
        let (_, _) = history(backend, None);
        let name = backend.names_ending(".snap").pop().expect("a snapshot");
        // Without its sidecar, which would rebuild it (tests/parity.rs).
        let sidecar = backend.path(&name.replace(".snap", ".par"));
        backend
            .storage
            .remove_file(&sidecar)
            .expect("remove sidecar");
        let mut bytes = backend.read(&name);
        // The footer (the last bytes) is checked at open.
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        backend.write(&name, &bytes);
        match backend.options().open(&backend.dir) {
            // The snapshot's own damage is the error, not the WAL it no longer has.
            Err(Error::Corrupt {
                file,
                offset,
                reason,
            }) => {
                assert_eq!(file, backend.path(&name), "[{}] {reason}", backend.name);
                assert!(
                    offset >= bytes.len() as u64 - 64,
                    "[{}] {offset}: in the footer",
                    backend.name
                );
                assert!(
                    reason.contains(
                        "nothing to fall back on: no older snapshot, and the WAL starts at lsn 121"
                    ) && reason.contains("lsn 1 to 120 are in no file"),
                    "[{}] {reason}",
                    backend.name
                );
            }
            Err(other) => panic!("[{}] expected Corrupt, got {other}", backend.name),
            Ok(store) => panic!(
                "[{}] opened at lsn {} from a damaged snapshot with no fallback",
                backend.name,
                store.lsn()
            ),
        }
    });
}
