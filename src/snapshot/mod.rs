//! Snapshot files: the whole state at one lsn, sorted and binary-searchable in place.
//!
//! ```text
//! +--------------------+ 0
//! | header (64 bytes)  |  magic b"WALSTSNP", version, store id, lsn (see header.rs)
//! +--------------------+ 64
//! | data block 0       |  entries sorted by key, prefix-compressed, then a masked crc32
//! | data block 1       |
//! | ...                |
//! +--------------------+
//! | index block 0      |  per data block: offset, length, entry count, first key; crc32
//! | ...                |
//! +--------------------+ top_offset
//! | top index          |  per-collection entry counts, then per index block: offset,
//! |                    |  length, first data block ordinal, first key
//! +--------------------+
//! | footer (64 bytes)  |  magic b"WALSTEND", top offset/length/crc, counts; crc32
//! +--------------------+ end
//! ```
//! Opening checks the header, the footer and the top index (a few KiB even for millions
//! of entries). Each index and data block's checksum is checked the first time it is
//! read; `verify` reads them all. A snapshot is written once under a `.snap.tmp` name and
//! never modified after its rename while it has that name; a superseded one's file may be
//! written over as the next snapshot ([`reuse`]), but only while no reader maps it.

pub mod block;
pub mod parity;
pub mod reader;
pub mod reuse;
pub mod writer;

/// Suffix of a snapshot file.
pub const SUFFIX: &str = ".snap";
/// Suffix of a snapshot being written.
pub const TMP_SUFFIX: &str = ".snap.tmp";
/// Magic at the start of the footer.
pub const FOOTER_MAGIC: [u8; 8] = *b"WALSTEND";
/// Footer size in bytes.
pub const FOOTER_BYTES: usize = 64;
/// A data or index block is closed once its body reaches this many bytes.
pub const BLOCK_BYTES_TARGET: usize = 4096;
/// Number of collection tags counted in the top index.
pub const SECTION_COUNT: usize = 7;

const _: () = assert!(SECTION_COUNT == crate::model::keys::Tag::ALL.len());

/// `<lsn, 20 digits>.snap`.
pub fn file_name(lsn: u64) -> String {
    crate::wal::segment::numbered_name(lsn, SUFFIX)
}

/// `<lsn, 20 digits>.snap.tmp`.
pub fn tmp_name(lsn: u64) -> String {
    crate::wal::segment::numbered_name(lsn, TMP_SUFFIX)
}
