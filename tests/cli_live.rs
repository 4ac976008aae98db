//! Concurrent indexing and search across processes: a live read-only handle beside a
//! writer process, `watch`, `search --wait-for-index`, and an interrupted run.
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

use cli_common::{s, walstore};
use walstore::{Store, Value};

/// Transaction `i` of the writer child: what the model expects after lsn `i`.
fn txn_line(i: u64) -> String {
    format!(
        r#"{{"ops":[{{"op":"set_meta","key":"n","value":{i}}},{{"op":"put_fingerprint","ns":"code","path":"p{}","hash":"00","size":{i},"mtime":0}},{{"op":"index_doc","doc":"p{}","text":"word{i} common"}}]}}"#,
        i % 50,
        i % 50
    )
}

/// The reader's view agrees with the model at the lsn it reports.
fn check_view(store: &Store) {
    let read = store.read();
    let lsn = read.lsn();
    if lsn == 0 {
        return;
    }
    assert_eq!(
        read.meta("n").unwrap(),
        Some(Value::Int(lsn as i64)),
        "meta at lsn {lsn}"
    );
    let fp = read
        .fingerprint("code", &format!("p{}", lsn % 50))
        .unwrap()
        .expect("fingerprint");
    assert_eq!(fp.size, lsn, "fingerprint at lsn {lsn}");
    assert_eq!(
        read.postings("common").unwrap().count() as u64,
        lsn.min(50),
        "postings at lsn {lsn}"
    );
    let hit = read.search(&format!("word{lsn}"), 1).unwrap();
    assert_eq!(
        hit.hits.len(),
        1,
        "the last document is searchable at lsn {lsn}"
    );
}

#[test]
fn a_live_reader_follows_a_writer_process_and_survives_its_death() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut writer = Command::new(env!("CARGO_BIN_EXE_walstore"))
        .args(["import", s(&dir), "--checkpoint-every", "40"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let mut input = writer.stdin.take().unwrap();
    let mut acks = BufReader::new(writer.stdout.take().unwrap()).lines();
    input
        .write_all(format!("{}\n", txn_line(1)).as_bytes())
        .unwrap();
    assert_eq!(acks.next().unwrap().unwrap(), "committed 1");
    let reader = Store::open_read_only(&dir).expect("reader");
    let mut last = reader.lsn();
    let (mut lags, mut refresh_cost, mut applied) = (Vec::new(), Duration::ZERO, 0u64);
    for i in 2..=300u64 {
        input
            .write_all(format!("{}\n", txn_line(i)).as_bytes())
            .unwrap();
        input.flush().unwrap();
        assert_eq!(acks.next().unwrap().unwrap(), format!("committed {i}"));
        let acked = Instant::now();
        loop {
            let before = reader.lsn();
            let started = Instant::now();
            let lsn = reader.refresh().expect("refresh");
            refresh_cost += started.elapsed();
            applied += lsn - before;
            assert!(lsn >= last, "lsn went backwards: {last} -> {lsn}");
            last = lsn;
            check_view(&reader);
            if lsn >= i {
                lags.push(acked.elapsed());
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(10),
                "commit {i} never became visible"
            );
        }
    }
    writer.kill().expect("SIGKILL the writer");
    writer.wait().unwrap();
    assert_eq!(reader.refresh().expect("the reader keeps working"), 300);
    check_view(&reader);
    lags.sort();
    println!(
        "live-reader: visibility lag p50 {:?} p99 {:?}; refresh cost {:?} per transaction over {applied} transactions (checkpoints every 40)",
        lags[lags.len() / 2],
        lags[lags.len() * 99 / 100],
        refresh_cost / u32::try_from(applied.max(1)).unwrap()
    );
}

#[test]
fn watch_prints_one_line_per_commit_from_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    walstore(&["import", s(&dir)]).ok();
    let watcher = Command::new(env!("CARGO_BIN_EXE_walstore"))
        .args(["watch", s(&dir), "--count", "5", "--interval-ms", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    std::thread::sleep(Duration::from_millis(100));
    let lines: String = (1..=5).map(|i| format!("{}\n", txn_line(i))).collect();
    cli_common::import(&dir, &lines).ok();
    let output = watcher
        .wait_with_output()
        .expect("watch ends after 5 commits");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lsns: Vec<&str> = stdout
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(lsns, ["1", "2", "3", "4", "5"], "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with("lsn ") && l.contains("3 ops: set_meta \"n\"")),
        "{stdout}"
    );
}

