//! Segment files: naming and creation.
//!
//! A segment is named by the lsn of its first record, zero-padded to 20 digits, so names
//! sort in log order as plain strings: `00000000000000000001.wal`. It is created under a
//! `.wal.tmp` name, preallocated, given its header, fsynced, renamed, and the directory is
//! fsynced: a `.wal` file therefore always has a complete, durable header.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::header::{FileHeader, SEGMENT_MAGIC, StoreId};
use crate::storage::{Storage, StorageFile};

use super::direct::DirectTail;

/// Suffix of a segment file.
pub const SUFFIX: &str = ".wal";
/// Suffix of a segment being created.
pub const TMP_SUFFIX: &str = ".wal.tmp";
/// Digits in a file name's lsn.
pub const NAME_DIGITS: usize = 20;

/// `<first_lsn, 20 digits>.wal`.
pub fn file_name(first_lsn: u64) -> String {
    numbered_name(first_lsn, SUFFIX)
}

/// `<number, 20 digits><suffix>`: how the store names its numbered files.
pub fn numbered_name(number: u64, suffix: &str) -> String {
    format!("{number:0NAME_DIGITS$}{suffix}")
}

/// Parses `<20 digits><suffix>` into the number, for the store's own names only.
pub fn parse_numbered(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An open segment that the writer appends to.
#[derive(Debug)]
pub struct ActiveSegment {
    /// Its path.
    pub path: PathBuf,
    /// Its handle.
    pub file: Box<dyn StorageFile>,
    /// The lsn of its first record.
    pub first_lsn: u64,
    /// Where the next record goes.
    pub write_offset: u64,
    /// Its direct handle, opened at the first synced append.
    pub direct: Direct,
}

/// Whether a segment is appended to around the page cache ([`super::direct`]).
#[derive(Debug)]
pub enum Direct {
    /// Not tried yet; the write buffer the direct tail will use (the last segment's).
    Untried(Vec<u8>),
    /// The storage cannot, or opening failed: appends go through the page cache.
    Unavailable,
    /// Synced appends go through this.
    Open(DirectTail),
}

impl ActiveSegment {
    /// A segment opened for appends at `write_offset`.
    pub fn new(
        path: PathBuf,
        file: Box<dyn StorageFile>,
        first_lsn: u64,
        write_offset: u64,
    ) -> ActiveSegment {
        ActiveSegment {
            path,
            file,
            first_lsn,
            write_offset,
            direct: Direct::Untried(Vec::new()),
        }
    }

    /// Writes `batch` at the write offset and moves it past: around the page cache if
    /// `direct` is asked for and the storage can (the caller syncs next), else through it.
    pub fn append(
        &mut self,
        storage: &dyn Storage,
        batch: &[u8],
        direct: bool,
    ) -> std::io::Result<()> {
        if let (true, Direct::Untried(buffer)) = (direct, &mut self.direct) {
            let buffer = std::mem::take(buffer);
            self.direct =
                match DirectTail::open(storage, &self.path, &*self.file, self.write_offset, buffer)
                {
                    Some(tail) => Direct::Open(tail),
                    None => Direct::Unavailable,
                };
        }
        match &mut self.direct {
            Direct::Open(tail) if direct => match tail.write(batch, self.write_offset) {
                Ok(()) => {}
                // The file system refused the alignment it stated: nothing landed (or,
                // after earlier chunks, the same bytes land again). This segment goes
                // through the page cache from now on.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                    self.direct = Direct::Unavailable;
                    self.file.write_all_at(batch, self.write_offset)?;
                }
                Err(e) => return Err(e),
            },
            Direct::Open(tail) => {
                self.file.write_all_at(batch, self.write_offset)?;
                if !tail.wrote_buffered(batch, self.write_offset) {
                    self.direct = Direct::Unavailable;
                }
            }
            Direct::Untried(_) | Direct::Unavailable => {
                self.file.write_all_at(batch, self.write_offset)?;
            }
        }
        self.write_offset += batch.len() as u64;
        Ok(())
    }

    /// Hands this segment's direct write buffer to `next`, the segment after it, which
    /// then need not allocate and fault it in again.
    pub fn pass_direct_buffer(&mut self, next: &mut ActiveSegment) {
        let next_has_none = matches!(&next.direct, Direct::Untried(empty) if empty.capacity() == 0);
        if next_has_none
            && matches!(self.direct, Direct::Open(_))
            && let Direct::Open(tail) = std::mem::replace(&mut self.direct, Direct::Unavailable)
        {
            next.direct = Direct::Untried(tail.into_buffer());
        }
    }
}

/// Creates a new segment durably (see the module docs) and returns it open for appends.
pub fn create(
    storage: &dyn Storage,
    dir: &Path,
    store_id: StoreId,
    first_lsn: u64,
    preallocate_bytes: u64,
) -> Result<ActiveSegment> {
    let tmp = dir.join(format!("{first_lsn:0NAME_DIGITS$}{TMP_SUFFIX}"));
    let file = crate::storage::create_temp(storage, &tmp)?;
    // Sparse preallocation: costs no disk space, so a nearly full disk still opens and
    // commits until space truly runs out; a failure here is not fatal for the same reason.
    if preallocate_bytes > crate::header::HEADER_BYTES as u64 {
        let _ = file.set_len(preallocate_bytes);
    }
    install(storage, dir, store_id, first_lsn, tmp, file)
}

/// Turns the spare into the next segment: the same steps as [`create`], on a file that is
/// already zeroed and synced.
pub fn create_from(
    storage: &dyn Storage,
    dir: &Path,
    store_id: StoreId,
    first_lsn: u64,
    spare: super::spare::SpareSegment,
) -> Result<ActiveSegment> {
    install(storage, dir, store_id, first_lsn, spare.path, spare.file)
}

/// Writes the header into `tmp`, syncs it, renames it to the segment name, and syncs the
/// directory.
fn install(
    storage: &dyn Storage,
    dir: &Path,
    store_id: StoreId,
    first_lsn: u64,
    tmp: PathBuf,
    file: Box<dyn StorageFile>,
) -> Result<ActiveSegment> {
    let path = dir.join(file_name(first_lsn));
    let header = FileHeader {
        magic: SEGMENT_MAGIC,
        store_id,
        lsn: first_lsn,
    };
    let header_bytes = header.encode();
    file.write_all_at(&header_bytes, 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &tmp, e))?;
    storage
        .rename(&tmp, &path)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok(ActiveSegment::new(
        path,
        file,
        first_lsn,
        header_bytes.len() as u64,
    ))
}
