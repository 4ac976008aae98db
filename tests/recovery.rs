//! Recovery on open: torn tails, mid-log corruption, salvage, temps, snapshot fallback.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::{Backend, commit_step, dump, for_each_backend};
use walstore::{Error, RecoveryMode};

/// Commits `n` steps and returns the dump after each lsn (index = lsn).
fn build(backend: &Backend, n: u64) -> Vec<String> {
    let store = backend.open();
    let mut dumps = vec![dump(&store)];
    for i in 1..=n {
        commit_step(&store, i);
        dumps.push(dump(&store));
    }
    dumps
}

fn only_segment(backend: &Backend) -> String {
    let segments = backend.names_ending(".wal");
    assert_eq!(segments.len(), 1, "{segments:?}");
    segments.into_iter().next().unwrap_or_default()
}

/// Offsets at which each record starts, found by reopening truncated copies is too slow;
/// instead scan with the library.
fn record_offsets(bytes: &[u8], path: &std::path::Path) -> Vec<(u64, u64)> {
    record_spans(bytes, path)
        .iter()
        .map(|(offset, _, lsn)| (*offset, *lsn))
        .collect()
}

/// `(offset, payload end, lsn)` of each record.
fn record_spans(bytes: &[u8], path: &std::path::Path) -> Vec<(u64, u64, u64)> {
    let scanned = walstore::wal::scan::scan(bytes, path).expect("scan");
    scanned
        .records
        .iter()
        .map(|r| (r.offset, r.payload.end as u64, r.lsn))
        .collect()
}

#[test]
fn torn_tail_at_every_byte_offset_of_the_last_records() {
    for_each_backend(|backend| {
        let dumps = build(backend, 6);
        let name = only_segment(backend);
        let original = backend.read(&name);
        let spans = record_spans(&original, &backend.path(&name));
        let (first_cut, _, _) = spans[spans.len() - 3];
        let end = spans
            .last()
            .map_or(0, |(_, payload_end, _)| *payload_end + 8);
        let mut cases = 0;
        for cut in first_cut..=end {
            backend.write(&name, &original[..cut as usize]);
            let store = backend.open();
            // Independent of the reader: a record survives when its payload is whole.
            let expected_lsn = spans
                .iter()
                .filter(|(_, payload_end, _)| *payload_end <= cut)
                .map(|(_, _, lsn)| *lsn)
                .max()
                .unwrap_or(0);
            let inside_a_record = spans
                .iter()
                .any(|(offset, payload_end, _)| *offset < cut && cut < *payload_end);
            assert_eq!(store.lsn(), expected_lsn, "[{}] cut at {cut}", backend.name);
            assert_eq!(
                dump(&store),
                dumps[expected_lsn as usize],
                "[{}] cut at {cut}",
                backend.name
            );
            let report = store.recovery_report();
            assert_eq!(
                report.torn_tail.is_some(),
                inside_a_record,
                "[{}] cut {cut}: {report:?}",
                backend.name
            );
            // The store accepts commits after cutting the tail, and they survive reopen.
            let lsn = commit_step(&store, 1000);
            assert_eq!(lsn, expected_lsn + 1);
            drop(store);
            assert_eq!(backend.open().lsn(), lsn);
            cases += 1;
        }
        assert!(cases > 100, "{cases} cuts");
    });
}

#[test]
fn zero_and_garbage_tails_are_torn() {
    for_each_backend(|backend| {
        let dumps = build(backend, 5);
        let name = only_segment(backend);
        let original = backend.read(&name);
        let offsets = record_offsets(&original, &backend.path(&name));
        let (last_offset, _) = offsets[4];
        for garbage in [false, true] {
            let mut damaged = original.clone();
            for (i, byte) in damaged[last_offset as usize + 10..]
                .iter_mut()
                .enumerate()
                .take(4000)
            {
                *byte = if garbage { (i * 7 + 3) as u8 } else { 0 };
            }
            backend.write(&name, &damaged);
            let store = backend.open();
            assert_eq!(store.lsn(), 4, "[{}] garbage={garbage}", backend.name);
            assert_eq!(dump(&store), dumps[4]);
            assert!(store.recovery_report().torn_tail.is_some());
        }
    });
}

fn flip_middle_record(backend: &Backend) -> (String, u64) {
    let name = only_segment(backend);
    let mut bytes = backend.read(&name);
    let offsets = record_offsets(&bytes, &backend.path(&name));
    let (offset, _) = offsets[3];
    bytes[offset as usize + 40] ^= 0x10;
    backend.write(&name, &bytes);
    (name, offset)
}

#[test]
fn bit_flip_in_a_middle_record_is_corruption() {
    for_each_backend(|backend| {
        build(backend, 8);
        let (name, offset) = flip_middle_record(backend);
        let before = backend.read(&name);
        match backend.options().open(&backend.dir) {
            Err(Error::Corrupt {
                file,
                offset: at,
                reason,
            }) => {
                assert_eq!(file, backend.path(&name));
                assert_eq!(at, offset, "{reason}");
                assert!(reason.contains("durable"), "{reason}");
            }
            other => panic!("[{}] expected Corrupt, got {other:?}", backend.name),
        }
        assert_eq!(
            backend.read(&name),
            before,
            "strict recovery changes nothing"
        );
        assert!(matches!(
            backend.options().read_only(true).open(&backend.dir),
            Err(Error::Corrupt { .. })
        ));
    });
}

