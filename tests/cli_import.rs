//! `walstore import`: every op, `committed <lsn>`, line handling, durability, checkpoints.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use cli_common::{dump, import, names_ending, s, walstore, walstore_stdin};
use serde_json::json;

#[test]
fn every_op_applies_and_prints_committed_lsns_from_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let lines = concat!(
        r#"{"ops":[{"op":"set_meta","key":"m1","value":1},{"op":"set_meta","key":"m2","value":"two"}]}"#,
        "\n",
        r#"{"ops":[{"op":"set_config","key":"c1","value":true},{"op":"set_config","key":"c2","value":null}]}"#,
        "\n",
        r#"{"ops":[{"op":"put_fingerprint","ns":"code","path":"a.rs","hash":"00ff","size":12,"mtime":-5},{"op":"put_fingerprint","ns":"code","path":"b.rs","hash":"","size":0,"mtime":0}]}"#,
        "\n",
        r#"{"ops":[{"op":"index_doc","doc":"d1","text":"hello world"},{"op":"index_doc","doc":"d2","text":"bye"}]}"#,
        "\n",
        r#"{"ops":[{"op":"del_meta","key":"m2"},{"op":"del_config","key":"c2"},{"op":"del_fingerprint","ns":"code","path":"b.rs"},{"op":"remove_doc","doc":"d2"}]}"#,
        "\n",
        // Deleting what is absent is a no-op; re-indexing replaces.
        r#"{"ops":[{"op":"del_meta","key":"nope"},{"op":"del_config","key":"nope"},{"op":"del_fingerprint","ns":"x","path":"y"},{"op":"remove_doc","doc":"nope"},{"op":"index_doc","doc":"d1","text":"replaced"}]}"#,
        "\n",
        r#"{"ops":[]}"#,
        "\n",
    );
    let run = import(&dir, lines).ok();
    let expected: Vec<String> = (1..=7).map(|lsn| format!("committed {lsn}")).collect();
    assert_eq!(run.lines(), expected);
    assert_eq!(
        dump(&dir),
        json!({
            "lsn": 7,
            "metadata": {"m1": 1},
            "config": {"c1": true},
            "fingerprints": {"code": {"a.rs": {"hash": "00ff", "size": 12, "mtime": -5}}},
            "fts": {"docs": ["d1"]}
        })
    );
}

#[test]
fn creates_missing_dir_and_parents_even_for_empty_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/store");
    let run = import(&dir, "").ok();
    assert!(run.stdout.is_empty());
    assert!(dir.is_dir());
    assert_eq!(dump(&dir)["lsn"], 0);
}

#[test]
fn reads_file_argument_and_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in.jsonl");
    std::fs::write(&file, cli_common::set_meta_line(1)).unwrap();
    let dir = tmp.path().join("store");
    let run = walstore(&["import", s(&dir), s(&file)]).ok();
    assert_eq!(run.lines(), ["committed 1"]);
    let run = walstore_stdin(
        &["import", s(&dir)],
        cli_common::set_meta_line(2).as_bytes(),
    )
    .ok();
    assert_eq!(run.lines(), ["committed 2"]);
    assert_eq!(dump(&dir)["metadata"], json!({"k1": 1, "k2": 2}));
}

#[test]
fn missing_input_file_is_bad_input_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let missing = tmp.path().join("missing.jsonl");
    let run = walstore(&["import", s(&dir), s(&missing)]).fails(2);
    assert!(run.stderr.contains("missing.jsonl"), "{run:?}");
    assert!(!dir.exists());
}

#[test]
fn empty_and_blank_lines_are_skipped_but_counted_and_crlf_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let input = format!(
        "\n \t \r\n{}\r\n\n{}   \r\n{{\"ops\":[{{\"op\":\"set_meta\",\"key\":\"k3\",\"value\":3}}],}}\r\n{}",
        cli_common::set_meta_line(1).trim_end(),
        cli_common::set_meta_line(2).trim_end(),
        cli_common::set_meta_line(4),
    );
    let run = import(&dir, &input).fails(2);
    assert_eq!(run.lines(), ["committed 1", "committed 2"]);
    assert!(run.stderr.starts_with("error: line 6: "), "{run:?}");
    assert_eq!(dump(&dir)["metadata"], json!({"k1": 1, "k2": 2}));
}

