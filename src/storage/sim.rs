//! [`SimStorage`]: an in-memory twin of a Linux ext4-like file system (`data=ordered`), for
//! crash and fault-injection tests.
//!
//! # The model
//!
//! - **Files are inodes.** Each inode keeps its *live* bytes (what reads see: the page
//!   cache), its *durable* bytes (what the disk holds after a power loss) and the ordered
//!   list of mutations (writes, truncations) made since its last successful
//!   [`StorageFile::sync_data`]. A successful `sync_data` applies those mutations to the
//!   durable bytes (normally making them equal to the live ones) and clears the list. It
//!   covers the size as well as the data, as `fdatasync` does.
//! - **Directory entries** map a full path to an inode, twice: the *live* entries and the
//!   *durable* ones. Every create, remove and rename is logged, in order, in the directory
//!   it touches; a rename across directories logs an unlink in the source directory and a
//!   link in the target one. [`Storage::sync_dir`] makes the durable entries of that one
//!   directory equal to its live ones and clears its log. Syncing a file never makes its
//!   name durable: that takes a `sync_dir` of its parent (POSIX's rule; ext4 is kinder,
//!   since its `fsync` commits the whole journal transaction, names included).
//! - **Directories** themselves (not their entries) are durable as soon as they are created:
//!   the store creates its directory once and never renames it, so modelling directory
//!   durability would only add noise. Each creation gets a fresh identity.
//! - **Open handles** refer to their inode: they keep working after the name is removed or
//!   renamed over, and [`StorageFile::is_unlinked`] reports when no live entry is left.
//! - **Locks** behave like `flock`: held per inode by a guard, released by dropping it or
//!   by a crash.
//!
//! # Crashes
//!
//! [`SimStorage::crash`] turns the storage in place into what a machine would find after
//! rebooting, and bumps an *epoch*: every handle and lock guard made before then fails
//! every later call with an EIO-kind error (see [`SimStorage::is_crash_error`]).
//!
//! - [`CrashMode::LoseUnsynced`]: power loss with nothing written back: every inode becomes
//!   its durable bytes, every directory its durable entries.
//! - [`CrashMode::KeepUnsynced`]: only the process died; the page cache survives (and still
//!   has to be synced to survive a later power loss).
//! - [`CrashMode::Random`]: power loss in the middle of write-back, drawn from the seeded
//!   generator (so a seed always gives the same image). For each inode, the unsynced
//!   mutations are replayed in order on the durable bytes, each one fully, not at all, or,
//!   for a write, torn: a prefix ending on a 512-byte sector boundary (of the file offset)
//!   survives and the rest of its range holds zeros or garbage. For each directory, a
//!   random prefix of its entry log is replayed on its durable entries.
//!
//! Assumptions kept from the real thing: a 512-byte sector (counted from the file start)
//! is written atomically, so tears fall between sectors; a durable name and its inode's
//! data are independent, so a name can survive while its unsynced data does not (an
//! empty or partial file), as on ext4 without `auto_da_alloc`; and synced state is never
//! lost or damaged, unless a test damages it on purpose ([`SimStorage::flip_bit`]).
//!
//! What this deliberately does *not* model, each time erring on the hostile side:
//! - the order ext4's journal imposes *between* inodes and directories (a durable rename
//!   implies the earlier metadata operations are durable too): here every inode and every
//!   directory is torn independently, so a cross-directory rename can lose both names;
//! - `auto_da_alloc` (ext4 flushing a file's data when it is renamed over another);
//! - `data=ordered`'s promise that newly allocated blocks never show stale data: a torn
//!   write here can leave garbage anywhere in its range;
//! - sparse files, sizes above [`MAX_FILE_LEN`] (writes there fail with EFBIG), and
//!   renaming directories (unsupported).
//!
//! # Faults
//!
//! Every call on the [`Storage`], [`StorageFile`] and [`StorageLock`] traits is counted
//! ([`SimStorage::calls`]) and has a [`CallKind`]. [`SimStorage::inject`] arms a [`Fault`]
//! that fails one call with EIO or ENOSPC, and optionally every later mutating or syncing
//! call. A failing call fails before it has any effect, like Linux would for a write that
//! failed outright (no partial write is modelled), with one exception that mirrors
//! "fsyncgate": a failed `sync_data` drops the inode's unsynced mutations from the path to
//! the disk. Reads keep seeing them, but no later `sync_data` makes them durable, and a
//! power loss loses them. A failed `sync_dir` changes nothing: its log stays pending.
//! Faults survive crashes; [`SimStorage::clear_faults`] disarms them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{FileStamp, Mapped, OpenMode, Storage, StorageFile, StorageLock};

/// The largest file the simulation holds; writes and truncations past it fail with EFBIG.
pub const MAX_FILE_LEN: u64 = 1 << 32;

/// The sector size: torn writes are cut at multiples of it (relative to the file start).
const SECTOR: usize = 512;

const ENOENT: i32 = 2;
const EIO: i32 = 5;
const EBADF: i32 = 9;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const EFBIG: i32 = 27;
const ENOSPC: i32 = 28;

/// How [`SimStorage::crash`] treats what was not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Power loss: only durable bytes and durable directory entries survive.
    LoseUnsynced,
    /// Process death: everything live survives (and stays unsynced).
    KeepUnsynced,
    /// Power loss during write-back: a seeded random part of the unsynced state survives,
    /// with torn writes (see the module documentation).
    Random,
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `EIO` (`io::Error::from_raw_os_error(5)`).
    Eio,
    /// `ENOSPC` (`io::Error::from_raw_os_error(28)`).
    Enospc,
    /// The call panics instead of returning: a bug in the code around it, to check that
    /// walstore contains a panic on its own threads (poisons the store, answers every
    /// waiter) instead of hanging or losing work. Never persistent.
    Panic,
}

