//! The fuzz targets of `fuzz/` in `cargo test`, without a nightly toolchain: every file of
//! the seed corpus (`fuzz/corpus/<target>/`) is replayed through the same target body
//! (`fuzz/targets.rs`), then a bounded, seeded stream of mutations of the corpus.
//!
//! `WALSTORE_FUZZ_MUTATIONS=200000 cargo test --release --test fuzz_corpus -- --nocapture`
//! runs more mutations; `cargo +nightly fuzz run <target>` in `fuzz/` runs libFuzzer.
//! The seed corpus is written by the ignored test `generate_seed_corpus`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;
mod model;

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use model::Rng;
use walstore::storage::SimStorage;
use walstore::wal::scan::scan;
use walstore::{Options, Store};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("record_decoder", targets::record_decoder),
    ("snapshot_decoder", targets::snapshot_decoder),
    ("recovery", targets::recovery),
    ("parity_decoder", targets::parity_decoder),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir(target))
        .expect("corpus directory")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("corpus file"))
        })
        .collect();
    files.sort();
    files
}

/// A mutation of `input`: a few bit flips, byte sets, insertions, deletions, truncations
/// or splices with another corpus file.
fn mutate(input: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len() as u64;
        match rng.below(7) {
            0 | 1 if len > 0 => {
                let at = rng.below(len) as usize;
                out[at] ^= 1 << rng.below(8);
            }
            2 if len > 0 => {
                let at = rng.below(len) as usize;
                out[at] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5) as usize];
            }
            3 => {
                let at = rng.below(len + 1) as usize;
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.below(len) as usize;
                let end = (at + 1 + rng.below(16) as usize).min(out.len());
                out.drain(at..end);
            }
            5 => out.truncate(rng.below(len + 1) as usize),
            _ if !other.is_empty() => {
                let at = rng.below(len + 1) as usize;
                let from = rng.below(other.len() as u64) as usize;
                let take = (1 + rng.below(64) as usize).min(other.len() - from);
                out.truncate(at);
                out.extend_from_slice(&other[from..from + take]);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn corpus_replays_and_mutations_never_panic() {
    let mutations: u64 = std::env::var("WALSTORE_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut rng = Rng(0xf022);
    let mut replayed = 0;
    let mut mutated = 0;
    for (target, run) in TARGETS {
        let files = corpus(target);
        assert!(files.len() >= 4, "{target}: seed corpus too small");
        for (name, bytes) in &files {
            assert!(bytes.len() < 64 * 1024, "{target}/{name} is too large");
            let outcome = std::panic::catch_unwind(|| run(bytes));
            assert!(outcome.is_ok(), "{target}: corpus file {name} panics");
            replayed += 1;
        }
        // Recovery runs whole stores: fewer, costlier inputs.
        let share = match target {
            "recovery" => mutations / 5,
            "parity_decoder" => mutations / 5,
            _ => mutations * 2 / 5,
        };
        for i in 0..share {
            let (_, input) = &files[rng.below(files.len() as u64) as usize];
            let (_, other) = &files[rng.below(files.len() as u64) as usize];
            let bytes = mutate(input, other, &mut rng);
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            if outcome.is_err() {
                let crash = std::env::temp_dir().join(format!("walstore-fuzz-{target}-{i}"));
                std::fs::write(&crash, &bytes).unwrap();
                panic!(
                    "{target}: mutation {i} panics; input saved to {}",
                    crash.display()
                );
            }
            mutated += 1;
        }
    }
    println!(
        "fuzz-corpus: {replayed} corpus files replayed and {mutated} seeded mutations through record_decoder, snapshot_decoder, recovery and parity_decoder, 0 panics"
    );
}

// ---- the seed corpus ----

fn options(sim: &SimStorage) -> Options {
    Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(4096)
        .checkpoint_wal_bytes(0)
        .background_checkpoints(false)
}

/// A tiny store over every collection: two snapshots, two or more segments, lsns <= 30.
fn tiny_store() -> (SimStorage, PathBuf) {
    let sim = SimStorage::new(9);
    let dir = PathBuf::from(targets::DIR);
    let store = options(&sim).open(&dir).unwrap();
    for i in 1..=28 {
        common::commit_step(&store, i);
        if i == 10 || i == 22 {
            store.checkpoint().unwrap();
        }
    }
    drop(store);
    (sim, dir)
}

fn trim_zeros(bytes: &[u8]) -> Vec<u8> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
    bytes[..end].to_vec()
}

/// `[kind][len][content]` for the recovery target.
fn entry(out: &mut Vec<u8>, kind_mod: u8, lsn: u64, content: &[u8]) {
    let kind = (8 * (lsn - 1) as u8..8 * (lsn - 1) as u8 + 8)
        .find(|k| k % 6 == kind_mod)
        .unwrap();
    out.push(kind);
    out.extend_from_slice(&(content.len() as u16).to_le_bytes());
    out.extend_from_slice(content);
}

fn lsn_of(name: &str) -> u64 {
    name[..20].parse().unwrap()
}

/// Writes the seed corpus. Run it after a format change:
/// `cargo test --release --test fuzz_corpus -- --ignored generate_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn generate_seed_corpus() {
    let (sim, dir) = tiny_store();
    let names = sim.file_names(&dir);
    let segments: Vec<(String, Vec<u8>)> = names
        .iter()
        .filter(|n| n.ends_with(".wal"))
        .map(|n| (n.clone(), trim_zeros(&sim.read_file(dir.join(n)).unwrap())))
        .collect();
    let snapshots: Vec<(String, Vec<u8>)> = names
        .iter()
        .filter(|n| n.ends_with(".snap"))
        .map(|n| (n.clone(), sim.read_file(dir.join(n)).unwrap()))
        .collect();
    assert!(segments.len() >= 2 && snapshots.len() == 2, "{names:?}");
    let mut corpus: Vec<(&str, String, Vec<u8>)> = Vec::new();

    // record_decoder
    let (name, bytes) = segments.last().unwrap();
    let scanned = scan(bytes, Path::new(name)).unwrap();
    for (i, record) in scanned.records.iter().enumerate().take(4) {
        let end = record.payload.end.div_ceil(8) * 8;
        let frame = &bytes[record.offset as usize..end.min(bytes.len())];
        corpus.push((
            "record_decoder",
            format!("record-{i}"),
            [&[0], frame].concat(),
        ));
    }
    corpus.push((
        "record_decoder",
        "segment".into(),
        [&[0], &bytes[..]].concat(),
    ));
    corpus.push((
        "record_decoder",
        "body".into(),
        [&[1], &bytes[64..]].concat(),
    ));
    let mut chunked = vec![2u8];
    for record in scanned
        .records
        .iter()
        .filter(|r| r.payload.len() < 256)
        .take(6)
    {
        chunked.push(record.payload.len() as u8);
        chunked.extend_from_slice(&bytes[record.payload.clone()]);
    }
    corpus.push(("record_decoder", "payloads".into(), chunked));
    corpus.push(("record_decoder", "empty".into(), vec![]));
    corpus.push(("record_decoder", "zeros".into(), vec![0; 64]));
    corpus.push((
        "record_decoder",
        "garbage-payloads".into(),
        vec![2, 3, 0xff, 0xff, 0xff, 1, 9],
    ));

    // snapshot_decoder
    for (name, bytes) in &snapshots {
        let lsn = lsn_of(name);
        corpus.push((
            "snapshot_decoder",
            format!("snap-{lsn}"),
            [&[0], &bytes[..]].concat(),
        ));
        corpus.push((
            "snapshot_decoder",
            format!("snap-{lsn}-fix"),
            [&[1], &bytes[..]].concat(),
        ));
    }
    let (_, snap) = snapshots.last().unwrap();
    corpus.push((
        "snapshot_decoder",
        "half".into(),
        [&[0], &snap[..snap.len() / 2]].concat(),
    ));
    corpus.push(("snapshot_decoder", "header-and-footer".into(), {
        let mut b = vec![1];
        b.extend_from_slice(&snap[..64]);
        b.extend_from_slice(&snap[snap.len() - 64..]);
        b
    }));
    corpus.push(("snapshot_decoder", "zeros".into(), vec![1; 129]));

    // recovery: whole stores and damaged variants
    let image =
        |skip_last_bytes: usize, extra: &[(u8, u64, Vec<u8>)], drop_newest_snapshot: bool| {
            let mut out = Vec::new();
            for (name, bytes) in &snapshots {
                if drop_newest_snapshot && name == &snapshots.last().unwrap().0 {
                    continue;
                }
                entry(&mut out, 2, lsn_of(name), bytes);
            }
            for (i, (name, bytes)) in segments.iter().enumerate() {
                let bytes = match i + 1 == segments.len() {
                    true => &bytes[..bytes.len() - skip_last_bytes.min(bytes.len())],
                    false => &bytes[..],
                };
                entry(&mut out, 0, lsn_of(name), bytes);
            }
            for (kind, lsn, content) in extra {
                entry(&mut out, *kind, *lsn, content);
            }
            out
        };
    corpus.push(("recovery", "store".into(), image(0, &[], false)));
    corpus.push(("recovery", "torn-tail".into(), image(5, &[], false)));
    corpus.push((
        "recovery",
        "temps-and-lock".into(),
        image(0, &[(4, 29, vec![1, 2, 3]), (5, 1, b"{}".to_vec())], false),
    ));
    corpus.push((
        "recovery",
        "older-snapshot-only".into(),
        image(0, &[], true),
    ));
    let mut damaged = image(0, &[], false);
    let at = damaged.len() - 40;
    damaged[at] ^= 0x10;
    corpus.push(("recovery", "mid-log-damage".into(), damaged));
    let mut framed = Vec::new();
    for record in scanned
        .records
        .iter()
        .filter(|r| r.payload.len() < 256)
        .take(5)
    {
        framed.push(record.payload.len() as u8);
        framed.extend_from_slice(&bytes[record.payload.clone()]);
    }
    let mut out = Vec::new();
    entry(&mut out, 1, 1, &framed);
    corpus.push(("recovery", "framed-from-lsn-1".into(), out));

    for (target, name, bytes) in corpus {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(bytes.len() < 64 * 1024, "{target}/{name}");
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
