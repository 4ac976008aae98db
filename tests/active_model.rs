//! `Version` with the two-tier `Active` overlay against a BTreeMap
//! model: gets, deletions, full and prefix scans, runs pushed, freeze/thaw, and old
//! versions held by readers staying unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::Rng;
use std::collections::BTreeMap;

use walstore::model::op::KvState;
use walstore::state::{ReplayBatch, Version};

fn key(i: u64) -> Vec<u8> {
    // Two "prefix groups" so prefix scans are exercised.
    format!("{}k{:04}", if i.is_multiple_of(3) { 'a' } else { 'b' }, i).into_bytes()
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn check(version: &Version, model: &Model, keys: u64, ctx: &str) {
    for i in 0..keys {
        let k = key(i);
        let got = Version::get(version, &k).unwrap().map(|v| v.to_vec());
        assert_eq!(
            got.as_ref(),
            model.get(&k),
            "{ctx}: get {:?}",
            String::from_utf8_lossy(&k)
        );
    }
    for prefix in [&b""[..], b"a", b"b", b"bk00"] {
        let scanned: Vec<(Vec<u8>, Vec<u8>)> = version
            .scan(prefix)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k, v.to_vec())
            })
            .collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            scanned,
            expected,
            "{ctx}: scan {:?}",
            String::from_utf8_lossy(prefix)
        );
    }
}

#[test]
fn version_with_two_tier_active_matches_a_model() {
    for seed in 1..=40u64 {
        let mut rng = Rng::new(seed);
        let keys = [20, 40, 200][(seed % 3) as usize];
        let mut version = Version::default();
        let mut model = Model::new();
        let mut held: Vec<(Version, Model)> = Vec::new();
        for step in 0..3_000u64 {
            let ctx = format!("seed {seed} step {step}");
            match rng.below(100) {
                0..=59 => {
                    let k = key(rng.below(keys));
                    let v = format!("v{step}").into_bytes();
                    version.set(k.clone(), Some(v.clone()));
                    model.insert(k, v);
                }
                60..=84 => {
                    let k = key(rng.below(keys));
                    version.set(k.clone(), None);
                    model.remove(&k);
                }
                85..=89 => {
                    let mut batch = ReplayBatch::default();
                    for _ in 0..rng.below(12) + 1 {
                        let k = key(rng.below(keys));
                        if rng.below(4) == 0 {
                            batch.push(&k, None);
                            model.remove(&k);
                        } else {
                            let v = format!("r{step}").into_bytes();
                            batch.push(&k, Some(&v));
                            model.insert(k, v);
                        }
                    }
                    version.push_run(batch.finish());
                }
                90..=92 => version.freeze(),
                93..=95 => version.thaw(),
                _ => {
                    if held.len() > 8 {
                        held.remove(0);
                    }
                    held.push((version.clone(), model.clone()));
                }
            }
            if step % 17 == 0 {
                check(&version, &model, keys, &ctx);
                for (old, old_model) in &held {
                    check(old, old_model, keys, &format!("{ctx} (held version)"));
                }
            }
        }
        check(&version, &model, keys, &format!("seed {seed} end"));
    }
}
