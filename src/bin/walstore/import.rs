//! `walstore import DIR [FILE] [--durability immediate|none] [--checkpoint-every N]`
//!
//! Each non-empty line of FILE (or stdin) is one transaction, committed atomically;
//! `committed <lsn>` is printed and flushed after each. The first malformed line stops
//! the import with exit 2: the lines before it stay committed, nothing of it or after
//! it is applied.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use walstore::{Durability, RecoveryMode, Store};

use crate::CliResult;
use crate::failure::CliError;
use crate::json_line;
use crate::open::{self, WriterOptions};
use crate::output::Out;
use crate::progress::Progress;

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// JSON-lines file of transactions; stdin when absent.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// When a commit returns: `immediate` (durable, fsync done) or `none` (synced once
    /// at the end).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Immediate)]
    durability: DurabilityArg,
    /// Checkpoint after every N transactions of this import (0: only the store's
    /// automatic threshold).
    #[arg(long, value_name = "N", default_value_t = 0)]
    checkpoint_every: u64,
    /// Keep the previous snapshot and the WAL since it at each checkpoint, as a fallback
    /// should the newest snapshot be damaged (about twice the disk space).
    #[arg(long)]
    keep_fallback: bool,
}

/// `--durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DurabilityArg {
    /// Durable on disk when `committed` is printed.
    Immediate,
    /// Written to the OS when `committed` is printed; synced before exit.
    None,
}

/// The input: a file or stdin, with its size for the progress bar.
struct Input {
    reader: Box<dyn BufRead>,
    name: String,
    size: Option<u64>,
}

fn open_input(file: Option<&Path>) -> CliResult<Input> {
    let Some(path) = file else {
        return Ok(Input {
            reader: Box::new(BufReader::new(std::io::stdin())),
            name: "stdin".into(),
            size: None,
        });
    };
    let name = path.display().to_string();
    // A FILE argument that names nothing readable is bad input (exit 2), found before
    // DIR is created or locked.
    let opened = File::open(path).map_err(|e| CliError::usage(format!("open {name}: {e}")))?;
    let metadata = opened
        .metadata()
        .map_err(|e| CliError::usage(format!("stat {name}: {e}")))?;
    if metadata.is_dir() {
        return Err(CliError::usage(format!(
            "{name} is a directory, not a file"
        )));
    }
    Ok(Input {
        reader: Box::new(BufReader::new(opened)),
        name,
        size: Some(metadata.len()),
    })
}

/// Runs `import`.
pub fn run(args: &Args) -> CliResult {
    let mut input = open_input(args.file.as_deref())?;
    let durability = match args.durability {
        DurabilityArg::Immediate => Durability::Immediate,
        DurabilityArg::None => Durability::None,
    };
    let store = open::writer(
        &args.dir,
        WriterOptions {
            create: true,
            durability,
            recovery: RecoveryMode::Strict,
            keep_fallback: args.keep_fallback,
            verify_snapshot: false,
        },
    )?;
    let progress = Progress::bytes(input.size, format!("importing {}", input.name));
    let applied = apply_lines(&store, &mut input, args.checkpoint_every, &progress);
    drop(progress);
    // With `--durability none`, closing syncs: every printed commit is durable at exit,
    // also when a malformed line stopped the import.
    let closed = store.close().map_err(CliError::from);
    applied.and(closed)
}

/// Commits the input's transactions until its end or the first failure.
fn apply_lines(
    store: &Store,
    input: &mut Input,
    checkpoint_every: u64,
    progress: &Progress,
) -> CliResult {
    let mut out = Out::new();
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let mut committed = 0u64;
    loop {
        line.clear();
        let read = input
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::failed(format!("read {}: {e}", input.name)))?;
        if read == 0 {
            return out.finish();
        }
        line_number += 1;
        progress.inc(read as u64);
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let malformed = |reason: String| {
            CliError::usage(format!("line {line_number}: {reason} (in {})", input.name))
        };
        let Some(ops) = json_line::parse(text).map_err(malformed)? else {
            continue;
        };
        let mut txn = store.begin_write();
        for op in ops {
            op.apply(&mut txn);
        }
        let lsn = match txn.commit() {
            Ok(lsn) => lsn,
            // Bounds (key length) are checked before anything is logged: bad input.
            Err(error @ walstore::Error::InvalidArgument(_)) => {
                return Err(malformed(error.to_string()));
            }
            Err(error) => return Err(error.into()),
        };
        progress.suspend(|| {
            writeln!(out.writer(), "committed {lsn}").map_err(|e| CliError::stdout(&e))?;
            out.flush()
        })?;
        committed += 1;
        if checkpoint_every > 0 && committed.is_multiple_of(checkpoint_every) {
            store.checkpoint()?;
        }
    }
}
