//! Parity sidecars (recovery case 2r): a snapshot damaged after its checkpoint is rebuilt
//! from `<lsn>.par`, on both backends; damage the parity does not cover is reported; a
//! crash or a failing disk while the rebuilt snapshot replaces the damaged one loses
//! nothing.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::single_range_in_vec_init,
    reason = "tests fail loudly"
)]

mod common;

use std::sync::Arc;

use common::parity::{PAGE, checkpointed_with, damage};
use common::{Backend, dump, for_each_backend};
use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::storage::{SimStorage, Storage};
use walstore::{Error, Store};

/// A store with one snapshot of about 40 pages and its sidecar, and a commit after it;
/// returns the snapshot's name and the state.
fn checkpointed(backend: &Backend) -> (String, String) {
    let (snap, state) = checkpointed_with(backend, backend.options());
    let par = backend.names_ending(".par");
    assert_eq!(par, [snap.replace(".snap", ".par")], "[{}]", backend.name);
    let len = backend.read(&snap).len();
    assert!(
        len > 20 * PAGE,
        "[{}] snapshot of {len} bytes",
        backend.name
    );
    (snap, state)
}

#[test]
fn a_damaged_footer_is_rebuilt_at_open_and_the_damaged_bytes_are_kept() {
    for_each_backend(|backend| {
        let (snap, state) = checkpointed(backend);
        let len = backend.read(&snap).len();
        let original = damage(backend, &snap, &[len - 30..len - 20]);
        let damaged = backend.read(&snap);
        let store = backend.open();
        assert_eq!(dump(&store), state, "[{}]", backend.name);
        let report = store.recovery_report().clone();
        assert_eq!(report.repaired.len(), 1, "[{}] {report:?}", backend.name);
        let repair = &report.repaired[0];
        assert_eq!(repair.snapshot, backend.path(&snap));
        assert_eq!(repair.pages, vec![((len - 30) / PAGE * PAGE) as u64]);
        assert!(repair.damage.contains("footer"), "{}", repair.damage);
        let copy = repair
            .damaged_copy
            .clone()
            .expect("a writer keeps the damaged bytes");
        assert!(report.fallbacks.is_empty(), "{report:?}");
        drop(store);
        assert_eq!(
            backend.read(&snap),
            original,
            "[{}] rebuilt on disk",
            backend.name
        );
        let copy_name = copy.strip_prefix(&backend.dir).unwrap().to_str().unwrap();
        assert_eq!(
            backend.read(copy_name),
            damaged,
            "[{}] damaged copy",
            backend.name
        );
        let report = walstore::verify(backend.storage.as_ref(), &backend.dir).expect("verify");
        assert!(!report.is_corrupt(), "[{}] {report:?}", backend.name);
        let store = backend.open();
        assert!(store.recovery_report().repaired.is_empty());
        assert_eq!(dump(&store), state);
    });
}

#[test]
fn a_damaged_data_block_is_rebuilt_when_the_open_checks_every_block() {
    for_each_backend(|backend| {
        let (snap, state) = checkpointed(backend);
        // Sixteen consecutive pages in the middle: the most one stripe can lose.
        let original = damage(backend, &snap, &[3 * PAGE + 100..19 * PAGE - 100]);
        let lazy = backend.open();
        assert!(
            lazy.recovery_report().repaired.is_empty(),
            "blocks are checked lazily"
        );
        let read = lazy.read();
        assert!(
            matches!(
                read.all_fingerprints()
                    .and_then(|all| all.collect::<Result<Vec<_>, _>>()),
                Err(Error::Corrupt { .. })
            ),
            "[{}] a lazy read meets the damage",
            backend.name
        );
        drop(read);
        drop(lazy);
        let store = backend
            .options()
            .verify_snapshot_on_open(true)
            .open(&backend.dir)
            .expect("open");
        let repaired = &store.recovery_report().repaired;
        assert_eq!(repaired.len(), 1, "[{}]", backend.name);
        assert_eq!(
            repaired[0].pages,
            (3..19).map(|p| (p * PAGE) as u64).collect::<Vec<_>>()
        );
        assert_eq!(dump(&store), state, "[{}]", backend.name);
        drop(store);
        assert_eq!(backend.read(&snap), original);
    });
}