impl FaultKind {
    /// The `io::Error` this fault returns; panics for [`FaultKind::Panic`].
    pub fn error(self) -> io::Error {
        match self {
            FaultKind::Eio => os(EIO),
            FaultKind::Enospc => os(ENOSPC),
            FaultKind::Panic => injected_panic(),
        }
    }
}

/// The kind of a trait call, for [`Fault::only`] and for persistent faults.
///
/// | call | kind |
/// |---|---|
/// | [`Storage::create_dir_all`] | `Create` |
/// | [`Storage::open_file`] with [`OpenMode::CreateNew`] | `Create` |
/// | [`Storage::open_file`] with `Read` or `ReadWrite` | `Open` |
/// | [`Storage::try_lock`] | `Create` if the file is missing, else `Open` |
/// | [`Storage::list_dir`] | `List` |
/// | [`Storage::rename`] | `Rename` |
/// | [`Storage::remove_file`] | `Remove` |
/// | [`Storage::sync_dir`] | `SyncDir` |
/// | [`Storage::exists`], [`Storage::dir_identity`] | `Other` |
/// | [`StorageFile::read_exact_at`], [`StorageFile::map`] | `Read` |
/// | [`StorageFile::write_all_at`], [`StorageLock::write_info`] | `Write` |
/// | [`StorageFile::set_len`] | `SetLen` |
/// | [`StorageFile::sync_data`] | `SyncData` |
/// | [`StorageFile::len`], [`StorageFile::is_unlinked`] | `Other` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// A write of bytes.
    Write,
    /// A truncation or extension.
    SetLen,
    /// `fdatasync` of a file.
    SyncData,
    /// `fsync` of a directory.
    SyncDir,
    /// Starting or waiting for write-back (`sync_file_range`): durable nothing, but fails
    /// like a sync.
    WriteBack,
    /// A rename.
    Rename,
    /// A file removal.
    Remove,
    /// Opening an existing file.
    Open,
    /// Creating a file or directories.
    Create,
    /// Reading or mapping a file.
    Read,
    /// Listing a directory.
    List,
    /// Anything else (metadata queries).
    Other,
}

impl CallKind {
    /// Whether calls of this kind change the file system or sync it; after a persistent
    /// fault fired, exactly these calls keep failing.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            CallKind::Write
                | CallKind::SetLen
                | CallKind::SyncData
                | CallKind::SyncDir
                | CallKind::WriteBack
                | CallKind::Rename
                | CallKind::Remove
                | CallKind::Create
        )
    }

    fn is_sync(self) -> bool {
        matches!(self, CallKind::SyncData | CallKind::SyncDir)
    }
}

/// A fault to inject with [`SimStorage::inject`].
///
/// - `only: None`: the fault fires on the call whose 1-based number, as counted by
///   [`SimStorage::calls`], is `at_call` (so `at_call: sim.calls() + 1` fails the next call).
///   A number already passed never fires.
/// - `only: Some(kind)`: the fault fires on the `at_call`-th call of that kind made *after*
///   the injection (so `at_call: 1` fails the next call of that kind).
///
/// `at_call: 0` never fires. The call that fires fails with `kind`'s error without any
/// effect (except a failed `sync_data`, see the module documentation). With `persistent`,
/// every later call whose kind [is mutating](CallKind::is_mutating) fails the same way,
/// until [`SimStorage::clear_faults`]; reads, opens, listings and queries keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which call fires the fault (see the type's documentation).
    pub at_call: u64,
    /// The error returned.
    pub kind: FaultKind,
    /// Whether every later mutating or syncing call fails too.
    pub persistent: bool,
    /// Counts only the calls of this kind.
    pub only: Option<CallKind>,
}

/// An armed fault: `target` is the value of the relevant counter that fires it.
#[derive(Debug, Clone, Copy)]
struct Armed {
    fault: Fault,
    target: u64,
}

impl Armed {
    fn matches(&self, calls: u64, kind: CallKind, nth_of_kind: u64) -> bool {
        match self.fault.only {
            None => self.target == calls,
            Some(only) => only == kind && self.target == nth_of_kind,
        }
    }
}

/// An in-memory simulated file system with crash and fault injection (see the module
/// documentation). Clones share the same file system.
#[derive(Clone)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimStorage").finish_non_exhaustive()
    }
}

impl Default for SimStorage {
    fn default() -> Self {
        SimStorage::new(0)
    }
}

/// The error returned by handles that predate a crash.
#[derive(Debug)]
struct Crashed;

impl fmt::Display for Crashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("machine crashed (EIO): this handle was opened before SimStorage::crash")
    }
}

impl std::error::Error for Crashed {}

/// What [`FaultKind::Panic`] does.
#[expect(clippy::panic, reason = "the fault it simulates is a panic")]
fn injected_panic() -> ! {
    panic!("simulated panic injected at a storage call")
}

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn crashed() -> io::Error {
    io::Error::new(os(EIO).kind(), Crashed)
}

/// The directory holding `path` (the empty path for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// `offset .. offset + len` as `usize`s, or EFBIG past [`MAX_FILE_LEN`].
fn file_range(offset: u64, len: usize) -> io::Result<(usize, usize)> {
    let end = u64::try_from(len)
        .ok()
        .and_then(|len| offset.checked_add(len))
        .filter(|end| *end <= MAX_FILE_LEN)
        .ok_or_else(|| os(EFBIG))?;
    let start = usize::try_from(offset).map_err(|_| os(EFBIG))?;
    let end = usize::try_from(end).map_err(|_| os(EFBIG))?;
    Ok((start, end))
}

