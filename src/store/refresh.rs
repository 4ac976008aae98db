//! Live read-only handles: `refresh` tails the WAL from where the handle stopped, so its
//! cost is proportional to what was committed since, not to the store.
//!
//! 1. The store directory must still be the one opened (else `StoreGone`).
//! 2. While a writer holds the lock, records above the lsn in `HEAD` are not read: they
//!    may not be durable yet. With no writer, every valid record is read.
//! 3. Records are read from the current segment at the remembered offset and applied in
//!    lsn order; the first invalid bytes end this refresh (a write in progress).
//! 4. At the clean end of a segment, the next one (named `lsn + 1`) is followed.
//! 5. If the current segment is gone (a checkpoint dropped it), the handle reloads from
//!    the newest snapshot; also when it vanished while being read and the next one is
//!    gone too. Its lsn never goes backwards.

use std::sync::Arc;

use parking_lot::MutexGuard;

use super::Inner;
use super::commit::Log;
use super::head;
use crate::error::{Error, Result};
use crate::header::{FileHeader, HEADER_BYTES, SEGMENT_MAGIC};
use crate::model::op::Op;
use crate::recovery;
use crate::storage::OpenMode;
use crate::wal::{record, segment};

/// First read of new WAL bytes in one step. Segments are preallocated, so reading to
/// the file's length would read megabytes of zeros on every refresh; a larger read
/// happens only when one record needs it or the chunk was all records.
const READ_CHUNK_BYTES: u64 = 64 * 1024;

impl Inner {
    /// The highest lsn a reader may apply now.
    pub(crate) fn visible_limit(&self, store_id: Option<crate::header::StoreId>) -> u64 {
        let lock = self.dir.join(super::LOCK_FILE);
        // When the probe itself fails, assume a writer: reading less is safe.
        if !self.storage.is_locked(&lock).unwrap_or(true) {
            return u64::MAX;
        }
        match head::read(self.storage.as_ref(), &self.dir) {
            Some((found, lsn)) if store_id.is_none_or(|id| id == found) => lsn,
            // A writer that has not published yet: nothing new is visible.
            _ => 0,
        }
    }

    /// See the module docs. Returns the handle's lsn after the refresh. `on_commit` sees
    /// each transaction read from the WAL (not those a reload from a snapshot skips).
    pub(crate) fn refresh(&self, on_commit: &mut dyn FnMut(u64, &[Op])) -> Result<u64> {
        if !self.read_only {
            return Ok(self.published.read().lsn);
        }
        let mut log = self.log.lock();
        if self.storage.dir_identity(&self.dir).ok() != self.dir_identity {
            return Err(Error::StoreGone {
                dir: self.dir.clone(),
            });
        }
        let limit = self.visible_limit(log.reader_store_id);
        let before = log.working.lsn;
        if let Err(error) = self.tail_wal(&mut log, limit, on_commit) {
            // Records applied before the failure were not published: start again from the
            // published state, with a full reload next time.
            log.working = (**self.published.read()).clone();
            log.tail = None;
            return Err(error);
        }
        log.working.seal();
        if log.working.lsn != before {
            *self.published.write() = Arc::new(log.working.clone());
        }
        Ok(log.working.lsn)
    }

