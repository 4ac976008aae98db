//! Reusing a superseded snapshot's file (`snapshot::reuse`): a checkpoint keeps the file
//! of the snapshot it replaced as a spare, under an exclusive lock, and the next one writes
//! over it; never while a reader (a read-only handle, a read transaction) maps it, and
//! never so that a reader opening it at the wrong moment sees anything but a whole
//! snapshot. On both storages.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::parity::OnOpen;
use common::{Backend, commit_step, dump, dump_read, for_each_backend};
use walstore::storage::{OpenMode, SimStorage, Storage};
use walstore::{Options, Store};

const SPARE: &str = "00000000000000000000.snap.tmp";

fn options(backend: &Backend) -> Options {
    backend.options().checkpoint_wal_bytes(0)
}

/// The inode of a store file.
fn ino(storage: &dyn Storage, path: &Path) -> u64 {
    let file = storage.open_file(path, OpenMode::Read).expect("open");
    file.stamp().expect("stamp").ino
}

fn newest_snapshot(backend: &Backend) -> String {
    backend.names_ending(".snap").pop().expect("a snapshot")
}

fn step_and_checkpoint(store: &Store, i: &mut u64) {
    for _ in 0..20 {
        *i += 1;
        commit_step(store, *i);
    }
    assert!(store.checkpoint().expect("checkpoint").written);
}

#[test]
fn the_next_checkpoint_writes_over_the_superseded_snapshot() {
    for_each_backend(|backend| {
        let store = options(backend).open(&backend.dir).expect("open");
        let mut i = 0;
        step_and_checkpoint(&store, &mut i);
        let first = newest_snapshot(backend);
        let first_ino = ino(&*backend.storage, &backend.path(&first));
        assert!(
            !backend.names().contains(&SPARE.to_owned()),
            "[{}]",
            backend.name
        );
        step_and_checkpoint(&store, &mut i);
        assert!(
            backend.names().contains(&SPARE.to_owned()),
            "[{}] the superseded snapshot is kept as the spare: {:?}",
            backend.name,
            backend.names()
        );
        assert_eq!(ino(&*backend.storage, &backend.path(SPARE)), first_ino);
        // A live writer's spare is work in progress, not a stray temporary.
        let report = walstore::verify(&*backend.storage, &backend.dir).expect("verify");
        assert!(
            report.problems.is_empty(),
            "[{}] {:?}",
            backend.name,
            report.problems
        );
        step_and_checkpoint(&store, &mut i);
        let third = newest_snapshot(backend);
        assert_eq!(
            ino(&*backend.storage, &backend.path(&third)),
            first_ino,
            "[{}] the third snapshot was written into the first one's file",
            backend.name
        );
        assert_eq!(backend.names_ending(".snap"), vec![third.clone()]);
        let expected = dump(&store);
        store.close().expect("close");
        assert!(
            !backend.names().contains(&SPARE.to_owned()),
            "[{}] closing removes the spare",
            backend.name
        );
        let reopened = Store::options()
            .storage(backend.storage.clone())
            .verify_snapshot_on_open(true)
            .open(&backend.dir)
            .expect("reopen");
        assert_eq!(dump(&reopened), expected, "[{}]", backend.name);
        assert_eq!(reopened.recovery_report().snapshot_lsn, i);
    });
}

#[test]
fn a_snapshot_a_reader_maps_is_deleted_not_reused() {
    for_each_backend(|backend| {
        let store = options(backend).open(&backend.dir).expect("open");
        let mut i = 0;
        step_and_checkpoint(&store, &mut i);
        let mapped = newest_snapshot(backend);
        let mapped_ino = ino(&*backend.storage, &backend.path(&mapped));
        // A read-only handle (another process, as far as locks go) and a read transaction
        // of this process, both on the first snapshot.
        let reader = Store::options()
            .storage(backend.storage.clone())
            .read_only(true)
            .open(&backend.dir)
            .expect("read-only open");
        let reader_state = dump(&reader);
        let txn_state = dump(&store);
        let held = store.read();
        // The first checkpoint deletes the mapped snapshot; the later ones keep and reuse
        // the files of snapshots nothing maps.
        for round in 0..3 {
            step_and_checkpoint(&store, &mut i);
            let files: Vec<String> = backend
                .names()
                .into_iter()
                .filter(|n| n.ends_with(".snap") || n == SPARE)
                .collect();
            for name in &files {
                assert_ne!(
                    ino(&*backend.storage, &backend.path(name)),
                    mapped_ino,
                    "[{}] round {round}: a mapped snapshot's file is never kept or reused ({name})",
                    backend.name
                );
            }
            assert_eq!(
                files.contains(&SPARE.to_owned()),
                round > 0,
                "[{}] {files:?}",
                backend.name
            );
        }
        assert_eq!(
            dump(&reader),
            reader_state,
            "[{}] the reader's view",
            backend.name
        );
        assert_eq!(
            dump_read(&held),
            txn_state,
            "[{}] the read transaction's view",
            backend.name
        );
        drop(held);
        drop(reader);
        store.close().expect("close");
    });
}

