//! The I/O seam: every byte walstore reads or writes goes through [`Storage`].
//!
//! Two implementations exist:
//! - [`FsStorage`]: the real file system (`pread`/`pwrite`, `fdatasync`, directory fsync,
//!   `flock` through `File::try_lock`, `mmap` through memmap2);
//! - [`SimStorage`]: an in-memory twin that keeps, for every file and directory entry,
//!   what is durable and what is only "in the page cache", so tests can crash it (dropping
//!   or tearing unsynced writes) and inject EIO or ENOSPC at the Nth call.
//!
//! The trait speaks `std::io::Result`; the store wraps each failure into
//! [`crate::Error::Io`] with the operation and the path, so the trait stays small.

mod fs;
mod mapped;
pub mod pacing;
pub mod sim;

use std::fmt::Debug;
use std::io;
use std::path::Path;

pub use fs::FsStorage;
pub use mapped::Mapped;
pub use sim::SimStorage;

/// The alignment, in bytes, of the buffer address of every write through a
/// [`DirectFile`]: a page, which every device's memory alignment divides.
pub const DIRECT_ALIGN_BYTES: usize = 4096;
const _: () = assert!(DIRECT_ALIGN_BYTES.is_power_of_two());

/// A second handle on a file, for writes that bypass the page cache
/// ([`Storage::open_direct`]). Every write through it starts at a multiple of
/// `block_bytes`, covers a multiple of `block_bytes`, and comes from an address that is
/// a multiple of [`DIRECT_ALIGN_BYTES`]; other writes fail (`EINVAL`).
#[derive(Debug)]
pub struct DirectFile {
    /// The handle.
    pub file: Box<dyn StorageFile>,
    /// The offset alignment the file system states for direct I/O (its logical block
    /// size), at least 512: a power of two up to [`DIRECT_ALIGN_BYTES`]. Not necessarily
    /// the device's unit of atomic writes (a 512e drive writes 4096-byte sectors).
    pub block_bytes: usize,
}

/// Which file this is, and which version of it: changes when the file is replaced by
/// another (a copy, a restore) and when its data or metadata change.
/// [`StorageFile::stamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// The device the file is on (`st_dev`).
    pub dev: u64,
    /// Its inode number (`st_ino`).
    pub ino: u64,
    /// When its inode last changed (`st_ctime` in nanoseconds since the epoch): every
    /// write, truncation, hole punched or link changes it, and a program cannot set it.
    pub changed_ns: u64,
}

/// How [`Storage::open_file`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read-only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; the file must not exist yet (`O_CREAT | O_EXCL`).
    CreateNew,
}

