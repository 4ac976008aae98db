//! `HEAD`: where a live writer tells readers in other processes how far they may read,
//! and where a writer that closed cleanly says so.
//!
//! ```text
//! live (36 bytes)                    closed (60 bytes)
//! offset size field                  offset size field
//!      0    8 magic "WALSTHED"            0    8 magic "WALSTCLS"
//!      8   16 store_id                    8   16 store_id
//!     24    8 lsn                        24    8 lsn
//!     32    4 crc of bytes 0..32         32    8 segment dev      the stamp of the
//!                                        40    8 segment ino      segment the closing
//!                                        48    8 segment changed  writer synced last
//!                                        56    4 crc of bytes 0..56
//! ```
//! `lsn` (u64 LE) is the highest lsn that is durable (or, for commits made with
//! Durability::None, written), written before the writer applies the group in memory.
//!
//! The writer rewrites it with one `pwrite` after each group is durable, and never fsyncs
//! it: it is a hint for live readers. A reader honours it only while the writer lock is
//! held; with no writer, every valid record is committed as far as the next recovery is
//! concerned, so a reader may read them all.
//!
//! A writer that closes with everything it wrote synced and nothing failed writes it
//! last, as "closed" at its lsn, with the stamp ([`FileStamp`]: device, inode, change
//! time) of its segment; the next writer open rewrites it as live before it writes
//! anything else. A writer that finds it "closed" at exactly the lsn it recovered, with
//! no torn tail, and the segment it appends to still the file with that stamp (not a copy
//! or a restore, which the page cache may hold unsynced), skips the open-time `fdatasync`
//! of the segment and `fsync` of the directory (format-spec/live-readers.md, "A clean
//! close").

use std::path::Path;

use crate::codec::{checksum, read_array, read_u32, read_u64};
use crate::header::StoreId;
use crate::storage::{FileStamp, OpenMode, Storage, StorageFile};

/// Name of the file.
pub const HEAD_FILE: &str = "HEAD";
const MAGIC_LIVE: [u8; 8] = *b"WALSTHED";
const MAGIC_CLOSED: [u8; 8] = *b"WALSTCLS";
/// Size of a live `HEAD` in bytes.
pub const HEAD_LIVE_BYTES: usize = 36;
/// Size of a closed `HEAD` in bytes (the file keeps this length once written: a live
/// `HEAD` overwrites only its first [`HEAD_LIVE_BYTES`]).
pub const HEAD_CLOSED_BYTES: usize = 60;
const _: () = assert!(HEAD_LIVE_BYTES == 8 + 16 + 8 + 4);
const _: () = assert!(HEAD_CLOSED_BYTES == HEAD_LIVE_BYTES + 3 * 8);

/// What `HEAD` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The store id of the writer that wrote it.
    pub store_id: StoreId,
    /// How far readers may read.
    pub lsn: u64,
    /// Written by a clean close: every record up to `lsn` was durable, and every
    /// directory change the writer made was synced, when it was written; the stamp of
    /// the segment it appended to, as it left it.
    pub closed: Option<FileStamp>,
}

/// A `HEAD` as written: [`HEAD_LIVE_BYTES`] or [`HEAD_CLOSED_BYTES`] of a fixed buffer
/// (a live one is written after every group: no allocation).
#[derive(Debug, Clone, Copy)]
pub struct Encoded {
    buf: [u8; HEAD_CLOSED_BYTES],
    len: usize,
}

impl Encoded {
    /// The bytes to write at offset 0.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl Head {
    /// What a live writer at `lsn` writes.
    pub fn live(store_id: StoreId, lsn: u64) -> Head {
        Head {
            store_id,
            lsn,
            closed: None,
        }
    }