#[test]
fn reuse_can_be_turned_off() {
    for_each_backend(|backend| {
        let store = options(backend)
            .reuse_snapshot_files(false)
            .open(&backend.dir)
            .expect("open");
        let mut i = 0;
        for _ in 0..3 {
            step_and_checkpoint(&store, &mut i);
            assert!(
                !backend.names().contains(&SPARE.to_owned()),
                "[{}]",
                backend.name
            );
        }
    });
}

/// A crash leaves the spare; the next writer open removes it as a stray temporary.
#[test]
fn an_open_after_a_crash_removes_the_spare() {
    let backend = Backend::sim(11);
    let sim = backend.sim.clone().expect("sim");
    let store = options(&backend).open(&backend.dir).expect("open");
    let mut i = 0;
    step_and_checkpoint(&store, &mut i);
    step_and_checkpoint(&store, &mut i);
    let expected = dump(&store);
    assert!(backend.names().contains(&SPARE.to_owned()));
    sim.crash(walstore::storage::sim::CrashMode::LoseUnsynced);
    // The process died: nothing of its close runs.
    std::mem::forget(store);
    let reopened = options(&backend).open(&backend.dir).expect("reopen");
    assert_eq!(dump(&reopened), expected);
    assert!(!backend.names().contains(&SPARE.to_owned()));
    assert!(
        reopened
            .recovery_report()
            .temps_removed
            .contains(&backend.path(SPARE))
    );
}

/// A writer on a simulated store with one checkpoint taken, and its steps so far.
fn raced_writer(sim: &SimStorage, dir: &Path) -> (Arc<Store>, u64) {
    let writer = Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(64 * 1024)
        .checkpoint_wal_bytes(0)
        .background_checkpoints(false)
        .open(dir)
        .expect("open");
    let mut i = 0;
    step_and_checkpoint(&writer, &mut i);
    (Arc::new(writer), i)
}

/// Opens a read-only store on `sim` whose open of the newest snapshot runs `race` (given
/// the writer's step counter) right after the file is opened, before it is locked: as a
/// writer in another process would, between the reader's open and its lock. Panics if
/// the race was not staged.
fn open_reader_racing(
    sim: &SimStorage,
    dir: &Path,
    steps: &Arc<Mutex<u64>>,
    race: impl Fn(&SimStorage, &mut u64) + Send + Sync + 'static,
) -> walstore::Result<Store> {
    let target = newest(sim, dir);
    let fired = Arc::new(Mutex::new(false));
    let hook = {
        let fired = fired.clone();
        let steps = steps.clone();
        move |sim: &SimStorage, path: &Path, mode: OpenMode| {
            let file = sim.open_file(path, mode)?;
            let mut fired = fired.lock().unwrap();
            if !*fired && path.file_name().is_some_and(|n| n == target.as_str()) {
                *fired = true;
                race(sim, &mut steps.lock().unwrap());
            }
            Ok(file)
        }
    };
    let racing = OnOpen {
        inner: sim.clone(),
        hook: Arc::new(hook),
    };
    let reader = Store::options()
        .storage(Arc::new(racing))
        .read_only(true)
        .verify_snapshot_on_open(true)
        .open(dir);
    assert!(*fired.lock().unwrap(), "the race was staged");
    reader
}

