//! The reference indexer behind `walstore index`: walk a source tree, fingerprint each
//! file, and commit only what changed, in batches. Each batch (files, their fingerprints,
//! their FTS deltas and the run's progress counters) is one transaction, so a run killed
//! at any moment loses nothing committed, and the next run resumes by fingerprints.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use walstore::{Fingerprint, ReadTxn, Store, WriteTxn};

use crate::CliResult;
use crate::failure::CliError;

/// The fingerprint namespace of indexed source files.
pub const NAMESPACE: &str = "code";
/// The fingerprint namespace of files walked but not indexed (binary or too large), so
/// an unchanged one is not read again.
pub const SKIPPED_NAMESPACE: &str = "skipped";
/// The "hash" of a file skipped as binary.
const SKIPPED_BINARY: &[u8] = b"binary";
/// The "hash" of a file skipped as larger than the bound.
const SKIPPED_TOO_BIG: &[u8] = b"too-big";
/// Metadata key of the last finished run.
pub const LAST_RUN_KEY: &str = "index.last_run";
/// Config key of the settings used.
pub const SETTINGS_KEY: &str = "index.settings";
/// Bytes of a file inspected to decide whether it is binary.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// How the indexer runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The source tree (absolute).
    pub src: PathBuf,
    /// Files larger than this are skipped.
    pub max_file_bytes: u64,
    /// Files per transaction at most.
    pub batch_files: usize,
    /// Bytes of text per transaction at most (a batch closes once over it).
    pub batch_bytes: u64,
    /// Whether checkpoints keep a fallback (`--keep-fallback`).
    pub keep_fallback: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunSummary {
    /// Files walked (after ignore rules).
    pub scanned: u64,
    /// Files indexed for the first time.
    pub new: u64,
    /// Files re-indexed because their content changed.
    pub changed: u64,
    /// Files whose documents and fingerprints were removed (gone, or now binary/too big).
    pub removed: u64,
    /// Files skipped because size and mtime (or the hash) were unchanged.
    pub unchanged: u64,
    /// Files skipped as binary or too large.
    pub skipped: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// Transactions committed.
    pub commits: u64,
    /// When the run started, in ms since the epoch.
    pub started_unix_ms: u64,
    /// When it finished.
    pub finished_unix_ms: u64,
    /// Its duration in ms.
    pub duration_ms: u64,
    /// The store's lsn at the end.
    pub lsn: u64,
    /// The interrupted run this one resumed, if the last one never finished.
    pub resumed_run: Option<walstore::RunInfo>,
}

/// Runs one indexing pass of `settings.src` into `store`, calling `progress` per file.
pub fn run(
    store: &Store,
    settings: &Settings,
    store_dir: &Path,
    progress: &dyn Fn(u64),
) -> CliResult<RunSummary> {
    let started = Instant::now();
    let mut summary = RunSummary {
        started_unix_ms: now_ms(),
        ..RunSummary::default()
    };
    let mut batch = Batch::new(store, settings);
    batch.txn.set_config_as(SETTINGS_KEY, settings)?;
    let mut seen = std::collections::HashSet::new();
    // Walk first, so the run records how many files it plans to look at.
    let files = walk(settings, store_dir)?;
    batch.run = walstore::RunInfo::start(Some(files.len() as u64));
    batch.txn.set_run(&batch.run)?;
    // Workers read, hash and tokenize files in parallel; this thread applies their
    // results in walk order (so doc ids and batches do not depend on timing) and commits.
    let read = store.read();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 8));
    std::thread::scope(|scope| -> CliResult {
        let mut receivers = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (sender, receiver) = std::sync::mpsc::sync_channel(PREPARED_IN_FLIGHT);
            receivers.push(receiver);
            let (files, read) = (&files, &read);
            scope.spawn(move || {
                for (path, key) in files.iter().skip(worker).step_by(workers) {
                    if sender.send(prepare(read, settings, path, key)).is_err() {
                        return; // the run stopped on an error
                    }
                }
            });
        }
        for (i, (_, key)) in files.iter().enumerate() {
            let prepared = receivers
                .get(i % workers)
                .and_then(|r| r.recv().ok())
                .ok_or_else(|| CliError::failed("an indexing worker stopped early".to_owned()))??;
            summary.scanned += 1;
            progress(1);
            seen.insert(key.clone());
            batch.apply(key, prepared, &mut summary)?;
            if batch.is_full() {
                batch.commit(&mut summary)?;
            }
        }
        Ok(())
    })?;
    for namespace in [NAMESPACE, SKIPPED_NAMESPACE] {
        let gone: Vec<String> = {
            let read = store.read();
            let all: Vec<String> = read
                .fingerprints(namespace)?
                .map(|e| e.map(|(path, _)| path))
                .collect::<walstore::Result<_>>()?;
            all.into_iter()
                .filter(|path| !seen.contains(path))
                .collect()
        };
        for path in gone {
            batch.txn.delete_fingerprint(namespace, &path);
            if namespace == NAMESPACE {
                batch.txn.remove_doc(&path);
                summary.removed += 1;
            }
            batch.files += 1;
            if batch.is_full() {
                batch.commit(&mut summary)?;
            }
        }
    }
    summary.finished_unix_ms = now_ms();
    summary.duration_ms = started.elapsed().as_millis() as u64;
    batch.txn.finish_run();
    summary.commits += 1;
    batch.txn.set_meta_as(LAST_RUN_KEY, &summary)?;
    let txn = std::mem::replace(&mut batch.txn, store.begin_write());
    summary.lsn = txn.commit()?;
    Ok(summary)
}

