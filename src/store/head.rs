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

impl Head {
    /// Encodes the file's contents: [`HEAD_LIVE_BYTES`] or [`HEAD_CLOSED_BYTES`] long.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_CLOSED_BYTES);
        out.extend_from_slice(match self.closed {
            Some(_) => &MAGIC_CLOSED,
            None => &MAGIC_LIVE,
        });
        out.extend_from_slice(&self.store_id);
        out.extend_from_slice(&self.lsn.to_le_bytes());
        if let Some(stamp) = self.closed {
            out.extend_from_slice(&stamp.dev.to_le_bytes());
            out.extend_from_slice(&stamp.ino.to_le_bytes());
            out.extend_from_slice(&stamp.changed_ns.to_le_bytes());
        }
        let crc = checksum(&[&out]);
        out.extend_from_slice(&crc.to_le_bytes());
        debug_assert!(matches!(out.len(), HEAD_LIVE_BYTES | HEAD_CLOSED_BYTES));
        out
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

/// Encodes a live writer's `HEAD` (after every group: no allocation).
pub fn encode(store_id: StoreId, lsn: u64) -> [u8; HEAD_LIVE_BYTES] {
    let mut out = [0u8; HEAD_LIVE_BYTES];
    let (fields, crc) = out.split_at_mut(HEAD_LIVE_BYTES - 4);
    let (magic, rest) = fields.split_at_mut(8);
    let (id, lsn_bytes) = rest.split_at_mut(16);
    magic.copy_from_slice(&MAGIC_LIVE);
    id.copy_from_slice(&store_id);
    lsn_bytes.copy_from_slice(&lsn.to_le_bytes());
    crc.copy_from_slice(&checksum(&[fields]).to_le_bytes());
    out
}

/// Opens (creating if needed) the writer's `HEAD` and writes `lsn` into it, as live.
/// `None` if that failed.
pub fn open_for_writer(
    storage: &dyn Storage,
    dir: &Path,
    store_id: StoreId,
    lsn: u64,
) -> Option<Box<dyn StorageFile>> {
    let path = dir.join(HEAD_FILE);
    let file = storage
        .open_file(&path, OpenMode::ReadWrite)
        .or_else(|_| storage.open_file(&path, OpenMode::CreateNew))
        .ok()?;
    file.write_all_at(&encode(store_id, lsn), 0).ok()?;
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
    let len = usize::try_from(file.len().ok()?)
        .ok()?
        .min(HEAD_CLOSED_BYTES);
    let mut bytes = [0u8; HEAD_CLOSED_BYTES];
    let bytes = bytes.get_mut(..len)?;
    file.read_exact_at(bytes, 0).ok()?;
    Head::decode(bytes)
}
