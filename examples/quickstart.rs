//! The README's first command: fingerprint and index this project's own `src/` into a
//! store, checkpoint, reopen (recovering), and look a few terms up.
//!
//! `cargo run --release --example quickstart [SRC] [STORE]`
//! (defaults: `src` and `target/quickstart-store`).

use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use walstore::{Fingerprint, Store, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let src = PathBuf::from(args.next().unwrap_or_else(|| "src".into()));
    let store_dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/quickstart-store".into()),
    );
    let started = Instant::now();
    let store = Store::open(&store_dir)?;
    println!(
        "opened {} at lsn {} ({:?})",
        store_dir.display(),
        store.lsn(),
        store.recovery_report().duration
    );

    let mut files = Vec::new();
    collect(&src, &mut files)?;
    let (mut changed, mut unchanged) = (0, 0);
    for batch in files.chunks(64) {
        let read = store.read();
        let mut txn = store.begin_write();
        for path in batch {
            let metadata = std::fs::metadata(path)?;
            let mtime = metadata.modified()?.duration_since(UNIX_EPOCH)?.as_nanos() as i64;
            let key = path.to_string_lossy();
            let old = read.fingerprint("code", &key)?;
            if old
                .as_ref()
                .is_some_and(|fp| fp.size == metadata.len() && fp.mtime == mtime)
            {
                unchanged += 1;
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let hash = crc32fast::hash(text.as_bytes()).to_le_bytes();
            txn.put_fingerprint("code", &key, Fingerprint::new(hash, metadata.len(), mtime)?)
                .index_doc(&key, &text);
            changed += 1;
        }
        txn.set_meta("last_batch_files", Value::from(batch.len() as u64));
        txn.commit()?;
    }
    let mut txn = store.begin_write();
    txn.set_meta("files", Value::from(files.len() as u64))
        .set_config("source", Value::from(src.to_string_lossy().as_ref()));
    let lsn = txn.commit()?;
    println!(
        "{} files: {changed} indexed, {unchanged} unchanged; lsn {lsn}",
        files.len()
    );
    let checkpoint = store.checkpoint()?;
    println!(
        "checkpoint: {} entries, {} bytes, {:?}",
        checkpoint.entries, checkpoint.bytes, checkpoint.duration
    );
    drop(store);

    let store = Store::open(&store_dir)?;
    let report = store.recovery_report();
    println!(
        "reopened at lsn {} from snapshot lsn {} + {} WAL records in {:?}",
        report.lsn, report.snapshot_lsn, report.records_replayed, report.duration
    );
    let read = store.read();
    for term in ["checkpoint", "fsync", "torn"] {
        let docs: Vec<String> = read
            .postings(term)?
            .map(|p| p.map(|(doc, _)| doc))
            .collect::<Result<_, _>>()?;
        println!(
            "{term:>10}: {} files, e.g. {:?}",
            docs.len(),
            docs.iter().take(3).collect::<Vec<_>>()
        );
    }
    println!("done in {:?}", started.elapsed());
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}
