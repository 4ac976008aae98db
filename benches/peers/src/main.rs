//! walstore against its peers on the workloads of issue 6 (goals 1–5), all in one run
//! of one process, rounds interleaved between engines so noise hits them alike:
//!
//! - SQLite through rusqlite (bundled), `journal_mode=WAL`, `synchronous=FULL`, one
//!   `WITHOUT ROWID` table keyed by (namespace, path);
//! - redb, `Durability::Immediate`, one table path -> 48-byte fingerprint;
//! - fjall, one keyspace, each write batch committed with `PersistMode::SyncAll`;
//! - walstore, `Durability::Immediate`;
//! - the floor: the bytes of one framed walstore record `pwrite`n into a pre-sized file,
//!   then `fdatasync`.
//!
//! Workloads: one durable upsert per commit; 4 threads committing; 10,000 upserts in one
//! durable transaction; open + get one key on 1,000,000 entries from a cold cache in a
//! fresh process (root only: drops the page cache); a warm full scan; on-disk size; and
//! SQLite FTS5 against walstore's FTS on the corpus of `benches/fts.rs`.
//!
//! Run: `cd benches/peers && cargo run --release` (`-- quick` for fewer rounds;
//! `-- WORKLOAD...` to pick among `single threads bulk open scan fts`).
//! The 1M-entry databases are cached under `benches/peers/target/bench-data/`.

#[path = "../../common/mod.rs"]
mod common;
#[path = "../../common/corpus.rs"]
mod corpus;

use std::error::Error;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fjall::{KeyspaceCreateOptions, PersistMode};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use rusqlite::{Connection, params};
use walstore::{Durability, Store};

type R<T> = Result<T, Box<dyn Error + Send + Sync>>;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("fingerprints");
const N_BIG: u64 = 1_000_000;
const ENGINES: [&str; 4] = ["walstore", "sqlite", "redb", "fjall"];

fn redb_key(i: u64) -> String {
    format!("{}/{}", common::NS, common::path(i))
}

// ---------------------------------------------------------------------------------
// Engines

enum Db {
    Walstore(Arc<Store>),
    Sqlite(PathBuf, Connection),
    Redb(Arc<redb::Database>),
    Fjall(fjall::Database, fjall::Keyspace),
    Raw(File, u64),
}

fn sqlite_open(path: &Path) -> R<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(60))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS fingerprints (ns TEXT NOT NULL, path TEXT NOT NULL, \
         hash BLOB NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL, \
         PRIMARY KEY (ns, path)) WITHOUT ROWID;",
    )?;
    Ok(conn)
}

const SQLITE_UPSERT: &str = "INSERT OR REPLACE INTO fingerprints VALUES (?1, ?2, ?3, ?4, ?5)";

/// The raw baseline: `ops` encoded as one record, appended at `offset` (starting over in a
/// fresh sparse file when it would pass `RAW_BYTES`), then `fdatasync`.
fn raw_append(file: &File, offset: &mut u64, ops: &[walstore::model::op::Op]) -> R<()> {
    let payload = postcard::to_allocvec(ops)?;
    let mut framed = Vec::new();
    walstore::wal::record::encode_into(&mut framed, 2, 1, &payload);
    if *offset + framed.len() as u64 > RAW_BYTES {
        *offset = 0;
        file.set_len(0)?;
        file.set_len(RAW_BYTES)?;
    }
    file.write_all_at(&framed, *offset)?;
    file.sync_data()?;
    *offset += framed.len() as u64;
    Ok(())
}

fn sqlite_put(conn: &Connection, i: u64, salt: u64) -> R<()> {
    let (size, mtime) = common::size_mtime(i);
    conn.prepare_cached(SQLITE_UPSERT)?.execute(params![
        common::NS,
        common::path(i),
        &common::hash(i, salt)[..],
        size as i64,
        mtime
    ])?;
    Ok(())
}

fn fjall_open(path: &Path) -> R<(fjall::Database, fjall::Keyspace)> {
    let db = fjall::Database::builder(path).open()?;
    let ks = db.keyspace("fingerprints", KeyspaceCreateOptions::default)?;
    Ok((db, ks))
}

fn raw_record() -> Vec<u8> {
    let ops = vec![walstore::model::op::Op::PutFingerprint {
        ns: common::NS.into(),
        path: common::path(1),
        fingerprint: common::fingerprint(1, 1),
    }];
    let payload = postcard::to_allocvec(&ops).expect("encode");
    let mut framed = Vec::new();
    walstore::wal::record::encode_into(&mut framed, 2, 1, &payload);
    framed
}

