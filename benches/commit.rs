//! Durable commit latency against the floor measured in the same run.
//!
//! - `raw_append_fdatasync`: the floor. The bytes of one framed fingerprint record
//!   written at the end of the data in a pre-sized (sparse, like walstore's segments)
//!   file, then `fdatasync`.
//! - `walstore_put_fingerprint`: one fingerprint upsert committed with
//!   `Durability::Immediate`.
//!
//! - Printed after them: the two again, interleaved in rounds of 200 commits, so that
//!   drift in the disk's fsync latency hits both alike.
//!
//! Run: `cargo bench --bench commit`. Quote medians and the ratio between the two.
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use walstore::{Fingerprint, Store};

const PRESIZE_BYTES: u64 = 64 * 1024 * 1024;

fn bench_dir() -> tempfile::TempDir {
    // Same file system as the project (the default temp dir may be a tmpfs elsewhere).
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::path::PathBuf::from("target"), Into::into);
    std::fs::create_dir_all(&base).expect("target dir");
    tempfile::tempdir_in(base).expect("tempdir")
}

fn record_bytes() -> Vec<u8> {
    let ops = vec![walstore::model::op::Op::PutFingerprint {
        ns: "code".into(),
        path: "src/store/commit.rs".into(),
        fingerprint: Fingerprint::new([7u8; 32], 12_345, 1_700_000_000_000_000_000)
            .expect("fingerprint"),
    }];
    let payload = postcard::to_allocvec(&ops).expect("encode");
    let mut framed = Vec::new();
    walstore::wal::record::encode_into(&mut framed, 2, 1, &payload);
    framed
}

fn durable_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_commit");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));

    let dir = bench_dir();
    let path = dir.path().join("raw.wal");
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .expect("open");
    file.set_len(PRESIZE_BYTES).expect("presize");
    file.sync_all().expect("sync");
    let record = record_bytes();
    let mut offset = 0u64;
    group.bench_function("raw_append_fdatasync", |b| {
        b.iter(|| {
            if offset + record.len() as u64 > PRESIZE_BYTES {
                offset = 0;
            }
            file.write_all_at(&record, offset).expect("write");
            file.sync_data().expect("fdatasync");
            offset += record.len() as u64;
        });
    });

    let store_dir = bench_dir();
    let store = Store::options()
        .checkpoint_wal_bytes(0)
        .open(store_dir.path().join("store"))
        .expect("open store");
    let fingerprint =
        Fingerprint::new([7u8; 32], 12_345, 1_700_000_000_000_000_000).expect("fingerprint");
    let mut i = 0u64;
    group.bench_function("walstore_put_fingerprint", |b| {
        b.iter(|| {
            i += 1;
            let mut txn = store.begin_write();
            txn.put_fingerprint(
                "code",
                &format!("src/file{:06}.rs", i % 100_000),
                fingerprint.clone(),
            );
            txn.commit().expect("commit")
        });
    });
    group.finish();

    // The disk's fsync latency drifts with other load on a shared machine: compare the two
    // again in one time window, 10 rounds of 200 commits each, alternating.
    let mut samples = [Vec::new(), Vec::new()];
    for _ in 0..10 {
        for _ in 0..200 {
            let started = Instant::now();
            if offset + record.len() as u64 > PRESIZE_BYTES {
                offset = 0;
            }
            file.write_all_at(&record, offset).expect("write");
            file.sync_data().expect("fdatasync");
            offset += record.len() as u64;
            samples[0].push(started.elapsed());
        }
        for _ in 0..200 {
            i += 1;
            let started = Instant::now();
            let mut txn = store.begin_write();
            txn.put_fingerprint(
                "code",
                &format!("src/file{:06}.rs", i % 100_000),
                fingerprint.clone(),
            );
            txn.commit().expect("commit");
            samples[1].push(started.elapsed());
        }
    }
    let [raw, walstore] = samples.map(|mut s| {
        s.sort_unstable();
        s[s.len() / 2]
    });
    println!(
        "durable_commit, interleaved (2,000 each): median raw {:.1} µs, walstore {:.1} µs: \
         ratio {:.2}×",
        raw.as_secs_f64() * 1e6,
        walstore.as_secs_f64() * 1e6,
        walstore.as_secs_f64() / raw.as_secs_f64()
    );
}

criterion_group!(benches, durable_commit);
criterion_main!(benches);
