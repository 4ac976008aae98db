//! A file fingerprint: what an indexer remembers to re-index only what changed.

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