const RAW_BYTES: u64 = 64 << 20;

impl Db {
    fn open(engine: &str, dir: &Path) -> R<Db> {
        std::fs::create_dir_all(dir)?;
        Ok(match engine {
            "walstore" => Db::Walstore(Arc::new(
                Store::options()
                    .durability(Durability::Immediate)
                    .open(dir.join("store"))?,
            )),
            "sqlite" => {
                let path = dir.join("db.sqlite");
                let conn = sqlite_open(&path)?;
                Db::Sqlite(path, conn)
            }
            "redb" => Db::Redb(Arc::new(redb::Database::create(dir.join("db.redb"))?)),
            "fjall" => {
                let (db, ks) = fjall_open(&dir.join("fjall"))?;
                Db::Fjall(db, ks)
            }
            "raw" => {
                let file = OpenOptions::new()
                    .create(true)
                    .read(true)
                    .write(true)
                    .truncate(true)
                    .open(dir.join("raw.wal"))?;
                file.set_len(RAW_BYTES)?;
                file.sync_all()?;
                Db::Raw(file, 0)
            }
            other => return Err(format!("unknown engine {other}").into()),
        })
    }

    /// `keys` upserted in one durable transaction.
    fn put(&mut self, keys: std::ops::Range<u64>, salt: u64) -> R<()> {
        match self {
            Db::Walstore(store) => {
                let mut txn = store.begin_write();
                for i in keys {
                    txn.put_fingerprint(common::NS, &common::path(i), common::fingerprint(i, salt));
                }
                txn.commit()?;
            }
            Db::Sqlite(_, conn) => {
                if keys.end - keys.start == 1 {
                    sqlite_put(conn, keys.start, salt)?;
                } else {
                    let txn = conn.transaction()?;
                    for i in keys {
                        sqlite_put(&txn, i, salt)?;
                    }
                    txn.commit()?;
                }
            }
            Db::Redb(db) => {
                let mut txn = db.begin_write()?;
                txn.set_durability(redb::Durability::Immediate)?;
                {
                    let mut table = txn.open_table(TABLE)?;
                    for i in keys {
                        table.insert(
                            redb_key(i).as_str(),
                            &common::fingerprint_bytes(i, salt)[..],
                        )?;
                    }
                }
                txn.commit()?;
            }
            Db::Fjall(db, ks) => {
                let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
                for i in keys {
                    batch.insert(ks, redb_key(i), common::fingerprint_bytes(i, salt).to_vec());
                }
                batch.commit()?;
            }
            Db::Raw(file, offset) => {
                let ops: Vec<walstore::model::op::Op> = keys
                    .map(|i| walstore::model::op::Op::PutFingerprint {
                        ns: common::NS.into(),
                        path: common::path(i),
                        fingerprint: common::fingerprint(i, salt),
                    })
                    .collect();
                raw_append(file, offset, &ops)?;
            }
        }
        Ok(())
    }

    /// Upserts `batch` in one durable transaction: the same as [`Db::put`] of its keys, but
    /// with every key and value made beforehand, so that only the engine's own work is
    /// timed (`bulk`, second table). walstore takes each `Fingerprint` by value, as its
    /// API does (the caller builds it and hands it over), so it is given its own copies,
    /// made beforehand too; the others borrow the prepared bytes.
    fn put_prepared(&mut self, batch: &Prepared, owned: Owned) -> R<()> {
        match self {
            Db::Walstore(store) => {
                let Owned::Fingerprints(fingerprints) = owned else {
                    return Err("walstore takes its fingerprints by value".into());
                };
                let mut txn = store.begin_write();
                for (path, fingerprint) in batch.paths.iter().zip(fingerprints) {
                    txn.put_fingerprint(common::NS, path, fingerprint);
                }
                txn.commit()?;
            }
            Db::Sqlite(_, conn) => {
                let txn = conn.transaction()?;
                {
                    let mut upsert = txn.prepare_cached(SQLITE_UPSERT)?;
                    for (k, path) in batch.paths.iter().enumerate() {
                        let (size, mtime) = batch.size_mtime[k];
                        upsert.execute(params![
                            common::NS,
                            path,
                            &batch.hashes[k][..],
                            size as i64,
                            mtime
                        ])?;
                    }
                }
                txn.commit()?;
            }
            Db::Redb(db) => {
                let mut txn = db.begin_write()?;
                txn.set_durability(redb::Durability::Immediate)?;
                {
                    let mut table = txn.open_table(TABLE)?;
                    for (key, value) in batch.keys.iter().zip(&batch.values) {
                        table.insert(key.as_str(), &value[..])?;
                    }
                }
                txn.commit()?;
            }
            Db::Fjall(db, ks) => {
                let mut batch_out = db.batch().durability(Some(PersistMode::SyncAll));
                for (key, value) in batch.keys.iter().zip(&batch.values) {
                    batch_out.insert(ks, key.as_str(), &value[..]);
                }
                batch_out.commit()?;
            }
            Db::Raw(file, offset) => {
                let Owned::Ops(ops) = owned else {
                    return Err("raw encodes ops made beforehand".into());
                };
                raw_append(file, offset, &ops)?;
            }
        }
        Ok(())
    }

