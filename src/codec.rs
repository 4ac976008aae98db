//! Byte-level helpers shared by the WAL and snapshot formats: magic numbers, the format
//! version, little-endian field access, and the masked checksum.
//!
//! Every on-disk integer is little-endian. Every checksum is CRC-32 (IEEE, as computed by
//! crc32fast) XOR [`CRC_MASK`], so that an all-zero region (a preallocated, never-written
//! tail) never validates: crc32 of zeros XOR the mask is never zero for the lengths used.

/// The format version this build writes and reads. See `format-spec/README.md`.
pub const FORMAT_VERSION: u32 = 2;

/// XORed into every stored checksum, so zero-filled bytes never carry a valid checksum.
pub const CRC_MASK: u32 = 0xA5C3_5A3C;

/// Masked CRC-32 of the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize() ^ CRC_MASK
}

/// Reads a little-endian u32 at `offset`, or `None` if `bytes` is too short.
pub fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

/// Reads a little-endian u64 at `offset`, or `None` if `bytes` is too short.
pub fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let field = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

/// Reads `N` bytes at `offset`, or `None` if `bytes` is too short.
pub fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// Rounds `value` up to a multiple of `align` (a power of two).
pub const fn align_up(value: u64, align: u64) -> u64 {
    (value + align - 1) & !(align - 1)
}

/// Appends a LEB128 varint (as postcard encodes lengths).
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a LEB128 varint at `*pos`, advancing it. `None` if cut or longer than 10 bytes.
#[inline]
pub fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    // Most varints (doc gaps, term frequencies) are one byte: take them without the loop.
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    get_varint_long(bytes, pos)
}

/// [`get_varint`] for varints of two bytes or more.
fn get_varint_long(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Reads a `u64` varint exactly as postcard does: at most 10 bytes, the tenth at most 1
/// (no overflow). `None` where postcard fails.
pub fn get_postcard_u64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10u32 {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (i < 9 || byte <= 1).then_some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_never_validate() {
        for len in [0usize, 4, 8, 24, 28, 56, 64, 4096] {
            let zeros = vec![0u8; len];
            assert_ne!(checksum(&[&zeros]), 0, "len {len}");
        }
    }

    #[test]
    fn varint_round_trip() {
        for value in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(value));
            assert_eq!(pos, out.len());
        }
        assert_eq!(get_varint(&[0x80], &mut 0), None);
    }

    #[test]
    fn postcard_varints_match_postcard() {
        let mut cases: Vec<Vec<u8>> = vec![
            vec![0x80; 10],
            vec![0xff; 11],
            vec![0x80, 0x00],
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            vec![0x81],
            vec![],
        ];
        for value in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            cases.push(out);
        }
        for case in cases {
            let mut pos = 0;
            let ours = get_postcard_u64(&case, &mut pos);
            let theirs = postcard::take_from_bytes::<u64>(&case).ok();
            assert_eq!(ours, theirs.map(|(v, _)| v), "{case:?}");
            if let Some((_, rest)) = theirs {
                assert_eq!(pos, case.len() - rest.len());
            }
        }
    }
}
