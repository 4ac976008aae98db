//! Helpers of the parity sidecar suites (`tests/parity.rs`, `tests/parity_faults.rs`).

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
