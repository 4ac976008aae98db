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

/// Fails (or panics) the `at_call`-th call of kind `only` from now on, once.
fn inject_once(sim: &walstore::storage::SimStorage, kind: FaultKind, only: CallKind, at_call: u64) {
    sim.inject(Fault {
        at_call,
        kind,
        persistent: false,
        only: Some(only),
    });
}

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
    inject_once(&sim, FaultKind::Eio, CallKind::SyncData, 1);
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
    let cause = store.poison_cause().expect("poisoned, and why");
    assert!(
        matches!(&cause, Error::Io { op: "fdatasync", path, .. } if path.extension().is_some_and(|e| e == "wal")),
        "{cause:?}"
    );
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
                assert!(meta(&store, "step").is_some());
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
/// The metadata value of `key` in `store`'s current state.
fn meta(store: &walstore::Store, key: &str) -> Option<Value> {
    store.read().meta(key).expect("read")
}

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
    inject_once(&sim, FaultKind::Enospc, CallKind::Create, 1);
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
    assert_eq!(meta(&store, "a"), Some(Value::from(1i64)));
}

/// A panic on the writer's background thread (a bug, injected at its first write-back:
/// only the paced writes of snapshots and spare segments make those) is contained: the
/// store is poisoned and says why, nothing acknowledged is lost, and the store reopens.
#[test]
fn a_panic_in_the_background_checkpoint_poisons_and_loses_nothing() {
    let (backend, sim) = sim_backend();
    let store = backend
        .options()
        .checkpoint_wal_bytes(2 * 1024)
        .open(&backend.dir)
        .expect("open");
    inject_once(&sim, FaultKind::Panic, CallKind::WriteBack, 1);
    let mut acknowledged = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.last_automatic_checkpoint_error().is_none() {
        assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
        match commit_meta(&store, &format!("k{acknowledged}"), acknowledged) {
            Ok(lsn) => acknowledged = i64::try_from(lsn).expect("lsn"),
            Err(Error::Poisoned) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let error = store.last_automatic_checkpoint_error().expect("reported");
    assert!(matches!(*error, Error::Panicked(_)), "{error}");
    assert!(error.to_string().contains("panicked"), "{error}");
    assert!(store.is_poisoned());
    assert!(matches!(
        commit_meta(&store, "after", 1),
        Err(Error::Poisoned)
    ));
    assert!(matches!(store.close(), Err(Error::Poisoned)));
    let store = backend.open();
    assert_eq!(store.lsn(), u64::try_from(acknowledged).expect("lsn"));
    for i in 0..acknowledged {
        assert_eq!(
            store.read().meta(&format!("k{i}")).expect("read"),
            Some(Value::from(i)),
            "k{i}"
        );
    }
    assert_eq!(
        commit_meta(&store, "after", 1).expect("writes again"),
        store.lsn()
    );
}

/// A panic in the leader of a commit group (a bug, injected at its `fdatasync`) fails
/// that group with `Panicked` and poisons the store: no committer, `sync` or drop waits
/// for ever on a leadership never handed back, and every acknowledged commit survives.
#[test]
fn a_panic_while_writing_a_group_fails_it_and_hangs_nothing() {
    let (backend, sim) = sim_backend();
    let store = std::sync::Arc::new(backend.options().open(&backend.dir).expect("open"));
    for i in 0..5 {
        commit_meta(&store, &format!("k{i}"), i).expect("commit");
    }
    inject_once(&sim, FaultKind::Panic, CallKind::SyncData, 3);
    // Detached threads and a deadline: a leadership never handed back fails the test
    // instead of hanging it.
    let (sender, receiver) = std::sync::mpsc::channel();
    for t in 0..4 {
        let store = std::sync::Arc::clone(&store);
        let sender = sender.clone();
        std::thread::spawn(move || {
            let outcomes: Vec<(String, walstore::Result<u64>)> = (0..20)
                .map(|i| {
                    let key = format!("t{t}-{i}");
                    let outcome = commit_meta(&store, &key, i);
                    (key, outcome)
                })
                .collect();
            let _ = sender.send(outcomes);
        });
    }
    let outcomes: Vec<Vec<(String, walstore::Result<u64>)>> = (0..4)
        .map(|_| {
            receiver
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("every committer returns (none waits for a leader that panicked)")
        })
        .collect();
    // The threads drop their handles just after sending.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::sync::Arc::strong_count(&store) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "a committer thread hung"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let outcomes: Vec<_> = outcomes.into_iter().flatten().collect();
    assert!(
        outcomes
            .iter()
            .any(|(_, o)| matches!(o, Err(Error::Panicked(_)))),
        "the group whose leader panicked is told so"
    );
    assert!(store.is_poisoned());
    assert!(matches!(store.sync(), Err(Error::Poisoned)));
    drop(store);
    let store = backend.open();
    for (key, outcome) in &outcomes {
        match outcome {
            Ok(_) => assert!(meta(&store, key).is_some(), "acknowledged {key} survived"),
            Err(Error::Panicked(_) | Error::Poisoned) => {}
            Err(other) => panic!("{key}: unexpected {other}"),
        }
    }
    assert_eq!(meta(&store, "k4"), Some(Value::from(4i64)));
}

/// The same in `Store::sync`, which leads a sync of its own when no group is in flight.
#[test]
fn a_panic_in_sync_fails_it_and_hangs_nothing() {
    let (backend, sim) = sim_backend();
    let store = backend
        .options()
        .durability(walstore::Durability::None)
        .background_checkpoints(false)
        .open(&backend.dir)
        .expect("open");
    commit_meta(&store, "a", 1).expect("commit");
    inject_once(&sim, FaultKind::Panic, CallKind::SyncData, 1);
    assert!(matches!(store.sync(), Err(Error::Panicked(_))));
    assert!(matches!(commit_meta(&store, "b", 2), Err(Error::Poisoned)));
    assert!(matches!(store.sync(), Err(Error::Poisoned)));
    drop(store);
    let store = backend.open();
    assert_eq!(meta(&store, "a"), Some(Value::from(1i64)));
}

/// Without a background thread, a commit runs the spare segment and automatic
/// checkpoints itself, after it is durable: a panic there (found in review) does not
/// escape the commit, which returns its lsn; the store is poisoned and says why.
#[test]
fn a_panic_in_work_after_a_commit_does_not_fail_the_commit() {
    let (backend, sim) = sim_backend();
    let store = backend
        .options()
        .background_checkpoints(false)
        .open(&backend.dir)
        .expect("open");
    // The first fdatasync is the commit's; the second, the spare segment's after it.
    inject_once(&sim, FaultKind::Panic, CallKind::SyncData, 2);
    assert_eq!(commit_meta(&store, "k", 1).expect("durable, so Ok"), 1);
    assert!(store.is_poisoned());
    assert!(matches!(store.poison_cause(), Some(Error::Panicked(_))));
    assert!(matches!(
        store.last_automatic_checkpoint_error().as_deref(),
        Some(Error::Panicked(_))
    ));
    drop(store);
    let store = backend.open();
    assert_eq!(meta(&store, "k"), Some(Value::from(1i64)));
}
