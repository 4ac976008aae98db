//! Group commit: 1, 4 and 16 threads each committing one fingerprint upsert per
//! transaction with `Durability::Immediate`, into one store (issue 6, goal 2).
//!
//! - `group_commit/threads/N`: criterion measures the wall time for every thread to make
//!   `COMMITS_PER_THREAD` durable commits (`iter_custom`); the throughput line is total
//!   durable commits/s. The baseline is the 1-thread figure of the same run: the goal is
//!   ×3 at 4 threads and ×6 at 16.
//! - Then separate timed runs, interleaved between thread counts (6 rounds of 0.5 s each)
//!   so drift in the disk's fsync latency hits them alike, print commits/s, the ratio to
//!   one thread, p50/p99 commit latency and fairness: each thread's share of the commits
//!   (min and max; even is 1/N).
//!
//! Run: `cargo bench --bench group_commit`.
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use walstore::{Durability, Store};

const COMMITS_PER_THREAD: u64 = 16;
const THREADS: [usize; 3] = [1, 4, 16];
const ROUNDS: usize = 6;
const ROUND: Duration = Duration::from_millis(500);

fn open_store(dir: &std::path::Path) -> Arc<Store> {
    Arc::new(
        Store::options()
            .durability(Durability::Immediate)
            .checkpoint_wal_bytes(0)
            .open(dir)
            .expect("open store"),
    )
}

fn commit_one(store: &Store, thread: usize, i: u64) {
    let mut txn = store.begin_write();
    txn.put_fingerprint(
        common::NS,
        &format!("src/t{thread:02}/file{:05}.rs", i % 10_000),
        common::fingerprint(i, thread as u64 + 1),
    );
    txn.commit().expect("commit");
}

/// Runs `threads` threads, each making `per_thread` commits; returns the wall time from
/// the common start to the last commit.
fn run(store: &Arc<Store>, threads: usize, per_thread: u64, round: &mut u64) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let base = *round;
    *round += per_thread;
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    commit_one(store, t, base + i);
                }
            });
        }
        barrier.wait();
        let started = Instant::now();
        // The scope joins every thread before returning.
        started
    })
    .elapsed()
}

fn group_commit(c: &mut Criterion) {
    let dir = common::bench_dir();
    let store = open_store(&dir.path().join("store"));
    let mut group = c.benchmark_group("group_commit");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let mut round = 0u64;
    for threads in THREADS {
        group.throughput(Throughput::Elements(COMMITS_PER_THREAD * threads as u64));
        group.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iters| run(&store, threads, iters * COMMITS_PER_THREAD, &mut round));
        });
    }
    group.finish();
    fairness(&store);
}

/// Timed runs, interleaved between thread counts in short rounds so that drift in the
/// disk's fsync latency hits every thread count alike: commits/s, latency, fairness.
fn fairness(store: &Arc<Store>) {
    println!();
    println!(
        "group commit, {ROUNDS} rounds of {} ms per thread count, interleaved; \
         Durability::Immediate, one upsert per commit",
        ROUND.as_millis()
    );
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); THREADS.len()];
    let mut counts: Vec<Vec<usize>> = THREADS.iter().map(|&t| vec![0; t]).collect();
    let mut elapsed = vec![Duration::ZERO; THREADS.len()];
    for round in 0..ROUNDS {
        for (k, &threads) in THREADS.iter().enumerate() {
            let barrier = Barrier::new(threads + 1);
            let deadline = std::sync::OnceLock::new();
            let started = std::sync::OnceLock::new();
            let results: Vec<Vec<Duration>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let barrier = &barrier;
                        let deadline: &std::sync::OnceLock<Instant> = &deadline;
                        s.spawn(move || {
                            barrier.wait();
                            let end = *deadline.wait();
                            let mut latencies = Vec::new();
                            let mut i = 0u64;
                            while Instant::now() < end {
                                let started = Instant::now();
                                commit_one(store, t, 1_000_000 * (round as u64 + 1) + i);
                                latencies.push(started.elapsed());
                                i += 1;
                            }
                            latencies
                        })
                    })
                    .collect();
                barrier.wait();
                let now = Instant::now();
                started.set(now).expect("start set once");
                deadline.set(now + ROUND).expect("deadline set once");
                handles
                    .into_iter()
                    .map(|h| h.join().expect("thread"))
                    .collect()
            });
            elapsed[k] += started.get().map_or(Duration::ZERO, Instant::elapsed);
            for (t, l) in results.into_iter().enumerate() {
                counts[k][t] += l.len();
                latencies[k].extend(l);
            }
        }
    }
    println!("threads  commits/s  ×1-thread  p50        p99        min share  max share  (even)");
    let mut single = 0.0;
    for (k, &threads) in THREADS.iter().enumerate() {
        let total: usize = counts[k].iter().sum();
        let rate = total as f64 / elapsed[k].as_secs_f64();
        if threads == 1 {
            single = rate;
        }
        let share = |n: usize| 100.0 * n as f64 / total.max(1) as f64;
        println!(
            "{threads:>7}  {rate:>9.0}  {:>8.2}×  {:<9}  {:<9}  {:>8.2}%  {:>8.2}%  ({:.2}%)",
            rate / single,
            common::fmt_duration(common::quantile(&mut latencies[k], 0.50)),
            common::fmt_duration(common::quantile(&mut latencies[k], 0.99)),
            share(counts[k].iter().copied().min().unwrap_or(0)),
            share(counts[k].iter().copied().max().unwrap_or(0)),
            100.0 / threads as f64,
        );
    }
}

criterion_group!(benches, group_commit);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
