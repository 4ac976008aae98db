//! Point lookups below, at and above a snapshot's first key agree with a
//! model, across checkpoints that copy blocks whole, on tiny and empty snapshots, on the
//! real fs (mmap + madvise) and the simulator.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Backend, Rng, fingerprint};
use walstore::{Store, Value};

#[derive(Default, Clone)]
struct Model {
    meta: BTreeMap<String, u64>,
    config: BTreeMap<String, u64>,
    fps: BTreeMap<(String, String), u64>,
    docs: BTreeSet<String>,
}

const NS: [&str; 4] = ["", "a", "b", "zz"];

fn path(rng: &mut Rng, long: bool) -> String {
    let n = rng.below(400);
    if long {
        format!("src/{n:05}/{}", "x".repeat(rng.below(120) as usize))
    } else {
        format!("p{n}")
    }
}

fn check(store: &Store, model: &Model, rng: &mut Rng, what: &str) {
    let read = store.read();
    let mut probes: Vec<(String, String)> = Vec::new();
    for (ns, p) in model.fps.keys() {
        probes.push((ns.clone(), p.clone()));
        probes.push((ns.clone(), format!("{p}\u{0}")));
        let mut shorter = p.clone();
        shorter.pop();
        probes.push((ns.clone(), shorter));
    }
    for ns in NS {
        probes.push((ns.to_string(), String::new()));
        probes.push((ns.to_string(), "\u{0}".into()));
        let long = rng.below(2) == 0;
        probes.push((ns.to_string(), path(rng, long)));
    }
    for (ns, p) in &probes {
        let got = read.fingerprint(ns, p).expect("fingerprint");
        let want = model
            .fps
            .get(&(ns.clone(), p.clone()))
            .map(|i| fingerprint(*i));
        assert_eq!(got, want, "{what}: fingerprint {ns:?} {p:?}");
    }
    for k in 0..40 {
        let key = format!("k{k}");
        let got = read.meta(&key).expect("meta");
        let want = model.meta.get(&key).map(|v| Value::from(*v));
        assert_eq!(got, want, "{what}: meta {key}");
        let got = read.config(&key).expect("config");
        let want = model.config.get(&key).map(|v| Value::from(*v));
        assert_eq!(got, want, "{what}: config {key}");
    }
    for d in 0..30 {
        let doc = format!("d{d}");
        let got = read.doc(&doc).expect("doc").is_some();
        assert_eq!(got, model.docs.contains(&doc), "{what}: doc {doc}");
    }
    assert_eq!(read.meta("").expect("meta"), None);
}

fn scenario(backend: &Backend, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut model = Model::default();
    let store = backend
        .options()
        .background_checkpoints(false)
        .checkpoint_wal_bytes(0)
        .open(&backend.dir)
        .expect("open");
    // An empty snapshot first.
    store.checkpoint().expect("checkpoint empty");
    check(&store, &model, &mut rng, "empty");
    let ro = backend
        .options()
        .read_only(true)
        .open(&backend.dir)
        .expect("ro");
    check(&ro, &model, &mut rng, "empty ro");
    drop(ro);
    let long = rng.below(2) == 0;
    for round in 0..12u64 {
        let mut txn = store.begin_write();
        let ops = match round {
            0 => 1,
            1 => 3,
            _ => 1 + rng.below(300),
        };
        for _ in 0..ops {
            let i = rng.next_u64() % 1_000_000;
            match rng.below(10) {
                0 if !model.fps.is_empty() => {
                    // Delete the smallest key sometimes, or a random one.
                    let key = if rng.below(2) == 0 {
                        model.fps.keys().next().cloned().unwrap()
                    } else {
                        let n = rng.below(model.fps.len() as u64) as usize;
                        model.fps.keys().nth(n).cloned().unwrap()
                    };
                    txn.delete_fingerprint(&key.0, &key.1);
                    model.fps.remove(&key);
                }
                1 => {
                    let k = format!("k{}", rng.below(40));
                    if rng.below(3) == 0 {
                        txn.delete_meta(&k);
                        model.meta.remove(&k);
                    } else {
                        txn.set_meta(&k, Value::from(i));
                        model.meta.insert(k, i);
                    }
                }
                2 => {
                    let k = format!("k{}", rng.below(40));
                    if rng.below(3) == 0 {
                        txn.delete_config(&k);
                        model.config.remove(&k);
                    } else {
                        txn.set_config(&k, Value::from(i));
                        model.config.insert(k, i);
                    }
                }
                3 => {
                    let d = format!("d{}", rng.below(30));
                    if rng.below(3) == 0 {
                        txn.remove_doc(&d);
                        model.docs.remove(&d);
                    } else {
                        txn.index_doc(&d, "alpha beta gamma");
                        model.docs.insert(d);
                    }
                }
                _ => {
                    let ns = NS[rng.below(NS.len() as u64) as usize].to_string();
                    let p = path(&mut rng, long);
                    txn.put_fingerprint(&ns, &p, fingerprint(i));
                    model.fps.insert((ns, p), i);
                }
            }
        }
        txn.commit().expect("commit");
        let what = format!("seed {seed} round {round}");
        check(
            &store,
            &model,
            &mut rng,
            &format!("{what} before checkpoint"),
        );
        store.checkpoint().expect("checkpoint");
        check(&store, &model, &mut rng, &format!("{what} writer"));
        let ro = backend
            .options()
            .read_only(true)
            .open(&backend.dir)
            .expect("ro");
        check(&ro, &model, &mut rng, &format!("{what} read-only"));
    }
    drop(store);
    let store = backend
        .options()
        .read_only(true)
        .open(&backend.dir)
        .expect("reopen");
    check(&store, &model, &mut rng, &format!("seed {seed} reopened"));
}

#[test]
fn point_lookups_around_the_first_key_match_a_model() {
    for seed in 1..=6u64 {
        scenario(&Backend::fs(), seed);
        scenario(&Backend::sim(seed), seed + 100);
    }
}
