//! Model-based property test: random sequences of steps (commit, crash in each mode,
//! reopen, checkpoint, fail the next fdatasync) against the simulated storage and a
//! BTreeMap model. After every step the store shows the model after a prefix that holds
//! every acknowledged transaction; after a failed sync the store is poisoned (no commit,
//! no sync call) until it is reopened.
//!
//! Failing cases are saved to `tests/proptest-regressions/proptest_model.txt` (only on
//! failure; keep the file in the repository) and replayed first on every run.
//!
//! `PROPTEST_CASES=2000 cargo test --release --test proptest_model -- --nocapture`
//! (`PROPTEST_MODEL_TRACE=1` prints every step).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;
mod model;
mod sim_tools;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use model::{Change, Model, Txn, Workload};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use sim_tools::try_dump;
use walstore::storage::SimStorage;
use walstore::storage::sim::{CallKind, CrashMode, Fault, FaultKind};
use walstore::{Error, Fingerprint, Options, Store, Value};

const DIR: &str = "/prop/store";

#[derive(Debug, Clone)]
enum Step {
    Commit(Txn),
    Crash(CrashMode),
    Reopen,
    Checkpoint,
    FailNextSync,
}

fn change() -> impl Strategy<Value = Change> {
    let key = (0u8..6).prop_map(|k| format!("k{k}"));
    let value = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        "[a-z]{0,12}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
    ];
    let path = (0u8..12).prop_map(|p| format!("src/p{p}.rs"));
    let ns = prop_oneof![Just("code".to_owned()), Just("docs".to_owned())];
    let doc = (0u8..6).prop_map(|d| format!("doc{d}"));
    let words = proptest::collection::vec(
        prop_oneof![
            Just("alpha"),
            Just("fsyncGate"),
            Just("torn_tail"),
            Just("größe"),
            Just("x2y")
        ],
        0..10,
    )
    .prop_map(|w| w.join(" "));
    prop_oneof![
        (key.clone(), value.clone()).prop_map(|(k, v)| Change::SetMeta(k, v)),
        key.clone().prop_map(Change::DelMeta),
        (key.clone(), value).prop_map(|(k, v)| Change::SetConfig(k, v)),
        key.prop_map(Change::DelConfig),
        (ns.clone(), path.clone(), any::<u64>()).prop_map(|(ns, p, h)| {
            let fp = Fingerprint::new(h.to_le_bytes().to_vec(), h % 1000, h as i64).unwrap();
            Change::PutFingerprint(ns, p, fp)
        }),
        (ns, path).prop_map(|(ns, p)| Change::DelFingerprint(ns, p)),
        (doc.clone(), words).prop_map(|(d, t)| Change::IndexDoc(d, t)),
        doc.prop_map(Change::RemoveDoc),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => proptest::collection::vec(change(), 1..6).prop_map(|c| Step::Commit(Txn(c))),
        1 => Just(Step::Crash(CrashMode::LoseUnsynced)),
        1 => Just(Step::Crash(CrashMode::KeepUnsynced)),
        1 => Just(Step::Crash(CrashMode::Random)),
        2 => Just(Step::Reopen),
        2 => Just(Step::Checkpoint),
        2 => Just(Step::FailNextSync),
    ]
}

fn options(sim: &SimStorage) -> Options {
    Store::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(4096)
        .checkpoint_wal_bytes(3000)
        .background_checkpoints(false)
}

/// The system under test and what the model knows about it.
struct Harness {
    sim: SimStorage,
    store: Option<Store>,
    /// `txns[lsn - 1]`: the transaction with that lsn, acknowledged or of unknown outcome.
    txns: Vec<Txn>,
    /// Highest acknowledged lsn.
    acknowledged: u64,
    /// A FailNextSync fault is armed and has not fired.
    armed: bool,
    /// Once the open store is poisoned: the sync calls made until then.
    poisoned_at: Option<u64>,
}

impl Harness {
    fn dump_at(&self, lsn: u64) -> String {
        let workload = Workload {
            txns: self.txns[..lsn as usize].to_vec(),
        };
        Model::replay(&workload).dumps.pop().unwrap()
    }

    /// Checks the open store shows the model at a prefix `acknowledged..=txns.len()`, and
    /// forgets the transactions above it.
    fn check_recovered(&mut self, what: &str) -> Result<(), TestCaseError> {
        let store = self.store.as_ref().unwrap();
        let lsn = store.lsn();
        prop_assert!(
            lsn >= self.acknowledged && lsn <= self.txns.len() as u64,
            "{what}: lsn {lsn}, acknowledged {}, attempted {}",
            self.acknowledged,
            self.txns.len()
        );
        let dump = try_dump(store).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        prop_assert_eq!(dump, self.dump_at(lsn), "{}: state at lsn {}", what, lsn);
        self.txns.truncate(lsn as usize);
        Ok(())
    }

    /// Opens the store (after dropping the old handle). An open can fail only if the armed
    /// fault fired during it.
    fn open(&mut self, what: &str) -> Result<bool, TestCaseError> {
        self.store = None;
        self.poisoned_at = None;
        let before = self.sim.sync_calls();
        match options(&self.sim).open(DIR) {
            Ok(store) => {
                // A failed sync during the open opens the store poisoned.
                if store.is_poisoned() {
                    prop_assert!(
                        self.armed && self.sim.sync_calls() > before,
                        "{what}: opened poisoned without a fault"
                    );
                    self.armed = false;
                }
                self.store = Some(store);
                self.check_recovered(what)?;
                self.note_poison();
                Ok(true)
            }
            Err(error) => {
                prop_assert!(
                    self.armed && self.sim.sync_calls() > before,
                    "{what}: open failed without a fault: {error}"
                );
                self.armed = false;
                Ok(false)
            }
        }
    }

