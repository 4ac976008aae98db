//! `walstore recover [--salvage]`: torn tails, stray temporaries, and mid-log corruption
//! refused (nothing changed) or salvaged (cut bytes quarantined, verify passes after).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use std::path::{Path, PathBuf};

use cli_common::{
    assert_one_error_line, contents, dump, flip_byte, import_n, last_segment, many_segments,
    records, s, walstore,
};

/// A store with `k1..k6` whose record of lsn 2 is damaged; returns the segment, the
/// damaged record's offset and the segment's bytes after the damage.
fn corrupt_store(dir: &Path) -> (PathBuf, u64, Vec<u8>) {
    import_n(dir, 6);
    let segment = last_segment(dir);
    let (offset, _, _) = records(&segment)[1];
    flip_byte(&segment, offset + 20);
    let bytes = std::fs::read(&segment).unwrap();
    // What salvage moves: the bytes from the damage up to the last non-zero one (the
    // rest is the segment's unused, zero preallocation).
    let mut cut = bytes[offset as usize..].to_vec();
    while cut.last() == Some(&0) {
        cut.pop();
    }
    (segment, offset, cut)
}

#[test]
fn clean_store_has_nothing_to_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    let run = walstore(&["recover", s(&dir)]).ok();
    assert!(run.stdout.contains("lsn 2"), "{run:?}");
    assert!(run.stdout.contains("nothing to repair"), "{run:?}");
    let report = walstore(&["recover", s(&dir), "--json"]).ok().json();
    assert_eq!(report["lsn"], 2);
    assert_eq!(report["torn_tail"], serde_json::Value::Null);
    assert_eq!(report["salvage"], serde_json::Value::Null);
}

#[test]
fn torn_tail_is_discarded_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 3);
    let segment = last_segment(&dir);
    let (start, end, _) = *records(&segment).last().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(end - 1).unwrap();
    let run = walstore(&["recover", s(&dir)]).ok();
    assert!(run.stdout.contains("torn tail discarded"), "{run:?}");
    assert!(
        run.stdout.contains(&format!("at offset {start}")),
        "{run:?}"
    );
    let report = walstore(&["verify", s(&dir), "--json"]).ok().json();
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(dump(&dir)["lsn"], 2);
    cli_common::import(&dir, &cli_common::set_meta_line(9)).ok();
    assert_eq!(dump(&dir)["lsn"], 3);
}

#[test]
fn stray_store_temporaries_are_removed_and_foreign_files_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    let snap_tmp = dir.join("00000000000000000002.snap.tmp");
    let wal_tmp = dir.join("00000000000000000003.wal.tmp");
    std::fs::write(&snap_tmp, "partial").unwrap();
    std::fs::write(&wal_tmp, "partial").unwrap();
    std::fs::write(dir.join("notes.tmp"), "mine").unwrap();
    std::fs::write(dir.join("backup.wal.tmp.old"), "mine too").unwrap();
    let run = walstore(&["recover", s(&dir)]).ok();
    assert!(
        run.stdout.contains("removed stray temporary file"),
        "{run:?}"
    );
    assert!(!snap_tmp.exists() && !wal_tmp.exists());
    assert_eq!(std::fs::read(dir.join("notes.tmp")).unwrap(), b"mine");
    assert!(dir.join("backup.wal.tmp.old").exists());
    walstore(&["verify", s(&dir)]).ok();
}

#[test]
fn without_salvage_corruption_fails_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (segment, offset, _) = corrupt_store(&dir);
    // A stray temporary that a successful recovery would remove must stay too.
    std::fs::write(dir.join("00000000000000000007.wal.tmp"), "partial").unwrap();
    let before = contents(&dir);
    let run = walstore(&["recover", s(&dir)]).fails(1);
    assert!(
        run.stderr.contains(&segment.display().to_string()),
        "{run:?}"
    );
    assert!(run.stderr.contains(&format!("offset {offset}")), "{run:?}");
    assert!(run.stderr.contains("--salvage"), "{run:?}");
    assert!(run.stdout.is_empty());
    assert_eq!(contents(&dir), before);
    assert!(!dir.join("quarantine").exists());
}

#[test]
fn salvage_cuts_to_last_intact_transaction_and_quarantines_the_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (segment, offset, cut) = corrupt_store(&dir);
    let run = walstore(&["recover", s(&dir), "--salvage"]).ok();
    let out = &run.stdout;
    assert!(out.contains("SALVAGED"), "{run:?}");
    assert!(out.contains(&format!("at offset {offset}")), "{run:?}");
    assert!(out.contains("lsn 2..=6"), "{run:?}");
    assert!(out.contains("intact records 3..=6"), "{run:?}");
    assert!(
        out.contains(&format!("{offset}..{}", offset + cut.len() as u64)),
        "{run:?}"
    );
    assert!(out.contains("moved to:"), "{run:?}");
    for key in ["k3", "k4", "k5", "k6"] {
        assert!(
            out.contains(&format!("metadata \"{key}\"")),
            "{key}: {run:?}"
        );
    }
    let quarantined = cli_common::names_ending(&dir.join("quarantine"), "");
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    let moved = std::fs::read(dir.join("quarantine").join(&quarantined[0])).unwrap();
    assert_eq!(moved, cut, "the cut bytes are moved, never deleted");
    assert!(out.contains(&quarantined[0]), "{run:?}");
    walstore(&["verify", s(&dir)]).ok();
    let state = dump(&dir);
    assert_eq!(state["lsn"], 1);
    assert_eq!(state["metadata"], serde_json::json!({"k1": 1}));
    assert!(segment.exists());
    // The store takes new transactions after the cut.
    let run = cli_common::import(&dir, &cli_common::set_meta_line(7)).ok();
    assert_eq!(run.lines(), ["committed 2"]);
}