#[test]
fn salvage_cuts_back_quarantines_and_reports() {
    for_each_backend(|backend| {
        let dumps = build(backend, 8);
        let (_, offset) = flip_middle_record(backend);
        let store = backend
            .options()
            .recovery(RecoveryMode::Salvage)
            .open(&backend.dir)
            .expect("salvage");
        assert_eq!(store.lsn(), 3);
        assert_eq!(dump(&store), dumps[3]);
        let salvage = store
            .recovery_report()
            .salvage
            .clone()
            .expect("salvage report");
        assert_eq!(salvage.offset, offset);
        assert_eq!(
            salvage.lsn_range,
            Some((5, 8)),
            "intact records after the damage"
        );
        assert!(
            salvage
                .touched
                .iter()
                .any(|(c, k)| c == "fingerprints" && k.starts_with("code:")),
            "{:?}",
            salvage.touched
        );
        assert!(salvage.touched.iter().any(|(c, _)| c == "fts"));
        let quarantined = &salvage.quarantined[0];
        assert!(quarantined.starts_with(backend.dir.join("quarantine")));
        assert!(backend.storage.exists(quarantined).expect("exists"));
        assert_eq!(commit_step(&store, 99), 4);
        drop(store);
        let store = backend.open();
        assert_eq!(store.lsn(), 4, "strict open after salvage works");
    });
}

#[test]
fn stray_temps_removed_and_foreign_files_kept() {
    for_each_backend(|backend| {
        build(backend, 2);
        let ours = [
            "00000000000000000005.snap.tmp",
            "00000000000000000009.wal.tmp",
        ];
        let foreign = [
            "notes.tmp",
            "foo.snap.tmp",
            "1.wal.tmp",
            "random.txt",
            "00000000000000000001.snap.tmp.bak",
        ];
        for name in ours.iter().chain(&foreign) {
            backend.write(name, b"leftover");
        }
        let store = backend.open();
        let removed: Vec<_> = store
            .recovery_report()
            .temps_removed
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(removed, ours);
        let names = backend.names();
        for name in ours {
            assert!(!names.contains(&name.to_owned()), "{name} removed");
        }
        for name in foreign {
            assert!(names.contains(&name.to_owned()), "{name} kept");
        }
        assert_eq!(store.lsn(), 2);
    });
}

#[test]
fn read_only_open_reports_but_keeps_temps_and_torn_tail() {
    for_each_backend(|backend| {
        build(backend, 3);
        backend.write("00000000000000000005.snap.tmp", b"x");
        let name = only_segment(backend);
        let mut bytes = backend.read(&name);
        let spans = record_spans(&bytes, &backend.path(&name));
        let payload_end = spans.last().map_or(0, |(_, end, _)| *end) as usize;
        bytes.truncate(payload_end - 5);
        backend.write(&name, &bytes);
        let reader = backend
            .options()
            .read_only(true)
            .open(&backend.dir)
            .expect("read-only");
        assert_eq!(reader.lsn(), 2);
        assert!(reader.recovery_report().torn_tail.is_some());
        assert_eq!(reader.recovery_report().temps_found.len(), 1);
        assert_eq!(backend.read(&name), bytes, "read-only open writes nothing");
        assert!(
            backend
                .names()
                .contains(&"00000000000000000005.snap.tmp".to_owned())
        );
    });
}

#[test]
fn damaged_newest_snapshot_falls_back_to_the_previous_one() {
    for_each_backend(|backend| {
        // No sidecar: the damage is not rebuilt (tests/parity.rs), the fallback is used.
        let store = backend
            .options()
            .checkpoint_wal_bytes(0)
            .keep_fallback(true)
            .snapshot_parity(false)
            .open(&backend.dir)
            .expect("open");
        for i in 1..=30 {
            commit_step(&store, i);
            if i == 10 || i == 20 {
                store.checkpoint().expect("checkpoint");
            }
        }
        let expected = dump(&store);
        drop(store);
        let snaps = backend.names_ending(".snap");
        assert_eq!(snaps.len(), 2, "{snaps:?}");
        let newest = &snaps[1];
        let mut bytes = backend.read(newest);
        let len = bytes.len();
        bytes[len - 10] ^= 0xFF; // the footer
        backend.write(newest, &bytes);
        let store = backend.open();
        assert_eq!(store.lsn(), 30);
        assert_eq!(dump(&store), expected, "[{}]", backend.name);
        let report = store.recovery_report();
        assert_eq!(report.snapshot_lsn, 10);
        assert_eq!(report.fallbacks.len(), 1, "{report:?}");
        assert!(
            backend
                .storage
                .exists(&backend.dir.join("quarantine").join(newest))
                .expect("exists")
        );
    });
}

#[test]
fn missing_segment_is_corruption() {
    for_each_backend(|backend| {
        let store = backend
            .options()
            .segment_bytes(4096)
            .checkpoint_wal_bytes(0)
            .open(&backend.dir)
            .expect("open");
        for i in 1..=200 {
            commit_step(&store, i);
        }
        drop(store);
        let segments = backend.names_ending(".wal");
        assert!(segments.len() >= 3, "{segments:?}");
        backend
            .storage
            .remove_file(&backend.path(&segments[1]))
            .expect("remove");
        match backend.options().open(&backend.dir) {
            Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("missing"), "{reason}"),
            other => panic!("[{}] expected Corrupt, got {other:?}", backend.name),
        }
    });
}

#[test]
fn segment_of_another_store_is_corruption() {
    let a = Backend::fs();
    let b = Backend::fs();
    build(&a, 2);
    let store = b.options().segment_bytes(4096).open(&b.dir).expect("open");
    for i in 1..=60 {
        commit_step(&store, i);
    }
    drop(store);
    let foreign = a.read(&only_segment(&a));
    let target = b.names_ending(".wal").last().cloned().unwrap_or_default();
    b.write(&target, &foreign);
    assert!(matches!(
        b.options().open(&b.dir),
        Err(Error::Corrupt { .. })
    ));
}
