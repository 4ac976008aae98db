//! `walstore stats`: read-only sizes and counts.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use cli_common::{import, s, walstore};

#[test]
fn counts_and_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import(
        &dir,
        concat!(
            r#"{"ops":[{"op":"set_meta","key":"a","value":1},{"op":"set_meta","key":"b","value":2},{"op":"set_config","key":"c","value":3}]}"#,
            "\n",
            r#"{"ops":[{"op":"put_fingerprint","ns":"code","path":"x","hash":"01","size":1,"mtime":1},{"op":"put_fingerprint","ns":"code","path":"y","hash":"02","size":1,"mtime":1},{"op":"put_fingerprint","ns":"docs","path":"z","hash":"03","size":1,"mtime":1}]}"#,
            "\n",
            r#"{"ops":[{"op":"index_doc","doc":"d1","text":"one two three"},{"op":"index_doc","doc":"d2","text":"four"}]}"#,
            "\n",
        ),
    )
    .ok();
    walstore(&["checkpoint", s(&dir)]).ok();
    std::fs::write(dir.join("00000000000000000009.snap.tmp"), "x").unwrap();
    // A spare left by a writer (as a crash leaves it): counted apart from strays.
    std::fs::write(dir.join("00000000000000000000.snap.tmp"), "spare").unwrap();
    let stats = walstore(&["stats", s(&dir), "--json"]).ok().json();
    assert_eq!(stats["lsn"], 3);
    let counts = &stats["counts"];
    assert_eq!(counts["metadata"], 2);
    assert_eq!(counts["config"], 1);
    assert_eq!(counts["fingerprints"], 3);
    assert_eq!(
        counts["fingerprints_by_namespace"],
        serde_json::json!({"code": 2, "docs": 1})
    );
    assert_eq!(counts["fts_docs"], 2);
    assert_eq!(counts["fts_tokens"], 4);
    let files = &stats["files"];
    assert_eq!(
        files["wal"]["count"], 1,
        "the checkpoint started the next segment and deleted the one it covers"
    );
    assert!(files["wal"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(files["snap"]["count"], 1);
    assert_eq!(files["par"]["count"], 1, "the snapshot's parity sidecar");
    assert!(files["par"]["bytes"].as_u64().unwrap() > 0);
    let snap = dir.join("00000000000000000003.snap");
    assert_eq!(
        files["snap"]["bytes"],
        std::fs::metadata(snap).unwrap().len()
    );
    assert_eq!(files["temp"]["count"], 1);
    assert_eq!(files["spare"]["count"], 1);
    assert_eq!(files["spare"]["bytes"], 5);
    assert_eq!(files["lock_file"], true);
    let text = walstore(&["stats", s(&dir)]).ok().stdout;
    assert!(text.contains("lsn: 3"), "{text}");
    assert!(text.contains("parity sidecars: 1,"), "{text}");
    assert!(text.contains("stray temporary files: 1,"), "{text}");
    assert!(
        text.contains("writer's spares (next segment, superseded snapshot): 1,"),
        "{text}"
    );
    assert!(text.contains("fingerprints: 3 in 2 namespaces"), "{text}");
    assert!(text.contains("fts documents: 2"), "{text}");
}
