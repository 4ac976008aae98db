//! One behaviour suite for every [`Storage`]: the real file system and the simulation must
//! agree on everything the store relies on. Then simulation-only tests of crashes and
//! fault injection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::storage::{
    DIRECT_ALIGN_BYTES, DirectFile, FsStorage, OpenMode, SimStorage, Storage, StorageFile,
};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// A storage under test, with a root directory that exists.
struct Env {
    storage: Box<dyn Storage>,
    root: PathBuf,
    /// Makes a directory disappear, so that recreating it yields a different directory.
    retire_dir: Box<dyn Fn(&Path)>,
    _tempdir: Option<tempfile::TempDir>,
}

impl Env {
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn open(&self, name: &str, mode: OpenMode) -> std::io::Result<Box<dyn StorageFile>> {
        self.storage.open_file(&self.path(name), mode)
    }

    /// Creates `name` holding `bytes`, synced, with its entry synced.
    fn plant(&self, name: &str, bytes: &[u8]) -> Box<dyn StorageFile> {
        let file = self.open(name, OpenMode::CreateNew).unwrap();
        file.write_all_at(bytes, 0).unwrap();
        file.sync_data().unwrap();
        self.storage.sync_dir(&self.root).unwrap();
        file
    }

    fn contents(&self, name: &str) -> Vec<u8> {
        read_all(&*self.open(name, OpenMode::Read).unwrap())
    }

    fn names(&self) -> Vec<String> {
        let mut names = self.storage.list_dir(&self.root).unwrap();
        names.sort();
        names
    }
}

fn fs_env() -> Env {
    let tempdir = tempfile::tempdir().unwrap();
    let root = tempdir.path().join("root");
    let graveyard = tempdir.path().join("graveyard");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&graveyard).unwrap();
    let retired = Cell::new(0);
    // Renamed away rather than deleted: the old inode stays allocated, so the recreated
    // directory cannot reuse its inode number.
    let retire_dir = move |dir: &Path| {
        retired.set(retired.get() + 1);
        std::fs::rename(dir, graveyard.join(retired.get().to_string())).unwrap();
    };
    Env {
        storage: Box::new(FsStorage),
        root,
        retire_dir: Box::new(retire_dir),
        _tempdir: Some(tempdir),
    }
}

fn sim_env() -> Env {
    let sim = SimStorage::new(42);
    let root = PathBuf::from("/data/root");
    sim.create_dir_all(&root).unwrap();
    let handle = sim.clone();
    Env {
        storage: Box::new(sim),
        root,
        retire_dir: Box::new(move |dir| handle.remove_dir_all(dir)),
        _tempdir: None,
    }
}

fn read_all(file: &dyn StorageFile) -> Vec<u8> {
    let mut buf = vec![0; usize::try_from(file.len().unwrap()).unwrap()];
    file.read_exact_at(&mut buf, 0).unwrap();
    buf
}

fn kind<T>(result: std::io::Result<T>) -> ErrorKind {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => error.kind(),
    }
}

fn os_error<T>(result: std::io::Result<T>) -> Option<i32> {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => error.raw_os_error(),
    }
}

// ---------------------------------------------------------------------------------------
// The shared suite.
// ---------------------------------------------------------------------------------------

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod on_fs {
            $( #[test] fn $check() { super::$check(&super::fs_env()); } )*
        }
        mod on_sim {
            $( #[test] fn $check() { super::$check(&super::sim_env()); } )*
        }
    };
}

conformance!(
    check_open_modes,
    check_open_in_missing_dir,
    check_read_write_extend,
    check_handles_share_the_file,
    check_read_only_handle,
    check_set_len,
    check_rename_replaces,
    check_rename_errors,
    check_list_dir,
    check_remove,
    check_exists,
    check_create_dir_all,
    check_sync,
    check_write_back,
    check_direct,
    check_dir_identity,
    check_is_unlinked,
    check_stamp,
    check_lock_exclusive_and_released_on_drop,
    check_lock_write_info,
    check_file_locks,
    check_map,
);

fn check_open_modes(env: &Env) {
    assert_eq!(kind(env.open("a", OpenMode::Read)), ErrorKind::NotFound);
    assert_eq!(
        kind(env.open("a", OpenMode::ReadWrite)),
        ErrorKind::NotFound
    );
    let created = env.open("a", OpenMode::CreateNew).unwrap();
    assert_eq!(created.len().unwrap(), 0);
    assert_eq!(
        kind(env.open("a", OpenMode::CreateNew)),
        ErrorKind::AlreadyExists
    );
    created.write_all_at(b"abc", 0).unwrap();
    assert_eq!(read_all(&*env.open("a", OpenMode::Read).unwrap()), b"abc");
    let writable = env.open("a", OpenMode::ReadWrite).unwrap();
    writable.write_all_at(b"X", 1).unwrap();
    assert_eq!(env.contents("a"), b"aXc");
}

fn check_open_in_missing_dir(env: &Env) {
    let path = env.path("missing/a");
    for mode in [OpenMode::Read, OpenMode::ReadWrite, OpenMode::CreateNew] {
        assert_eq!(
            kind(env.storage.open_file(&path, mode)),
            ErrorKind::NotFound,
            "{mode:?}"
        );
    }
    assert!(!env.storage.exists(&env.path("missing")).unwrap());
}

