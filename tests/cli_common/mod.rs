//! Shared helpers of the CLI tests: run the built `walstore` binary as a child process
//! and inspect stores on disk.
#![allow(dead_code, reason = "each test file uses a subset")]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit 0 and an empty stderr.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        assert!(self.stderr.is_empty(), "stderr not empty: {self:#?}");
        self
    }

    /// Asserts exit `code` and exactly one stderr line starting `error:`, no panic.
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code: {self:#?}");
        assert_one_error_line(&self);
        self
    }

    /// The stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Stdout as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:#?}"))
    }
}

/// Stderr is one line starting `error:`, and nothing looks like a Rust panic.
pub fn assert_one_error_line(run: &Run) {
    assert!(run.stderr.starts_with("error:"), "stderr: {run:#?}");
    assert!(run.stderr.ends_with('\n'), "stderr: {run:#?}");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:#?}");
    for marker in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!run.stderr.contains(marker), "{marker}: {run:#?}");
    }
}

/// A path as the `&str` an argument list needs (temp dirs are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Runs `walstore ARGS` with `stdin` as its input.
pub fn walstore_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_walstore"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn walstore");
    {
        let mut input = child.stdin.take().expect("stdin");
        // The child may stop reading early (a malformed line): a broken pipe is fine.
        let _ = input.write_all(stdin);
    }
    let output = child.wait_with_output().expect("wait walstore");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `walstore ARGS` with an empty stdin.
pub fn walstore(args: &[&str]) -> Run {
    walstore_stdin(args, b"")
}

/// Imports `lines` from stdin into `dir`.
pub fn import(dir: &Path, lines: &str) -> Run {
    walstore_stdin(&["import", s(dir)], lines.as_bytes())
}

/// `{"ops":[{"op":"set_meta","key":KEY,"value":VALUE}]}` for `key = k<i>`, `value = i`.
pub fn set_meta_line(i: u64) -> String {
    format!("{{\"ops\":[{{\"op\":\"set_meta\",\"key\":\"k{i}\",\"value\":{i}}}]}}\n")
}

/// Imports transactions `k1 = 1` .. `kN = N` (lsns 1..=N in a new store).
pub fn import_n(dir: &Path, n: u64) {
    let lines: String = (1..=n).map(set_meta_line).collect();
    let run = import(dir, &lines).ok();
    assert_eq!(run.lines().len() as u64, n);
}

/// `walstore dump DIR --json`, which must succeed.
pub fn dump(dir: &Path) -> serde_json::Value {
    walstore(&["dump", s(dir), "--json"]).ok().json()
}

/// Names of the files in `dir` ending with `suffix`, sorted.
pub fn names_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// The newest `.wal` segment's path.
pub fn last_segment(dir: &Path) -> PathBuf {
    dir.join(names_ending(dir, ".wal").pop().expect("a segment"))
}

/// `(offset, end, lsn)` of each record of a segment, found with the library's scanner.
pub fn records(path: &Path) -> Vec<(u64, u64, u64)> {
    let bytes = std::fs::read(path).expect("read segment");
    let scanned = walstore::wal::scan::scan(&bytes, path).expect("scan");
    scanned
        .records
        .iter()
        .map(|r| (r.offset, r.payload.end as u64, r.lsn))
        .collect()
}

/// Flips every bit of the byte at `offset` of `path`.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset as usize] ^= 0xff;
    std::fs::write(path, bytes).expect("write");
}

/// Every file under `dir` (recursively) with its bytes: to prove nothing changed.
pub fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(contents(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).expect("read"));
        }
    }
    out
}

/// A store of many small segments holding `k1..kN` (the CLI always uses 8 MiB
/// segments, so the library builds it).
pub fn many_segments(dir: &Path, n: u64) {
    let store = walstore::Store::options()
        .segment_bytes(4096)
        .open(dir)
        .unwrap();
    for i in 1..=n {
        let mut txn = store.begin_write();
        txn.set_meta(&format!("k{i}"), walstore::Value::from(i))
            .set_config("pad", "x".repeat(300));
        txn.commit().unwrap();
    }
    store.close().unwrap();
}

/// A store whose snapshots are at lsn 60 and 62 (the second checkpoint kept a fallback)
/// and whose WAL before lsn 60 is gone.
pub fn two_checkpoints(dir: &Path) {
    many_segments(dir, 60);
    walstore(&["checkpoint", s(dir)]).ok();
    let lines: String = (61..=62).map(set_meta_line).collect();
    import(dir, &lines).ok();
    walstore(&["checkpoint", s(dir), "--keep-fallback"]).ok();
    assert_eq!(
        names_ending(dir, ".snap"),
        ["00000000000000000060.snap", "00000000000000000062.snap"]
    );
}

/// Removes the parity sidecars (`.par`): the store is then as an older build or
/// `snapshot_parity(false)` leaves it, and a damaged snapshot cannot be rebuilt.
pub fn remove_sidecars(dir: &Path) {
    for name in names_ending(dir, ".par") {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
}

/// Cuts a file to half its length.
pub fn truncate_half(path: &Path) {
    let len = std::fs::metadata(path).expect("stat").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    file.set_len(len / 2).expect("truncate");
}
