//! The writer lock: writers fail at once while another process holds the store, readers
//! go on, and a writer killed with SIGKILL leaves no lock behind.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_common::{dump, import, import_n, s, set_meta_line, walstore};

#[test]
fn writers_fail_at_once_with_locked_while_another_holds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    let holder = walstore::Store::open(&dir).unwrap();
    let pid = std::process::id().to_string();
    let started = Instant::now();
    for args in [
        vec!["import", s(&dir)],
        vec!["recover", s(&dir)],
        vec!["recover", s(&dir), "--salvage"],
        vec!["checkpoint", s(&dir)],
    ] {
        let run = walstore(&args).fails(1);
        assert!(run.stderr.contains("locked"), "{args:?}: {run:?}");
        assert!(run.stderr.contains(&pid), "names the holder: {run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "fails at once");
    drop(holder);
    assert_eq!(dump(&dir)["lsn"], 2);
}

#[test]
fn readers_work_while_a_writer_holds_the_lock_and_stats_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    let holder = walstore::Store::open(&dir).unwrap();
    let mut txn = holder.begin_write();
    txn.set_meta("live", walstore::Value::from(true));
    txn.commit().unwrap();
    assert_eq!(dump(&dir)["lsn"], 3);
    walstore(&["verify", s(&dir)]).ok();
    let stats = walstore(&["stats", s(&dir), "--json"]).ok().json();
    let lock = &stats["lock_holder"];
    assert_eq!(lock["pid"], std::process::id());
    assert!(
        lock["host"].is_string() && lock["command"].is_string(),
        "{stats}"
    );
    assert!(lock["since_unix_ms"].as_u64().unwrap() > 0);
    assert!(lock["since_utc"].is_string());
    let text = walstore(&["stats", s(&dir)]).ok().stdout;
    assert!(
        text.contains(&format!("held by pid {}", std::process::id())),
        "{text}"
    );
    drop(holder);
    let stats = walstore(&["stats", s(&dir), "--json"]).ok().json();
    assert_eq!(stats["lock_holder"], serde_json::Value::Null);
    assert!(
        walstore(&["stats", s(&dir)])
            .ok()
            .stdout
            .contains("writer lock: not held")
    );
}

#[test]
fn writer_killed_with_sigkill_leaves_no_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut child = Command::new(env!("CARGO_BIN_EXE_walstore"))
        .args(["import", s(&dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(set_meta_line(1).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "committed 1\n");
    // The importer now waits for more input, holding the lock.
    let run = import(&dir, &set_meta_line(2));
    assert!(run.stderr.contains("locked"), "{run:?}");
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    drop(stdin);
    let run = import(&dir, &set_meta_line(2)).ok();
    assert_eq!(run.lines(), ["committed 2"]);
    assert_eq!(
        dump(&dir)["metadata"],
        serde_json::json!({"k1": 1, "k2": 2})
    );
}