/// Writes `bytes` at `offset`, extending `buf` with zeros as needed.
fn apply_write(buf: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset.saturating_add(bytes.len());
    if buf.len() < end {
        buf.resize(end, 0);
    }
    if let Some(target) = buf.get_mut(offset..end) {
        target.copy_from_slice(bytes);
    }
}

/// splitmix64: small, seedable, good enough to pick crash images.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if n64 == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }

    fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// An unsynced change to a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen(usize),
}

impl Mutation {
    fn apply(&self, buf: &mut Vec<u8>) {
        match self {
            Mutation::Write { offset, bytes } => apply_write(buf, *offset, bytes),
            Mutation::SetLen(len) => buf.resize(*len, 0),
        }
    }

    /// Applies the mutation fully, not at all, or (a write) torn.
    fn apply_randomly(&self, buf: &mut Vec<u8>, rng: &mut Rng) {
        match (self, rng.below(3)) {
            (_, 0) => {}
            (Mutation::Write { offset, bytes }, 2) => torn_write(buf, *offset, bytes, rng),
            _ => self.apply(buf),
        }
    }
}

/// Writes a prefix of `bytes` cut at a sector boundary, and zeros or garbage after it.
fn torn_write(buf: &mut Vec<u8>, offset: usize, bytes: &[u8], rng: &mut Rng) {
    let cut = torn_cut(offset, bytes.len(), rng);
    let garbage = rng.coin();
    let mut torn = bytes.to_vec();
    for byte in torn.get_mut(cut..).unwrap_or_default() {
        *byte = if garbage {
            rng.next_u64().to_le_bytes()[0]
        } else {
            0
        };
    }
    apply_write(buf, offset, &torn);
}

/// A direct write's alignment check, and the part of it that changes the file: the
/// leading and trailing bytes it writes again with the values they hold are left out.
/// A direct write covers whole sectors, so it rewrites the bytes before the append in
/// the sector where the append starts (and the zeros after it in the last sector); the
/// disk assumptions hold a write to its own bytes (assumption 5: synced bytes sharing a
/// sector with a torn write are not damaged), so the crash model tears only the bytes
/// the write changes, as it does for the buffered write of the same append.
fn direct_write_range<'b>(
    live: &[u8],
    offset: usize,
    buf: &'b [u8],
    block_bytes: usize,
) -> io::Result<(usize, &'b [u8])> {
    let aligned = (buf.as_ptr() as usize).is_multiple_of(super::DIRECT_ALIGN_BYTES)
        && buf.len().is_multiple_of(block_bytes)
        && offset.is_multiple_of(block_bytes);
    if !aligned {
        return Err(os(EINVAL));
    }
    let old = live.get(offset..).unwrap_or_default();
    let same_head = buf
        .iter()
        .zip(old)
        .take_while(|(new, old)| new == old)
        .count();
    let changed = buf.get(same_head..).unwrap_or_default();
    let old_after = old.get(same_head..).unwrap_or_default();
    // Bytes past the end of the file are new whatever their value.
    let same_tail = match old_after.get(..changed.len()) {
        Some(old_over) => changed
            .iter()
            .zip(old_over)
            .rev()
            .take_while(|(new, old)| new == old)
            .count(),
        None => 0,
    };
    let changed = changed.get(..changed.len() - same_tail).unwrap_or_default();
    Ok((offset + same_head, changed))
}

/// A cut point `c < len` of a write at `offset`: 0, or one with `offset + c` on a sector
/// boundary, each equally likely.
fn torn_cut(offset: usize, len: usize, rng: &mut Rng) -> usize {
    // The first boundary after the write's start (a whole sector away if it starts on one).
    let first = SECTOR - offset % SECTOR;
    let boundaries = if first < len {
        (len - first - 1) / SECTOR + 1
    } else {
        0
    };
    match rng.below(boundaries + 1) {
        0 => 0,
        pick => first + (pick - 1) * SECTOR,
    }
}

/// A file: live bytes, durable bytes and the mutations in between.
#[derive(Debug, Default, Clone)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<Mutation>,
    /// Open handles of the current epoch.
    open: usize,
    /// Its change stamp (the simulated `ctime`, [`FileStamp::changed_ns`]): a fresh value
    /// at every mutation; after a crash, the durable one (or a fresh one if torn).
    changed: u64,
    changed_durable: u64,
}

/// Who holds advisory locks on one inode, by handle id: shared holders, or one exclusive.
#[derive(Debug, Default, Clone)]
struct FileLocks {
    shared: BTreeSet<u64>,
    exclusive: Option<u64>,
}

impl FileLocks {
    /// Takes (or converts to) a lock for `handle`; `false` if another handle conflicts.
    fn take(&mut self, handle: u64, exclusive: bool) -> bool {
        let others_exclusive = self.exclusive.is_some_and(|h| h != handle);
        let others_shared = self.shared.iter().any(|&h| h != handle);
        if others_exclusive || (exclusive && others_shared) {
            return false;
        }
        self.release(handle);
        match exclusive {
            true => self.exclusive = Some(handle),
            false => {
                self.shared.insert(handle);
            }
        }
        true
    }

    fn release(&mut self, handle: u64) {
        self.shared.remove(&handle);
        if self.exclusive == Some(handle) {
            self.exclusive = None;
        }
    }
}

/// Change stamps, unique in the process.
static NEXT_CHANGE: AtomicU64 = AtomicU64::new(1);

fn next_change() -> u64 {
    NEXT_CHANGE.fetch_add(1, Ordering::Relaxed)
}

/// The device number every simulated file reports.
const SIM_DEV: u64 = 1;

impl Inode {
    fn planted(bytes: &[u8]) -> Self {
        let changed = next_change();
        Inode {
            live: bytes.to_vec(),
            durable: bytes.to_vec(),
            changed,
            changed_durable: changed,
            ..Inode::default()
        }
    }

