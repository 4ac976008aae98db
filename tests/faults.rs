//! I/O faults: a failed fsync or write poisons the store; ENOSPC; the directory removed.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::{Backend, commit_step, dump};
use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::{Error, Value};

fn sim_backend() -> (Backend, walstore::storage::SimStorage) {
    let backend = Backend::sim(11);
    let sim = backend.sim.clone().expect("sim");
    (backend, sim)
}

#[test]
fn failed_fsync_poisons_and_is_never_retried() {
    let (backend, sim) = sim_backend();
    // No background thread: the spare segment a first commit asks for is then written by
    // the committing thread, so no sync of it can race with the injected failure.
    let store = backend
        .options()
        .background_checkpoints(false)
        .open(&backend.dir)
        .expect("open");
    for i in 1..=5 {
        commit_step(&store, i);
    }
    let acknowledged = dump(&store);
    sim.inject(Fault {
        at_call: 1,
        kind: FaultKind::Eio,
        persistent: false,
        only: Some(CallKind::SyncData),
    });
    let failed = commit_meta(&store, "x", 1);
    assert!(
        matches!(
            failed,
            Err(Error::Io {
                op: "fdatasync",
                ..
            })
        ),
        "{failed:?}"
    );
    assert!(store.is_poisoned());
    let syncs_after_failure = sim.sync_calls();
    for _ in 0..3 {
        let again = commit_meta(&store, "y", 2);
        assert!(matches!(again, Err(Error::Poisoned)), "{again:?}");
    }
    assert!(matches!(store.sync(), Err(Error::Poisoned)));
    assert!(matches!(store.checkpoint(), Err(Error::Poisoned)));
    assert_eq!(
        sim.sync_calls(),
        syncs_after_failure,
        "no fsync is retried after a failure"
    );
    assert_eq!(
        dump(&store),
        acknowledged,
        "readers never see the failed transaction"
    );
    drop(store);
    // Power loss: the failed fsync's data never became durable.
    sim.crash(CrashMode::LoseUnsynced);
    let store = backend.open();
    assert_eq!(store.lsn(), 5);
    assert_eq!(dump(&store), acknowledged);
    assert_eq!(
        commit_step(&store, 6),
        6,
        "the reopened store accepts commits"
    );
}

#[test]
fn enospc_fails_the_commit_clearly_and_loses_nothing() {
    let (backend, sim) = sim_backend();
    let store = backend.open();
    for i in 1..=5 {
        commit_step(&store, i);
    }
    let acknowledged = dump(&store);
    sim.inject(Fault {
        at_call: 1,
        kind: FaultKind::Enospc,
        persistent: true,
        only: Some(CallKind::Write),
    });
    let failed = commit_meta(&store, "x", 0);
    assert!(matches!(failed, Err(Error::NoSpace { .. })), "{failed:?}");
    assert!(
        failed
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("no space left"))
    );
    assert!(matches!(commit_meta(&store, "z", 1), Err(Error::Poisoned)));
    drop(store);
    // Still full: the store opens read-write and reads, then space frees and commits go on.
    let store = backend.open();
    assert_eq!(dump(&store), acknowledged);
    drop(store);
    sim.clear_faults();
    let store = backend.open();
    assert_eq!(commit_step(&store, 6), 6);
}

#[test]
fn eio_at_every_call_of_a_small_workload_never_loses_acknowledged_commits() {
    // Count the calls of a clean run, then fail each one in turn.
    let (clean, clean_sim) = sim_backend();
    let start = clean_sim.calls();
    let store = clean.open();
    for i in 1..=6 {
        commit_step(&store, i);
        if i == 3 {
            store.checkpoint().expect("checkpoint");
        }
    }
    drop(store);
    let total_calls = clean_sim.calls() - start;
    for n in 1..=total_calls {
        for persistent in [false, true] {
            let (backend, sim) = sim_backend();
            sim.inject(Fault {
                at_call: sim.calls() + n,
                kind: FaultKind::Eio,
                persistent,
                only: None,
            });
            let mut acknowledged = 0;
            if let Ok(store) = backend.options().open(&backend.dir) {
                for i in 1..=6 {
                    let mut txn = store.begin_write();
                    txn.set_meta("step", Value::from(i));
                    match txn.commit() {
                        Ok(lsn) => acknowledged = lsn,
                        Err(_) => break,
                    }
                    if i == 3 && store.checkpoint().is_err() && store.is_poisoned() {
                        break;
                    }
                }
            }
            sim.clear_faults();
            sim.crash(CrashMode::LoseUnsynced);
            let store = backend.open();
            assert!(
                store.lsn() >= acknowledged,
                "call {n} persistent={persistent}: lsn {} < acknowledged {acknowledged}",
                store.lsn()
            );
            if acknowledged > 0 {
                assert!(store.read().meta("step").expect("read").is_some());
            }
        }
    }
}

