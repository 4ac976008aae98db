//! `walstore backup DIR DEST [--json]`: a consistent copy of the live store.
//!
//! DIR is opened read-only (no writer lock), so a writer may keep committing meanwhile; the
//! copy is the state at one lsn, written into DEST as a fresh snapshot and an empty WAL
//! segment, so `walstore verify DEST` passes. DEST must not already hold a store.

use std::path::PathBuf;

use crate::CliResult;
use crate::open;
use crate::output::{Out, bytes, shown};
use crate::progress::Progress;

/// Arguments of `backup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory to copy.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Where to write the copy (created if missing; must not hold a store).
    #[arg(value_name = "DEST")]
    dest: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// Runs `backup`.
pub fn run(args: &Args) -> CliResult {
    let report = {
        let _progress = Progress::spinner(format!("backing up {}", args.dir.display()));
        let store = open::reader(&args.dir)?;
        store.backup(&args.dest)?
    };
    let mut out = Out::new();
    if args.json {
        out.json(&report)?;
    } else {
        out.line(format!(
            "backup of {} at lsn {} written to {}: {} entries, {}",
            shown(&args.dir),
            report.lsn,
            shown(&args.dest),
            report.entries,
            bytes(report.bytes)
        ))?;
    }
    out.finish()
}
