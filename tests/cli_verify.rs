//! `walstore verify`: consistent stores, torn tails and stray temporaries (exit 0) versus
//! corruption (exit 1, naming file and offset).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use cli_common::{flip_byte, import_n, last_segment, records, s, walstore};

#[test]
fn consistent_store_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 3);
    let run = walstore(&["verify", s(&dir)]).ok();
    assert!(run.stdout.contains("result: consistent"), "{run:?}");
    let report = walstore(&["verify", s(&dir), "--json"]).ok().json();
    assert_eq!(report["consistent"], true);
    assert_eq!(report["lsn"], 3);
    assert_eq!(report["records_checked"], 3);
    assert_eq!(report["problems"], serde_json::json!([]));
}

#[test]
fn torn_tail_is_reported_but_not_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 4);
    let segment = last_segment(&dir);
    let (start, end, lsn) = *records(&segment).last().unwrap();
    assert_eq!(lsn, 4);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len((start + end) / 2).unwrap();
    let run = walstore(&["verify", s(&dir)]).ok();
    assert!(run.stdout.contains("torn tail"), "{run:?}");
    assert!(
        run.stdout.contains(&segment.display().to_string()),
        "{run:?}"
    );
    let report = walstore(&["verify", s(&dir), "--json"]).ok().json();
    assert_eq!(report["consistent"], true);
    assert_eq!(report["lsn"], 3);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["kind"], "torn_tail");
    assert_eq!(problems[0]["file"], segment.display().to_string());
    assert_eq!(problems[0]["offset"], start);
    assert!(!problems[0]["why"].as_str().unwrap().is_empty());
}

#[test]
fn mid_log_corruption_fails_naming_file_offset_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 6);
    let segment = last_segment(&dir);
    let (offset, _, lsn) = records(&segment)[1];
    assert_eq!(lsn, 2);
    flip_byte(&segment, offset + 20);
    let run = walstore(&["verify", s(&dir)]).fails(1);
    let file = segment.display().to_string();
    assert!(run.stderr.contains(&file), "{run:?}");
    assert!(run.stderr.contains(&format!("offset {offset}")), "{run:?}");
    assert!(run.stdout.contains("CORRUPT"), "{run:?}");
    assert!(run.stdout.contains("why:"), "{run:?}");
    let run = walstore(&["verify", s(&dir), "--json"]).fails(1);
    let report = run.json();
    assert_eq!(report["consistent"], false);
    let corrupt: Vec<_> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "corrupt")
        .collect();
    assert!(!corrupt.is_empty(), "{report}");
    assert_eq!(corrupt[0]["file"], file);
    assert_eq!(corrupt[0]["offset"], offset);
    assert!(!corrupt[0]["detail"].as_str().unwrap().is_empty());
    assert!(!corrupt[0]["why"].as_str().unwrap().is_empty());
}

#[test]
fn stray_temporaries_are_reported_but_not_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    std::fs::write(dir.join("00000000000000000002.snap.tmp"), "half a snapshot").unwrap();
    std::fs::write(dir.join("notes.tmp"), "not the store's").unwrap();
    let report = walstore(&["verify", s(&dir), "--json"]).ok().json();
    assert_eq!(report["consistent"], true);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["kind"], "stray_temp");
    assert!(
        problems[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("00000000000000000002.snap.tmp")
    );
}

#[test]
fn whole_wal_of_random_bytes_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    let noise: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("00000000000000000001.wal"), noise).unwrap();
    let run = walstore(&["verify", s(&dir)]).fails(1);
    assert!(run.stderr.contains("00000000000000000001.wal"), "{run:?}");
}

#[test]
fn damaged_snapshot_is_corruption_even_when_the_wal_can_replace_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 3);
    walstore(&["checkpoint", s(&dir)]).ok();
    let snap = dir.join(cli_common::names_ending(&dir, ".snap").pop().unwrap());
    let len = std::fs::metadata(&snap).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snap)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let run = walstore(&["verify", s(&dir)]).fails(1);
    assert!(run.stderr.contains(".snap"), "{run:?}");
}

#[test]
fn newest_segment_cut_inside_its_header_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 3);
    let first = last_segment(&dir);
    let cut = dir.join("00000000000000000004.wal");
    let header = std::fs::read(&first).unwrap()[..10].to_vec();
    std::fs::write(&cut, header).unwrap();
    let report = walstore(&["verify", s(&dir), "--json"]).ok().json();
    assert_eq!(report["lsn"], 3);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["kind"], "torn_tail");
    assert_eq!(problems[0]["file"], cut.display().to_string());
    let run = walstore(&["recover", s(&dir)]).ok();
    assert!(run.stdout.contains("torn tail discarded"), "{run:?}");
    let report = walstore(&["verify", s(&dir), "--json"]).ok().json();
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(cli_common::dump(&dir)["lsn"], 3);
}