/// The race the lock protocol exists for: a reader opens the newest snapshot by name, and
/// before it locks the file, the writer checkpoints twice: the first checkpoint keeps that
/// snapshot's file as the spare (nothing held a lock on it yet), the second writes the next
/// snapshot over it. The reader then finds another lsn in the file it opened, sees that its
/// name is gone, and starts again: it must end with the writer's state, never with a
/// mixture, and never with an error.
#[test]
fn a_reader_that_opened_a_reused_file_starts_again() {
    let sim = SimStorage::new(5);
    let dir = Path::new("/data/store");
    let (writer, i) = raced_writer(&sim, dir);
    let target_ino = ino(&sim, &dir.join(newest(&sim, dir)));
    let steps = Arc::new(Mutex::new(i));
    let racer = writer.clone();
    let reader = open_reader_racing(&sim, dir, &steps, move |_, i| {
        step_and_checkpoint(&racer, i);
        step_and_checkpoint(&racer, i);
    })
    .expect("the reader starts again instead of failing");
    assert_eq!(
        ino(&sim, &dir.join(newest(&sim, dir))),
        target_ino,
        "the newest snapshot was written into the file the reader had opened"
    );
    assert_eq!(dump(&reader), dump(&writer));
    assert_eq!(
        reader.recovery_report().snapshot_lsn,
        *steps.lock().unwrap()
    );
}

/// The same race, but the checkpoint that writes over the spare fails (ENOSPC on its
/// `nth` write, after 0 to several blocks were written): the spare is unlinked, and its
/// lock released, with the superseded snapshot's bytes intact or half written over. The
/// reader that opened that file under its old name then locks it; its name is gone, so it
/// starts again, whatever the file holds, and ends with what a reader opening then sees.
/// (Found by a reviewer: the reader took a half-written file for damage and failed.)
#[test]
fn a_reader_of_a_spare_that_a_failed_checkpoint_left_starts_again() {
    use walstore::storage::sim::{CallKind, Fault, FaultKind};
    for nth in 1..=4 {
        let sim = SimStorage::new(5);
        let dir = Path::new("/data/store");
        let (writer, i) = raced_writer(&sim, dir);
        let steps = Arc::new(Mutex::new(i));
        let racer = writer.clone();
        let reader = open_reader_racing(&sim, dir, &steps, move |sim, i| {
            // Keeps the reader's file as the spare (the reader has no lock yet).
            step_and_checkpoint(&racer, i);
            for _ in 0..20 {
                *i += 1;
                commit_step(&racer, *i);
            }
            sim.inject(Fault {
                at_call: nth,
                kind: FaultKind::Enospc,
                persistent: false,
                only: Some(CallKind::Write),
            });
            assert!(
                racer.checkpoint().is_err(),
                "nth {nth}: the checkpoint fails"
            );
            sim.clear_faults();
        })
        .unwrap_or_else(|e| panic!("nth {nth}: the reader starts again instead of failing: {e}"));
        // What a reader opening now, with no race, sees (up to the writer's published
        // lsn: the failed checkpoint published nothing after the last commits). The raced
        // reader stopped at the limit it read before the race; a refresh takes it there.
        let calm = Store::options()
            .storage(Arc::new(sim.clone()))
            .read_only(true)
            .open(dir)
            .expect("read-only open");
        reader.refresh().expect("refresh");
        assert_eq!(reader.lsn(), calm.lsn(), "nth {nth}");
        assert!(
            dump(&reader) == dump(&calm),
            "nth {nth}: the reader's state"
        );
    }
}

fn newest(sim: &SimStorage, dir: &Path) -> String {
    sim.list_dir(dir)
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".snap"))
        .max()
        .expect("snapshot")
}