    /// Makes sure a store is open; `false` if the open failed (the fault fired).
    fn ensure_open(&mut self) -> Result<bool, TestCaseError> {
        match self.store.is_some() {
            true => Ok(true),
            false => self.open("open"),
        }
    }

    fn note_poison(&mut self) {
        if self.poisoned_at.is_none() && self.store.as_ref().is_some_and(Store::is_poisoned) {
            self.poisoned_at = Some(self.sim.sync_calls());
        }
    }

    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        if std::env::var_os("PROPTEST_MODEL_TRACE").is_some() {
            eprintln!(
                "step {step:?}: syncs {} armed {} poisoned {:?} lsn {:?} files {:?}",
                self.sim.sync_calls(),
                self.armed,
                self.poisoned_at,
                self.store.as_ref().map(Store::lsn),
                self.sim.file_names(DIR)
            );
        }
        let poisoned_before = self.poisoned_at.is_some();
        match step {
            Step::Commit(txn) => {
                if !self.ensure_open()? {
                    return Ok(());
                }
                let store = self.store.as_ref().unwrap();
                let next = store.lsn() + 1;
                let mut write = store.begin_write();
                txn.apply_to(&mut write);
                match write.commit() {
                    Ok(lsn) => {
                        prop_assert!(!poisoned_before, "a poisoned store acknowledged {lsn}");
                        prop_assert!(!self.armed, "the commit after FailNextSync succeeded");
                        prop_assert_eq!(lsn, next);
                        self.txns.truncate(lsn as usize - 1);
                        self.txns.push(txn.clone());
                        self.acknowledged = lsn;
                    }
                    Err(Error::Poisoned) if poisoned_before => {}
                    Err(error) => {
                        prop_assert!(!poisoned_before, "poisoned store: {error}");
                        prop_assert!(self.armed, "commit failed without a fault: {error}");
                        self.armed = false;
                        prop_assert!(store.is_poisoned(), "a failed fdatasync poisons");
                        // Unknown outcome: it may be found after a reopen.
                        self.txns.truncate(next as usize - 1);
                        self.txns.push(txn.clone());
                    }
                }
                self.note_poison();
            }
            Step::Checkpoint => {
                if !self.ensure_open()? {
                    return Ok(());
                }
                let store = self.store.as_ref().unwrap();
                match store.checkpoint() {
                    Ok(_) => prop_assert!(!poisoned_before, "a poisoned store checkpointed"),
                    Err(Error::Poisoned) if poisoned_before => {}
                    Err(error) => {
                        prop_assert!(self.armed, "checkpoint failed without a fault: {error}");
                        self.armed = false;
                        prop_assert!(store.is_poisoned(), "a failed fdatasync poisons");
                    }
                }
                self.note_poison();
            }
            Step::FailNextSync => {
                self.sim.inject(Fault {
                    at_call: 1,
                    kind: FaultKind::Eio,
                    persistent: false,
                    only: Some(CallKind::SyncData),
                });
                self.armed = true;
            }
            Step::Reopen => {
                self.open("reopen")?;
            }
            Step::Crash(mode) => {
                self.sim.crash(*mode);
                self.open(&format!("crash {mode:?}"))?;
            }
        }
        // Poisoned: no sync call of any kind since, until a reopen.
        if let Some(syncs) = self.poisoned_at
            && poisoned_before
        {
            prop_assert_eq!(self.sim.sync_calls(), syncs, "a poisoned store synced");
        }
        // An open, unpoisoned store shows the model at its lsn.
        if let Some(store) = &self.store
            && !store.is_poisoned()
        {
            let lsn = store.lsn();
            prop_assert!(lsn >= self.acknowledged);
            let dump = try_dump(store).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(dump, self.dump_at(lsn));
        }
        Ok(())
    }
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/proptest_model.txt"
        )))),
        source_file: Some(file!()),
        ..Config::default()
    }
}

/// One case: the steps, then a final power loss.
fn case(seed: u64, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut harness = Harness {
        sim: SimStorage::new(seed),
        store: None,
        txns: Vec::new(),
        acknowledged: 0,
        armed: false,
        poisoned_at: None,
    };
    for step in steps {
        harness.run(step)?;
    }
    // Finally a power loss: everything acknowledged is still there.
    harness.sim.clear_faults();
    harness.armed = false;
    harness.sim.crash(CrashMode::LoseUnsynced);
    prop_assert!(harness.open("final power loss")?);
    Ok(())
}

#[test]
fn steps_against_the_model() {
    let config = config();
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let steps_run = AtomicU64::new(0);
    let result = runner.run(
        &(any::<u64>(), proptest::collection::vec(step(), 1..40)),
        |(seed, steps)| {
            steps_run.fetch_add(steps.len() as u64, Ordering::Relaxed);
            case(seed, &steps)
        },
    );
    if let Err(error) = result {
        panic!("{error}");
    }
    println!(
        "proptest-model: {cases} cases, {} steps (commit, crash, reopen, checkpoint, failed fdatasync), each state equal to the model",
        steps_run.load(Ordering::Relaxed)
    );
}
