//! Parity sidecars beside backups and concurrent opens, from the third review of the
//! eighth session (the first and third of these failed on the code it reviewed).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::single_range_in_vec_init,
    reason = "tests fail loudly"
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::parity::{OnOpen, PAGE, checkpointed_with, damage};
use common::{Backend, dump};
use walstore::Store;
use walstore::storage::{OpenMode, SimStorage, Storage};

/// A damaged data block in the base snapshot, with a sidecar that rebuilds it: a backup,
/// which copies the same blocks, rebuilds it in memory as a checkpoint does (P2 g), and
/// writes a good copy; the source store is not changed.
#[test]
fn a_backup_rebuilds_a_damaged_snapshot_it_copies_from() {
    let backend = Backend::sim(41);
    let (snap, state) = checkpointed_with(&backend, backend.options());
    damage(&backend, &snap, &[20 * PAGE + 10..20 * PAGE + 11]);
    let reader = backend
        .options()
        .read_only(true)
        .open(&backend.dir)
        .unwrap();
    let dest = backend.dir.with_file_name("backup");
    let backup = reader.backup(&dest);
    drop(reader);
    // The same store's checkpoint heals from the sidecar.
    let store = backend.open();
    let mut txn = store.begin_write();
    txn.set_meta("later", walstore::Value::from(2u64));
    txn.commit().unwrap();
    let healed = store.checkpoint().map(|r| r.base_rebuilt.is_some());
    drop(store);
    assert!(
        backup.is_ok(),
        "backup failed: {:?}; the checkpoint of the same store: base_rebuilt = {healed:?}",
        backup.err()
    );
    assert!(matches!(healed, Ok(true)), "{healed:?}");
    let copy = Store::options()
        .storage(backend.storage.clone())
        .open(&dest)
        .expect("open the backup");
    assert!(dump(&copy) == state, "the backup holds the state");
    assert!(copy.recovery_report().repaired.is_empty());
}

/// A backup's sidecar matches its snapshot: verify finds nothing, and a damaged backup
/// snapshot is rebuilt from it.
#[test]
fn a_backups_sidecar_rebuilds_its_snapshot() {
    let backend = Backend::fs();
    let (_, state) = checkpointed_with(&backend, backend.options());
    let store = backend.open();
    let dest = backend.dir.with_file_name("backup");
    store.backup(&dest).unwrap();
    drop(store);
    let report = walstore::verify(backend.storage.as_ref(), &dest).unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    let snap = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".snap"))
        .unwrap();
    let path = dest.join(&snap);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 25] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let copy = Store::options().open(&dest).unwrap();
    assert_eq!(copy.recovery_report().repaired.len(), 1);
    assert_eq!(dump(&copy), state);
}

/// A read-only open (a `walstore search`, a live reader's reload) finds the snapshot
/// damaged; before its rebuild reads the file, a writer's open has put the rebuilt
/// snapshot in place. The rebuild finds nothing to rebuild; the open then reads the file
/// again instead of failing.
#[test]
fn a_read_only_open_racing_a_writers_repair_reads_the_repaired_file() {
    let backend = Backend::sim(43);
    let (snap, state) = checkpointed_with(&backend, backend.options());
    let len = backend.read(&snap).len();
    let good = damage(&backend, &snap, &[len - 30..len - 20]);
    // At the second read-only open of the snapshot, a writer's repair (case 2r) has just
    // put the rebuilt file in place by rename.
    let (file, opens) = (backend.path(&snap), Arc::new(AtomicUsize::new(0)));
    let storage = OnOpen {
        inner: backend.sim.clone().unwrap(),
        hook: Arc::new(move |sim: &SimStorage, path: &Path, mode| {
            if path == file && mode == OpenMode::Read && opens.fetch_add(1, Ordering::SeqCst) == 1 {
                let tmp = file.with_extension("snap.tmp");
                sim.write_file(&tmp, &good);
                sim.rename(&tmp, &file)?;
            }
            sim.open_file(path, mode)
        }),
    };
    let opened = Store::options()
        .storage(Arc::new(storage))
        .segment_bytes(64 * 1024)
        .read_only(true)
        .open(&backend.dir);
    match opened {
        Ok(store) => assert_eq!(dump(&store), state),
        Err(error) => panic!("read-only open failed on an intact store: {error}"),
    }
}
