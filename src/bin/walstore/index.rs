//! `walstore index SRC [--store DIR]`: index a source tree (the README's main job).

use std::path::PathBuf;

use crate::CliResult;
use crate::failure::CliError;
use crate::indexer::{self, RunSummary, Settings};
use crate::open::{self, WriterOptions};
use crate::output::{self, Out};
use crate::progress::Progress;

/// Arguments of `walstore index`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The source tree to index (`.gitignore` and hidden-file rules apply).
    #[arg(default_value = ".")]
    pub src: PathBuf,
    /// The store directory (default: SRC/.walstore).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Skip files larger than this many bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_file_bytes: u64,
    /// Files per transaction.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_files: u64,
    /// Print the summary as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Keep the previous snapshot and the WAL since it after each checkpoint, as a
    /// fallback should the newest snapshot be damaged (off by default, as in the
    /// library: everything an index store holds can be rebuilt from SRC, and the
    /// fallback doubles its size).
    #[arg(long)]
    pub keep_fallback: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> CliResult {
    let src = args
        .src
        .canonicalize()
        .map_err(|e| CliError::failed(format!("{}: {e}", args.src.display())))?;
    if !src.is_dir() {
        return Err(CliError::failed(format!(
            "{} is not a directory",
            src.display()
        )));
    }
    let store_dir = args.store.clone().unwrap_or_else(|| src.join(".walstore"));
    let store = open::writer(
        &store_dir,
        WriterOptions {
            create: true,
            durability: walstore::Durability::Immediate,
            recovery: walstore::RecoveryMode::Strict,
            keep_fallback: args.keep_fallback,
            verify_snapshot: false,
        },
    )?;
    let settings = Settings {
        src,
        max_file_bytes: args.max_file_bytes,
        batch_files: usize::try_from(args.batch_files).unwrap_or(usize::MAX),
        batch_bytes: 16 * 1024 * 1024,
        keep_fallback: args.keep_fallback,
    };
    let progress = Progress::counter("indexing");
    let mut summary = indexer::run(&store, &settings, &store_dir, &|n| progress.inc(n))?;
    summary.resumed_run = store.recovery_report().interrupted_run.clone();
    drop(progress);
    // Leave the store quick to open: the run's FTS deltas are cheap to log but costly to
    // replay, so fold them into a snapshot when anything changed.
    if summary.new + summary.changed + summary.removed > 0 {
        store.checkpoint()?;
    }
    store.close()?;
    let mut out = Out::new();
    if args.json {
        out.json(&summary)?;
    } else {
        if let Some(run) = &summary.resumed_run {
            out.line(format!(
                "resumed a run interrupted after {} of {} files (pid {} on host {}, started {} UTC)",
                run.done_files,
                run.planned_files.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                run.pid,
                run.host,
                walstore::format_unix_ms(run.started_unix_ms)
            ))?;
        }
        out.line(summary_line(&settings, &summary))?;
    }
    out.finish()
}

/// `indexed SRC: scanned N, new N, changed N, removed N, unchanged N, read X, T s (lsn L)`.
fn summary_line(settings: &Settings, summary: &RunSummary) -> String {
    format!(
        "indexed {}: scanned {}, new {}, changed {}, removed {}, unchanged {}, skipped {}, read {}, {:.2} s (lsn {})",
        output::shown(&settings.src),
        summary.scanned,
        summary.new,
        summary.changed,
        summary.removed,
        summary.unchanged,
        summary.skipped,
        output::bytes(summary.bytes_read),
        summary.duration_ms as f64 / 1000.0,
        summary.lsn
    )
}