    /// Steps 3 to 5 of the module docs, applying to `log.working`.
    fn tail_wal(
        &self,
        log: &mut MutexGuard<'_, Log>,
        limit: u64,
        on_commit: &mut dyn FnMut(u64, &[Op]),
    ) -> Result<()> {
        loop {
            let Some((first_lsn, offset)) = log.tail else {
                self.reload(log, limit)?;
                break;
            };
            let path = self.dir.join(segment::file_name(first_lsn));
            let file = match self.storage.open_file(&path, OpenMode::Read) {
                Ok(file) => file,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    self.reload(log, limit)?;
                    break;
                }
                Err(error) => return Err(Error::io("open", &path, error)),
            };
            let mut header = [0u8; HEADER_BYTES];
            file.read_exact_at(&mut header, 0)
                .map_err(|e| Error::io("read", &path, e))?;
            let found = FileHeader::decode(&header, SEGMENT_MAGIC, &path)?.store_id;
            // A reader that opened a store still being created adopts its first id.
            if *log.reader_store_id.get_or_insert(found) != found {
                return Err(Error::StoreGone {
                    dir: self.dir.clone(),
                });
            }
            let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
            let mut offset = offset;
            let mut chunk = READ_CHUNK_BYTES;
            let stop = loop {
                let want = len.saturating_sub(offset).min(chunk);
                let mut bytes = vec![0u8; usize::try_from(want).unwrap_or(0)];
                file.read_exact_at(&mut bytes, offset)
                    .map_err(|e| Error::io("read", &path, e))?;
                let (consumed, stop) = apply_records(log, &bytes, limit, &path, offset, on_commit)?;
                offset += consumed;
                log.tail = Some((first_lsn, offset));
                match stop {
                    // The chunk ended inside a record: read that whole record next.
                    Stop::Invalid(record::Invalid::Truncated { needed, available })
                        if consumed + available == want && offset + needed <= len =>
                    {
                        chunk = chunk.max(needed);
                    }
                    // A full chunk of records: there may be more after it.
                    Stop::Invalid(_) | Stop::Other if consumed > 0 && want == chunk => {}
                    stop => break stop,
                }
            };
            if matches!(stop, Stop::Limit) {
                break;
            }
            let next_lsn = log.working.lsn + 1;
            let next = self.dir.join(segment::file_name(next_lsn));
            if next_lsn == first_lsn {
                break;
            }
            if !self.exists(&next)? {
                // A checkpoint deletes segments oldest first, so a next segment it deleted
                // (while this one was being read) means this one is gone too: the records
                // after it are in the newer snapshot.
                if !self.exists(&path)? {
                    self.reload(log, limit)?;
                }
                break;
            }
            log.tail = Some((next_lsn, HEADER_BYTES as u64));
        }
        Ok(())
    }

    fn exists(&self, path: &std::path::Path) -> Result<bool> {
        self.storage
            .exists(path)
            .map_err(|e| Error::io("stat", path, e))
    }

    /// Reloads from the newest snapshot and the WAL, keeping the old state if the
    /// reload is behind it.
    fn reload(&self, log: &mut MutexGuard<'_, Log>, limit: u64) -> Result<()> {
        let recovered = recovery::recover_up_to(
            self.storage.as_ref(),
            &self.dir,
            &self.options,
            false,
            limit,
            None,
        )?;
        let known = recovered.report.segments_read > 0 || recovered.report.snapshot.is_some();
        if known && *log.reader_store_id.get_or_insert(recovered.store_id) != recovered.store_id {
            return Err(Error::StoreGone {
                dir: self.dir.clone(),
            });
        }
        if recovered.version.lsn >= log.working.lsn {
            log.working = recovered.version;
            log.tail = recovered.tail;
        }
        Ok(())
    }
}

/// Why [`apply_records`] stopped.
enum Stop {
    /// The next record is above the visible limit.
    Limit,
    /// The bytes at the stop are not the next valid record (yet).
    Invalid(record::Invalid),
    /// The next valid record has an unexpected lsn, or the bytes ran out.
    Other,
}

/// Applies the valid records at the start of `bytes` up to `limit`. Returns the bytes
/// consumed and why it stopped.
fn apply_records(
    log: &mut Log,
    bytes: &[u8],
    limit: u64,
    path: &std::path::Path,
    base: u64,
    on_commit: &mut dyn FnMut(u64, &[Op]),
) -> Result<(u64, Stop)> {
    let mut pos = 0usize;
    while let Some(rest) = bytes.get(pos..).filter(|rest| !rest.is_empty()) {
        let (header, payload) = match record::decode(rest) {
            Ok(decoded) => decoded,
            Err(invalid) => return Ok((pos as u64, Stop::Invalid(invalid))),
        };
        if header.lsn != log.working.lsn + 1 {
            break;
        }
        if header.lsn > limit {
            return Ok((pos as u64, Stop::Limit));
        }
        let ops: Vec<Op> = postcard::from_bytes(payload).map_err(|e| {
            Error::corrupt(
                path,
                base + pos as u64,
                format!("record lsn {} does not decode: {e}", header.lsn),
            )
        })?;
        for op in &ops {
            op.apply(&mut log.working)?;
        }
        log.working.lsn = header.lsn;
        on_commit(header.lsn, &ops);
        pos += record::framed_len(payload.len()) as usize;
    }
    Ok((pos as u64, Stop::Other))
}
