//! `walstore index` and `walstore search`: the reference indexer end to end.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_common::{s, walstore};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A small tree with files the indexer must skip.
fn tree(root: &Path) {
    write(
        root,
        "src/lib.rs",
        "pub fn atomicWriteJson() {}\n// fsync the directory\n",
    );
    write(
        root,
        "src/store.rs",
        "struct Store;\nimpl Store { fn checkpoint() {} }\n",
    );
    write(root, "README.md", "walstore keeps fingerprints\n");
    write(root, ".gitignore", "ignored.txt\n");
    write(root, "ignored.txt", "secretword\n");
    write(root, ".hidden/file.txt", "hiddenword\n");
    std::fs::write(root.join("image.bin"), [0u8, 1, 2, 3, 0, 5]).expect("binary");
    write(root, "big.txt", &"bigword ".repeat(1000));
}

fn index(src: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["index", s(src), "--json", "--max-file-bytes", "4096"];
    args.extend_from_slice(extra);
    walstore(&args).ok().json()
}

fn hits(dir: &Path, query: &str) -> Vec<String> {
    let run = walstore(&["search", s(dir), query, "--json", "--limit", "100"]).ok();
    run.json()["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["doc"].as_str().expect("doc").to_owned())
        .collect()
}

#[test]
fn index_respects_ignore_rules_and_skips_binary_big_and_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("project");
    tree(&src);
    let summary = index(&src, &[]);
    assert_eq!(summary["new"], 3, "{summary}"); // lib.rs, store.rs, README.md (dotfiles are hidden)
    assert_eq!(summary["skipped"], 2, "binary and big: {summary}");
    let store = src.join(".walstore");
    assert_eq!(hits(&store, "atomicwritejson"), ["src/lib.rs"]);
    assert_eq!(
        hits(&store, "write"),
        ["src/lib.rs"],
        "identifier parts are indexed"
    );
    for absent in ["secretword", "hiddenword", "bigword"] {
        assert!(
            hits(&store, absent).is_empty(),
            "{absent} must not be indexed"
        );
    }
    let again = index(&src, &[]);
    assert_eq!(
        again["scanned"], summary["scanned"],
        "the store itself is never walked: {again}"
    );
    assert_eq!(again["new"], 0);
    assert_eq!(
        again["bytes_read"], 0,
        "unchanged size and mtime: nothing read"
    );
    let dump = cli_common::dump(&store);
    assert!(
        dump["metadata"]["index.last_run"]["finished_unix_ms"]
            .as_u64()
            .is_some(),
        "{dump}"
    );
    assert!(dump["metadata"].get("walstore.indexing").is_none());
    assert_eq!(dump["config"]["index.settings"]["max_file_bytes"], 4096);
}

#[test]
fn reindex_touches_only_what_changed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("project");
    tree(&src);
    index(&src, &[]);
    let store = src.join(".walstore");
    let before = cli_common::dump(&store);
    std::thread::sleep(Duration::from_millis(20));
    write(
        &src,
        "src/store.rs",
        "struct Store;\nfn renamedCheckpoint() {}\n",
    );
    std::fs::remove_file(src.join("README.md")).expect("remove");
    write(&src, "src/new.rs", "fn brandNew() {}\n");
    let summary = index(&src, &[]);
    assert_eq!(
        (
            summary["new"].as_u64(),
            summary["changed"].as_u64(),
            summary["removed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{summary}"
    );
    let after = cli_common::dump(&store);
    let (old_fp, new_fp) = (
        &before["fingerprints"]["code"],
        &after["fingerprints"]["code"],
    );
    assert_eq!(
        old_fp["src/lib.rs"], new_fp["src/lib.rs"],
        "untouched file unchanged"
    );

    assert_ne!(old_fp["src/store.rs"], new_fp["src/store.rs"]);
    assert!(new_fp.get("README.md").is_none());
    assert!(new_fp.get("src/new.rs").is_some());
    assert_eq!(hits(&store, "renamedcheckpoint"), ["src/store.rs"]);
    assert!(
        hits(&store, "fingerprints").is_empty(),
        "the deleted file's document is gone"
    );
}

#[test]
fn search_human_output_shows_the_best_line_or_that_the_file_changed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("project");
    tree(&src);
    index(&src, &[]);
    let store = src.join(".walstore");
    let run = walstore(&["search", s(&store), "fsync directory"]).ok();
    assert!(run.stdout.contains("\"src/lib.rs\""), "{}", run.stdout);
    assert!(
        run.stdout.contains("2: // fsync the directory"),
        "{}",
        run.stdout
    );
    std::thread::sleep(Duration::from_millis(20));
    write(&src, "src/lib.rs", "changed\n");
    let run = walstore(&["search", s(&store), "fsync"]).ok();
    assert!(
        run.stdout.contains("changed since it was indexed"),
        "{}",
        run.stdout
    );
    let json = walstore(&["search", s(&store), "fsync", "--json"])
        .ok()
        .json();
    assert!(json["lsn"].as_u64().is_some_and(|lsn| lsn > 0));
    assert!(
        json["hits"][0]["score"]
            .as_f64()
            .is_some_and(|score| score > 0.0)
    );
}

fn big_tree(root: &Path, files: usize) {
    for i in 0..files {
        write(
            root,
            &format!("d{}/f{i}.rs", i % 17),
            &format!(
                "fn item{i}() {{ shared_word(); unique{i} }}\n{}",
                "pad ".repeat(50)
            ),
        );
    }
}

