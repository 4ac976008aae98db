//! `walstore dump`: the JSON shape, exact value round trips, doc order, read-only rules.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use cli_common::{contents, dump, import, import_n, s, walstore};
use serde_json::{Value, json};

#[test]
fn values_come_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    // Written as text so the numbers' exact digits reach the binary unchanged.
    let value = r#"{"min":-9223372036854775808,"i64max":9223372036854775807,"u64max":18446744073709551615,
        "floats":[0.1,1.0,-0.0,1e300,5e-324,1.7976931348623157e308,0.30000000000000004,-2.5,123456789012345680000.0],
        "nested":{"a":[{"b":[[],{}]},null,true,false],"":""},
        "unicode":"é 😀 \u0000 \t \" \\ \u2028 ω","🔑":"ключ"}"#
        .replace('\n', "");
    let line = format!(
        r#"{{"ops":[{{"op":"set_meta","key":"v","value":{value}}},{{"op":"set_config","key":"v","value":{value}}},{{"op":"set_meta","key":"s","value":"x"}},{{"op":"set_meta","key":"n","value":null}}]}}"#
    );
    import(&dir, &line).ok();
    let expected: Value = serde_json::from_str(&value).unwrap();
    let state = dump(&dir);
    assert_eq!(state["metadata"]["v"], expected);
    assert_eq!(state["config"]["v"], expected);
    assert_eq!(state["metadata"]["s"], "x");
    assert_eq!(state["metadata"]["n"], Value::Null);
    // Number equality above already tells integers from floats; check the exact f64s.
    let floats = state["metadata"]["v"]["floats"].as_array().unwrap();
    let expected_floats = expected["floats"].as_array().unwrap();
    for (got, want) in floats.iter().zip(expected_floats) {
        assert!(got.is_f64(), "{got} stays a float");
        assert_eq!(
            got.as_f64().unwrap().to_bits(),
            want.as_f64().unwrap().to_bits()
        );
    }
    let raw = walstore(&["dump", s(&dir), "--json"]).ok().stdout;
    for digits in ["-9223372036854775808", "18446744073709551615", "1.0"] {
        assert!(raw.contains(digits), "{digits} in {raw}");
    }
}

#[test]
fn shape_has_every_section_and_omits_nothing_required() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import(&dir, "").ok();
    assert_eq!(
        dump(&dir),
        json!({"lsn": 0, "metadata": {}, "config": {}, "fingerprints": {}, "fts": {"docs": []}})
    );
    import(
        &dir,
        r#"{"ops":[{"op":"put_fingerprint","ns":"b","path":"x","hash":"01","size":1,"mtime":2},{"op":"put_fingerprint","ns":"a","path":"y","hash":"02","size":3,"mtime":4},{"op":"put_fingerprint","ns":"b","path":"w","hash":"03","size":5,"mtime":6}]}"#,
    )
    .ok();
    assert_eq!(
        dump(&dir)["fingerprints"],
        json!({
            "a": {"y": {"hash": "02", "size": 3, "mtime": 4}},
            "b": {"w": {"hash": "03", "size": 5, "mtime": 6}, "x": {"hash": "01", "size": 1, "mtime": 2}}
        })
    );
}

#[test]
fn docs_are_sorted_by_code_point() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let docs = [
        "z", "B", "a", "é", "😀", "\u{ffff}", "a b", "", "Z", "ab", "\u{7f}",
    ];
    let ops: Vec<String> = docs
        .iter()
        .map(|d| json!({"op": "index_doc", "doc": d, "text": "t"}).to_string())
        .collect();
    import(&dir, &format!("{{\"ops\":[{}]}}", ops.join(","))).ok();
    let mut expected: Vec<&str> = docs.to_vec();
    expected.sort_by(|a, b| a.chars().cmp(b.chars()));
    assert_eq!(dump(&dir)["fts"]["docs"], json!(expected));
}

#[test]
fn text_output_is_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    let run = walstore(&["dump", s(&dir)]).ok();
    assert!(run.stdout.starts_with("lsn 2\n"), "{run:?}");
    assert!(run.stdout.contains("\"k1\" = 1"), "{run:?}");
}

#[test]
fn missing_dir_is_not_a_store_and_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("missing");
    for args in [
        vec!["dump", s(&dir), "--json"],
        vec!["verify", s(&dir)],
        vec!["stats", s(&dir)],
    ] {
        let run = walstore(&args).fails(1);
        assert!(run.stderr.contains("missing"), "{run:?}");
        assert!(run.stderr.contains("not a walstore store"), "{run:?}");
        assert!(!dir.exists(), "{args:?} created DIR");
    }
}

#[test]
fn dir_without_store_files_is_not_a_store_and_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("other");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    let before = contents(&dir);
    for args in [
        vec!["dump", s(&dir), "--json"],
        vec!["verify", s(&dir), "--json"],
        vec!["stats", s(&dir), "--json"],
        vec!["recover", s(&dir)],
        vec!["checkpoint", s(&dir)],
    ] {
        walstore(&args).fails(1);
        assert_eq!(contents(&dir), before, "{args:?} changed DIR");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "{args:?}");
    }
}

#[test]
fn read_only_commands_never_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 3);
    // A stray temporary and a torn tail, which a writer would repair.
    std::fs::write(dir.join("00000000000000000009.snap.tmp"), "partial").unwrap();
    let segment = cli_common::last_segment(&dir);
    let (_, end, _) = *cli_common::records(&segment).last().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(end - 3).unwrap();
    let before = contents(&dir);
    assert_eq!(
        dump(&dir)["lsn"],
        2,
        "the torn record reads as not committed"
    );
    walstore(&["dump", s(&dir)]).ok();
    walstore(&["verify", s(&dir)]).ok();
    walstore(&["stats", s(&dir), "--json"]).ok();
    let dest = tmp.path().join("copy");
    walstore(&["backup", s(&dir), s(&dest)]).ok();
    assert_eq!(contents(&dir), before);
}

#[test]
fn corruption_is_an_error_naming_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 6);
    let segment = cli_common::last_segment(&dir);
    let (offset, _, _) = cli_common::records(&segment)[1];
    cli_common::flip_byte(&segment, offset + 20);
    let run = walstore(&["dump", s(&dir), "--json"]).fails(1);
    assert!(run.stdout.is_empty());
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(run.stderr.contains(name), "{run:?}");
    assert!(run.stderr.contains(&format!("offset {offset}")), "{run:?}");
}
