//! Golden vectors: a small store of the current format version (3), committed to the
//! repo, that every run opens and checks, plus byte-exact encodings. The version 2 store
//! (the same transactions, the same bytes but for the headers' version field) is kept
//! too: this build reads it, and never reuses its snapshot's file. The version 1 store
//! must be refused with `UnsupportedVersion`, never misread. A format change cannot pass
//! unnoticed: it must bump `FORMAT_VERSION`, update `format-spec/`, and add new vectors.
//!
//! Regenerate (only together with a version bump):
//! `WALSTORE_REGEN_GOLDEN=1 cargo test --test golden -- --ignored regenerate`
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::path::{Path, PathBuf};

use walstore::header::{FileHeader, SEGMENT_MAGIC};
use walstore::model::op::Op;
use walstore::{Fingerprint, Store, Value};

fn golden_dir() -> PathBuf {
    golden_dir_of(3)
}

fn golden_dir_of(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/v{version}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read golden dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// The transactions of the golden store; the second half comes after its checkpoint.
fn golden_txns(store: &Store, second_half: bool) {
    if !second_half {
        let mut txn = store.begin_write();
        txn.set_meta("indexed_at", Value::from("2026-11-27T13:00:00Z"))
            .set_meta("files", Value::Int(3))
            .set_config(
                "exclude",
                Value::List(vec![Value::from("target"), Value::from(".git")]),
            )
            .put_fingerprint(
                "code",
                "src/lib.rs",
                Fingerprint::new([0x11; 32], 100, -1).expect("fp"),
            )
            .put_fingerprint(
                "docs",
                "README.md",
                Fingerprint::new([0x22; 8], u64::MAX, i64::MIN).expect("fp"),
            )
            .index_doc("src/lib.rs", "pub fn atomicWriteJson() { MAX_RETRY_COUNT }");
        txn.commit().expect("commit 1");
        let mut txn = store.begin_write();
        txn.set_meta("big", Value::UInt(u64::MAX))
            .set_meta("pi", Value::Float(3.25))
            .index_doc("README.md", "Hello wörld");
        txn.commit().expect("commit 2");
    } else {
        let mut txn = store.begin_write();
        txn.delete_meta("files")
            .delete_fingerprint("docs", "README.md")
            .remove_doc("README.md");
        txn.set_meta("bytes", Value::Bytes(vec![0, 1, 2, 255]));
        txn.commit().expect("commit 3");
    }
}

#[test]
#[ignore = "regenerates the golden store; run only with a format version bump"]
fn regenerate() {
    if std::env::var_os("WALSTORE_REGEN_GOLDEN").is_none() {
        return;
    }
    let dir = golden_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::options()
        .segment_bytes(4096)
        .open(&dir)
        .expect("create");
    golden_txns(&store, false);
    store.checkpoint().expect("checkpoint");
    golden_txns(&store, true);
    drop(store);
    std::fs::remove_file(dir.join("LOCK")).expect("remove LOCK");
}

#[test]
fn golden_store_opens_with_the_expected_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    copy_dir(&golden_dir(), &dir);
    check_golden_state(&dir);
}

#[test]
fn the_version_2_golden_store_opens_with_the_same_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    copy_dir(&golden_dir_of(2), &dir);
    check_golden_state(&dir);
}

/// A version 2 snapshot may be mapped by a build that takes no lock, so its file is
/// deleted when superseded, never kept for reuse; a version 3 snapshot's is kept.
#[test]
fn a_version_2_snapshot_is_never_reused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    copy_dir(&golden_dir_of(2), &dir);
    let spare = dir.join("00000000000000000000.snap.tmp");
    let version_of = |name: &str| {
        let bytes = std::fs::read(dir.join(name)).expect("read");
        u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"))
    };
    assert_eq!(version_of("00000000000000000002.snap"), 2);
    let store = Store::options()
        .checkpoint_wal_bytes(0)
        .open(&dir)
        .expect("open");
    let mut txn = store.begin_write();
    txn.set_meta("after", Value::Int(1));
    txn.commit().expect("commit");
    assert!(store.checkpoint().expect("checkpoint").written);
    assert!(
        !spare.exists(),
        "the version 2 snapshot was deleted, not kept"
    );
    assert!(!dir.join("00000000000000000002.snap").exists());
    assert_eq!(version_of("00000000000000000004.snap"), 3);
    let mut txn = store.begin_write();
    txn.set_meta("after", Value::Int(2));
    txn.commit().expect("commit");
    assert!(store.checkpoint().expect("checkpoint").written);
    assert!(spare.exists(), "the version 3 snapshot was kept for reuse");
    assert_eq!(version_of("00000000000000000000.snap.tmp"), 3);
}

