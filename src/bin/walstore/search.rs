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
    /// Print `{"hits": [{"doc": D, "score": F}, ...], "lsn": N}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct JsonResults<'a> {
    hits: &'a [Hit],
    lsn: u64,
}

/// Runs the command.
pub fn run(args: &Args) -> CliResult {
    let store = open::reader(&args.dir)?;
    let read = store.read();
    let results = read.search(&args.query, args.limit)?;
    let mut out = Out::new();
    if args.json {
        return out
            .json(&JsonResults {
                hits: &results.hits,
                lsn: results.lsn,
            })
            .and_then(|()| out.finish());
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
        "{} of {} matching documents (lsn {})",
        results.hits.len(),
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
