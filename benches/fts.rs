//! Full-text index figures of issue 5, reported by the issue-6 bench suite (goal 8).
//!
//! The corpus is the `*.rs` files under `~/.cargo/registry/src` (or `$CARGO_HOME`), sorted
//! by path, capped at `WALSTORE_FTS_CORPUS_MB` MB (default 20; the figures use the
//! whole 96 MB). Each file is one document; each query is a top-10 by BM25.
//!
//! - `fts/index_build`: a fresh store, documents committed in batches of 256
//!   (`Durability::Immediate`), to the last durable commit; throughput in source bytes/s.
//!   Goal: ≥ 60 MB/s (SQLite FTS5 63 MB/s; tantivy 110 MB/s).
//! - `fts/replace_5k_doc`: `index_doc` of one ~5 KB document (alternating two versions)
//!   committed durably. Goal: p50 ≤ 0.25 ms, p99 ≤ 2 ms (printed from a separate run).
//! - `fts/query/*`: 1-term queries (rare / medium / frequent, chosen by document frequency
//!   from the corpus), 2- and 3-term OR queries, a prefix query. p50/p99 printed too.
//! - `fts/cold_open_first_query`: drop the page cache (root only; warm otherwise), then
//!   open read-only and run the first query. Goal: ≤ 20 ms.
//! - Printed: store size / source size (goal ≤ 0.3×), by default and with
//!   `keep_fallback(true)`; peak memory of the first build.
//!
//! There is no baseline in this crate: SQLite FTS5 is measured beside walstore on the same
//! corpus in `benches/peers`. Run: `cargo bench --bench fts`
//! (`WALSTORE_FTS_CORPUS_MB=100 cargo bench --bench fts` for the whole corpus).
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

mod common;
#[path = "common/corpus.rs"]
mod corpus;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use walstore::fts::DocTerms;
use walstore::{Durability, Store};

const BATCH: usize = 256;

fn build(dir: &Path, docs: &[corpus::Doc]) -> Store {
    build_with(Store::options(), dir, docs)
}

fn build_with(options: walstore::Options, dir: &Path, docs: &[corpus::Doc]) -> Store {
    let store = options
        .durability(Durability::Immediate)
        .open(dir)
        .expect("open store");
    for batch in docs.chunks(BATCH) {
        let mut txn = store.begin_write();
        for doc in batch {
            txn.index_doc(&doc.id, &doc.text);
        }
        txn.commit().expect("commit");
    }
    store
}

fn quantiles(name: &str, mut samples: Vec<Duration>) {
    println!(
        "fts/{name}: p50 {} p99 {} (n={})",
        common::fmt_duration(common::quantile(&mut samples, 0.5)),
        common::fmt_duration(common::quantile(&mut samples, 0.99)),
        samples.len()
    );
}