fn check_golden_state(dir: &Path) {
    let report = walstore::verify(&walstore::storage::FsStorage, dir).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let store = Store::open(dir).expect("open golden store");
    let read = store.read();
    assert_eq!(read.lsn(), 3);
    assert_eq!(store.recovery_report().snapshot_lsn, 2);
    assert_eq!(store.recovery_report().records_replayed, 1);
    assert_eq!(
        read.meta("indexed_at").expect("read"),
        Some(Value::from("2026-11-27T13:00:00Z"))
    );
    assert_eq!(read.meta("files").expect("read"), None);
    assert_eq!(read.meta("big").expect("read"), Some(Value::UInt(u64::MAX)));
    assert_eq!(read.meta("pi").expect("read"), Some(Value::Float(3.25)));
    assert_eq!(
        read.meta("bytes").expect("read"),
        Some(Value::Bytes(vec![0, 1, 2, 255]))
    );
    assert_eq!(
        read.config("exclude").expect("read"),
        Some(Value::List(vec![
            Value::from("target"),
            Value::from(".git")
        ]))
    );
    assert_eq!(
        read.fingerprint("code", "src/lib.rs").expect("read"),
        Some(Fingerprint::new([0x11; 32], 100, -1).expect("fp"))
    );
    assert_eq!(read.fingerprint("docs", "README.md").expect("read"), None);
    let docs: Vec<String> = read
        .docs()
        .expect("docs")
        .map(|d| d.expect("doc"))
        .collect();
    assert_eq!(docs, ["src/lib.rs"]);
    let json: Vec<_> = read
        .postings("json")
        .expect("postings")
        .map(|p| p.expect("posting"))
        .collect();
    assert_eq!(json, [("src/lib.rs".to_owned(), 1)]);
    assert_eq!(read.postings("wörld").expect("postings").count(), 0);
    let stats = read.fts_stats().expect("stats");
    assert_eq!((stats.docs, stats.tokens), (1, 10));
}

#[test]
fn a_version_1_store_is_refused_by_name_and_left_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1"),
        &dir,
    );
    let before: Vec<_> = walk(&dir);
    for read_only in [false, true] {
        let opened = if read_only {
            Store::open_read_only(&dir)
        } else {
            Store::open(&dir)
        };
        match opened {
            Err(walstore::Error::UnsupportedVersion {
                found, supported, ..
            }) => assert_eq!((found, supported), (1, 3)),
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }
    let mut after = walk(&dir);
    after.retain(|(name, _)| name != "LOCK");
    let mut before = before;
    before.retain(|(name, _)| name != "LOCK");
    assert_eq!(before, after, "refusing changes no store file");
}

fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn posting_list_encoding_is_byte_exact() {
    use walstore::fts::posting::{Posting, encode};
    let p = |doc, tf, len| Posting { doc, tf, len };
    // One block: count 3; 2 impacts, the Pareto frontier of (tf, len): (2, 300) and
    // (1, 1); then (gap, tf, len) per posting.
    let short = encode(&[p(0, 1, 10), p(5, 2, 300), p(6, 1, 1)]);
    assert_eq!(
        hex(&short),
        "03".to_owned() + "0202ac020101" + "00010a0502ac02010101"
    );
    // 130 postings: two blocks, so a 2 x 12-byte skip table (last_doc, end) follows the
    // count; each block starts with its one impact (3, 7).
    let long: Vec<Posting> = (0..130).map(|i| p(i * 2, 1 + (i % 3) as u32, 7)).collect();
    let bytes = encode(&long);
    assert_eq!(
        hex(&bytes[..3]),
        "8201fe",
        "varint 130, then block 0's last_doc (254) LE"
    );
    assert_eq!(
        hex(&bytes[2..29]),
        concat!(
            "fe00000000000000",
            "83010000",
            "0201000000000000",
            "8c010000",
            "010307"
        )
    );
    assert_eq!(
        walstore::fts::posting::decode_all(&bytes).expect("decode"),
        long
    );
    let entry = walstore::fts::DocEntry { id: 300, len: 5 };
    assert_eq!(hex(&entry.encode()), "ac0205");
}

#[test]
fn record_encoding_is_byte_exact() {
    let ops = vec![Op::SetMeta {
        key: "k".into(),
        value: Value::Int(-2),
    }];
    let payload = postcard::to_allocvec(&ops).expect("encode");
    // Vec len 1, variant 0 (SetMeta), "k", Value variant 2 (Int), zigzag(-2) = 3.
    assert_eq!(payload, [0x01, 0x00, 0x01, b'k', 0x02, 0x03]);
    let mut framed = Vec::new();
    walstore::wal::record::encode_into(&mut framed, 7, 6, &payload);
    assert_eq!(hex(&framed), GOLDEN_RECORD_HEX);
}

#[test]
fn header_encoding_is_byte_exact() {
    let header = FileHeader {
        magic: SEGMENT_MAGIC,
        store_id: [0xAB; 16],
        lsn: 1,
    };
    assert_eq!(hex(&header.encode()), GOLDEN_SEGMENT_HEADER_HEX);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const GOLDEN_RECORD_HEX: &str =
    "fcdaeca1060000000700000000000000060000000000000001000000fd2648fa0100016b02030000";
const GOLDEN_SEGMENT_HEADER_HEX: &str = "57414c53545345470300000040000000abababababababababababababababab01000000000000000000000000000000000000000000000000000000f309f74d";
