//! The writer lock: `LOCK`, held with `flock` (through `File::try_lock`), so it dies with
//! its process and there is never a stale lock file to delete. The holder writes who it
//! is into the file, for `Error::Locked` and `walstore stats`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage, StorageLock};

/// Name of the lock file.
pub const LOCK_FILE: &str = "LOCK";
/// How long a writer retries a lock that a reader's probe may be holding.
const PROBE_GRACE: Duration = Duration::from_millis(20);
/// The lock file's holder text is padded to a multiple of this many bytes.
const LOCK_INFO_PAGE_BYTES: usize = 4096;
/// Largest lock file read back, in bytes.
const LOCK_INFO_BYTES_MAX: u64 = 64 * 1024;

/// Who holds (or last held) the writer lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// The holder's command line.
    pub command: String,
    /// When it took the lock, in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
}

impl LockHolder {
    /// This process.
    pub fn current() -> LockHolder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let since_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        LockHolder {
            pid: std::process::id(),
            host,
            command,
            since_unix_ms,
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {} since {} UTC, command: {}",
            self.pid,
            self.host,
            crate::util::format_unix_ms(self.since_unix_ms),
            self.command
        )
    }
}

/// Reads what the lock file says about its holder (`None` if absent or unreadable).
pub fn read_holder(storage: &dyn Storage, dir: &Path) -> Option<LockHolder> {
    let path = dir.join(LOCK_FILE);
    let file = storage.open_file(&path, OpenMode::Read).ok()?;
    let len = file.len().ok()?.min(LOCK_INFO_BYTES_MAX);
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The current holder of the writer lock of the store in `dir`, if the lock is held.
/// Creates and writes nothing. A holder that wrote no diagnostics reads as pid 0.
pub fn lock_holder(storage: &dyn Storage, dir: &Path) -> Result<Option<LockHolder>> {
    let path = dir.join(LOCK_FILE);
    if !storage
        .is_locked(&path)
        .map_err(|e| Error::io("probe lock", &path, e))?
    {
        return Ok(None);
    }
    Ok(Some(read_holder(storage, dir).unwrap_or(LockHolder {
        pid: 0,
        host: "unknown".into(),
        command: "unknown".into(),
        since_unix_ms: 0,
    })))
}

/// Takes the writer lock, waiting up to `timeout` if given (woken when it frees).
pub fn acquire(
    storage: &dyn Storage,
    dir: &Path,
    timeout: Option<Duration>,
) -> Result<Box<dyn StorageLock>> {
    let path = dir.join(LOCK_FILE);
    // Readers probe the lock with a shared `flock` held for microseconds, and a timed-out
    // waiter may hold it as briefly when it frees: "at once" therefore allows a short
    // grace period before calling the store locked.
    let lock = storage.lock_wait(&path, timeout.unwrap_or(PROBE_GRACE).max(PROBE_GRACE));
    let Some(lock) = lock.map_err(|e| Error::io("lock", &path, e))? else {
        let holder = read_holder(storage, dir)
            .map_or_else(|| "holder unknown".to_owned(), |holder| holder.to_string());
        return Err(Error::Locked {
            dir: dir.to_path_buf(),
            holder,
        });
    };
    // Diagnostics only: on a full disk the lock is still held without them.
    if let Ok(mut info) = serde_json::to_vec(&LockHolder::current()) {
        // Padded with spaces (JSON whitespace) to whole pages: a write that covers its
        // pages needs no read of the old block first (about 0.1 ms of a cold open).
        info.resize(info.len().next_multiple_of(LOCK_INFO_PAGE_BYTES), b' ');
        let _ = lock.write_info(&info);
    }
    Ok(lock)
}
