//! The 64-byte header that opens every segment (`.wal`) and snapshot (`.snap`) file.
//!
//! ```text
//! offset size field
//!      0    8 magic            b"WALSTSEG" (segment) or b"WALSTSNP" (snapshot)
//!      8    4 format_version   u32 LE: FORMAT_VERSION when written; read if from
//!                             FORMAT_VERSION_READ_MIN to FORMAT_VERSION
//!     12    4 header_len       u32 LE, = 64
//!     16   16 store_id         random bytes chosen when the store was created
//!     32    8 lsn              u64 LE: a segment's first lsn; a snapshot's covered lsn
//!     40   20 reserved         zero
//!     60    4 crc              masked CRC-32 of bytes 0..60
//! ```

use std::path::Path;

use crate::codec::{
    FORMAT_VERSION, FORMAT_VERSION_READ_MIN, checksum, read_array, read_u32, read_u64,
};
use crate::error::{Error, Result};

/// Size of the header in bytes.
pub const HEADER_BYTES: usize = 64;
const CRC_OFFSET: usize = 60;
const _: () = assert!(CRC_OFFSET + 4 == HEADER_BYTES);

/// Magic of a WAL segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WALSTSEG";
/// Magic of a snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"WALSTSNP";

/// A store's identity, written into every file so files of two stores never mix.
pub type StoreId = [u8; 16];

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// [`SEGMENT_MAGIC`] or [`SNAPSHOT_MAGIC`].
    pub magic: [u8; 8],
    /// The store this file belongs to.
    pub store_id: StoreId,
    /// A segment's first lsn, or the lsn a snapshot covers.
    pub lsn: u64,
}

/// The format version a header states, if its checksum holds (nothing else is checked).
pub fn version_of(bytes: &[u8]) -> Option<u32> {
    let fields = bytes.get(..CRC_OFFSET)?;
    (read_u32(bytes, CRC_OFFSET)? == checksum(&[fields])).then_some(())?;
    read_u32(bytes, 8)
}

impl FileHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        let (fields, crc) = out.split_at_mut(CRC_OFFSET);
        let (magic, rest) = fields.split_at_mut(8);
        magic.copy_from_slice(&self.magic);
        let (version, rest) = rest.split_at_mut(4);
        version.copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let (header_len, rest) = rest.split_at_mut(4);
        header_len.copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
        let (store_id, rest) = rest.split_at_mut(16);
        store_id.copy_from_slice(&self.store_id);
        let (lsn, _reserved) = rest.split_at_mut(8);
        lsn.copy_from_slice(&self.lsn.to_le_bytes());
        crc.copy_from_slice(&checksum(&[fields]).to_le_bytes());
        out
    }

    /// Decodes and checks a header read from `file`: length, checksum, magic, version.
    pub fn decode(bytes: &[u8], magic: [u8; 8], file: &Path) -> Result<FileHeader> {
        let short = || {
            Error::corrupt(
                file,
                0,
                format!(
                    "header needs {HEADER_BYTES} bytes, file has {}",
                    bytes.len()
                ),
            )
        };
        let fields = bytes.get(..CRC_OFFSET).ok_or_else(short)?;
        let stored_crc = read_u32(bytes, CRC_OFFSET).ok_or_else(short)?;
        let computed = checksum(&[fields]);
        if stored_crc != computed {
            return Err(Error::corrupt(
                file,
                CRC_OFFSET as u64,
                format!(
                    "header checksum mismatch: stored {stored_crc:#010x}, computed {computed:#010x}"
                ),
            ));
        }
        let found_magic = read_array::<8>(bytes, 0).ok_or_else(short)?;
        if found_magic != magic {
            return Err(Error::corrupt(
                file,
                0,
                format!(
                    "bad magic: expected {:?}, found {:?}",
                    String::from_utf8_lossy(&magic),
                    String::from_utf8_lossy(&found_magic)
                ),
            ));
        }
        let version = read_u32(bytes, 8).ok_or_else(short)?;
        if !(FORMAT_VERSION_READ_MIN..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                file: file.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let header_len = read_u32(bytes, 12).ok_or_else(short)?;
        if header_len as usize != HEADER_BYTES {
            return Err(Error::corrupt(
                file,
                12,
                format!("header_len {header_len}, expected {HEADER_BYTES}"),
            ));
        }
        if bytes
            .get(40..CRC_OFFSET)
            .is_some_and(|reserved| reserved.iter().any(|&b| b != 0))
        {
            return Err(Error::corrupt(
                file,
                40,
                "reserved header bytes are not zero",
            ));
        }
        Ok(FileHeader {
            magic,
            store_id: read_array::<16>(bytes, 16).ok_or_else(short)?,
            lsn: read_u64(bytes, 32).ok_or_else(short)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_bit_flip_detected() {
        let header = FileHeader {
            magic: SEGMENT_MAGIC,
            store_id: [7; 16],
            lsn: 42,
        };
        let bytes = header.encode();
        let path = Path::new("x.wal");
        assert_eq!(
            FileHeader::decode(&bytes, SEGMENT_MAGIC, path).ok(),
            Some(header)
        );
        for bit in 0..HEADER_BYTES * 8 {
            let mut damaged = bytes;
            if let Some(byte) = damaged.get_mut(bit / 8) {
                *byte ^= 1 << (bit % 8);
            }
            assert!(
                FileHeader::decode(&damaged, SEGMENT_MAGIC, path).is_err(),
                "bit {bit}"
            );
        }
        assert!(FileHeader::decode(&[0u8; HEADER_BYTES], SEGMENT_MAGIC, path).is_err());
    }
}
