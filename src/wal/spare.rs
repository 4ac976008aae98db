//! The spare segment: a segment file written full of zeros and synced ahead of need, so
//! that appends into it overwrite allocated blocks.
//!
//! Why: a sparse (`set_len`) segment has unwritten extents, and ext4 journals their
//! conversion on the `fdatasync` that first covers each new block. Measured here on a
//! durable replace of a 5 KB document (a 1.6 KB record): 252 µs per commit into a sparse
//! segment, 195 µs into a zeroed one. The cost moves to a background thread, once per
//! segment: one more write of `segment_bytes`.
//!
//! The spare is named like the store's temporaries, with lsn 0, which no segment has
//! (lsns start at 1): `00000000000000000000.wal.tmp`. An open removes it as a stray
//! temporary (recovery case 1), so a crash while it is being written needs no rule of
//! its own. When a segment rotates, the spare becomes the next segment exactly as a
//! fresh temporary does: header, `fdatasync`, rename, directory `fsync`
//! ([`super::segment::create_from`]).

use std::path::{Path, PathBuf};

use super::segment::{NAME_DIGITS, TMP_SUFFIX};
use crate::error::{Error, Result};
use crate::storage::pacing::{Foreground, PacedWriter};
use crate::storage::{Storage, StorageFile};

/// Bytes of zeros written at a time (between `keep_going` checks). Write-back is paced
/// (`storage::pacing`), so a commit's `fdatasync` meanwhile never waits behind megabytes
/// of zeros; one `fdatasync` at the end makes them durable.
const ZERO_CHUNK_BYTES: usize = 128 * 1024;

/// A zeroed, synced segment file waiting to become the next segment.
#[derive(Debug)]
pub struct SpareSegment {
    /// Its temporary path.
    pub path: PathBuf,
    /// Its handle.
    pub file: Box<dyn StorageFile>,
    /// Its size: every byte is a durable zero.
    pub size_bytes: u64,
}

/// The spare's path in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(format!("{:0NAME_DIGITS$}{TMP_SUFFIX}", 0))
}

/// Writes a spare of `size_bytes` zeros and syncs it, asking `keep_going` before each
/// chunk (the store is closing, or the disk is getting full: give up). On failure it removes what it
/// wrote. A failed write (a full disk, say) is harmless: the caller goes on with sparse
/// segments. A failed `fdatasync` (or write-back) sets `sync_failed`: the caller poisons the
/// store, as for any failed sync (the disk lost writes; the store does not try its luck
/// again). Write-back gives way to `foreground` (`storage::pacing`).
pub fn prepare(
    storage: &dyn Storage,
    dir: &Path,
    size_bytes: u64,
    sync_failed: &mut bool,
    keep_going: &dyn Fn() -> bool,
    foreground: &dyn Foreground,
) -> Result<SpareSegment> {
    let path = path(dir);
    let file = crate::storage::create_temp(storage, &path)?;
    let zeros = vec![0u8; ZERO_CHUNK_BYTES];
    let write_back_failed = std::cell::Cell::new(false);
    let mut out = PacedWriter::new(file.as_ref(), &path, foreground, &write_back_failed);
    let written = (|| {
        while out.written() < size_bytes {
            let chunk_bytes = usize::try_from(size_bytes - out.written())
                .map_or(ZERO_CHUNK_BYTES, |left| left.min(ZERO_CHUNK_BYTES));
            let chunk = zeros.get(..chunk_bytes).unwrap_or_default();
            if !keep_going() {
                return Err(Error::Conversion("spare segment abandoned".into()));
            }
            out.append(chunk)?;
        }
        if !keep_going() {
            return Err(Error::Conversion("spare segment abandoned".into()));
        }
        file.sync_data().map_err(|e| {
            *sync_failed = true;
            Error::io("fdatasync", &path, e)
        })
    })();
    *sync_failed |= write_back_failed.get();
    match written {
        Ok(()) => Ok(SpareSegment {
            path,
            file,
            size_bytes,
        }),
        Err(error) => {
            drop(file);
            let _ = storage.remove_file(&path);
            Err(error)
        }
    }
}

/// Removes a spare that will not be used (the store is closing).
pub fn discard(storage: &dyn Storage, spare: SpareSegment) {
    let SpareSegment { path, file, .. } = spare;
    drop(file);
    let _ = storage.remove_file(&path);
}
