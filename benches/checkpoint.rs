//! Checkpoint: snapshotting 1,000,000 fingerprints, and commit latency while one runs
//! (issue 6, goal 7).
//!
//! - `checkpoint_1m/walstore_checkpoint`: one upsert (outside the timing), then
//!   `Store::checkpoint` of the 1,000,000-fingerprint store (cached in `target/bench-data/`):
//!   writes the whole snapshot (temp, fdatasync, rename, directory fsync) and drops what
//!   it makes unnecessary. Goal: at most 2× the baseline.
//! - `checkpoint_1m/walstore_checkpoint_insert_at_start`: the same after inserting or
//!   deleting a key that sorts before every fingerprint, so no data block of the old
//!   snapshot can be copied as it is and every entry is re-encoded (the worst case).
//! - `checkpoint_1m/walstore_checkpoint_no_parity`: the first, with
//!   `snapshot_parity(false)`: no `<lsn>.par` sidecar (6.3 % more bytes, and its sync).
//! - `checkpoint_1m/raw_write_fsync` (the baseline): write the same number of bytes as the
//!   snapshot into a new file (1 MiB writes), then `fsync`.
//! - Printed: durable-commit p50/p99 on one thread without a checkpoint, and while
//!   checkpoints run back to back on another thread, in 5 rounds of each, in turn: 1 s
//!   without; 1 s with, then on until the checkpoint running then has ended, so that every
//!   checkpoint is measured whole, its end (sync, rename, prune) included (the count
//!   printed is of checkpoints that wrote a snapshot; one that found nothing new sleeps
//!   1 ms). Goal: p99 at most 2×. Then how many commits took over 1 ms in each phase, and
//!   p95 / p98, and how long a checkpoint took beside the commits.
//!
//! Run: `cargo bench --bench checkpoint`.
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "criterion macros generate undocumented items; a bench fails loudly"
)]

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use walstore::{Durability, Store};

const N: u64 = 1_000_000;
/// Rounds of commit latency measured without, then with, checkpoints running.
const LATENCY_ROUNDS: usize = 5;
const LATENCY_ROUND: Duration = Duration::from_secs(1);

/// Sets its flag when dropped, panicking or not.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn touch(store: &Store, i: u64, durability: Durability) {
    let k = (i * 7_919) % N;
    let mut txn = store.begin_write();
    txn.set_durability(durability).put_fingerprint(
        common::NS,
        &common::path(k),
        common::fingerprint(k, i),
    );
    txn.commit().expect("commit");
}

/// One upsert (outside the timing), then a timed checkpoint that writes a snapshot.
fn bench_checkpoint(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    store: &Store,
    i: &mut u64,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                *i += 1;
                touch(store, *i, Durability::None);
                let started = Instant::now();
                let report = store.checkpoint().expect("checkpoint");
                total += started.elapsed();
                assert!(report.written, "a snapshot was written");
            }
            total
        });
    });
}

