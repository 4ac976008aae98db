//! A file fingerprint: what an indexer remembers to re-index only what changed.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest hash a fingerprint holds, in bytes (256 bits).
pub const HASH_BYTES_MAX: usize = 32;

/// Content hash, size and modification time of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Content hash, at most [`HASH_BYTES_MAX`] bytes.
    pub hash: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, in whatever unit the caller chose (nanoseconds since the epoch
    /// is conventional).
    pub mtime: i64,
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