#[test]
fn a_read_only_open_rebuilds_in_memory_and_writes_nothing() {
    for_each_backend(|backend| {
        let (snap, state) = checkpointed(backend);
        let len = backend.read(&snap).len();
        damage(backend, &snap, &[len - 10..len - 9]);
        let before: Vec<(String, Vec<u8>)> = backend
            .names()
            .into_iter()
            .filter(|n| n != "LOCK")
            .map(|n| (n.clone(), backend.read(&n)))
            .collect();
        let reader = backend
            .options()
            .read_only(true)
            .open(&backend.dir)
            .expect("read-only open");
        assert_eq!(dump(&reader), state, "[{}]", backend.name);
        let repaired = &reader.recovery_report().repaired;
        assert_eq!(repaired.len(), 1);
        assert!(repaired[0].damaged_copy.is_none());
        drop(reader);
        let after: Vec<(String, Vec<u8>)> = backend
            .names()
            .into_iter()
            .filter(|n| n != "LOCK")
            .map(|n| (n.clone(), backend.read(&n)))
            .collect();
        assert_eq!(
            before, after,
            "[{}] a read-only open changed files",
            backend.name
        );
    });
}

#[test]
fn damage_the_parity_cannot_cover_is_reported_with_both_reasons() {
    for_each_backend(|backend| {
        let (snap, _) = checkpointed(backend);
        let len = backend.read(&snap).len();
        // The footer's page and the page 16 before it share a parity group.
        let last_page = (len - 1) / PAGE;
        let before_it = (last_page - 16) * PAGE;
        damage(
            backend,
            &snap,
            &[len - 10..len - 9, before_it + 7..before_it + 8],
        );
        match backend
            .options()
            .verify_snapshot_on_open(true)
            .open(&backend.dir)
        {
            Err(Error::Corrupt { file, reason, .. }) => {
                assert_eq!(file, backend.path(&snap), "[{}] {reason}", backend.name);
                // Both reasons: the snapshot's own damage, and why the parity cannot help.
                assert!(
                    reason.contains("checksum mismatch") && reason.contains("share parity page"),
                    "[{}] {reason}",
                    backend.name
                );
            }
            other => panic!(
                "[{}] expected Corrupt, got {:?}",
                backend.name,
                other.map(|s| s.lsn())
            ),
        }
    });
}

#[test]
fn without_parity_no_sidecar_is_written_and_a_stale_one_is_removed() {
    for_each_backend(|backend| {
        let store = backend
            .options()
            .snapshot_parity(false)
            .open(&backend.dir)
            .expect("open");
        common::commit_step(&store, 1);
        store.checkpoint().expect("checkpoint");
        assert!(
            backend.names_ending(".par").is_empty(),
            "[{}]",
            backend.name
        );
        drop(store);
        // A sidecar of the same lsn from an earlier attempt describes other bytes.
        let store = backend.open();
        common::commit_step(&store, 2);
        backend.write("00000000000000000002.par", b"stale");
        drop(store);
        let store = backend
            .options()
            .snapshot_parity(false)
            .open(&backend.dir)
            .expect("open");
        store.checkpoint().expect("checkpoint");
        assert_eq!(backend.names_ending(".snap"), ["00000000000000000002.snap"]);
        assert!(
            backend.names_ending(".par").is_empty(),
            "[{}] {:?}",
            backend.name,
            backend.names()
        );
    });
}

#[test]
fn sidecars_go_with_their_snapshots() {
    for_each_backend(|backend| {
        let store = backend
            .options()
            .keep_fallback(true)
            .checkpoint_wal_bytes(0)
            .open(&backend.dir)
            .expect("open");
        for i in 1..=3 {
            common::commit_step(&store, i);
            store.checkpoint().expect("checkpoint");
        }
        assert_eq!(backend.names_ending(".snap").len(), 2);
        assert_eq!(
            backend.names_ending(".par"),
            ["00000000000000000002.par", "00000000000000000003.par"],
            "[{}]",
            backend.name
        );
        drop(store);
        let store = backend.open();
        common::commit_step(&store, 4);
        store.checkpoint().expect("checkpoint");
        assert_eq!(backend.names_ending(".par"), ["00000000000000000004.par"]);
    });
}