    /// Encodes the file's contents.
    pub fn encode(&self) -> Encoded {
        use std::io::Write;
        let mut buf = [0u8; HEAD_CLOSED_BYTES];
        let fields_len = {
            let mut rest: &mut [u8] = &mut buf;
            let magic = match self.closed {
                Some(_) => &MAGIC_CLOSED,
                None => &MAGIC_LIVE,
            };
            // Writes into a slice long enough for every layout cannot fail.
            let _ = rest.write_all(magic);
            let _ = rest.write_all(&self.store_id);
            let _ = rest.write_all(&self.lsn.to_le_bytes());
            if let Some(stamp) = self.closed {
                let _ = rest.write_all(&stamp.dev.to_le_bytes());
                let _ = rest.write_all(&stamp.ino.to_le_bytes());
                let _ = rest.write_all(&stamp.changed_ns.to_le_bytes());
            }
            HEAD_CLOSED_BYTES - rest.len()
        };
        let crc = checksum(&[buf.get(..fields_len).unwrap_or_default()]);
        if let Some(at) = buf.get_mut(fields_len..fields_len + 4) {
            at.copy_from_slice(&crc.to_le_bytes());
        }
        let len = fields_len + 4;
        debug_assert!(matches!(len, HEAD_LIVE_BYTES | HEAD_CLOSED_BYTES));
        Encoded { buf, len }
    }

    /// Decodes it, or `None` if absent, short or failing its checks. Bytes after the
    /// layout its magic names are ignored.
    pub fn decode(bytes: &[u8]) -> Option<Head> {
        let closed = match read_array::<8>(bytes, 0)? {
            MAGIC_LIVE => false,
            MAGIC_CLOSED => true,
            _ => return None,
        };
        let crc_at = match closed {
            true => HEAD_CLOSED_BYTES - 4,
            false => HEAD_LIVE_BYTES - 4,
        };
        if read_u32(bytes, crc_at)? != checksum(&[bytes.get(..crc_at)?]) {
            return None;
        }
        let stamp = match closed {
            true => Some(FileStamp {
                dev: read_u64(bytes, 32)?,
                ino: read_u64(bytes, 40)?,
                changed_ns: read_u64(bytes, 48)?,
            }),
            false => None,
        };
        Some(Head {
            store_id: read_array::<16>(bytes, 8)?,
            lsn: read_u64(bytes, 24)?,
            closed: stamp,
        })
    }
}

/// Opens the writer's existing `HEAD` for reading and writing (nothing is created: an
/// open that then fails leaves the directory as it was). `None` if there is none.
pub fn open_existing(storage: &dyn Storage, dir: &Path) -> Option<Box<dyn StorageFile>> {
    storage
        .open_file(&dir.join(HEAD_FILE), OpenMode::ReadWrite)
        .ok()
}

/// Writes `lsn` as live into the writer's `HEAD`: `existing` (from [`open_existing`]),
/// else the file opened or created now. `None` if that failed.
pub fn open_for_writer(
    storage: &dyn Storage,
    dir: &Path,
    existing: Option<Box<dyn StorageFile>>,
    store_id: StoreId,
    lsn: u64,
) -> Option<Box<dyn StorageFile>> {
    let path = dir.join(HEAD_FILE);
    let file = match existing {
        Some(file) => file,
        None => storage
            .open_file(&path, OpenMode::ReadWrite)
            .or_else(|_| storage.open_file(&path, OpenMode::CreateNew))
            .ok()?,
    };
    file.write_all_at(Head::live(store_id, lsn).encode().as_bytes(), 0)
        .ok()?;
    Some(file)
}

/// Reads `HEAD`: `(store_id, lsn)`.
pub fn read(storage: &dyn Storage, dir: &Path) -> Option<(StoreId, u64)> {
    read_head(storage, dir).map(|head| (head.store_id, head.lsn))
}

/// Reads `HEAD`.
pub fn read_head(storage: &dyn Storage, dir: &Path) -> Option<Head> {
    let file = storage
        .open_file(&dir.join(HEAD_FILE), OpenMode::Read)
        .ok()?;
    read_from(file.as_ref())
}

/// Reads `HEAD` from an open handle.
pub fn read_from(file: &dyn StorageFile) -> Option<Head> {
    let len = usize::try_from(file.len().ok()?)
        .ok()?
        .min(HEAD_CLOSED_BYTES);
    let mut bytes = [0u8; HEAD_CLOSED_BYTES];
    let bytes = bytes.get_mut(..len)?;
    file.read_exact_at(bytes, 0).ok()?;
    Head::decode(bytes)
}
