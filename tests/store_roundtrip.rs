//! Every collection round-trips, in memory and across reopen, checkpoints included.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::collections::BTreeMap;

use common::{Backend, commit_step, dump, fingerprint, for_each_backend};
use serde::{Deserialize, Serialize};
use walstore::{Durability, Value};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RunInfo {
    pid: u32,
    files: Vec<String>,
    finished: Option<u64>,
}

#[test]
fn every_collection_round_trips_across_reopen() {
    for_each_backend(|backend| {
        let store = backend.open();
        assert_eq!(store.lsn(), 0);
        let mut txn = store.begin_write();
        let mut map = BTreeMap::new();
        map.insert(
            "nested".to_owned(),
            Value::List(vec![Value::Null, Value::Bool(true), Value::Float(1.5)]),
        );
        txn.set_meta("int", Value::Int(-3))
            .set_meta("big", Value::UInt(u64::MAX))
            .set_meta("map", Value::Map(map.clone()))
            .set_meta("bytes", Value::Bytes(vec![0, 1, 255]))
            .set_config("name", "walstore")
            .put_fingerprint("code", "src/a.rs", fingerprint(1))
            .put_fingerprint("docs", "README.md", fingerprint(2))
            .index_doc("src/a.rs", "fn atomicWriteJson() { MAX_RETRY_COUNT }");
        txn.set_meta_as(
            "run",
            &RunInfo {
                pid: 7,
                files: vec!["a".into()],
                finished: None,
            },
        )
        .expect("serialize");
        assert_eq!(txn.commit().expect("commit"), 1);
        let check = |store: &walstore::Store| {
            let read = store.read();
            assert_eq!(read.lsn(), 1);
            assert_eq!(read.meta("int").expect("read"), Some(Value::Int(-3)));
            assert_eq!(read.meta("big").expect("read"), Some(Value::UInt(u64::MAX)));
            assert_eq!(
                read.meta("map").expect("read"),
                Some(Value::Map(map.clone()))
            );
            assert_eq!(
                read.meta("bytes").expect("read"),
                Some(Value::Bytes(vec![0, 1, 255]))
            );
            assert_eq!(
                read.config("name").expect("read"),
                Some(Value::from("walstore"))
            );
            assert_eq!(
                read.meta_as::<RunInfo>("run").expect("typed"),
                Some(RunInfo {
                    pid: 7,
                    files: vec!["a".into()],
                    finished: None
                })
            );
            assert_eq!(
                read.fingerprint("code", "src/a.rs").expect("read"),
                Some(fingerprint(1))
            );
            assert_eq!(read.fingerprint("docs", "src/a.rs").expect("read"), None);
            let docs_ns: Vec<_> = read
                .fingerprints("docs")
                .expect("scan")
                .map(|e| e.expect("entry"))
                .collect();
            assert_eq!(docs_ns, vec![("README.md".to_owned(), fingerprint(2))]);
            let postings: Vec<_> = read
                .postings("write")
                .expect("scan")
                .map(|e| e.expect("entry"))
                .collect();
            assert_eq!(postings, vec![("src/a.rs".to_owned(), 1)]);
            assert_eq!(read.fts_stats().expect("stats").docs, 1);
        };
        check(&store);
        drop(store);
        let store = backend.open();
        check(&store);
        store.checkpoint().expect("checkpoint");
        check(&store);
        drop(store);
        check(&backend.open());
    });
}

#[test]
fn deletes_replacements_and_fts_deltas() {
    for_each_backend(|backend| {
        let store = backend.open();
        let mut txn = store.begin_write();
        txn.index_doc("a", "red green")
            .index_doc("b", "green blue")
            .set_meta("k", 1i64);
        txn.commit().expect("commit");
        store.checkpoint().expect("checkpoint");
        let mut txn = store.begin_write();
        txn.index_doc("a", "yellow")
            .remove_doc("b")
            .remove_doc("absent")
            .delete_meta("k")
            .delete_meta("absent");
        txn.commit().expect("commit");
        let read = store.read();
        assert_eq!(
            read.postings("green").expect("scan").count(),
            0,
            "[{}]",
            backend.name
        );
        assert_eq!(read.postings("yellow").expect("scan").count(), 1);
        let docs: Vec<_> = read
            .docs()
            .expect("docs")
            .map(|d| d.expect("doc"))
            .collect();
        assert_eq!(docs, ["a"]);
        assert_eq!(read.meta("k").expect("read"), None);
        let stats = read.fts_stats().expect("stats");
        assert_eq!((stats.docs, stats.tokens), (1, 1));
        let before = dump(&store);
        drop(store);
        assert_eq!(dump(&backend.open()), before);
    });
}