/// A directory-level file system, as walstore needs it.
pub trait Storage: Send + Sync + Debug {
    /// Creates `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Opens a file.
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>>;
    /// Opens `path`, which exists, a second time for writes that bypass the page cache
    /// (`O_DIRECT`); see [`DirectFile`] for the alignment its writes need. Such a write
    /// is no more durable than any other before [`StorageFile::sync_data`], but that sync
    /// then has no page cache to write back for it. `Ok(None)`:
    /// the file system cannot, or does not state an alignment walstore can meet; the
    /// caller writes through the page cache. The default.
    fn open_direct(&self, _path: &Path) -> io::Result<Option<DirectFile>> {
        Ok(None)
    }
    /// The names (not paths) of the regular files directly inside `dir`, in any order.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` exists (file or directory).
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Atomically renames `from` to `to`, replacing `to`. Durable only after [`Storage::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Durable only after [`Storage::sync_dir`].
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// An identity of the directory (device and inode on Unix), to notice a directory that
    /// was deleted or replaced while the store had it open.
    fn dir_identity(&self, dir: &Path) -> io::Result<(u64, u64)>;
    /// Tries to take an exclusive advisory lock on `path` (created if missing) that lives
    /// as long as the returned guard, and dies with the process. `Ok(None)`: held elsewhere.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageLock>>>;
    /// Like [`Storage::try_lock`], but waits up to `timeout` for the holder to release
    /// the lock. The default polls; the real file system blocks in the kernel and is
    /// woken when the lock frees.
    fn lock_wait(
        &self,
        path: &Path,
        timeout: std::time::Duration,
    ) -> io::Result<Option<Box<dyn StorageLock>>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(lock) = self.try_lock(path)? {
                return Ok(Some(lock));
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(1)));
        }
    }

    /// Whether someone holds the lock on `path`, found without creating or writing
    /// anything (`false` when the file does not exist).
    fn is_locked(&self, path: &Path) -> io::Result<bool>;
    /// Bytes an unprivileged writer may still allocate on the file system holding `dir`
    /// (`statvfs`: available blocks × fragment size). The default: unbounded.
    fn available_bytes(&self, _dir: &Path) -> io::Result<u64> {
        Ok(u64::MAX)
    }
}

/// An open file.
#[expect(
    clippy::len_without_is_empty,
    reason = "a file's length is a query, not a collection size"
)]
pub trait StorageFile: Send + Sync + Debug {
    /// Reads exactly `buf.len()` bytes at `offset` (fails with `UnexpectedEof` past the end).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`. Durable only after [`StorageFile::sync_data`].
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: makes the file's data (and its size) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Starts writing `offset..offset + len` from the page cache to the device, without
    /// waiting (Linux `sync_file_range(WRITE)`). A pacing hint: it makes nothing durable
    /// (no device cache flush, no metadata), only [`StorageFile::sync_data`] does. A zero
    /// `len` does nothing. The default does nothing.
    fn start_write_back(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Writes `offset..offset + len` to the device and waits until it is written (Linux
    /// `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)`). Durable only after
    /// [`StorageFile::sync_data`]; a caller uses it to bound how much written data waits
    /// in the page cache, so that another file's `fdatasync` does not queue behind it.
    /// An error means written data may be lost, as from a failed `sync_data` (and the
    /// kernel may not report it again): the caller must treat it as a failed sync. A zero
    /// `len` does nothing. The default does nothing.
    fn write_back(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) the file. Durable only after [`StorageFile::sync_data`].
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// A read-only view of the whole file as it is now. The store maps only snapshots, each
    /// while holding a shared lock on it ([`StorageFile::try_lock`]): the writer modifies a
    /// snapshot's file only when superseded and under an exclusive lock, so the view
    /// cannot change under a reader.
    fn map(&self) -> io::Result<Mapped>;
    /// The end of the file's written data: bytes after it (up to `len`) are a hole that
    /// reads as zeros. Preallocated segments are mostly hole, so recovery reads only up
    /// to here. The default is `len`.
    fn data_len(&self) -> io::Result<u64> {
        self.len()
    }
    /// Gives back the blocks of `offset..offset + len` that hold only zeros, so that they
    /// are a hole again (`fallocate(PUNCH_HOLE | KEEP_SIZE)`): the same bytes to a reader,
    /// but [`StorageFile::data_len`] stops before them. The caller passes a range known to
    /// be zeros; a crash before or after changes nothing a reader sees. Best effort (the
    /// default does nothing).
    fn punch_zeros(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Whether the file has no directory entry any more (link count 0).
    fn is_unlinked(&self) -> io::Result<bool>;
    /// The file's identity and change time (`fstat`). The default fails (`Unsupported`):
    /// a caller that compares stamps then finds no match.
    fn stamp(&self) -> io::Result<FileStamp> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    /// Tries to take an advisory lock on this open file, shared or `exclusive` (`flock`,
    /// through `File::try_lock_shared` and `File::try_lock`), held until this handle is
    /// dropped; a handle that holds one converts it. `Ok(false)`: another handle, in this
    /// process or another, holds a conflicting lock. Readers hold a shared lock on every
    /// snapshot they map; the writer reuses a superseded snapshot's file only under an
    /// exclusive one (`format-spec/snapshot.md`, "Reusing a superseded snapshot's file").
    /// The default fails (`Unsupported`): a reader then maps without the lock, and the
    /// writer never reuses a file.
    fn try_lock(&self, _exclusive: bool) -> io::Result<bool> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// A held writer lock. Dropping it releases the lock.
pub trait StorageLock: Send + Sync + Debug {
    /// Replaces the lock file's contents with `info` (who holds it), for diagnostics.
    fn write_info(&self, info: &[u8]) -> io::Result<()>;
}

/// Creates `tmp` afresh for writing, first removing a leftover of an earlier attempt
/// that crashed (only ever one of the store's own temporary names).
pub(crate) fn create_temp(
    storage: &dyn Storage,
    tmp: &Path,
) -> crate::Result<Box<dyn StorageFile>> {
    use crate::Error;
    if storage.exists(tmp).map_err(|e| Error::io("stat", tmp, e))? {
        storage
            .remove_file(tmp)
            .map_err(|e| Error::io("remove", tmp, e))?;
    }
    storage
        .open_file(tmp, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", tmp, e))
}