fn check_read_write_extend(env: &Env) {
    let file = env.open("a", OpenMode::CreateNew).unwrap();
    file.write_all_at(b"hello", 0).unwrap();
    file.write_all_at(b"xy", 10).unwrap();
    assert_eq!(file.len().unwrap(), 12);
    assert_eq!(read_all(&*file), b"hello\0\0\0\0\0xy");
    let mut buf = [0; 3];
    file.read_exact_at(&mut buf, 9).unwrap();
    assert_eq!(&buf, b"\0xy");
    assert_eq!(
        kind(file.read_exact_at(&mut buf, 10)),
        ErrorKind::UnexpectedEof
    );
    assert_eq!(
        kind(file.read_exact_at(&mut buf, 100)),
        ErrorKind::UnexpectedEof
    );
    file.read_exact_at(&mut [], 12).unwrap();
    file.write_all_at(b"HE", 0).unwrap();
    assert_eq!(read_all(&*file), b"HEllo\0\0\0\0\0xy");
}

fn check_handles_share_the_file(env: &Env) {
    let first = env.open("a", OpenMode::CreateNew).unwrap();
    let second = env.open("a", OpenMode::ReadWrite).unwrap();
    first.write_all_at(b"one", 0).unwrap();
    assert_eq!(read_all(&*second), b"one");
    second.set_len(1).unwrap();
    assert_eq!(first.len().unwrap(), 1);
}

fn check_read_only_handle(env: &Env) {
    env.plant("a", b"data");
    let file = env.open("a", OpenMode::Read).unwrap();
    assert!(file.write_all_at(b"x", 0).is_err());
    assert!(file.set_len(0).is_err());
    assert_eq!(read_all(&*file), b"data");
    assert_eq!(env.contents("a"), b"data");
}

fn check_set_len(env: &Env) {
    let file = env.open("a", OpenMode::CreateNew).unwrap();
    file.write_all_at(b"abcdef", 0).unwrap();
    file.set_len(2).unwrap();
    assert_eq!(read_all(&*file), b"ab");
    file.set_len(5).unwrap();
    assert_eq!(read_all(&*file), b"ab\0\0\0");
    file.set_len(0).unwrap();
    assert_eq!(file.len().unwrap(), 0);
}

fn check_rename_replaces(env: &Env) {
    env.plant("a", b"new");
    let old = env.plant("b", b"old");
    env.storage.rename(&env.path("a"), &env.path("b")).unwrap();
    assert!(!env.storage.exists(&env.path("a")).unwrap());
    assert_eq!(env.contents("b"), b"new");
    assert_eq!(env.names(), ["b"]);
    // The replaced file lives on through its handle.
    assert_eq!(read_all(&*old), b"old");
    assert!(old.is_unlinked().unwrap());
    // A rename to a fresh name, and back across directories.
    let sub = env.path("sub");
    env.storage.create_dir_all(&sub).unwrap();
    env.storage.rename(&env.path("b"), &sub.join("c")).unwrap();
    assert_eq!(env.names(), Vec::<String>::new());
    assert_eq!(env.storage.list_dir(&sub).unwrap(), ["c"]);
    env.storage.rename(&sub.join("c"), &env.path("d")).unwrap();
    assert_eq!(env.contents("d"), b"new");
}

fn check_rename_errors(env: &Env) {
    let missing = kind(env.storage.rename(&env.path("nope"), &env.path("x")));
    assert_eq!(missing, ErrorKind::NotFound);
    env.plant("a", b"a");
    let no_dir = kind(env.storage.rename(&env.path("a"), &env.path("missing/x")));
    assert_eq!(no_dir, ErrorKind::NotFound);
    assert_eq!(env.contents("a"), b"a");
}

fn check_list_dir(env: &Env) {
    assert_eq!(env.names(), Vec::<String>::new());
    env.open("b", OpenMode::CreateNew).unwrap();
    env.open("a", OpenMode::CreateNew).unwrap();
    env.storage.create_dir_all(&env.path("sub/deeper")).unwrap();
    env.storage
        .open_file(&env.path("sub/c"), OpenMode::CreateNew)
        .unwrap();
    assert_eq!(env.names(), ["a", "b"]);
    assert_eq!(env.storage.list_dir(&env.path("sub")).unwrap(), ["c"]);
    assert_eq!(
        kind(env.storage.list_dir(&env.path("missing"))),
        ErrorKind::NotFound
    );
}

fn check_remove(env: &Env) {
    let file = env.plant("a", b"bytes");
    env.storage.remove_file(&env.path("a")).unwrap();
    assert!(!env.storage.exists(&env.path("a")).unwrap());
    assert_eq!(
        kind(env.storage.remove_file(&env.path("a"))),
        ErrorKind::NotFound
    );
    assert_eq!(kind(env.open("a", OpenMode::Read)), ErrorKind::NotFound);
    assert_eq!(read_all(&*file), b"bytes");
    // The name is free again.
    env.open("a", OpenMode::CreateNew).unwrap();
    assert_eq!(env.names(), ["a"]);
}

fn check_exists(env: &Env) {
    assert!(env.storage.exists(&env.root).unwrap());
    assert!(!env.storage.exists(&env.path("a")).unwrap());
    env.open("a", OpenMode::CreateNew).unwrap();
    assert!(env.storage.exists(&env.path("a")).unwrap());
    assert!(!env.storage.exists(&env.path("a/b")).unwrap_or(false));
}

