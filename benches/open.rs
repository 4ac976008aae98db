//! Open: a checkpointed store of 1,000,000 fingerprints (issue 6, goal 5).
//!
//! - `open_1m/{read_only,read_write}_get_warm`: open + get one key + close, in this
//!   process, page cache warm.
//! - `open_1m/cold_fresh_process_get`: the page cache is dropped (`echo 3 >
//!   /proc/sys/vm/drop_caches`, needs root; skipped with a note otherwise), then this bench
//!   binary is re-run as a child which times its own read-only open + get (the figure
//!   reported); the wall time of the whole child and its resident memory are printed.
//! - `open_1m/json_parse_get` (the baseline): read the same 1,000,000 fingerprints as one
//!   JSON file, parse it with serde_json, get one key (warm). Goal: cold open ≥ 100× faster.
//! - `open_1m/full_scan_warm`: iterate all 1,000,000 fingerprints (decoded, owned);
//!   `open_1m/full_scan_warm_borrowed`: the same through `for_each_fingerprint`.
//! - Printed: on-disk size of the store and of the JSON file; resident memory after open.
//!
//! The store and the JSON file are built once and cached in `target/bench-data/`.
//! Run: `cargo bench --bench open` (as root for the cold figure).
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use walstore::Store;

const N: u64 = 1_000_000;
const CHILD_ENV: &str = "WALSTORE_BENCH_OPEN_CHILD";

fn key() -> String {
    common::path(N / 2 + 17)
}

/// In the child: open read-only, get one key, print `open_get_ns rss_before rss_after`.
fn child(dir: &str) {
    let rss_before = common::rss_kib().unwrap_or(0);
    let started = Instant::now();
    let store = Store::open_read_only(dir).expect("open");
    let fp = store.read().fingerprint(common::NS, &key()).expect("get");
    let elapsed = started.elapsed();
    assert!(fp.is_some(), "key present");
    let rss_after = common::rss_kib().unwrap_or(0);
    println!("{} {rss_before} {rss_after}", elapsed.as_nanos());
}

struct ChildRun {
    open_get: Duration,
    wall: Duration,
    rss_before_kib: u64,
    rss_after_kib: u64,
}

fn run_child(dir: &Path) -> ChildRun {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD_ENV, dir)
        .output()
        .expect("spawn child");
    let wall = started.elapsed();
    assert!(out.status.success(), "child failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("number"))
        .collect();
    ChildRun {
        open_get: Duration::from_nanos(fields[0]),
        wall,
        rss_before_kib: fields[1],
        rss_after_kib: fields[2],
    }
}

fn json_file() -> PathBuf {
    let file = common::data_dir("fp-1m.json");
    if !file.exists() {
        std::fs::create_dir_all(file.parent().expect("parent")).expect("data dir");
        common::json_atomic_rewrite(&common::json_index(N), &file).expect("write json");
    }
    file
}

fn open(c: &mut Criterion) {
    let dir = common::cached_store("fp-1m-open", N);
    let json = json_file();
    let mut group = c.benchmark_group("open_1m");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    group.bench_function("read_only_get_warm", |b| {
        b.iter(|| {
            let store = Store::open_read_only(&dir).expect("open");
            store.read().fingerprint(common::NS, &key()).expect("get")
        });
    });
    group.bench_function("read_write_get_warm", |b| {
        b.iter(|| {
            let store = Store::options()
                .checkpoint_wal_bytes(0)
                .open(&dir)
                .expect("open");
            let fp = store.read().fingerprint(common::NS, &key()).expect("get");
            store.close().expect("close");
            fp
        });
    });

    let cold = common::drop_caches();
    if !cold {
        println!("open_1m: cannot drop the page cache here (not root?): cold figure skipped");
    }
    let mut runs = Vec::new();
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    let name = if cold {
        "cold_fresh_process_get"
    } else {
        "warm_fresh_process_get"
    };
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if cold {
                    common::drop_caches();
                }
                let run = run_child(&dir);
                total += run.open_get;
                runs.push(run);
            }
            total
        });
    });
    if !runs.is_empty() {
        let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        let mut opens: Vec<Duration> = runs.iter().map(|r| r.open_get).collect();
        let mut rss: Vec<u64> = runs
            .iter()
            .map(|r| r.rss_after_kib.saturating_sub(r.rss_before_kib))
            .collect();
        rss.sort_unstable();
        println!(
            "open_1m/{name}: open+get median {} (n={}), whole child process median {}, \
             resident memory after open {} KiB (+{} KiB over the process before open)",
            common::fmt_duration(common::quantile(&mut opens, 0.5)),
            runs.len(),
            common::fmt_duration(common::quantile(&mut walls, 0.5)),
            runs.last().map_or(0, |r| r.rss_after_kib),
            rss[rss.len() / 2],
        );
    }

    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("json_parse_get", |b| {
        b.iter(|| {
            let bytes = std::fs::read(&json).expect("read json");
            let index: common::JsonIndex = serde_json::from_slice(&bytes).expect("parse");
            index
                .get(common::NS)
                .and_then(|m| m.get(&key()))
                .map(|fp| fp.size)
        });
    });

    let store = Store::open_read_only(&dir).expect("open");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Auto)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("full_scan_warm_borrowed", |b| {
        b.iter(|| {
            let read = store.read();
            let mut n = 0u64;
            let mut bytes = 0u64;
            read.for_each_fingerprint(common::NS, |path, fp| {
                n += 1;
                bytes += path.len() as u64 + fp.size;
                std::ops::ControlFlow::Continue(())
            })
            .expect("scan");
            assert_eq!(n, N);
            bytes
        });
    });
    group.bench_function("full_scan_warm", |b| {
        b.iter(|| {
            let read = store.read();
            let mut n = 0u64;
            let mut bytes = 0u64;
            for entry in read.fingerprints(common::NS).expect("scan") {
                let (path, fp) = entry.expect("entry");
                n += 1;
                bytes += path.len() as u64 + fp.size;
            }
            assert_eq!(n, N);
            bytes
        });
    });
    group.finish();

    let by_suffix = |suffix: &str| -> u64 {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
                    .sum()
            })
            .unwrap_or(0)
    };
    println!(
        "open_1m: on-disk size: store {:.1} MB allocated ({:.1} MB apparent): snapshot {:.1} MB, \
         WAL kept beside it {:.1} MB; JSON file {:.1} MB",
        common::dir_allocated_bytes(&dir) as f64 / 1e6,
        common::dir_bytes(&dir) as f64 / 1e6,
        by_suffix(".snap") as f64 / 1e6,
        by_suffix(".wal") as f64 / 1e6,
        std::fs::metadata(&json).map_or(0, |m| m.len()) as f64 / 1e6,
    );
}

criterion_group!(benches, open);

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(&dir.to_string_lossy());
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
