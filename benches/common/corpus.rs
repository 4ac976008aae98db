//! The FTS corpus: every `*.rs` file under the cargo registry's unpacked sources, sorted
//! by path, capped in bytes.
#![allow(dead_code, reason = "each bench uses a part of this module")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use walstore::fts::DocTerms;

/// One document: its id (path relative to the registry sources) and its text.
pub struct Doc {
    pub id: String,
    pub text: String,
}

/// `$CARGO_HOME/registry/src`, default `~/.cargo/registry/src`.
pub fn root() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cargo"),
        PathBuf::from,
    );
    cargo_home.join("registry").join("src")
}

/// `WALSTORE_FTS_CORPUS_MB` (default 20) in bytes.
pub fn cap_bytes() -> u64 {
    std::env::var("WALSTORE_FTS_CORPUS_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(20)
        * 1_000_000
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            walk(&path, out);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The corpus, at most `cap` bytes of text (UTF-8 files only, files over 1 MB skipped).
pub fn load(cap: u64) -> Vec<Doc> {
    let root = root();
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths.sort();
    let mut docs = Vec::new();
    let mut total = 0u64;
    for path in paths {
        if total >= cap {
            break;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.len() > 1_000_000 {
            continue;
        }
        total += text.len() as u64;
        let id = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        docs.push(Doc { id, text });
    }
    assert!(!docs.is_empty(), "no *.rs files under {}", root.display());
    docs
}

/// Terms by document frequency: (rare, medium, ~20%, ~50%, frequent).
pub fn pick_terms(docs: &[Doc]) -> [(String, usize); 5] {
    let mut df: HashMap<String, usize> = HashMap::new();
    for doc in docs {
        for (term, _) in DocTerms::from_text(&doc.text).terms {
            *df.entry(term).or_default() += 1;
        }
    }
    let mut terms: Vec<(String, usize)> = df
        .into_iter()
        .filter(|(t, _)| t.len() >= 4 && t.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    terms.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let n = docs.len();
    let near = |target: usize| -> (String, usize) {
        let at = terms.partition_point(|(_, d)| *d < target.max(2));
        terms[at.min(terms.len() - 1)].clone()
    };
    let frequent = terms.last().cloned().expect("terms");
    [
        near(n / 1000),
        near(n / 20),
        near(n / 5),
        near(n / 2),
        frequent,
    ]
}
