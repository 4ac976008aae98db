//! Encoding of block bodies.
//!
//! Data block entry: `varint shared, varint suffix_len, varint value_len, suffix, value`,
//! where `shared` is the length of the prefix shared with the previous key in the block
//! (0 for the first entry). Index block entry: `u64 offset, u32 body_len, u32 entries,
//! varint key_len, first key`. Top index entry: `u64 offset, u32 body_len, u64
//! first_block, varint key_len, first key`. Every block body is followed by its masked
//! crc32 (`u32`).

use crate::codec::{get_varint, put_varint, read_u32, read_u64};

/// Appends a data block entry.
pub fn put_entry(out: &mut Vec<u8>, previous_key: &[u8], key: &[u8], value: &[u8]) {
    let shared = previous_key
        .iter()
        .zip(key)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = key.get(shared..).unwrap_or_default();
    put_varint(out, shared as u64);
    put_varint(out, suffix.len() as u64);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(suffix);
    out.extend_from_slice(value);
}

/// Decodes the data block entry at `*pos`, rebuilding its key into `key` (which holds the
/// previous key). Returns the value's range. `None`: the entry is malformed.
pub fn next_entry(
    body: &[u8],
    pos: &mut usize,
    key: &mut Vec<u8>,
) -> Option<std::ops::Range<usize>> {
    let shared = usize::try_from(get_varint(body, pos)?).ok()?;
    let suffix_len = usize::try_from(get_varint(body, pos)?).ok()?;
    let value_len = usize::try_from(get_varint(body, pos)?).ok()?;
    if shared > key.len() {
        return None;
    }
    let suffix = body.get(*pos..pos.checked_add(suffix_len)?)?;
    key.truncate(shared);
    key.extend_from_slice(suffix);
    let value_start = *pos + suffix_len;
    let value_end = value_start.checked_add(value_len)?;
    body.get(value_start..value_end)?;
    *pos = value_end;
    Some(value_start..value_end)
}

/// A pointer to a block, with the first key it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    /// Offset of the block body in the file.
    pub offset: u64,
    /// Length of the body (the crc follows it).
    pub body_len: u32,
    /// Index entry: entries in the data block. Top entry: ordinal of the first data block.
    pub count: u64,
    /// The first key in the block.
    pub first_key: Vec<u8>,
}

/// Appends an index entry (`wide`: the top index's u64 count) .
pub fn put_ref(out: &mut Vec<u8>, block: &BlockRef, wide: bool) {
    out.extend_from_slice(&block.offset.to_le_bytes());
    out.extend_from_slice(&block.body_len.to_le_bytes());
    if wide {
        out.extend_from_slice(&block.count.to_le_bytes());
    } else {
        out.extend_from_slice(&(block.count as u32).to_le_bytes());
    }
    put_varint(out, block.first_key.len() as u64);
    out.extend_from_slice(&block.first_key);
}

/// Decodes all index entries of a body. `None`: malformed.
pub fn read_refs(body: &[u8], wide: bool) -> Option<Vec<BlockRef>> {
    let mut refs = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let offset = read_u64(body, pos)?;
        let body_len = read_u32(body, pos + 8)?;
        pos += 12;
        let count = if wide {
            let count = read_u64(body, pos)?;
            pos += 8;
            count
        } else {
            let count = read_u32(body, pos)?;
            pos += 4;
            u64::from(count)
        };
        let key_len = usize::try_from(get_varint(body, &mut pos)?).ok()?;
        let first_key = body.get(pos..pos.checked_add(key_len)?)?.to_vec();
        pos += key_len;
        refs.push(BlockRef {
            offset,
            body_len,
            count,
            first_key,
        });
    }
    Some(refs)
}
