//! The lazily started background thread against a drop racing the
//! first request (a `WriteTxn` that outlives its `Store` commits on another thread while
//! the store is dropped). Must not hang, panic, or lose the commit's visibility; a second
//! writer must then be able to open (the lock and the Inner were released).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::sync::{Arc, Barrier};

use walstore::storage::SimStorage;
use walstore::{Durability, Store, Value};

#[test]
fn first_wake_races_drop() {
    for round in 0..300u64 {
        let sim = SimStorage::new(round + 1);
        let open = || {
            Store::options()
                .storage(Arc::new(sim.clone()))
                .segment_bytes(8 * 1024)
                .checkpoint_wal_bytes(4 * 1024)
                .lock_timeout(Some(std::time::Duration::from_secs(5)))
                .open("/race")
                .expect("open")
        };
        let store = open();
        let barrier = Arc::new(Barrier::new(2));
        let mut txns: Vec<_> = (0..4).map(|_| store.begin_write()).collect();
        for (i, txn) in txns.iter_mut().enumerate() {
            txn.set_config(&format!("k{i}"), Value::from("x".repeat(2000)));
            txn.set_durability(if i % 2 == 0 {
                Durability::Immediate
            } else {
                Durability::None
            });
        }
        let b = barrier.clone();
        let committer = std::thread::spawn(move || {
            b.wait();
            txns.into_iter()
                .map(|t| t.commit().is_ok())
                .filter(|ok| *ok)
                .count()
        });
        barrier.wait();
        if round % 2 == 0 {
            drop(store);
        } else {
            store.close().expect("close");
        }
        let committed = committer.join().expect("committer");
        let store = open();
        assert_eq!(store.lsn(), committed as u64, "round {round}");
        drop(store);
    }
}