    /// A second handle for another thread.
    fn handle(&self) -> R<Db> {
        Ok(match self {
            Db::Walstore(s) => Db::Walstore(s.clone()),
            Db::Sqlite(path, _) => Db::Sqlite(path.clone(), sqlite_open(path)?),
            Db::Redb(db) => Db::Redb(db.clone()),
            Db::Fjall(db, ks) => Db::Fjall(db.clone(), ks.clone()),
            Db::Raw(..) => return Err("no raw handle".into()),
        })
    }
}

// ---------------------------------------------------------------------------------
// Reporting

struct Table {
    title: String,
    rows: Vec<(String, String, String)>,
}

impl Table {
    fn new(title: impl Into<String>) -> Table {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }
    fn row(&mut self, name: &str, figure: String, ratio: String) {
        println!("  {name:<12} {figure:<28} {ratio}");
        self.rows.push((name.into(), figure, ratio));
    }
}

/// A table of each engine's median and its ratio to engine `baseline`'s.
fn ratio_table(
    title: &str,
    names: &[&str],
    samples: &mut [Vec<Duration>],
    baseline: usize,
) -> Table {
    let mut table = Table::new(title);
    let base = median(&mut samples[baseline]);
    for (k, name) in names.iter().enumerate() {
        let m = median(&mut samples[k]);
        table.row(
            name,
            secs(m),
            format!(
                "{:.2}× {}",
                m.as_secs_f64() / base.as_secs_f64(),
                names[baseline]
            ),
        );
    }
    table
}

fn median(v: &mut [Duration]) -> Duration {
    common::quantile(v, 0.5)
}

fn secs(d: Duration) -> String {
    common::fmt_duration(d)
}

// ---------------------------------------------------------------------------------
// Workloads

fn tmp_dir() -> tempfile::TempDir {
    common::bench_dir()
}

/// Goal 1: one upsert per durable commit, rounds interleaved.
fn single(rounds: usize, tables: &mut Vec<Table>) -> R<()> {
    println!("\n== one fingerprint upsert per durable commit ({rounds} rounds × 200 commits)");
    let dir = tmp_dir();
    let names = ["raw", "walstore", "sqlite", "redb", "fjall"];
    let mut dbs: Vec<Db> = names
        .iter()
        .map(|n| Db::open(n, &dir.path().join(n)))
        .collect::<R<_>>()?;
    let raw = raw_record();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let mut i = 0u64;
    for _ in 0..rounds {
        for (k, db) in dbs.iter_mut().enumerate() {
            for _ in 0..200 {
                i += 1;
                let started = Instant::now();
                if let Db::Raw(file, offset) = db {
                    if *offset + raw.len() as u64 > RAW_BYTES {
                        *offset = 0;
                    }
                    file.write_all_at(&raw, *offset)?;
                    file.sync_data()?;
                    *offset += raw.len() as u64;
                } else {
                    db.put(i % 10_000..i % 10_000 + 1, i)?;
                }
                samples[k].push(started.elapsed());
            }
        }
    }
    let mut table = Table::new("one upsert per durable commit: median (commits/s), × floor");
    let floor = median(&mut samples[0]);
    for (k, name) in names.iter().enumerate() {
        let m = median(&mut samples[k]);
        let p99 = common::quantile(&mut samples[k], 0.99);
        table.row(
            name,
            format!(
                "{} ({:.0}/s) p99 {}",
                secs(m),
                1.0 / m.as_secs_f64(),
                secs(p99)
            ),
            format!(
                "{:.2}× the floor's time, {:.2}× its rate",
                m.as_secs_f64() / floor.as_secs_f64(),
                floor.as_secs_f64() / m.as_secs_f64()
            ),
        );
    }
    tables.push(table);
    Ok(())
}