/// A failing disk at each call of the open that rebuilds the snapshot, then a power loss
/// (all unsynced writes lost, or a random part of them, torn): the next open recovers the
/// same state, rebuilding again if the first rebuild did not land.
#[test]
fn a_crash_while_the_rebuilt_snapshot_replaces_the_damaged_one_loses_nothing() {
    let backend = Backend::sim(11);
    let (snap, state) = checkpointed(&backend);
    let len = backend.read(&snap).len();
    damage(&backend, &snap, &[len - 30..len - 20]);
    let sim = backend.sim.clone().unwrap();
    let mut fault_points = 0;
    for n in 0.. {
        let mut fired = false;
        for (k, mode) in [CrashMode::LoseUnsynced, CrashMode::Random]
            .into_iter()
            .enumerate()
        {
            let fork = sim.fork(n * 2 + k as u64);
            let storage: Arc<dyn Storage> = Arc::new(fork.clone());
            let options = || {
                Store::options()
                    .storage(storage.clone())
                    .segment_bytes(64 * 1024)
            };
            let at_call = fork.calls() + 1 + n;
            fork.inject(Fault {
                at_call,
                kind: FaultKind::Eio,
                persistent: true,
                only: None,
            });
            // The open fails, or opens poisoned (a failed sync), or the fault is beyond it.
            drop(options().open(&backend.dir));
            fired |= fork.calls() >= at_call;
            fork.crash(mode);
            fork.clear_faults();
            let store = options()
                .open(&backend.dir)
                .unwrap_or_else(|e| panic!("fault at call {n}, {mode:?}: reopen failed: {e}"));
            assert_eq!(dump(&store), state, "fault at call {n}, {mode:?}");
            drop(store);
            let report = walstore::verify(&fork as &dyn Storage, &backend.dir).expect("verify");
            assert!(
                !report.is_corrupt(),
                "fault at call {n}, {mode:?}: {report:?}"
            );
        }
        if !fired {
            break;
        }
        fault_points += 1;
    }
    assert!(fault_points > 10, "{fault_points} fault points");
    println!(
        "parity-crash: {fault_points} fault points in the repairing open, each crashed 2 ways, 0 lost"
    );
}

#[test]
fn a_sidecar_is_written_by_backups_too() {
    for_each_backend(|backend| {
        let store = backend.open();
        common::commit_step(&store, 1);
        let dest = backend.dir.with_file_name("backup");
        store.backup(&dest).expect("backup");
        let names = backend.storage.list_dir(&dest).expect("list");
        assert!(
            names.iter().any(|n| n.ends_with(".par")),
            "[{}] {names:?}",
            backend.name
        );
        let _: &SimStorage;
    });
}

#[test]
fn verify_reports_a_damaged_sidecar_and_whether_a_damaged_snapshot_can_be_rebuilt() {
    use walstore::verify::ProblemKind;
    for_each_backend(|backend| {
        let (snap, state) = checkpointed(backend);
        let par = snap.replace(".snap", ".par");
        // A damaged parity page: nothing lost, the store opens, verify says so.
        let original = damage(backend, &par, &[64 + 5 * PAGE + 9..64 + 5 * PAGE + 10]);
        let report = walstore::verify(backend.storage.as_ref(), &backend.dir).expect("verify");
        assert!(!report.is_corrupt(), "[{}] {report:?}", backend.name);
        let problem = report
            .problems
            .iter()
            .find(|p| p.kind == ProblemKind::ParityDamaged)
            .unwrap_or_else(|| panic!("[{}] {report:?}", backend.name));
        assert_eq!(problem.file, backend.path(&par));
        assert_eq!(problem.offset, Some((64 + 5 * PAGE) as u64), "{problem:?}");
        assert_eq!(dump(&backend.open()), state);
        backend.write(&par, &original);
        // A damaged snapshot: corruption, and the sidecar rebuilds it.
        damage(backend, &snap, &[100..101]);
        let report = walstore::verify(backend.storage.as_ref(), &backend.dir).expect("verify");
        assert!(report.is_corrupt());
        let problem = report
            .problems
            .iter()
            .find(|p| p.file == backend.path(&snap))
            .unwrap_or_else(|| panic!("[{}] {report:?}", backend.name));
        assert!(
            problem.why.contains("rebuilds it (1 of its 4 KiB pages"),
            "{problem:?}"
        );
    });
}