fn check_create_dir_all(env: &Env) {
    let deep = env.path("x/y/z");
    env.storage.create_dir_all(&deep).unwrap();
    env.storage.create_dir_all(&deep).unwrap();
    assert!(env.storage.exists(&env.path("x")).unwrap());
    assert!(env.storage.exists(&env.path("x/y")).unwrap());
    assert!(env.storage.exists(&deep).unwrap());
    env.storage
        .open_file(&deep.join("f"), OpenMode::CreateNew)
        .unwrap();
    assert_eq!(env.storage.list_dir(&deep).unwrap(), ["f"]);
}

fn check_sync(env: &Env) {
    let file = env.open("a", OpenMode::CreateNew).unwrap();
    file.write_all_at(b"data", 0).unwrap();
    file.sync_data().unwrap();
    env.storage.sync_dir(&env.root).unwrap();
    let read_only = env.open("a", OpenMode::Read).unwrap();
    read_only.sync_data().unwrap();
    assert_eq!(
        kind(env.storage.sync_dir(&env.path("missing"))),
        ErrorKind::NotFound
    );
}

fn check_write_back(env: &Env) {
    let file = env.open("a", OpenMode::CreateNew).unwrap();
    let data = vec![7u8; 200_000];
    file.write_all_at(&data, 0).unwrap();
    file.start_write_back(0, 100_000).unwrap();
    file.write_back(0, 200_000).unwrap();
    // A range past the end is not an error (nothing to write there), nor an empty one.
    file.write_back(150_000, 100_000).unwrap();
    file.write_back(0, 0).unwrap();
    file.start_write_back(0, 0).unwrap();
    assert_eq!(read_all(file.as_ref()), data);
    let read_only = env.open("a", OpenMode::Read).unwrap();
    read_only.write_back(0, 4096).unwrap();
}

/// `len` bytes of `byte` at a [`DIRECT_ALIGN_BYTES`]-aligned address inside `storage`.
fn aligned(storage: &mut Vec<u8>, len: usize, byte: u8) -> &[u8] {
    storage.clear();
    storage.reserve(len + DIRECT_ALIGN_BYTES);
    let skip = storage.as_ptr().align_offset(DIRECT_ALIGN_BYTES);
    storage.resize(skip, 0);
    storage.resize(skip + len, byte);
    &storage[skip..]
}

fn check_direct(env: &Env) {
    assert_eq!(
        kind(env.storage.open_direct(&env.path("missing"))),
        ErrorKind::NotFound
    );
    let file = env.open("a", OpenMode::CreateNew).unwrap();
    file.write_all_at(&[1u8; 3 * DIRECT_ALIGN_BYTES], 0)
        .unwrap();
    let Some(DirectFile {
        file: direct,
        block_bytes,
    }) = env.storage.open_direct(&env.path("a")).unwrap()
    else {
        // The file system under the temp dir cannot write directly (tmpfs, or a kernel
        // before 6.1): the store writes through the page cache there.
        assert!(env._tempdir.is_some(), "the simulator always can");
        return;
    };
    assert!(block_bytes.is_power_of_two() && (512..=DIRECT_ALIGN_BYTES).contains(&block_bytes));
    let mut buffer = Vec::new();
    let block = aligned(&mut buffer, 2 * DIRECT_ALIGN_BYTES, 9);
    direct
        .write_all_at(block, DIRECT_ALIGN_BYTES as u64)
        .unwrap();
    direct.sync_data().unwrap();
    let mut expected = vec![1u8; DIRECT_ALIGN_BYTES];
    expected.extend_from_slice(&[9u8; 2 * DIRECT_ALIGN_BYTES]);
    assert_eq!(
        read_all(file.as_ref()),
        expected,
        "seen through the buffered handle"
    );
    // Past the end: the file grows.
    direct
        .write_all_at(block, 3 * DIRECT_ALIGN_BYTES as u64)
        .unwrap();
    assert_eq!(file.len().unwrap(), 5 * DIRECT_ALIGN_BYTES as u64);
    // Misaligned offset, length or address.
    let einval = Some(22);
    assert_eq!(os_error(direct.write_all_at(block, 100)), einval);
    assert_eq!(os_error(direct.write_all_at(&block[..100], 0)), einval);
    // A kernel may accept any address its device can transfer from (often 4-byte
    // aligned); the simulator holds callers to the page alignment they promise.
    if env._tempdir.is_none() {
        let misplaced = &aligned(&mut buffer, DIRECT_ALIGN_BYTES + 1, 3)[1..];
        assert_eq!(os_error(direct.write_all_at(misplaced, 0)), einval);
    }
    assert_eq!(read_all(file.as_ref()).len(), 5 * DIRECT_ALIGN_BYTES);
}

fn check_dir_identity(env: &Env) {
    let dir = env.path("sub");
    assert_eq!(kind(env.storage.dir_identity(&dir)), ErrorKind::NotFound);
    env.storage.create_dir_all(&dir).unwrap();
    let identity = env.storage.dir_identity(&dir).unwrap();
    assert_eq!(env.storage.dir_identity(&dir).unwrap(), identity);
    assert_ne!(env.storage.dir_identity(&env.root).unwrap(), identity);
    (env.retire_dir)(&dir);
    assert_eq!(kind(env.storage.dir_identity(&dir)), ErrorKind::NotFound);
    env.storage.create_dir_all(&dir).unwrap();
    assert_ne!(env.storage.dir_identity(&dir).unwrap(), identity);
}