/// Goal 2: 1 and 4 threads committing, each engine for `run` per thread count.
fn threads(run: Duration, tables: &mut Vec<Table>) -> R<()> {
    println!(
        "\n== threads committing one upsert each per durable commit ({} s per run)",
        run.as_secs()
    );
    let dir = tmp_dir();
    let mut table =
        Table::new("4 threads: total commits/s, × the same engine on 1 thread, min/max share");
    for name in ENGINES {
        let db = Db::open(name, &dir.path().join(name))?;
        let mut rates = Vec::new();
        for threads in [1usize, 4] {
            let handles: Vec<Db> = (0..threads).map(|_| db.handle()).collect::<R<_>>()?;
            let barrier = Arc::new(Barrier::new(threads));
            let joins: Vec<_> = handles
                .into_iter()
                .enumerate()
                .map(|(t, mut h)| {
                    let barrier = barrier.clone();
                    std::thread::spawn(move || -> R<u64> {
                        barrier.wait();
                        let end = Instant::now() + run;
                        let mut n = 0u64;
                        while Instant::now() < end {
                            let k = t as u64 * 100_000 + n % 10_000;
                            h.put(k..k + 1, n + 1)?;
                            n += 1;
                        }
                        Ok(n)
                    })
                })
                .collect();
            let counts: Vec<u64> = joins
                .into_iter()
                .map(|j| j.join().map_err(|_| "thread panicked")?)
                .collect::<R<_>>()?;
            let total: u64 = counts.iter().sum();
            let rate = total as f64 / run.as_secs_f64();
            rates.push(rate);
            let share = |c: u64| 100.0 * c as f64 / total.max(1) as f64;
            let min = counts.iter().copied().min().unwrap_or(0);
            let max = counts.iter().copied().max().unwrap_or(0);
            println!(
                "  {name:<10} {threads} thread(s): {rate:>7.0} commits/s, share min {:.2}% max {:.2}%",
                share(min),
                share(max)
            );
            if threads == 4 {
                table.rows.push((
                    name.into(),
                    format!("{rate:.0}/s (1 thread {:.0}/s)", rates[0]),
                    format!(
                        "×{:.2}; share min {:.2}% max {:.2}%",
                        rate / rates[0],
                        share(min),
                        share(max)
                    ),
                ));
            }
        }
    }
    tables.push(table);
    Ok(())
}

/// What an engine takes by value in a bulk round, made before the timing from the
/// [`Prepared`] inputs: walstore its `Fingerprint`s (its API takes them so), raw the `Op`s
/// it encodes (the baseline of `benches/bulk.rs` builds them beforehand too).
enum Owned {
    Nothing,
    Fingerprints(Vec<walstore::Fingerprint>),
    Ops(Vec<walstore::model::op::Op>),
}

impl Owned {
    fn for_engine(db: &Db, batch: &Prepared) -> Owned {
        match db {
            Db::Walstore(_) => Owned::Fingerprints(batch.fingerprints.clone()),
            Db::Raw(..) => Owned::Ops(
                batch
                    .paths
                    .iter()
                    .zip(&batch.fingerprints)
                    .map(
                        |(path, fingerprint)| walstore::model::op::Op::PutFingerprint {
                            ns: common::NS.into(),
                            path: path.clone(),
                            fingerprint: fingerprint.clone(),
                        },
                    )
                    .collect(),
            ),
            _ => Owned::Nothing,
        }
    }
}

/// The keys and values of one bulk round, in each engine's form, made before the timing.
struct Prepared {
    /// walstore's and SQLite's key within the namespace.
    paths: Vec<String>,
    fingerprints: Vec<walstore::Fingerprint>,
    hashes: Vec<[u8; 32]>,
    size_mtime: Vec<(u64, i64)>,
    /// redb's and fjall's key (namespace and path).
    keys: Vec<String>,
    values: Vec<[u8; 48]>,
}

impl Prepared {
    fn new(keys: std::ops::Range<u64>, salt: u64) -> Prepared {
        Prepared {
            paths: keys.clone().map(common::path).collect(),
            fingerprints: keys.clone().map(|i| common::fingerprint(i, salt)).collect(),
            hashes: keys.clone().map(|i| common::hash(i, salt)).collect(),
            size_mtime: keys.clone().map(common::size_mtime).collect(),
            keys: keys.clone().map(redb_key).collect(),
            values: keys.map(|i| common::fingerprint_bytes(i, salt)).collect(),
        }
    }
}

