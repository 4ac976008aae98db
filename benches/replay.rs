//! Replay: recovering 64 MiB of un-checkpointed WAL (issue 6, goal 6: ≥ 400 MB/s).
//!
//! The WAL is written once (cached in `target/bench-data/`): transactions of 100
//! fingerprint upserts of distinct paths, committed with `Durability::None`, then one
//! `sync`, no checkpoint. `replay_64mib/open_read_only` opens it read-only (scan, checksum,
//! decode and apply every record, then get one key) and drops it; criterion's throughput
//! line is WAL bytes/s. The baseline `replay_64mib/read_files` reads the same segment files
//! (warm), so the gap is walstore's own work. Warm page cache in both.
//!
//! Run: `cargo bench --bench replay`.
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use walstore::{Durability, Store};

const WAL_BYTES: u64 = 64 << 20;
const OPS_PER_TXN: u64 = 100;

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Bytes of records in the WAL: the segments' lengths less their unwritten, preallocated
/// tails, approximated by the bytes written (tracked while building, stored beside).
fn build(dir: &Path) -> (u64, u64) {
    let store = Store::options()
        .durability(Durability::None)
        .checkpoint_wal_bytes(0)
        .open(dir)
        .expect("open");
    let mut written = 0u64;
    let mut i = 0u64;
    let mut ops = 0u64;
    while written < WAL_BYTES {
        let mut txn = store.begin_write();
        for k in i..i + OPS_PER_TXN {
            txn.put_fingerprint(common::NS, &common::path(k), common::fingerprint(k, 0));
        }
        // Record size: what the op costs encoded, as the store frames it.
        let payload = postcard::to_allocvec(
            &(i..i + OPS_PER_TXN)
                .map(|k| walstore::model::op::Op::PutFingerprint {
                    ns: common::NS.into(),
                    path: common::path(k),
                    fingerprint: common::fingerprint(k, 0),
                })
                .collect::<Vec<_>>(),
        )
        .expect("encode");
        written += walstore::wal::record::framed_len(payload.len());
        txn.commit().expect("commit");
        i += OPS_PER_TXN;
        ops += OPS_PER_TXN;
    }
    store.sync().expect("sync");
    drop(store);
    (written, ops)
}

fn replay(c: &mut Criterion) {
    let dir = common::data_dir("wal-64mib");
    let info = dir.with_extension("info");
    let (bytes, ops) = match std::fs::read_to_string(&info).ok().and_then(|s| {
        let mut it = s.split_whitespace().map(|f| f.parse::<u64>().ok());
        Some((it.next()??, it.next()??))
    }) {
        Some(cached) if Store::open_read_only(&dir).is_ok() => cached,
        _ => {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("dir");
            let started = Instant::now();
            let built = build(&dir);
            eprintln!(
                "built {} in {:.1} s",
                dir.display(),
                started.elapsed().as_secs_f64()
            );
            std::fs::write(&info, format!("{} {}", built.0, built.1)).expect("info");
            built
        }
    };
    println!(
        "replay_64mib: {ops} upserts in {} transactions, {:.1} MiB of records in {} segments",
        ops / OPS_PER_TXN,
        bytes as f64 / (1u64 << 20) as f64,
        wal_files(&dir).len()
    );

    let mut group = c.benchmark_group("replay_64mib");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(bytes));
    let last = common::path(ops - 1);
    group.bench_function("open_read_only", |b| {
        b.iter(|| {
            let store = Store::open_read_only(&dir).expect("open");
            let fp = store.read().fingerprint(common::NS, &last).expect("get");
            assert!(fp.is_some(), "last upsert replayed");
            store.lsn()
        });
    });
    let files = wal_files(&dir);
    group.bench_function("read_files", |b| {
        b.iter(|| {
            files
                .iter()
                .map(|f| std::fs::read(f).expect("read").len())
                .sum::<usize>()
        });
    });
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
