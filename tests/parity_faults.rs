//! Parity sidecars under harder faults, from the second review of the eighth session
//! (each of these failed on the code it reviewed): a bad sector that stays bad, a crash
//! between writing the quarantine copy and syncing it, a healing checkpoint that keeps
//! the damaged base as its fallback, and a sweep damaging every page in turn.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::single_range_in_vec_init,
    reason = "tests fail loudly"
)]

mod common;

use std::io;
use std::path::Path;
use std::sync::Arc;

use common::parity::{OnOpen, PAGE, checkpointed_with as checkpointed, damage, fill};
use common::{Backend, dump};
use walstore::storage::sim::{CrashMode, Fault, FaultKind};
use walstore::storage::{FileStamp, Mapped, OpenMode, SimStorage, Storage, StorageFile};
use walstore::{Error, Store};

// ---------------------------------------------------------------- 1. bad sector

/// SimStorage, except that `read_exact_at` of `file` fails (EIO) on every read touching
/// `bad` (a persistent bad sector). `map` still works, as an mmap does until the page is
/// touched.
#[derive(Debug)]
struct BadFile {
    inner: Box<dyn StorageFile>,
    bad: Option<std::ops::Range<u64>>,
}

impl StorageFile for BadFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if let Some(bad) = &self.bad
            && offset < bad.end
            && offset + buf.len() as u64 > bad.start
        {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn map(&self) -> io::Result<Mapped> {
        self.inner.map()
    }
    fn is_unlinked(&self) -> io::Result<bool> {
        self.inner.is_unlinked()
    }
    fn stamp(&self) -> io::Result<FileStamp> {
        self.inner.stamp()
    }
}

/// 8c7ff50 reads unreadable pages as zeros so that the parity rebuilds them
/// (`read_readable`), but the writer's persist step reads the damaged file again with
/// `read_whole` (recovery/mod.rs), which fails on the same bad sector: a writer can
/// never open the store, while a read-only open rebuilds it fine.
#[test]
fn a_persistent_bad_sector_is_rebuilt_and_writers_open() {
    let backend = Backend::sim(21);
    let (snap, state) = checkpointed(&backend, backend.options());
    let len = backend.read(&snap).len();
    // The footer (a Corrupt at open), and a bad sector in a data page of another group.
    damage(&backend, &snap, &[len - 30..len - 20]);
    let last_page = (len - 1) / PAGE;
    let bad_page = (5..last_page).find(|p| p % 16 != last_page % 16).unwrap();
    let (file, bad) = (
        backend.path(&snap),
        (bad_page * PAGE) as u64 + 512..(bad_page * PAGE) as u64 + 1024,
    );
    let storage: Arc<dyn Storage> = Arc::new(OnOpen {
        inner: backend.sim.clone().unwrap(),
        hook: Arc::new(move |sim: &SimStorage, path: &Path, mode| {
            let inner = sim.open_file(path, mode)?;
            let bad = (path == file && mode == OpenMode::Read).then(|| bad.clone());
            Ok(Box::new(BadFile { inner, bad }) as Box<dyn StorageFile>)
        }),
    });
    let opts = || {
        Store::options()
            .storage(storage.clone())
            .segment_bytes(64 * 1024)
    };
    let reader = opts()
        .read_only(true)
        .open(&backend.dir)
        .expect("read-only open");
    assert_eq!(dump(&reader), state);
    drop(reader);
    for attempt in 1..=2 {
        match opts().open(&backend.dir) {
            Ok(store) => {
                assert_eq!(dump(&store), state);
            }
            Err(e) => panic!("writer open {attempt} failed: {e}"),
        }
    }
}

// ---------------------------------------------------------------- 2. reused copy

/// `quarantine_copy_target` reuses a quarantine file whose *live* bytes equal the damaged
/// ones, without checking it is durable. A first open that wrote the copy but died before
/// its fdatasync (process death: page cache kept) leaves such a file; the second open
/// reuses it, replaces `<lsn>.snap` durably, and a power loss then loses the only copy of
/// the damaged bytes (the spec: "written and fdatasynced" first, "never lost").
#[test]
fn a_reused_quarantine_copy_is_made_durable_before_the_snapshot_is_replaced() {
    let backend = Backend::sim(11);
    let (snap, _) = checkpointed(&backend, backend.options());
    let len = backend.read(&snap).len();
    damage(&backend, &snap, &[len - 30..len - 20]);
    let damaged = backend.read(&snap);
    let sim = backend.sim.clone().unwrap();
    let mut lost = Vec::new();
    for n in 0..80u64 {
        let fork = sim.fork(n);
        let storage: Arc<dyn Storage> = Arc::new(fork.clone());
        let opts = || {
            Store::options()
                .storage(storage.clone())
                .segment_bytes(64 * 1024)
        };
        fork.inject(Fault {
            at_call: fork.calls() + 1 + n,
            kind: FaultKind::Eio,
            persistent: true,
            only: None,
        });
        drop(opts().open(&backend.dir));
        fork.crash(CrashMode::KeepUnsynced); // the process dies
        fork.clear_faults();
        drop(opts().open(&backend.dir).expect("second open"));
        fork.crash(CrashMode::LoseUnsynced); // then the power fails
        let on_disk = fork.read_file(backend.path(&snap)).unwrap();
        if on_disk == damaged {
            continue;
        }
        let quarantine = backend.dir.join("quarantine");
        let kept = fork
            .file_names(&quarantine)
            .iter()
            .any(|name| fork.read_file(quarantine.join(name)).as_deref() == Some(&damaged[..]));
        if !kept {
            lost.push(n);
        }
    }
    assert!(
        lost.is_empty(),
        "snapshot replaced but the damaged bytes are in no quarantine file, fault at calls {lost:?}"
    );
}

