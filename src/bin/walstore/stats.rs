//! `walstore stats DIR [--json]`: sizes and counts, read-only, and who holds the
//! writer lock (pid, host, since when, command line), if anyone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use walstore::storage::FsStorage;
use walstore::{LockHolder, ReadTxn};

use crate::CliResult;
use crate::failure::CliError;
use crate::output::{Out, bytes, quoted, shown};

/// Arguments of `stats`: the store and `--json`.
pub use crate::open::StoreArgs as Args;

/// A number of files and their total size.
#[derive(Debug, Default, Serialize)]
struct FileGroup {
    count: u64,
    bytes: u64,
}

impl FileGroup {
    fn add(&mut self, len: u64) {
        self.count += 1;
        self.bytes += len;
    }
}

/// The files in DIR, by kind.
#[derive(Debug, Default, Serialize)]
struct Files {
    wal: FileGroup,
    snap: FileGroup,
    /// Parity sidecars of snapshots (`.par`).
    par: FileGroup,
    /// The store's own temporary files (`<20 digits>.wal.tmp`, `.snap.tmp`, `.par.tmp`),
    /// but for the spares.
    temp: FileGroup,
    /// The writer's spares, named with lsn 0: its next WAL segment
    /// (`00000000000000000000.wal.tmp`) and a superseded snapshot kept for the next
    /// checkpoint to write over (`00000000000000000000.snap.tmp`). Closing the store
    /// removes them; so does the next writer open, after a crash.
    spare: FileGroup,
    quarantine: FileGroup,
    other: FileGroup,
    lock_file: bool,
}

/// Entry counts of the state.
#[derive(Debug, Default, Serialize)]
struct Counts {
    metadata: u64,
    config: u64,
    fingerprints: u64,
    fingerprints_by_namespace: BTreeMap<String, u64>,
    fts_docs: u64,
    fts_tokens: u64,
}

/// The lock holder, with its start time readable.
#[derive(Debug, Serialize)]
struct Holder {
    #[serde(flatten)]
    holder: LockHolder,
    since_utc: String,
}

/// Everything `stats` prints.
#[derive(Debug, Serialize)]
struct Stats {
    dir: PathBuf,
    lsn: u64,
    files: Files,
    counts: Counts,
    lock_holder: Option<Holder>,
    /// The indexing run recorded in the store, if any.
    indexing: Option<walstore::RunInfo>,
    /// Whether that run's writer is gone (no process holds the lock): it never finished.
    indexing_interrupted: bool,
}

/// Runs `stats`.
pub fn run(args: &Args) -> CliResult {
    let store = crate::open::reader(&args.dir)?;
    let read = store.read();
    let stats = Stats {
        dir: args.dir.clone(),
        lsn: read.lsn(),
        files: files(&args.dir)?,
        counts: counts(&read)?,
        lock_holder: walstore::lock_holder(&FsStorage, &args.dir)?.map(|holder| Holder {
            since_utc: walstore::format_unix_ms(holder.since_unix_ms),
            holder,
        }),
        indexing: read.indexing()?,
        indexing_interrupted: false,
    };
    let stats = Stats {
        indexing_interrupted: stats.indexing.is_some() && stats.lock_holder.is_none(),
        ..stats
    };
    let mut out = Out::new();
    if args.json {
        out.json(&stats)?;
    } else {
        write_text(&mut out, &stats)?;
    }
    out.finish()
}