#[test]
fn workload_with_checkpoints_and_rotations_survives_reopen() {
    for_each_backend(|backend| {
        let store = backend
            .options()
            .segment_bytes(4096)
            .checkpoint_wal_bytes(0)
            .open(&backend.dir)
            .expect("open");
        for i in 1..=400 {
            assert_eq!(commit_step(&store, i), i);
            if i % 150 == 0 {
                store.checkpoint().expect("checkpoint");
            }
        }
        let before = dump(&store);
        drop(store);
        let store = backend.open();
        assert_eq!(store.lsn(), 400);
        assert_eq!(dump(&store), before, "[{}]", backend.name);
        assert!(
            backend.names_ending(".wal").len() >= 2,
            "segments rotated: {:?}",
            backend.names()
        );
        assert_eq!(
            backend.names_ending(".snap"),
            ["00000000000000000300.snap"],
            "old snapshots pruned"
        );
    });
}

#[test]
fn automatic_checkpoint_after_wal_threshold() {
    for (backend, background) in [
        (Backend::sim(1), true),
        (Backend::fs(), true),
        (Backend::sim(2), false),
        (Backend::fs(), false),
    ] {
        let store = backend
            .options()
            .checkpoint_wal_bytes(16 * 1024)
            .background_checkpoints(background)
            .open(&backend.dir)
            .expect("open");
        for i in 1..=300 {
            commit_step(&store, i);
        }
        // The background thread runs on its own schedule: give it time, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while backend.names_ending(".snap").is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            !backend.names_ending(".snap").is_empty(),
            "[{} background={background}] a checkpoint ran: {:?}",
            backend.name,
            backend.names()
        );
        let before = dump(&store);
        drop(store);
        assert_eq!(dump(&backend.open()), before);
    }
}

#[test]
fn group_commit_from_many_threads() {
    for_each_backend(|backend| {
        let store = std::sync::Arc::new(backend.open());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut lsns = Vec::new();
                    for i in 0..50u64 {
                        let mut txn = store.begin_write();
                        txn.put_fingerprint("code", &format!("t{t}/f{i}"), fingerprint(i));
                        lsns.push(txn.commit().expect("commit"));
                    }
                    lsns
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (1..=400).collect::<Vec<_>>(),
            "lsns are dense and unique"
        );
        assert_eq!(store.read().all_fingerprints().expect("scan").count(), 400);
    });
}

#[test]
fn durability_none_then_sync() {
    for_each_backend(|backend| {
        let store = backend
            .options()
            .durability(Durability::None)
            .open(&backend.dir)
            .expect("open");
        for i in 1..=20 {
            commit_step(&store, i);
        }
        store.sync().expect("sync");
        let before = dump(&store);
        if let Some(sim) = &backend.sim {
            sim.crash(walstore::storage::sim::CrashMode::LoseUnsynced);
            drop(store);
            assert_eq!(
                dump(&backend.open()),
                before,
                "synced commits survive a crash"
            );
        }
    });
}

#[test]
fn read_view_is_stable_while_writes_continue() {
    for_each_backend(|backend| {
        let store = backend.open();
        commit_step(&store, 1);
        let view = store.read();
        let before = format!("{:?}", view.metadata().expect("scan"));
        for i in 2..=50 {
            commit_step(&store, i);
            if i == 25 {
                store.checkpoint().expect("checkpoint");
            }
        }
        assert_eq!(view.lsn(), 1);
        assert_eq!(format!("{:?}", view.metadata().expect("scan")), before);
    });
}

#[test]
fn read_only_open_sees_committed_state_and_refuses_writes() {
    let backend = Backend::fs();
    let store = backend.open();
    for i in 1..=10 {
        commit_step(&store, i);
    }
    let reader = backend
        .options()
        .read_only(true)
        .open(&backend.dir)
        .expect("read-only open while writer holds the lock");
    assert_eq!(reader.lsn(), 10);
    assert_eq!(dump(&reader), dump(&store));
    assert!(matches!(
        reader.begin_write().commit(),
        Err(walstore::Error::ReadOnly)
    ));
    let missing = backend
        .options()
        .read_only(true)
        .open(backend.dir.join("nope"));
    assert!(matches!(missing, Err(walstore::Error::NotAStore { .. })));
}