/// The transaction being filled.
struct Batch<'a> {
    store: &'a Store,
    settings: &'a Settings,
    txn: WriteTxn,
    files: usize,
    bytes: u64,
    run: walstore::RunInfo,
}

impl<'a> Batch<'a> {
    fn new(store: &'a Store, settings: &'a Settings) -> Self {
        Batch {
            store,
            settings,
            txn: store.begin_write(),
            files: 0,
            bytes: 0,
            run: walstore::RunInfo::start(None),
        }
    }

    fn is_full(&self) -> bool {
        self.files >= self.settings.batch_files || self.bytes >= self.settings.batch_bytes
    }

    /// Commits the batch with the run's progress, and starts the next one.
    fn commit(&mut self, summary: &mut RunSummary) -> CliResult {
        self.run.done_files = summary.scanned;
        self.txn.set_run(&self.run)?;
        let txn = std::mem::replace(&mut self.txn, self.store.begin_write());
        summary.lsn = txn.commit()?;
        summary.commits += 1;
        self.files = 0;
        self.bytes = 0;
        Ok(())
    }

    /// Adds one prepared file's changes, if any.
    fn apply(&mut self, key: &str, prepared: Prepared, summary: &mut RunSummary) -> CliResult {
        summary.bytes_read += prepared.bytes_read;
        match prepared.outcome {
            Outcome::Unchanged => summary.unchanged += 1,
            Outcome::StillSkipped => summary.skipped += 1,
            Outcome::Skip {
                had_doc,
                fingerprint,
            } => {
                self.files += 1;
                summary.skipped += 1;
                if had_doc {
                    self.txn.delete_fingerprint(NAMESPACE, key).remove_doc(key);
                    summary.removed += 1;
                }
                self.txn
                    .put_fingerprint(SKIPPED_NAMESPACE, key, fingerprint);
            }
            Outcome::Text {
                had_skipped,
                fingerprint,
                terms,
            } => {
                self.files += 1;
                if had_skipped {
                    self.txn.delete_fingerprint(SKIPPED_NAMESPACE, key);
                }
                match terms {
                    Change::Same => summary.unchanged += 1,
                    Change::Changed(terms) => {
                        summary.changed += 1;
                        self.txn.index_doc_terms(key, terms);
                    }
                    Change::New(terms) => {
                        summary.new += 1;
                        self.txn.index_doc_terms(key, terms);
                    }
                }
                self.bytes += fingerprint.size;
                self.txn.put_fingerprint(NAMESPACE, key, fingerprint);
            }
        }
        Ok(())
    }
}

/// Prepared results a worker may hold ahead of the committing thread.
const PREPARED_IN_FLIGHT: usize = 64;

/// What one file needs, worked out off the committing thread.
struct Prepared {
    outcome: Outcome,
    bytes_read: u64,
}

enum Outcome {
    /// Size and mtime match the fingerprint: not read.
    Unchanged,
    /// Skipped before, and still to be skipped: not read.
    StillSkipped,
    /// Binary or too big now: record it as skipped, dropping any document.
    Skip {
        had_doc: bool,
        fingerprint: Fingerprint,
    },
    /// Text: its fingerprint, and its terms if the content changed.
    Text {
        had_skipped: bool,
        fingerprint: Fingerprint,
        terms: Change,
    },
}

