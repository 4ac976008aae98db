//! Helpers shared by the benches (and by `benches/peers`): where bench files live, the
//! fingerprint data set, cached pre-built stores, percentiles and resident memory.
#![allow(dead_code, reason = "each bench uses a part of this module")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use walstore::{Durability, Fingerprint, Store};

/// Bump when the cached data sets under `target/bench-data/` must be rebuilt.
pub const DATA_VERSION: &str = "v3";
/// The namespace every bench fingerprint lives in.
pub const NS: &str = "code";
/// Upserts per transaction when filling a store.
const FILL_BATCH: u64 = 10_000;

/// The target directory: `CARGO_TARGET_DIR`, else `target` (relative to the crate root,
/// which is where cargo runs benches). Bench files go here so they are on the real disk
/// (the default temp dir may be a tmpfs).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), Into::into)
}

/// A fresh temporary directory under the target directory.
pub fn bench_dir() -> tempfile::TempDir {
    let base = target_dir().join("bench-tmp");
    std::fs::create_dir_all(&base).expect("bench-tmp dir");
    tempfile::tempdir_in(base).expect("tempdir")
}

/// `target/bench-data/<version>/<name>`: cached data sets reused across runs.
pub fn data_dir(name: &str) -> PathBuf {
    target_dir()
        .join("bench-data")
        .join(DATA_VERSION)
        .join(name)
}

/// The path of fingerprint `i` (zero-padded, so `i` order is key order).
pub fn path(i: u64) -> String {
    format!("src/mod{:04}/file{i:07}.rs", i / 1000)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A 32-byte pseudo-random content hash for `i` (`salt` changes it for upserts).
pub fn hash(i: u64, salt: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (k, chunk) in out.chunks_mut(8).enumerate() {
        let word = splitmix(i ^ salt.rotate_left(17) ^ ((k as u64) << 56));
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// The size and mtime of fingerprint `i`.
pub fn size_mtime(i: u64) -> (u64, i64) {
    (
        1_000 + splitmix(i) % 100_000,
        1_700_000_000_000_000_000 + (i as i64) * 1_000,
    )
}

/// Fingerprint `i` (`salt` = 0 for the data set as filled, anything else for an upsert).
pub fn fingerprint(i: u64, salt: u64) -> Fingerprint {
    let (size, mtime) = size_mtime(i);
    Fingerprint::new(hash(i, salt), size, mtime).expect("fingerprint")
}

/// The same fingerprint as the 48 bytes the peers store (hash, size LE, mtime LE).
pub fn fingerprint_bytes(i: u64, salt: u64) -> [u8; 48] {
    let (size, mtime) = size_mtime(i);
    let mut out = [0u8; 48];
    out[..32].copy_from_slice(&hash(i, salt));
    out[32..40].copy_from_slice(&size.to_le_bytes());
    out[40..].copy_from_slice(&mtime.to_le_bytes());
    out
}

/// Fills a store with fingerprints `0..n` quickly: `Durability::None` batches, then a
/// sync and one checkpoint.
pub fn fill_store(dir: &Path, n: u64) -> walstore::Result<()> {
    fill_store_with(Store::options(), dir, n)
}

/// [`fill_store`] with `options` (durability and checkpoints are set here).
pub fn fill_store_with(options: walstore::Options, dir: &Path, n: u64) -> walstore::Result<()> {
    let store = options
        .durability(Durability::None)
        .checkpoint_wal_bytes(0)
        .open(dir)?;
    let mut i = 0;
    while i < n {
        let mut txn = store.begin_write();
        for j in i..(i + FILL_BATCH).min(n) {
            txn.put_fingerprint(NS, &path(j), fingerprint(j, 0));
        }
        txn.commit()?;
        i += FILL_BATCH;
    }
    store.sync()?;
    store.checkpoint()?;
    store.close()
}

/// A checkpointed store of `n` fingerprints cached at `data_dir(name)`: built on first
/// use (or when the cached one no longer opens, e.g. after a format change), then reused.
pub fn cached_store(name: &str, n: u64) -> PathBuf {
    let dir = data_dir(name);
    let marker = dir.with_extension("complete");
    if marker.exists() {
        let ok = Store::open_read_only(&dir)
            .and_then(|s| s.read().fingerprint(NS, &path(n - 1)))
            .is_ok_and(|fp| fp.is_some());
        if ok {
            return dir;
        }
        eprintln!("cached store {} does not open; rebuilding", dir.display());
    }
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().expect("parent")).expect("bench-data dir");
    let started = Instant::now();
    fill_store(&dir, n).expect("fill store");
    eprintln!(
        "built {} ({n} fingerprints) in {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, b"").expect("marker");
    dir
}

/// One fingerprint as the naive JSON-file indexer keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct JsonFingerprint {
    pub hash: String,
    pub size: u64,
    pub mtime: i64,
}

/// Fingerprint `i` in the JSON baseline's form (hash in hex).
pub fn json_fingerprint(i: u64, salt: u64) -> JsonFingerprint {
    let (size, mtime) = size_mtime(i);
    let hash = hash(i, salt).iter().map(|b| format!("{b:02x}")).collect();
    JsonFingerprint { hash, size, mtime }
}

/// The JSON baseline's whole file: `{"code": {path: fingerprint, ...}}`.
pub type JsonIndex =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, JsonFingerprint>>;

/// The JSON baseline holding fingerprints `0..n`.
pub fn json_index(n: u64) -> JsonIndex {
    let mut map = std::collections::BTreeMap::new();
    for i in 0..n {
        map.insert(path(i), json_fingerprint(i, 0));
    }
    let mut index = JsonIndex::new();
    index.insert(NS.to_owned(), map);
    index
}

/// The naive atomic rewrite: serialize the whole index, write a temp file, fsync it,
/// rename it over the old one, fsync the directory.
pub fn json_atomic_rewrite(index: &JsonIndex, file: &Path) -> std::io::Result<u64> {
    use std::io::Write;
    let bytes = serde_json::to_vec(index).map_err(std::io::Error::other)?;
    let tmp = file.with_extension("json.tmp");
    let mut out = std::fs::File::create(&tmp)?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, file)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()?;
    Ok(bytes.len() as u64)
}

/// Total size of the regular files in `dir` (recursively).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Allocated size (blocks) of the regular files in `dir`, which ignores sparse tails.
pub fn dir_allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_allocated_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// This process's resident memory in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Drops the page cache (needs root). Returns whether it worked.
pub fn drop_caches() -> bool {
    // SAFETY-free: `sync` first so dirty pages are written and can be dropped.
    let synced = std::process::Command::new("sync")
        .status()
        .is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok()
}

/// The `q`-quantile (0..=1) of `samples`, sorted in place.
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// `123.4 µs` style.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}