fn check_is_unlinked(env: &Env) {
    let file = env.open("a", OpenMode::CreateNew).unwrap();
    assert!(!file.is_unlinked().unwrap());
    env.storage.rename(&env.path("a"), &env.path("b")).unwrap();
    assert!(!file.is_unlinked().unwrap());
    env.storage.remove_file(&env.path("b")).unwrap();
    assert!(file.is_unlinked().unwrap());
    file.write_all_at(b"still works", 0).unwrap();
    assert_eq!(read_all(&*file), b"still works");
}

/// A stamp names the file and its last change: the same through any handle while
/// nothing changes; another for a copy of the same bytes, and after any write.
fn check_stamp(env: &Env) {
    let file = env.open("a", OpenMode::CreateNew).unwrap();
    file.write_all_at(b"contents", 0).unwrap();
    file.sync_data().unwrap();
    let stamp = file.stamp().unwrap();
    assert_eq!(file.stamp().unwrap(), stamp);
    let again = env.open("a", OpenMode::Read).unwrap();
    assert_eq!(again.stamp().unwrap(), stamp, "another handle, same file");
    let copy = env.open("b", OpenMode::CreateNew).unwrap();
    copy.write_all_at(b"contents", 0).unwrap();
    copy.sync_data().unwrap();
    assert_ne!(copy.stamp().unwrap(), stamp, "a copy is another file");
    // Past the coarsest timestamp tick (a 100 Hz jiffy), so no kernel can give the
    // write the change time it already had.
    std::thread::sleep(std::time::Duration::from_millis(20));
    file.write_all_at(b"contents", 0).unwrap();
    let rewritten = file.stamp().unwrap();
    assert_ne!(rewritten, stamp, "the same bytes written again change it");
    assert_eq!((rewritten.dev, rewritten.ino), (stamp.dev, stamp.ino));
}

fn check_lock_exclusive_and_released_on_drop(env: &Env) {
    let path = env.path("LOCK");
    let guard = env.storage.try_lock(&path).unwrap().expect("free lock");
    assert!(env.storage.exists(&path).unwrap());
    assert!(env.storage.try_lock(&path).unwrap().is_none());
    assert!(env.storage.try_lock(&path).unwrap().is_none());
    let other = env.storage.try_lock(&env.path("OTHER")).unwrap();
    assert!(other.is_some());
    drop(guard);
    let again = env.storage.try_lock(&path).unwrap();
    assert!(again.is_some());
    assert!(env.storage.try_lock(&path).unwrap().is_none());
    assert_eq!(
        kind(env.storage.try_lock(&env.path("missing/LOCK"))),
        ErrorKind::NotFound
    );
}

/// Advisory locks on open files: shared with shared, exclusive with nothing, per handle
/// (two handles of one process conflict), converted in place, kept across a rename, and
/// released when the handle is dropped.
fn check_file_locks(env: &Env) {
    env.plant("a.snap", b"snapshot");
    let reader = env.open("a.snap", OpenMode::Read).unwrap();
    let other_reader = env.open("a.snap", OpenMode::Read).unwrap();
    let writer = env.open("a.snap", OpenMode::ReadWrite).unwrap();
    assert!(reader.try_lock(false).unwrap(), "a first shared lock");
    assert!(
        other_reader.try_lock(false).unwrap(),
        "shared beside shared"
    );
    assert!(!writer.try_lock(true).unwrap(), "exclusive beside shared");
    drop(reader);
    assert!(!writer.try_lock(true).unwrap(), "one shared holder is left");
    drop(other_reader);
    assert!(
        writer.try_lock(true).unwrap(),
        "exclusive once no one holds one"
    );
    assert!(writer.try_lock(true).unwrap(), "the holder may ask again");
    env.storage
        .rename(&env.path("a.snap"), &env.path("a.snap.spare"))
        .unwrap();
    let late = env.open("a.snap.spare", OpenMode::Read).unwrap();
    assert!(
        !late.try_lock(false).unwrap(),
        "the lock stays with the renamed file"
    );
    assert!(writer.try_lock(false).unwrap(), "converted to shared");
    assert!(
        late.try_lock(false).unwrap(),
        "shared beside the converted lock"
    );
    drop(writer);
    assert!(
        !env.open("a.snap.spare", OpenMode::ReadWrite)
            .unwrap()
            .try_lock(true)
            .unwrap()
    );
    drop(late);
    let last = env.open("a.snap.spare", OpenMode::ReadWrite).unwrap();
    assert!(last.try_lock(true).unwrap(), "every holder dropped");
    env.plant("b.snap", b"other");
    let unrelated = env.open("b.snap", OpenMode::Read).unwrap();
    assert!(unrelated.try_lock(true).unwrap(), "locks are per file");
}