    fn mutate(&mut self, mutation: Mutation) {
        mutation.apply(&mut self.live);
        self.unsynced.push(mutation);
        self.changed = next_change();
    }

    fn sync(&mut self) {
        for mutation in self.unsynced.drain(..) {
            mutation.apply(&mut self.durable);
        }
        self.changed_durable = self.changed;
    }

    fn random_image(&self, rng: &mut Rng) -> Vec<u8> {
        let mut image = self.durable.clone();
        for mutation in &self.unsynced {
            mutation.apply_randomly(&mut image, rng);
        }
        image
    }

    /// After a crash: `image` is what the disk returns; `torn` if it may mix unsynced
    /// mutations in (a new change stamp then), else it is the durable image.
    fn reset_to(&mut self, image: Vec<u8>, torn: bool) {
        self.changed = match torn && !self.unsynced.is_empty() {
            true => next_change(),
            false => self.changed_durable,
        };
        self.changed_durable = self.changed;
        self.live.clone_from(&image);
        self.durable = image;
        self.unsynced.clear();
    }

    /// Replaces the contents, durably, as a program writing the file offline would (a
    /// new change stamp; a bit flipped by the medium keeps the old one).
    fn rewrite(&mut self, image: Vec<u8>) {
        self.reset_to(image, false);
        self.changed = next_change();
        self.changed_durable = self.changed;
    }

    fn read(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let source = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.live.get(range));
        match source {
            Some(source) => {
                buf.copy_from_slice(source);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of file",
            )),
        }
    }
}

/// A logged, unsynced change to one directory's entries.
#[derive(Debug, Clone)]
enum EntryOp {
    Link {
        path: PathBuf,
        ino: u64,
    },
    Unlink {
        path: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        ino: u64,
    },
}

impl EntryOp {
    fn apply(&self, entries: &mut BTreeMap<PathBuf, u64>) {
        match self {
            EntryOp::Link { path, ino } => {
                entries.insert(path.clone(), *ino);
            }
            EntryOp::Unlink { path } => {
                entries.remove(path);
            }
            EntryOp::Rename { from, to, ino } => {
                entries.remove(from);
                entries.insert(to.clone(), *ino);
            }
        }
    }

