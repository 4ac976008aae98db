//! Open-time recovery, as a table of cases (see `format-spec/recovery.md`).
//!
//! | # | case | action |
//! |---|---|---|
//! | 1 | a file named like the store's temporaries (`<20 digits>.snap.tmp`, `.wal.tmp`, `.par.tmp`) | removed (writer) and reported; foreign files are never touched |
//! | 2 | newest snapshot fails its header, footer or top-index check (or any block, with `verify_snapshot_on_open`) | 2r: rebuilt from its parity sidecar if it can be (`repair`); else fall back to the next older snapshot; the damaged one is moved to `quarantine/` (writer) |
//! | 3 | no snapshot validates | replay from lsn 1 (empty state) |
//! | 4 | a file of the wrong store id | corruption |
//! | 5 | the first needed segment starts after the lsn the snapshot needs next | corruption: missing segment |
//! | 6 | a segment's first lsn is not the previous segment's last lsn + 1 | corruption: missing segment or records |
//! | 7 | damage at the end of a segment that is not the last | corruption (a segment is synced before the next is created) |
//! | 8 | the last segment is shorter than its header | torn: removed (writer) |
//! | 9 | the last segment ends in zeros | clean |
//! | 10 | the last segment ends in damage that only unacknowledged writes explain (see `wal::scan`) | torn tail: cut back (writer), reported |
//! | 11 | the last segment holds damage followed by a record written after the damaged one was durable | corruption; with `RecoveryMode::Salvage`, cut back and the cut bytes quarantined |
//! | 12 | a checksummed record whose payload does not decode | corruption |
//! | 13 | the WAL ends before the snapshot's lsn (commits made with `Durability::None` that a checkpoint covered) | the snapshot wins; a new segment starts after it |

pub(crate) mod kv_batch;
pub(crate) mod quarantine;
pub(crate) mod repair;
mod report;
mod segments;

pub use report::{RecoveryReport, SalvageReport, SnapshotRepair, TornTail};
pub(crate) use segments::{DirListing, list};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::header::{HEADER_BYTES, StoreId};
use crate::model::op::KvState;
use crate::model::op::Op;
use crate::snapshot::reader::Snapshot;
use crate::state::{ReplayBatch, Version};
use crate::storage::{OpenMode, Storage};
use crate::store::head::Head;
use crate::store::{Options, RecoveryMode};
use crate::wal::scan::{self, SegmentEnd, SegmentScan};
use crate::wal::segment::{self, ActiveSegment};

pub use quarantine::QUARANTINE_DIR;

/// What recovery hands to the store.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub version: Version,
    pub store_id: StoreId,
    /// The segment to append to (writer only).
    pub active: Option<ActiveSegment>,
    /// Where a reader continues tailing the WAL: `(segment first lsn, offset)`.
    pub tail: Option<(u64, u64)>,
    /// A failed fdatasync of the replayed records: the writer must open poisoned.
    pub sync_error: Option<Error>,
    /// The writer found `HEAD` closed at the lsn it recovered, with nothing after it, and
    /// so skipped the open-time syncs (the previous writer closed cleanly).
    pub after_clean_close: bool,
    pub report: RecoveryReport,
}

struct Ctx<'a> {
    storage: &'a dyn Storage,
    dir: &'a Path,
    options: &'a Options,
    writer: bool,
    /// Records above this lsn are not applied (a reader beside a live writer stops at
    /// what the writer published as durable).
    limit: u64,
    /// What a `HEAD` a writer found closed says (store/head.rs).
    closed: Option<Head>,
    after_clean_close: bool,
    tail: Option<(u64, u64)>,
    damaged_snapshots: Vec<PathBuf>,
    /// Snapshots rebuilt from their sidecars, for a writer to make durable once recovery
    /// has succeeded: the path, its lsn and the rebuilt bytes.
    rebuilt: Vec<(PathBuf, u64, Arc<[u8]>)>,
    /// The damage that made recovery skip the newest snapshot: the error to report if
    /// nothing older holds what it covered (a store that keeps no fallback).
    newest_damage: Option<Error>,
    sync_error: Option<Error>,
    report: RecoveryReport,
    /// Set when a reader's snapshot was superseded while it opened it (deleted, or its
    /// file being reused by the writer): the whole recovery is worth another attempt.
    superseded: &'a std::cell::Cell<bool>,
}