/// Waits until the disk is quiet: `sync` (every file system's dirty pages written) and
/// a short pause, so that a bulk transaction's `fdatasync` does not wait behind another
/// engine's write-back. Outside the timing.
fn settle() -> R<()> {
    std::process::Command::new("sync").status()?;
    std::thread::sleep(Duration::from_millis(5));
    Ok(())
}

/// The engines' order in bulk round `round`: each round starts one engine later, so that
/// none always runs right after the same one (whose background work may still be
/// running).
fn round_order(round: u64, engines: usize) -> impl Iterator<Item = usize> {
    let first = usize::try_from(round).unwrap_or(0) % engines;
    (0..engines).map(move |k| (first + k) % engines)
}

/// Goal 3: 10,000 upserts in one durable transaction; first with the keys and values made
/// inside the timing (as every other workload here does), then made beforehand, so that
/// only each engine's own work is timed (the figures: raw 1.1 ms, redb 6.9 ms).
fn bulk(rounds: usize, tables: &mut Vec<Table>) -> R<()> {
    println!("\n== 10,000 upserts in one durable transaction ({rounds} rounds)");
    let dir = tmp_dir();
    let names = ["raw", "walstore", "sqlite", "redb", "fjall"];
    let mut dbs: Vec<Db> = names
        .iter()
        .map(|n| Db::open(n, &dir.path().join(n)))
        .collect::<R<_>>()?;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for round in 0..rounds as u64 {
        for k in round_order(round, dbs.len()) {
            settle()?;
            let started = Instant::now();
            dbs[k].put(0..10_000, round + 1)?;
            samples[k].push(started.elapsed());
        }
    }
    tables.push(ratio_table(
        "10,000 upserts, one durable transaction: median, × raw",
        &names,
        &mut samples,
        0,
    ));
    println!("\n== the same, keys and values made before the timing ({rounds} rounds)");
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for round in 0..rounds as u64 {
        let batch = Prepared::new(0..10_000, rounds as u64 + round + 1);
        for k in round_order(round, dbs.len()) {
            let owned = Owned::for_engine(&dbs[k], &batch);
            settle()?;
            let started = Instant::now();
            dbs[k].put_prepared(&batch, owned)?;
            samples[k].push(started.elapsed());
        }
    }
    tables.push(ratio_table(
        "10,000 upserts, one durable transaction, inputs made beforehand: median, × raw",
        &names,
        &mut samples,
        0,
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------
// The 1M-entry databases

fn big_dir(engine: &str) -> PathBuf {
    common::data_dir(&format!("peers-1m-{engine}"))
}

fn build_big(engine: &str) -> R<PathBuf> {
    let dir = big_dir(engine);
    let marker = dir.with_extension("complete");
    if marker.exists() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    match engine {
        "walstore" => common::fill_store(&dir.join("store"), N_BIG)?,
        // The same with `keep_fallback(true)`: a fallback, the WAL since the empty store.
        "walstore_fallback" => common::fill_store_with(
            Store::options().keep_fallback(true),
            &dir.join("store"),
            N_BIG,
        )?,
        "sqlite" => {
            let mut conn = sqlite_open(&dir.join("db.sqlite"))?;
            let txn = conn.transaction()?;
            for i in 0..N_BIG {
                sqlite_put(&txn, i, 0)?;
            }
            txn.commit()?;
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        "redb" => {
            let db = redb::Database::create(dir.join("db.redb"))?;
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(TABLE)?;
                for i in 0..N_BIG {
                    table.insert(redb_key(i).as_str(), &common::fingerprint_bytes(i, 0)[..])?;
                }
            }
            txn.commit()?;
        }
        "fjall" => {
            let (db, ks) = fjall_open(&dir.join("fjall"))?;
            let mut i = 0;
            while i < N_BIG {
                let mut batch = db.batch();
                for j in i..(i + 10_000).min(N_BIG) {
                    batch.insert(&ks, redb_key(j), common::fingerprint_bytes(j, 0).to_vec());
                }
                batch.commit()?;
                i += 10_000;
            }
            db.persist(PersistMode::SyncAll)?;
            ks.rotate_memtable_and_wait()?;
        }
        other => return Err(format!("unknown engine {other}").into()),
    }
    println!(
        "  built {engine} 1M in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, b"")?;
    Ok(dir)
}

/// In a child process: open `engine`'s 1M database, get one key; print ns and RSS KiB.
fn child_open(engine: &str, dir: &Path) -> R<()> {
    let key = N_BIG / 2 + 17;
    let started = Instant::now();
    let found = match engine {
        "walstore" => {
            let store = Store::open_read_only(dir.join("store"))?;
            let found = store
                .read()
                .fingerprint(common::NS, &common::path(key))?
                .is_some();
            (found, started.elapsed(), common::rss_kib())
        }
        "walstore_rw" => {
            let store = Store::open(dir.join("store"))?;
            let found = store
                .read()
                .fingerprint(common::NS, &common::path(key))?
                .is_some();
            (found, started.elapsed(), common::rss_kib())
        }
        "sqlite" => {
            let conn = Connection::open_with_flags(
                dir.join("db.sqlite"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let found: Option<i64> = conn
                .query_row(
                    "SELECT size FROM fingerprints WHERE ns = ?1 AND path = ?2",
                    params![common::NS, common::path(key)],
                    |r| r.get(0),
                )
                .ok();
            (found.is_some(), started.elapsed(), common::rss_kib())
        }
        "redb" => {
            let db = redb::ReadOnlyDatabase::open(dir.join("db.redb"))?;
            let txn = db.begin_read()?;
            let table = txn.open_table(TABLE)?;
            let found = table.get(redb_key(key).as_str())?.is_some();
            (found, started.elapsed(), common::rss_kib())
        }
        "fjall" => {
            let (_db, ks) = fjall_open(&dir.join("fjall"))?;
            let found = ks.get(redb_key(key))?.is_some();
            (found, started.elapsed(), common::rss_kib())
        }
        other => return Err(format!("unknown engine {other}").into()),
    };
    if !found.0 {
        return Err("key not found".into());
    }
    println!("{} {}", found.1.as_nanos(), found.2.unwrap_or(0));
    Ok(())
}

fn spawn_open(engine: &str, dir: &Path) -> R<(Duration, u64)> {
    let out = Command::new(std::env::current_exe()?)
        .arg("child-open")
        .arg(engine)
        .arg(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "child {engine} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    let ns = fields.next().ok_or("no output")??;
    let rss = fields.next().ok_or("no rss")??;
    Ok((Duration::from_nanos(ns), rss))
}

/// Goal 5: open + get one key cold (fresh process after dropping caches), size, RSS.
fn open(rounds: usize, tables: &mut Vec<Table>) -> R<()> {
    println!("\n== open + get one key, 1,000,000 fingerprints, fresh process ({rounds} rounds)");
    let dirs: Vec<PathBuf> = ENGINES.iter().map(|e| build_big(e)).collect::<R<_>>()?;
    let fallback = build_big("walstore_fallback")?;
    let cold = common::drop_caches();
    if !cold {
        println!("  cannot drop the page cache (not root?): figures are WARM");
    }
    let names = [
        "walstore",
        "walstore_rw",
        "sqlite",
        "redb",
        "fjall",
        "walstore_fallback",
    ];
    let dir_of = |name: &str| -> &PathBuf {
        let engine = match name {
            "walstore_fallback" => return &fallback,
            "walstore_rw" => "walstore",
            other => other,
        };
        &dirs[ENGINES.iter().position(|e| *e == engine).unwrap_or(0)]
    };
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let mut rss: Vec<u64> = vec![0; names.len()];
    for _ in 0..rounds {
        for (k, name) in names.iter().enumerate() {
            if cold {
                common::drop_caches();
            }
            let child = if *name == "walstore_fallback" {
                "walstore"
            } else {
                name
            };
            let (d, r) = spawn_open(child, dir_of(name))?;
            samples[k].push(d);
            rss[k] = r;
        }
    }
    let mut table = Table::new(format!(
        "open + get one key, 1M, {}: median, × SQLite; RSS after open; on-disk size",
        if cold {
            "cold cache, fresh process"
        } else {
            "warm cache, fresh process"
        }
    ));
    let sqlite = median(&mut samples[2]);
    for (k, name) in names.iter().enumerate() {
        let m = median(&mut samples[k]);
        let size = common::dir_allocated_bytes(dir_of(name));
        table.row(
            name,
            format!("{} RSS {:.1} MiB", secs(m), rss[k] as f64 / 1024.0),
            format!(
                "{:.2}× SQLite; {:.1} MB on disk",
                m.as_secs_f64() / sqlite.as_secs_f64(),
                size as f64 / 1e6
            ),
        );
    }
    tables.push(table);
    Ok(())
}

/// Goal 5: full scan of the 1M entries, warm.
fn scan(rounds: usize, tables: &mut Vec<Table>) -> R<()> {
    println!("\n== full scan of 1,000,000 fingerprints, warm ({rounds} rounds)");
    let dirs: Vec<PathBuf> = ENGINES.iter().map(|e| build_big(e)).collect::<R<_>>()?;
    let walstore = Store::open_read_only(dirs[0].join("store"))?;
    let sqlite = Connection::open_with_flags(
        dirs[1].join("db.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let redb = redb::ReadOnlyDatabase::open(dirs[2].join("db.redb"))?;
    let (_fjall_db, fjall) = fjall_open(&dirs[3].join("fjall"))?;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); ENGINES.len()];
    for _ in 0..rounds {
        for (k, name) in ENGINES.iter().enumerate() {
            let started = Instant::now();
            let mut n = 0u64;
            let mut sum = 0u64;
            match *name {
                "walstore" => {
                    // Borrowed, as redb's and fjall's loops are (the owned
                    // `fingerprints()` allocates a path and a hash per entry).
                    let read = walstore.read();
                    read.for_each_fingerprint(common::NS, |path, fp| {
                        n += 1;
                        sum += fp.size + path.len() as u64 + u64::from(fp.hash[0]);
                        std::ops::ControlFlow::Continue(())
                    })?;
                }
                "sqlite" => {
                    let mut stmt = sqlite
                        .prepare_cached("SELECT path, hash, size, mtime FROM fingerprints")?;
                    let mut rows = stmt.query([])?;
                    while let Some(row) = rows.next()? {
                        let path: String = row.get(0)?;
                        let hash: Vec<u8> = row.get(1)?;
                        let size: i64 = row.get(2)?;
                        n += 1;
                        sum += size as u64 + path.len() as u64 + u64::from(hash[0]);
                    }
                }
                "redb" => {
                    let txn = redb.begin_read()?;
                    let table = txn.open_table(TABLE)?;
                    for entry in table.iter()? {
                        let (key, value) = entry?;
                        let value = value.value();
                        n += 1;
                        sum += u64::from_le_bytes(value[32..40].try_into()?)
                            + key.value().len() as u64
                            + u64::from(value[0]);
                    }
                }
                "fjall" => {
                    for guard in fjall.iter() {
                        let (key, value) = guard.into_inner()?;
                        n += 1;
                        sum += u64::from_le_bytes(value[32..40].try_into()?)
                            + key.len() as u64
                            + u64::from(value[0]);
                    }
                }
                _ => {}
            }
            samples[k].push(started.elapsed());
            if n != N_BIG {
                return Err(format!("{name} scanned {n} entries").into());
            }
            std::hint::black_box(sum);
        }
    }
    tables.push(ratio_table(
        "full scan of 1M (decoded), warm: median, × redb",
        &ENGINES,
        &mut samples,
        2,
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------
// FTS: SQLite FTS5 against walstore

fn fts(tables: &mut Vec<Table>) -> R<()> {
    let docs = corpus::load(corpus::cap_bytes());
    let bytes: u64 = docs.iter().map(|d| d.text.len() as u64).sum();
    println!(
        "\n== FTS: {} documents, {:.1} MB (WALSTORE_FTS_CORPUS_MB to change)",
        docs.len(),
        bytes as f64 / 1e6
    );
    let dir = tmp_dir();
    // Build: batches of 256 documents, each batch one durable transaction.
    let started = Instant::now();
    let store = Store::open(dir.path().join("walstore"))?;
    for batch in docs.chunks(256) {
        let mut txn = store.begin_write();
        for doc in batch {
            txn.index_doc(&doc.id, &doc.text);
        }
        txn.commit()?;
    }
    let walstore_build = started.elapsed();
    let started = Instant::now();
    let mut conn = Connection::open(dir.path().join("fts.sqlite"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE VIRTUAL TABLE docs USING fts5(path UNINDEXED, body);")?;
    for (b, batch) in docs.chunks(256).enumerate() {
        let txn = conn.transaction()?;
        {
            let mut stmt =
                txn.prepare_cached("INSERT INTO docs(rowid, path, body) VALUES (?1, ?2, ?3)")?;
            for (k, doc) in batch.iter().enumerate() {
                stmt.execute(params![(b * 256 + k + 1) as i64, doc.id, doc.text])?;
            }
        }
        txn.commit()?;
    }
    let sqlite_build = started.elapsed();
    let mb = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    let mut table = Table::new("FTS: walstore vs SQLite FTS5 (unicode61, text stored)");
    table.row(
        "build",
        format!(
            "walstore {:.1} MB/s, SQLite {:.1} MB/s",
            mb(walstore_build),
            mb(sqlite_build)
        ),
        format!(
            "{:.2}× SQLite's rate",
            mb(walstore_build) / mb(sqlite_build)
        ),
    );

    // 1-term query, top 10.
    let [_, medium, ..] = corpus::pick_terms(&docs);
    let read = store.read();
    let mut w = Vec::new();
    let mut s = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        std::hint::black_box(read.search(&medium.0, 10)?);
        w.push(started.elapsed());
        let started = Instant::now();
        let mut stmt = conn
            .prepare_cached("SELECT rowid FROM docs WHERE docs MATCH ?1 ORDER BY rank LIMIT 10")?;
        let ids: Vec<i64> = stmt
            .query_map([&medium.0], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        std::hint::black_box(ids);
        s.push(started.elapsed());
    }
    let (wm, sm) = (median(&mut w), median(&mut s));
    table.row(
        "1-term p50",
        format!(
            "{:?} (df {}): walstore {}, SQLite {}",
            medium.0,
            medium.1,
            secs(wm),
            secs(sm)
        ),
        format!("{:.2}× SQLite's time", wm.as_secs_f64() / sm.as_secs_f64()),
    );

    // Replace one ~5 KB document, durably.
    let (k, doc) = docs
        .iter()
        .enumerate()
        .min_by_key(|(_, d)| d.text.len().abs_diff(5_000))
        .ok_or("no document")?;
    let edited = format!("{}\n// edited: atomicWriteJson retry\n", doc.text);
    let mut w = Vec::new();
    let mut s = Vec::new();
    for round in 0..400 {
        let text = if round % 2 == 0 { &edited } else { &doc.text };
        let started = Instant::now();
        let mut txn = store.begin_write();
        txn.index_doc(&doc.id, text);
        txn.commit()?;
        w.push(started.elapsed());
        let started = Instant::now();
        let txn = conn.transaction()?;
        txn.execute("DELETE FROM docs WHERE rowid = ?1", [(k + 1) as i64])?;
        txn.execute(
            "INSERT INTO docs(rowid, path, body) VALUES (?1, ?2, ?3)",
            params![(k + 1) as i64, doc.id, text],
        )?;
        txn.commit()?;
        s.push(started.elapsed());
    }
    let (wm, sm) = (median(&mut w), median(&mut s));
    let (w99, s99) = (
        common::quantile(&mut w, 0.99),
        common::quantile(&mut s, 0.99),
    );
    table.row(
        "replace p50",
        format!(
            "walstore {} (p99 {}), SQLite {} (p99 {})",
            secs(wm),
            secs(w99),
            secs(sm),
            secs(s99)
        ),
        format!("{:.2}× SQLite's time", wm.as_secs_f64() / sm.as_secs_f64()),
    );
    drop(read);
    store.close()?;
    drop(conn);
    table.row(
        "size",
        format!(
            "walstore {:.1} MB, SQLite {:.1} MB (source {:.1} MB)",
            common::dir_allocated_bytes(&dir.path().join("walstore")) as f64 / 1e6,
            (std::fs::metadata(dir.path().join("fts.sqlite"))?.len()) as f64 / 1e6,
            bytes as f64 / 1e6
        ),
        String::new(),
    );
    tables.push(table);
    Ok(())
}

fn main() -> R<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child-open") {
        let engine = args.get(1).ok_or("engine")?;
        let dir = PathBuf::from(args.get(2).ok_or("dir")?);
        return child_open(engine, &dir);
    }
    let quick = args.iter().any(|a| a == "quick");
    let picked: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "quick")
        .collect();
    let want = |w: &str| picked.is_empty() || picked.contains(&w);
    let (rounds, run) = if quick {
        (3, Duration::from_secs(1))
    } else {
        (10, Duration::from_secs(3))
    };
    println!(
        "walstore peers: {} cores, started {:?}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::time::SystemTime::now()
    );
    let mut tables = Vec::new();
    if want("single") {
        single(rounds, &mut tables)?;
    }
    if want("threads") {
        threads(run, &mut tables)?;
    }
    if want("bulk") {
        bulk(rounds.max(5) + 5, &mut tables)?;
    }
    if want("open") {
        open(rounds.max(5) + 2, &mut tables)?;
    }
    if want("scan") {
        scan(rounds.max(3) / 2 + 2, &mut tables)?;
    }
    if want("fts") {
        fts(&mut tables)?;
    }
    println!("\n==== summary");
    for table in &tables {
        println!("\n{}", table.title);
        for (name, figure, ratio) in &table.rows {
            println!("  {name:<12} {figure:<50} {ratio}");
        }
    }
    Ok(())
}
