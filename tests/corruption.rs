//! Corruption sweeps over real store files (in the simulator): the newest segment cut at
//! every byte offset, bits flipped in segment headers, record frames (early, middle and
//! last records) and every snapshot section, mid-log damage, zero and garbage tails.
//!
//! Every flip must be detected (`verify` says corrupt, a strict open fails, or a read of
//! the state fails its checksum) or land in a torn tail that recovery discards, and the
//! state a store shows must always be the model after some prefix: never other data.
//!
//! `WALSTORE_CORRUPTION_FLIPS=100000 cargo test --release --test corruption -- --nocapture`
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;
mod model;
mod sim_tools;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use model::{Model, Rng, Workload};
use sim_tools::{image, temps, try_dump};
use walstore::snapshot::block::read_refs;
use walstore::storage::SimStorage;
use walstore::wal::scan::scan;
use walstore::{Error, Options, ProblemKind, RecoveryMode, Store};

const DIR: &str = "/corrupt/store";

/// Small segments, so that a small store has several; checkpoints are explicit.
/// Options of every open here. A fallback is kept: the sweeps damage the newest snapshot
/// and expect recovery to fall back to the previous one.
fn options(sim: &SimStorage) -> Options {
    Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(4096)
        .checkpoint_wal_bytes(0)
        .keep_fallback(true)
}

/// A store with two snapshots and several segments, from a seeded workload over every
/// collection. Few records follow the newest snapshot, so that each of the many
/// recoveries below replays little.
struct Built {
    sim: SimStorage,
    model: Model,
    lsn: u64,
    /// Transactions left in the workload for commits after a recovery.
    workload: Workload,
}

fn build(txns: usize) -> Built {
    let workload = Workload::generate(0xc0dde, txns + 4);
    let model = Model::replay(&workload);
    let sim = SimStorage::new(1);
    let store = options(&sim).open(DIR).expect("open");
    for (i, txn) in workload.txns[..txns].iter().enumerate() {
        let mut write = store.begin_write();
        txn.apply_to(&mut write);
        write.commit().expect("commit");
        if i + 1 == txns - 100 || i + 1 == txns - 12 {
            store.checkpoint().expect("checkpoint");
        }
    }
    let lsn = store.lsn();
    drop(store);
    Built {
        sim,
        model,
        lsn,
        workload,
    }
}

fn names(sim: &SimStorage, suffix: &str) -> Vec<PathBuf> {
    sim.file_names(DIR)
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| Path::new(DIR).join(n))
        .collect()
}

/// `(offset, end of payload, lsn)` of each record of a segment.
fn records(sim: &SimStorage, path: &Path) -> Vec<(u64, u64, u64)> {
    let bytes = sim.read_file(path).expect("segment");
    scan(&bytes, path)
        .expect("scan")
        .records
        .iter()
        .map(|r| (r.offset, r.payload.end as u64, r.lsn))
        .collect()
}

fn snapshot_lsn(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_string_lossy();
    name.trim_end_matches(".snap")
        .parse()
        .expect("snapshot name")
}

/// A byte range of a file in which bits are flipped, and what a flip there means.
#[derive(Debug, Clone)]
struct Region {
    what: String,
    path: PathBuf,
    bytes: std::ops::Range<u64>,
    /// The lsn of the record the region belongs to (`None`: not a record).
    lsn: Option<u64>,
    /// Flip at most this many bits (seeded sample); `None`: every bit.
    sample: Option<usize>,
}

