//! `walstore verify DIR [--json]`: a read-only check of every byte of every store file.
//!
//! Exit 0 when consistent; a torn tail and stray temporary files are reported but are
//! not corruption (recovery repairs them). Exit 1 when anything is corrupt, with one
//! `error:` line naming the first corrupt file and offset. Never takes the lock, never
//! writes.

use walstore::storage::FsStorage;
use walstore::{Problem, ProblemKind, VerifyReport};

use crate::CliResult;
use crate::failure::CliError;
use crate::output::{Out, shown};
use crate::progress::Progress;

/// Arguments of `verify`: the store and `--json`.
pub use crate::open::StoreArgs as Args;

/// Runs `verify`.
pub fn run(args: &Args) -> CliResult {
    let report = {
        let _progress = Progress::spinner(format!("verifying {}", args.dir.display()));
        walstore::verify(&FsStorage, &args.dir)?
    };
    let mut out = Out::new();
    if args.json {
        let mut json = serde_json::to_value(&report)
            .map_err(|e| CliError::failed(format!("encoding the report: {e}")))?;
        if let Some(object) = json.as_object_mut() {
            object.insert("consistent".into(), (!report.is_corrupt()).into());
        }
        out.json(&json)?;
    } else {
        write_text(&mut out, &report)?;
    }
    out.finish()?;
    match report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Corrupt)
    {
        None => Ok(()),
        Some(first) => {
            let count = report
                .problems
                .iter()
                .filter(|p| p.kind == ProblemKind::Corrupt)
                .count();
            Err(CliError::failed(format!(
                "store {} is corrupt ({count} corrupt {}): {}: {}",
                args.dir.display(),
                if count == 1 { "place" } else { "places" },
                location(first),
                first.detail
            )))
        }
    }
}

/// `FILE at offset N`, or `FILE` when the problem has no offset.
fn location(problem: &Problem) -> String {
    match problem.offset {
        Some(offset) => format!("{} at offset {offset}", shown(&problem.file)),
        None => shown(&problem.file),
    }
}

fn write_text(out: &mut Out, report: &VerifyReport) -> CliResult {
    out.line(format!(
        "checked {}: {} snapshots ({} entries), {} WAL segments ({} records); {}",
        shown(&report.dir),
        report.snapshots_checked,
        report.snapshot_entries_checked,
        report.segments_checked,
        report.records_checked,
        if report.is_corrupt() {
            "does not recover as it is".to_owned()
        } else {
            format!("recovers to lsn {}", report.lsn)
        }
    ))?;
    for problem in &report.problems {
        let kind = match problem.kind {
            ProblemKind::Corrupt => "CORRUPT",
            ProblemKind::TornTail => "torn tail (not corruption)",
            ProblemKind::StrayTemp => "stray temporary file (not corruption)",
            ProblemKind::ParityDamaged => "damaged parity sidecar (nothing lost)",
            _ => "problem",
        };
        out.line(format!("{kind}: {}", location(problem)))?;
        out.line(format!("  found: {}", problem.detail))?;
        out.line(format!("  why: {}", problem.why))?;
    }
    let verdict = if report.is_corrupt() {
        "result: CORRUPT"
    } else if report.problems.is_empty() {
        "result: consistent"
    } else if report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::ParityDamaged)
    {
        "result: consistent, but a parity sidecar is damaged: its snapshot could not be rebuilt from it (the next checkpoint that writes a snapshot, after a commit, writes a new one); check the disk"
    } else {
        "result: consistent (`walstore recover` discards the torn tail and removes stray temporary files)"
    };
    out.line(verdict)
}
