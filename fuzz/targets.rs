//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/`) and
//! by `tests/fuzz_corpus.rs`, which replays the corpus in `cargo test`. Each must never
//! panic, whatever the bytes; the invariants they assert are properties of the decoders,
//! not of the input.
//!
//! The first byte of an input selects a mode. Random bytes rarely pass a checksum, so
//! some modes build the checksums themselves (frame a payload, fix a snapshot's checksums)
//! to reach the code behind them: payload decoding, operation replay, index traversal.
#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "fuzz harness: fail loudly"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use walstore::codec::checksum;
use walstore::header::{FileHeader, SEGMENT_MAGIC};
use walstore::model::op::Op;
use walstore::snapshot::block::read_refs;
use walstore::snapshot::reader::Snapshot;
use walstore::state::Version;
use walstore::storage::sim::CrashMode;
use walstore::storage::{Mapped, SimStorage};
use walstore::wal::record::{self, decode, encode_into};
use walstore::wal::scan::{SegmentEnd, scan};
use walstore::{Options, RecoveryMode, Store};

/// The store id of segments the harness frames itself.
const FUZZ_STORE_ID: [u8; 16] = [7; 16];

fn split_mode(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((mode, rest)) => (*mode, rest),
        None => (0, data),
    }
}

/// Frames `payload` as the record with `lsn` (durable up to `lsn - 1`).
fn frame(out: &mut Vec<u8>, lsn: u64, payload: &[u8]) {
    encode_into(out, lsn, lsn - 1, payload);
}