/// The regions: headers, record frames and snapshot sections.
fn regions(sim: &SimStorage, budget: usize) -> Vec<Region> {
    let segments = names(sim, ".wal");
    let snapshots = names(sim, ".snap");
    assert!(segments.len() >= 3, "{segments:?}");
    assert!(snapshots.len() >= 2, "{snapshots:?}");
    let mut out = Vec::new();
    let newest_segment = segments.last().unwrap().clone();
    out.push(Region {
        what: "newest segment header".into(),
        path: newest_segment.clone(),
        bytes: 0..64,
        lsn: None,
        sample: None,
    });
    out.push(Region {
        what: "oldest segment header".into(),
        path: segments[0].clone(),
        bytes: 0..64,
        lsn: None,
        sample: None,
    });
    let middle_segment = &segments[segments.len() / 2];
    let newest = records(sim, &newest_segment);
    assert!(newest.len() >= 3, "the newest segment holds {newest:?}");
    let middle = records(sim, middle_segment);
    let oldest = records(sim, &segments[0]);
    let frame = |what: &str, path: &Path, (offset, end, lsn): (u64, u64, u64)| Region {
        what: what.into(),
        path: path.to_path_buf(),
        bytes: offset..end,
        lsn: Some(lsn),
        sample: None,
    };
    out.push(frame("early record", &segments[0], oldest[0]));
    out.push(frame(
        "middle record",
        middle_segment,
        middle[middle.len() / 2],
    ));
    out.push(frame(
        "first record of the newest segment",
        &newest_segment,
        newest[0],
    ));
    out.push(frame(
        "second-to-last record",
        &newest_segment,
        newest[newest.len() - 2],
    ));
    out.push(frame(
        "last record",
        &newest_segment,
        newest[newest.len() - 1],
    ));

    let snapshot = snapshots.last().unwrap().clone();
    let bytes = sim.read_file(&snapshot).unwrap();
    let len = bytes.len() as u64;
    let footer = len - 64;
    let top_offset = u64::from_le_bytes(bytes[footer as usize + 8..][..8].try_into().unwrap());
    let top_refs = read_refs(
        &bytes[top_offset as usize + walstore::snapshot::SECTION_COUNT * 8..footer as usize],
        true,
    )
    .unwrap();
    let index = &top_refs[0];
    let index_body = &bytes[index.offset as usize..][..index.body_len as usize];
    let data_refs = read_refs(index_body, false).unwrap();
    let block = |what: &str, offset: u64, body_len: u32, sample: usize| Region {
        what: what.into(),
        path: snapshot.clone(),
        bytes: offset..offset + u64::from(body_len) + 4,
        lsn: None,
        sample: Some(sample),
    };
    let per_block = budget;
    out.push(Region {
        what: "snapshot header".into(),
        path: snapshot.clone(),
        bytes: 0..64,
        lsn: None,
        sample: None,
    });
    let first = &data_refs[0];
    out.push(block(
        "snapshot first data block",
        first.offset,
        first.body_len,
        per_block,
    ));
    let last = data_refs.last().unwrap();
    out.push(block(
        "snapshot last data block",
        last.offset,
        last.body_len,
        per_block,
    ));
    out.push(block(
        "snapshot index block",
        index.offset,
        index.body_len,
        per_block,
    ));
    out.push(Region {
        what: "snapshot top index".into(),
        path: snapshot.clone(),
        bytes: top_offset..footer,
        lsn: None,
        sample: Some(per_block),
    });
    out.push(Region {
        what: "snapshot footer".into(),
        path: snapshot,
        bytes: footer..len,
        lsn: None,
        sample: None,
    });
    out
}

#[derive(Debug, Default)]
struct Counts {
    flips: u64,
    detected: u64,
    torn: u64,
    accepted: Vec<String>,
    wrong: Vec<String>,
}

/// Opens the store read-only (`verify_all`: checking every snapshot block) and reads all of
/// it. `Ok(Some(lsn))`: it read the model's state at `lsn`; `Ok(None)`: the open or a read
/// failed with a checksum error; `Err`: it showed something else.
fn read_back(sim: &SimStorage, model: &Model, verify_all: bool) -> Result<Option<u64>, String> {
    let opened = options(sim)
        .read_only(true)
        .verify_snapshot_on_open(verify_all)
        .open(DIR);
    let store = match opened {
        Ok(store) => store,
        Err(Error::Corrupt { .. }) => return Ok(None),
        Err(other) => return Err(format!("open failed with a non-corruption error: {other}")),
    };
    match try_dump(&store) {
        Ok(dump) if dump == model.dumps[store.lsn() as usize] => Ok(Some(store.lsn())),
        Ok(_) => Err(format!(
            "state at lsn {} is not the model's (verify_all={verify_all})",
            store.lsn()
        )),
        Err(Error::Corrupt { .. }) => Ok(None),
        Err(other) => Err(format!("read failed with a non-corruption error: {other}")),
    }
}

