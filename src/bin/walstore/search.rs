//! `walstore search DIR QUERY [--limit N] [--json]`: BM25 search from one read view.
//!
//! The human form shows, per hit, the path, the score and the best-matching line, read
//! from the source file when it is still there and unchanged (its size and mtime match
//! the fingerprint); otherwise it says the file changed since it was indexed.

use std::path::{Path, PathBuf};

use serde::Serialize;
use walstore::{Hit, ReadTxn};

use crate::CliResult;
use crate::indexer::{self, NAMESPACE};
use crate::open;
use crate::output::{self, Out};

/// Arguments of `walstore search`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// Words (all optional, ranked by BM25) and `prefix*` terms.
    pub query: String,
    /// Most hits shown.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print `{"hits": [{"doc": D, "score": F}, ...], "lsn": N, "indexing": RUN|null}`.
    #[arg(long)]
    pub json: bool,
    /// If an indexing run is in progress, wait up to this many seconds for it to finish.
    #[arg(long, value_name = "SECONDS")]
    pub wait_for_index: Option<f64>,
}

#[derive(Serialize)]
struct JsonResults<'a> {
    hits: &'a [Hit],
    lsn: u64,
    indexing: Option<&'a walstore::RunInfo>,
}

/// Runs the command.
pub fn run(args: &Args) -> CliResult {
    let store = open::reader(&args.dir)?;
    if let Some(seconds) = args.wait_for_index {
        let wait = std::time::Duration::try_from_secs_f64(seconds).map_err(|e| {
            crate::failure::CliError::usage(format!("--wait-for-index {seconds}: {e}"))
        })?;
        store.wait_for_indexing(wait)?;
    }
    let read = store.read();
    let results = read.search(&args.query, args.limit)?;
    let mut out = Out::new();
    if args.json {
        return out
            .json(&JsonResults {
                hits: &results.hits,
                lsn: results.lsn,
                indexing: results.indexing.as_ref(),
            })
            .and_then(|()| out.finish());
    }
    if let Some(run) = &results.indexing {
        out.line(format!(
            "note: an indexing run is in progress ({} of {} files, pid {}): results may be incomplete",
            run.done_files,
            run.planned_files.map_or_else(|| "?".to_owned(), |n| n.to_string()),
            run.pid
        ))?;
    }
    let src = indexer::stored_settings(&read).map(|s| s.src);
    for hit in &results.hits {
        let line = best_line(&read, src.as_deref(), &hit.doc, &results.terms);
        out.line(format!(
            "{}  {:.3}  {line}",
            output::quoted(&hit.doc),
            hit.score
        ))?;
    }
    out.line(format!(
        "{} of {}{} matching documents (lsn {})",
        results.hits.len(),
        if results.total_matches_exact {
            ""
        } else {
            "at least "
        },
        results.total_matches,
        results.lsn
    ))?;
    out.finish()
}

/// The line of the document's file holding the most query terms, as `N: text`.
fn best_line(read: &ReadTxn, src: Option<&Path>, doc: &str, terms: &[String]) -> String {
    let Some(path) = src.map(|src| src.join(doc)) else {
        return "(no source directory recorded)".into();
    };
    let fingerprint = read.fingerprint(NAMESPACE, doc).ok().flatten();
    let current = std::fs::metadata(&path).ok();
    let unchanged = match (&fingerprint, &current) {
        (Some(fp), Some(metadata)) => {
            fp.size == metadata.len() && fp.mtime == indexer::mtime_ns(metadata)
        }
        _ => false,
    };
    if !unchanged {
        return "(file changed since it was indexed)".into();
    }
    let Ok(text) = std::fs::read_to_string(&path) else {
        return "(file unreadable)".into();
    };
    let scored = text.lines().enumerate().map(|(i, line)| {
        let tokens = walstore::fts::tokenizer::tokens(line);
        let hits = terms.iter().filter(|t| tokens.contains(t)).count();
        (hits, std::cmp::Reverse(i), line)
    });
    match scored.max() {
        Some((hits, std::cmp::Reverse(i), line)) if hits > 0 => {
            format!("{}: {}", i + 1, line.trim())
        }
        _ => "(no line holds a query term)".into(),
    }
}
