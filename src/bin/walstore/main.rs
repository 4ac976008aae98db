//! `walstore`: the command-line tool of a walstore store.
//!
//! The operator's recovery tool after a crash and the way scripts feed and inspect a
//! store. Its behaviour is a contract (issue 3): exit code 0 on success, 1 when the
//! command ran and found a problem (corruption, a locked store, a failed operation),
//! 2 for usage errors and bad input; every error is one line on stderr starting
//! `error:`, and no panic or backtrace ever reaches the user.

mod backup;
mod checkpoint;
mod dump;
mod failure;
mod import;
mod index;
mod indexer;
mod json_line;
mod open;
mod output;
mod progress;
mod recover;
mod search;
mod stats;
mod strict_json;
mod verify;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use failure::CliError;

/// Command-line interface of a walstore store.
#[derive(Debug, Parser)]
#[command(name = "walstore", version, about)]
struct Cli {
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Apply transactions read as JSON lines from FILE (or stdin); creates DIR if missing.
    Import(import::Args),
    /// Print the store's whole state (read-only).
    Dump(dump::Args),
    /// Check every byte of every store file (read-only; exit 1 when corrupt).
    Verify(verify::Args),
    /// Take the lock, run recovery and report what it did (`--salvage` cuts corruption).
    Recover(recover::Args),
    /// Take the lock, write a snapshot and drop the WAL it covers.
    Checkpoint(checkpoint::Args),
    /// Print sizes, counts and the lock holder (read-only).
    Stats(stats::Args),
    /// Write a consistent copy of the live store into DEST (read-only on DIR).
    Backup(backup::Args),
    /// Index a source tree into a store (default SRC/.walstore): only what changed.
    Index(index::Args),
    /// Search the full-text index with BM25 (read-only).
    Search(search::Args),
    /// Print one line per new commit as it lands: `lsn <N> <summary>` (read-only).
    Watch(watch::Args),
}

fn main() -> ExitCode {
    failure::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return failure::clap_exit(&error),
    };
    let result = match cli.command {
        Command::Import(args) => import::run(&args),
        Command::Dump(args) => dump::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Recover(args) => recover::run(&args),
        Command::Checkpoint(args) => checkpoint::run(&args),
        Command::Stats(args) => stats::run(&args),
        Command::Backup(args) => backup::run(&args),
        Command::Index(args) => index::run(&args),
        Command::Search(args) => search::run(&args),
        Command::Watch(args) => watch::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.report(),
    }
}

/// The result of a command (or of one of its steps): a value, or the error to report.
type CliResult<T = ()> = Result<T, CliError>;
