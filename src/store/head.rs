//! `HEAD`: where a live writer tells readers in other processes how far they may read,
//! and where a writer that closed cleanly says so.
//!
//! ```text
//! offset size field
//!      0    8 magic     b"WALSTHED" (a writer is live, or died) or b"WALSTCLS" (closed
//!                       cleanly)
//!      8   16 store_id
//!     24    8 lsn       u64 LE: the highest lsn that is durable (or, for commits made
//!                       with Durability::None, written); written before the writer
//!                       applies the group in memory
//!     32    4 crc       masked CRC-32 of bytes 0..32
//! ```
//! The writer rewrites it with one `pwrite` after each group is durable, and never fsyncs
//! it: it is a hint for live readers. A reader honours it only while the writer lock is
//! held; with no writer, every valid record is committed as far as the next recovery is
//! concerned, so a reader may read them all.
//!
//! A writer that closes with everything it wrote synced and nothing failed writes it
//! last, as "closed" at its lsn; the next writer open rewrites it as live before it writes
//! anything else. A writer that finds it "closed" at exactly the lsn it recovered, with
//! no torn tail, skips the open-time `fdatasync` of the segment and `fsync` of the
//! directory (format-spec/live-readers.md, "A clean close").

use std::path::Path;

use crate::codec::{checksum, read_array, read_u32, read_u64};
use crate::header::StoreId;
use crate::storage::{OpenMode, Storage, StorageFile};

/// Name of the file.
pub const HEAD_FILE: &str = "HEAD";
const MAGIC_LIVE: [u8; 8] = *b"WALSTHED";
const MAGIC_CLOSED: [u8; 8] = *b"WALSTCLS";
/// Size of the file in bytes.
pub const HEAD_BYTES: usize = 36;

/// What `HEAD` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The store id of the writer that wrote it.
    pub store_id: StoreId,
    /// How far readers may read.
    pub lsn: u64,
    /// Written by a clean close: every record up to `lsn` was durable, and every
    /// directory change the writer made was synced, when it was written.
    pub closed: bool,
}

impl Head {
    /// Encodes the file's contents.
    pub fn encode(&self) -> [u8; HEAD_BYTES] {
        let mut out = [0u8; HEAD_BYTES];
        let mut fields = Vec::with_capacity(32);
        fields.extend_from_slice(match self.closed {
            true => &MAGIC_CLOSED,
            false => &MAGIC_LIVE,
        });
        fields.extend_from_slice(&self.store_id);
        fields.extend_from_slice(&self.lsn.to_le_bytes());
        let crc = checksum(&[&fields]);
        fields.extend_from_slice(&crc.to_le_bytes());
        out.copy_from_slice(&fields);
        out
    }

    /// Decodes it, or `None` if absent, short or failing its checks.
    pub fn decode(bytes: &[u8]) -> Option<Head> {
        let fields = bytes.get(..32)?;
        if read_u32(bytes, 32)? != checksum(&[fields]) {
            return None;
        }
        let closed = match read_array::<8>(bytes, 0)? {
            MAGIC_LIVE => false,
            MAGIC_CLOSED => true,
            _ => return None,
        };
        Some(Head {
            store_id: read_array::<16>(bytes, 8)?,
            lsn: read_u64(bytes, 24)?,
            closed,
        })
    }
}

/// Encodes a live writer's `HEAD`.
pub fn encode(store_id: StoreId, lsn: u64) -> [u8; HEAD_BYTES] {
    Head {
        store_id,
        lsn,
        closed: false,
    }
    .encode()
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
    let mut bytes = [0u8; HEAD_BYTES];
    file.read_exact_at(&mut bytes, 0).ok()?;
    Head::decode(&bytes)
}
