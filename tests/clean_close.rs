//! A clean close marks `HEAD` closed (format-spec/live-readers.md, "A clean close"), and
//! the next writer open skips its `fdatasync` and directory `fsync` only then: not after
//! a process that died, not when the lsn does not match, and a writer that cannot replace
//! the closed `HEAD` opens poisoned.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use walstore::storage::SimStorage;
use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::{Durability, Error, HEAD_FILE, Options, Store, Value};

const DIR: &str = "/clean/store";

fn options(sim: &SimStorage) -> Options {
    Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(64 * 1024)
        .background_checkpoints(false)
}

fn commit(store: &Store, i: u64, durability: Durability) {
    let mut txn = store.begin_write();
    txn.set_config(&format!("k{i}"), Value::from(i));
    txn.set_durability(durability);
    txn.commit().expect("commit");
}

fn head_magic(sim: &SimStorage) -> Vec<u8> {
    sim.read_file(Path::new(DIR).join(HEAD_FILE)).expect("HEAD")[..8].to_vec()
}

/// Sync calls (file and directory) an open makes.
fn syncs_of_open(sim: &SimStorage) -> (Store, u64) {
    let before = sim.sync_calls();
    let store = options(sim).open(DIR).expect("open");
    (store, sim.sync_calls() - before)
}

#[test]
fn after_a_clean_close_the_next_open_syncs_nothing() {
    let sim = SimStorage::new(1);
    let store = options(&sim).open(DIR).expect("open");
    for i in 1..=5 {
        commit(&store, i, Durability::Immediate);
    }
    assert_eq!(head_magic(&sim), b"WALSTHED", "live while open");
    store.close().expect("close");
    assert_eq!(head_magic(&sim), b"WALSTCLS", "closed after a clean close");
    let (store, syncs) = syncs_of_open(&sim);
    assert_eq!(syncs, 0, "no fdatasync, no directory fsync");
    assert_eq!(
        head_magic(&sim),
        b"WALSTHED",
        "live again before anything is written"
    );
    assert_eq!(store.lsn(), 5);
    commit(&store, 6, Durability::Immediate);
    drop(store);
    // Dropping closes cleanly too.
    assert_eq!(head_magic(&sim), b"WALSTCLS");
    let (store, syncs) = syncs_of_open(&sim);
    assert_eq!((store.lsn(), syncs), (6, 0));
}

/// A process that dies leaves `HEAD` live: the next open syncs what it may have left in
/// the page cache, so a power loss after that open loses none of it.
#[test]
fn after_a_process_died_the_next_open_syncs() {
    let sim = SimStorage::new(2);
    let store = options(&sim).open(DIR).expect("open");
    commit(&store, 1, Durability::Immediate);
    commit(&store, 2, Durability::None);
    commit(&store, 3, Durability::None);
    sim.crash(CrashMode::KeepUnsynced); // the process dies; the page cache stays
    drop(store);
    assert_eq!(head_magic(&sim), b"WALSTHED");
    let (store, syncs) = syncs_of_open(&sim);
    assert!(syncs >= 2, "fdatasync and directory fsync: {syncs}");
    assert_eq!(store.lsn(), 3);
    drop(store);
    sim.crash(CrashMode::LoseUnsynced); // power loss
    let store = options(&sim).open(DIR).expect("reopen");
    assert_eq!(
        store.lsn(),
        3,
        "the open made the dead process's records durable"
    );
}

/// A closed `HEAD` at another lsn than recovery finds (records written after it by a
/// writer that could not rewrite `HEAD`) does not skip the syncs.
#[test]
fn a_closed_head_at_another_lsn_does_not_skip_the_syncs() {
    let sim = SimStorage::new(3);
    let store = options(&sim).open(DIR).expect("open");
    commit(&store, 1, Durability::Immediate);
    store.close().expect("close");
    let closed = sim.read_file(Path::new(DIR).join(HEAD_FILE)).expect("HEAD");
    let store = options(&sim).open(DIR).expect("open");
    commit(&store, 2, Durability::None);
    sim.crash(CrashMode::KeepUnsynced);
    drop(store);
    // As if this writer's HEAD writes had all failed.
    sim.write_file(Path::new(DIR).join(HEAD_FILE), &closed);
    let (store, syncs) = syncs_of_open(&sim);
    assert!(syncs >= 2, "lsn 2 is past the closed HEAD's lsn 1: {syncs}");
    assert_eq!(store.lsn(), 2);
}

/// A writer that finds `HEAD` closed and cannot write it live again opens poisoned: it
/// reads, but writes nothing that a later open would skip syncing.
#[test]
fn a_writer_that_cannot_replace_a_closed_head_opens_poisoned() {
    let sim = SimStorage::new(4);
    let store = options(&sim).open(DIR).expect("open");
    commit(&store, 1, Durability::Immediate);
    store.close().expect("close");
    // Fail every write from now on: the open's only write is HEAD (the lock's holder
    // text is written too, and its failure ignored).
    sim.inject(Fault {
        at_call: 1,
        kind: FaultKind::Eio,
        persistent: true,
        only: Some(CallKind::Write),
    });
    let store = options(&sim).open(DIR).expect("open");
    assert_eq!(store.lsn(), 1);
    assert_eq!(
        store.read().config("k1").expect("read"),
        Some(Value::from(1u64))
    );
    let mut txn = store.begin_write();
    txn.set_config("k2", Value::from(2u64));
    assert!(matches!(txn.commit(), Err(Error::Poisoned)));
    drop(store);
    sim.clear_faults();
    assert_eq!(
        head_magic(&sim),
        b"WALSTCLS",
        "nothing was written after it"
    );
    let store = options(&sim).open(DIR).expect("reopen");
    assert_eq!(store.lsn(), 1);
}

/// The bytes of `HEAD`, live and closed, for the example in live-readers.md.
#[test]
fn head_bytes_match_the_spec_examples() {
    let id: [u8; 16] = std::array::from_fn(|i| i as u8);
    let encode = |magic: &[u8; 8], lsn: u64| {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&id);
        bytes.extend_from_slice(&lsn.to_le_bytes());
        let crc = walstore::codec::checksum(&[&bytes]);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    };
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        hex(&encode(b"WALSTHED", 1)),
        "57414c5354484544000102030405060708090a0b0c0d0e0f01000000000000006728a0d3"
    );
    assert_eq!(hex(&encode(b"WALSTCLS", 1)), GOLDEN_CLOSED_HEAD_HEX);
    // And what a store writes is this encoding, with its own id and lsn.
    let sim = SimStorage::new(5);
    let store = options(&sim).open(DIR).expect("open");
    commit(&store, 1, Durability::Immediate);
    commit(&store, 2, Durability::Immediate);
    store.close().expect("close");
    let written = sim.read_file(Path::new(DIR).join(HEAD_FILE)).expect("HEAD");
    let mut expected = b"WALSTCLS".to_vec();
    expected.extend_from_slice(&written[8..24]);
    expected.extend_from_slice(&2u64.to_le_bytes());
    let crc = walstore::codec::checksum(&[&expected]);
    expected.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(written, expected);
}

const GOLDEN_CLOSED_HEAD_HEX: &str =
    "57414c5354434c53000102030405060708090a0b0c0d0e0f0100000000000000c383c586";