/// Flips one bit, classifies the outcome, flips it back.
fn flip(built: &Built, sim: &SimStorage, region: &Region, bit: u64, counts: &mut Counts) {
    let at = format!("{} ({}) bit {bit}", region.what, region.path.display());
    sim.flip_bit(&region.path, bit).expect("flip");
    counts.flips += 1;
    let report = walstore::verify(sim, Path::new(DIR)).expect("verify runs");
    let plain = read_back(sim, &built.model, false);
    let is_snapshot = region.path.extension().is_some_and(|e| e == "snap");
    let checked = match is_snapshot {
        true => read_back(sim, &built.model, true),
        false => Ok(None),
    };
    match (&plain, &checked) {
        (Ok(_), Ok(_)) => {}
        (Err(e), _) | (_, Err(e)) => counts.wrong.push(format!("{at}: {e}")),
    }
    let torn_reported = report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::TornTail);
    if report.is_corrupt() || matches!(plain, Ok(None)) {
        counts.detected += 1;
    } else if let (true, Some(lsn), Ok(Some(recovered))) = (torn_reported, region.lsn, &plain) {
        // Discarded as a torn tail: the flipped record and everything after it.
        if *recovered + 1 == lsn {
            counts.torn += 1;
        } else {
            counts.wrong.push(format!(
                "{at}: torn tail recovered lsn {recovered}, flipped record {lsn}"
            ));
        }
    } else {
        counts.accepted.push(format!(
            "{at}: not detected ({:?}, open {plain:?})",
            report.problems
        ));
    }
    // With every snapshot block checked at open, a damaged snapshot falls back to the
    // previous one and the WAL since it: nothing acknowledged is lost.
    if is_snapshot && checked != Ok(Some(built.lsn)) {
        counts.wrong.push(format!(
            "{at}: verify_snapshot_on_open recovered {checked:?}, expected lsn {}",
            built.lsn
        ));
    }
    // A sample goes through a writer's recovery too, which must then accept commits.
    if counts.flips.is_multiple_of(97) {
        let fork = sim.fork(bit);
        if let Ok(store) = options(&fork).open(DIR) {
            let lsn = store.lsn();
            if try_dump(&store).ok().as_ref() != Some(&built.model.dumps[lsn as usize]) {
                counts
                    .wrong
                    .push(format!("{at}: writer recovered other data at lsn {lsn}"));
            }
            if lsn == built.lsn {
                let mut write = store.begin_write();
                built.workload.txns[lsn as usize].apply_to(&mut write);
                if write.commit().is_err() {
                    counts.wrong.push(format!("{at}: no commit after recovery"));
                }
            }
        }
    }
    sim.flip_bit(&region.path, bit).expect("flip back");
}

/// The truncation sweep: every cut of the newest segment recovers the right prefix.
fn truncations(built: &Built, counts: &mut Counts) -> u64 {
    let sim = built.sim.fork(2);
    let segment = names(&sim, ".wal").last().unwrap().clone();
    let first_lsn: u64 = segment
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".wal")
        .parse()
        .unwrap();
    let snapshot = snapshot_lsn(names(&sim, ".snap").last().unwrap());
    let original = sim.read_file(&segment).unwrap();
    let spans = records(&sim, &segment);
    let valid_end = spans.last().map_or(64, |(offset, end, _)| *end.max(offset));
    let mut cuts: Vec<u64> = (0..=valid_end + 16).collect();
    cuts.push(original.len() as u64);
    for &cut in &cuts {
        sim.write_file(&segment, &original[..cut as usize]);
        let prefix = spans
            .iter()
            .filter(|(_, end, _)| *end <= cut)
            .map(|(_, _, lsn)| *lsn)
            .max()
            .unwrap_or(first_lsn - 1);
        let expected = prefix.max(snapshot);
        let at = format!("cut at {cut}");
        let report = walstore::verify(&sim, Path::new(DIR)).expect("verify runs");
        if report.is_corrupt() {
            counts.wrong.push(format!("{at}: verify says corrupt"));
        }
        match read_back(&sim, &built.model, false) {
            Ok(Some(lsn)) if lsn == expected => {}
            other => counts.wrong.push(format!(
                "{at}: read back {other:?}, expected lsn {expected}"
            )),
        }
        if cut % 8 == 0 || cut < 72 {
            let fork = sim.fork(cut);
            match options(&fork).open(DIR) {
                Ok(store) if store.lsn() == expected => {
                    if !temps(&fork, Path::new(DIR)).is_empty() {
                        counts.wrong.push(format!("{at}: temporaries left"));
                    }
                    let mut write = store.begin_write();
                    built.workload.txns[expected as usize].apply_to(&mut write);
                    if write.commit().ok() != Some(expected + 1) {
                        counts.wrong.push(format!("{at}: no commit after recovery"));
                    }
                }
                Ok(store) => counts.wrong.push(format!(
                    "{at}: writer recovered lsn {}, expected {expected}",
                    store.lsn()
                )),
                Err(e) => counts
                    .wrong
                    .push(format!("{at}: writer recovery failed: {e}")),
            }
        }
    }
    cuts.len() as u64
}

