//! The one error type of the crate.
//!
//! Every variant that concerns a file names it, so a user (or the CLI's one-line
//! `error:` message) can say what went wrong and where.

use std::path::PathBuf;

/// Shorthand for `Result<T, walstore::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in walstore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed. `op` names the call (`"open"`, `"fdatasync"`, ...).
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The disk is full (ENOSPC). Nothing acknowledged is lost; the store is poisoned
    /// until it is reopened, because the failed write may have left a partial record.
    #[error("no space left on device while writing {}", path.display())]
    NoSpace {
        /// The file that could not be written.
        path: PathBuf,
    },

    /// Bytes on disk failed a check: a checksum, a bound, lsn continuity, a magic number.
    #[error("corrupt {} at offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset in `file` where the damage was found.
        offset: u64,
        /// What was expected and what was found.
        reason: String,
    },

    /// A file was written by a format version this build does not read.
    #[error("{}: unsupported format version {found} (this build reads versions {} to {supported})", file.display(), crate::codec::FORMAT_VERSION_READ_MIN)]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version found in its header.
        found: u32,
        /// The version this build writes, the newest it reads (it reads every version from
        /// [`crate::codec::FORMAT_VERSION_READ_MIN`] to this one).
        supported: u32,
    },

    /// Another process (or another handle in this one) holds the writer lock.
    #[error("store {} is locked by another writer ({holder})", dir.display())]
    Locked {
        /// The store directory.
        dir: PathBuf,
        /// What the holder wrote into `LOCK`: pid, host, command line, since when.
        holder: String,
    },

    /// A write or fsync failed earlier; the store refuses all writes until it is reopened.
    /// (After a failed fsync the page cache may have dropped the dirty pages, so a retried
    /// fsync could "succeed" without the data: PostgreSQL's fsyncgate.)
    #[error("store is poisoned by an earlier failed write or fsync; reopen it to recover")]
    Poisoned,

    /// The store's directory was deleted or replaced while the store was open.
    #[error("store directory {} was deleted or replaced while open", dir.display())]
    StoreGone {
        /// The store directory.
        dir: PathBuf,
    },

    /// The path is not a walstore store (no `.wal`, `.snap` or `LOCK` file), for a read-only open.
    #[error("{} is not a walstore store: {reason}", dir.display())]
    NotAStore {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },

    /// The store was opened read-only and a write was attempted.
    #[error("store is open read-only")]
    ReadOnly,

    /// An argument was out of bounds (a hash over 32 bytes, a key over the size limit, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A value could not be converted to or from the requested type.
    #[error("value conversion failed: {0}")]
    Conversion(String),

    /// Work walstore runs on its own (writing or applying a commit group, a checkpoint
    /// it runs by itself) panicked: a bug. The store is poisoned; reopening it recovers
    /// from the files. A commit that gets this error may or may not be durable (the
    /// panic may have come after its sync), as for a commit a crash interrupted: a
    /// reopen tells.
    #[error("internal error: {0} panicked; the store is poisoned, reopen it to recover")]
    Panicked(&'static str),
}

impl Error {
    /// Builds an [`Error::Io`], turning ENOSPC into [`Error::NoSpace`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.raw_os_error() == Some(ENOSPC) || source.kind() == std::io::ErrorKind::StorageFull
        {
            return Error::NoSpace { path };
        }
        Error::Io { op, path, source }
    }

    /// Builds an [`Error::Corrupt`].
    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// Linux's ENOSPC.
const ENOSPC: i32 = 28;
