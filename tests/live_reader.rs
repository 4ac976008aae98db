//! Live read-only handles: `refresh` tails the WAL, follows checkpoints, honours the
//! writer's published durable lsn, and notices a deleted or replaced store.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::{Backend, commit_step, dump, for_each_backend};
use walstore::{Error, HEAD_FILE};

#[test]
fn refresh_tails_commits_and_follows_checkpoints() {
    for_each_backend(|backend| {
        let writer = backend
            .options()
            .checkpoint_wal_bytes(0)
            .segment_bytes(8 * 1024)
            .open(&backend.dir)
            .expect("writer");
        commit_step(&writer, 1);
        let reader = backend
            .options()
            .read_only(true)
            .open(&backend.dir)
            .expect("reader");
        assert_eq!(reader.lsn(), 1);
        let mut last = 1;
        for i in 2..=120 {
            commit_step(&writer, i);
            if i % 10 == 0 {
                let lsn = reader.refresh().expect("refresh");
                assert!(lsn >= last, "lsn never goes backwards");
                assert_eq!(
                    lsn, i,
                    "[{}] a durable commit is visible after refresh",
                    backend.name
                );
                assert_eq!(dump(&reader), dump(&writer));
                last = lsn;
            }
            if i % 35 == 0 {
                writer.checkpoint().expect("checkpoint");
            }
        }
        assert!(
            backend.names_ending(".wal").len() < 8,
            "checkpoints dropped segments: {:?}",
            backend.names()
        );
        assert_eq!(reader.refresh().expect("refresh"), 120);
        assert_eq!(dump(&reader), dump(&writer));
        let view = reader.read();
        commit_step(&writer, 121);
        reader.refresh().expect("refresh");
        assert_eq!(view.lsn(), 120, "an old view stays as it was");
        assert_eq!(reader.lsn(), 121);
    });
}

#[test]
fn a_reader_stops_at_the_lsn_the_writer_published() {
    let backend = Backend::fs();
    let writer = backend.open();
    for i in 1..=5 {
        commit_step(&writer, i);
    }
    // Pretend the writer has published only lsn 3 as durable.
    let head_path = backend.dir.join(HEAD_FILE);
    let mut head = std::fs::read(&head_path).expect("HEAD");
    head[24..32].copy_from_slice(&3u64.to_le_bytes());
    let crc = walstore::codec::checksum(&[&head[..32]]);
    head[32..36].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&head_path, &head).expect("write HEAD");
    let reader = backend
        .options()
        .read_only(true)
        .open(&backend.dir)
        .expect("reader");
    assert_eq!(
        reader.lsn(),
        3,
        "records beyond the published lsn are not read"
    );
    commit_step(&writer, 6);
    assert_eq!(
        reader.refresh().expect("refresh"),
        6,
        "the next publication moves it on"
    );
    drop(writer);
    assert_eq!(reader.refresh().expect("refresh"), 6);
}

#[test]
fn a_reader_without_a_writer_reads_every_valid_record() {
    let backend = Backend::fs();
    let writer = backend.open();
    for i in 1..=4 {
        commit_step(&writer, i);
    }
    drop(writer);
    std::fs::remove_file(backend.dir.join(HEAD_FILE)).expect("remove HEAD");
    let reader = backend
        .options()
        .read_only(true)
        .open(&backend.dir)
        .expect("reader");
    assert_eq!(reader.lsn(), 4);
}

#[test]
fn a_deleted_or_replaced_store_is_reported() {
    for_each_backend(|backend| {
        let writer = backend.open();
        commit_step(&writer, 1);
        let reader = backend
            .options()
            .read_only(true)
            .open(&backend.dir)
            .expect("reader");
        drop(writer);
        match &backend.sim {
            Some(sim) => sim.remove_dir_all(&backend.dir),
            None => std::fs::remove_dir_all(&backend.dir).expect("remove"),
        }
        assert!(
            matches!(reader.refresh(), Err(Error::StoreGone { .. })),
            "[{}] deleted",
            backend.name
        );
        let replacement = backend.open();
        for i in 1..=3 {
            commit_step(&replacement, i + 50);
        }
        assert!(
            matches!(reader.refresh(), Err(Error::StoreGone { .. })),
            "[{}] replaced",
            backend.name
        );
        assert_eq!(
            reader.lsn(),
            1,
            "the old view is not mixed with the new store"
        );
    });
}

#[test]
fn refresh_reads_records_larger_than_its_read_chunk() {
    for_each_backend(|backend| {
        let writer = backend.open();
        commit_step(&writer, 1);
        let reader = backend
            .options()
            .read_only(true)
            .open(&backend.dir)
            .expect("reader");
        let big: String = (0..40_000).map(|i| format!("w{i} ")).collect();
        for i in 0..3u64 {
            let mut txn = writer.begin_write();
            txn.index_doc(&format!("big{i}"), &big);
            txn.commit().expect("commit");
        }
        assert_eq!(reader.refresh().expect("refresh"), 4, "[{}]", backend.name);
        assert_eq!(
            reader.read().postings("w39999").expect("postings").count(),
            3
        );
    });
}

/// Regression: a reader that opened a store still being created (only `LOCK` so far)
/// adopts the store's id when its first segment appears, instead of calling it replaced.
#[test]
fn a_reader_of_a_store_being_created_follows_it() {
    let backend = Backend::fs();
    std::fs::create_dir_all(&backend.dir).expect("mkdir");
    std::fs::write(backend.dir.join(walstore::LOCK_FILE), b"").expect("LOCK");
    let reader = backend
        .options()
        .read_only(true)
        .open(&backend.dir)
        .expect("reader of an empty store");
    assert_eq!(reader.lsn(), 0);
    let writer = backend.open();
    commit_step(&writer, 1);
    assert_eq!(reader.refresh().expect("refresh"), 1);
}
