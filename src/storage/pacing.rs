//! Paced write-back: a long background write (a snapshot, a spare segment) pushes what it
//! wrote to the device in steps, so that a commit's `fdatasync` never queues behind
//! megabytes of someone else's dirty pages.
//!
//! Why: an `fdatasync` ends with a device cache flush, which waits for every write the
//! device holds, the snapshot's included. Measured here (scratch harness: one thread
//! appending 128 bytes + `fdatasync`, another writing 53 MB snapshots back to back):
//! commit p99 rose from 0.2 ms to 24.6 ms with plain writes and one final `fdatasync`,
//! to 1.0 ms with 1 MiB synchronous write-back steps, and to 0.26 ms (1.4×) with 64 KiB
//! steps. Small steps cost throughput (a snapshot took 108–123 ms alone against 53 ms),
//! so they are taken only while durable commits are running; otherwise write-back is
//! started as data is written and waited for [`IDLE_AHEAD_BYTES`] behind. While commits
//! run, each step also waits for its turn ([`Foreground::wait_turn`]): it starts after a
//! commit's sync ends, so steps and syncs take turns on the device; and after each step it
//! rests ([`Foreground::rest_after`]), so that steps take only a share of the device's
//! time and delay only a few commits (`store/activity.rs`, `BUSY_SHARE_INVERSE`).

use std::cell::Cell;
use std::path::Path;

use super::StorageFile;
use crate::error::{Error, Result};

/// Bytes written, then written back and waited for, at a time while commits are running.
/// Scratch runs of the store under back-to-back checkpoints: commit p99 476–596 µs with
/// 64 KiB (13 checkpoints in 5 s), 480–485 µs with 128 KiB (19–20), 520–631 µs with
/// 256 KiB (18–21), 880–934 µs with 1 MiB.
pub const BUSY_STEP_BYTES: u64 = 128 * 1024;
/// Bytes written at a time while no commit runs; write-back starts after each.
pub const IDLE_PIECE_BYTES: u64 = 1024 * 1024;
/// Bytes whose write-back may be in flight, not waited for, while no commit runs: what a
/// commit arriving then may queue behind (about 6 ms here). 4 MiB made an idle snapshot
/// of the 1M store slower (62–73 ms against 60–61 ms, noisy).
pub const IDLE_AHEAD_BYTES: u64 = 8 * 1024 * 1024;

const _: () = assert!(BUSY_STEP_BYTES > 0 && BUSY_STEP_BYTES <= IDLE_PIECE_BYTES);
const _: () = assert!(IDLE_PIECE_BYTES < IDLE_AHEAD_BYTES);

/// The work a paced writer gives way to: durable commits.
pub trait Foreground {
    /// Whether durable commits are running now.
    fn busy(&self) -> bool;
    /// Waits, for a bounded time, until the sync of the commit running now ends, so that
    /// the next write-back step does not delay it. Called only while [`Foreground::busy`].
    fn wait_turn(&self);
    /// Called after a write-back step taken while busy, which took `step`: pauses so that
    /// steps keep the device for only a share of the time. The default does not pause.
    fn rest_after(&self, _step: std::time::Duration) {}
}

/// No foreground work: write-back at full speed (a test, a one-off write).
#[derive(Debug, Clone, Copy)]
pub struct NoForeground;

impl Foreground for NoForeground {
    fn busy(&self) -> bool {
        false
    }

    fn wait_turn(&self) {}
}

/// Appends to a file from offset 0, pushing what it wrote to the device as it goes.
///
/// While the foreground is busy, it writes [`BUSY_STEP_BYTES`] at a time and waits for
/// each step's write-back before writing the next: ext4 writes back whole delayed-allocation
/// extents, so a 64 KiB write-back of a larger dirty run pushes out all of it (measured
/// with 1 MiB writes: commit p99 8–15× instead of 1.7×).
pub struct PacedWriter<'a> {
    file: &'a dyn StorageFile,
    path: &'a Path,
    /// What gets the device first.
    foreground: &'a dyn Foreground,
    /// Bytes written (the next append goes here).
    written: u64,
    /// Write-back was started up to here.
    started: u64,
    /// Write-back was waited for up to here.
    waited: u64,
    /// Set when a write-back call failed: the caller must treat it as a failed sync.
    sync_failed: &'a Cell<bool>,
}

impl std::fmt::Debug for PacedWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacedWriter")
            .field("path", &self.path)
            .field("written", &self.written)
            .field("started", &self.started)
            .field("waited", &self.waited)
            .finish_non_exhaustive()
    }
}

