//! A seeded workload over every collection, and the model it is checked against: plain
//! BTreeMaps replaying the same transactions, printed in the format of `common::dump`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use walstore::{DocTerms, Fingerprint, FtsStats, Value, WriteTxn};

/// One logical change.
#[derive(Debug, Clone)]
pub enum Change {
    SetMeta(String, Value),
    DelMeta(String),
    SetConfig(String, Value),
    DelConfig(String),
    PutFingerprint(String, String, Fingerprint),
    DelFingerprint(String, String),
    IndexDoc(String, String),
    RemoveDoc(String),
}

/// One transaction.
#[derive(Debug, Clone)]
pub struct Txn(pub Vec<Change>);

impl Txn {
    pub fn apply_to(&self, write: &mut WriteTxn) {
        for change in &self.0 {
            match change {
                Change::SetMeta(k, v) => write.set_meta(k, v.clone()),
                Change::DelMeta(k) => write.delete_meta(k),
                Change::SetConfig(k, v) => write.set_config(k, v.clone()),
                Change::DelConfig(k) => write.delete_config(k),
                Change::PutFingerprint(ns, p, fp) => write.put_fingerprint(ns, p, fp.clone()),
                Change::DelFingerprint(ns, p) => write.delete_fingerprint(ns, p),
                Change::IndexDoc(d, t) => write.index_doc(d, t),
                Change::RemoveDoc(d) => write.remove_doc(d),
            };
        }
    }
}

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 16] = [
    "atomicWrite",
    "fsync",
    "rename",
    "torn",
    "tail",
    "checkpoint",
    "snapshot",
    "WAL_SEGMENT",
    "parse2d",
    "indexer",
    "fingerprint",
    "größe",
    "lock",
    "reader",
    "writer",
    "crash",
];

/// A seeded sequence of transactions.
pub struct Workload {
    pub txns: Vec<Txn>,
}

impl Workload {
    pub fn generate(seed: u64, count: usize) -> Workload {
        let mut rng = Rng(seed);
        let txns = (0..count)
            .map(|_| Txn((0..1 + rng.below(4)).map(|_| change(&mut rng)).collect()))
            .collect();
        Workload { txns }
    }
}

fn value(rng: &mut Rng) -> Value {
    match rng.below(5) {
        0 => Value::Int(rng.next() as i64),
        1 => Value::from(format!("v{}", rng.below(1000))),
        2 => Value::Float(rng.below(1000) as f64 / 8.0),
        3 => Value::List(vec![Value::Bool(rng.below(2) == 0), Value::Null]),
        _ => Value::Bytes(rng.next().to_le_bytes().to_vec()),
    }
}

fn change(rng: &mut Rng) -> Change {
    let key = format!("k{}", rng.below(20));
    let ns = if rng.below(2) == 0 { "code" } else { "docs" }.to_owned();
    let path = format!("src/p{}.rs", rng.below(50));
    let doc = format!("doc{}", rng.below(30));
    match rng.below(10) {
        0 | 1 => Change::SetMeta(key, value(rng)),
        2 => Change::DelMeta(key),
        3 => Change::SetConfig(key, value(rng)),
        4 => Change::DelConfig(key),
        5 | 6 => {
            let hash = rng.next().to_le_bytes().repeat(1 + rng.below(4) as usize);
            Change::PutFingerprint(
                ns,
                path,
                Fingerprint::new(hash, rng.below(1 << 40), rng.next() as i64).expect("fingerprint"),
            )
        }
        7 => Change::DelFingerprint(ns, path),
        8 => {
            let words: Vec<&str> = (0..1 + rng.below(12))
                .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
                .collect();
            Change::IndexDoc(doc, words.join(" "))
        }
        _ => Change::RemoveDoc(doc),
    }
}

/// The expected state after each prefix of the workload, as `common::dump` prints it.
pub struct Model {
    /// `dumps[lsn]`: the state after transactions `1..=lsn`.
    pub dumps: Vec<String>,
}

#[derive(Default)]
struct State {
    meta: BTreeMap<String, Value>,
    config: BTreeMap<String, Value>,
    fingerprints: BTreeMap<(String, String), Fingerprint>,
    docs: BTreeMap<String, String>,
}

impl Model {
    pub fn replay(workload: &Workload) -> Model {
        let mut state = State::default();
        let mut dumps = vec![state.dump()];
        for txn in &workload.txns {
            for change in &txn.0 {
                state.apply(change);
            }
            dumps.push(state.dump());
        }
        Model { dumps }
    }
}

impl State {
    fn apply(&mut self, change: &Change) {
        match change.clone() {
            Change::SetMeta(k, v) => drop(self.meta.insert(k, v)),
            Change::DelMeta(k) => drop(self.meta.remove(&k)),
            Change::SetConfig(k, v) => drop(self.config.insert(k, v)),
            Change::DelConfig(k) => drop(self.config.remove(&k)),
            Change::PutFingerprint(ns, p, fp) => drop(self.fingerprints.insert((ns, p), fp)),
            Change::DelFingerprint(ns, p) => drop(self.fingerprints.remove(&(ns, p))),
            Change::IndexDoc(d, t) => drop(self.docs.insert(d, t)),
            Change::RemoveDoc(d) => drop(self.docs.remove(&d)),
        }
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.meta {
            out += &format!("meta {k}={v:?}\n");
        }
        for (k, v) in &self.config {
            out += &format!("config {k}={v:?}\n");
        }
        for ((ns, path), fp) in &self.fingerprints {
            out += &format!("fp {ns} {path} {fp:?}\n");
        }
        let mut stats = FtsStats::default();
        for (doc, text) in &self.docs {
            let terms = DocTerms::from_text(text);
            stats.docs += 1;
            stats.tokens += terms.token_count();
            out += &format!("doc {doc} {:?}\n", Some(terms));
        }
        out += &format!("stats {stats:?}\n");
        out
    }
}
