//! Regression tests for bugs found in review; each names what it guards.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::{Backend, commit_step};
use walstore::storage::sim::CrashMode;
use walstore::{Durability, Error, RecoveryMode, Value};

/// Records replayed from the page cache after a process crash must be made durable
/// before new records claim (through `durable_lsn`) that they are.
#[test]
fn replayed_records_are_synced_before_new_appends() {
    for seed in 0..60 {
        let backend = Backend::sim(seed);
        let sim = backend.sim.clone().expect("sim");
        let store = backend
            .options()
            .durability(Durability::None)
            .open(&backend.dir)
            .expect("open");
        for i in 1..=5 {
            commit_step(&store, i);
        }
        drop(store);
        sim.crash(CrashMode::KeepUnsynced); // the process died; the page cache survived
        let store = backend.open();
        let acknowledged = commit_step(&store, 6); // Immediate
        drop(store);
        sim.crash(CrashMode::Random); // power loss
        let store = backend
            .options()
            .open(&backend.dir)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            store.lsn() >= acknowledged,
            "seed {seed}: lost lsn {acknowledged}"
        );
    }
}

/// A segment that overlaps the previous one is corruption, not replayed twice.
#[test]
fn overlapping_segment_is_corruption() {
    let backend = Backend::fs();
    let store = backend
        .options()
        .segment_bytes(4096)
        .open(&backend.dir)
        .expect("open");
    for i in 1..=80 {
        commit_step(&store, i);
    }
    drop(store);
    let segments = backend.names_ending(".wal");
    assert!(segments.len() >= 3, "{segments:?}");
    // Rename the third segment so it claims to start one lsn early.
    let third = &segments[2];
    let first_lsn: u64 = third.trim_end_matches(".wal").parse().expect("lsn");
    let mut bytes = backend.read(third);
    bytes[32..40].copy_from_slice(&(first_lsn - 1).to_le_bytes());
    let crc = walstore::codec::checksum(&[&bytes[..60]]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::remove_file(backend.path(third)).expect("remove");
    backend.write(&format!("{:020}.wal", first_lsn - 1), &bytes);
    match backend.options().open(&backend.dir) {
        Err(Error::Corrupt { reason, .. }) => assert!(
            reason.contains("overlap") || reason.contains("lsn"),
            "{reason}"
        ),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// A salvage interrupted after writing its `.cut` file runs again without failing, and
/// never overwrites quarantined bytes.
#[test]
fn salvage_runs_again_after_an_interruption() {
    let backend = Backend::fs();
    let store = backend.open();
    for i in 1..=8 {
        commit_step(&store, i);
    }
    drop(store);
    let name = backend.names_ending(".wal").remove(0);
    let mut bytes = backend.read(&name);
    let scanned = walstore::wal::scan::scan(&bytes, &backend.path(&name)).expect("scan");
    let offset = scanned.records[3].offset;
    bytes[offset as usize + 40] ^= 0x10;
    backend.write(&name, &bytes);
    // A previous salvage got as far as writing its .cut file.
    std::fs::create_dir_all(backend.dir.join("quarantine")).expect("mkdir");
    let earlier = backend
        .dir
        .join("quarantine")
        .join(format!("{name}.at-{offset}.cut"));
    std::fs::write(&earlier, b"earlier salvage").expect("write");
    let store = backend
        .options()
        .recovery(RecoveryMode::Salvage)
        .open(&backend.dir)
        .expect("salvage again");
    assert_eq!(store.lsn(), 3);
    assert_eq!(std::fs::read(&earlier).expect("kept"), b"earlier salvage");
    let report = store.recovery_report().salvage.clone().expect("salvage");
    assert!(
        report.quarantined[0].to_string_lossy().ends_with(".cut.1"),
        "{:?}",
        report.quarantined
    );
}

/// A snapshot of a newer format version is not damage: open fails and leaves it alone.
#[test]
fn unsupported_snapshot_version_is_not_quarantined() {
    let backend = Backend::fs();
    let store = backend.open();
    commit_step(&store, 1);
    store.checkpoint().expect("checkpoint");
    drop(store);
    let snap = backend.names_ending(".snap").remove(0);
    let mut bytes = backend.read(&snap);
    let newer = walstore::codec::FORMAT_VERSION + 1;
    bytes[8..12].copy_from_slice(&newer.to_le_bytes());
    let crc = walstore::codec::checksum(&[&bytes[..60]]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    backend.write(&snap, &bytes);
    match backend.options().open(&backend.dir) {
        Err(Error::UnsupportedVersion { found, .. }) if found == newer => {}
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert!(
        backend.names().contains(&snap),
        "the snapshot stays in place"
    );
    assert!(!backend.dir.join("quarantine").exists());
}

/// A refresh reads every committed record in one call, however many 64 KiB chunks they
/// span (it once stopped where a chunk ended on a record boundary).
#[test]
fn one_refresh_reads_records_across_many_chunks() {
    let backend = Backend::fs();
    let writer = backend
        .options()
        .durability(Durability::None)
        .open(&backend.dir)
        .expect("writer");
    commit_step(&writer, 1);
    let reader = backend
        .options()
        .read_only(true)
        .open(&backend.dir)
        .expect("reader");
    for i in 2..=3000 {
        let mut txn = writer.begin_write();
        txn.set_meta("n", i as i64);
        txn.commit().expect("commit");
    }
    assert_eq!(reader.refresh().expect("refresh"), 3000);
}

/// Readers probing the writer lock (a shared flock held for microseconds) never make a
/// writer's open fail with `Locked`.
#[test]
fn lock_probes_by_readers_do_not_block_a_writer_open() {
    let backend = Backend::fs();
    drop(backend.open());
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let probes = std::sync::Arc::new(AtomicU64::new(0));
    let prober = {
        let (dir, stop, probes) = (backend.dir.clone(), stop.clone(), probes.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = walstore::lock_holder(&walstore::storage::FsStorage, &dir);
                probes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The opens must overlap the probes: wait for the prober to run (on a busy machine
    // 200 opens can end before a new thread is first scheduled).
    while probes.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    for _ in 0..200 {
        let writer = backend.options().open(&backend.dir);
        assert!(writer.is_ok(), "{:?}", writer.err());
    }
    stop.store(true, Ordering::Relaxed);
    prober.join().expect("prober");
    assert!(probes.load(Ordering::Relaxed) > 1);
}

/// A strict writer open that meets corruption changes no file: it neither removes the
/// store's stray temporaries nor quarantines a damaged snapshot before finding it.
#[test]
fn a_strict_open_that_meets_corruption_changes_nothing() {
    let backend = Backend::fs();
    let store = backend
        .options()
        .checkpoint_wal_bytes(0)
        .open(&backend.dir)
        .expect("open");
    for i in 1..=20 {
        commit_step(&store, i);
        if i == 5 || i == 10 {
            store.checkpoint().expect("checkpoint");
        }
    }
    drop(store);
    let newest_snapshot = backend.names_ending(".snap").pop().expect("snapshot");
    let mut snap = backend.read(&newest_snapshot);
    let len = snap.len();
    snap[len - 10] ^= 0xFF;
    backend.write(&newest_snapshot, &snap);
    let segment = backend.names_ending(".wal").pop().expect("segment");
    let mut bytes = backend.read(&segment);
    let scanned = walstore::wal::scan::scan(&bytes, &backend.path(&segment)).expect("scan");
    assert!(scanned.records.len() >= 3, "{}", scanned.records.len());
    bytes[scanned.records[0].offset as usize + 40] ^= 0x10;
    backend.write(&segment, &bytes);
    backend.write("00000000000000000007.snap.tmp", b"leftover");
    let names = backend.names();
    let before: Vec<Vec<u8>> = names.iter().map(|name| backend.read(name)).collect();
    assert!(matches!(
        backend.options().open(&backend.dir),
        Err(Error::Corrupt { .. })
    ));
    let after_names: Vec<String> = backend
        .names()
        .into_iter()
        .filter(|n| n != walstore::LOCK_FILE)
        .collect();
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| n != walstore::LOCK_FILE)
        .collect();
    assert_eq!(after_names, names, "no file removed or added");
    for (name, bytes) in names.iter().zip(&before) {
        if name != walstore::LOCK_FILE {
            assert_eq!(&backend.read(name), bytes, "{name} unchanged");
        }
    }
    assert!(!backend.dir.join("quarantine").exists());
}

/// The posting section is written once every lower-tag key is: a base block starting at
/// the FTS stats key (tag 6) used to trigger it before pending tag-4 overlay keys, and the
/// snapshot writer panicked ("keys must be strictly ascending"). Found by review.
#[test]
fn posting_section_waits_for_pending_lower_tag_overlay_keys() {
    let backend = Backend::sim(1);
    {
        let store = backend.open();
        let mut txn = store.begin_write();
        // A large metadata value closes its block, so the stats key starts the next one.
        txn.set_meta("z", Value::from("x".repeat(6000)));
        txn.index_doc("a", "hello");
        txn.commit().expect("commit");
        let mut txn = store.begin_write();
        txn.remove_doc("a");
        txn.commit().expect("commit");
        store.checkpoint().expect("checkpoint");
        let mut txn = store.begin_write();
        txn.index_doc("b", "world");
        txn.set_meta("zz", Value::Int(1));
        txn.commit().expect("commit");
        store
            .checkpoint()
            .expect("the second checkpoint writes keys in order");
        let mut txn = store.begin_write();
        txn.set_meta("m", Value::Int(2));
        txn.commit().expect("commit");
        store.checkpoint().expect("checkpoint");
    }
    let store = backend.open();
    let read = store.read();
    assert_eq!(read.meta("zz").expect("read"), Some(Value::Int(1)));
    assert_eq!(read.meta("m").expect("read"), Some(Value::Int(2)));
    assert!(read.doc("b").expect("read").is_some());
    assert_eq!(read.search("world", 10).expect("search").hits.len(), 1);
    assert!(read.doc("a").expect("read").is_none());
}
