//! Helpers of the parity sidecar suites (`tests/parity.rs`, `tests/parity_faults.rs`).

use std::io;
use std::path::Path;
use std::sync::Arc;

use walstore::storage::{OpenMode, SimStorage, Storage, StorageFile, StorageLock};
use walstore::{Options, Store};

use super::{Backend, dump, fingerprint};

/// Bytes per page of a snapshot, as the sidecar cuts it.
pub const PAGE: usize = 4096;

/// 3,200 fingerprints in 4 transactions: a snapshot of about 40 pages.
pub fn fill(store: &Store) {
    for batch in 0..4u64 {
        let mut txn = store.begin_write();
        for i in 0..800 {
            let n = batch * 800 + i;
            txn.put_fingerprint(
                "code",
                &format!("src/module{}/file{n:05}.rs", n % 9),
                fingerprint(n),
            );
        }
        txn.commit().expect("commit");
    }
}

/// A store opened with `options`, filled, checkpointed, and one commit after it; returns
/// the snapshot's name and the state.
pub fn checkpointed_with(backend: &Backend, options: Options) -> (String, String) {
    let store = options.open(&backend.dir).expect("open");
    fill(&store);
    store.checkpoint().expect("checkpoint");
    let mut txn = store.begin_write();
    txn.set_meta("after", walstore::Value::from(1u64));
    txn.commit().expect("commit");
    let state = dump(&store);
    drop(store);
    let snap = backend.names_ending(".snap").pop().expect("a snapshot");
    (snap, state)
}

/// XORs `0xA5` into the bytes of `ranges` of the file `name`; returns its bytes before.
pub fn damage(backend: &Backend, name: &str, ranges: &[std::ops::Range<usize>]) -> Vec<u8> {
    let original = backend.read(name);
    let mut bytes = original.clone();
    for range in ranges {
        for byte in &mut bytes[range.clone()] {
            *byte ^= 0xA5;
        }
    }
    backend.write(name, &bytes);
    original
}

/// How [`OnOpen`] opens a file: given the simulator, the path and the mode.
pub type OpenHook =
    dyn Fn(&SimStorage, &Path, OpenMode) -> io::Result<Box<dyn StorageFile>> + Send + Sync;

/// A [`SimStorage`] whose `open_file` goes through a hook (to wrap the file, or to act
/// first, as another process would); every other call passes straight through.
#[derive(Clone)]
pub struct OnOpen {
    pub inner: SimStorage,
    pub hook: Arc<OpenHook>,
}

impl std::fmt::Debug for OnOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnOpen").finish_non_exhaustive()
    }
}

impl Storage for OnOpen {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        (self.hook)(&self.inner, path, mode)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn dir_identity(&self, dir: &Path) -> io::Result<(u64, u64)> {
        self.inner.dir_identity(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageLock>>> {
        self.inner.try_lock(path)
    }
    fn is_locked(&self, path: &Path) -> io::Result<bool> {
        self.inner.is_locked(path)
    }
}
