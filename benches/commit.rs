//! Durable commit latency against the floor measured in the same run.
//!
//! - `raw_append_fdatasync`: the floor. The bytes of one framed fingerprint record
//!   written at the end of the data in a pre-sized (sparse, like walstore's segments)
//!   file, then `fdatasync`.
//! - `walstore_put_fingerprint`: one fingerprint upsert committed with
//!   `Durability::Immediate`.
//!
//! Run: `cargo bench --bench commit`. Quote medians and the ratio between the two.
#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Duration;

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
}

criterion_group!(benches, durable_commit);
criterion_main!(benches);