/// The records after a checkpoint start a segment of their own, so an open reads only
/// them and not the segment the snapshot already covers.
#[test]
fn a_checkpoint_starts_a_new_segment_so_open_reads_only_what_follows() {
    for_each_backend(|backend| {
        let store = backend
            .options()
            .checkpoint_wal_bytes(0)
            .open(&backend.dir)
            .expect("open");
        for i in 1..=5 {
            commit_step(&store, i);
        }
        store.checkpoint().expect("checkpoint");
        assert_eq!(
            backend.names_ending(".wal").last().map(String::as_str),
            Some("00000000000000000006.wal"),
            "[{}] an idle checkpoint starts the next segment itself",
            backend.name
        );
        commit_step(&store, 6);
        drop(store);
        assert_eq!(
            backend.names_ending(".wal").last().map(String::as_str),
            Some("00000000000000000006.wal")
        );
        let store = backend.open();
        let report = store.recovery_report();
        assert_eq!(
            (
                report.snapshot_lsn,
                report.segments_read,
                report.records_replayed
            ),
            (5, 1, 1),
            "[{}]",
            backend.name
        );
    });
}

#[test]
fn borrowed_fingerprint_scan_equals_the_owned_one_across_layers() {
    for_each_backend(|backend| {
        let store = backend.open();
        for i in 0..300u64 {
            commit_step(&store, i);
            if i % 100 == 99 {
                store.checkpoint().expect("checkpoint");
            }
        }
        let read = store.read();
        for ns in ["code", "docs", "nothing"] {
            let owned: Vec<_> = read
                .fingerprints(ns)
                .expect("scan")
                .map(|e| e.expect("entry"))
                .collect();
            let mut borrowed = Vec::new();
            read.for_each_fingerprint(ns, |path, fp| {
                borrowed.push((path.to_owned(), fp.to_owned()));
                std::ops::ControlFlow::Continue(())
            })
            .expect("borrowed scan");
            assert_eq!(borrowed, owned, "{ns}");
            let mut first = 0;
            read.for_each_fingerprint(ns, |_, _| {
                first += 1;
                std::ops::ControlFlow::Break(())
            })
            .expect("stopped scan");
            assert_eq!(first, usize::from(!owned.is_empty()));
        }
    });
}

/// A lookup of a key below every key of the snapshot reads no block (the writer open's
/// look for an interrupted indexing run, in a store of fingerprints only, used to cost
/// three cold page faults): with the first data block damaged, it still answers `None`,
/// while a lookup that needs that block reports the damage.
#[test]
fn a_lookup_below_the_snapshots_first_key_reads_no_block() {
    let sim = walstore::storage::SimStorage::new(3);
    let dir = "/below/store";
    let options = || {
        walstore::Store::options()
            .storage(std::sync::Arc::new(sim.clone()))
            .background_checkpoints(false)
    };
    let store = options().open(dir).expect("open");
    let mut txn = store.begin_write();
    for i in 0..200 {
        txn.put_fingerprint("code", &format!("src/f{i:04}.rs"), fingerprint(i));
    }
    txn.commit().expect("commit");
    store.checkpoint().expect("checkpoint");
    drop(store);
    let snapshot = sim
        .file_names(dir)
        .into_iter()
        .find(|name| name.ends_with(".snap"))
        .expect("a snapshot");
    // A bit inside the first data block (the blocks start after the 64-byte header).
    let path = std::path::Path::new(dir).join(&snapshot);
    sim.flip_bit(&path, 100 * 8).expect("flip");
    let store = options().read_only(true).open(dir).expect("open read-only");
    let read = store.read();
    assert_eq!(read.meta("index.running").expect("no block read"), None);
    assert_eq!(read.config("anything").expect("no block read"), None);
    let damaged = read.fingerprint("code", "src/f0000.rs");
    assert!(
        matches!(damaged, Err(walstore::Error::Corrupt { .. })),
        "{damaged:?}"
    );
}
