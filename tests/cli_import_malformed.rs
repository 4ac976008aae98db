//! `walstore import`: every kind of malformed line is refused with exit 2 and its line
//! number; the line before it stays committed and nothing of it (or after it) applies.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use cli_common::{dump, import, set_meta_line, walstore_stdin};
use serde_json::json;

/// A valid op placed before the bad one, so "nothing of the line" is checked too.
const GOOD_OP: &str = r#"{"op":"set_meta","key":"partial","value":1}"#;

fn fingerprint(hash: &str, size: &str, mtime: &str) -> String {
    format!(
        r#"{{"ops":[{GOOD_OP},{{"op":"put_fingerprint","ns":"n","path":"p","hash":{hash},"size":{size},"mtime":{mtime}}}]}}"#
    )
}

fn with_op(op: &str) -> String {
    format!(r#"{{"ops":[{GOOD_OP},{op}]}}"#)
}

/// `(what, line, a word the message must contain)`.
fn cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("bad JSON", format!(r#"{{"ops":[{GOOD_OP}]"#), "JSON"),
        (
            "trailing garbage",
            format!(r#"{{"ops":[{GOOD_OP}]}} x"#),
            "JSON",
        ),
        ("not an object", format!("[{GOOD_OP}]"), "object"),
        ("ops missing", "{}".into(), "ops"),
        ("ops not an array", r#"{"ops":{}}"#.into(), "array"),
        (
            "unknown top-level field",
            format!(r#"{{"ops":[{GOOD_OP}],"x":1}}"#),
            "unknown field",
        ),
        ("op not an object", with_op("[]"), "object"),
        (
            "op name missing",
            with_op(r#"{"key":"k"}"#),
            "missing field",
        ),
        (
            "op name not a string",
            with_op(r#"{"op":1,"key":"k"}"#),
            "string",
        ),
        ("unknown op", with_op(r#"{"op":"frob"}"#), "unknown op"),
        (
            "missing field",
            with_op(r#"{"op":"set_meta","key":"k"}"#),
            "missing field",
        ),
        (
            "missing fingerprint field",
            with_op(r#"{"op":"put_fingerprint","ns":"n","path":"p","hash":"ab","size":1}"#),
            "mtime",
        ),
        (
            "unknown field",
            with_op(r#"{"op":"del_meta","key":"k","extra":1}"#),
            "unknown field",
        ),
        (
            "duplicate field",
            with_op(r#"{"op":"del_meta","key":"k","key":"j"}"#),
            "duplicate",
        ),
        (
            "key of wrong type",
            with_op(r#"{"op":"set_meta","key":1,"value":1}"#),
            "string",
        ),
        (
            "doc of wrong type",
            with_op(r#"{"op":"remove_doc","doc":null}"#),
            "string",
        ),
        (
            "text of wrong type",
            with_op(r#"{"op":"index_doc","doc":"d","text":["x"]}"#),
            "string",
        ),
        (
            "ns of wrong type",
            with_op(r#"{"op":"del_fingerprint","ns":{},"path":"p"}"#),
            "string",
        ),
        ("hash of wrong type", fingerprint("12", "1", "1"), "string"),
        (
            "upper-case hex",
            fingerprint(r#""AB""#, "1", "1"),
            "upper-case",
        ),
        (
            "mixed-case hex",
            fingerprint(r#""aB""#, "1", "1"),
            "upper-case",
        ),
        ("odd-length hex", fingerprint(r#""abc""#, "1", "1"), "odd"),
        ("non-hex digit", fingerprint(r#""zz""#, "1", "1"), "hex"),
        (
            "66-digit hex",
            fingerprint(&format!("\"{}\"", "a".repeat(66)), "1", "1"),
            "64",
        ),
        (
            "fractional size",
            fingerprint(r#""ab""#, "1.5", "1"),
            "size",
        ),
        (
            "integral float size",
            fingerprint(r#""ab""#, "1.0", "1"),
            "size",
        ),
        ("exponent size", fingerprint(r#""ab""#, "1e3", "1"), "size"),
        ("negative size", fingerprint(r#""ab""#, "-1", "1"), "size"),
        (
            "size over u64",
            fingerprint(r#""ab""#, "18446744073709551616", "1"),
            "size",
        ),
        (
            "size as string",
            fingerprint(r#""ab""#, r#""5""#, "1"),
            "size",
        ),
        (
            "fractional mtime",
            fingerprint(r#""ab""#, "1", "0.5"),
            "mtime",
        ),
        (
            "exponent mtime",
            fingerprint(r#""ab""#, "1", "1e3"),
            "mtime",
        ),
        (
            "mtime over i64",
            fingerprint(r#""ab""#, "1", "9223372036854775808"),
            "mtime",
        ),
        (
            "mtime under i64",
            fingerprint(r#""ab""#, "1", "-9223372036854775809"),
            "mtime",
        ),
        (
            "lone surrogate in a key",
            with_op(r#"{"op":"del_meta","key":"\ud800"}"#),
            "JSON",
        ),
        (
            "lone surrogate in a value",
            with_op(r#"{"op":"set_meta","key":"k","value":"a\ud800b"}"#),
            "JSON",
        ),
        (
            "lone low surrogate",
            with_op(r#"{"op":"del_meta","key":"\udc00"}"#),
            "JSON",
        ),
        (
            "number out of f64 range",
            with_op(r#"{"op":"set_meta","key":"k","value":1e400}"#),
            "JSON",
        ),
    ]
}

#[test]
fn each_malformed_kind_exits_2_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (what, line, word)) in cases().into_iter().enumerate() {
        let dir = tmp.path().join(format!("store{i}"));
        let input = format!("{}{line}\n{}", set_meta_line(1), set_meta_line(3));
        let run = import(&dir, &input).fails(2);
        assert_eq!(run.lines(), ["committed 1"], "{what}: {run:?}");
        assert!(run.stderr.starts_with("error: line 2: "), "{what}: {run:?}");
        assert!(
            run.stderr.contains(word),
            "{what}: expected {word:?} in {run:?}"
        );
        let state = dump(&dir);
        assert_eq!(state["lsn"], 1, "{what}");
        assert_eq!(state["metadata"], json!({"k1": 1}), "{what}");
    }
}

#[test]
fn invalid_utf8_is_malformed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut input = set_meta_line(1).into_bytes();
    input.extend_from_slice(b"{\"ops\":[{\"op\":\"del_meta\",\"key\":\"\xff\"}]}\n");
    let run = walstore_stdin(&["import", cli_common::s(&dir)], &input).fails(2);
    assert!(run.stderr.starts_with("error: line 2: "), "{run:?}");
    assert!(run.stderr.contains("UTF-8"), "{run:?}");
    assert_eq!(dump(&dir)["lsn"], 1);
}

#[test]
fn valid_surrogate_pair_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let run = import(
        &dir,
        r#"{"ops":[{"op":"set_meta","key":"\ud83d\ude00","value":"\u00e9"}]}"#,
    )
    .ok();
    assert_eq!(run.lines(), ["committed 1"]);
    assert_eq!(dump(&dir)["metadata"], json!({"😀": "é"}));
}

#[test]
fn hex_of_64_digits_and_extreme_sizes_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let hash = "0123456789abcdef".repeat(4);
    let line = format!(
        r#"{{"ops":[{{"op":"put_fingerprint","ns":"n","path":"max","hash":"{hash}","size":18446744073709551615,"mtime":-9223372036854775808}},{{"op":"put_fingerprint","ns":"n","path":"min","hash":"","size":0,"mtime":9223372036854775807}}]}}"#
    );
    import(&dir, &line).ok();
    assert_eq!(
        dump(&dir)["fingerprints"],
        json!({"n": {
            "max": {"hash": hash, "size": u64::MAX, "mtime": i64::MIN},
            "min": {"hash": "", "size": 0, "mtime": i64::MAX}
        }})
    );
}
