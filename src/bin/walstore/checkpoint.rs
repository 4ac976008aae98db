//! `walstore checkpoint DIR [--json]`: take the lock, write a snapshot of the current
//! state and drop the WAL it makes unnecessary.
//!
//! Older snapshots and the WAL the new one covers are deleted; with `--keep-fallback`,
//! the previous snapshot and the WAL since it stay (so a damaged newest snapshot can fall
//! back).

use std::path::PathBuf;

use walstore::{Durability, RecoveryMode};

use crate::CliResult;
use crate::open::{self, WriterOptions};
use crate::output::{Out, bytes, shown};
use crate::progress::Progress;

/// Arguments of `checkpoint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Keep the previous snapshot and the WAL since it, as a fallback should the new
    /// snapshot be damaged (about twice the disk space).
    #[arg(long)]
    pub keep_fallback: bool,
}

/// Runs `checkpoint`.
pub fn run(args: &Args) -> CliResult {
    let report = {
        let _progress = Progress::spinner(format!("checkpointing {}", args.dir.display()));
        let store = open::writer(
            &args.dir,
            WriterOptions {
                create: false,
                durability: Durability::Immediate,
                recovery: RecoveryMode::Strict,
                keep_fallback: args.keep_fallback,
                verify_snapshot: false,
            },
        )?;
        let report = store.checkpoint()?;
        store.close()?;
        report
    };
    let mut out = Out::new();
    if args.json {
        out.json(&report)?;
    } else if report.written {
        out.line(format!(
            "checkpoint of {} at lsn {}: snapshot of {} entries, {}",
            shown(&args.dir),
            report.lsn,
            report.entries,
            bytes(report.bytes)
        ))?;
        out.line(format!(
            "  deleted {} WAL segments and {} old snapshots",
            report.segments_deleted, report.snapshots_deleted
        ))?;
        if let Some(base) = &report.base_rebuilt {
            out.line(format!(
                "  the snapshot it was written from, {}, was damaged: rebuilt from its parity sidecar",
                shown(base)
            ))?;
        }
        if let Some(moved) = &report.base_quarantined {
            out.line(format!("  its damaged bytes are in {}", shown(moved)))?;
        }
    } else {
        out.line(format!(
            "checkpoint of {}: nothing to do, the snapshot at lsn {} is current",
            shown(&args.dir),
            report.lsn
        ))?;
    }
    out.finish()
}