fn check_lock_write_info(env: &Env) {
    let path = env.path("LOCK");
    let guard = env.storage.try_lock(&path).unwrap().unwrap();
    guard.write_info(b"pid 1234, a long line").unwrap();
    assert_eq!(env.contents("LOCK"), b"pid 1234, a long line");
    guard.write_info(b"pid 5").unwrap();
    assert_eq!(env.contents("LOCK"), b"pid 5");
    guard.write_info(b"pid 67").unwrap();
    assert_eq!(env.contents("LOCK"), b"pid 67");
    guard.write_info(b"pid 8").unwrap();
    assert_eq!(env.contents("LOCK"), b"pid 8");
    drop(guard);
    // Taking the lock keeps what the file holds.
    let _guard = env.storage.try_lock(&path).unwrap().unwrap();
    assert_eq!(env.contents("LOCK"), b"pid 8");
}

fn check_map(env: &Env) {
    let file = env.open("a", OpenMode::CreateNew).unwrap();
    assert!(file.map().unwrap().is_empty());
    file.write_all_at(b"mapped bytes", 0).unwrap();
    file.sync_data().unwrap();
    let map = env.open("a", OpenMode::Read).unwrap().map().unwrap();
    assert_eq!(&*map, b"mapped bytes");
    env.storage.remove_file(&env.path("a")).unwrap();
    assert_eq!(&*map, b"mapped bytes");
}

// ---------------------------------------------------------------------------------------
// Simulation only: crashes.
// ---------------------------------------------------------------------------------------

fn sim() -> (SimStorage, PathBuf) {
    let sim = SimStorage::new(7);
    let root = PathBuf::from("/db");
    sim.create_dir_all(&root).unwrap();
    (sim, root)
}

fn create_synced(sim: &SimStorage, path: &Path, bytes: &[u8]) -> Box<dyn StorageFile> {
    let file = sim.open_file(path, OpenMode::CreateNew).unwrap();
    file.write_all_at(bytes, 0).unwrap();
    file.sync_data().unwrap();
    sim.sync_dir(path.parent().unwrap()).unwrap();
    file
}

#[test]
fn lose_unsynced_keeps_synced_data_only() {
    let (sim, root) = sim();
    let file = create_synced(&sim, &root.join("a"), b"synced");
    file.write_all_at(b" and more", 6).unwrap();
    file.set_len(3).unwrap();
    assert_eq!(sim.read_file(root.join("a")).unwrap(), b"syn");
    assert_eq!(sim.read_durable_file(root.join("a")).unwrap(), b"synced");
    sim.crash(CrashMode::LoseUnsynced);
    assert_eq!(sim.read_file(root.join("a")).unwrap(), b"synced");
}

#[test]
fn lose_unsynced_drops_unsynced_entries() {
    let (sim, root) = sim();
    create_synced(&sim, &root.join("a"), b"A");
    create_synced(&sim, &root.join("b"), b"B");
    create_synced(&sim, &root.join("gone"), b"G");
    // A synced file whose name was never synced.
    let nameless = sim
        .open_file(&root.join("new"), OpenMode::CreateNew)
        .unwrap();
    nameless.write_all_at(b"N", 0).unwrap();
    nameless.sync_data().unwrap();
    sim.rename(&root.join("a"), &root.join("b")).unwrap();
    sim.remove_file(&root.join("gone")).unwrap();
    assert_eq!(sim.file_names(&root), ["b", "new"]);
    sim.crash(CrashMode::LoseUnsynced);
    assert_eq!(sim.file_names(&root), ["a", "b", "gone"]);
    assert_eq!(sim.read_file(root.join("b")).unwrap(), b"B");
}

#[test]
fn sync_dir_makes_entries_durable() {
    let (sim, root) = sim();
    create_synced(&sim, &root.join("a"), b"A");
    create_synced(&sim, &root.join("b"), b"B");
    sim.rename(&root.join("a"), &root.join("b")).unwrap();
    sim.sync_dir(&root).unwrap();
    sim.crash(CrashMode::LoseUnsynced);
    assert_eq!(sim.file_names(&root), ["b"]);
    assert_eq!(sim.read_file(root.join("b")).unwrap(), b"A");
}

#[test]
fn sync_dir_covers_only_its_directory() {
    let (sim, root) = sim();
    let sub = root.join("sub");
    sim.create_dir_all(&sub).unwrap();
    create_synced(&sim, &root.join("a"), b"A");
    sim.rename(&root.join("a"), &sub.join("a")).unwrap();
    sim.sync_dir(&sub).unwrap();
    sim.crash(CrashMode::LoseUnsynced);
    // Directories are torn independently: both names survive here.
    assert_eq!(sim.file_names(&root), ["a"]);
    assert_eq!(sim.file_names(&sub), ["a"]);
}

#[test]
fn keep_unsynced_keeps_everything_until_a_power_loss() {
    let (sim, root) = sim();
    let file = create_synced(&sim, &root.join("a"), b"A");
    file.write_all_at(b"BC", 1).unwrap();
    sim.open_file(&root.join("b"), OpenMode::CreateNew).unwrap();
    sim.crash(CrashMode::KeepUnsynced);
    assert!(SimStorage::is_crash_error(&file.len().unwrap_err()));
    assert_eq!(sim.file_names(&root), ["a", "b"]);
    assert_eq!(sim.read_file(root.join("a")).unwrap(), b"ABC");
    sim.crash(CrashMode::LoseUnsynced);
    assert_eq!(sim.file_names(&root), ["a"]);
    assert_eq!(sim.read_file(root.join("a")).unwrap(), b"A");
}