impl<'a> PacedWriter<'a> {
    /// A writer appending to `file` (empty) from offset 0. A failed write-back sets
    /// `sync_failed`.
    pub fn new(
        file: &'a dyn StorageFile,
        path: &'a Path,
        foreground: &'a dyn Foreground,
        sync_failed: &'a Cell<bool>,
    ) -> Self {
        PacedWriter {
            file,
            path,
            foreground,
            written: 0,
            started: 0,
            waited: 0,
            sync_failed,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `bytes`. A failed write-back also sets `sync_failed`: what was written may
    /// be lost (see [`StorageFile::write_back`]).
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let busy = self.foreground.busy();
            let piece_bytes = if busy {
                BUSY_STEP_BYTES
            } else {
                IDLE_PIECE_BYTES
            };
            let piece_bytes = usize::try_from(piece_bytes).unwrap_or(usize::MAX);
            let (piece, after) = rest.split_at(rest.len().min(piece_bytes));
            if busy {
                self.foreground.wait_turn();
                let step_started = std::time::Instant::now();
                self.write(piece)?;
                // Also settles what earlier idle appends left in flight.
                self.wait_up_to(self.written)?;
                self.foreground.rest_after(step_started.elapsed());
            } else {
                self.write(piece)?;
                self.start_up_to(self.written)?;
                self.wait_up_to(self.written.saturating_sub(IDLE_AHEAD_BYTES))?;
            }
            rest = after;
        }
        debug_assert!(self.waited <= self.started && self.started <= self.written);
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all_at(bytes, self.written)
            .map_err(|e| Error::io("write", self.path, e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn start_up_to(&mut self, end: u64) -> Result<()> {
        if end > self.started {
            let started = self.file.start_write_back(self.started, end - self.started);
            self.sync_result(started)?;
            self.started = end;
        }
        Ok(())
    }

    fn wait_up_to(&mut self, end: u64) -> Result<()> {
        if end > self.waited {
            let waited = self.file.write_back(self.waited, end - self.waited);
            self.sync_result(waited)?;
            self.waited = end;
            self.started = self.started.max(end);
        }
        Ok(())
    }

    fn sync_result(&self, result: std::io::Result<()>) -> Result<()> {
        result.map_err(|e| {
            self.sync_failed.set(true);
            Error::io("sync_file_range", self.path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Mutex;

    use super::*;
    use crate::storage::Mapped;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Call {
        Write(u64, u64),
        Start(u64, u64),
        Wait(u64, u64),
    }

    /// Records calls as `Call`s of `(offset, len)`; fails writes or write-backs on demand.
    #[derive(Debug, Default)]
    struct Recorder {
        calls: Mutex<Vec<Call>>,
        fail_write_back: bool,
        fail_write: bool,
    }

    impl Recorder {
        fn calls(&self) -> Vec<Call> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }

        fn record(&self, call: Call, fail: bool) -> io::Result<()> {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(call);
            }
            match fail {
                true => Err(io::Error::from_raw_os_error(5)),
                false => Ok(()),
            }
        }
    }

    impl StorageFile for Recorder {
        fn read_exact_at(&self, _: &mut [u8], _: u64) -> io::Result<()> {
            Ok(())
        }
        fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.record(Call::Write(offset, buf.len() as u64), self.fail_write)
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
        fn start_write_back(&self, offset: u64, len: u64) -> io::Result<()> {
            self.record(Call::Start(offset, len), self.fail_write_back)
        }
        fn write_back(&self, offset: u64, len: u64) -> io::Result<()> {
            self.record(Call::Wait(offset, len), self.fail_write_back)
        }
        fn len(&self) -> io::Result<u64> {
            Ok(0)
        }
        fn set_len(&self, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn map(&self) -> io::Result<Mapped> {
            Ok(Mapped::from_bytes(Vec::new()))
        }
        fn is_unlinked(&self) -> io::Result<bool> {
            Ok(false)
        }
    }

    /// Busy from the `busy_from`-th question on; counts the turns waited for.
    struct Scripted {
        asked: Cell<u32>,
        busy_from: u32,
        turns: Cell<u32>,
        rests: Cell<u32>,
    }

    impl Scripted {
        fn new(busy_from: u32) -> Self {
            Scripted {
                asked: Cell::new(0),
                busy_from,
                turns: Cell::new(0),
                rests: Cell::new(0),
            }
        }
    }

    impl Foreground for Scripted {
        fn busy(&self) -> bool {
            self.asked.set(self.asked.get() + 1);
            self.asked.get() >= self.busy_from
        }

        fn wait_turn(&self) {
            assert!(self.asked.get() >= self.busy_from, "a turn only while busy");
            self.turns.set(self.turns.get() + 1);
        }

        fn rest_after(&self, _step: std::time::Duration) {
            assert!(self.asked.get() >= self.busy_from, "a rest only while busy");
            self.rests.set(self.rests.get() + 1);
        }
    }

    const APPEND_BYTES: usize = 1_000_000;
    const APPENDS: u64 = 20;
    const TOTAL_BYTES: u64 = APPENDS * APPEND_BYTES as u64;

    fn run(file: &Recorder, foreground: &dyn Foreground) -> Result<()> {
        let failed = Cell::new(false);
        let mut out = PacedWriter::new(file, Path::new("f"), foreground, &failed);
        let bytes = vec![1u8; APPEND_BYTES];
        for _ in 0..APPENDS {
            out.append(&bytes)?;
        }
        assert_eq!(out.written(), TOTAL_BYTES);
        assert!(!failed.get());
        Ok(())
    }

    /// The ranges of one kind of call, checked to be contiguous from 0; returns their end.
    fn contiguous(calls: &[Call], pick: fn(&Call) -> Option<(u64, u64)>) -> u64 {
        calls.iter().filter_map(pick).fold(0, |end, (offset, len)| {
            assert_eq!(offset, end, "{calls:?}");
            end + len
        })
    }

    fn writes(call: &Call) -> Option<(u64, u64)> {
        match *call {
            Call::Write(offset, len) => Some((offset, len)),
            _ => None,
        }
    }

    fn waits(call: &Call) -> Option<(u64, u64)> {
        match *call {
            Call::Wait(offset, len) => Some((offset, len)),
            _ => None,
        }
    }

    #[test]
    fn while_busy_each_step_is_written_then_written_back_before_the_next() -> Result<()> {
        let file = Recorder::default();
        let foreground = Scripted::new(0);
        run(&file, &foreground)?;
        let calls = file.calls();
        assert_eq!(contiguous(&calls, writes), TOTAL_BYTES);
        assert_eq!(contiguous(&calls, waits), TOTAL_BYTES);
        for pair in calls.chunks(2) {
            match pair {
                [Call::Write(offset, len), Call::Wait(at, waited)] => {
                    assert!(*len <= BUSY_STEP_BYTES);
                    assert_eq!((offset, len), (at, waited));
                }
                other => panic!("not a write then its write-back: {other:?}"),
            }
        }
        assert_eq!(foreground.turns.get() as usize, calls.len() / 2);
        assert_eq!(
            foreground.rests.get(),
            foreground.turns.get(),
            "a rest after each step"
        );
        Ok(())
    }

    #[test]
    fn while_idle_write_back_starts_at_once_and_is_waited_for_far_behind() -> Result<()> {
        let file = Recorder::default();
        run(&file, &NoForeground)?;
        let calls = file.calls();
        let pieces = (APPEND_BYTES as u64).div_ceil(IDLE_PIECE_BYTES);
        assert_eq!(
            calls.iter().filter_map(writes).count() as u64,
            APPENDS * pieces
        );
        assert!(
            calls
                .iter()
                .filter_map(writes)
                .all(|w| w.1 <= IDLE_PIECE_BYTES)
        );
        let started = contiguous(&calls, |c| match *c {
            Call::Start(offset, len) => Some((offset, len)),
            _ => None,
        });
        assert_eq!(started, TOTAL_BYTES);
        assert_eq!(contiguous(&calls, waits), TOTAL_BYTES - IDLE_AHEAD_BYTES);
        Ok(())
    }

    #[test]
    fn from_idle_to_busy_what_was_started_is_settled_with_the_first_step() -> Result<()> {
        let file = Recorder::default();
        run(&file, &Scripted::new(4))?;
        let calls = file.calls();
        assert_eq!(contiguous(&calls, writes), TOTAL_BYTES);
        assert_eq!(contiguous(&calls, waits), TOTAL_BYTES);
        Ok(())
    }

    #[test]
    fn a_failed_write_back_is_a_failed_sync_and_a_failed_write_is_not() {
        let busy = Scripted::new(0);
        let foregrounds: [&dyn Foreground; 2] = [&busy, &NoForeground];
        for foreground in foregrounds {
            for (fail_write_back, fail_write) in [(true, false), (false, true)] {
                let file = Recorder {
                    fail_write_back,
                    fail_write,
                    ..Recorder::default()
                };
                let failed = Cell::new(false);
                let mut out = PacedWriter::new(&file, Path::new("f"), foreground, &failed);
                assert!(out.append(&[0u8; 10]).is_err());
                assert_eq!(failed.get(), fail_write_back);
            }
        }
    }
}
