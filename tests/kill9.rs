//! kill -9: a child process commits transactions in a loop on the real file system and
//! reports each acknowledged lsn on stdout; the parent kills it with SIGKILL at a seeded
//! random moment (after some acknowledgements, right after a checkpoint began, or after a
//! random delay), then recovers the store and checks: every acknowledged lsn is there, the
//! state is exactly the model's after a gap-free prefix, no temporary file is left, and
//! `verify` finds nothing. One store is reused across kills; each child continues from
//! the recovered lsn.
//!
//! `WALSTORE_KILL9_ROUNDS=2000 cargo test --release --test kill9 -- --nocapture`
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod model;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use model::Rng;
use walstore::storage::FsStorage;
use walstore::{DocTerms, Fingerprint, Options, ProblemKind, Store, Value};

const CHILD_ENV: &str = "WALSTORE_KILL9_CHILD_DIR";
/// The child checkpoints explicitly every this many commits (and automatically too).
const CHECKPOINT_EVERY: u64 = 16;

fn options() -> Options {
    Store::options()
        .segment_bytes(16 * 1024)
        .checkpoint_wal_bytes(8 * 1024)
}

fn fingerprint(i: u64) -> Fingerprint {
    Fingerprint::new(i.to_le_bytes().repeat(4), i * 3, i as i64).expect("fingerprint")
}

fn doc_text(i: u64) -> String {
    format!("alpha w{} n{i} checkpointKill", i % 5)
}

/// The deterministic transaction with lsn `i`.
fn commit(store: &Store, i: u64) -> walstore::Result<u64> {
    let mut txn = store.begin_write();
    txn.set_meta("last", Value::from(i))
        .put_fingerprint("code", &format!("p{}", i % 97), fingerprint(i))
        .set_config(&format!("c{}", i % 7), Value::from(i))
        .index_doc(&format!("d{}", i % 13), &doc_text(i));
    if i.is_multiple_of(10) {
        txn.delete_fingerprint("code", &format!("p{}", (i + 50) % 97));
    }
    txn.commit()
}

/// The model: plain maps after transactions `1..=lsn`.
#[derive(Debug, Default, PartialEq)]
struct State {
    meta: BTreeMap<String, Value>,
    config: BTreeMap<String, Value>,
    fingerprints: BTreeMap<String, Fingerprint>,
    docs: BTreeMap<String, DocTerms>,
}

impl State {
    fn model(lsn: u64) -> State {
        let mut state = State::default();
        for i in 1..=lsn {
            state.meta.insert("last".into(), Value::from(i));
            state
                .fingerprints
                .insert(format!("p{}", i % 97), fingerprint(i));
            state.config.insert(format!("c{}", i % 7), Value::from(i));
            state
                .docs
                .insert(format!("d{}", i % 13), DocTerms::from_text(&doc_text(i)));
            if i.is_multiple_of(10) {
                state.fingerprints.remove(&format!("p{}", (i + 50) % 97));
            }
        }
        state
    }

    fn read(store: &Store) -> State {
        let read = store.read();
        let mut state = State {
            meta: read.metadata().expect("meta").into_iter().collect(),
            config: read.configs().expect("config").into_iter().collect(),
            ..State::default()
        };
        for entry in read.all_fingerprints().expect("fingerprints") {
            let (ns, path, fp) = entry.expect("fingerprint");
            assert_eq!(ns, "code");
            state.fingerprints.insert(path, fp);
        }
        for doc in read.docs().expect("docs") {
            let doc = doc.expect("doc");
            let terms = read
                .doc_terms(&doc)
                .expect("doc terms")
                .expect("listed doc");
            state.docs.insert(doc, terms);
        }
        state
    }
}

/// Not a test on its own: the child process, committing until it is killed.
#[test]
#[ignore = "run as a child process by kill9_at_random_moments"]
fn kill9_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = options().open(dir).expect("child open");
    let mut out = std::io::stdout().lock();
    writeln!(out, "open {}", store.lsn()).unwrap();
    out.flush().unwrap();
    for _ in 0..1_000_000 {
        let i = store.lsn() + 1;
        let lsn = commit(&store, i).expect("child commit");
        writeln!(out, "ack {lsn}").unwrap();
        out.flush().unwrap();
        if lsn.is_multiple_of(CHECKPOINT_EVERY) {
            writeln!(out, "checkpoint-start").unwrap();
            out.flush().unwrap();
            store.checkpoint().expect("child checkpoint");
            writeln!(out, "checkpoint-end").unwrap();
            out.flush().unwrap();
        }
    }
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// After this many acknowledgements, then a pause of this many microseconds.
    AfterAcks(u64, u64),
    /// Right after the n-th `checkpoint-start`, then a pause of this many microseconds.
    InCheckpoint(u64, u64),
    /// This many microseconds after the child opened the store.
    AfterDelay(u64),
}