fn checkpoint(c: &mut Criterion) {
    let dir = common::cached_store("fp-1m-write", N);
    let store = Store::options()
        .durability(Durability::Immediate)
        .checkpoint_wal_bytes(0)
        .open(&dir)
        .expect("open store");
    let mut i = 0u64;
    touch(&store, i, Durability::None);
    let report = store.checkpoint().expect("checkpoint");
    let snapshot_bytes = report.bytes;
    println!(
        "checkpoint_1m: snapshot of {} entries, {:.1} MB",
        report.entries,
        snapshot_bytes as f64 / 1e6
    );

    let mut group = c.benchmark_group("checkpoint_1m");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    bench_checkpoint(&mut group, "walstore_checkpoint", &store, &mut i);

    // The worst case for block copying: a key inserted (or deleted) before every other
    // fingerprint shifts every later block boundary, so every block is re-encoded.
    group.bench_function("walstore_checkpoint_insert_at_start", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                let mut txn = store.begin_write();
                txn.set_durability(Durability::None);
                if i.is_multiple_of(2) {
                    txn.put_fingerprint(common::NS, "0-first", common::fingerprint(0, i));
                } else {
                    txn.delete_fingerprint(common::NS, "0-first");
                }
                txn.commit().expect("commit");
                let started = Instant::now();
                let report = store.checkpoint().expect("checkpoint");
                total += started.elapsed();
                assert!(report.written, "a snapshot was written");
            }
            total
        });
    });
    // Leave the cached store with its N entries (other benches share it).
    let mut txn = store.begin_write();
    txn.delete_fingerprint(common::NS, "0-first");
    txn.commit().expect("commit");

    // The same checkpoint without the parity sidecar: what the sidecar costs.
    drop(store);
    let store = Store::options()
        .durability(Durability::Immediate)
        .checkpoint_wal_bytes(0)
        .snapshot_parity(false)
        .open(&dir)
        .expect("open store");
    bench_checkpoint(&mut group, "walstore_checkpoint_no_parity", &store, &mut i);
    drop(store);
    let store = Store::options()
        .durability(Durability::Immediate)
        .checkpoint_wal_bytes(0)
        .open(&dir)
        .expect("open store");

    let raw_dir = common::bench_dir();
    let chunk = vec![0x5au8; 1 << 20];
    let mut k = 0u64;
    group.bench_function("raw_write_fsync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                k += 1;
                let path = raw_dir.path().join(format!("{k}.snap"));
                let started = Instant::now();
                let mut file = std::fs::File::create(&path).expect("create");
                let mut left = snapshot_bytes;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    file.write_all(&chunk[..n]).expect("write");
                    left -= n as u64;
                }
                file.sync_all().expect("fsync");
                total += started.elapsed();
                drop(file);
                std::fs::remove_file(&path).expect("remove");
            }
            total
        });
    });
    group.finish();

    // Commit latency without, and with, checkpoints running: rounds of each in turn, so
    // that drift in the disk's latency hits both alike (one phase after the other, the
    // baseline's own p99 moved between 256 and 551 µs from run to run).
    let mut without = Vec::new();
    let mut with = Vec::new();
    let active = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    // Held by the checkpointer while it checks `active` and checkpoints: taking it
    // after clearing `active` waits for a checkpoint in flight, and no new one starts.
    let running = parking_lot::Mutex::new(());
    let mut checkpoints = 0u32;
    let mut checkpoint_time = Duration::ZERO;
    std::thread::scope(|s| {
        let checkpointer = s.spawn(|| {
            let mut n = 0u32;
            let mut took = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                let guard = running.lock();
                // Back to back, but without spinning on a core while nothing changed.
                let written = active
                    .load(Ordering::SeqCst)
                    .then(|| store.checkpoint().expect("checkpoint"))
                    .filter(|report| report.written);
                drop(guard);
                match written {
                    None => std::thread::sleep(Duration::from_millis(1)),
                    Some(report) => {
                        n += 1;
                        took += report.duration;
                    }
                }
            }
            (n, took)
        });
        let mut measure = |into: &mut Vec<Duration>, whole_checkpoints: bool| {
            let end = Instant::now() + LATENCY_ROUND;
            loop {
                if Instant::now() >= end {
                    if !whole_checkpoints {
                        break;
                    }
                    // Start no more checkpoints, and go on until the one running ends:
                    // each checkpoint is measured whole, its sync, rename and prune too.
                    active.store(false, Ordering::SeqCst);
                    if running.try_lock().is_some() {
                        break;
                    }
                }
                i += 1;
                let started = Instant::now();
                touch(&store, i, Durability::Immediate);
                into.push(started.elapsed());
            }
        };
        // A failed commit below must still stop the checkpointer, or the scope would
        // wait for it for ever instead of reporting the failure.
        let _stop_on_exit = StopOnDrop(&stop);
        for _ in 0..LATENCY_ROUNDS {
            active.store(false, Ordering::SeqCst);
            drop(running.lock());
            measure(&mut without, false);
            active.store(true, Ordering::SeqCst);
            measure(&mut with, true);
        }
        stop.store(true, Ordering::SeqCst);
        (checkpoints, checkpoint_time) = checkpointer.join().expect("checkpointer");
    });
    let p = |v: &mut Vec<Duration>, q| common::fmt_duration(common::quantile(v, q));
    let p99_without = common::quantile(&mut without, 0.99);
    let p99_with = common::quantile(&mut with, 0.99);
    println!(
        "checkpoint_1m: commit latency without a checkpoint: p50 {} p99 {} max {} ({} commits)",
        p(&mut without, 0.5),
        p(&mut without, 0.99),
        p(&mut without, 1.0),
        without.len()
    );
    println!(
        "checkpoint_1m: commit latency during checkpoints:  p50 {} p99 {} max {} ({} commits, \
         {checkpoints} checkpoints); p99 ratio {:.2}×",
        p(&mut with, 0.5),
        p(&mut with, 0.99),
        p(&mut with, 1.0),
        with.len(),
        p99_with.as_secs_f64() / p99_without.as_secs_f64()
    );
    // The shape of the tail: how many commits were slow, per checkpoint.
    let slow = |v: &[Duration]| v.iter().filter(|d| **d > Duration::from_millis(1)).count();
    println!(
        "checkpoint_1m: commits over 1 ms: {} of {} without, {} of {} during ({:.1} per \
         checkpoint); p95 / p98 during: {} / {}; a checkpoint took {} beside the commits",
        slow(&without),
        without.len(),
        slow(&with),
        with.len(),
        slow(&with) as f64 / f64::from(checkpoints.max(1)),
        p(&mut with, 0.95),
        p(&mut with, 0.98),
        common::fmt_duration(checkpoint_time / checkpoints.max(1))
    );
}

criterion_group!(benches, checkpoint);
criterion_main!(benches);