#[test]
fn salvage_report_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (segment, offset, cut) = corrupt_store(&dir);
    let report = walstore(&["recover", s(&dir), "--salvage", "--json"])
        .ok()
        .json();
    let salvage = &report["salvage"];
    assert_eq!(salvage["file"], segment.display().to_string());
    assert_eq!(salvage["offset"], offset);
    assert_eq!(salvage["bytes_cut"], cut.len());
    assert_eq!(salvage["lsn_range"], serde_json::json!([3, 6]));
    assert_eq!(salvage["quarantined"].as_array().unwrap().len(), 1);
    assert!(
        salvage["touched"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["metadata", "k4"]))
    );
    assert_eq!(report["lsn"], 1);
}

#[test]
fn salvage_on_a_clean_store_cuts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    let run = walstore(&["recover", s(&dir), "--salvage"]).ok();
    assert!(run.stdout.contains("nothing cut"), "{run:?}");
    assert!(!dir.join("quarantine").exists());
    assert_eq!(dump(&dir)["lsn"], 2);
}

#[test]
fn missing_store_is_an_error_and_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("missing");
    walstore(&["recover", s(&dir)]).fails(1);
    walstore(&["recover", s(&dir), "--salvage"]).fails(1);
    assert!(!dir.exists());
}

#[test]
fn damaged_newest_snapshot_falls_back_to_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    cli_common::two_checkpoints(&dir);
    cli_common::remove_sidecars(&dir);
    let state = dump(&dir);
    let newest = dir.join("00000000000000000062.snap");
    cli_common::truncate_half(&newest);
    let run = walstore(&["recover", s(&dir)]).ok();
    assert!(run.stdout.contains("snapshot fallback"), "{run:?}");
    assert!(run.stdout.contains("moved damaged file to"), "{run:?}");
    assert!(!newest.exists());
    assert!(dir.join("quarantine/00000000000000000062.snap").exists());
    assert_eq!(dump(&dir), state);
    walstore(&["verify", s(&dir)]).ok();
}

#[test]
fn damaged_snapshots_with_nothing_to_fall_back_on_are_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    cli_common::two_checkpoints(&dir);
    cli_common::remove_sidecars(&dir);
    cli_common::truncate_half(&dir.join("00000000000000000060.snap"));
    cli_common::truncate_half(&dir.join("00000000000000000062.snap"));
    let before = contents(&dir);
    for args in [
        vec!["recover", s(&dir)],
        vec!["checkpoint", s(&dir)],
        vec!["import", s(&dir)],
        vec!["dump", s(&dir)],
        vec!["verify", s(&dir)],
    ] {
        let run = walstore(&args).fails(1);
        assert!(run.stderr.contains("corrupt"), "{args:?}: {run:?}");
        assert_eq!(contents(&dir), before, "{args:?} changed the store");
    }
}

#[test]
fn recover_checks_every_snapshot_block_and_falls_back_from_a_damaged_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    cli_common::two_checkpoints(&dir);
    cli_common::remove_sidecars(&dir);
    let state = dump(&dir);
    // A data block, not the header, footer or top index that every open checks.
    flip_byte(&dir.join("00000000000000000062.snap"), 64 + 5);
    let run = walstore(&["recover", s(&dir)]).ok();
    assert!(run.stdout.contains("snapshot fallback"), "{run:?}");
    assert!(
        dir.join("quarantine/00000000000000000062.snap").exists(),
        "{run:?}"
    );
    assert_eq!(dump(&dir), state);
    walstore(&["verify", s(&dir)]).ok();
}

#[test]
fn recover_reports_a_damaged_block_with_no_fallback_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    many_segments(&dir, 60);
    walstore(&["checkpoint", s(&dir)]).ok();
    cli_common::remove_sidecars(&dir);
    let snapshot = dir.join("00000000000000000060.snap");
    flip_byte(&snapshot, 64 + 5);
    let before = contents(&dir);
    let run = walstore(&["recover", s(&dir)]).fails(1);
    assert_one_error_line(&run);
    assert!(run.stderr.contains("corrupt"), "{run:?}");
    assert!(
        run.stderr.contains("00000000000000000060.snap"),
        "names the damaged snapshot: {run:?}"
    );
    assert_eq!(contents(&dir), before, "a failed recover changed the store");
}

#[test]
fn recover_rebuilds_a_damaged_block_from_the_parity_sidecar() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    many_segments(&dir, 60);
    walstore(&["checkpoint", s(&dir)]).ok();
    let state = dump(&dir);
    let snapshot = dir.join("00000000000000000060.snap");
    let original = std::fs::read(&snapshot).unwrap();
    flip_byte(&snapshot, 64 + 5);
    let verify = walstore(&["verify", s(&dir)]);
    assert!(
        verify
            .stdout
            .contains("00000000000000000060.par rebuilds it"),
        "{verify:?}"
    );
    let run = walstore(&["recover", s(&dir)]).ok();
    assert!(
        run.stdout
            .contains("snapshot rebuilt from its parity sidecar"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("copied the damaged snapshot's bytes to"),
        "{run:?}"
    );
    assert_eq!(std::fs::read(&snapshot).unwrap(), original);
    assert!(dir.join("quarantine/00000000000000000060.snap").exists());
    assert_eq!(dump(&dir), state);
    let verify = walstore(&["verify", s(&dir)]).ok();
    assert!(verify.stdout.contains("result: consistent"), "{verify:?}");
}
