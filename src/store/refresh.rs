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
//!    the newest snapshot. Its lsn never goes backwards.

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

/// Largest read of new WAL bytes in one step.
const READ_CHUNK_BYTES: u64 = 16 * 1024 * 1024;

impl Inner {
    /// The highest lsn a reader may apply now.
    pub(crate) fn visible_limit(&self) -> u64 {
        let lock = self.dir.join(super::LOCK_FILE);
        if !self.storage.is_locked(&lock).unwrap_or(false) {
            return u64::MAX;
        }
        match head::read(self.storage.as_ref(), &self.dir) {
            Some((store_id, lsn)) if store_id == self.store_id => lsn,
            // A writer that has not published yet: nothing new is visible.
            _ => 0,
        }
    }

    /// See the module docs. Returns the handle's lsn after the refresh.
    pub(crate) fn refresh(&self) -> Result<u64> {
        if !self.read_only {
            return Ok(self.published.read().lsn);
        }
        let mut log = self.log.lock();
        if self.storage.dir_identity(&self.dir).ok() != self.dir_identity {
            return Err(Error::StoreGone {
                dir: self.dir.clone(),
            });
        }
        let limit = self.visible_limit();
        let before = log.working.lsn;
        loop {
            let Some((first_lsn, offset)) = log.tail else {
                self.reload(&mut log, limit)?;
                break;
            };
            let path = self.dir.join(segment::file_name(first_lsn));
            let file = match self.storage.open_file(&path, OpenMode::Read) {
                Ok(file) => file,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    self.reload(&mut log, limit)?;
                    break;
                }
                Err(error) => return Err(Error::io("open", &path, error)),
            };
            let mut header = [0u8; HEADER_BYTES];
            file.read_exact_at(&mut header, 0)
                .map_err(|e| Error::io("read", &path, e))?;
            if FileHeader::decode(&header, SEGMENT_MAGIC, &path)?.store_id != self.store_id {
                return Err(Error::StoreGone {
                    dir: self.dir.clone(),
                });
            }
            let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
            let want = len.saturating_sub(offset).min(READ_CHUNK_BYTES);
            let mut bytes = vec![0u8; usize::try_from(want).unwrap_or(0)];
            file.read_exact_at(&mut bytes, offset)
                .map_err(|e| Error::io("read", &path, e))?;
            let (consumed, stopped_at_limit) =
                apply_records(&mut log, &bytes, limit, &path, offset)?;
            log.tail = Some((first_lsn, offset + consumed));
            if stopped_at_limit {
                break;
            }
            if consumed > 0 && want == READ_CHUNK_BYTES {
                continue;
            }
            let next_lsn = log.working.lsn + 1;
            let next = self.dir.join(segment::file_name(next_lsn));
            if next_lsn == first_lsn
                || !self
                    .storage
                    .exists(&next)
                    .map_err(|e| Error::io("stat", &next, e))?
            {
                break;
            }
            log.tail = Some((next_lsn, HEADER_BYTES as u64));
        }
        if log.working.lsn != before {
            *self.published.write() = Arc::new(log.working.clone());
        }
        Ok(log.working.lsn)
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
        )?;
        if recovered.store_id != self.store_id {
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

/// Applies the valid records at the start of `bytes` up to `limit`. Returns the bytes
/// consumed and whether the limit stopped it.
fn apply_records(
    log: &mut Log,
    bytes: &[u8],
    limit: u64,
    path: &std::path::Path,
    base: u64,
) -> Result<(u64, bool)> {
    let mut pos = 0usize;
    while let Some(rest) = bytes.get(pos..) {
        let Ok((header, payload)) = record::decode(rest) else {
            break;
        };
        if header.lsn != log.working.lsn + 1 {
            break;
        }
        if header.lsn > limit {
            return Ok((pos as u64, true));
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
        pos += record::framed_len(payload.len()) as usize;
    }
    Ok((pos as u64, false))
}
