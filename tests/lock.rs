//! The writer lock: one writer at a time, named in the error; gone with its process.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Backend, for_each_backend};
use walstore::{Error, Store};

const CHILD_ENV: &str = "WALSTORE_LOCK_TEST_CHILD_DIR";

#[test]
fn second_writer_gets_locked_naming_the_holder() {
    for_each_backend(|backend| {
        let first = backend.open();
        match backend.options().open(&backend.dir) {
            Err(Error::Locked { dir, holder }) => {
                assert_eq!(dir, backend.dir);
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("[{}] expected Locked, got {other:?}", backend.name),
        }
        let reader = backend.options().read_only(true).open(&backend.dir);
        assert!(reader.is_ok(), "readers need no lock");
        drop(first);
        assert!(
            backend.options().open(&backend.dir).is_ok(),
            "lock released on drop"
        );
    });
}

#[test]
fn lock_wait_with_timeout() {
    let backend = Backend::fs();
    let first = backend.open();
    let started = std::time::Instant::now();
    let waited = backend
        .options()
        .lock_timeout(Some(Duration::from_millis(100)))
        .open(&backend.dir);
    assert!(matches!(waited, Err(Error::Locked { .. })));
    assert!(started.elapsed() >= Duration::from_millis(100));
    let dir = backend.dir.clone();
    let options = backend
        .options()
        .lock_timeout(Some(Duration::from_secs(10)));
    let waiter = std::thread::spawn(move || {
        options
            .open(dir)
            .map(|s| (s.lsn(), std::time::Instant::now()))
    });
    std::thread::sleep(Duration::from_millis(100));
    let released = std::time::Instant::now();
    drop(first);
    let (lsn, acquired) = waiter
        .join()
        .expect("thread")
        .expect("got the lock after release");
    assert_eq!(lsn, 0);
    let lag = acquired.duration_since(released);
    println!("lock-wait: acquired {lag:?} after release");
    assert!(
        lag < Duration::from_millis(500),
        "woken by the release: {lag:?}"
    );
}

/// Not a test on its own: the body of the child process of the SIGKILL test.
#[test]
#[ignore = "run as a child process by lock_dies_with_a_killed_holder"]
fn child_holds_the_lock() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(dir).expect("child open");
    let mut txn = store.begin_write();
    txn.set_meta("child", 1i64);
    txn.commit().expect("child commit");
    println!("locked");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn lock_dies_with_a_killed_holder() {
    let backend = Backend::fs();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "child_holds_the_lock",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &backend.dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    assert!(
        lines.any(|line| line.is_ok_and(|l| l.contains("locked"))),
        "child took the lock"
    );
    match Store::open(&backend.dir) {
        Err(Error::Locked { holder, .. }) => {
            assert!(holder.contains(&format!("pid {}", child.id())), "{holder}")
        }
        other => panic!("expected Locked while the child lives, got {other:?}"),
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let store = Store::open(&backend.dir).expect("the lock died with its holder");
    assert_eq!(
        store.read().meta("child").expect("read"),
        Some(walstore::Value::Int(1))
    );
}