#[test]
fn handles_and_locks_fail_after_a_crash() {
    let (sim, root) = sim();
    let file = create_synced(&sim, &root.join("a"), b"A");
    let guard = sim.try_lock(&root.join("LOCK")).unwrap().unwrap();
    assert!(file.try_lock(true).unwrap());
    sim.crash(CrashMode::LoseUnsynced);
    let mut buf = [0; 1];
    let errors = [
        file.read_exact_at(&mut buf, 0).unwrap_err(),
        file.write_all_at(b"x", 0).unwrap_err(),
        file.sync_data().unwrap_err(),
        file.len().unwrap_err(),
        file.set_len(0).unwrap_err(),
        file.map().unwrap_err(),
        file.is_unlinked().unwrap_err(),
        guard.write_info(b"x").unwrap_err(),
        file.try_lock(false).unwrap_err(),
    ];
    let eio_kind = std::io::Error::from_raw_os_error(EIO).kind();
    for error in errors {
        assert!(SimStorage::is_crash_error(&error), "{error}");
        assert_eq!(error.kind(), eio_kind);
    }
    // The crash released the lock (its file was never synced, so it is gone too), and the
    // stale guard's drop must not release the new holder's lock.
    let new_guard = sim.try_lock(&root.join("LOCK")).unwrap();
    assert!(new_guard.is_some());
    drop(guard);
    drop(file);
    assert!(sim.try_lock(&root.join("LOCK")).unwrap().is_none());
    // New handles work, and the crash released the file lock of the stale handle.
    let again = sim.open_file(&root.join("a"), OpenMode::Read).unwrap();
    assert_eq!(read_all(&*again), b"A");
    assert!(again.try_lock(true).unwrap());
}

/// A file of 4096 synced 0xAA bytes, then an unsynced write of 4096 0x55 bytes at 100.
fn torn_scenario(seed: u64) -> Vec<u8> {
    let sim = SimStorage::new(seed);
    let path = Path::new("/db/a");
    sim.create_dir_all(Path::new("/db")).unwrap();
    let file = create_synced(&sim, path, &[0xaa; 4096]);
    file.write_all_at(&[0x55; 4096], 100).unwrap();
    sim.crash(CrashMode::Random);
    sim.read_file(path).unwrap()
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Lost,
    Full,
    TornZeros { cut: usize },
    TornGarbage { cut: usize },
}

fn classify(image: &[u8]) -> Outcome {
    assert!(
        image[..100].iter().all(|&b| b == 0xaa),
        "the untouched prefix changed"
    );
    if image.len() == 4096 {
        assert!(image.iter().all(|&b| b == 0xaa));
        return Outcome::Lost;
    }
    assert_eq!(image.len(), 4196);
    let range = &image[100..];
    if range.iter().all(|&b| b == 0x55) {
        return Outcome::Full;
    }
    // The longest sector-aligned prefix of the new bytes that survived.
    let written = range.iter().take_while(|&&b| b == 0x55).count();
    let cut = (0..written + 1)
        .rev()
        .find(|cut| *cut == 0 || (100 + cut) % 512 == 0)
        .unwrap();
    let rest = &range[cut..];
    if rest.iter().all(|&b| b == 0) {
        Outcome::TornZeros { cut }
    } else {
        // Garbage: the rest is not a continuation of the write nor all zeros.
        assert!(rest.iter().any(|&b| b != 0x55 && b != 0));
        Outcome::TornGarbage { cut }
    }
}

#[test]
fn random_crash_is_deterministic_and_tears_at_sector_boundaries() {
    let mut seen = BTreeSet::new();
    for seed in 0..300 {
        let image = torn_scenario(seed);
        assert_eq!(
            image,
            torn_scenario(seed),
            "seed {seed} is not deterministic"
        );
        seen.insert(classify(&image));
    }
    assert!(seen.contains(&Outcome::Lost));
    assert!(seen.contains(&Outcome::Full));
    let zero_cuts: BTreeSet<usize> = seen
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::TornZeros { cut } => Some(*cut),
            _ => None,
        })
        .collect();
    assert!(
        zero_cuts.contains(&0) && zero_cuts.contains(&412),
        "{zero_cuts:?}"
    );
    assert!(
        zero_cuts
            .iter()
            .all(|cut| *cut == 0 || (100 + cut) % 512 == 0)
    );
    assert!(
        seen.iter()
            .any(|outcome| matches!(outcome, Outcome::TornGarbage { .. }))
    );
}

#[test]
fn random_crash_keeps_a_prefix_of_each_directory_log() {
    let mut seen = BTreeSet::new();
    for seed in 0..100 {
        let (sim, root) = (SimStorage::new(seed), PathBuf::from("/db"));
        sim.create_dir_all(&root).unwrap();
        for name in ["a", "b", "c"] {
            sim.open_file(&root.join(name), OpenMode::CreateNew)
                .unwrap();
        }
        sim.crash(CrashMode::Random);
        let names = sim.file_names(&root);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(["a", "b", "c"].starts_with(&names), "{names:?}");
        seen.insert(names.len());
    }
    assert_eq!(seen, BTreeSet::from([0, 1, 2, 3]));
}