/// Review finding: a persist that fails (here ENOSPC writing the rebuilt snapshot) fails
/// the writer open but leaves nothing behind, so retries do not fill `quarantine/`; a
/// read-only open works throughout, and the next writer open that can write persists.
#[test]
fn a_failed_rebuild_persist_leaves_nothing_and_a_later_open_persists() {
    let backend = Backend::sim(3);
    let (snap, state) = checkpointed(&backend);
    let len = backend.read(&snap).len();
    damage(&backend, &snap, &[len - 30..len - 20]);
    let sim = backend.sim.clone().unwrap();
    let open = |storage: Arc<dyn Storage>| {
        Store::options()
            .storage(storage)
            .segment_bytes(64 * 1024)
            .open(&backend.dir)
    };
    let enospc_at_write = |sim: &SimStorage, k: u64| {
        sim.inject(Fault {
            at_call: k,
            kind: FaultKind::Enospc,
            persistent: false,
            only: Some(CallKind::Write),
        });
    };
    // The k-th write of the open is the rebuilt snapshot's.
    let k = (1..60)
        .find(|&k| {
            let fork = sim.fork(k);
            enospc_at_write(&fork, k);
            matches!(open(Arc::new(fork)), Err(e) if e.to_string().contains(".snap.tmp"))
        })
        .expect("a write of the rebuilt snapshot");
    let quarantine = backend.dir.join("quarantine");
    for attempt in 1..=3 {
        enospc_at_write(&sim, k);
        let Err(error) = open(backend.storage.clone()) else {
            panic!("attempt {attempt}: the open succeeded");
        };
        assert!(error.to_string().contains("no space"), "{attempt}: {error}");
        sim.clear_faults();
        let copies = backend.storage.list_dir(&quarantine).unwrap_or_default();
        assert!(copies.is_empty(), "attempt {attempt} left {copies:?}");
        let reader = backend
            .options()
            .read_only(true)
            .open(&backend.dir)
            .expect("reader");
        assert_eq!(dump(&reader), state);
    }
    let store = backend.open();
    assert_eq!(dump(&store), state);
    assert_eq!(backend.storage.list_dir(&quarantine).unwrap().len(), 1);
}

/// A store kept with a fallback (snapshots at 20 and 40, no sidecars, 200 steps), its
/// newest snapshot damaged and segment `gone(segments)` removed; the read-only open's
/// `Corrupt` error: its file and reason, and the removed segment's name.
fn fallback_with_a_missing_segment(gone: fn(&[String]) -> String) -> (String, String, String) {
    let backend = Backend::sim(5);
    let options = || {
        backend
            .options()
            .keep_fallback(true)
            .snapshot_parity(false)
            .checkpoint_wal_bytes(0)
            .segment_bytes(4096)
    };
    let store = options().open(&backend.dir).unwrap();
    for i in 1..=200 {
        common::commit_step(&store, i);
        if i == 20 || i == 40 {
            store.checkpoint().unwrap();
        }
    }
    drop(store);
    let newest = backend.names_ending(".snap").pop().unwrap();
    let len = backend.read(&newest).len();
    damage(&backend, &newest, &[len - 30..len - 20]);
    let gone = gone(&backend.names_ending(".wal"));
    backend.storage.remove_file(&backend.path(&gone)).unwrap();
    match options().read_only(true).open(&backend.dir) {
        Err(Error::Corrupt { file, reason, .. }) => {
            let file = file.file_name().unwrap().to_string_lossy().into_owned();
            (file, reason, gone)
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|s| s.lsn())),
    }
}

/// Review finding: with a fallback used, a segment missing further on is reported as the
/// missing segment, not blamed on the damaged snapshot.
#[test]
fn a_missing_segment_after_a_fallback_is_reported_as_such() {
    let (_, reason, _) =
        fallback_with_a_missing_segment(|segments| segments[segments.len() - 3].clone());
    assert!(reason.contains("missing WAL"), "{reason}");
    assert!(!reason.contains("nothing to fall back on"), "{reason}");
}

/// Review finding: when the first segment the fallback needs is missing, the error names
/// the damaged snapshot, the older one that was used, and the lsns no file holds.
#[test]
fn a_missing_first_segment_after_a_fallback_names_the_older_snapshot() {
    let (file, reason, gone) = fallback_with_a_missing_segment(|segments| segments[0].clone());
    assert_eq!(file, "00000000000000000040.snap", "{reason}");
    assert!(!reason.contains("a fallback is kept only with"), "{reason}");
    assert!(reason.contains("the older snapshot"), "{reason}");
    assert!(
        reason.contains("lsn 21 to 40 are in no file"),
        "names what is missing ({gone}): {reason}"
    );
}

