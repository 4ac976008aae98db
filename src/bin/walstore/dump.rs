//! `walstore dump DIR [--json]`: the whole state at the store's lsn, read-only.
//!
//! The JSON form (the contract) is
//! `{"lsn": N, "metadata": {K: V}, "config": {K: V},
//!   "fingerprints": {NS: {P: {"hash": HEX, "size": U64, "mtime": I64}}},
//!   "fts": {"docs": [D, ...]}}`, written as a stream so a large store is never held
//! twice in memory. Collections come from the library sorted by key bytes, which for
//! UTF-8 is code point order, so `docs` is sorted as the contract asks.

use std::io::Write;

use walstore::{Fingerprint, ReadTxn};

use crate::CliResult;
use crate::failure::CliError;
use crate::open;
use crate::output::{Out, hex, quoted};
use crate::progress::Progress;

/// Arguments of `dump`: the store and `--json`.
pub use crate::open::StoreArgs as Args;

/// Everything a dump shows, read from one consistent view.
struct State {
    metadata: Vec<(String, walstore::Value)>,
    config: Vec<(String, walstore::Value)>,
    fingerprints: Vec<(String, String, Fingerprint)>,
    docs: Vec<String>,
}

fn read_state(read: &ReadTxn, progress: &Progress) -> walstore::Result<State> {
    let metadata = read.metadata()?;
    progress.inc(metadata.len() as u64);
    let config = read.configs()?;
    progress.inc(config.len() as u64);
    let mut fingerprints = Vec::new();
    for entry in read.all_fingerprints()? {
        fingerprints.push(entry?);
        progress.inc(1);
    }
    let mut docs = Vec::new();
    for doc in read.docs()? {
        docs.push(doc?);
        progress.inc(1);
    }
    // Already sorted by the library; sorting again (linear on sorted input) keeps the
    // contract's code point order whatever the key encoding becomes.
    docs.sort_unstable();
    Ok(State {
        metadata,
        config,
        fingerprints,
        docs,
    })
}

/// Runs `dump`.
pub fn run(args: &Args) -> CliResult {
    let store = open::reader(&args.dir)?;
    let read = store.read();
    let state = {
        let progress = Progress::counter(format!("reading {}", args.dir.display()));
        read_state(&read, &progress)?
    };
    let mut out = Out::new();
    let written = if args.json {
        write_json(out.writer(), read.lsn(), &state)
    } else {
        write_text(out.writer(), read.lsn(), &state)
    };
    written.map_err(|e| CliError::stdout(&e))?;
    out.finish()
}

fn write_json(w: &mut impl Write, lsn: u64, state: &State) -> std::io::Result<()> {
    write!(w, "{{\"lsn\":{lsn},\"metadata\":")?;
    write_values(w, &state.metadata)?;
    write!(w, ",\"config\":")?;
    write_values(w, &state.config)?;
    write!(w, ",\"fingerprints\":{{")?;
    // Sorted by (namespace, path): each namespace's entries are contiguous.
    let mut current: Option<&str> = None;
    for (ns, path, fingerprint) in &state.fingerprints {
        if current != Some(ns.as_str()) {
            if current.is_some() {
                write!(w, "}},")?;
            }
            write!(w, "{}:{{", quoted(ns))?;
            current = Some(ns);
        } else {
            write!(w, ",")?;
        }
        write!(
            w,
            "{}:{{\"hash\":\"{}\",\"size\":{},\"mtime\":{}}}",
            quoted(path),
            hex(&fingerprint.hash),
            fingerprint.size,
            fingerprint.mtime
        )?;
    }
    if current.is_some() {
        write!(w, "}}")?;
    }
    write!(w, "}},\"fts\":{{\"docs\":[")?;
    for (i, doc) in state.docs.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        write!(w, "{comma}{}", quoted(doc))?;
    }
    writeln!(w, "]}}}}")
}

fn write_values(w: &mut impl Write, values: &[(String, walstore::Value)]) -> std::io::Result<()> {
    write!(w, "{{")?;
    for (i, (key, value)) in values.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        write!(w, "{comma}{}:", quoted(key))?;
        serde_json::to_writer(&mut *w, &value.to_json())?;
    }
    write!(w, "}}")
}

fn write_text(w: &mut impl Write, lsn: u64, state: &State) -> std::io::Result<()> {
    writeln!(w, "lsn {lsn}")?;
    for (title, values) in [("metadata", &state.metadata), ("config", &state.config)] {
        writeln!(w, "{title}: {} keys", values.len())?;
        for (key, value) in values {
            writeln!(w, "  {} = {}", quoted(key), value.to_json())?;
        }
    }
    writeln!(w, "fingerprints: {}", state.fingerprints.len())?;
    for (ns, path, fingerprint) in &state.fingerprints {
        writeln!(
            w,
            "  {} {} hash {} size {} mtime {}",
            quoted(ns),
            quoted(path),
            hex(&fingerprint.hash),
            fingerprint.size,
            fingerprint.mtime
        )?;
    }
    writeln!(w, "fts docs: {}", state.docs.len())?;
    for doc in &state.docs {
        writeln!(w, "  {}", quoted(doc))?;
    }
    Ok(())
}