    fn ino(&self) -> Option<u64> {
        match self {
            EntryOp::Link { ino, .. } | EntryOp::Rename { ino, .. } => Some(*ino),
            EntryOp::Unlink { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
struct State {
    rng: Rng,
    epoch: u64,
    next_id: u64,
    /// Existing directories and their identities.
    dirs: BTreeMap<PathBuf, u64>,
    inodes: BTreeMap<u64, Inode>,
    live: BTreeMap<PathBuf, u64>,
    durable: BTreeMap<PathBuf, u64>,
    /// Unsynced entry operations, per directory.
    logs: BTreeMap<PathBuf, Vec<EntryOp>>,
    /// Held locks: inode -> guard id.
    locks: HashMap<u64, u64>,
    /// Advisory locks on open files ([`StorageFile::try_lock`]): inode -> holders.
    file_locks: HashMap<u64, FileLocks>,
    calls: u64,
    kind_calls: HashMap<CallKind, u64>,
    sync_calls: u64,
    faults: Vec<Armed>,
    /// Set by a persistent fault that fired: mutating calls fail with it.
    failing: Option<FaultKind>,
    /// What `available_bytes` reports (`None`: unbounded).
    available_bytes: Option<u64>,
    /// The block size direct handles report and require.
    direct_block_bytes: usize,
}

impl State {
    fn new(seed: u64) -> Self {
        let mut state = State {
            rng: Rng(seed),
            epoch: 0,
            next_id: 1,
            dirs: BTreeMap::new(),
            inodes: BTreeMap::new(),
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            logs: BTreeMap::new(),
            locks: HashMap::new(),
            file_locks: HashMap::new(),
            calls: 0,
            kind_calls: HashMap::new(),
            sync_calls: 0,
            faults: Vec::new(),
            failing: None,
            available_bytes: None,
            direct_block_bytes: SECTOR,
        };
        state.make_dirs(Path::new("/"));
        state
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    // ---- call accounting and faults ----

    /// Counts a call, checks the handle's epoch (`None` for storage-level calls) and
    /// returns the injected fault, if any.
    fn enter(&mut self, kind: CallKind, epoch: Option<u64>) -> io::Result<()> {
        let fault = self.count(kind);
        self.check_epoch(epoch)?;
        fault.map_or(Ok(()), |fault| Err(fault.error()))
    }

    fn check_epoch(&self, epoch: Option<u64>) -> io::Result<()> {
        match epoch {
            Some(epoch) if epoch != self.epoch => Err(crashed()),
            _ => Ok(()),
        }
    }

    /// Counts a call and returns the fault it must fail with, if any.
    fn count(&mut self, kind: CallKind) -> Option<FaultKind> {
        self.calls += 1;
        let nth = self.kind_calls.entry(kind).or_default();
        *nth += 1;
        let nth = *nth;
        if kind.is_sync() {
            self.sync_calls += 1;
        }
        self.fire(kind, nth)
            .or_else(|| self.failing.filter(|_| kind.is_mutating()))
    }

    fn fire(&mut self, kind: CallKind, nth: u64) -> Option<FaultKind> {
        let calls = self.calls;
        let (fired, armed): (Vec<Armed>, Vec<Armed>) = std::mem::take(&mut self.faults)
            .into_iter()
            .partition(|armed| armed.matches(calls, kind, nth));
        self.faults = armed;
        let fault = fired.first()?.fault;
        if fault.persistent && fault.kind != FaultKind::Panic {
            self.failing = Some(fault.kind);
        }
        Some(fault.kind)
    }

    fn inject(&mut self, fault: Fault) {
        let base = fault
            .only
            .map_or(0, |kind| self.kind_calls.get(&kind).copied().unwrap_or(0));
        if fault.at_call > 0 {
            self.faults.push(Armed {
                fault,
                target: base.saturating_add(fault.at_call),
            });
        }
    }

    // ---- lookups ----

    fn dir_exists(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || self.dirs.contains_key(dir)
    }

    fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(|| os(EIO))
    }

    /// The inode of an existing file, or the error opening it gives.
    fn lookup(&self, path: &Path) -> io::Result<u64> {
        if self.dirs.contains_key(path) {
            return Err(os(EISDIR));
        }
        self.live.get(path).copied().ok_or_else(|| os(ENOENT))
    }

    fn check_dir(&self, dir: &Path) -> io::Result<()> {
        match self.dirs.contains_key(dir) {
            true => Ok(()),
            false if self.live.contains_key(dir) => Err(os(ENOTDIR)),
            false => Err(os(ENOENT)),
        }
    }

    fn names_in(&self, dir: &Path) -> Vec<String> {
        self.live
            .keys()
            .filter(|path| parent_of(path) == dir)
            .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
            .collect()
    }

    fn is_linked(&self, ino: u64) -> bool {
        self.live.values().any(|&linked| linked == ino)
    }

    // ---- mutations ----

    fn make_dirs(&mut self, dir: &Path) {
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .filter(|dir| !dir.as_os_str().is_empty() && !self.dirs.contains_key(*dir))
            .map(Path::to_path_buf)
            .collect();
        for dir in missing {
            let id = self.fresh_id();
            self.dirs.insert(dir, id);
        }
    }

    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        if dir.ancestors().any(|dir| self.live.contains_key(dir)) {
            return Err(os(EEXIST));
        }
        self.make_dirs(dir);
        Ok(())
    }

    fn log(&mut self, dir: &Path, op: EntryOp) {
        self.logs.entry(dir.to_path_buf()).or_default().push(op);
    }

    /// Creates an empty file (a live, unsynced entry).
    fn create(&mut self, path: &Path) -> io::Result<u64> {
        if self.dirs.contains_key(path) || self.live.contains_key(path) {
            return Err(os(EEXIST));
        }
        let parent = parent_of(path);
        if !self.dir_exists(parent) {
            return Err(os(ENOENT));
        }
        let ino = self.fresh_id();
        self.inodes.insert(ino, Inode::default());
        self.live.insert(path.to_path_buf(), ino);
        self.log(
            parent,
            EntryOp::Link {
                path: path.to_path_buf(),
                ino,
            },
        );
        Ok(ino)
    }

    fn open(&mut self, path: &Path, mode: OpenMode) -> io::Result<u64> {
        let ino = match mode {
            OpenMode::CreateNew => self.create(path)?,
            OpenMode::Read | OpenMode::ReadWrite => {
                if !self.dir_exists(parent_of(path)) {
                    return Err(os(ENOENT));
                }
                self.lookup(path)?
            }
        };
        self.inode_mut(ino)?.open += 1;
        Ok(ino)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        if self.dirs.contains_key(from) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "SimStorage does not rename directories",
            ));
        }
        let ino = self.lookup(from)?;
        if self.dirs.contains_key(to) {
            return Err(os(EISDIR));
        }
        let (source, target) = (parent_of(from), parent_of(to));
        if !self.dir_exists(target) {
            return Err(os(ENOENT));
        }
        if from == to {
            return Ok(());
        }
        self.live.remove(from);
        self.live.insert(to.to_path_buf(), ino);
        if source == target {
            let op = EntryOp::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                ino,
            };
            self.log(source, op);
        } else {
            self.log(
                source,
                EntryOp::Unlink {
                    path: from.to_path_buf(),
                },
            );
            self.log(
                target,
                EntryOp::Link {
                    path: to.to_path_buf(),
                    ino,
                },
            );
        }
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.lookup(path)?;
        self.live.remove(path);
        self.log(
            parent_of(path),
            EntryOp::Unlink {
                path: path.to_path_buf(),
            },
        );
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) {
        self.durable.retain(|path, _| parent_of(path) != dir);
        let entries: Vec<(PathBuf, u64)> = self
            .live
            .iter()
            .filter(|(path, _)| parent_of(path) == dir)
            .map(|(path, ino)| (path.clone(), *ino))
            .collect();
        self.durable.extend(entries);
        self.logs.remove(dir);
        self.collect_garbage();
    }

    fn try_lock(&mut self, path: &Path) -> io::Result<Option<(u64, u64)>> {
        let ino = match self.lookup(path) {
            Ok(ino) => ino,
            Err(error) if error.kind() == io::ErrorKind::NotFound => self.create(path)?,
            Err(error) => return Err(error),
        };
        if self.locks.contains_key(&ino) {
            return Ok(None);
        }
        let guard = self.fresh_id();
        self.locks.insert(ino, guard);
        Ok(Some((ino, guard)))
    }

    fn write_info(&mut self, ino: u64, info: &[u8]) -> io::Result<()> {
        file_range(0, info.len())?;
        let inode = self.inode_mut(ino)?;
        inode.mutate(Mutation::Write {
            offset: 0,
            bytes: info.to_vec(),
        });
        if inode.live.len() > info.len() {
            inode.mutate(Mutation::SetLen(info.len()));
        }
        Ok(())
    }

    /// Drops the inodes nothing refers to any more.
    fn collect_garbage(&mut self) {
        let mut used: BTreeSet<u64> = self.live.values().copied().collect();
        used.extend(self.durable.values().copied());
        used.extend(self.logs.values().flatten().filter_map(EntryOp::ino));
        used.extend(self.locks.keys().copied());
        self.inodes
            .retain(|ino, inode| inode.open > 0 || used.contains(ino));
        let inodes = &self.inodes;
        self.file_locks.retain(|ino, locks| {
            inodes.contains_key(ino) && (locks.exclusive.is_some() || !locks.shared.is_empty())
        });
    }

    // ---- crashes ----

    fn crash(&mut self, mode: CrashMode) {
        self.epoch += 1;
        self.locks.clear();
        self.file_locks.clear();
        for inode in self.inodes.values_mut() {
            inode.open = 0;
        }
        match mode {
            CrashMode::KeepUnsynced => {}
            CrashMode::LoseUnsynced => self.lose_unsynced(),
            CrashMode::Random => self.tear_unsynced(),
        }
        self.collect_garbage();
    }

    fn lose_unsynced(&mut self) {
        for inode in self.inodes.values_mut() {
            let image = inode.durable.clone();
            inode.reset_to(image, false);
        }
        self.live.clone_from(&self.durable);
        self.logs.clear();
    }

    fn tear_unsynced(&mut self) {
        let rng = &mut self.rng;
        for inode in self.inodes.values_mut() {
            let image = inode.random_image(rng);
            inode.reset_to(image, true);
        }
        for log in std::mem::take(&mut self.logs).into_values() {
            let survivors = rng.below(log.len() + 1);
            for op in log.iter().take(survivors) {
                op.apply(&mut self.durable);
            }
        }
        self.live.clone_from(&self.durable);
    }

    // ---- test helpers ----

    fn plant(&mut self, path: &Path, bytes: &[u8]) {
        self.make_dirs(parent_of(path));
        match self.live.get(path).copied() {
            Some(ino) => {
                if let Some(inode) = self.inodes.get_mut(&ino) {
                    inode.rewrite(bytes.to_vec());
                }
                self.durable.insert(path.to_path_buf(), ino);
            }
            None => {
                let ino = self.fresh_id();
                self.inodes.insert(ino, Inode::planted(bytes));
                self.live.insert(path.to_path_buf(), ino);
                self.durable.insert(path.to_path_buf(), ino);
            }
        }
    }

    fn remove_dir_all(&mut self, dir: &Path) {
        self.dirs.retain(|path, _| !path.starts_with(dir));
        self.live.retain(|path, _| !path.starts_with(dir));
        self.durable.retain(|path, _| !path.starts_with(dir));
        self.logs.retain(|path, _| !path.starts_with(dir));
        self.collect_garbage();
    }

    fn live_inode_mut(&mut self, path: &Path) -> io::Result<&mut Inode> {
        let ino = self.lookup(path)?;
        self.inode_mut(ino)
    }
}

