//! One WAL record: a 32-byte header, a postcard payload, zero padding to 8 bytes.
//!
//! ```text
//! offset size field
//!      0    4 len_crc      masked CRC-32 of bytes 4..8 (the length is checked before use)
//!      4    4 payload_len  u32 LE, <= PAYLOAD_BYTES_MAX
//!      8    8 lsn          u64 LE, dense: previous record's lsn + 1
//!     16    8 durable_lsn  u64 LE, highest lsn known durable when this record was written
//!     24    1 kind         1 = transaction
//!     25    3 reserved     zero
//!     28    4 crc          masked CRC-32 of bytes 0..28 and the payload
//!     32    n payload      postcard(Vec<Op>)
//!   32+n    p padding      zeros, so the next record starts at a multiple of 8
//! ```
//! `durable_lsn` makes a hole decidable from the bytes: a record whose `durable_lsn` is
//! below the lsn of a damaged record before it was written while that record was not yet
//! durable, so the damage is a torn (never acknowledged) write, not corruption.

use crate::codec::{align_up, checksum, read_u32, read_u64};

/// Header size in bytes.
pub const HEADER_BYTES: usize = 32;
/// Records start at multiples of this.
pub const ALIGN_BYTES: u64 = 8;
/// Largest payload accepted, in bytes. Bounds every length read from disk.
pub const PAYLOAD_BYTES_MAX: u32 = 256 * 1024 * 1024;
/// The kind byte of a transaction record.
pub const KIND_TXN: u8 = 1;

const _: () = assert!((HEADER_BYTES as u64).is_multiple_of(ALIGN_BYTES));
const _: () = assert!(ALIGN_BYTES.is_power_of_two());

/// A record's fixed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes.
    pub payload_len: u32,
    /// The transaction's lsn.
    pub lsn: u64,
    /// Highest lsn known durable when this record was written (< `lsn`).
    pub durable_lsn: u64,
}

/// Total bytes a record with `payload_len` bytes of payload occupies, padding included.
pub fn framed_len(payload_len: usize) -> u64 {
    align_up(HEADER_BYTES as u64 + payload_len as u64, ALIGN_BYTES)
}

/// Appends the framed record to `out`.
pub fn encode_into(out: &mut Vec<u8>, lsn: u64, durable_lsn: u64, payload: &[u8]) {
    debug_assert!(
        durable_lsn < lsn,
        "durable_lsn {durable_lsn} must precede lsn {lsn}"
    );
    assert!(
        payload.len() <= PAYLOAD_BYTES_MAX as usize,
        "payload over the bound"
    );
    let start = out.len();
    let payload_len = payload.len() as u32;
    let len_bytes = payload_len.to_le_bytes();
    out.extend_from_slice(&checksum(&[&len_bytes]).to_le_bytes());
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&durable_lsn.to_le_bytes());
    out.extend_from_slice(&[KIND_TXN, 0, 0, 0]);
    let crc = checksum(&[out.get(start..).unwrap_or_default(), payload]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    let padded = start + framed_len(payload.len()) as usize;
    out.resize(padded, 0);
}

/// Why bytes at an offset are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Fewer bytes remain than the header or the declared payload needs.
    Truncated {
        /// Bytes needed from the record's start.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The length checksum does not match (includes all-zero bytes).
    LengthChecksum,
    /// The length is over [`PAYLOAD_BYTES_MAX`].
    LengthBound(u32),
    /// The record checksum does not match.
    Checksum {
        /// Stored value.
        stored: u32,
        /// Computed value.
        computed: u32,
    },
    /// Kind, reserved bytes or `durable_lsn` are not what a writer produces.
    Fields(String),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Truncated { needed, available } => {
                write!(f, "record needs {needed} bytes, only {available} remain")
            }
            Invalid::LengthChecksum => write!(f, "record length checksum mismatch"),
            Invalid::LengthBound(len) => {
                write!(f, "record length {len} over the bound {PAYLOAD_BYTES_MAX}")
            }
            Invalid::Checksum { stored, computed } => {
                write!(
                    f,
                    "record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            Invalid::Fields(why) => write!(f, "record fields invalid: {why}"),
        }
    }
}

/// Decodes the record at the start of `bytes`: header and payload slice.
pub fn decode(bytes: &[u8]) -> Result<(RecordHeader, &[u8]), Invalid> {
    let available = bytes.len() as u64;
    let truncated = |needed: u64| Invalid::Truncated { needed, available };
    let header = bytes
        .get(..HEADER_BYTES)
        .ok_or(truncated(HEADER_BYTES as u64))?;
    let len_crc = read_u32(header, 0).ok_or(truncated(4))?;
    let len_bytes = header.get(4..8).ok_or(truncated(8))?;
    if checksum(&[len_bytes]) != len_crc {
        return Err(Invalid::LengthChecksum);
    }
    let payload_len = read_u32(header, 4).ok_or(truncated(8))?;
    if payload_len > PAYLOAD_BYTES_MAX {
        return Err(Invalid::LengthBound(payload_len));
    }
    let payload_end = HEADER_BYTES + payload_len as usize;
    let payload = bytes
        .get(HEADER_BYTES..payload_end)
        .ok_or(truncated(payload_end as u64))?;
    let stored = read_u32(header, 28).ok_or(truncated(32))?;
    let computed = checksum(&[header.get(..28).unwrap_or_default(), payload]);
    if stored != computed {
        return Err(Invalid::Checksum { stored, computed });
    }
    let lsn = read_u64(header, 8).ok_or(truncated(16))?;
    let durable_lsn = read_u64(header, 16).ok_or(truncated(24))?;
    if header.get(24..28) != Some(&[KIND_TXN, 0, 0, 0][..]) {
        return Err(Invalid::Fields(format!(
            "kind/reserved bytes {:?}",
            header.get(24..28)
        )));
    }
    if durable_lsn >= lsn {
        return Err(Invalid::Fields(format!(
            "durable_lsn {durable_lsn} >= lsn {lsn}"
        )));
    }
    Ok((
        RecordHeader {
            payload_len,
            lsn,
            durable_lsn,
        },
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_flips() {
        let mut out = Vec::new();
        encode_into(&mut out, 5, 3, b"hello world");
        assert_eq!(out.len() as u64, framed_len(11));
        let (header, payload) = decode(&out).expect("valid record");
        assert_eq!(
            header,
            RecordHeader {
                payload_len: 11,
                lsn: 5,
                durable_lsn: 3
            }
        );
        assert_eq!(payload, b"hello world");
        for bit in 0..(HEADER_BYTES + 11) * 8 {
            let mut damaged = out.clone();
            if let Some(byte) = damaged.get_mut(bit / 8) {
                *byte ^= 1 << (bit % 8);
            }
            assert!(decode(&damaged).is_err(), "bit {bit} undetected");
        }
        assert_eq!(decode(&[0u8; 64]), Err(Invalid::LengthChecksum));
    }
}
