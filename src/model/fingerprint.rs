//! A file fingerprint: what an indexer remembers to re-index only what changed.

use serde::{Deserialize, Serialize};

use crate::codec::{get_postcard_u64, put_varint};
use crate::error::{Error, Result};

/// Longest hash a fingerprint holds, in bytes (256 bits).
pub const HASH_BYTES_MAX: usize = 32;

/// Content hash, size and modification time of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Content hash, at most [`HASH_BYTES_MAX`] bytes.
    #[serde(serialize_with = "serialize_hash")]
    pub hash: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, in whatever unit the caller chose (nanoseconds since the epoch
    /// is conventional).
    pub mtime: i64,
}

/// The hash as one byte string rather than a sequence of `u8`s: postcard writes both as
/// the length then the bytes (so the stored format is unchanged), but a byte string in one
/// copy instead of one element at a time; JSON writes both as an array of numbers.
fn serialize_hash<S: serde::Serializer>(
    hash: &[u8],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_bytes(hash)
}

impl Fingerprint {
    /// A fingerprint; fails if `hash` is longer than [`HASH_BYTES_MAX`].
    pub fn new(hash: impl Into<Vec<u8>>, size: u64, mtime: i64) -> Result<Self> {
        let fingerprint = Fingerprint {
            hash: hash.into(),
            size,
            mtime,
        };
        fingerprint.check()?;
        Ok(fingerprint)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.hash.len() > HASH_BYTES_MAX {
            return Err(Error::InvalidArgument(format!(
                "fingerprint hash is {} bytes, at most {HASH_BYTES_MAX} allowed",
                self.hash.len()
            )));
        }
        Ok(())
    }
}

/// A fingerprint borrowed from the store (see [`crate::ReadTxn::for_each_fingerprint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FingerprintRef<'a> {
    /// Content hash.
    pub hash: &'a [u8],
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub mtime: i64,
}

impl FingerprintRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Fingerprint {
        Fingerprint {
            hash: self.hash.to_vec(),
            size: self.size,
            mtime: self.mtime,
        }
    }
}

impl Fingerprint {
    /// Decodes a stored fingerprint value without copying its hash.
    pub(crate) fn decode_borrowed(bytes: &[u8]) -> Result<FingerprintRef<'_>> {
        Self::take_stored_parts(bytes, &mut 0)
            .map(|(hash, size, mtime)| FingerprintRef { hash, size, mtime })
            .ok_or_else(|| Error::Conversion("stored fingerprint does not decode".into()))
    }

    /// Decodes a stored fingerprint value: the same bytes, the same result and the same
    /// failures as `postcard::from_bytes::<Fingerprint>` (trailing bytes ignored), without
    /// serde's byte-by-byte sequence visit.
    pub(crate) fn decode_stored(bytes: &[u8]) -> Result<Fingerprint> {
        Self::take_stored(bytes, &mut 0)
            .ok_or_else(|| Error::Conversion("stored fingerprint does not decode".into()))
    }

    /// Reads a postcard-encoded fingerprint at `*pos`, advancing past it. `None` where
    /// postcard fails.
    pub(crate) fn take_stored(bytes: &[u8], pos: &mut usize) -> Option<Fingerprint> {
        let (hash, size, mtime) = Self::take_stored_parts(bytes, pos)?;
        Some(Fingerprint {
            hash: hash.to_vec(),
            size,
            mtime,
        })
    }

    /// [`Fingerprint::take_stored`], borrowing the hash.
    pub(crate) fn take_stored_parts<'a>(
        bytes: &'a [u8],
        pos: &mut usize,
    ) -> Option<(&'a [u8], u64, i64)> {
        let len = usize::try_from(get_postcard_u64(bytes, pos)?).ok()?;
        let hash = bytes.get(*pos..pos.checked_add(len)?)?;
        *pos += len;
        let size = get_postcard_u64(bytes, pos)?;
        let zigzag = get_postcard_u64(bytes, pos)?;
        let mtime = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        Some((hash, size, mtime))
    }

    /// Appends the stored form (`postcard(self)`) of a fingerprint given by its parts.
    pub(crate) fn put_stored(out: &mut Vec<u8>, hash: &[u8], size: u64, mtime: i64) {
        put_varint(out, hash.len() as u64);
        out.extend_from_slice(hash);
        put_varint(out, size);
        put_varint(out, ((mtime << 1) ^ (mtime >> 63)) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_is_postcard() {
        let fingerprints = [
            Fingerprint::new([0x11; 32], 100, -1).unwrap(),
            Fingerprint::new([], 0, 0).unwrap(),
            Fingerprint::new([0x22; 8], u64::MAX, i64::MIN).unwrap(),
            Fingerprint::new(vec![0x80; 31], 1 << 40, i64::MAX).unwrap(),
        ];
        for fp in fingerprints {
            let expected = postcard::to_allocvec(&fp).unwrap();
            let mut ours = Vec::new();
            Fingerprint::put_stored(&mut ours, &fp.hash, fp.size, fp.mtime);
            assert_eq!(ours, expected);
            assert_eq!(Fingerprint::decode_stored(&expected).unwrap(), fp);
            // Every truncation and every single-byte change fails or decodes as postcard does.
            for cut in 0..expected.len() {
                let short = &expected[..cut];
                assert_eq!(
                    Fingerprint::decode_stored(short).ok(),
                    postcard::from_bytes::<Fingerprint>(short).ok()
                );
            }
            for at in 0..expected.len() {
                for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut changed = expected.clone();
                    changed[at] = byte;
                    assert_eq!(
                        Fingerprint::decode_stored(&changed).ok(),
                        postcard::from_bytes::<Fingerprint>(&changed).ok(),
                        "{changed:?}"
                    );
                }
            }
        }
    }

    /// The stored bytes are those of the derived encoding (hash as a sequence of `u8`).
    #[test]
    fn encoding_unchanged() {
        #[derive(Serialize)]
        struct Derived {
            hash: Vec<u8>,
            size: u64,
            mtime: i64,
        }
        for len in [0usize, 1, 20, 32] {
            let hash: Vec<u8> = (0..len).map(|i| (i * 37 + 200) as u8).collect();
            let fingerprint = Fingerprint::new(hash.clone(), 1 << 40, -7).expect("valid");
            let derived = Derived {
                hash,
                size: 1 << 40,
                mtime: -7,
            };
            let bytes = postcard::to_allocvec(&fingerprint).expect("encode");
            assert_eq!(bytes, postcard::to_allocvec(&derived).expect("encode"));
            let back: Fingerprint = postcard::from_bytes(&bytes).expect("decode");
            assert_eq!(back, fingerprint);
            let json = serde_json::to_string(&fingerprint).expect("json");
            assert_eq!(json, serde_json::to_string(&derived).expect("json"));
            assert_eq!(
                serde_json::from_str::<Fingerprint>(&json).expect("json"),
                fingerprint
            );
        }
    }
}