/// How many attempts in all a reader makes at its recovery when the writer superseded
/// the snapshot it was opening, or pruned a file it had listed (each attempt lists the
/// directory afresh).
const READER_ATTEMPTS_MAX: u32 = 8;

/// Recovers the store in `dir`. A writer (`writer = true`) holds the lock and may cut,
/// remove and create files; a reader changes nothing.
pub(crate) fn recover(
    storage: &dyn Storage,
    dir: &Path,
    options: &Options,
    writer: bool,
) -> Result<Recovered> {
    recover_up_to(storage, dir, options, writer, u64::MAX, None)
}

/// [`recover`], applying no record above `limit`. A reader whose snapshot a writer
/// superseded during the attempt (a checkpoint deleted it, or is reusing its file) tries
/// again, up to [`READER_ATTEMPTS_MAX`] attempts in all.
pub(crate) fn recover_up_to(
    storage: &dyn Storage,
    dir: &Path,
    options: &Options,
    writer: bool,
    limit: u64,
    closed: Option<Head>,
) -> Result<Recovered> {
    let superseded = std::cell::Cell::new(false);
    let mut attempt = 1;
    loop {
        superseded.set(false);
        let result = recover_once(storage, dir, options, writer, limit, closed, &superseded);
        // Besides a superseded snapshot: a file listed a moment ago and gone now (a
        // segment a checkpoint pruned while the reader replayed) means a stale listing.
        let stale = |error: &Error| {
            superseded.get()
                || matches!(error, Error::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound)
        };
        match result {
            Err(error) if !writer && stale(&error) && attempt < READER_ATTEMPTS_MAX => {
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn recover_once(
    storage: &dyn Storage,
    dir: &Path,
    options: &Options,
    writer: bool,
    limit: u64,
    closed: Option<Head>,
    superseded: &std::cell::Cell<bool>,
) -> Result<Recovered> {
    let started = Instant::now();
    let listing = list(storage, dir)?;
    let mut ctx = Ctx {
        storage,
        dir,
        options,
        writer,
        limit,
        closed,
        after_clean_close: false,
        tail: None,
        damaged_snapshots: Vec::new(),
        rebuilt: Vec::new(),
        newest_damage: None,
        sync_error: None,
        report: RecoveryReport::default(),
        superseded,
    };
    if !writer {
        ctx.report.temps_found = listing.temps.iter().map(|name| dir.join(name)).collect();
    }
    let base = ctx.load_snapshot(&listing)?;
    let mut version = Version {
        lsn: base.as_ref().map_or(0, |s| s.lsn()),
        base: base.clone(),
        ..Version::default()
    };
    ctx.report.snapshot_lsn = version.lsn;
    ctx.report.snapshot = base.as_ref().map(|s| s.path().to_path_buf());
    let mut store_id = base.as_ref().map(|s| s.header().store_id);
    let last_scan = ctx.replay(&listing, &mut version, &mut store_id)?;
    version.seal();
    let store_id = match store_id {
        Some(id) => id,
        // Snapshots existed but none validates, and no segment holds what they covered:
        // their state is lost, which is corruption, never a new empty store.
        None if !ctx.report.fallbacks.is_empty() => {
            let newest = listing.snapshots.last().map_or_else(
                || dir.to_path_buf(),
                |&lsn| dir.join(crate::snapshot::file_name(lsn)),
            );
            return Err(Error::corrupt(
                newest,
                0,
                format!(
                    "no snapshot validates and no WAL segment remains to replay ({})",
                    ctx.report.fallbacks.join("; ")
                ),
            ));
        }
        // No segment or snapshot yet (a crash while the store's first segment was being
        // created): the empty state, for a reader too. A reader never writes the id.
        None => crate::util::random_id(),
    };
    // Only now that recovery has succeeded does a writer change anything beyond what
    // replay itself must (a torn tail, salvage): a strict open that meets corruption
    // leaves every file as it was.
    if writer {
        ctx.remove_temps(&listing)?;
        for path in std::mem::take(&mut ctx.damaged_snapshots) {
            let moved = ctx.quarantine_file(&path)?;
            ctx.report.quarantined.push(moved);
            // Its sidecar, useless without it, goes with it.
            let lsn = crate::wal::segment::parse_numbered(
                &path.file_name().unwrap_or_default().to_string_lossy(),
                crate::snapshot::SUFFIX,
            );
            if let Some(sidecar) = lsn.map(|lsn| repair::sidecar_of(&path, lsn))
                && storage.exists(&sidecar).unwrap_or(false)
            {
                let moved = ctx.quarantine_file(&sidecar)?;
                ctx.report.quarantined.push(moved);
            }
        }
        for (path, lsn, bytes) in std::mem::take(&mut ctx.rebuilt) {
            let copy = repair::replace_damaged(storage, dir, &path, lsn, &bytes)?;
            if let Some(repair) = ctx.report.repaired.iter_mut().find(|r| r.snapshot == path) {
                repair.damaged_copy = Some(copy.clone());
            }
            ctx.report.quarantined.push(copy);
            // Read the rebuilt snapshot from its file from now on (mapped, not the copy on
            // the heap): the bytes are the same.
            if version
                .base
                .as_ref()
                .is_some_and(|base| base.path() == path)
                && let Ok(mapped) = open_snapshot(storage, &path, false)
            {
                version.base = Some(Arc::new(mapped));
            }
        }
    }
    let active = if writer {
        Some(ctx.open_active(last_scan, &version, store_id)?)
    } else {
        None
    };
    ctx.report.lsn = version.lsn;
    ctx.report.duration = started.elapsed();
    Ok(Recovered {
        version,
        store_id,
        active,
        tail: ctx.tail,
        sync_error: ctx.sync_error,
        after_clean_close: ctx.after_clean_close,
        report: ctx.report,
    })
}

impl Ctx<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Case 1.
    /// Case 1. Best effort: nothing ever reads a temporary, so one that cannot be
    /// removed (a failing disk) stays, listed in `temps_found`, and the open goes on.
    fn remove_temps(&mut self, listing: &DirListing) -> Result<()> {
        for name in &listing.temps {
            let path = self.path(name);
            match self.storage.remove_file(&path) {
                Ok(()) => self.report.temps_removed.push(path),
                Err(_) => self.report.temps_found.push(path),
            }
        }
        if !self.report.temps_removed.is_empty() {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<()> {
        self.storage
            .sync_dir(self.dir)
            .map_err(|e| Error::io("fsync directory", self.dir, e))
    }

    /// Cases 2 and 3: the newest snapshot that validates.
    fn load_snapshot(&mut self, listing: &DirListing) -> Result<Option<Arc<Snapshot>>> {
        for &lsn in listing.snapshots.iter().rev() {
            let path = self.path(&crate::snapshot::file_name(lsn));
            let opened = open_snapshot(self.storage, &path, self.options.verify_snapshot_on_open);
            // A reader whose snapshot's name is gone once it holds the lock (or failed to
            // open it) met a snapshot the writer superseded meanwhile: deleted it, or
            // renamed its file away to reuse it, maybe half written over (a failed or
            // killed rewrite releases its lock too). Whatever it read, it starts again
            // (snapshot::reuse, rule 4): the name, listed again, leads to the new one.
            if !self.writer && !self.still_listed(lsn) {
                self.superseded.set(true);
                return Err(opened.err().unwrap_or_else(|| {
                    Error::corrupt(&path, 0, "superseded while it was being opened")
                }));
            }
            match opened {
                Ok(snapshot) if snapshot.lsn() == lsn => return Ok(Some(Arc::new(snapshot))),
                // Still listed, but the writer holds its exclusive lock: it is about to
                // rename the file away for reuse.
                Err(Error::Io { op, path, source })
                    if !self.writer && source.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    self.superseded.set(true);
                    return Err(Error::Io { op, path, source });
                }
                Ok(snapshot) => {
                    let reason = format!("header says lsn {}, name says {lsn}", snapshot.lsn());
                    self.fall_back(&path, reason)?;
                }
                // A newer format is not damage: never move it aside.
                Err(error @ Error::UnsupportedVersion { .. }) => return Err(error),
                Err(error @ Error::Corrupt { .. }) => {
                    match repair::rebuild(self.storage, &path, lsn) {
                        Ok(rebuilt) => {
                            self.report.repaired.push(SnapshotRepair {
                                snapshot: path.clone(),
                                damage: error.to_string(),
                                pages: rebuilt.pages,
                                damaged_copy: None,
                            });
                            if self.writer {
                                self.rebuilt.push((path, lsn, rebuilt.bytes));
                            }
                            return Ok(Some(Arc::new(rebuilt.snapshot)));
                        }
                        Err(why) => {
                            // A writer in another process may have just put a rebuilt
                            // snapshot in place (its pages then match the sidecar): open
                            // the file again before giving up on it.
                            if !self.writer
                                && let Ok(again) = open_snapshot(
                                    self.storage,
                                    &path,
                                    self.options.verify_snapshot_on_open,
                                )
                                && again.lsn() == lsn
                            {
                                return Ok(Some(Arc::new(again)));
                            }
                            self.fall_back(&path, format!("{error}; not rebuilt: {why}"))?;
                            if let Error::Corrupt {
                                file,
                                offset,
                                reason,
                            } = error
                            {
                                let why = format!("{reason}; not rebuilt: {why}");
                                self.newest_damage
                                    .get_or_insert(Error::corrupt(file, offset, why));
                            }
                        }
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// Whether the directory still lists snapshot `lsn` (a failed listing counts as yes).
    fn still_listed(&self, lsn: u64) -> bool {
        list(self.storage, self.dir).map_or(true, |listing| listing.snapshots.contains(&lsn))
    }

    fn fall_back(&mut self, path: &Path, reason: String) -> Result<()> {
        self.report
            .fallbacks
            .push(format!("skipped snapshot {}: {reason}", path.display()));
        // Moved into quarantine only once recovery has succeeded without it: a failed
        // recovery changes nothing, and never turns "damaged" into "absent".
        self.damaged_snapshots.push(path.to_path_buf());
        Ok(())
    }

    /// Moves a whole file into `quarantine/`.
    fn quarantine_file(&self, path: &Path) -> Result<PathBuf> {
        quarantine::move_file(self.storage, self.dir, path)
    }

    fn quarantine_target(&self, name: &str) -> Result<PathBuf> {
        quarantine::target(self.storage, self.dir, name)
    }

    /// Cases 4 to 12: replays the WAL after the version's lsn. Returns the last segment's
    /// scan (for the writer to continue), if any segment remains.
    fn replay(
        &mut self,
        listing: &DirListing,
        version: &mut Version,
        store_id: &mut Option<StoreId>,
    ) -> Result<Option<SegmentScan>> {
        let segments = &listing.segments;
        let start_lsn = version.lsn + 1;
        let first_needed = segments
            .partition_point(|&first| first <= start_lsn)
            .saturating_sub(1);
        let mut last_scan = None;
        let mut batch = ReplayBatch::default();
        // One buffer for every segment (no fresh pages to fault in for each).
        let mut bytes = Vec::new();
        let mut batch_reserved = 0usize;
        let mut needed = segments
            .get(first_needed..)
            .unwrap_or_default()
            .iter()
            .peekable();
        while let Some(&first_lsn) = needed.next() {
            let is_last = needed.peek().is_none();
            let path = self.path(&segment::file_name(first_lsn));
            read_all_into(self.storage, &path, &mut bytes)?;
            // About as many bytes of keys and values as of records; reserved ahead for
            // every segment left (address space only: no realloc copies on the way).
            if batch.bytes() + bytes.len() > batch_reserved {
                let ahead = bytes.len().saturating_mul(needed.len() + 1);
                batch.reserve(ahead.min(RESERVE_AHEAD_MAX));
                batch_reserved = batch.bytes() + ahead.min(RESERVE_AHEAD_MAX);
            }
            if is_last && bytes.len() < HEADER_BYTES {
                self.torn_segment(&path, bytes.len())?;
                break;
            }
            let scanned = scan::scan(&bytes, &path)?;
            self.check_segment(
                &scanned,
                first_lsn,
                version.lsn,
                self.report.segments_read == 0,
                store_id,
            )?;
            self.report.segments_read += 1;
            let cut = match &scanned.end {
                SegmentEnd::Clean => None,
                SegmentEnd::Torn { offset, reason } if is_last => {
                    Some(self.torn_tail(&scanned, &bytes, *offset, reason)?)
                }
                SegmentEnd::Torn { offset, reason } | SegmentEnd::Corrupt { offset, reason } => {
                    let reason = if matches!(scanned.end, SegmentEnd::Torn { .. }) {
                        format!("{reason}; segment is not the last, so it was durable")
                    } else {
                        reason.clone()
                    };
                    self.corruption(
                        &scanned,
                        &bytes,
                        *offset,
                        reason,
                        needed.clone().copied().collect(),
                    )?;
                    None
                }
            };
            let mut limited = false;
            for record in &scanned.records {
                if record.lsn <= version.lsn {
                    continue;
                }
                if record.lsn > self.limit {
                    self.tail = Some((first_lsn, record.offset));
                    limited = true;
                    break;
                }
                let payload = bytes.get(record.payload.clone()).unwrap_or_default();
                if kv_batch::decode_into(payload, &mut batch) {
                    version.lsn = record.lsn;
                    self.report.records_replayed += 1;
                    continue;
                }
                // The general path reads the state: the batch goes in first.
                apply_batch(version, &mut batch);
                let ops: Vec<Op> = postcard::from_bytes(payload).map_err(|e| {
                    Error::corrupt(
                        &path,
                        record.offset,
                        format!(
                            "record lsn {} passed its checksum but does not decode: {e}",
                            record.lsn
                        ),
                    )
                })?;
                for op in &ops {
                    op.apply(version)?;
                }
                version.lsn = record.lsn;
                self.report.records_replayed += 1;
            }
            if limited {
                break;
            }
            self.tail = Some((first_lsn, scanned.valid_end));
            let salvaged = self.report.salvage.is_some();
            last_scan = Some(scanned);
            if cut.is_some() || salvaged {
                break;
            }
        }
        apply_batch(version, &mut batch);
        Ok(last_scan)
    }

    /// Cases 4, 5, 6.
    fn check_segment(
        &self,
        scanned: &SegmentScan,
        first_lsn: u64,
        lsn: u64,
        first_read: bool,
        store_id: &mut Option<StoreId>,
    ) -> Result<()> {
        let path = &scanned.path;
        if scanned.header.lsn != first_lsn {
            return Err(Error::corrupt(
                path,
                32,
                format!(
                    "header first lsn {} disagrees with the file name",
                    scanned.header.lsn
                ),
            ));
        }
        match store_id {
            Some(id) if *id != scanned.header.store_id => {
                return Err(Error::corrupt(
                    path,
                    16,
                    "segment belongs to another store (store id differs)",
                ));
            }
            Some(_) => {}
            None => *store_id = Some(scanned.header.store_id),
        }
        if first_lsn > lsn + 1 {
            // The first segment the state needs is gone after a snapshot was skipped:
            // that snapshot covered it, so its damage is the cause to report. (A gap
            // further on is a missing segment, whatever happened to the snapshots.)
            if let Some(Error::Corrupt {
                file,
                offset,
                reason,
            }) = self.newest_damage.as_ref().filter(|_| first_read)
            {
                return Err(Error::corrupt(
                    file,
                    *offset,
                    match &self.report.snapshot {
                        Some(older) => format!(
                            "{reason}; nothing to fall back on: the older snapshot {} covers \
                             lsn {lsn}, but the WAL after it starts at lsn {first_lsn} ({}): \
                             lsn {} to {} are in no file",
                            older.display(),
                            path.display(),
                            lsn + 1,
                            first_lsn - 1
                        ),
                        None => format!(
                            "{reason}; nothing to fall back on: no older snapshot, and the WAL \
                             starts at lsn {first_lsn} ({}): lsn 1 to {} are in no file (a \
                             fallback is kept only with keep_fallback(true))",
                            path.display(),
                            first_lsn - 1
                        ),
                    },
                ));
            }
            return Err(Error::corrupt(
                path,
                32,
                format!(
                    "missing WAL: the state is at lsn {lsn}, but this segment starts at lsn {first_lsn}"
                ),
            ));
        }
        // Only the first segment read may start before the state's lsn (the snapshot
        // covers its start); any later one must continue exactly where the last ended.
        if !first_read && first_lsn != lsn + 1 {
            return Err(Error::corrupt(
                path,
                32,
                format!(
                    "segments overlap: the previous one ends at lsn {lsn}, this one starts at lsn {first_lsn}"
                ),
            ));
        }
        Ok(())
    }

    /// Case 8.
    fn torn_segment(&mut self, path: &Path, len: usize) -> Result<()> {
        self.report.torn_tail = Some(TornTail {
            file: path.to_path_buf(),
            offset: 0,
            bytes_cut: len as u64,
            reason: format!(
                "segment of {len} bytes is shorter than its {HEADER_BYTES}-byte header"
            ),
        });
        if self.writer {
            self.storage
                .remove_file(path)
                .map_err(|e| Error::io("remove", path, e))?;
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Case 10.
    fn torn_tail(
        &mut self,
        scanned: &SegmentScan,
        bytes: &[u8],
        offset: u64,
        reason: &str,
    ) -> Result<u64> {
        let nonzero_end = bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(offset, |at| at as u64 + 1);
        let bytes_cut = nonzero_end.saturating_sub(offset);
        self.report.torn_tail = Some(TornTail {
            file: scanned.path.clone(),
            offset,
            bytes_cut,
            reason: reason.to_owned(),
        });
        if self.writer {
            self.cut(&scanned.path, offset)?;
            self.report.bytes_truncated += bytes_cut;
        }
        Ok(offset)
    }

    /// Truncates a segment at `offset`, re-extends its preallocation with zeros, syncs.
    fn cut(&self, path: &Path, offset: u64) -> Result<()> {
        let file = self
            .storage
            .open_file(path, OpenMode::ReadWrite)
            .map_err(|e| Error::io("open", path, e))?;
        file.set_len(offset)
            .map_err(|e| Error::io("truncate", path, e))?;
        let _ = file.set_len(offset.max(self.options.segment_bytes));
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", path, e))
    }

    /// Cases 7 and 11.
    fn corruption(
        &mut self,
        scanned: &SegmentScan,
        bytes: &[u8],
        offset: u64,
        reason: String,
        later: Vec<u64>,
    ) -> Result<()> {
        if self.options.recovery == RecoveryMode::Strict || !self.writer {
            return Err(Error::Corrupt {
                file: scanned.path.clone(),
                offset,
                reason,
            });
        }
        let mut salvage = SalvageReport {
            file: scanned.path.clone(),
            offset,
            reason,
            bytes_cut: 0,
            lsn_range: None,
            quarantined: Vec::new(),
            touched: Vec::new(),
        };
        // The cut bytes up to the last non-zero one (the rest is unused preallocation).
        let tail = bytes.get(offset as usize..).unwrap_or_default();
        let tail = tail
            .get(..tail.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1))
            .unwrap_or_default();
        salvage.bytes_cut = tail.len() as u64;
        salvage.collect_touched(tail);
        let name = scanned
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let target = self.quarantine_target(&format!("{name}.at-{offset}.cut"))?;
        write_durable(self.storage, &target, tail)?;
        salvage.quarantined.push(target);
        for first_lsn in later {
            let path = self.path(&segment::file_name(first_lsn));
            let later_bytes = read_all(self.storage, &path)?;
            salvage.bytes_cut += later_bytes.len() as u64;
            salvage.collect_touched(later_bytes.get(HEADER_BYTES..).unwrap_or_default());
            salvage.quarantined.push(self.quarantine_file(&path)?);
        }
        self.cut(&scanned.path, offset)?;
        self.report.bytes_truncated += salvage.bytes_cut;
        self.report.salvage = Some(salvage);
        Ok(())
    }

    /// The segment the writer appends to: the last one, or a new one after the state.
    fn open_active(
        &mut self,
        last: Option<SegmentScan>,
        version: &Version,
        store_id: StoreId,
    ) -> Result<ActiveSegment> {
        if let Some(scanned) = last.filter(|s| s.last_lsn() == version.lsn) {
            let file = self
                .storage
                .open_file(&scanned.path, OpenMode::ReadWrite)
                .map_err(|e| Error::io("open", &scanned.path, e))?;
            // The records replayed may sit only in the page cache (the last process died
            // before its fsync, or wrote with Durability::None): make them durable before
            // anything claims, through `durable_lsn`, that they are.
            // If that fails (a full disk that must still allocate the cached blocks), the
            // store opens poisoned: it reads, but acknowledges nothing.
            // Unless the last writer closed cleanly at exactly this lsn, and this is the
            // segment it left (not a copy): it synced everything it wrote, and wrote
            // nothing after (live-readers.md).
            self.after_clean_close = self.closed.is_some_and(|head| {
                head.store_id == store_id
                    && head.lsn == version.lsn
                    && head.closed.is_some()
                    && head.closed == file.stamp().ok()
            }) && self.report.torn_tail.is_none()
                && self.report.salvage.is_none();
            if !self.after_clean_close
                && let Err(e) = file.sync_data()
            {
                self.sync_error = Some(Error::io("fdatasync", &scanned.path, e));
            }
            let write_offset = match (&self.report.torn_tail, &self.report.salvage) {
                (Some(torn), _) if torn.file == scanned.path => torn.offset,
                (_, Some(salvage)) if salvage.file == scanned.path => salvage.offset,
                _ => scanned.valid_end,
            };
            return Ok(ActiveSegment::new(
                scanned.path,
                file,
                scanned.header.lsn,
                write_offset,
            ));
        }
        self.report.created_segment = true;
        segment::create(
            self.storage,
            self.dir,
            store_id,
            version.lsn + 1,
            self.options.segment_bytes,
        )
    }
}

/// Most bytes of replayed changes reserved at once.
const RESERVE_AHEAD_MAX: usize = 1 << 30;

/// Moves the changes of `batch` into `version`: as its replayed layer while nothing
/// else is above the base (the common case: one batch for the whole WAL), else one by
/// one into the active overlay, in the order they were made.
fn apply_batch(version: &mut Version, batch: &mut ReplayBatch) {
    if batch.is_empty() {
        return;
    }
    let batch = std::mem::take(batch);
    if version.active.is_empty()
        && version.stack.is_empty()
        && version.frozen.is_none()
        && version.replayed.is_none()
    {
        version.replayed = Some(Arc::new(batch.finish()));
        return;
    }
    for (key, value) in batch.changes() {
        version.set(key.to_vec(), value.map(<[u8]>::to_vec));
    }
}

/// Opens and checks a snapshot file.
pub(crate) fn open_snapshot(
    storage: &dyn Storage,
    path: &Path,
    verify_all: bool,
) -> Result<Snapshot> {
    let file = storage
        .open_file(path, OpenMode::Read)
        .map_err(|e| Error::io("open", path, e))?;
    // Held while mapped: the writer reuses a superseded snapshot's file only under an
    // exclusive lock (snapshot::reuse). Without lock support, neither side locks.
    match file.try_lock(false) {
        Ok(true) => {}
        Err(error) if error.kind() == std::io::ErrorKind::Unsupported => {}
        Ok(false) => {
            let reused = std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the writer is reusing this superseded snapshot's file",
            );
            return Err(Error::io("lock", path, reused));
        }
        Err(error) => return Err(Error::io("lock", path, error)),
    }
    let map = file.map().map_err(|e| Error::io("mmap", path, e))?;
    let snapshot = Snapshot::open(path, map)?.holding(file);
    if verify_all {
        snapshot.verify_all()?;
    }
    Ok(snapshot)
}

/// Reads a file up to the end of its written data: a trailing hole (unused
/// preallocation) reads as zeros, and no verdict depends on trailing zeros.
pub(crate) fn read_all(storage: &dyn Storage, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    read_all_into(storage, path, &mut bytes)?;
    Ok(bytes)
}

/// [`read_all`] into `bytes` (its previous content replaced).
fn read_all_into(storage: &dyn Storage, path: &Path, bytes: &mut Vec<u8>) -> Result<()> {
    let file = storage
        .open_file(path, OpenMode::Read)
        .map_err(|e| Error::io("open", path, e))?;
    let full_len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let data_len = file
        .data_len()
        .map_err(|e| Error::io("seek data", path, e))?;
    // At least the header: a header that is a hole reads as zeros, which is damage to
    // it, exactly as written zeros would be.
    let len = data_len.max(full_len.min(HEADER_BYTES as u64));
    bytes.clear();
    bytes.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
    file.read_exact_at(bytes, 0)
        .map_err(|e| Error::io("read", path, e))
}

/// Writes a new file and makes it durable.
fn write_durable(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = storage
        .open_file(path, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all_at(bytes, 0)
        .map_err(|e| Error::io("write", path, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", path, e))?;
    if let Some(parent) = path.parent() {
        storage
            .sync_dir(parent)
            .map_err(|e| Error::io("fsync directory", parent, e))?;
    }
    Ok(())
}
