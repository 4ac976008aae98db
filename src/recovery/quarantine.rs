//! `quarantine/`: where damaged bytes go instead of being deleted. Files there are never
//! read by walstore, never overwritten (a taken name gets `.1`, `.2`, ...) and never
//! deleted.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage};

/// Name of the directory that receives damaged bytes.
pub const QUARANTINE_DIR: &str = "quarantine";

fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<()> {
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}

fn candidates(quarantine: &Path, name: &str) -> impl Iterator<Item = PathBuf> {
    (0u32..).map(move |attempt| {
        if attempt == 0 {
            quarantine.join(name)
        } else {
            quarantine.join(format!("{name}.{attempt}"))
        }
    })
}

/// A free path in `dir/quarantine/` (created, and made durable in `dir`, if missing)
/// named `name`, or `name.1`, `name.2`, ... if taken: quarantined bytes are never
/// overwritten, and a salvage interrupted by a crash can run again.
pub(crate) fn target(storage: &dyn Storage, dir: &Path, name: &str) -> Result<PathBuf> {
    let quarantine = dir.join(QUARANTINE_DIR);
    if !storage
        .exists(&quarantine)
        .map_err(|e| Error::io("stat", &quarantine, e))?
    {
        storage
            .create_dir_all(&quarantine)
            .map_err(|e| Error::io("create directory", &quarantine, e))?;
        sync_dir(storage, dir)?;
    }
    for candidate in candidates(&quarantine, name) {
        if !storage
            .exists(&candidate)
            .map_err(|e| Error::io("stat", &candidate, e))?
        {
            return Ok(candidate);
        }
    }
    Err(Error::InvalidArgument(format!(
        "no free name for {name} in {}",
        quarantine.display()
    )))
}

/// Moves the whole file `path` (in `dir`) into `dir/quarantine/`; both directories
/// synced. Returns where it went.
pub(crate) fn move_file(storage: &dyn Storage, dir: &Path, path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map_or_else(|| "unnamed".into(), |n| n.to_string_lossy().into_owned());
    let moved = target(storage, dir, &name)?;
    storage
        .rename(path, &moved)
        .map_err(|e| Error::io("rename", path, e))?;
    sync_dir(storage, &dir.join(QUARANTINE_DIR))?;
    sync_dir(storage, dir)?;
    Ok(moved)
}

/// Copies `bytes`, the content of the file `name`, durably into `dir/quarantine/`.
/// Returns the copy's path and whether this call created it. A file there that already
/// holds exactly these bytes (an attempt a crash cut short wrote it) is written again and
/// synced instead of adding another copy: that attempt may have died before its sync, or
/// its sync may have failed, and a failed sync can leave pages that a later sync reports
/// as durable without writing them (fsyncgate), so only a fresh write makes it durable.
pub(crate) fn copy(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(PathBuf, bool)> {
    let quarantine = dir.join(QUARANTINE_DIR);
    for candidate in candidates(&quarantine, name) {
        if !storage.exists(&candidate).unwrap_or(false) {
            break;
        }
        if super::repair::read_whole(storage, &candidate).is_ok_and(|copy| copy == bytes) {
            let file = storage
                .open_file(&candidate, OpenMode::ReadWrite)
                .map_err(|e| Error::io("open", &candidate, e))?;
            file.write_all_at(bytes, 0)
                .map_err(|e| Error::io("write", &candidate, e))?;
            file.sync_data()
                .map_err(|e| Error::io("fdatasync", &candidate, e))?;
            sync_dir(storage, &quarantine)?;
            sync_dir(storage, dir)?;
            return Ok((candidate, false));
        }
    }
    let copy = target(storage, dir, name)?;
    if let Err(error) = super::write_durable(storage, &copy, bytes) {
        let _ = storage.remove_file(&copy);
        return Err(error);
    }
    Ok((copy, true))
}