#[test]
fn random_crash_never_touches_synced_state() {
    for seed in 0..50 {
        let (sim, root) = (SimStorage::new(seed), PathBuf::from("/db"));
        sim.create_dir_all(&root).unwrap();
        let file = create_synced(&sim, &root.join("a"), &[1; 2000]);
        file.write_all_at(&[2; 10], 3000).unwrap();
        sim.crash(CrashMode::Random);
        let image = sim.read_file(root.join("a")).unwrap();
        assert_eq!(image[..2000], [1; 2000]);
    }
}

// ---------------------------------------------------------------------------------------
// Simulation only: faults.
// ---------------------------------------------------------------------------------------

fn once(at_call: u64, kind: FaultKind) -> Fault {
    Fault {
        at_call,
        kind,
        persistent: false,
        only: None,
    }
}

#[test]
fn every_trait_call_is_counted() {
    let (sim, root) = sim();
    let start = sim.calls();
    let file = sim.open_file(&root.join("a"), OpenMode::CreateNew).unwrap();
    file.write_all_at(b"x", 0).unwrap();
    file.len().unwrap();
    let guard = sim.try_lock(&root.join("LOCK")).unwrap().unwrap();
    guard.write_info(b"me").unwrap();
    assert_eq!(sim.calls(), start + 5);
    // Helpers are not counted.
    sim.read_file(root.join("a"));
    sim.write_file(root.join("b"), b"b");
    assert_eq!(sim.calls(), start + 5);
}

#[test]
fn a_fault_fails_exactly_the_nth_call_without_effect() {
    let (sim, root) = sim();
    let file = create_synced(&sim, &root.join("a"), b"abc");
    sim.inject(once(sim.calls() + 2, FaultKind::Eio));
    file.write_all_at(b"1", 0).unwrap();
    assert_eq!(os_error(file.write_all_at(b"2", 1)), Some(EIO));
    file.write_all_at(b"3", 2).unwrap();
    assert_eq!(sim.read_file(root.join("a")).unwrap(), b"1b3");
    // Storage-level calls fail the same way and leave nothing behind.
    sim.inject(once(sim.calls() + 1, FaultKind::Enospc));
    assert_eq!(
        os_error(sim.open_file(&root.join("n"), OpenMode::CreateNew)),
        Some(ENOSPC)
    );
    assert!(!sim.exists(&root.join("n")).unwrap());
    sim.inject(once(sim.calls() + 1, FaultKind::Eio));
    assert_eq!(
        os_error(sim.rename(&root.join("a"), &root.join("b"))),
        Some(EIO)
    );
    assert_eq!(sim.file_names(&root), ["a"]);
}

#[test]
fn a_persistent_fault_fails_every_later_mutation() {
    let (sim, root) = sim();
    let file = create_synced(&sim, &root.join("a"), b"abc");
    sim.inject(Fault {
        persistent: true,
        ..once(sim.calls() + 1, FaultKind::Enospc)
    });
    assert_eq!(os_error(file.len()), Some(ENOSPC));
    assert_eq!(os_error(file.write_all_at(b"x", 0)), Some(ENOSPC));
    assert_eq!(os_error(file.set_len(0)), Some(ENOSPC));
    assert_eq!(os_error(file.sync_data()), Some(ENOSPC));
    assert_eq!(os_error(sim.sync_dir(&root)), Some(ENOSPC));
    assert_eq!(os_error(sim.remove_file(&root.join("a"))), Some(ENOSPC));
    assert_eq!(
        os_error(sim.open_file(&root.join("b"), OpenMode::CreateNew)),
        Some(ENOSPC)
    );
    assert_eq!(os_error(sim.try_lock(&root.join("LOCK"))), Some(ENOSPC));
    // Reads, opens and queries still work.
    assert_eq!(file.len().unwrap(), 3);
    assert_eq!(
        read_all(&*sim.open_file(&root.join("a"), OpenMode::Read).unwrap()),
        b"abc"
    );
    assert_eq!(sim.list_dir(&root).unwrap(), ["a"]);
    sim.clear_faults();
    file.write_all_at(b"x", 0).unwrap();
    file.sync_data().unwrap();
}

#[test]
fn a_kind_restricted_fault_counts_only_that_kind_from_injection() {
    let (sim, root) = sim();
    let file = create_synced(&sim, &root.join("a"), b"abc");
    let syncs = sim.sync_calls();
    sim.inject(Fault {
        at_call: 2,
        kind: FaultKind::Eio,
        persistent: false,
        only: Some(CallKind::SyncData),
    });
    file.write_all_at(b"1", 0).unwrap();
    file.sync_data().unwrap();
    sim.sync_dir(&root).unwrap();
    file.write_all_at(b"2", 0).unwrap();
    assert_eq!(os_error(file.sync_data()), Some(EIO));
    file.sync_data().unwrap();
    assert_eq!(sim.sync_calls(), syncs + 4);
}

#[test]
fn write_back_is_counted_can_fail_and_makes_nothing_durable() {
    let (sim, root) = sim();
    let path = root.join("a");
    let file = create_synced(&sim, &path, b"old!");
    file.write_all_at(b"NEW", 0).unwrap();
    let calls = sim.calls();
    file.start_write_back(0, 3).unwrap();
    file.write_back(0, 3).unwrap();
    assert_eq!(sim.calls(), calls + 2);
    sim.inject(Fault {
        at_call: 1,
        kind: FaultKind::Eio,
        persistent: false,
        only: Some(CallKind::WriteBack),
    });
    assert_eq!(os_error(file.write_back(0, 3)), Some(EIO));
    // As after a failed sync: the failed pages never reach the disk, even if a later
    // sync succeeds.
    file.sync_data().unwrap();
    assert_eq!(sim.read_durable_file(&path).unwrap(), b"old!");
    sim.crash(CrashMode::LoseUnsynced);
    assert_eq!(sim.read_file(&path).unwrap(), b"old!");
}