impl SimStorage {
    /// An empty file system (holding only `/`) whose random crashes draw from `seed`.
    pub fn new(seed: u64) -> Self {
        SimStorage {
            state: Arc::new(Mutex::new(State::new(seed))),
        }
    }

    /// An independent copy of this file system as it is now (live and durable images,
    /// pending writes, faults, the random generator reseeded with `seed`). Handles and
    /// locks of the original do not carry over: the copy starts with no lock held.
    pub fn fork(&self, seed: u64) -> SimStorage {
        let mut state = self.state.lock().clone();
        state.rng = Rng(seed);
        state.locks.clear();
        state.file_locks.clear();
        state.epoch += 1;
        SimStorage {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The block size that direct handles opened from now on report and require (a power
    /// of two from 512 to [`super::DIRECT_ALIGN_BYTES`]; default 512).
    pub fn set_direct_block_bytes(&self, bytes: usize) {
        assert!(bytes.is_power_of_two() && (SECTOR..=super::DIRECT_ALIGN_BYTES).contains(&bytes));
        self.state.lock().direct_block_bytes = bytes;
    }

    /// Makes `available_bytes` report `bytes` (`None`: unbounded). Writes are not limited
    /// by it: inject `Enospc` faults for that.
    pub fn set_available_bytes(&self, bytes: Option<u64>) {
        self.state.lock().available_bytes = bytes;
    }

    /// Simulates a crash (see [`CrashMode`]); every handle and lock guard made before it
    /// fails from now on, and every lock is released. Armed faults stay armed.
    pub fn crash(&self, mode: CrashMode) {
        self.state.lock().crash(mode);
    }

    /// Whether `error` is the one handles return after [`SimStorage::crash`].
    pub fn is_crash_error(error: &io::Error) -> bool {
        error.get_ref().is_some_and(|inner| inner.is::<Crashed>())
    }

    /// Arms a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.state.lock().inject(fault);
    }

    /// Disarms every fault, including a persistent one that already fired.
    pub fn clear_faults(&self) {
        let mut state = self.state.lock();
        state.faults.clear();
        state.failing = None;
    }

    /// How many trait calls were made so far (test helpers are not counted).
    pub fn calls(&self) -> u64 {
        self.state.lock().calls
    }

    /// How many `sync_data` and `sync_dir` calls were made so far, failed ones included.
    pub fn sync_calls(&self) -> u64 {
        self.state.lock().sync_calls
    }

    /// The live bytes of a file, or `None` if there is no such file.
    pub fn read_file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let ino = state.live.get(path.as_ref())?;
        Some(state.inodes.get(ino)?.live.clone())
    }

    /// The bytes a power loss would leave at `path` with [`CrashMode::LoseUnsynced`], or
    /// `None` if the name is not durable.
    pub fn read_durable_file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let ino = state.durable.get(path.as_ref())?;
        Some(state.inodes.get(ino)?.durable.clone())
    }

