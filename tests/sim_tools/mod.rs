//! Helpers for the fault, corruption and model tests: a storage wrapper that records every
//! sync call, a dump that reports read errors instead of panicking, and a snapshot of a
//! directory's bytes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use walstore::storage::{
    DirectFile, Mapped, OpenMode, SimStorage, Storage, StorageFile, StorageLock,
};
use walstore::{Store, storage::sim::CrashMode};

/// A call [`Traced`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `sync_data` or write-back of a file, or `sync_dir` of a directory, and whether it
    /// succeeded.
    Sync { path: PathBuf, ok: bool },
    /// A successful rename, by its target.
    Renamed(PathBuf),
}

/// A [`SimStorage`] that records its sync calls and renames. Every trait call is passed
/// through exactly once, so the simulator's call numbering is unchanged.
#[derive(Debug, Clone)]
pub struct Traced {
    pub sim: SimStorage,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Traced {
    pub fn new(sim: SimStorage) -> Traced {
        Traced {
            sim,
            events: Arc::default(),
        }
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }

    /// How many events were recorded so far.
    pub fn mark(&self) -> usize {
        self.events.lock().expect("events").len()
    }

    fn record(&self, event: Event) {
        self.events.lock().expect("events").push(event);
    }

    fn synced(&self, path: &Path, result: io::Result<()>) -> io::Result<()> {
        self.record(Event::Sync {
            path: path.to_path_buf(),
            ok: result.is_ok(),
        });
        result
    }
}

impl Storage for Traced {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.sim.create_dir_all(dir)
    }

    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let file = self.sim.open_file(path, mode)?;
        Ok(Box::new(TracedFile {
            file,
            path: path.to_path_buf(),
            trace: self.clone(),
        }))
    }

    fn open_direct(&self, path: &Path) -> io::Result<Option<DirectFile>> {
        let Some(direct) = self.sim.open_direct(path)? else {
            return Ok(None);
        };
        Ok(Some(DirectFile {
            file: Box::new(TracedFile {
                file: direct.file,
                path: path.to_path_buf(),
                trace: self.clone(),
            }),
            block_bytes: direct.block_bytes,
        }))
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.sim.list_dir(dir)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.sim.exists(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.rename(from, to)?;
        self.record(Event::Renamed(to.to_path_buf()));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.sim.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let result = self.sim.sync_dir(dir);
        self.synced(dir, result)
    }

    fn dir_identity(&self, dir: &Path) -> io::Result<(u64, u64)> {
        self.sim.dir_identity(dir)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageLock>>> {
        self.sim.try_lock(path)
    }

    fn is_locked(&self, path: &Path) -> io::Result<bool> {
        self.sim.is_locked(path)
    }
}

#[derive(Debug)]
struct TracedFile {
    file: Box<dyn StorageFile>,
    path: PathBuf,
    trace: Traced,
}

impl StorageFile for TracedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        let result = self.file.sync_data();
        self.trace.synced(&self.path, result)
    }

    // Write-back is recorded as a sync: a failed one must not be followed by any sync.
    fn start_write_back(&self, offset: u64, len: u64) -> io::Result<()> {
        let result = self.file.start_write_back(offset, len);
        self.trace.synced(&self.path, result)
    }

    fn write_back(&self, offset: u64, len: u64) -> io::Result<()> {
        let result = self.file.write_back(offset, len);
        self.trace.synced(&self.path, result)
    }

    fn data_len(&self) -> io::Result<u64> {
        self.file.data_len()
    }

    fn punch_zeros(&self, offset: u64, len: u64) -> io::Result<()> {
        self.file.punch_zeros(offset, len)
    }

    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn map(&self) -> io::Result<Mapped> {
        self.file.map()
    }

    fn is_unlinked(&self) -> io::Result<bool> {
        self.file.is_unlinked()
    }

    fn stamp(&self) -> io::Result<walstore::storage::FileStamp> {
        self.file.stamp()
    }
}

/// `common::dump`, but a read error is returned instead of panicking (same format).
pub fn try_dump(store: &Store) -> walstore::Result<String> {
    let read = store.read();
    let mut out = String::new();
    for (k, v) in read.metadata()? {
        out += &format!("meta {k}={v:?}\n");
    }
    for (k, v) in read.configs()? {
        out += &format!("config {k}={v:?}\n");
    }
    for entry in read.all_fingerprints()? {
        let (ns, path, fp) = entry?;
        out += &format!("fp {ns} {path} {fp:?}\n");
    }
    for doc in read.docs()? {
        let doc = doc?;
        out += &format!("doc {doc} {:?}\n", read.doc_terms(&doc)?);
    }
    out += &format!("stats {:?}\n", read.fts_stats()?);
    Ok(out)
}

/// Every file under `dir` (subdirectories included) with its live bytes, except `LOCK`,
/// whose holder diagnostics every writer rewrites.
pub fn image(sim: &SimStorage, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in [dir.to_path_buf(), dir.join("quarantine")] {
        for name in sim.file_names(&sub) {
            if name == walstore::LOCK_FILE {
                continue;
            }
            let path = sub.join(&name);
            let bytes = sim.read_file(&path).expect("listed file");
            out.insert(path.display().to_string(), bytes);
        }
    }
    out
}

/// The names under `dir` that look like temporaries.
pub fn temps(sim: &SimStorage, dir: &Path) -> Vec<String> {
    sim.file_names(dir)
        .into_iter()
        .filter(|name| name.contains(".tmp"))
        .collect()
}

/// A power loss that keeps nothing unsynced.
pub fn power_loss(sim: &SimStorage) {
    sim.crash(CrashMode::LoseUnsynced);
}
