//! Keeping a zeroed spare segment ready (`wal::spare`), off the commit path.
//!
//! - A writer wants a spare once it has committed into a segment (so it is ready when
//!   that segment is full), and again each time a rotation used the spare.
//! - The background thread prepares it (or, without one, the committing thread after its
//!   commit returned to the store, as a checkpoint is run then).
//! - A rotation (the segment is full, or a checkpoint began) makes the next segment from
//!   the spare if one is ready, otherwise a sparse one as before. The segment a writer
//!   recovered at open, or created for an empty store, stays sparse until it rotates.
//! - Closing the store removes an unused spare; after a crash, open removes it.

use std::sync::atomic::Ordering;

/// Free space, in segments, below which no spare is prepared (and one being prepared is
/// given up): the spare's own and three for the log meanwhile.
const SPARE_ROOM_SEGMENTS: u64 = 4;

use super::{Inner, Pacing};
use crate::error::Result;
use crate::wal::segment::{self, ActiveSegment};
use crate::wal::spare::{self, SpareSegment};

/// Where the spare is. One file name serves every spare, so preparing one and turning
/// one into a segment must never overlap: `create_temp` removes a file of that name, and
/// a rename would move whatever file has it.
#[derive(Debug)]
pub(crate) enum SpareSlot {
    /// None, and none being made.
    Empty,
    /// Being written by `prepare_spare`.
    Preparing,
    /// Ready to be taken.
    Ready(SpareSegment),
    /// Being turned into a segment by `next_segment`.
    Taken,
}

impl Inner {
    /// Creates the segment whose first record has `first_lsn`, from the spare if one is
    /// ready (then asks for the next spare).
    pub(crate) fn next_segment(&self, first_lsn: u64) -> Result<ActiveSegment> {
        let taken = {
            let mut slot = self.spare.lock();
            match std::mem::replace(&mut *slot, SpareSlot::Empty) {
                SpareSlot::Ready(spare) => {
                    *slot = SpareSlot::Taken;
                    Some(spare)
                }
                other => {
                    *slot = other;
                    None
                }
            }
        };
        let Some(spare) = taken else {
            return segment::create(
                self.storage.as_ref(),
                &self.dir,
                self.store_id,
                first_lsn,
                self.options.segment_bytes,
            );
        };
        let created = segment::create_from(
            self.storage.as_ref(),
            &self.dir,
            self.store_id,
            first_lsn,
            spare,
        );
        // Only now may the next spare be written under the same name.
        *self.spare.lock() = SpareSlot::Empty;
        self.want_spare();
        created
    }

    /// After a group was written into `active`: asks for a spare, once per segment (so a
    /// disk too full for a spare is not asked at each commit).
    pub(crate) fn want_spare_for(&self, active: &ActiveSegment) {
        if self
            .spare_asked_for
            .swap(active.first_lsn, Ordering::Relaxed)
            != active.first_lsn
        {
            self.want_spare();
        }
    }

    /// Asks for a spare (once: repeated calls before it is prepared are one request).
    pub(crate) fn want_spare(&self) {
        let mut background = self.background.lock();
        if !background.spare_wanted {
            background.spare_wanted = true;
            self.wake_background(background);
        }
    }

    /// Prepares the spare if none is ready, giving way to commits or not (`pacing`). A
    /// failed write leaves none (commits go on into sparse segments, and the next rotation
    /// asks again); a failed `fdatasync` or write-back poisons the store.
    ///
    /// With `GiveWay` (the background thread), it first waits for a checkpoint writing its
    /// snapshot (see `Inner::run_work`), once it knows a spare is wanted.
    pub(crate) fn prepare_spare(&self, pacing: Pacing) {
        if self.read_only
            || self.poisoned.load(Ordering::Acquire)
            || !matches!(*self.spare.lock(), SpareSlot::Empty)
            || !self.room_for_spare()
        {
            return;
        }
        let _one_writer = (pacing == Pacing::GiveWay).then(|| self.checkpoint_lock.lock());
        {
            let mut slot = self.spare.lock();
            if !matches!(*slot, SpareSlot::Empty) {
                return;
            }
            *slot = SpareSlot::Preparing;
        }
        let mut sync_failed = false;
        let prepared = self.long_write(pacing, "walstore-spare", false, |foreground| {
            spare::prepare(
                self.storage.as_ref(),
                &self.dir,
                self.options.segment_bytes,
                &mut sync_failed,
                &|| {
                    !self.closing()
                        && !self.poisoned.load(Ordering::Acquire)
                        && self.room_for_spare()
                },
                foreground,
            )
        });
        let closing = self.closing();
        let mut slot = self.spare.lock();
        *slot = SpareSlot::Empty;
        match prepared {
            // A store closed meanwhile (a transaction outlived it) keeps no spare.
            Ok(ready) if closing => spare::discard(self.storage.as_ref(), ready),
            Ok(ready) => *slot = SpareSlot::Ready(ready),
            Err(error) if sync_failed => {
                drop(slot);
                let mut log = self.log.lock();
                let last = log.written_lsn;
                self.poison(&mut log, &error, last);
            }
            Err(_) => {}
        }
    }