#[test]
fn last_line_without_newline_is_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let run = import(&dir, cli_common::set_meta_line(1).trim_end()).ok();
    assert_eq!(run.lines(), ["committed 1"]);
}

#[test]
fn malformed_line_stops_import_keeping_earlier_and_applying_nothing_of_it_or_later() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let input = format!(
        "{}{}{}{}",
        cli_common::set_meta_line(1),
        cli_common::set_meta_line(2),
        // A valid op before a bad one: the whole line is refused.
        "{\"ops\":[{\"op\":\"set_meta\",\"key\":\"k3\",\"value\":3},{\"op\":\"frob\"}]}\n",
        cli_common::set_meta_line(4),
    );
    let run = import(&dir, &input).fails(2);
    assert_eq!(run.lines(), ["committed 1", "committed 2"]);
    assert!(run.stderr.starts_with("error: line 3: "), "{run:?}");
    assert!(run.stderr.contains("frob"), "{run:?}");
    assert_eq!(dump(&dir)["lsn"], 2);
    assert_eq!(dump(&dir)["metadata"], json!({"k1": 1, "k2": 2}));
}

#[test]
fn durability_none_is_durable_once_import_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let lines: String = (1..=20).map(cli_common::set_meta_line).collect();
    let run = walstore_stdin(
        &["import", s(&dir), "--durability", "none"],
        lines.as_bytes(),
    )
    .ok();
    assert_eq!(run.lines().len(), 20);
    assert_eq!(dump(&dir)["lsn"], 20);
    walstore(&["verify", s(&dir)]).ok();
    let run = walstore_stdin(&["import", s(&dir), "--durability", "immediate"], b"").ok();
    assert!(run.stdout.is_empty());
}

#[test]
fn checkpoint_every_n_writes_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let lines: String = (1..=5).map(cli_common::set_meta_line).collect();
    walstore_stdin(
        &["import", s(&dir), "--checkpoint-every", "2"],
        lines.as_bytes(),
    )
    .ok();
    // Checkpoints at lsn 2 and 4; only the newest kept.
    assert_eq!(names_ending(&dir, ".snap"), ["00000000000000000004.snap"]);
    assert_eq!(dump(&dir)["lsn"], 5);
    walstore(&["verify", s(&dir)]).ok();

    // With --keep-fallback, the previous snapshot stays too.
    let lines: String = (6..=9).map(cli_common::set_meta_line).collect();
    walstore_stdin(
        &[
            "import",
            s(&dir),
            "--checkpoint-every",
            "2",
            "--keep-fallback",
        ],
        lines.as_bytes(),
    )
    .ok();
    assert_eq!(
        names_ending(&dir, ".snap"),
        ["00000000000000000007.snap", "00000000000000000009.snap"]
    );
    assert_eq!(dump(&dir)["lsn"], 9);
    walstore(&["verify", s(&dir)]).ok();
}

#[test]
fn checkpoint_every_zero_never_checkpoints_on_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let lines: String = (1..=5).map(cli_common::set_meta_line).collect();
    walstore_stdin(
        &["import", s(&dir), "--checkpoint-every", "0"],
        lines.as_bytes(),
    )
    .ok();
    assert!(names_ending(&dir, ".snap").is_empty());
}

#[test]
fn over_long_key_is_bad_input_with_its_line_number() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let key = "k".repeat(20_000);
    let input = format!(
        "{}{{\"ops\":[{{\"op\":\"set_meta\",\"key\":\"{key}\",\"value\":1}}]}}\n",
        cli_common::set_meta_line(1)
    );
    let run = import(&dir, &input).fails(2);
    assert!(run.stderr.starts_with("error: line 2: "), "{run:?}");
    assert_eq!(dump(&dir)["lsn"], 1);
}
