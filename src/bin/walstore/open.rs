//! Opening a store the way each kind of command needs.
//!
//! Readers (dump, verify, stats, backup) take no writer lock (only shared locks on the
//! snapshots they map), write nothing and never create
//! DIR; a missing directory or one without store files is "not a store" (exit 1).
//! Writers (import, recover, checkpoint) take the lock and fail at once (exit 1) when
//! another process holds it; the library's error names the holder. A strict writer
//! that meets corruption changes nothing (see [`strict_dry_run`]).

use std::path::{Path, PathBuf};

use walstore::storage::FsStorage;
use walstore::{Durability, RecoveryMode, Store};

use crate::CliResult;

/// Opens `dir` read-only.
pub fn reader(dir: &Path) -> CliResult<Store> {
    Ok(Store::options().read_only(true).open(dir)?)
}

/// How a writer opens the store.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Create DIR and a new store when missing (import only).
    pub create: bool,
    /// The default durability of commits.
    pub durability: Durability,
    /// What recovery does with mid-log corruption.
    pub recovery: RecoveryMode,
    /// Whether checkpoints keep the previous snapshot and the WAL since it.
    pub keep_fallback: bool,
    /// Check every block of the snapshot at open (falling back to an older one if kept).
    pub verify_snapshot: bool,
}

/// Opens `dir` for writing: takes the lock and recovers.
pub fn writer(dir: &Path, options: WriterOptions) -> CliResult<Store> {
    Ok(writer_or_library_error(dir, options)?)
}

/// [`writer`], keeping the library's error for the caller to inspect.
pub fn writer_or_library_error(dir: &Path, options: WriterOptions) -> walstore::Result<Store> {
    let store = writer_maybe_poisoned(dir, options)?;
    // A writer that opened poisoned (its open-time sync failed) writes nothing: say why
    // now, instead of a bare "poisoned" from the first write.
    match store.poison_cause() {
        Some(cause) => Err(cause),
        None => Ok(store),
    }
}

/// Opens `dir` for writing; the store may have opened poisoned (`Store::poison_cause`),
/// with its recovery done and reported.
pub fn writer_maybe_poisoned(dir: &Path, options: WriterOptions) -> walstore::Result<Store> {
    if options.recovery == RecoveryMode::Strict {
        strict_dry_run(dir, options.verify_snapshot)?;
    }
    Store::options()
        .create(options.create)
        .durability(options.durability)
        .recovery(options.recovery)
        .keep_fallback(options.keep_fallback)
        .verify_snapshot_on_open(options.verify_snapshot)
        .open(dir)
}

/// A writer's recovery changes no store file until it has succeeded, but taking the
/// lock rewrites `LOCK`'s holder information, and the contract says a failing strict
/// command changes nothing at all. So a read-only recovery (which writes nothing) looks
/// for corruption first. Skipped where there is no store yet (import creates one) and
/// while another process holds the lock: the writer open then fails with "locked",
/// which is the error the user must see. The cost is reading the WAL twice at open.
fn strict_dry_run(dir: &Path, verify_snapshot: bool) -> walstore::Result<()> {
    if walstore::lock_holder(&FsStorage, dir).is_ok_and(|holder| holder.is_some()) {
        return Ok(());
    }
    let dry_run = Store::options()
        .read_only(true)
        .verify_snapshot_on_open(verify_snapshot);
    match dry_run.open(dir) {
        Err(
            error @ (walstore::Error::Corrupt { .. } | walstore::Error::UnsupportedVersion { .. }),
        ) => Err(error),
        // Not a store yet, or an I/O error: the writer open decides and reports.
        _ => Ok(()),
    }
}

/// The arguments of the commands that take only a store and `--json` (checkpoint, dump,
/// stats, verify).
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The store directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}