#[test]
fn a_failed_fsync_never_makes_its_data_durable() {
    let (sim, root) = sim();
    let path = root.join("a");
    let file = create_synced(&sim, &path, b"old!");
    file.write_all_at(b"NEW", 0).unwrap();
    sim.inject(Fault {
        at_call: 1,
        kind: FaultKind::Eio,
        persistent: false,
        only: Some(CallKind::SyncData),
    });
    assert_eq!(os_error(file.sync_data()), Some(EIO));
    // The page cache still shows the write...
    assert_eq!(sim.read_file(&path).unwrap(), b"NEW!");
    // ...but a successful retry does not bring it to the disk.
    file.sync_data().unwrap();
    assert_eq!(sim.read_durable_file(&path).unwrap(), b"old!");
    // Later writes are durable again.
    file.write_all_at(b"?", 3).unwrap();
    file.sync_data().unwrap();
    sim.crash(CrashMode::LoseUnsynced);
    assert_eq!(sim.read_file(&path).unwrap(), b"old?");
}

#[test]
fn faults_fire_on_lock_calls_too() {
    let (sim, root) = sim();
    let guard = sim.try_lock(&root.join("LOCK")).unwrap().unwrap();
    sim.inject(Fault {
        at_call: 1,
        kind: FaultKind::Enospc,
        persistent: false,
        only: Some(CallKind::Write),
    });
    assert_eq!(os_error(guard.write_info(b"x")), Some(ENOSPC));
    guard.write_info(b"y").unwrap();
    assert_eq!(sim.read_file(root.join("LOCK")).unwrap(), b"y");
}

// ---------------------------------------------------------------------------------------
// Simulation only: test helpers.
// ---------------------------------------------------------------------------------------

#[test]
fn helpers_plant_and_damage_files() {
    let sim = SimStorage::new(1);
    sim.write_file("/x/y/f", b"\x00\x01planted");
    sim.write_file("/x/y/e", b"");
    assert_eq!(sim.file_names("/x/y"), ["e", "f"]);
    sim.crash(CrashMode::LoseUnsynced);
    assert_eq!(sim.read_file("/x/y/f").unwrap(), b"\x00\x01planted");
    sim.flip_bit("/x/y/f", 8).unwrap();
    sim.flip_bit("/x/y/f", 3).unwrap();
    assert_eq!(sim.read_file("/x/y/f").unwrap(), b"\x08\x00planted");
    assert_eq!(
        sim.flip_bit("/x/y/e", 0).unwrap_err().kind(),
        ErrorKind::UnexpectedEof
    );
    sim.set_len("/x/y/f", 2).unwrap();
    sim.crash(CrashMode::LoseUnsynced);
    assert_eq!(sim.read_file("/x/y/f").unwrap(), b"\x08\x00");
    assert_eq!(
        sim.set_len("/x/y/none", 2).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(sim.read_file("/x/y/none"), None);
}

#[test]
fn remove_dir_all_unlinks_open_files_and_renews_the_identity() {
    let sim = SimStorage::new(1);
    let dir = Path::new("/db");
    sim.create_dir_all(dir).unwrap();
    let identity = sim.dir_identity(dir).unwrap();
    let file = create_synced(&sim, &dir.join("a"), b"A");
    sim.remove_dir_all(dir);
    assert!(file.is_unlinked().unwrap());
    assert_eq!(read_all(&*file), b"A");
    assert!(!sim.exists(dir).unwrap());
    sim.crash(CrashMode::LoseUnsynced);
    assert!(!sim.exists(dir).unwrap());
    sim.create_dir_all(dir).unwrap();
    assert_ne!(sim.dir_identity(dir).unwrap(), identity);
    assert_eq!(sim.file_names(dir), Vec::<String>::new());
}

/// `data_len` bounds the written data: everything after it reads as zeros, and written
/// bytes are never after it. On the real file system a preallocated, mostly unwritten
/// file reports far less than its length (SEEK_DATA/SEEK_HOLE).
#[test]
fn data_len_covers_every_written_byte() {
    use walstore::storage::{FsStorage, OpenMode, Storage};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("segment");
    let storage = FsStorage;
    let file = storage.open_file(&path, OpenMode::CreateNew).unwrap();
    file.set_len(8 << 20).unwrap();
    file.write_all_at(&[7u8; 100], 0).unwrap();
    file.write_all_at(&[9u8; 10], 300_000).unwrap();
    file.sync_data().unwrap();
    let data_len = file.data_len().unwrap();
    assert!(data_len >= 300_010, "{data_len}");
    assert!(
        data_len < 8 << 20,
        "the trailing hole is not data: {data_len}"
    );
    let mut rest = vec![1u8; (8 << 20) - data_len as usize];
    file.read_exact_at(&mut rest, data_len).unwrap();
    assert!(rest.iter().all(|&b| b == 0));
}