/// Docs and fingerprints of a store, as sets of paths.
fn docs_and_paths(dir: &Path) -> (Vec<String>, Vec<String>) {
    let store = walstore::Store::open_read_only(dir).expect("open read-only");
    let read = store.read();
    let docs = read
        .docs()
        .expect("docs")
        .map(|d| d.expect("doc"))
        .collect();
    let paths = read
        .fingerprints("code")
        .expect("fps")
        .map(|e| e.expect("fp").0)
        .collect();
    (docs, paths)
}

#[test]
fn killed_mid_run_then_rerun_equals_a_fresh_full_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("tree");
    big_tree(&src, 3000);
    let store = tmp.path().join("store");
    let mut child = Command::new(env!("CARGO_BIN_EXE_walstore"))
        .args([
            "index",
            s(&src),
            "--store",
            s(&store),
            "--batch-files",
            "10",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill once a few batches are committed; meanwhile every view is whole.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut views = 0;
    loop {
        assert!(Instant::now() < deadline, "indexer made no progress");
        // A live reader: cheap refreshes, so the kill lands mid-run.
        if let Ok(reader) = walstore::Store::open_read_only(&store) {
            loop {
                assert!(Instant::now() < deadline, "indexer made no progress");
                let lsn = reader.refresh().expect("refresh");
                let read = reader.read();
                let docs: Vec<String> = read
                    .docs()
                    .expect("docs")
                    .map(|d| d.expect("doc"))
                    .collect();
                let paths: Vec<String> = read
                    .fingerprints("code")
                    .expect("fps")
                    .map(|e| e.expect("fp").0)
                    .collect();
                assert_eq!(docs, paths, "a reader never sees half a batch");
                views += 1;
                if lsn >= 3 {
                    break;
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(views > 0);
    let interrupted = cli_common::dump(&store);
    let (partial, _) = docs_and_paths(&store);
    assert!(
        partial.len() < 1500,
        "killed before the end: {}",
        partial.len()
    );
    assert!(
        interrupted["metadata"].get("walstore.indexing").is_some(),
        "the interrupted run is visible"
    );
    let stats = walstore(&["stats", s(&store)]).ok();
    assert!(
        stats.stdout.contains("INTERRUPTED"),
        "stats names the dead run: {}",
        stats.stdout
    );
    let summary = walstore(&["index", s(&src), "--store", s(&store), "--json"])
        .ok()
        .json();
    assert_eq!(
        summary["resumed_run"]["planned_files"].as_u64(),
        Some(3000),
        "the rerun resumed it: {summary}"
    );
    assert_eq!(
        summary["unchanged"].as_u64(),
        Some(partial.len() as u64),
        "resumed by fingerprints: {summary}"
    );
    let fresh = tmp.path().join("fresh");
    walstore(&["index", s(&src), "--store", s(&fresh), "--json"]).ok();
    let (a, b) = (cli_common::dump(&store), cli_common::dump(&fresh));
    assert_eq!(a["fingerprints"], b["fingerprints"]);
    assert_eq!(a["fts"], b["fts"]);
    assert_eq!(hits(&store, "shared_word").len(), 100, "limit 100");
}

/// Regression: a file skipped as too big is indexed once the bound no longer excludes
/// it, even though its size and mtime did not change.
#[test]
fn raising_the_size_bound_indexes_files_skipped_as_too_big() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("project");
    tree(&src);
    let first = walstore(&["index", s(&src), "--json", "--max-file-bytes", "10"])
        .ok()
        .json();
    assert_eq!(first["new"], 0, "{first}");
    let store = src.join(".walstore");
    assert!(hits(&store, "bigword").is_empty());
    let second = walstore(&["index", s(&src), "--json"]).ok().json();
    assert_eq!(
        second["new"], 4,
        "lib.rs, store.rs, README.md and big.txt: {second}"
    );
    assert_eq!(hits(&store, "bigword"), ["big.txt"]);
    let third = walstore(&["index", s(&src), "--json"]).ok().json();
    assert_eq!(
        third["bytes_read"], 0,
        "the binary file stays skipped without a read: {third}"
    );
}

/// Files in `store` ending with `suffix`.
fn count_ending(store: &Path, suffix: &str) -> usize {
    std::fs::read_dir(store)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(suffix))
        .count()
}

#[test]
fn an_index_store_keeps_one_snapshot_unless_asked_for_a_fallback() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("project");
    tree(&src);
    for (extra, snapshots) in [(&[][..], 1), (&["--keep-fallback"][..], 2)] {
        let store = tmp.path().join(format!("store{snapshots}"));
        let store_arg = ["--store", s(&store)];
        let args: Vec<&str> = store_arg.iter().chain(extra).copied().collect();
        index(&src, &args);
        write(&src, "src/new.rs", &format!("fn added{snapshots}() {{}}\n"));
        index(&src, &args);
        assert_eq!(
            count_ending(&store, ".snap"),
            snapshots,
            "{extra:?}: two runs that changed files, a checkpoint after each"
        );
        assert_eq!(
            cli_common::dump(&store)["config"]["index.settings"]["keep_fallback"],
            snapshots == 2
        );
        assert_eq!(hits(&store, &format!("added{snapshots}")), ["src/new.rs"]);
    }
}