#[test]
fn search_reports_and_waits_for_an_indexing_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    {
        let store = Store::open(&dir).unwrap();
        let mut txn = store.begin_write();
        txn.index_doc("a", "hello world")
            .set_run(&walstore::RunInfo::start(Some(10)))
            .unwrap();
        txn.commit().unwrap();
    }
    // The run's writer is gone: the next writer open reports it as interrupted.
    let store = Store::open(&dir).unwrap();
    let interrupted = store
        .recovery_report()
        .interrupted_run
        .clone()
        .expect("interrupted run reported");
    assert_eq!(interrupted.planned_files, Some(10));
    drop(store);
    let stats = walstore(&["stats", s(&dir)]).ok();
    assert!(stats.stdout.contains("INTERRUPTED"), "{}", stats.stdout);
    let started = Instant::now();
    let json = walstore(&[
        "search",
        s(&dir),
        "hello",
        "--json",
        "--wait-for-index",
        "0.3",
    ])
    .ok()
    .json();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited for the run"
    );
    assert_eq!(json["indexing"]["planned_files"], 10, "{json}");
    assert_eq!(json["hits"][0]["doc"], "a");
    // A writer finishes the run while a searcher waits: the wait ends early.
    let store = Store::open(&dir).unwrap();
    let waiter = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let json = walstore(&[
                "search",
                s(&dir),
                "hello",
                "--json",
                "--wait-for-index",
                "30",
            ])
            .ok()
            .json();
            (started.elapsed(), json)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut txn = store.begin_write();
    txn.finish_run();
    txn.commit().unwrap();
    let (waited, json) = waiter.join().unwrap();
    assert!(
        waited < Duration::from_secs(10),
        "woke when the run finished: {waited:?}"
    );
    assert!(json["indexing"].is_null(), "{json}");
    let human = walstore(&["search", s(&dir), "hello"]).ok();
    assert!(!human.stdout.contains("in progress"), "{}", human.stdout);
}

/// Searches from a refreshing reader while another process indexes: every result comes
/// from one committed view (its documents all carry fingerprints), and the rate is printed.
#[test]
fn search_while_another_process_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("tree");
    for i in 0..2000 {
        let path = src.join(format!("d{}/f{i}.rs", i % 13));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!("fn item{i}() {{ shared_word(); }}\n{}", "pad ".repeat(100)),
        )
        .unwrap();
    }
    let store_dir = tmp.path().join("store");
    walstore(&[
        "index",
        s(&src),
        "--store",
        s(&store_dir),
        "--max-file-bytes",
        "100",
    ])
    .ok();
    let mut indexer = Command::new(env!("CARGO_BIN_EXE_walstore"))
        .args([
            "index",
            s(&src),
            "--store",
            s(&store_dir),
            "--batch-files",
            "8",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn indexer");
    let reader = Store::open_read_only(&store_dir).unwrap();
    let started = Instant::now();
    let (mut searches, mut refreshes, mut last) = (0u64, 0u64, 0u64);
    while started.elapsed() < Duration::from_millis(1500) {
        let lsn = reader.refresh().unwrap();
        assert!(lsn >= last);
        last = lsn;
        refreshes += 1;
        for _ in 0..20 {
            let results = reader.read().search("shared_word item1*", 10).unwrap();
            assert_eq!(results.lsn, lsn, "one view");
            for hit in &results.hits {
                assert!(
                    reader
                        .read()
                        .fingerprint("code", &hit.doc)
                        .unwrap()
                        .is_some(),
                    "a hit without its fingerprint: half a batch"
                );
            }
            searches += 1;
        }
    }
    let elapsed = started.elapsed();
    let _ = indexer.kill();
    indexer.wait().unwrap();
    println!(
        "search-while-indexing: {searches} searches in {elapsed:?} ({:.0}/s) across {refreshes} refreshes, reader reached lsn {last}",
        searches as f64 / elapsed.as_secs_f64()
    );
    assert!(searches > 0);
}