// ---------------------------------------------------------------- 3. keep_fallback

/// With keep_fallback(true), a checkpoint that heals from a damaged base keeps that base
/// as the fallback repaired in place (the damaged bytes copied into quarantine): verify
/// finds nothing, and a later fallback to it reads the whole state.
#[test]
fn a_healing_checkpoint_repairs_the_base_it_keeps_as_fallback() {
    let backend = Backend::sim(23);
    let opts = || backend.options().keep_fallback(true);
    let (snap, state) = checkpointed(&backend, opts());
    damage(&backend, &snap, &[20 * PAGE + 10..20 * PAGE + 11]);
    let store = opts().open(&backend.dir).unwrap();
    let mut txn = store.begin_write();
    txn.set_meta("later", walstore::Value::from(2u64));
    txn.commit().unwrap();
    let expected = state.replace(
        "meta after=Int(1)\n",
        "meta after=Int(1)\nmeta later=Int(2)\n",
    );
    let report = store.checkpoint().expect("checkpoint");
    assert_eq!(report.base_rebuilt, Some(backend.path(&snap)));
    let copy = report
        .base_quarantined
        .expect("the damaged bytes were kept");
    assert!(copy.starts_with(backend.dir.join("quarantine")), "{copy:?}");
    drop(store);
    let verify = walstore::verify(backend.storage.as_ref(), &backend.dir).unwrap();
    // Now lose the new snapshot beyond repair (no sidecar, damaged footer): the fallback
    // is used, and its known damage is served to readers.
    let newest = backend.names_ending(".snap").pop().unwrap();
    assert_ne!(newest, snap);
    backend
        .storage
        .remove_file(&backend.path(&newest.replace(".snap", ".par")))
        .unwrap();
    let n = backend.read(&newest).len();
    damage(&backend, &newest, &[n - 30..n - 20]);
    let store = opts().open(&backend.dir).expect("open on the fallback");
    assert_eq!(store.recovery_report().snapshot, Some(backend.path(&snap)));
    assert!(
        dump(&store) == expected,
        "the fallback holds the whole state"
    );
    assert!(
        !verify.is_corrupt(),
        "verify after a healing checkpoint reports corruption"
    );
}

// ---------------------------------------------------------------- 4. sweep

/// Damage each page of a snapshot holding keys, docs and postings in turn; the next
/// checkpoint (or the open) must heal it with the same state.
#[test]
fn every_damaged_page_heals_at_the_next_open_or_checkpoint() {
    let backend = Backend::sim(31);
    let store = backend.open();
    fill(&store);
    for i in 1..=400 {
        common::commit_step(&store, i);
    }
    store.checkpoint().unwrap();
    common::commit_step(&store, 401);
    drop(store);
    let snap = backend.names_ending(".snap").pop().unwrap();
    let pages = backend.read(&snap).len().div_ceil(PAGE);
    let sim = backend.sim.clone().unwrap();
    let mut failures = Vec::new();
    let mut rebuilt_at_checkpoint = 0;
    for page in 0..pages {
        let fork = sim.fork(page as u64);
        let clean = sim.fork(1000 + page as u64);
        let storage: Arc<dyn Storage> = Arc::new(fork.clone());
        let opts = || {
            Store::options()
                .storage(storage.clone())
                .segment_bytes(64 * 1024)
        };
        let expected = {
            let s = Store::options()
                .storage(Arc::new(clean))
                .segment_bytes(64 * 1024)
                .open(&backend.dir)
                .unwrap();
            common::commit_step(&s, 403);
            let d = dump(&s);
            drop(s);
            d
        };
        let mut bytes = fork.read_file(backend.path(&snap)).unwrap();
        let at = (page * PAGE + 1000).min(bytes.len() - 1);
        bytes[at] ^= 0x5A;
        fork.write_file(backend.path(&snap), &bytes);
        let s = match opts().open(&backend.dir) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("page {page}: open: {e}"));
                continue;
            }
        };
        common::commit_step(&s, 403);
        match s.checkpoint() {
            Ok(r) => {
                rebuilt_at_checkpoint += usize::from(r.base_rebuilt.is_some());
            }
            Err(e) => {
                failures.push(format!("page {page}: checkpoint: {e}"));
                continue;
            }
        }
        drop(s);
        let s = opts().open(&backend.dir).unwrap();
        if dump(&s) != expected {
            failures.push(format!("page {page}: state differs"));
        }
        let v = walstore::verify(&fork as &dyn Storage, &backend.dir).unwrap();
        if v.is_corrupt() {
            failures.push(format!("page {page}: verify {:?}", v.problems));
        }
        drop(s);
    }
    println!(
        "parity-sweep: {pages} pages damaged in turn, {rebuilt_at_checkpoint} rebuilt at the checkpoint, the others at the open"
    );
    // The open rebuilds only what its own checks meet (header, footer, top index); every
    // data page is met first by the checkpoint.
    assert!(
        rebuilt_at_checkpoint * 4 >= pages * 3,
        "{rebuilt_at_checkpoint} of {pages}"
    );
    assert!(failures.is_empty(), "{failures:#?}");
    let _: Option<Error> = None;
}
