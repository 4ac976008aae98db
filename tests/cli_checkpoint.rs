//! `walstore checkpoint`: writes a snapshot and drops the WAL it covers (keeping the
//! previous snapshot and the WAL since it, so two checkpoints are needed to drop any).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use cli_common::{dump, import_n, many_segments, names_ending, s, walstore};

#[test]
fn checkpoints_write_snapshots_and_drop_covered_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    many_segments(&dir, 60);
    let segments_before = names_ending(&dir, ".wal");
    assert!(segments_before.len() > 3, "{segments_before:?}");
    let state = dump(&dir);

    let report = walstore(&["checkpoint", s(&dir), "--json"]).ok().json();
    assert_eq!(report["lsn"], 60);
    assert_eq!(report["written"], true);
    assert_eq!(names_ending(&dir, ".snap"), ["00000000000000000060.snap"]);
    assert_eq!(names_ending(&dir, ".par"), ["00000000000000000060.par"]);
    assert_eq!(dump(&dir), state);
    // Every segment the snapshot covers is gone; the checkpoint started the next one.
    assert_eq!(report["segments_deleted"], segments_before.len());
    assert_eq!(names_ending(&dir, ".wal"), ["00000000000000000061.wal"]);
    walstore(&["verify", s(&dir)]).ok();

    // With --keep-fallback, the previous snapshot and the WAL since it stay.
    let lines: String = (61..=62).map(cli_common::set_meta_line).collect();
    cli_common::import(&dir, &lines).ok();
    let report = walstore(&["checkpoint", s(&dir), "--json", "--keep-fallback"])
        .ok()
        .json();
    assert_eq!(report["lsn"], 62);
    assert_eq!(report["segments_deleted"], 0);
    assert_eq!(
        names_ending(&dir, ".snap"),
        ["00000000000000000060.snap", "00000000000000000062.snap"]
    );
    assert_eq!(
        names_ending(&dir, ".wal"),
        ["00000000000000000061.wal", "00000000000000000063.wal"]
    );
    walstore(&["verify", s(&dir)]).ok();

    // Without it, the next checkpoint drops that fallback.
    cli_common::import(&dir, &cli_common::set_meta_line(63)).ok();
    let report = walstore(&["checkpoint", s(&dir), "--json"]).ok().json();
    assert_eq!(report["lsn"], 63);
    assert_eq!(names_ending(&dir, ".snap"), ["00000000000000000063.snap"]);
    assert_eq!(names_ending(&dir, ".par"), ["00000000000000000063.par"]);
    assert_eq!(names_ending(&dir, ".wal"), ["00000000000000000064.wal"]);
    walstore(&["verify", s(&dir)]).ok();
    assert_eq!(dump(&dir)["lsn"], 63);
}

#[test]
fn checkpoint_with_nothing_new_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    walstore(&["checkpoint", s(&dir)]).ok();
    let run = walstore(&["checkpoint", s(&dir)]).ok();
    assert!(run.stdout.contains("nothing to do"), "{run:?}");
    assert_eq!(names_ending(&dir, ".snap").len(), 1);
}

#[test]
fn checkpoint_of_a_missing_store_fails_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("missing");
    walstore(&["checkpoint", s(&dir)]).fails(1);
    assert!(!dir.exists());
}

#[test]
fn checkpoint_refuses_a_corrupt_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 4);
    let segment = cli_common::last_segment(&dir);
    let (offset, _, _) = cli_common::records(&segment)[0];
    cli_common::flip_byte(&segment, offset + 20);
    let run = walstore(&["checkpoint", s(&dir)]).fails(1);
    assert!(run.stderr.contains("corrupt"), "{run:?}");
    assert!(names_ending(&dir, ".snap").is_empty());
}
