//! Shared test helpers: run a scenario against the real file system and the simulated one.
#![allow(dead_code)]

pub mod parity;

use std::path::PathBuf;
use std::sync::Arc;

use walstore::storage::{FsStorage, SimStorage, Storage};
use walstore::{Fingerprint, Options, Store, Value};

/// One storage backend with a store directory on it.
pub struct Backend {
    pub name: &'static str,
    pub storage: Arc<dyn Storage>,
    pub dir: PathBuf,
    pub sim: Option<SimStorage>,
    _tmp: Option<tempfile::TempDir>,
}

impl Backend {
    pub fn fs() -> Backend {
        let tmp = tempfile::tempdir().expect("tempdir");
        Backend {
            name: "fs",
            storage: Arc::new(FsStorage),
            dir: tmp.path().join("store"),
            sim: None,
            _tmp: Some(tmp),
        }
    }

    pub fn sim(seed: u64) -> Backend {
        let sim = SimStorage::new(seed);
        Backend {
            name: "sim",
            storage: Arc::new(sim.clone()),
            dir: PathBuf::from("/data/store"),
            sim: Some(sim),
            _tmp: None,
        }
    }

    pub fn options(&self) -> Options {
        Store::options()
            .storage(self.storage.clone())
            .segment_bytes(64 * 1024)
    }

    pub fn open(&self) -> Store {
        self.options()
            .open(&self.dir)
            .unwrap_or_else(|e| panic!("[{}] open: {e}", self.name))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        match &self.sim {
            Some(sim) => sim.read_file(self.path(name)).expect("file exists"),
            None => std::fs::read(self.path(name)).expect("file exists"),
        }
    }

    pub fn write(&self, name: &str, bytes: &[u8]) {
        match &self.sim {
            Some(sim) => sim.write_file(self.path(name), bytes),
            None => std::fs::write(self.path(name), bytes).expect("write"),
        }
    }

    pub fn names(&self) -> Vec<String> {
        let mut names = self.storage.list_dir(&self.dir).expect("list");
        names.sort();
        names
    }

    pub fn names_ending(&self, suffix: &str) -> Vec<String> {
        self.names()
            .into_iter()
            .filter(|n| n.ends_with(suffix))
            .collect()
    }
}

/// Runs `scenario` on both backends.
pub fn for_each_backend(scenario: impl Fn(&Backend)) {
    scenario(&Backend::fs());
    scenario(&Backend::sim(7));
}

pub fn fingerprint(i: u64) -> Fingerprint {
    Fingerprint::new(i.to_le_bytes().repeat(4), i * 10, i as i64 - 5).expect("valid fingerprint")
}

/// Commits transaction `i` of a simple deterministic workload touching every collection.
pub fn commit_step(store: &Store, i: u64) -> u64 {
    let mut txn = store.begin_write();
    txn.set_meta(&format!("m{}", i % 17), Value::from(i))
        .set_config("step", Value::from(i))
        .put_fingerprint(
            if i.is_multiple_of(2) { "code" } else { "docs" },
            &format!("src/f{}.rs", i % 31),
            fingerprint(i),
        )
        .index_doc(
            &format!("doc{}", i % 13),
            &format!("alpha beta{} gammaDelta {}", i % 5, i),
        );
    if i.is_multiple_of(7) {
        txn.delete_meta(&format!("m{}", (i + 3) % 17))
            .remove_doc(&format!("doc{}", (i + 5) % 13));
    }
    txn.commit().expect("commit")
}

/// A canonical dump of everything a store holds, for comparisons.
pub fn dump(store: &Store) -> String {
    dump_read(&store.read())
}

/// [`dump`] of what one read transaction sees.
pub fn dump_read(read: &walstore::ReadTxn) -> String {
    let mut out = String::new();
    for (k, v) in read.metadata().expect("metadata") {
        out += &format!("meta {k}={v:?}\n");
    }
    for (k, v) in read.configs().expect("config") {
        out += &format!("config {k}={v:?}\n");
    }
    for entry in read.all_fingerprints().expect("fingerprints") {
        let (ns, path, fp) = entry.expect("fingerprint");
        out += &format!("fp {ns} {path} {fp:?}\n");
    }
    for doc in read.docs().expect("docs") {
        let doc = doc.expect("doc");
        out += &format!("doc {doc} {:?}\n", read.doc_terms(&doc).expect("doc terms"));
    }
    out += &format!("stats {:?}\n", read.fts_stats().expect("stats"));
    out
}

/// A xorshift generator: the tests' own, so that a seed's sequence never changes.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is mapped away).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