#[test]
fn truncation_and_bit_flip_sweeps() {
    let budget: usize = std::env::var("WALSTORE_CORRUPTION_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21_000);
    let built = build(150);
    let regions = regions(&built.sim, budget);
    // Every bit of the small regions; the budget's rest spread over the large ones.
    let bits = |r: &Region| (r.bytes.end - r.bytes.start) * 8;
    let (small, large): (Vec<&Region>, Vec<&Region>) = regions
        .iter()
        .partition(|r| r.sample.is_none_or(|_| bits(r) <= 4096));
    let rest = (budget as u64).saturating_sub(small.iter().map(|r| bits(r)).sum::<u64>());
    let per_large = rest / large.len().max(1) as u64;
    let mut jobs: Vec<(usize, u64)> = Vec::new();
    let mut rng = Rng(0xf11b);
    for (i, region) in regions.iter().enumerate() {
        let first = region.bytes.start * 8;
        let count = bits(region);
        if region.sample.is_some() && count > 4096 && per_large < count {
            jobs.extend((0..per_large).map(|_| (i, first + rng.below(count))));
        } else {
            jobs.extend((first..first + count).map(|bit| (i, bit)));
        }
    }
    let workers = 2;
    let (mut counts, cuts) = std::thread::scope(|scope| {
        let flips: Vec<_> = (0..workers)
            .map(|worker| {
                let (built, jobs, regions) = (&built, &jobs, &regions);
                scope.spawn(move || {
                    let sim = built.sim.fork(10 + worker as u64);
                    let mut counts = Counts::default();
                    for &(region, bit) in jobs.iter().skip(worker).step_by(workers) {
                        flip(built, &sim, &regions[region], bit, &mut counts);
                    }
                    counts
                })
            })
            .collect();
        let mut counts = Counts::default();
        let cuts = truncations(&built, &mut counts);
        for handle in flips {
            let part = handle.join().expect("worker");
            counts.flips += part.flips;
            counts.detected += part.detected;
            counts.torn += part.torn;
            counts.accepted.extend(part.accepted);
            counts.wrong.extend(part.wrong);
        }
        (counts, cuts)
    });
    counts.wrong.sort();
    println!(
        "corruption: {} bit flips and {cuts} truncations, {} detected, {} discarded as torn tails, {} silently accepted",
        counts.flips,
        counts.detected,
        counts.torn,
        counts.accepted.len()
    );
    for region in &regions {
        println!(
            "corruption details: {} bytes {}..{} of {}",
            region.what,
            region.bytes.start,
            region.bytes.end,
            region.path.display()
        );
    }
    assert!(
        counts.flips >= 20_000 || budget < 20_000,
        "{}",
        counts.flips
    );
    assert!(
        counts.accepted.is_empty(),
        "{:#?}",
        &counts.accepted[..counts.accepted.len().min(10)]
    );
    assert!(
        counts.wrong.is_empty(),
        "{} wrong, first: {:#?}",
        counts.wrong.len(),
        &counts.wrong[..counts.wrong.len().min(10)]
    );
    assert_eq!(counts.detected + counts.torn, counts.flips);
}

#[test]
fn mid_log_damage_is_an_error_that_changes_no_byte() {
    let built = build(150);
    let segments = names(&built.sim, ".wal");
    let newest = segments.last().unwrap().clone();
    let spans = records(&built.sim, &newest);
    let snapshot = snapshot_lsn(names(&built.sim, ".snap").last().unwrap());
    let mut cases = 0;
    // Every record of the newest segment that a later, durable record follows.
    for &(offset, end, lsn) in &spans[..spans.len() - 1] {
        for at in [offset, offset + 4, offset + 16, (offset + end) / 2, end - 1] {
            let sim = built.sim.fork(lsn);
            sim.flip_bit(&newest, at * 8 + 3).unwrap();
            let before = image(&sim, Path::new(DIR));
            match options(&sim).open(DIR) {
                Err(Error::Corrupt { file, .. }) => assert_eq!(file, newest),
                other => panic!("damage at {at} (lsn {lsn}): expected Corrupt, got {other:?}"),
            }
            assert_eq!(
                image(&sim, Path::new(DIR)),
                before,
                "a failed strict open changed bytes"
            );
            let report = walstore::verify(&sim, Path::new(DIR)).unwrap();
            assert!(report.is_corrupt(), "verify misses damage at {at}");
            // Salvage cuts it back, to the record before the damage, and says so.
            let store = options(&sim)
                .recovery(RecoveryMode::Salvage)
                .open(DIR)
                .expect("salvage");
            // ... unless the newest snapshot covers more (recovery case 13).
            let expected = (lsn - 1).max(snapshot);
            assert_eq!(store.lsn(), expected);
            assert!(store.recovery_report().salvage.is_some());
            assert_eq!(
                try_dump(&store).unwrap(),
                built.model.dumps[expected as usize]
            );
            cases += 1;
        }
    }
    // The last record of a segment that is not the newest: durable before the next existed.
    let older = &segments[segments.len() - 2];
    let (offset, _, _) = *records(&built.sim, older).last().unwrap();
    let sim = built.sim.fork(99);
    sim.flip_bit(older, offset * 8 + 40).unwrap();
    let before = image(&sim, Path::new(DIR));
    let opened = options(&sim).open(DIR);
    if opened.is_ok() {
        // Only if a snapshot covers that record does recovery not read it; verify still must.
        assert!(walstore::verify(&sim, Path::new(DIR)).unwrap().is_corrupt());
    } else {
        assert!(matches!(opened, Err(Error::Corrupt { .. })), "{opened:?}");
        assert_eq!(image(&sim, Path::new(DIR)), before);
    }
    cases += 1;
    assert!(cases >= 10);
}

#[test]
fn zero_and_garbage_tails_are_torn() {
    let built = build(150);
    let newest = names(&built.sim, ".wal").last().unwrap().clone();
    let spans = records(&built.sim, &newest);
    let original = built.sim.read_file(&newest).unwrap();
    let valid_end = spans.last().unwrap().1 as usize;
    let mut rng = Rng(7);
    let mut starts: Vec<usize> = spans[spans.len() - 3..]
        .iter()
        .map(|(offset, _, _)| *offset as usize)
        .collect();
    // And every sector boundary inside the last three records.
    starts.extend((starts[0].div_ceil(512) * 512..valid_end).step_by(512));
    for start in starts {
        for garbage in [false, true] {
            let mut bytes = original.clone();
            for byte in &mut bytes[start..valid_end] {
                *byte = if garbage { rng.next() as u8 } else { 0 };
            }
            let sim = built.sim.fork(start as u64);
            sim.write_file(&newest, &bytes);
            let expected = spans
                .iter()
                .filter(|(_, end, _)| *end as usize <= start)
                .map(|(_, _, lsn)| *lsn)
                .max()
                .unwrap();
            let report = walstore::verify(&sim, Path::new(DIR)).unwrap();
            assert!(!report.is_corrupt(), "{start} {garbage}: {report:?}");
            // Zeros from a record's start read as the clean end of the preallocation;
            // zeros from inside a record leave its damaged head: a torn tail.
            let at_record = spans.iter().any(|(offset, _, _)| *offset as usize == start);
            assert_eq!(
                report
                    .problems
                    .iter()
                    .any(|p| p.kind == ProblemKind::TornTail),
                garbage || !at_record,
                "tail from {start}, garbage {garbage}"
            );
            let store = options(&sim).open(DIR).expect("recovers");
            assert_eq!(
                store.lsn(),
                expected,
                "tail from {start}, garbage {garbage}"
            );
            assert_eq!(
                try_dump(&store).unwrap(),
                built.model.dumps[expected as usize]
            );
            let mut write = store.begin_write();
            built.workload.txns[expected as usize].apply_to(&mut write);
            assert_eq!(write.commit().unwrap(), expected + 1);
            drop(store);
            let store = options(&sim).open(DIR).unwrap();
            assert_eq!(
                try_dump(&store).unwrap(),
                built.model.dumps[expected as usize + 1]
            );
        }
    }
}
