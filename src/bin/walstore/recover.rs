//! `walstore recover DIR [--salvage] [--json]`: take the lock, run recovery, report.
//!
//! Recovery discards a torn tail and removes the store's own stray temporary files.
//! Without `--salvage`, corruption in the middle of the log is an error (exit 1) and
//! nothing is changed. With it, the log is cut back to the last intact transaction
//! before the damage, the cut bytes are moved into `DIR/quarantine/`, and the report
//! lists the lsns, bytes and keys that were cut, so the caller can re-index them.

use std::path::{Path, PathBuf};

use walstore::{Durability, RecoveryMode, RecoveryReport, SalvageReport};

use crate::CliResult;
use crate::failure::CliError;
use crate::open::{self, WriterOptions};
use crate::output::{Out, bytes, quoted, shown};
use crate::progress::Progress;

/// Arguments of `recover`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Cut mid-log corruption away (into DIR/quarantine/) instead of failing.
    #[arg(long)]
    salvage: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// Runs `recover`.
pub fn run(args: &Args) -> CliResult {
    let report = {
        let _progress = Progress::spinner(format!("recovering {}", args.dir.display()));
        let store = open::writer_maybe_poisoned(
            &args.dir,
            WriterOptions {
                create: false,
                durability: Durability::Immediate,
                recovery: if args.salvage {
                    RecoveryMode::Salvage
                } else {
                    RecoveryMode::Strict
                },
                // A recovery writes no checkpoint.
                keep_fallback: false,
                verify_snapshot: true,
            },
        )
        .map_err(|e| with_salvage_hint(e, &args.dir, args.salvage))?;
        let report = store.recovery_report().clone();
        // Recovery ran (and salvage may have cut) even if the open's final sync failed:
        // report what it did, then the failure.
        let poisoned = store.poison_cause();
        if poisoned.is_none() {
            store.close()?;
        }
        (report, poisoned)
    };
    let (report, poisoned) = report;
    let mut out = Out::new();
    if args.json {
        out.json(&report)?;
    } else {
        write_text(&mut out, &args.dir, &report, args.salvage)?;
    }
    out.finish()?;
    match poisoned {
        Some(cause) => Err(cause.into()),
        None => Ok(()),
    }
}

/// Points a strict recovery that met corruption in the WAL at `--salvage` (which cuts
/// only the WAL: it cannot help a damaged snapshot).
fn with_salvage_hint(error: walstore::Error, dir: &Path, salvage: bool) -> CliError {
    let in_wal = matches!(&error, walstore::Error::Corrupt { file, .. }
        if file.extension().is_some_and(|ext| ext == "wal"));
    if salvage || !in_wal {
        return error.into();
    }
    CliError::failed(format!(
        "{error}; nothing was changed; `walstore recover {} --salvage` cuts the log back to the last intact transaction",
        dir.display()
    ))
}

fn write_text(out: &mut Out, dir: &Path, report: &RecoveryReport, salvage: bool) -> CliResult {
    out.line(format!("recovered {} to lsn {}", shown(dir), report.lsn))?;
    match &report.snapshot {
        Some(path) => out.line(format!(
            "  snapshot: {} (lsn {})",
            shown(path),
            report.snapshot_lsn
        ))?,
        None => out.line("  snapshot: none")?,
    }
    out.line(format!(
        "  replayed {} transactions from {} WAL segments",
        report.records_replayed, report.segments_read
    ))?;
    let mut repaired = false;
    if let Some(torn) = &report.torn_tail {
        repaired = true;
        out.line(format!(
            "torn tail discarded: {} at offset {}, {} cut ({})",
            shown(&torn.file),
            torn.offset,
            bytes(torn.bytes_cut),
            torn.reason
        ))?;
    }
    for path in &report.temps_removed {
        repaired = true;
        out.line(format!("removed stray temporary file: {}", shown(path)))?;
    }
    for fallback in &report.fallbacks {
        repaired = true;
        out.line(format!("snapshot fallback: {fallback}"))?;
    }
    for rebuilt in &report.repaired {
        repaired = true;
        out.line(format!(
            "snapshot rebuilt from its parity sidecar: {} ({} pages of 4 KiB; damage found: {})",
            shown(&rebuilt.snapshot),
            rebuilt.pages.len(),
            rebuilt.damage
        ))?;
    }
    for path in &report.quarantined {
        let copied = report
            .repaired
            .iter()
            .any(|r| r.damaged_copy.as_deref() == Some(path.as_path()));
        let what = if copied {
            "copied the damaged snapshot's bytes to"
        } else {
            "moved damaged file to"
        };
        out.line(format!("{what}: {}", shown(path)))?;
    }
    if report.created_segment {
        out.line("created a new WAL segment")?;
    }
    match &report.salvage {
        Some(cut) => write_salvage(out, cut, report.lsn)?,
        None if salvage => out.line("salvage: no mid-log corruption, nothing cut")?,
        None if !repaired => out.line("nothing to repair")?,
        None => {}
    }
    Ok(())
}

fn write_salvage(out: &mut Out, cut: &SalvageReport, lsn: u64) -> CliResult {
    out.line(format!(
        "SALVAGED: corruption in {} at offset {}: {}",
        shown(&cut.file),
        cut.offset,
        cut.reason
    ))?;
    match cut.lsn_range {
        Some((first, last)) => out.line(format!(
            "  transactions cut: lsn {}..={last} (the damaged one, then intact records {first}..={last} found in the cut bytes)",
            lsn + 1
        ))?,
        None => out.line(format!("  transactions cut: from lsn {} (no intact record in the cut bytes)", lsn + 1))?,
    }
    out.line(format!(
        "  bytes cut: {}..{} of the log from {} ({})",
        cut.offset,
        cut.offset.saturating_add(cut.bytes_cut),
        shown(&cut.file),
        bytes(cut.bytes_cut)
    ))?;
    for path in &cut.quarantined {
        out.line(format!("  moved to: {}", shown(path)))?;
    }
    if cut.touched.is_empty() {
        out.line("  touched: nothing known (no intact record decoded)")?;
    } else {
        out.line("  touched by the cut transactions (re-index these):")?;
        for (collection, key) in &cut.touched {
            out.line(format!("    {collection} {}", quoted(key)))?;
        }
    }
    Ok(())
}
