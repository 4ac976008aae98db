//! `verify`: a read-only check of every byte of every store file. Takes no writer lock
//! (only shared locks on the snapshots it maps, as every reader does) and
//! writes nothing, so it runs beside a live writer.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::header::{HEADER_BYTES, StoreId};
use crate::model::op::Op;
use crate::recovery::{list, open_snapshot, read_all};
use crate::storage::Storage;
use crate::store::Options;
use crate::wal::scan::{self, SegmentEnd};
use crate::wal::segment;

/// What kind of problem `verify` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// Damage to something that was durable. The store does not open strictly.
    Corrupt,
    /// Damage confined to writes that were never acknowledged; recovery cuts it.
    TornTail,
    /// A temporary file the store wrote; recovery removes it.
    StrayTemp,
    /// A parity sidecar that no longer matches its intact snapshot. Nothing is lost and
    /// the store opens, but that snapshot could not be rebuilt from it; the next
    /// checkpoint that writes a snapshot (one after a commit) writes a new sidecar.
    ParityDamaged,
}

/// One problem: where, what, and why it is classified so.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Its kind.
    pub kind: ProblemKind,
    /// The file.
    pub file: PathBuf,
    /// The byte offset, where there is one.
    pub offset: Option<u64>,
    /// What was expected and what was found.
    pub detail: String,
    /// Why it is a torn tail or corruption.
    pub why: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// The store directory.
    pub dir: PathBuf,
    /// The lsn a reader recovers (0 when it cannot).
    pub lsn: u64,
    /// Snapshot files checked.
    pub snapshots_checked: usize,
    /// Entries read from snapshots.
    pub snapshot_entries_checked: u64,
    /// Segment files checked.
    pub segments_checked: usize,
    /// WAL records checked.
    pub records_checked: u64,
    /// Everything found, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether any problem is corruption.
    pub fn is_corrupt(&self) -> bool {
        self.problems.iter().any(|p| p.kind == ProblemKind::Corrupt)
    }

    fn corrupt(&mut self, error: &Error, fallback_file: &Path, why: &str) {
        let (file, offset, detail) = match error {
            Error::Corrupt {
                file,
                offset,
                reason,
            } => (file.clone(), Some(*offset), reason.clone()),
            other => (fallback_file.to_path_buf(), None, other.to_string()),
        };
        self.problems.push(Problem {
            kind: ProblemKind::Corrupt,
            file,
            offset,
            detail,
            why: why.to_owned(),
        });
    }
}

/// Checks every file of the store in `dir` through `storage`.
pub fn verify(storage: &dyn Storage, dir: &Path) -> Result<VerifyReport> {
    let mut attempt = 1;
    loop {
        let before = list(storage, dir).ok().map(|l| store_files(&l));
        let result = verify_once(storage, dir);
        // Beside a live writer, a checkpoint may have pruned or replaced files this run
        // listed (a segment read as missing, a sidecar gone, a snapshot superseded): its
        // findings may be about files that are no longer the store's. Check again, from
        // a fresh listing, while the directory keeps changing (bounded).
        let after = list(storage, dir).ok().map(|l| store_files(&l));
        let writer_live = storage
            .is_locked(&dir.join(crate::store::LOCK_FILE))
            .unwrap_or(false);
        if writer_live && before != after && attempt < VERIFY_ATTEMPTS_MAX {
            attempt += 1;
            continue;
        }
        return result;
    }
}

/// Runs of [`verify`] beside a writer whose checkpoints keep changing the directory.
const VERIFY_ATTEMPTS_MAX: u32 = 8;

/// The store files a listing names (temporaries aside).
fn store_files(listing: &crate::recovery::DirListing) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    (
        listing.segments.clone(),
        listing.snapshots.clone(),
        listing.parities.clone(),
    )
}