enum Change {
    Same,
    Changed(walstore::DocTerms),
    New(walstore::DocTerms),
}

/// Reads, fingerprints and tokenizes one file, against the run's starting view.
fn prepare(read: &ReadTxn, settings: &Settings, path: &Path, key: &str) -> CliResult<Prepared> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
    let (size, mtime) = (metadata.len(), mtime_ns(&metadata));
    let old = read.fingerprint(NAMESPACE, key)?;
    let old_skipped = read.fingerprint(SKIPPED_NAMESPACE, key)?;
    let same = |fp: &Option<Fingerprint>| {
        fp.as_ref()
            .is_some_and(|fp| fp.size == size && fp.mtime == mtime)
    };
    let done = |outcome| {
        Ok(Prepared {
            outcome,
            bytes_read: 0,
        })
    };
    if same(&old) {
        return done(Outcome::Unchanged);
    }
    let too_big = size > settings.max_file_bytes;
    // A file skipped as binary stays skipped while unchanged; one skipped as too big
    // is looked at again when the size bound no longer excludes it.
    if same(&old_skipped)
        && (too_big
            || old_skipped
                .as_ref()
                .is_some_and(|fp| fp.hash == SKIPPED_BINARY))
    {
        return done(Outcome::StillSkipped);
    }
    let (text, bytes_read) = if too_big { (None, 0) } else { read_text(path) };
    let Some(text) = text else {
        let hash = if too_big {
            SKIPPED_TOO_BIG
        } else {
            SKIPPED_BINARY
        };
        return Ok(Prepared {
            outcome: Outcome::Skip {
                had_doc: old.is_some(),
                fingerprint: Fingerprint::new(hash, size, mtime)?,
            },
            bytes_read,
        });
    };
    let hash = xxhash_rust::xxh3::xxh3_128(text.as_bytes()).to_le_bytes();
    let terms = match &old {
        Some(fp) if fp.hash == hash => Change::Same,
        Some(_) => Change::Changed(walstore::DocTerms::from_text(&text)),
        None => Change::New(walstore::DocTerms::from_text(&text)),
    };
    Ok(Prepared {
        outcome: Outcome::Text {
            had_skipped: old_skipped.is_some(),
            fingerprint: Fingerprint::new(hash, size, mtime)?,
            terms,
        },
        bytes_read,
    })
}

/// The files under `settings.src` that the run looks at, with their document ids, in
/// path order: `.gitignore`, `.ignore` and hidden-file rules apply, and the store
/// directory itself is never walked.
fn walk(settings: &Settings, store_dir: &Path) -> CliResult<Vec<(PathBuf, String)>> {
    let store_dir = store_dir
        .canonicalize()
        .unwrap_or_else(|_| store_dir.to_path_buf());
    let walker = ignore::WalkBuilder::new(&settings.src)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| entry.path().canonicalize().map_or(true, |p| p != store_dir))
        .build();
    let mut files = Vec::new();
    for entry in walker {
        let entry = entry
            .map_err(|e| CliError::failed(format!("walking {}: {e}", settings.src.display())))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if let Some(key) = doc_key(&settings.src, entry.path()) {
            files.push((entry.into_path(), key));
        }
    }
    Ok(files)
}

/// The file's text (`None` for a binary file: a NUL byte near the start) and the
/// bytes read.
fn read_text(path: &Path) -> (Option<String>, u64) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        // Vanished or unreadable since the walk: not an error of the run.
        Err(_) => return (None, 0),
    };
    let read = bytes.len() as u64;
    if bytes.iter().take(BINARY_SNIFF_BYTES).any(|&b| b == 0) {
        return (None, read);
    }
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    (Some(text), read)
}

/// The document id of a file: its path relative to the source root, with `/`.
pub fn doc_key(src: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src).ok()?;
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// Modification time in nanoseconds since the epoch (0 if unknown).
pub fn mtime_ns(metadata: &std::fs::Metadata) -> i64 {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads the settings a store was last indexed with.
pub fn stored_settings(read: &ReadTxn) -> Option<Settings> {
    read.config_as::<Settings>(SETTINGS_KEY).ok().flatten()
}