/// A snapshot of the wrong length: cut short by 5,000 bytes, or with 512 bytes after its
/// footer (a review finding: those were not cut back).
#[test]
fn a_snapshot_of_the_wrong_length_is_rebuilt() {
    for_each_backend(|backend| {
        let (snap, state) = checkpointed(backend);
        let original = backend.read(&snap);
        let mut longer = original.clone();
        longer.extend_from_slice(&[0u8; 512]);
        for wrong in [&original[..original.len() - 5000], &longer[..]] {
            backend.write(&snap, wrong);
            let store = backend.open();
            let repaired = store.recovery_report().repaired.len();
            assert_eq!(repaired, 1, "[{}] {} bytes", backend.name, wrong.len());
            assert_eq!(dump(&store), state);
            drop(store);
            assert_eq!(backend.read(&snap), original, "[{}]", backend.name);
        }
    });
}

/// A snapshot range that fails to read (`EIO`, as from a bad sector) while the open
/// rebuilds it reads as zeros and is rebuilt too; whatever read fails, the open never
/// returns other data.
#[test]
fn unreadable_pages_of_a_damaged_snapshot_are_rebuilt() {
    let backend = Backend::sim(13);
    let (snap, state) = checkpointed(&backend);
    let len = backend.read(&snap).len();
    damage(&backend, &snap, &[len - 30..len - 20]);
    let sim = backend.sim.clone().unwrap();
    let mut rebuilt_more = 0;
    for k in 1..40 {
        let fork = sim.fork(k);
        // Three failed reads in a row: a 1 MiB chunk, then its first two pages.
        for n in k..k + 3 {
            fork.inject(Fault {
                at_call: n,
                kind: FaultKind::Eio,
                persistent: false,
                only: Some(CallKind::Read),
            });
        }
        let storage: Arc<dyn Storage> = Arc::new(fork.clone());
        let opened = Store::options()
            .storage(storage)
            .segment_bytes(64 * 1024)
            .open(&backend.dir);
        let Ok(store) = opened else { continue };
        assert_eq!(dump(&store), state, "reads {k}..{} failed", k + 2);
        if store
            .recovery_report()
            .repaired
            .first()
            .is_some_and(|r| r.pages.len() > 1)
        {
            rebuilt_more += 1;
        }
    }
    assert!(
        rebuilt_more > 0,
        "no failed read fell on the snapshot's pages"
    );
}

/// A data block damaged after the checkpoint is found by the next checkpoint, which
/// copies blocks from it: the checkpoint rebuilds the old snapshot from its sidecar and
/// writes the new one from the rebuilt copy, so the store heals without reopening.
/// Without a sidecar the checkpoint fails with `Corrupt`, and commits go on.
#[test]
fn a_checkpoint_rebuilds_a_damaged_snapshot_it_copies_from() {
    for_each_backend(|backend| {
        for parity in [true, false] {
            let backend = if parity { backend } else { &Backend::sim(17) };
            let (snap, _) = checkpointed(backend);
            if !parity {
                backend
                    .storage
                    .remove_file(&backend.path(&snap.replace(".snap", ".par")))
                    .expect("remove sidecar");
            }
            let (_, state) = (0, dump(&backend.open()));
            // Damage the store has not read yet (a block is checked when first read).
            damage(backend, &snap, &[20 * PAGE + 10..20 * PAGE + 11]);
            let store = backend.open();
            let expected = state;
            let mut txn = store.begin_write();
            txn.set_meta("later", walstore::Value::from(2u64));
            txn.commit().expect("commit");
            let expected = expected.replace(
                "meta after=Int(1)\n",
                "meta after=Int(1)\nmeta later=Int(2)\n",
            );
            match store.checkpoint() {
                Ok(report) if parity => {
                    assert_eq!(
                        report.base_rebuilt,
                        Some(backend.path(&snap)),
                        "[{}]",
                        backend.name
                    );
                    assert!(dump(&store) == expected, "[{}] state", backend.name);
                    drop(store);
                    let report =
                        walstore::verify(backend.storage.as_ref(), &backend.dir).expect("verify");
                    assert!(report.problems.is_empty(), "[{}] {report:?}", backend.name);
                    assert!(
                        dump(&backend.open()) == expected,
                        "[{}] reopened",
                        backend.name
                    );
                }
                Err(Error::Corrupt { file, .. }) if !parity => {
                    assert_eq!(file, backend.path(&snap));
                    let mut txn = store.begin_write();
                    txn.set_meta("still", walstore::Value::from(3u64));
                    txn.commit().expect("commits go on");
                }
                other => panic!("[{}] parity {parity}: {other:?}", backend.name),
            }
        }
    });
}
