//! The writer lock under a race: N processes (re-executions of this test binary) are
//! released at once to open one store as writer, round after round. Exactly one wins every
//! time; the others get `Locked`. And in the holder, opening and closing another
//! descriptor of the `LOCK` file (which would drop a POSIX `fcntl` lock) keeps the lock.
//!
//! `WALSTORE_LOCK_RACE_ROUNDS=200 cargo test --release --test lock_race -- --nocapture`
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use walstore::storage::FsStorage;
use walstore::{Error, Store};

const CHILD_ENV: &str = "WALSTORE_LOCK_RACE_DIR";
const REOPEN_ENV: &str = "WALSTORE_LOCK_RACE_REOPEN";
const PROCESSES: usize = 8;

/// Not a test on its own: a racing process. Prints `ready`, waits for a line on stdin,
/// opens the store, prints `won` or `locked <holder>`; a winner holds the store until its
/// stdin closes.
#[test]
#[ignore = "run as a child process by the lock race tests"]
fn lock_race_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let mut out = std::io::stdout().lock();
    let mut input = std::io::stdin().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    input.read_line(&mut line).unwrap();
    match Store::open(dir) {
        Ok(store) => {
            writeln!(out, "won").unwrap();
            out.flush().unwrap();
            if std::env::var_os(REOPEN_ENV).is_some() {
                // Another descriptor of LOCK, opened and closed; and a failed second open
                // in this process, which opens and closes one too.
                drop(std::fs::File::open(dir.join(walstore::LOCK_FILE)).unwrap());
                let again = Store::open(dir);
                assert!(matches!(again, Err(Error::Locked { .. })), "{again:?}");
                drop(again);
                writeln!(out, "reopened").unwrap();
                out.flush().unwrap();
            }
            while input.read_line(&mut line).unwrap() > 0 {}
            drop(store);
        }
        Err(Error::Locked { holder, .. }) => {
            writeln!(out, "locked {holder}").unwrap();
            out.flush().unwrap();
        }
        Err(other) => {
            writeln!(out, "error {other}").unwrap();
            out.flush().unwrap();
        }
    }
}

struct Racer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Racer {
    fn spawn(dir: &Path, reopen: bool) -> Racer {
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        command
            .args([
                "--ignored",
                "--exact",
                "lock_race_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if reopen {
            command.env(REOPEN_ENV, "1");
        }
        let mut child = command.spawn().expect("spawn child");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Racer {
            child,
            stdin,
            lines,
        }
    }

    /// The next line the child printed that is not the test harness's.
    fn line(&mut self) -> String {
        loop {
            let line = self
                .lines
                .next()
                .expect("the child reports")
                .expect("utf-8");
            // The test harness starts the child's first line with `test lock_race_child ... `.
            let line = line.rsplit("... ").next().unwrap_or_default().to_owned();
            if ["ready", "won", "locked", "error", "reopened"]
                .iter()
                .any(|word| line.starts_with(word))
            {
                return line;
            }
        }
    }

    fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin (a winner then releases the store) and reaps the child.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("reap");
        assert!(status.success(), "child failed: {status:?}");
    }
}

fn locked_in_parent(dir: &Path) -> bool {
    matches!(Store::open(dir), Err(Error::Locked { .. }))
}

#[test]
fn exactly_one_writer_wins_every_race() {
    let rounds: usize = std::env::var("WALSTORE_LOCK_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let tmp = tempfile::tempdir().expect("tempdir");
    // The first round also races to create the store.
    let dir = tmp.path().join("store");
    let mut named_holder = 0;
    // Every process that ever held the lock: this one checks each round that it is free.
    let mut winners = vec![std::process::id()];
    for round in 0..rounds {
        let mut racers: Vec<Racer> = (0..PROCESSES).map(|_| Racer::spawn(&dir, false)).collect();
        for racer in &mut racers {
            assert_eq!(racer.line(), "ready");
        }
        for racer in &mut racers {
            racer.go();
        }
        let answers: Vec<String> = racers.iter_mut().map(Racer::line).collect();
        let won: Vec<usize> = (0..PROCESSES).filter(|&i| answers[i] == "won").collect();
        assert_eq!(won.len(), 1, "round {round}: {answers:#?}");
        let winner = racers[won[0]].child.id();
        winners.push(winner);
        for (i, answer) in answers.iter().enumerate() {
            if i == won[0] {
                continue;
            }
            let holder = answer
                .strip_prefix("locked ")
                .unwrap_or_else(|| panic!("round {round}: process {i}: {answer}"));
            // The winner writes who it is just after taking the lock, so a loser may read
            // the previous holder's line or none; it never names a process that never held it.
            if holder.contains(&format!("pid {winner} ")) {
                named_holder += 1;
            } else {
                assert!(
                    holder == "holder unknown"
                        || winners
                            .iter()
                            .any(|w| holder.contains(&format!("pid {w} "))),
                    "round {round}: {holder}"
                );
            }
        }
        assert!(locked_in_parent(&dir), "round {round}: the winner holds");
        for racer in racers {
            racer.finish();
        }
        assert!(!locked_in_parent(&dir), "round {round}: released on exit");
    }
    println!(
        "lock-race: {rounds} rounds × {PROCESSES} processes, exactly one writer every round ({named_holder} of {} losers named the winner)",
        rounds * (PROCESSES - 1)
    );
}

#[test]
fn closing_another_descriptor_of_the_lock_file_keeps_the_lock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let mut holder = Racer::spawn(&dir, true);
    assert_eq!(holder.line(), "ready");
    holder.go();
    assert_eq!(holder.line(), "won");
    assert_eq!(holder.line(), "reopened");
    match Store::open(&dir) {
        Err(Error::Locked { holder: text, .. }) => {
            assert!(
                text.contains(&format!("pid {} ", holder.child.id())),
                "{text}"
            )
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let probed = walstore::lock_holder(&FsStorage, &dir).expect("probe");
    assert_eq!(probed.map(|h| h.pid), Some(holder.child.id()));
    // A second process racing for it now loses too.
    let mut second = Racer::spawn(&dir, false);
    assert_eq!(second.line(), "ready");
    second.go();
    assert!(second.line().starts_with("locked "));
    second.finish();
    holder.finish();
    assert!(Store::open(&dir).is_ok(), "released when the holder exits");
}