fn is_store_temp(name: &str) -> bool {
    [".wal.tmp", ".snap.tmp", ".par.tmp"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn files(dir: &Path) -> CliResult<Files> {
    let list_error = |path: &Path, e: std::io::Error| {
        CliError::failed(format!("list directory {}: {e}", path.display()))
    };
    let mut files = Files::default();
    for entry in std::fs::read_dir(dir).map_err(|e| list_error(dir, e))? {
        let entry = entry.map_err(|e| list_error(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A file removed meanwhile (a live writer's checkpoint) counts as empty.
        let metadata = entry.metadata().ok();
        let len = metadata.as_ref().map_or(0, std::fs::Metadata::len);
        if metadata.as_ref().is_some_and(std::fs::Metadata::is_dir) {
            if name == "quarantine" {
                for inner in
                    std::fs::read_dir(entry.path()).map_err(|e| list_error(&entry.path(), e))?
                {
                    let inner = inner.map_err(|e| list_error(&entry.path(), e))?;
                    files
                        .quarantine
                        .add(inner.metadata().map_or(0, |m| m.len()));
                }
            }
            continue;
        }
        if is_store_temp(&name) && name.starts_with("00000000000000000000.") {
            files.spare.add(len);
        } else if is_store_temp(&name) {
            files.temp.add(len);
        } else if name.ends_with(".wal") {
            files.wal.add(len);
        } else if name.ends_with(".snap") {
            files.snap.add(len);
        } else if name.ends_with(".par") {
            files.par.add(len);
        } else if name == walstore::LOCK_FILE {
            files.lock_file = true;
        } else {
            files.other.add(len);
        }
    }
    Ok(files)
}

fn counts(read: &ReadTxn) -> walstore::Result<Counts> {
    let mut counts = Counts {
        metadata: read.metadata()?.len() as u64,
        config: read.configs()?.len() as u64,
        ..Counts::default()
    };
    for entry in read.all_fingerprints()? {
        let (ns, _, _) = entry?;
        counts.fingerprints += 1;
        *counts.fingerprints_by_namespace.entry(ns).or_default() += 1;
    }
    let fts = read.fts_stats()?;
    counts.fts_docs = fts.docs;
    counts.fts_tokens = fts.tokens;
    Ok(counts)
}

/// `label: count, size` for one group of files.
fn group_line(out: &mut Out, label: &str, group: &FileGroup) -> CliResult {
    out.line(format!("{label}: {}, {}", group.count, bytes(group.bytes)))
}

fn write_text(out: &mut Out, stats: &Stats) -> CliResult {
    let files = &stats.files;
    out.line(format!("store {}", shown(&stats.dir)))?;
    out.line(format!("lsn: {}", stats.lsn))?;
    group_line(out, "WAL segments", &files.wal)?;
    group_line(out, "snapshots", &files.snap)?;
    group_line(out, "parity sidecars", &files.par)?;
    group_line(
        out,
        "writer's spares (next segment, superseded snapshot)",
        &files.spare,
    )?;
    group_line(out, "stray temporary files", &files.temp)?;
    group_line(out, "quarantined files", &files.quarantine)?;
    let counts = &stats.counts;
    out.line(format!("metadata keys: {}", counts.metadata))?;
    out.line(format!("config keys: {}", counts.config))?;
    out.line(format!(
        "fingerprints: {} in {} namespaces",
        counts.fingerprints,
        counts.fingerprints_by_namespace.len()
    ))?;
    for (ns, count) in &counts.fingerprints_by_namespace {
        out.line(format!("  {}: {count}", quoted(ns)))?;
    }
    out.line(format!(
        "fts documents: {} ({} tokens)",
        counts.fts_docs, counts.fts_tokens
    ))?;
    match &stats.lock_holder {
        Some(holder) => out.line(format!(
            "writer lock: held by pid {} on host {} since {} UTC (command: {})",
            holder.holder.pid, holder.holder.host, holder.since_utc, holder.holder.command
        )),
        None => out.line("writer lock: not held"),
    }?;
    match &stats.indexing {
        Some(run) => out.line(format!(
            "indexing run: {} (pid {} on host {}, started {} UTC, {} of {} files)",
            if stats.indexing_interrupted {
                "INTERRUPTED: its process died before finishing"
            } else {
                "in progress"
            },
            run.pid,
            run.host,
            walstore::format_unix_ms(run.started_unix_ms),
            run.done_files,
            run.planned_files
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        )),
        None => out.line("indexing run: none"),
    }
}