    /// Plants a file, durable with its name (and its missing parent directories). An
    /// existing file keeps its inode (open handles see the new bytes) and loses its
    /// unsynced mutations.
    pub fn write_file(&self, path: impl AsRef<Path>, bytes: &[u8]) {
        self.state.lock().plant(path.as_ref(), bytes);
    }

    /// Removes a directory, its subdirectories and their files, live and durable at once.
    /// Open handles of these files become unlinked; recreating the directory gives it a new
    /// identity.
    pub fn remove_dir_all(&self, dir: impl AsRef<Path>) {
        self.state.lock().remove_dir_all(dir.as_ref());
    }

    /// The sorted names of the live files directly inside `dir` (empty if it is missing).
    pub fn file_names(&self, dir: impl AsRef<Path>) -> Vec<String> {
        let mut names = self.state.lock().names_in(dir.as_ref());
        names.sort();
        names
    }

    /// Truncates (or extends with zeros) a file's live bytes and makes the result durable,
    /// dropping its unsynced mutations, as if done offline.
    pub fn set_len(&self, path: impl AsRef<Path>, len: u64) -> io::Result<()> {
        let (_, len) = file_range(len, 0)?;
        let mut state = self.state.lock();
        let inode = state.live_inode_mut(path.as_ref())?;
        let mut image = inode.live.clone();
        image.resize(len, 0);
        inode.rewrite(image);
        Ok(())
    }

