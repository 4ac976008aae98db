//! Classifying the names in a store directory.

use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::wal::segment::parse_numbered;

/// The store files in a directory, by kind. Names the store does not write are ignored.
#[derive(Debug, Default, Clone)]
pub(crate) struct DirListing {
    /// First lsns of `.wal` segments, ascending.
    pub segments: Vec<u64>,
    /// Lsns of `.snap` snapshots, ascending.
    pub snapshots: Vec<u64>,
    /// Lsns of `.par` parity sidecars, ascending.
    pub parities: Vec<u64>,
    /// Names of the store's own temporaries (`.wal.tmp`, `.snap.tmp`, `.par.tmp`).
    pub temps: Vec<String>,
    /// Whether `LOCK` exists.
    pub has_lock: bool,
}

impl DirListing {
    /// Whether anything in the directory belongs to a store.
    pub fn is_store(&self) -> bool {
        !self.segments.is_empty() || !self.snapshots.is_empty() || self.has_lock
    }
}

/// Lists and classifies `dir`.
pub(crate) fn list(storage: &dyn Storage, dir: &Path) -> Result<DirListing> {
    let names = storage
        .list_dir(dir)
        .map_err(|e| Error::io("list directory", dir, e))?;
    let mut listing = DirListing::default();
    for name in names {
        if let Some(lsn) = parse_numbered(&name, crate::wal::segment::SUFFIX) {
            listing.segments.push(lsn);
        } else if let Some(lsn) = parse_numbered(&name, crate::snapshot::SUFFIX) {
            listing.snapshots.push(lsn);
        } else if let Some(lsn) = parse_numbered(&name, crate::snapshot::parity::SUFFIX) {
            listing.parities.push(lsn);
        } else if parse_numbered(&name, crate::wal::segment::TMP_SUFFIX).is_some()
            || parse_numbered(&name, crate::snapshot::TMP_SUFFIX).is_some()
            || parse_numbered(&name, crate::snapshot::parity::TMP_SUFFIX).is_some()
        {
            listing.temps.push(name);
        } else if name == crate::store::LOCK_FILE {
            listing.has_lock = true;
        }
    }
    listing.segments.sort_unstable();
    listing.snapshots.sort_unstable();
    listing.parities.sort_unstable();
    listing.temps.sort();
    Ok(listing)
}