    /// Whether the disk has room for a spare and still some to spare: it is a speed-up,
    /// and must never take the blocks a commit needs (on a nearly full disk, commits go
    /// on into sparse segments until space truly runs out).
    fn room_for_spare(&self) -> bool {
        let needed = self
            .options
            .segment_bytes
            .saturating_mul(SPARE_ROOM_SEGMENTS);
        self.storage
            .available_bytes(&self.dir)
            .is_ok_and(|available| available >= needed)
    }

    /// Whether the store is closing (its background work stopped).
    fn closing(&self) -> bool {
        self.background.lock().shutdown
    }

    /// On a clean close: turns the zeros after the last record of the active segment
    /// back into a hole, so the next open does not read them to find the log's end
    /// (recovery reads a segment's data, up to `data_len`: all of a zeroed one, a 4 MiB
    /// cold read). Only after everything written is synced, never on a poisoned store.
    pub(crate) fn punch_unused_tail(&self) {
        let log = self.log.lock();
        if log.failure.is_some() || log.written_lsn != log.durable_lsn {
            return;
        }
        let Some(segment) = &log.segment else {
            return;
        };
        const BLOCK_BYTES: u64 = 4096;
        let start = segment.write_offset.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        if let Ok(len) = segment.file.len()
            && len > start
        {
            let _ = segment.file.punch_zeros(start, len - start);
        }
    }

    /// Removes an unused spare (the store is closing, its background thread stopped).
    pub(crate) fn discard_spare(&self) {
        let mut slot = self.spare.lock();
        if let SpareSlot::Ready(unused) = std::mem::replace(&mut *slot, SpareSlot::Empty) {
            spare::discard(self.storage.as_ref(), unused);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::SpareSlot;
    use crate::storage::SimStorage;
    use crate::{Store, Value};

    #[test]
    fn the_background_thread_starts_with_the_first_request() {
        let sim = SimStorage::new(2);
        let store = Store::options()
            .storage(Arc::new(sim))
            .open("/store")
            .expect("open");
        let started = || store.inner.background.lock().thread.is_some();
        assert!(!started(), "an open starts no thread");
        assert_eq!(store.read().config("k").expect("read"), None);
        assert!(!started(), "nor does a read");
        let mut txn = store.begin_write();
        txn.set_config("k", Value::from(1u64));
        txn.commit().expect("commit");
        assert!(started(), "the first commit asks for a spare");
        store.close().expect("close");
    }

    #[test]
    fn no_spare_is_prepared_while_another_is_being_made_a_segment() {
        let sim = SimStorage::new(1);
        let store = Store::options()
            .storage(Arc::new(sim.clone()))
            .segment_bytes(16 * 1024)
            .background_checkpoints(false)
            .open("/store")
            .expect("open");
        let mut txn = store.begin_write();
        txn.set_config("k", Value::from(1u64));
        txn.commit().expect("commit");
        let inner = &store.inner;
        let taken = match std::mem::replace(&mut *inner.spare.lock(), SpareSlot::Taken) {
            SpareSlot::Ready(spare) => spare,
            other => panic!("the commit prepared a spare: {other:?}"),
        };
        let calls = sim.calls();
        inner.prepare_spare(crate::store::Pacing::FullSpeed);
        assert_eq!(sim.calls(), calls, "no I/O while a spare is taken");
        assert!(
            sim.read_file(&taken.path).is_some(),
            "the taken spare is intact"
        );
        *inner.spare.lock() = SpareSlot::Preparing;
        assert!(inner.next_segment(2).is_ok());
        assert!(
            sim.read_file(&taken.path).is_some(),
            "a rotation does not take a spare being prepared (it made a sparse segment)"
        );
        *inner.spare.lock() = SpareSlot::Ready(taken);
    }
}
