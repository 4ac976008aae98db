//! Byte-level helpers shared by the WAL and snapshot formats: magic numbers, the format
//! version, little-endian field access, and the masked checksum.
//!
//! Every on-disk integer is little-endian. Every checksum is CRC-32 (IEEE, as computed by
//! crc32fast) XOR [`CRC_MASK`], so that an all-zero region (a preallocated, never-written
//! tail) never validates: crc32 of zeros XOR the mask is never zero for the lengths used.

/// The format version this build writes. See `format-spec/README.md`.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build reads. Version 3 has the bytes of version 2; it
/// adds a rule for processes (readers lock the snapshots they map, so that a writer may
/// reuse a superseded snapshot's file, `snapshot::reuse`), and a build that takes no such
/// lock refuses version 3 files instead of mapping them.
pub const FORMAT_VERSION_READ_MIN: u32 = 2;

const _: () = assert!(FORMAT_VERSION_READ_MIN <= FORMAT_VERSION);

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

/// Bytes [`put_varint`] writes for `value`: 1 to 10.
pub fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
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
///
/// With 8 bytes at hand, the varint is found and its 7-bit groups joined in a word,
/// without a loop (fingerprint values are mostly these: a 9-byte mtime in nanoseconds,
/// and scans decode one per entry).
#[inline]
pub fn get_postcard_u64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let rest = bytes.get(*pos..)?;
    if let Some(&first) = rest.first()
        && first < 0x80
    {
        *pos += 1;
        return Some(u64::from(first));
    }
    if let Some(first8) = rest.first_chunk::<8>() {
        let word = u64::from_le_bytes(*first8);
        // A byte whose high bit is clear ends the varint.
        let ends = !word & 0x8080_8080_8080_8080;
        if ends != 0 {
            let len = (ends.trailing_zeros() / 8 + 1) as usize;
            let kept = match len {
                8 => word,
                _ => word & ((1u64 << (8 * len)) - 1),
            };
            *pos += len;
            return Some(join_7bit_groups(kept));
        }
        // Nine or ten bytes: the eighth carries on.
        let low = join_7bit_groups(word);
        let ninth = *rest.get(8)?;
        if ninth < 0x80 {
            *pos += 9;
            return Some(low | u64::from(ninth) << 56);
        }
        let tenth = *rest.get(9)?;
        if tenth > 1 {
            return None;
        }
        *pos += 10;
        return Some(low | u64::from(ninth & 0x7f) << 56 | u64::from(tenth) << 63);
    }
    get_postcard_u64_bytewise(bytes, pos)
}

/// Joins the low 7 bits of each byte of a little-endian word into 56 bits.
fn join_7bit_groups(word: u64) -> u64 {
    let x = word & 0x7f7f_7f7f_7f7f_7f7f;
    let x = ((x & 0x7f00_7f00_7f00_7f00) >> 1) | (x & 0x007f_007f_007f_007f);
    let x = ((x & 0x3fff_0000_3fff_0000) >> 2) | (x & 0x0000_3fff_0000_3fff);
    ((x & 0x0fff_ffff_0000_0000) >> 4) | (x & 0x0000_0000_0fff_ffff)
}

/// [`get_postcard_u64`] a byte at a time (near the end of the input).
fn get_postcard_u64_bytewise(bytes: &[u8], pos: &mut usize) -> Option<u64> {
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
    #[test]
    fn varint_len_is_what_put_varint_writes() {
        let mut values = vec![0, 1, u64::MAX, i64::MAX as u64];
        for shift in 0..64 {
            let power = 1u64 << shift;
            values.extend([power - 1, power, power + 1]);
        }
        for value in values {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(varint_len(value), out.len(), "{value}");
        }
    }

    use super::*;

    #[test]
    fn zeros_never_validate() {
        for len in [0usize, 4, 8, 24, 28, 56, 64, 4096] {
            let zeros = vec![0u8; len];
            assert_ne!(checksum(&[&zeros]), 0, "len {len}");
        }
    }

    #[test]
    fn postcard_u64_word_path_agrees_with_bytewise_and_postcard() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for value in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            1 << 56,
            (1 << 63) - 1,
            u64::MAX,
        ] {
            let mut encoded = postcard::to_allocvec(&value).expect("encode");
            inputs.push(encoded.clone());
            encoded.extend_from_slice(&[0x80, 0x05, 0xff]);
            inputs.push(encoded);
        }
        for _ in 0..20_000 {
            let len = (next() % 14) as usize;
            let continuation = next() % 3;
            inputs.push(
                (0..len)
                    .map(|_| {
                        let byte = next() as u8;
                        if continuation == 0 { byte | 0x80 } else { byte }
                    })
                    .collect(),
            );
            // Real values: zigzagged mtimes in nanoseconds and sizes, then more bytes.
            let mut encoded = postcard::to_allocvec(&(next() >> (next() % 64))).expect("encode");
            encoded.push(next() as u8);
            inputs.push(encoded);
        }
        for input in &inputs {
            for start in 0..input.len().min(3) {
                let (mut fast, mut slow) = (start, start);
                let got = get_postcard_u64(input, &mut fast);
                let want = get_postcard_u64_bytewise(input, &mut slow);
                assert_eq!(got, want, "{input:?} from {start}");
                if want.is_some() {
                    assert_eq!(fast, slow, "{input:?} from {start}");
                }
                let rest = &input[start..];
                assert_eq!(
                    got,
                    postcard::take_from_bytes::<u64>(rest).ok().map(|(v, _)| v)
                );
            }
        }
    }

    #[test]
    fn varint_round_trip() {
        let edges = (1..64).flat_map(|bit| [(1u64 << bit) - 1, 1u64 << bit]);
        for value in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX]
            .into_iter()
            .chain(edges)
        {
            let mut out = vec![7u8];
            put_varint(&mut out, value);
            let written = out.split_off(1);
            assert_eq!(written, postcard::to_allocvec(&value).expect("postcard"));
            let out = written;
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