fn verify_once(storage: &dyn Storage, dir: &Path) -> Result<VerifyReport> {
    let exists = storage.exists(dir).map_err(|e| Error::io("stat", dir, e))?;
    let listing = if exists {
        Some(list(storage, dir)?)
    } else {
        None
    };
    let Some(listing) = listing.filter(|l| l.is_store()) else {
        let reason = if exists {
            "no .wal, .snap or LOCK file in it"
        } else {
            "it does not exist"
        };
        return Err(Error::NotAStore {
            dir: dir.to_path_buf(),
            reason: reason.into(),
        });
    };
    let mut report = VerifyReport {
        dir: dir.to_path_buf(),
        ..VerifyReport::default()
    };
    // While a writer holds the lock, temporaries are its work in progress (a segment or
    // checkpoint being written, its spare segment, its snapshot spare), not leftovers of
    // a crash: its open removed those.
    let writer_live = storage
        .is_locked(&dir.join(crate::store::LOCK_FILE))
        .unwrap_or(false);
    for name in listing.temps.iter().filter(|_| !writer_live) {
        report.problems.push(Problem {
            kind: ProblemKind::StrayTemp,
            file: dir.join(name),
            offset: None,
            detail: "temporary file left by an interrupted checkpoint or segment creation".into(),
            why: "never renamed into place, so nothing refers to it; recovery removes it".into(),
        });
    }
    let mut store_id: Option<StoreId> = None;
    let mut usable_snapshots: Vec<u64> = Vec::new();
    for &lsn in &listing.snapshots {
        let path = dir.join(crate::snapshot::file_name(lsn));
        let has_sidecar = listing.parities.contains(&lsn);
        let opened = open_snapshot(storage, &path, true);
        // Gone from the listing once opened, or locked by the writer (which only locks a
        // snapshot exclusively to rename it away for reuse): a live writer superseded it
        // meanwhile (snapshot::reuse), so what was read says nothing.
        let still_listed = || list(storage, dir).map_or(true, |now| now.snapshots.contains(&lsn));
        let reused = matches!(&opened, Err(Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::WouldBlock);
        if reused || ((opened.is_err() || writer_live) && !still_listed()) {
            continue;
        }
        report.snapshots_checked += 1;
        match opened {
            Ok(snapshot) if snapshot.lsn() != lsn => {
                let error = Error::corrupt(
                    &path,
                    0,
                    format!("header says lsn {}, name says {lsn}", snapshot.lsn()),
                );
                report.corrupt(
                    &error,
                    &path,
                    "a snapshot's header names the lsn its file name does",
                );
            }
            Ok(snapshot) => {
                report.snapshot_entries_checked += snapshot.entry_count();
                if let Err(error) = crate::fts::merge::check_postings(&snapshot) {
                    report.corrupt(
                        &error,
                        &path,
                        "a snapshot's posting lists must decode and name indexed documents",
                    );
                }
                check_store_id(
                    &mut report,
                    &mut store_id,
                    snapshot.header().store_id,
                    &path,
                );
                if has_sidecar {
                    check_sidecar(storage, dir, &snapshot, &mut report);
                }
                usable_snapshots.push(lsn);
            }
            Err(error) => {
                report.corrupt(
                    &error,
                    &path,
                    "a snapshot is durable once renamed; any damage to it is corruption",
                );
                if has_sidecar {
                    say_whether_the_sidecar_rebuilds(storage, dir, lsn, &mut report);
                }
            }
        }
    }
    let covered = (
        usable_snapshots.first().copied().unwrap_or(0),
        usable_snapshots.last().copied().unwrap_or(0),
    );
    check_segments(
        storage,
        dir,
        &listing.segments,
        covered,
        &mut store_id,
        &mut report,
    )?;
    let options = Options::default().verify_snapshot_on_open(true);
    match crate::recovery::recover(storage, dir, &options, false) {
        Ok(recovered) => report.lsn = recovered.version.lsn,
        Err(error) if !report.is_corrupt() => {
            report.corrupt(&error, dir, "the store does not recover")
        }
        Err(_) => {}
    }
    Ok(report)
}

/// Adds to the problem of the damaged snapshot of `lsn` whether its sidecar rebuilds it.
fn say_whether_the_sidecar_rebuilds(
    storage: &dyn Storage,
    dir: &Path,
    lsn: u64,
    report: &mut VerifyReport,
) {
    let sidecar = dir.join(crate::snapshot::parity::file_name(lsn));
    let snapshot_path = dir.join(crate::snapshot::file_name(lsn));
    let verdict = match crate::recovery::repair::rebuild(storage, &snapshot_path, lsn) {
        Ok(rebuilt) => format!(
            "; {} rebuilds it ({} of its 4 KiB pages): recovery does so at open, and \
             `walstore recover` checks every block",
            sidecar.display(),
            rebuilt.pages.len()
        ),
        Err(why) => format!("; {} cannot rebuild it: {why}", sidecar.display()),
    };
    if let Some(problem) = report
        .problems
        .iter_mut()
        .rev()
        .find(|p| p.file == snapshot_path && p.kind == ProblemKind::Corrupt)
    {
        problem.why.push_str(&verdict);
    }
}

/// Checks the sidecar of an intact `snapshot` (already mapped and checked) against it:
/// its own checks, then every page checksum and parity page.
fn check_sidecar(
    storage: &dyn Storage,
    dir: &Path,
    snapshot: &crate::snapshot::reader::Snapshot,
    report: &mut VerifyReport,
) {
    use crate::snapshot::parity::{self, PAGE_BYTES, Parity};
    let path = dir.join(parity::file_name(snapshot.lsn()));
    let bytes = snapshot.bytes();
    let mut damaged = |offset: Option<u64>, detail: String| {
        report.problems.push(Problem {
            kind: ProblemKind::ParityDamaged,
            file: path.clone(),
            offset,
            detail,
            why: "a sidecar must match its snapshot to rebuild it; the snapshot itself is \
                  intact and nothing is lost; the next checkpoint that writes a snapshot \
                  (after a commit) writes a new sidecar"
                .into(),
        });
    };
    let sidecar = match crate::recovery::repair::read_whole(storage, &path) {
        Ok(sidecar) => sidecar,
        Err(error) => return damaged(None, format!("cannot be read: {error}")),
    };
    let parity = match Parity::parse(&sidecar, &path, snapshot.header().store_id, snapshot.lsn()) {
        Ok(parity) => parity,
        Err(Error::Corrupt { offset, reason, .. }) => return damaged(Some(offset), reason),
        Err(other) => return damaged(None, other.to_string()),
    };
    if parity.snapshot_bytes() != bytes.len() as u64 {
        damaged(
            None,
            format!(
                "sidecar of a {}-byte snapshot; the snapshot has {} bytes",
                parity.snapshot_bytes(),
                bytes.len()
            ),
        );
    } else if let Some(&page) = parity.damaged_pages(bytes).first() {
        damaged(
            None,
            format!(
                "checksum of snapshot page {page} (offset {}) does not match",
                page * PAGE_BYTES as u64
            ),
        );
    } else if let Some(&page) = parity.stale_parity_pages(bytes).first() {
        damaged(
            Some(HEADER_BYTES as u64 + page * PAGE_BYTES as u64),
            format!("parity page {page} is not the XOR of its group"),
        );
    }
}

fn check_store_id(
    report: &mut VerifyReport,
    store_id: &mut Option<StoreId>,
    found: StoreId,
    path: &Path,
) {
    match store_id {
        Some(id) if *id != found => {
            report.corrupt(
                &Error::corrupt(path, 16, "store id differs from the other files'"),
                path,
                "files of two stores are mixed",
            );
        }
        _ => *store_id = Some(found),
    }
}

fn check_segments(
    storage: &dyn Storage,
    dir: &Path,
    segments: &[u64],
    (oldest_snapshot_lsn, newest_snapshot_lsn): (u64, u64),
    store_id: &mut Option<StoreId>,
    report: &mut VerifyReport,
) -> Result<()> {
    let mut next_lsn: Option<u64> = None;
    for (i, &first_lsn) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        let path = dir.join(segment::file_name(first_lsn));
        report.segments_checked += 1;
        let bytes = read_all(storage, &path)?;
        if bytes.len() < HEADER_BYTES {
            let detail = format!(
                "segment of {} bytes, its header needs {HEADER_BYTES}",
                bytes.len()
            );
            if is_last {
                report.problems.push(Problem {
                    kind: ProblemKind::TornTail,
                    file: path,
                    offset: Some(0),
                    detail,
                    why: "the newest segment was cut while being created; it holds no record"
                        .into(),
                });
            } else {
                report.corrupt(
                    &Error::corrupt(&path, 0, detail),
                    &path,
                    "a segment is durable before the next one exists",
                );
            }
            continue;
        }
        let scanned = match scan::scan(&bytes, &path) {
            Ok(scanned) => scanned,
            Err(error) => {
                report.corrupt(
                    &error,
                    &path,
                    "a segment's header is durable before the segment gets its name",
                );
                continue;
            }
        };
        check_store_id(report, store_id, scanned.header.store_id, &path);
        let expected_first = next_lsn.unwrap_or(first_lsn.min(oldest_snapshot_lsn + 1));
        // A gap is fine where a snapshot covers it (recovery case 13).
        let gap_covered =
            scanned.header.lsn > expected_first && scanned.header.lsn <= newest_snapshot_lsn + 1;
        if scanned.header.lsn != first_lsn || (scanned.header.lsn != expected_first && !gap_covered)
        {
            let detail = format!(
                "segment starts at lsn {}, expected lsn {expected_first}",
                scanned.header.lsn
            );
            report.corrupt(
                &Error::corrupt(&path, 32, detail),
                &path,
                "lsns are dense: a missing segment or missing records",
            );
        }
        for record in &scanned.records {
            report.records_checked += 1;
            let payload = bytes.get(record.payload.clone()).unwrap_or_default();
            if let Err(e) = postcard::from_bytes::<Vec<Op>>(payload) {
                let detail = format!(
                    "record lsn {} passed its checksum but its payload does not decode: {e}",
                    record.lsn
                );
                report.corrupt(
                    &Error::corrupt(&path, record.offset, detail),
                    &path,
                    "checksummed bytes that do not decode were written wrong",
                );
            }
        }
        next_lsn = Some(scanned.last_lsn() + 1);
        match scanned.end {
            SegmentEnd::Clean => {}
            SegmentEnd::Torn { offset, reason } if is_last => report.problems.push(Problem {
                kind: ProblemKind::TornTail,
                file: path,
                offset: Some(offset),
                detail: reason,
                why: "damage after the last valid record, and no later record was written after it became durable: a write that was never acknowledged".into(),
            }),
            SegmentEnd::Torn { offset, reason } => report.corrupt(
                &Error::corrupt(&path, offset, reason),
                &path,
                "this is not the newest segment, and a segment is fdatasync'd before the next is created, so its records were durable",
            ),
            SegmentEnd::Corrupt { offset, reason } => report.corrupt(
                &Error::corrupt(&path, offset, reason),
                &path,
                "valid records follow the damage and were written after the damaged one was durable",
            ),
        }
    }
    Ok(())
}
