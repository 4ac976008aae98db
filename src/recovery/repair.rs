//! Case 2r: a snapshot that fails its checks is rebuilt from its parity sidecar
//! (`snapshot::parity`) before recovery falls back to an older one.
//!
//! The rebuilt bytes are used only if every page matches the sidecar's checksum and the
//! rebuilt snapshot then passes every check (`Snapshot::verify_all`). Until recovery has
//! succeeded the rebuilt snapshot lives in memory; a writer then makes it durable
//! ([`persist`]), a read-only open keeps it in memory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::header::{FileHeader, SNAPSHOT_MAGIC};
use crate::snapshot::parity::{self, PARITY_MAGIC, Parity};
use crate::snapshot::reader::Snapshot;
use crate::storage::Mapped;
use crate::storage::{OpenMode, Storage};

/// A snapshot rebuilt in memory.
pub(crate) struct Rebuilt {
    pub snapshot: Snapshot,
    pub bytes: std::sync::Arc<[u8]>,
    /// Byte offsets of the 4 KiB pages rebuilt.
    pub pages: Vec<u64>,
}

/// Reads a whole file, to its length.
pub(crate) fn read_whole(storage: &dyn Storage, path: &Path) -> Result<Vec<u8>> {
    let file = storage
        .open_file(path, OpenMode::Read)
        .map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(bytes)
}

/// Reads a whole file to its length; a range that fails to read (a bad sector: `EIO`)
/// reads as zeros, 4 KiB page by page, so that the parity rebuilds it.
pub(crate) fn read_readable(storage: &dyn Storage, path: &Path) -> Result<Vec<u8>> {
    const CHUNK_BYTES: usize = 1 << 20;
    let file = storage
        .open_file(path, OpenMode::Read)
        .map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    for (chunk_index, chunk) in bytes.chunks_mut(CHUNK_BYTES).enumerate() {
        let at = (chunk_index * CHUNK_BYTES) as u64;
        if file.read_exact_at(chunk, at).is_ok() {
            continue;
        }
        for (page_index, page) in chunk.chunks_mut(parity::PAGE_BYTES).enumerate() {
            let page_at = at + (page_index * parity::PAGE_BYTES) as u64;
            if file.read_exact_at(page, page_at).is_err() {
                page.fill(0);
            }
        }
    }
    Ok(bytes)
}

/// Rebuilds the snapshot of `lsn` at `path` from `<lsn>.par` beside it. `Err` says why
/// it cannot be (no sidecar, a damaged sidecar, damage the parity does not cover).
pub(crate) fn rebuild(
    storage: &dyn Storage,
    path: &Path,
    lsn: u64,
) -> std::result::Result<Rebuilt, String> {
    let sidecar_path = sidecar_of(path, lsn);
    if !storage.exists(&sidecar_path).unwrap_or(false) {
        return Err("no parity sidecar".into());
    }
    let sidecar = read_whole(storage, &sidecar_path).map_err(|e| e.to_string())?;
    let store_id = FileHeader::decode(&sidecar, PARITY_MAGIC, &sidecar_path)
        .map_err(|e| e.to_string())?
        .store_id;
    let parity =
        Parity::parse(&sidecar, &sidecar_path, store_id, lsn).map_err(|e| e.to_string())?;
    let damaged = read_readable(storage, path).map_err(|e| e.to_string())?;
    // Where the snapshot's own header is intact, it must name the sidecar's store.
    if let Ok(header) = FileHeader::decode(&damaged, SNAPSHOT_MAGIC, path)
        && header.store_id != store_id
    {
        return Err("the sidecar belongs to another store".into());
    }
    let repaired = parity
        .repair(&damaged)
        .map_err(|why| format!("parity cannot rebuild it: {why}"))?;
    if repaired.pages.is_empty() && damaged.len() as u64 == parity.snapshot_bytes() {
        return Err("its pages match the parity sidecar: nothing to rebuild".into());
    }
    let bytes: std::sync::Arc<[u8]> = repaired.bytes.into();
    let snapshot = Snapshot::open(path, Mapped::from_bytes(bytes.clone()))
        .and_then(|snapshot| snapshot.verify_all().map(|_| snapshot))
        .map_err(|e| format!("the rebuilt snapshot fails its checks: {e}"))?;
    if snapshot.lsn() != lsn || snapshot.header().store_id != store_id {
        return Err("the rebuilt snapshot names another lsn or store".into());
    }
    Ok(Rebuilt {
        snapshot,
        bytes,
        pages: repaired
            .pages
            .iter()
            .map(|page| page * parity::PAGE_BYTES as u64)
            .collect(),
    })
}

/// `<lsn>.par` in the directory of `path`.
pub(super) fn sidecar_of(path: &Path, lsn: u64) -> PathBuf {
    path.with_file_name(parity::file_name(lsn))
}

/// Makes a rebuilt snapshot durable in place of the damaged one, whose bytes the caller
/// has copied into `quarantine/` first (`quarantine::copy`): the rebuilt bytes go to
/// `<lsn>.snap.tmp`, synced, renamed over `<lsn>.snap`, and the directory synced. A crash
/// at any step leaves the damaged snapshot (rebuilt again at the next open) or the
/// rebuilt one, and at most a temporary that recovery removes; a failure removes the
/// temporary (best effort).
pub(crate) fn persist(storage: &dyn Storage, path: &Path, lsn: u64, rebuilt: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(crate::snapshot::tmp_name(lsn));
    let written = crate::storage::create_temp(storage, &tmp)
        .and_then(|file| {
            file.write_all_at(rebuilt, 0)
                .map_err(|e| Error::io("write", &tmp, e))?;
            file.sync_data()
                .map_err(|e| Error::io("fdatasync", &tmp, e))
        })
        .and_then(|()| {
            storage
                .rename(&tmp, path)
                .map_err(|e| Error::io("rename", &tmp, e))
        });
    if let Err(error) = written {
        let _ = storage.remove_file(&tmp);
        return Err(error);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Copies the damaged snapshot at `path` into `quarantine/` and puts the `rebuilt`
/// bytes in its place ([`persist`]). Returns where the damaged bytes went. If putting the
/// rebuilt bytes in place fails, a copy this call created is removed (best effort), so
/// that a failed open adds nothing.
pub(crate) fn replace_damaged(
    storage: &dyn Storage,
    dir: &Path,
    path: &Path,
    lsn: u64,
    rebuilt: &[u8],
) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
    // A range that cannot be read (a bad sector) is copied as zeros.
    let damaged = read_readable(storage, path)?;
    let (copy, created) = super::quarantine::copy(storage, dir, &name, &damaged)?;
    if let Err(error) = persist(storage, path, lsn, rebuilt) {
        if created {
            let _ = storage.remove_file(&copy);
        }
        return Err(error);
    }
    Ok(copy)
}