#[test]
fn directory_removed_while_open_fails_the_next_commit() {
    let backend = Backend::fs();
    // No background thread: its spare segment could appear while the directory is
    // being removed.
    let store = backend
        .options()
        .background_checkpoints(false)
        .open(&backend.dir)
        .expect("open");
    commit_step(&store, 1);
    std::fs::remove_dir_all(&backend.dir).expect("remove");
    let result = commit_meta(&store, "a", 1);
    assert!(matches!(result, Err(Error::StoreGone { .. })), "{result:?}");
    assert!(matches!(commit_meta(&store, "a", 1), Err(Error::Poisoned)));
}

#[test]
fn directory_replaced_while_open_fails_the_next_commit() {
    let backend = Backend::fs();
    let store = backend.open();
    commit_step(&store, 1);
    let aside = backend.dir.with_extension("old");
    std::fs::rename(&backend.dir, &aside).expect("rename");
    std::fs::create_dir(&backend.dir).expect("recreate");
    let result = commit_meta(&store, "a", 1);
    assert!(matches!(result, Err(Error::StoreGone { .. })), "{result:?}");
}

#[test]
fn directory_removed_in_the_simulator_fails_the_next_commit() {
    let (backend, sim) = sim_backend();
    let store = backend.open();
    commit_step(&store, 1);
    sim.remove_dir_all(&backend.dir);
    let result = commit_meta(&store, "a", 1);
    assert!(matches!(result, Err(Error::StoreGone { .. })), "{result:?}");
}

/// Commits one metadata write.
fn commit_meta(store: &walstore::Store, key: &str, value: i64) -> walstore::Result<u64> {
    let mut txn = store.begin_write();
    txn.set_meta(key, value);
    txn.commit()
}

/// A checkpoint run after a commit (no background thread) that fails does not fail the
/// commit, which is durable already: the error is kept for the caller to look at, the
/// store goes on, and the next checkpoint that succeeds clears it.
#[test]
fn a_failed_automatic_checkpoint_does_not_fail_the_durable_commit() {
    let (backend, sim) = sim_backend();
    // No spare segment on a "full" disk: the next file created is the snapshot's temp.
    sim.set_available_bytes(Some(0));
    let store = backend
        .options()
        .background_checkpoints(false)
        .checkpoint_wal_bytes(1)
        .open(&backend.dir)
        .expect("open");
    commit_step(&store, 1);
    assert!(store.last_automatic_checkpoint_error().is_none());
    sim.inject(Fault {
        at_call: 1,
        kind: FaultKind::Enospc,
        persistent: false,
        only: Some(CallKind::Create),
    });
    assert_eq!(
        commit_meta(&store, "a", 1).expect("the commit is durable"),
        2
    );
    let error = store
        .last_automatic_checkpoint_error()
        .expect("the checkpoint after it failed");
    assert!(error.to_string().contains("no space left"), "{error}");
    assert!(!store.is_poisoned());
    assert_eq!(commit_meta(&store, "b", 2).expect("commit"), 3);
    assert!(
        store.last_automatic_checkpoint_error().is_none(),
        "the next checkpoint succeeded"
    );
    drop(store);
    let store = backend.open();
    assert_eq!(store.lsn(), 3);
    assert_eq!(
        store.read().meta("a").expect("read"),
        Some(walstore::Value::from(1i64))
    );
}