    /// Flips one bit (numbered from the file start, lowest bit of each byte first) in both
    /// the live and the durable bytes of a file (in the durable ones only if they are long
    /// enough). Fails with `UnexpectedEof` past the end of the live bytes.
    pub fn flip_bit(&self, path: impl AsRef<Path>, bit_offset: u64) -> io::Result<()> {
        let byte = usize::try_from(bit_offset / 8).map_err(|_| os(EFBIG))?;
        let mask = 1u8 << (bit_offset % 8);
        let mut state = self.state.lock();
        let inode = state.live_inode_mut(path.as_ref())?;
        let live = inode.live.get_mut(byte).ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "bit past the end of file")
        })?;
        *live ^= mask;
        if let Some(durable) = inode.durable.get_mut(byte) {
            *durable ^= mask;
        }
        Ok(())
    }

    /// A handle on an inode, counted as open until dropped.
    fn file(&self, ino: u64, epoch: u64, writable: bool) -> SimFile {
        SimFile {
            sim: self.clone(),
            ino,
            handle: NEXT_HANDLE.fetch_add(1, Ordering::Relaxed),
            epoch,
            writable,
            direct_block_bytes: 0,
        }
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.enter(CallKind::Create, None)?;
        state.create_dir_all(dir)
    }

    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let kind = match mode {
            OpenMode::CreateNew => CallKind::Create,
            OpenMode::Read | OpenMode::ReadWrite => CallKind::Open,
        };
        let mut state = self.state.lock();
        state.enter(kind, None)?;
        let ino = state.open(path, mode)?;
        Ok(Box::new(self.file(
            ino,
            state.epoch,
            mode != OpenMode::Read,
        )))
    }

    // Writes through a direct handle land where buffered ones do (unsynced until a
    // sync), as on a real disk with a volatile cache; the handle checks their alignment.
    fn open_direct(&self, path: &Path) -> io::Result<Option<super::DirectFile>> {
        let mut state = self.state.lock();
        state.enter(CallKind::Open, None)?;
        let ino = state.open(path, OpenMode::ReadWrite)?;
        let mut file = self.file(ino, state.epoch, true);
        file.direct_block_bytes = state.direct_block_bytes;
        Ok(Some(super::DirectFile {
            file: Box::new(file),
            block_bytes: state.direct_block_bytes,
        }))
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state.lock();
        state.enter(CallKind::List, None)?;
        state.check_dir(dir)?;
        Ok(state.names_in(dir))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let mut state = self.state.lock();
        state.enter(CallKind::Other, None)?;
        Ok(state.dirs.contains_key(path) || state.live.contains_key(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.enter(CallKind::Rename, None)?;
        state.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.enter(CallKind::Remove, None)?;
        state.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.enter(CallKind::SyncDir, None)?;
        state.check_dir(dir)?;
        state.sync_dir(dir);
        Ok(())
    }

    fn dir_identity(&self, dir: &Path) -> io::Result<(u64, u64)> {
        let mut state = self.state.lock();
        state.enter(CallKind::Other, None)?;
        state.check_dir(dir)?;
        let id = state.dirs.get(dir).copied().ok_or_else(|| os(ENOENT))?;
        Ok((0, id))
    }

    /// Not a counted call: a query that changes nothing, so fault numbering is unchanged.
    fn available_bytes(&self, _dir: &Path) -> io::Result<u64> {
        Ok(self.state.lock().available_bytes.unwrap_or(u64::MAX))
    }

    fn is_locked(&self, path: &Path) -> io::Result<bool> {
        let mut state = self.state.lock();
        state.enter(CallKind::Other, None)?;
        Ok(state
            .live
            .get(path)
            .is_some_and(|ino| state.locks.contains_key(ino)))
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageLock>>> {
        let mut state = self.state.lock();
        let kind = match state.live.contains_key(path) {
            true => CallKind::Open,
            false => CallKind::Create,
        };
        state.enter(kind, None)?;
        let Some((ino, guard)) = state.try_lock(path)? else {
            return Ok(None);
        };
        let epoch = state.epoch;
        Ok(Some(Box::new(SimLock {
            sim: self.clone(),
            ino,
            guard,
            epoch,
        })))
    }
}

/// Handle ids, unique in the process (advisory locks belong to a handle).
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

/// An open file of a [`SimStorage`].
#[derive(Debug)]
struct SimFile {
    sim: SimStorage,
    ino: u64,
    handle: u64,
    epoch: u64,
    writable: bool,
    /// Opened by [`Storage::open_direct`] (else 0): writes must be aligned to this.
    direct_block_bytes: usize,
}

impl SimFile {
    /// Runs a call of `kind` on the inode, after the accounting and the checks.
    fn on_inode<T>(
        &self,
        kind: CallKind,
        call: impl FnOnce(&mut Inode) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut state = self.sim.state.lock();
        state.enter(kind, Some(self.epoch))?;
        call(state.inode_mut(self.ino)?)
    }

    fn check_writable(&self, error: i32) -> io::Result<()> {
        match self.writable {
            true => Ok(()),
            false => Err(os(error)),
        }
    }
}

impl SimFile {
    /// A sync or write-back call of `kind`: `done` runs on success. On a fault, the file's
    /// unsynced writes are dropped (fsyncgate: the kernel marks the failed pages clean, so
    /// they never reach the disk, even if a later sync succeeds).
    fn sync_call(&self, kind: CallKind, done: impl FnOnce(&mut Inode)) -> io::Result<()> {
        let mut state = self.sim.state.lock();
        let fault = state.count(kind);
        state.check_epoch(Some(self.epoch))?;
        if fault == Some(FaultKind::Panic) {
            drop(state);
            injected_panic();
        }
        let inode = state.inode_mut(self.ino)?;
        match fault {
            None => {
                done(inode);
                Ok(())
            }
            Some(fault) => {
                inode.unsynced.clear();
                Err(fault.error())
            }
        }
    }
}

impl StorageFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.on_inode(CallKind::Read, |inode| inode.read(buf, offset))
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.on_inode(CallKind::Write, |inode| {
            self.check_writable(EBADF)?;
            let (offset, _) = file_range(offset, buf.len())?;
            let (offset, bytes) = match self.direct_block_bytes {
                0 => (offset, buf),
                block_bytes => direct_write_range(&inode.live, offset, buf, block_bytes)?,
            };
            if !bytes.is_empty() {
                inode.mutate(Mutation::Write {
                    offset,
                    bytes: bytes.to_vec(),
                });
            }
            Ok(())
        })
    }

    // Write-back makes nothing durable: only the call (and its faults) is simulated.
    fn start_write_back(&self, _offset: u64, _len: u64) -> io::Result<()> {
        self.sync_call(CallKind::WriteBack, |_| ())
    }

    fn write_back(&self, _offset: u64, _len: u64) -> io::Result<()> {
        self.sync_call(CallKind::WriteBack, |_| ())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync_call(CallKind::SyncData, Inode::sync)
    }

    fn len(&self) -> io::Result<u64> {
        self.on_inode(CallKind::Other, |inode| {
            u64::try_from(inode.live.len()).map_err(|_| os(EFBIG))
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.on_inode(CallKind::SetLen, |inode| {
            self.check_writable(EINVAL)?;
            let (len, _) = file_range(len, 0)?;
            inode.mutate(Mutation::SetLen(len));
            Ok(())
        })
    }

    fn map(&self) -> io::Result<Mapped> {
        self.on_inode(CallKind::Read, |inode| {
            Ok(Mapped::from_bytes(inode.live.clone()))
        })
    }

    fn is_unlinked(&self) -> io::Result<bool> {
        let mut state = self.sim.state.lock();
        state.enter(CallKind::Other, Some(self.epoch))?;
        Ok(!state.is_linked(self.ino))
    }

    fn stamp(&self) -> io::Result<FileStamp> {
        self.on_inode(CallKind::Other, |inode| {
            Ok(FileStamp {
                dev: SIM_DEV,
                ino: self.ino,
                changed_ns: inode.changed,
            })
        })
    }

    fn try_lock(&self, exclusive: bool) -> io::Result<bool> {
        let mut state = self.sim.state.lock();
        state.enter(CallKind::Other, Some(self.epoch))?;
        state.inode_mut(self.ino)?;
        Ok(state
            .file_locks
            .entry(self.ino)
            .or_default()
            .take(self.handle, exclusive))
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = self.sim.state.lock();
        if state.epoch != self.epoch {
            return;
        }
        if let Some(inode) = state.inodes.get_mut(&self.ino) {
            inode.open = inode.open.saturating_sub(1);
        }
        if let Some(locks) = state.file_locks.get_mut(&self.ino) {
            locks.release(self.handle);
        }
        state.collect_garbage();
    }
}

/// A lock guard of a [`SimStorage`].
#[derive(Debug)]
struct SimLock {
    sim: SimStorage,
    ino: u64,
    guard: u64,
    epoch: u64,
}

impl StorageLock for SimLock {
    fn write_info(&self, info: &[u8]) -> io::Result<()> {
        let mut state = self.sim.state.lock();
        state.enter(CallKind::Write, Some(self.epoch))?;
        state.write_info(self.ino, info)
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.sim.state.lock();
        if state.locks.get(&self.ino) == Some(&self.guard) {
            state.locks.remove(&self.ino);
            state.collect_garbage();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_cuts_land_on_sector_boundaries() {
        let mut rng = Rng(7);
        for (offset, len) in [(0, 1024), (100, 1000), (511, 2), (512, 512), (3, 100)] {
            for _ in 0..200 {
                let cut = torn_cut(offset, len, &mut rng);
                assert!(cut < len);
                assert!(
                    cut == 0 || (offset + cut).is_multiple_of(SECTOR),
                    "{offset} {len} {cut}"
                );
            }
        }
    }

    #[test]
    fn torn_cuts_reach_every_boundary() {
        let mut rng = Rng(1);
        let cuts: BTreeSet<usize> = (0..500).map(|_| torn_cut(100, 1000, &mut rng)).collect();
        assert_eq!(cuts.into_iter().collect::<Vec<_>>(), vec![0, 412, 924]);
    }
}
