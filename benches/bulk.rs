//! Bulk: 10,000 fingerprint upserts in one durable transaction (issue 6, goal 3).
//!
//! - `bulk_10k/raw_encode_append_fdatasync` (the baseline): the same 10,000 ops, built
//!   beforehand, encoded with postcard, framed with `walstore::wal::record::encode_into`
//!   (header + crc32), written with one `pwrite` at the end of the data in a pre-sized
//!   (sparse, like walstore's segments) file, then `fdatasync`.
//! - `bulk_10k/raw_prezeroed`: the same into a file whose blocks were written beforehand,
//!   so the `fdatasync` commits no file-system metadata (the floor proper).
//! - `bulk_10k/walstore_txn`: `begin_write`, 10,000 `put_fingerprint`, `commit` with
//!   `Durability::Immediate` (what a user pays), from paths and fingerprints made
//!   beforehand, as the baseline's ops are. Goal: at most 2× the baseline.
//! - `bulk_10k/walstore_commit_only`: the same transaction built outside the timing;
//!   only `commit` is measured.
//!
//! Run: `cargo bench --bench bulk`.
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

mod common;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use walstore::Store;
use walstore::model::op::Op;

const OPS: u64 = 10_000;
const FILE_BYTES: u64 = 256 * 1024 * 1024;

fn ops(salt: u64) -> Vec<Op> {
    (0..OPS)
        .map(|i| Op::PutFingerprint {
            ns: common::NS.into(),
            path: common::path(i),
            fingerprint: common::fingerprint(i, salt),
        })
        .collect()
}

fn raw_file(dir: &std::path::Path, name: &str, prezero: bool) -> File {
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(dir.join(name))
        .expect("open");
    if prezero {
        let zeros = vec![0u8; 8 << 20];
        for k in 0..FILE_BYTES / zeros.len() as u64 {
            file.write_all_at(&zeros, k * zeros.len() as u64)
                .expect("zero");
        }
    } else {
        file.set_len(FILE_BYTES).expect("presize");
    }
    file.sync_all().expect("sync");
    file
}

/// Encodes `ops` as one record and appends it at `*offset`, then `fdatasync`.
/// When the file is full it starts over at offset 0; a sparse one is first truncated and
/// re-sized, so its writes keep allocating blocks as a fresh segment's do.
fn raw_commit(
    file: &File,
    sparse: bool,
    ops: &[Op],
    lsn: u64,
    offset: &mut u64,
    buf: &mut Vec<u8>,
) {
    let payload = postcard::to_allocvec(ops).expect("encode");
    buf.clear();
    walstore::wal::record::encode_into(buf, lsn, lsn - 1, &payload);
    if *offset + buf.len() as u64 > FILE_BYTES {
        *offset = 0;
        if sparse {
            file.set_len(0).expect("truncate");
            file.set_len(FILE_BYTES).expect("presize");
        }
    }
    file.write_all_at(buf, *offset).expect("write");
    file.sync_data().expect("fdatasync");
    *offset += buf.len() as u64;
}

fn bulk(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulk_10k");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(OPS));
    let dir = common::bench_dir();
    let prebuilt = ops(1);
    let mut buf = Vec::new();
    {
        let file = raw_file(dir.path(), "sparse.wal", false);
        let (mut offset, mut lsn) = (0u64, 1u64);
        group.bench_function("raw_encode_append_fdatasync", |b| {
            b.iter(|| {
                lsn += 1;
                raw_commit(&file, true, &prebuilt, lsn, &mut offset, &mut buf);
            });
        });
    }
    {
        let file = raw_file(dir.path(), "zeroed.wal", true);
        let (mut offset, mut lsn) = (0u64, 1u64);
        group.bench_function("raw_prezeroed", |b| {
            b.iter(|| {
                lsn += 1;
                raw_commit(&file, false, &prebuilt, lsn, &mut offset, &mut buf);
            });
        });
        drop(file);
        let _ = std::fs::remove_file(dir.path().join("zeroed.wal"));
    }

    // Default options: automatic checkpoints keep the WAL bounded, as in real use.
    let store = Store::open(dir.path().join("store")).expect("open store");
    let mut salt = 1u64;
    // The caller's inputs (paths and fingerprints) exist before it calls walstore, as the
    // baseline's ops do: they are made outside the timing.
    let paths: Vec<String> = (0..OPS).map(common::path).collect();
    group.bench_function("walstore_txn", |b| {
        b.iter_batched(
            || {
                salt += 1;
                (0..OPS)
                    .map(|i| common::fingerprint(i, salt))
                    .collect::<Vec<_>>()
            },
            |fingerprints| {
                let mut txn = store.begin_write();
                for (path, fingerprint) in paths.iter().zip(fingerprints) {
                    txn.put_fingerprint(common::NS, path, fingerprint);
                }
                txn.commit().expect("commit")
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("walstore_commit_only", |b| {
        b.iter_batched(
            || {
                salt += 1;
                let mut txn = store.begin_write();
                for i in 0..OPS {
                    txn.put_fingerprint(common::NS, &common::path(i), common::fingerprint(i, salt));
                }
                txn
            },
            |txn| txn.commit().expect("commit"),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