/// A segment header followed by `body`.
fn segment(first_lsn: u64, body: &[u8]) -> Vec<u8> {
    let mut bytes = FileHeader {
        magic: SEGMENT_MAGIC,
        store_id: FUZZ_STORE_ID,
        lsn: first_lsn,
    }
    .encode()
    .to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// Splits `data` into chunks, each prefixed by a one-byte length.
fn chunks(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = (len as usize).min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

/// Decodes a payload into operations and applies them to an empty state.
fn replay_payload(payload: &[u8]) {
    if let Ok(ops) = walstore::model::op::decode::<Vec<Op>>(payload, "fuzz payload") {
        let mut state = Version::default();
        for op in &ops {
            let _ = op.check();
            if op.apply(&mut state).is_err() {
                break;
            }
        }
        let _ = state.get(&[1]);
    }
}

/// Checks what a scan reports against the bytes it scanned.
fn check_scan(bytes: &[u8], path: &Path) {
    let Ok(scanned) = scan(bytes, path) else {
        return;
    };
    let mut previous_end = walstore::header::HEADER_BYTES as u64;
    for (expected, r) in (scanned.header.lsn..).zip(&scanned.records) {
        assert_eq!(r.lsn, expected, "records are dense");
        assert_eq!(r.offset, previous_end, "records are contiguous");
        assert_eq!(r.offset % record::ALIGN_BYTES, 0, "records are aligned");
        assert!(r.payload.end <= bytes.len(), "payload inside the bytes");
        let (header, payload) =
            decode(&bytes[r.offset as usize..]).expect("a scanned record decodes");
        assert_eq!(header.lsn, r.lsn);
        assert_eq!(payload, &bytes[r.payload.clone()]);
        previous_end = r.offset + record::framed_len(payload.len());
    }
    assert!(scanned.valid_end <= (bytes.len() as u64).max(previous_end));
    match &scanned.end {
        SegmentEnd::Clean => {}
        SegmentEnd::Torn { offset, .. } | SegmentEnd::Corrupt { offset, .. } => {
            assert_eq!(
                *offset, scanned.valid_end,
                "damage starts where the valid log ends"
            )
        }
    }
}

/// Record decoder and segment scan.
/// - mode 0: the bytes as a record, and as a whole segment;
/// - mode 1: the bytes after a valid segment header;
/// - mode 2: the bytes, cut into chunks, framed as records after a valid header (so they
///   pass every checksum), scanned, and their payloads decoded and replayed.
pub fn record_decoder(data: &[u8]) {
    let (mode, data) = split_mode(data);
    let path = Path::new("/fuzz/00000000000000000001.wal");
    match mode % 3 {
        0 => {
            if let Ok((header, payload)) = decode(data) {
                assert!(header.durable_lsn < header.lsn);
                assert_eq!(payload.len(), header.payload_len as usize);
                // Only a frame its writer would produce decodes.
                let mut again = Vec::new();
                encode_into(&mut again, header.lsn, header.durable_lsn, payload);
                let framed = record::HEADER_BYTES + payload.len();
                assert_eq!(&again[..framed], &data[..framed]);
                replay_payload(payload);
            }
            check_scan(data, path);
        }
        1 => check_scan(&segment(1, data), path),
        _ => {
            let mut body = Vec::new();
            let parts = chunks(data);
            for (i, payload) in parts.iter().enumerate() {
                frame(&mut body, i as u64 + 1, payload);
            }
            let bytes = segment(1, &body);
            check_scan(&bytes, path);
            let scanned = scan(&bytes, path).expect("a framed segment scans");
            assert_eq!(scanned.records.len(), parts.len());
            assert_eq!(scanned.end, SegmentEnd::Clean);
            for payload in parts {
                replay_payload(payload);
            }
        }
    }
}

/// Recomputes every checksum of a snapshot that its structure lets the harness find:
/// header, footer, top index, and the index and data blocks they point to.
fn fix_snapshot_checksums(bytes: &mut [u8]) {
    let len = bytes.len();
    if len < 128 {
        return;
    }
    let crc = checksum(&[&bytes[..60]]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    let footer = len - 64;
    let top_offset = u64::from_le_bytes(bytes[footer + 8..footer + 16].try_into().unwrap());
    let top_len = u32::from_le_bytes(bytes[footer + 16..footer + 20].try_into().unwrap());
    let top = usize::try_from(top_offset)
        .ok()
        .and_then(|start| Some(start..start.checked_add(top_len as usize)?))
        .filter(|range| range.end <= footer);
    if let Some(top) = top {
        let crc = checksum(&[&bytes[top.clone()]]);
        bytes[footer + 40..footer + 44].copy_from_slice(&crc.to_le_bytes());
        let index_refs = bytes
            .get(top.start + walstore::snapshot::SECTION_COUNT * 8..top.end)
            .and_then(|refs| read_refs(refs, true))
            .unwrap_or_default();
        for index in index_refs {
            if let Some(body) = fix_block(bytes, index.offset, index.body_len) {
                for data in read_refs(&body, false).unwrap_or_default() {
                    fix_block(bytes, data.offset, data.body_len);
                }
            }
        }
    }
    let crc = checksum(&[&bytes[footer..footer + 60]]);
    bytes[footer + 60..].copy_from_slice(&crc.to_le_bytes());
}

/// Sets the checksum after a block body; returns the body.
fn fix_block(bytes: &mut [u8], offset: u64, body_len: u32) -> Option<Vec<u8>> {
    let start = usize::try_from(offset).ok().filter(|s| *s >= 64)?;
    let end = start.checked_add(body_len as usize)?;
    if end.checked_add(4)? > bytes.len() {
        return None;
    }
    let body = bytes[start..end].to_vec();
    bytes[end..end + 4].copy_from_slice(&checksum(&[&body]).to_le_bytes());
    Some(body)
}

/// Snapshot decoder: open (header, footer, top index), `verify_all`, a full scan, gets and
/// seeks. Mode 0: the bytes as they are; mode 1: with their checksums recomputed.
pub fn snapshot_decoder(data: &[u8]) {
    let (mode, data) = split_mode(data);
    let mut bytes = data.to_vec();
    if mode % 2 == 1 {
        fix_snapshot_checksums(&mut bytes);
    }
    let path = Path::new("/fuzz/00000000000000000001.snap");
    let Ok(snapshot) = Snapshot::open(path, Mapped::from_bytes(bytes.clone())) else {
        return;
    };
    let verified = snapshot.verify_all();
    let mut keys = Vec::new();
    if let Ok(mut cursor) = snapshot.seek(&[]) {
        while let Ok(Some((key, _))) = cursor.next_entry() {
            keys.push(key.to_vec());
            if keys.len() > 100_000 {
                break;
            }
        }
    }
    if let Ok(count) = verified {
        assert_eq!(count, snapshot.entry_count());
        assert_eq!(keys.len() as u64, count, "a verified snapshot scans whole");
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "ascending keys");
    }
    for key in keys.iter().take(64) {
        let _ = snapshot.get(key);
        let _ = snapshot
            .seek(key)
            .map(|mut c| c.next_entry().map(|e| e.map(|(k, _)| k.to_vec())));
    }
    for probe in [&b""[..], &[0u8], &[0xff; 8], &bytes[..bytes.len().min(12)]] {
        let _ = snapshot.get(probe);
        let _ = snapshot.seek(probe);
    }
    for tag in walstore::model::keys::Tag::ALL {
        let _ = snapshot.section_count(tag);
    }
}

/// Reads everything a store holds, ignoring errors; returns a summary to compare.
fn read_all(store: &Store) -> (u64, String) {
    let read = store.read();
    let mut out = String::new();
    if let Ok(meta) = read.metadata() {
        out += &format!("{meta:?}");
    }
    if let Ok(config) = read.configs() {
        out += &format!("{config:?}");
    }
    if let Ok(fingerprints) = read.all_fingerprints() {
        for fp in fingerprints.take(10_000) {
            out += &format!("{fp:?}");
        }
    }
    if let Ok(docs) = read.docs() {
        for doc in docs.take(10_000).flatten() {
            out += &format!("{doc} {:?}", read.doc_terms(&doc));
        }
    }
    if let Ok(postings) = read.postings("alpha") {
        out += &format!("{:?}", postings.take(10_000).collect::<Vec<_>>());
    }
    out += &format!("{:?}", read.fts_stats());
    (read.lsn(), out)
}

fn options(sim: &SimStorage) -> Options {
    Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(4096)
        .checkpoint_wal_bytes(0)
        .background_checkpoints(false)
}

/// Builds a directory image from the input: a sequence of files, each
/// `[kind][len u16 LE][content]`. `kind % 6`: 0 a segment as given, 1 a segment framed by
/// the harness (content: chunks, each a payload, see [`chunks`]), 2 a snapshot as given,
/// 3 a snapshot with its checksums fixed, 4 a temporary (`.wal.tmp`/`.snap.tmp`), 5 a
/// `LOCK` or a foreign file. The lsn in the name is `1 + kind / 8`.
pub fn directory_image(data: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(DIR);
    let mut files = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 && files.len() < 8 {
        let kind = rest[0];
        let len = u16::from_le_bytes([rest[1], rest[2]]) as usize;
        let content = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[(3 + len).min(rest.len())..];
        let lsn = 1 + u64::from(kind / 8);
        let (name, bytes) = match kind % 6 {
            0 => (format!("{lsn:020}.wal"), content.to_vec()),
            1 => {
                let mut body = Vec::new();
                for (i, payload) in chunks(content).iter().enumerate() {
                    frame(&mut body, lsn + i as u64, payload);
                }
                (format!("{lsn:020}.wal"), segment(lsn, &body))
            }
            2 => (format!("{lsn:020}.snap"), content.to_vec()),
            3 => {
                let mut bytes = content.to_vec();
                fix_snapshot_checksums(&mut bytes);
                (format!("{lsn:020}.snap"), bytes)
            }
            4 if kind & 1 == 0 => (format!("{lsn:020}.wal.tmp"), content.to_vec()),
            4 => (format!("{lsn:020}.snap.tmp"), content.to_vec()),
            _ if kind & 1 == 0 => ("LOCK".to_owned(), content.to_vec()),
            _ => ("notes.txt".to_owned(), content.to_vec()),
        };
        files.push((dir.join(name), bytes));
    }
    files
}

/// The directory the recovery target builds.
pub const DIR: &str = "/fuzz/store";

/// Recovery over an arbitrary directory image: `verify`, a read-only open, and writer
/// opens in strict and salvage mode. A writer that recovers must accept a commit that
/// then survives a power loss, and recover the same state again.
pub fn recovery(data: &[u8]) {
    let sim = SimStorage::new(0);
    let dir = Path::new(DIR);
    for (path, bytes) in directory_image(data) {
        sim.write_file(path, &bytes);
    }
    let _ = walstore::verify(&sim, dir);
    if let Ok(store) = options(&sim).read_only(true).open(dir) {
        read_all(&store);
    }
    for mode in [RecoveryMode::Strict, RecoveryMode::Salvage] {
        let fork = sim.fork(1);
        let Ok(store) = options(&fork).recovery(mode).open(dir) else {
            continue;
        };
        let recovered = read_all(&store);
        let mut txn = store.begin_write();
        txn.set_meta("fuzz", 1i64);
        let committed = txn.commit();
        let after = read_all(&store);
        drop(store);
        fork.crash(CrashMode::LoseUnsynced);
        let again = options(&fork).recovery(mode).open(dir);
        if let Ok(lsn) = committed {
            assert_eq!(lsn, recovered.0 + 1);
            let again = again.expect("a store that accepted a commit reopens");
            assert_eq!(read_all(&again), after, "the acknowledged commit survives");
        }
    }
}

/// The parity sidecar's parser and rebuild (`snapshot::parity`). Input: a mode byte, a
/// `u16` LE length, that many bytes of "snapshot", then the rest.
/// - mode 0: the rest is a sidecar; parse it and, if it parses, rebuild the snapshot;
/// - mode 1: build the snapshot's sidecar, damage the snapshot with the rest (pairs of a
///   `u16` LE offset and an XOR byte), rebuild: a rebuild that succeeds returns bytes
///   whose every page matches the sidecar;
/// - mode 2: build the sidecar, damage the sidecar with the rest, parse and rebuild.
pub fn parity_decoder(data: &[u8]) {
    use walstore::header::FileHeader;
    use walstore::snapshot::parity::{PARITY_MAGIC, Parity, ParityBuilder};
    let (mode, data) = split_mode(data);
    let (len, data) = match data.split_first_chunk::<2>() {
        Some((len, rest)) => (u16::from_le_bytes(*len) as usize, rest),
        None => (0, data),
    };
    let (snapshot, rest) = data.split_at(len.min(data.len()));
    let path = Path::new("fuzz.par");
    let sidecar_of = |snapshot: &[u8]| {
        let mut out = FileHeader {
            magic: PARITY_MAGIC,
            store_id: FUZZ_STORE_ID,
            lsn: 9,
        }
        .encode()
        .to_vec();
        let mut builder = ParityBuilder::new();
        builder.update(snapshot);
        out.extend(builder.take_ready());
        out.extend(builder.finish());
        out
    };
    let damaged = |bytes: &[u8], damage: &[u8]| {
        let mut out = bytes.to_vec();
        for pair in damage.chunks_exact(3) {
            let at = u16::from_le_bytes([pair[0], pair[1]]) as usize;
            if let Some(byte) = out.get_mut(at) {
                *byte ^= pair[2];
            }
        }
        out
    };
    let check = |sidecar: &[u8], snapshot: &[u8]| {
        if let Ok(parity) = Parity::parse(sidecar, path, FUZZ_STORE_ID, 9) {
            let _ = parity.stale_parity_pages(snapshot);
            if let Ok(repaired) = parity.repair(snapshot) {
                assert_eq!(repaired.bytes.len() as u64, parity.snapshot_bytes());
                assert!(parity.damaged_pages(&repaired.bytes).is_empty());
            }
        }
    };
    match mode % 3 {
        0 => check(rest, snapshot),
        1 => check(&sidecar_of(snapshot), &damaged(snapshot, rest)),
        _ => check(&damaged(&sidecar_of(snapshot), rest), snapshot),
    }
}
