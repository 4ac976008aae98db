//! Flat in N: one durable fingerprint upsert into stores of different sizes, against the
//! naive whole-file JSON atomic rewrite walstore replaces (issue 6, goal 4).
//!
//! - `flat_in_n/walstore_upsert/N`: one `put_fingerprint` of an existing path committed
//!   with `Durability::Immediate` into a checkpointed store of N = 1,000 or 1,000,000
//!   fingerprints. Goal: the two within 1.3×. The 1M store is built once (`Durability::None`
//!   batches + one checkpoint) and cached in `target/bench-data/`.
//! - `flat_in_n/json_rewrite/N` (the baseline): change one entry of an in-memory map of N
//!   fingerprints, then `serde_json` the whole map, write a temp file, fsync it, rename it
//!   over the old file, fsync the directory; N = 1,000, 10,000 and 100,000. Goal: walstore
//!   at least 150× faster at 100,000 (compare with walstore's 1M figure: it is larger).
//!
//! Run: `cargo bench --bench flat_in_n`.
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

mod common;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use walstore::{Durability, Store};

fn walstore_upsert(c: &mut Criterion) {
    let mut group = c.benchmark_group("flat_in_n");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let small_dir = common::bench_dir();
    common::fill_store(&small_dir.path().join("store"), 1_000).expect("fill 1k");
    let big = common::cached_store("fp-1m-write", 1_000_000);
    let mut stores = Vec::new();
    for (n, dir) in [(1_000u64, small_dir.path().join("store")), (1_000_000, big)] {
        let store = Store::options()
            .durability(Durability::Immediate)
            .checkpoint_wal_bytes(0)
            .open(&dir)
            .expect("open store");
        let mut i = 0u64;
        group.bench_function(BenchmarkId::new("walstore_upsert", n), |b| {
            b.iter(|| {
                i += 1;
                upsert(&store, n, i)
            });
        });
        assert_eq!(
            store.read().fingerprints(common::NS).expect("scan").count() as u64,
            n,
            "the store keeps N entries"
        );
        stores.push((n, store));
    }
    // The disk's fsync latency drifts with other load on a shared machine, so compare the
    // two sizes again in one time window: rounds of 100 commits, alternating stores.
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..20u64 {
        for (k, (n, store)) in stores.iter().enumerate() {
            for j in 0..100 {
                let started = std::time::Instant::now();
                upsert(store, *n, 1_000_000 + round * 100 + j);
                samples[k].push(started.elapsed());
            }
        }
    }
    let [small, large] = samples.map(|mut s| common::quantile(&mut s, 0.5));
    println!(
        "flat_in_n: interleaved, 2,000 durable upserts each: median at 1,000 entries {}, at \
         1,000,000 {}: ratio {:.2}×",
        common::fmt_duration(small),
        common::fmt_duration(large),
        large.as_secs_f64() / small.as_secs_f64()
    );
    drop(stores);

    let json_dir = common::bench_dir();
    for n in [1_000u64, 10_000, 100_000] {
        let mut index = common::json_index(n);
        let file = json_dir.path().join(format!("index-{n}.json"));
        let bytes = common::json_atomic_rewrite(&index, &file).expect("first write");
        println!("json_rewrite/{n}: file of {bytes} bytes");
        let (sample_size, time) = if n >= 100_000 { (10, 6) } else { (20, 4) };
        group
            .sample_size(sample_size)
            .measurement_time(Duration::from_secs(time));
        let mut i = 0u64;
        group.bench_function(BenchmarkId::new("json_rewrite", n), |b| {
            b.iter(|| {
                i += 1;
                let k = (i * 7_919) % n;
                if let Some(map) = index.get_mut(common::NS) {
                    map.insert(common::path(k), common::json_fingerprint(k, i));
                }
                common::json_atomic_rewrite(&index, &file).expect("rewrite")
            });
        });
    }
    group.finish();
}

fn upsert(store: &Store, n: u64, i: u64) -> u64 {
    let k = (i * 7_919) % n;
    let mut txn = store.begin_write();
    txn.put_fingerprint(common::NS, &common::path(k), common::fingerprint(k, i));
    txn.commit().expect("commit")
}

criterion_group!(benches, walstore_upsert);
criterion_main!(benches);