/// `verify` beside a live writer: a snapshot the writer has locked to rename it away for
/// reuse (here, a test holds that lock) is being superseded, not damaged. Without a
/// writer, a snapshot whose header names another lsn than its file name is corrupt.
/// (Found by a reviewer: verify reported the locked snapshot as corrupt.)
#[test]
fn verify_skips_a_snapshot_being_reused_and_checks_header_lsns() {
    for_each_backend(|backend| {
        let store = options(backend)
            .keep_fallback(true)
            .open(&backend.dir)
            .expect("open");
        let mut i = 0;
        step_and_checkpoint(&store, &mut i);
        step_and_checkpoint(&store, &mut i);
        // The fallback, which nothing maps, locked as `snapshot::reuse::retire` locks it.
        let fallback = backend
            .names_ending(".snap")
            .first()
            .cloned()
            .expect("fallback");
        let held = backend
            .storage
            .open_file(&backend.path(&fallback), OpenMode::ReadWrite)
            .expect("open");
        assert!(held.try_lock(true).expect("lock"), "[{}]", backend.name);
        let report = walstore::verify(&*backend.storage, &backend.dir).expect("verify");
        assert!(
            report.problems.is_empty(),
            "[{}] {:?}",
            backend.name,
            report.problems
        );
        drop(held);
        store.close().expect("close");
        // A copy of the newest snapshot under a name with another lsn.
        let newest = backend.names_ending(".snap").pop().expect("newest");
        let bytes = backend.read(&newest);
        backend.write("00000000000000000001.snap", &bytes);
        let report = walstore::verify(&*backend.storage, &backend.dir).expect("verify");
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.detail.contains("name says 1")),
            "[{}] {:?}",
            backend.name,
            report.problems
        );
    });
}

/// A prune that fails after it renamed a superseded snapshot away (here, removing that
/// snapshot's sidecar fails) has not made the rename durable (its directory fsync never
/// ran): the file is removed, not kept, so no checkpoint writes over a file that a crash
/// could bring back under its old name. (Found by a reviewer.)
#[test]
fn a_spare_whose_rename_is_not_durable_is_never_written_over() {
    use walstore::storage::sim::{CallKind, Fault, FaultKind};
    let backend = Backend::sim(13);
    let sim = backend.sim.clone().expect("sim");
    let store = options(&backend).open(&backend.dir).expect("open");
    let mut i = 0;
    step_and_checkpoint(&store, &mut i);
    let first = newest_snapshot(&backend);
    let first_ino = ino(&sim, &backend.path(&first));
    for _ in 0..20 {
        i += 1;
        commit_step(&store, i);
    }
    // Removes in this checkpoint: a stale `<lsn>.par` (none), then the old sidecar.
    sim.inject(Fault {
        at_call: 2,
        kind: FaultKind::Eio,
        persistent: false,
        only: Some(CallKind::Remove),
    });
    let error = store.checkpoint().expect_err("prune fails");
    sim.clear_faults();
    assert!(error.to_string().contains(".par"), "{error}");
    assert!(
        !backend.names().contains(&SPARE.to_owned()),
        "{:?}",
        backend.names()
    );
    step_and_checkpoint(&store, &mut i);
    let third = newest_snapshot(&backend);
    assert_ne!(ino(&sim, &backend.path(&third)), first_ino);
    let expected = dump(&store);
    drop(store);
    assert_eq!(
        dump(&options(&backend).open(&backend.dir).expect("reopen")),
        expected
    );
}

/// `verify` beside a live writer whose checkpoint, run while verify reads, prunes a
/// segment and the sidecar verify listed and supersedes the snapshot: verify checks
/// again from a fresh listing and reports nothing, instead of failing on the missing
/// segment or calling the missing sidecar damaged. (Found by a reviewer.)
#[test]
fn verify_beside_a_checkpoint_checks_again() {
    for what in [".wal", ".par"] {
        let sim = SimStorage::new(9);
        let dir = Path::new("/data/store");
        let (writer, i) = raced_writer(&sim, dir);
        let steps = Mutex::new(i);
        for _ in 0..20 {
            let mut i = steps.lock().unwrap();
            *i += 1;
            commit_step(&writer, *i);
        }
        let fired = Arc::new(Mutex::new(false));
        let hook = {
            let fired = fired.clone();
            let writer = writer.clone();
            move |sim: &SimStorage, path: &Path, mode: OpenMode| {
                let mut fired = fired.lock().unwrap();
                if !*fired && path.to_string_lossy().ends_with(what) {
                    *fired = true;
                    assert!(writer.checkpoint().expect("checkpoint").written);
                }
                sim.open_file(path, mode)
            }
        };
        let racing = OnOpen {
            inner: sim.clone(),
            hook: Arc::new(hook),
        };
        let report = walstore::verify(&racing, dir).expect("verify");
        assert!(*fired.lock().unwrap(), "{what}: the race was staged");
        assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
        assert_eq!(report.lsn, writer.lsn(), "{what}");
    }
}