fn fts(c: &mut Criterion) {
    let docs = corpus::load(corpus::cap_bytes());
    let source_bytes: u64 = docs.iter().map(|d| d.text.len() as u64).sum();
    println!(
        "fts: corpus {} documents, {:.1} MB of *.rs from {}",
        docs.len(),
        source_bytes as f64 / 1e6,
        corpus::root().display()
    );

    // The first build, untimed by criterion: kept for the queries; memory and size.
    let keep = common::bench_dir();
    let rss_before = common::rss_kib().unwrap_or(0);
    let started = Instant::now();
    let store = build(&keep.path().join("store"), &docs);
    let elapsed = started.elapsed();
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!(
        "fts: first build {:.1} MB/s ({}); peak resident memory {:.0} MiB above the {:.0} MiB \
         before the build",
        source_bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        common::fmt_duration(elapsed),
        hwm.saturating_sub(rss_before) as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    let wal_size = common::dir_allocated_bytes(store.dir());
    store.checkpoint().expect("checkpoint");
    let checkpointed = common::dir_allocated_bytes(store.dir());
    println!(
        "fts: store size / source size: {:.2}× after the build (WAL), {:.2}× after a \
         checkpoint ({:.1} MB)",
        wal_size as f64 / source_bytes as f64,
        checkpointed as f64 / source_bytes as f64,
        checkpointed as f64 / 1e6
    );
    {
        // The same build with `keep_fallback(true)`: the snapshot and, as its fallback,
        // the WAL since the empty store.
        let with_fallback = common::bench_dir();
        let store = build_with(
            Store::options().keep_fallback(true),
            &with_fallback.path().join("store"),
            &docs,
        );
        store.checkpoint().expect("checkpoint");
        let size = common::dir_allocated_bytes(store.dir());
        println!(
            "fts: store size / source size with keep_fallback(true): {:.2}× after the build \
             and a checkpoint ({:.1} MB)",
            size as f64 / source_bytes as f64,
            size as f64 / 1e6
        );
    }

    let mut group = c.benchmark_group("fts");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(12))
        .throughput(Throughput::Bytes(source_bytes));
    group.bench_function("index_build", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = common::bench_dir();
                let started = Instant::now();
                let store = build(&dir.path().join("store"), &docs);
                total += started.elapsed();
                drop(store);
            }
            total
        });
    });

    // Replace one ~5 KB document, durably.
    let doc = docs
        .iter()
        .min_by_key(|d| d.text.len().abs_diff(5_000))
        .expect("a document");
    let edited = format!("{}\n// edited: atomicWriteJson retry\n", doc.text);
    println!(
        "fts: replaced document {} ({} bytes, {} distinct terms)",
        doc.id,
        doc.text.len(),
        DocTerms::from_text(&doc.text).terms.len()
    );
    let mut flip = false;
    let mut replace = || {
        flip = !flip;
        let mut txn = store.begin_write();
        txn.index_doc(&doc.id, if flip { &edited } else { &doc.text });
        txn.commit().expect("commit")
    };
    group
        .sample_size(50)
        .sampling_mode(SamplingMode::Auto)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    group.bench_function("replace_5k_doc", |b| b.iter(&mut replace));
    let mut samples = Vec::new();
    for _ in 0..1_000 {
        let started = Instant::now();
        replace();
        samples.push(started.elapsed());
    }
    quantiles("replace_5k_doc (1,000 durable commits)", samples);

    // Queries.
    let [rare, medium, fifth, half, frequent] = corpus::pick_terms(&docs);
    println!(
        "fts: terms (document frequency of {}): rare {} ({}), medium {} ({}), {} ({}), {} ({}), \
         frequent {} ({})",
        docs.len(),
        rare.0,
        rare.1,
        medium.0,
        medium.1,
        fifth.0,
        fifth.1,
        half.0,
        half.1,
        frequent.0,
        frequent.1
    );
    let queries = [
        ("1_term_rare", rare.0.clone()),
        ("1_term_medium", medium.0.clone()),
        ("1_term_frequent", frequent.0.clone()),
        ("2_term_or", format!("{} {}", medium.0, fifth.0)),
        ("3_term_or", format!("{} {} {}", medium.0, fifth.0, half.0)),
        ("prefix", "wri*".to_owned()),
    ];
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    let read = store.read();
    for (name, query) in &queries {
        let results = read.search(query, 10).expect("search");
        println!(
            "fts: query {name} {query:?}: {} matches, {} terms",
            results.total_matches,
            results.terms.len()
        );
        group.bench_function(BenchmarkId::new("query", name), |b| {
            b.iter(|| read.search(query, 10).expect("search"));
        });
        let mut samples = Vec::new();
        let end = Instant::now() + Duration::from_secs(1);
        while Instant::now() < end || samples.len() < 20 {
            let started = Instant::now();
            let _ = read.search(query, 10).expect("search");
            samples.push(started.elapsed());
        }
        quantiles(&format!("query/{name}"), samples);
    }

    // Cold open + first query.
    // Open as it is after the replace commits (un-checkpointed WAL to replay), once, then
    // checkpoint twice (the second drops the WAL the first keeps) and measure from there.
    let dir = store.dir().to_path_buf();
    drop(read);
    let wal_bytes = common::dir_allocated_bytes(&dir);
    let started = Instant::now();
    let reopened = Store::open_read_only(&dir).expect("open");
    let _ = reopened.read().search(&queries[1].1, 10).expect("search");
    println!(
        "fts: warm open + first query before a checkpoint (store {:.1} MB, WAL to replay): {}",
        wal_bytes as f64 / 1e6,
        common::fmt_duration(started.elapsed())
    );
    drop(reopened);
    store.checkpoint().expect("checkpoint");
    store.checkpoint().expect("checkpoint");
    store.close().expect("close");
    let cold = common::drop_caches();
    let name = if cold {
        "cold_open_first_query"
    } else {
        "warm_open_first_query"
    };
    if !cold {
        println!("fts: cannot drop the page cache here (not root?): open measured warm");
    }
    let query = &queries[1].1;
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(6));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if cold {
                    common::drop_caches();
                }
                let started = Instant::now();
                let store = Store::open_read_only(&dir).expect("open");
                let results = store.read().search(query, 10).expect("search");
                total += started.elapsed();
                assert!(!results.hits.is_empty(), "hits");
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, fts);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
