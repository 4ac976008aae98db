//! `walstore backup DIR DEST`: a consistent copy of a live store that `verify` passes.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cli_common::{dump, import_n, s, walstore};

#[test]
fn backup_while_a_writer_commits_is_a_verified_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 1);
    let store = Arc::new(walstore::Store::open(&dir).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 2u64;
            while !stop.load(Ordering::Relaxed) && i < 100_000 {
                let mut txn = store.begin_write();
                txn.set_meta(&format!("k{i}"), walstore::Value::from(i));
                txn.commit().unwrap();
                i += 1;
            }
        })
    };
    while store.lsn() < 20 {
        std::thread::yield_now();
    }
    let dest = tmp.path().join("copy");
    let run = walstore(&["backup", s(&dir), s(&dest)]).ok();
    assert!(run.stdout.contains("backup of"), "{run:?}");
    // Let the writer go on past the copy's lsn before stopping it.
    let after = store.lsn() + 10;
    while store.lsn() < after {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    walstore(&["verify", s(&dest)]).ok();
    let copy = dump(&dest);
    let lsn = copy["lsn"].as_u64().unwrap();
    assert!(lsn >= 20 && lsn < store.lsn(), "lsn {lsn}");
    let metadata = copy["metadata"].as_object().unwrap();
    assert_eq!(metadata.len() as u64, lsn, "a prefix: k1..k{lsn}");
    for i in 1..=lsn {
        assert_eq!(metadata[&format!("k{i}")], i);
    }
    // The copy is a store of its own that takes new transactions.
    drop(store);
    let run = cli_common::import(&dest, &cli_common::set_meta_line(0)).ok();
    assert_eq!(run.lines(), [format!("committed {}", lsn + 1)]);
}

#[test]
fn backup_json_report_and_refusal_to_overwrite_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 3);
    let dest = tmp.path().join("copy");
    let report = walstore(&["backup", s(&dir), s(&dest), "--json"])
        .ok()
        .json();
    assert_eq!(report["lsn"], 3);
    assert_eq!(dump(&dest), dump(&dir));
    let before = cli_common::contents(&dest);
    let run = walstore(&["backup", s(&dir), s(&dest)]);
    assert_ne!(run.code, 0);
    cli_common::assert_one_error_line(&run);
    assert!(run.stderr.contains("already holds a store"), "{run:?}");
    assert_eq!(cli_common::contents(&dest), before);
}

#[test]
fn backup_of_a_missing_store_fails_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("missing");
    let dest = tmp.path().join("copy");
    walstore(&["backup", s(&dir), s(&dest)]).fails(1);
    assert!(!dir.exists());
    assert!(!dest.exists());
}
