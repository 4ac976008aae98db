//! `HEAD`: where a live writer tells readers in other processes how far they may read.
//!
//! ```text
//! offset size field
//!      0    8 magic     b"WALSTHED"
//!      8   16 store_id
//!     24    8 lsn       u64 LE: the highest lsn that is durable (or, for commits made
//!                       with Durability::None, written); written before the writer
//!                       applies the group in memory
//!     32    4 crc       masked CRC-32 of bytes 0..32
//! ```
//! The writer rewrites it with one `pwrite` after each group is durable, and never fsyncs
//! it: it is a hint for live readers, not a recovery input. A reader honours it only
//! while the writer lock is held; with no writer, every valid record is committed as far
//! as the next recovery is concerned, so a reader may read them all.

use std::path::Path;

use crate::codec::{checksum, read_array, read_u32, read_u64};
use crate::header::StoreId;
use crate::storage::{OpenMode, Storage, StorageFile};

/// Name of the file.
pub const HEAD_FILE: &str = "HEAD";
const MAGIC: [u8; 8] = *b"WALSTHED";
/// Size of the file in bytes.
pub const HEAD_BYTES: usize = 36;

/// Encodes the file's contents.
pub fn encode(store_id: StoreId, lsn: u64) -> [u8; HEAD_BYTES] {
    let mut out = [0u8; HEAD_BYTES];
    let mut fields = Vec::with_capacity(32);
    fields.extend_from_slice(&MAGIC);
    fields.extend_from_slice(&store_id);
    fields.extend_from_slice(&lsn.to_le_bytes());
    let crc = checksum(&[&fields]);
    fields.extend_from_slice(&crc.to_le_bytes());
    out.copy_from_slice(&fields);
    out
}

/// Decodes it: `(store_id, lsn)`, or `None` if absent, short or failing its checks.
pub fn decode(bytes: &[u8]) -> Option<(StoreId, u64)> {
    let fields = bytes.get(..32)?;
    if read_u32(bytes, 32)? != checksum(&[fields]) || read_array::<8>(bytes, 0)? != MAGIC {
        return None;
    }
    Some((read_array::<16>(bytes, 8)?, read_u64(bytes, 24)?))
}

/// Opens (creating if needed) the writer's `HEAD` and writes `lsn` into it.
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

/// Reads `HEAD`.
pub fn read(storage: &dyn Storage, dir: &Path) -> Option<(StoreId, u64)> {
    let file = storage
        .open_file(&dir.join(HEAD_FILE), OpenMode::Read)
        .ok()?;
    let mut bytes = [0u8; HEAD_BYTES];
    file.read_exact_at(&mut bytes, 0).ok()?;
    decode(&bytes)
}