/// What one round saw.
struct Round {
    acknowledged: Vec<u64>,
    in_checkpoint: bool,
}

fn run_child(dir: &Path, plan: Plan) -> Round {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "kill9_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (send, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The test harness starts the child's first line with `test kill9_child ... `.
            let line = line.rsplit("... ").next().unwrap_or_default().to_owned();
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut next = || {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the child reports");
        seen.push(line.clone());
        line
    };
    while !next().starts_with("open ") {}
    let pause = |micros: u64| std::thread::sleep(Duration::from_micros(micros));
    match plan {
        Plan::AfterAcks(acks, micros) => {
            let mut count = 0;
            while count < acks {
                if next().starts_with("ack ") {
                    count += 1;
                }
            }
            pause(micros);
        }
        Plan::InCheckpoint(nth, micros) => {
            let mut count = 0;
            while count < nth {
                if next() == "checkpoint-start" {
                    count += 1;
                }
            }
            pause(micros);
        }
        Plan::AfterDelay(micros) => pause(micros),
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    reader.join().expect("reader");
    seen.extend(lines.try_iter());
    let acknowledged = seen
        .iter()
        .filter_map(|line| line.strip_prefix("ack ")?.parse().ok())
        .collect();
    let last_checkpoint = seen
        .iter()
        .rev()
        .find(|line| line.starts_with("checkpoint-"));
    Round {
        acknowledged,
        in_checkpoint: last_checkpoint.is_some_and(|line| line == "checkpoint-start"),
    }
}

#[test]
fn kill9_at_random_moments() {
    let rounds: u64 = std::env::var("WALSTORE_KILL9_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let mut rng = Rng(0x4b111);
    let (mut in_checkpoint, mut checked, mut lost, mut temps_left) = (0u64, 0u64, 0u64, 0u64);
    let mut lsn = 0;
    for round in 0..rounds {
        let plan = match rng.below(20) {
            0..=8 => Plan::AfterAcks(rng.below(40), rng.below(400)),
            9..=16 => Plan::InCheckpoint(1 + rng.below(2), rng.below(300)),
            _ => Plan::AfterDelay(rng.below(20_000)),
        };
        let seen = run_child(&dir, plan);
        in_checkpoint += u64::from(seen.in_checkpoint);
        let acknowledged = seen.acknowledged.last().copied().unwrap_or(lsn);
        assert!(
            seen.acknowledged
                .iter()
                .zip(seen.acknowledged.iter().skip(1))
                .all(|(a, b)| a + 1 == *b),
            "round {round}: acknowledgements are dense: {:?}",
            seen.acknowledged
        );

        // The crashed image: never corrupt.
        let report = walstore::verify(&FsStorage, &dir).expect("verify");
        assert!(
            report
                .problems
                .iter()
                .all(|p| matches!(p.kind, ProblemKind::TornTail | ProblemKind::StrayTemp)),
            "round {round} ({plan:?}): {:?}",
            report.problems
        );

        let store = options()
            .background_checkpoints(false)
            .open(&dir)
            .unwrap_or_else(|e| panic!("round {round} ({plan:?}): recovery failed: {e}"));
        lsn = store.lsn();
        lost += acknowledged.saturating_sub(lsn);
        assert!(
            lsn >= acknowledged && lsn <= acknowledged + 1,
            "round {round} ({plan:?}): recovered lsn {lsn}, last acknowledged {acknowledged}"
        );
        assert!(
            State::read(&store) == State::model(lsn),
            "round {round} ({plan:?}): the state at lsn {lsn} is not the model's"
        );
        checked += seen.acknowledged.len() as u64;
        let temps: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.contains(".tmp"))
            .collect();
        temps_left += temps.len() as u64;
        assert!(
            temps.is_empty(),
            "round {round}: temporaries left: {temps:?}"
        );
        drop(store);
        let report = walstore::verify(&FsStorage, &dir).expect("verify");
        assert!(
            report.problems.is_empty(),
            "round {round}: verify after recovery: {:?}",
            report.problems
        );
    }
    println!(
        "kill9: {rounds} kills ({in_checkpoint} during a checkpoint), {checked} acknowledged commits checked, {lost} lost, {temps_left} temp files left"
    );
    println!("kill9 details: the store ended at lsn {lsn}");
    assert_eq!((lost, temps_left), (0, 0));
    assert!(
        in_checkpoint >= rounds / 10,
        "too few kills landed in a checkpoint: {in_checkpoint}"
    );
}
