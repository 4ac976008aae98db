//! The overlay stack: immutable layers between a version's active overlay and its base.
//!
//! A large commit group is not inserted into the active overlay one change at a time
//! (a tree insert and two allocations per change): its blind changes are sorted once into
//! a run (a [`Replayed`]: one arena, sorted entries, the last change of a key winning)
//! and stacked above the active overlay, which moves down into the stack unchanged. The
//! next commits go to a fresh active overlay above both, so a newer layer always wins.
//!
//! ```text
//! active          newest (persistent map)
//! stack[0]        a run, or an older active overlay   } newest first;
//! stack[1] ..                                          } at most STACK_MAX layers
//! ```
//! Layers are shared by `Arc` (or are persistent maps): cloning a version clones the
//! list, never the entries, and a published layer is never changed.
//!
//! Before a run is pushed, the layers below are merged (into runs) until each holds less
//! than half the entries of the layer under it ([`normalize`]): sizes then at least double
//! downwards, as in a binary counter, so an entry is merged O(log n) times and at most
//! about log2(n) layers are stacked (never more than [`STACK_MAX`]: past it, the adjacent
//! pair with the fewest entries is merged). The merge can run while the new run is being
//! built. A checkpoint writes the whole stack out and drops it.
//!
//! Bounds: the stack holds at most [`STACK_MAX`] layers, but while a checkpoint runs its
//! frozen part holds up to `STACK_MAX + 1` more (the stack and active overlay it froze),
//! so a lookup that misses searches at most `2 × STACK_MAX + 2` overlay layers. A reader
//! holding a version across a merge keeps the layers it merged alive beside the merged
//! copy, until it drops the version.
//!
//! (Merging only when a count of layers is exceeded would be quadratic: a steady stream
//! of runs keeps merging the newest into an ever larger layer.)

use std::sync::Arc;

use super::replayed::{ReplayBatch, Replayed};
use super::scan::{LayerIter, Overlays, ValueRef, layer_from};
use super::version::Layer;

/// Most layers stacked below the active overlay (the lookups of a missing key pay one
/// search per layer). Sizes doubling downwards reach it only past 2^6 runs' worth of
/// entries between checkpoints.
pub const STACK_MAX: usize = 8;

/// One immutable layer of the stack.
#[derive(Debug, Clone)]
pub enum Stacked {
    /// An active overlay moved down.
    Map(Layer),
    /// Sorted changes of a commit group (or of merged layers).
    Run(Arc<Replayed>),
}

impl Stacked {
    /// Number of entries (deletions included).
    pub fn len(&self) -> usize {
        match self {
            Stacked::Map(map) => map.len(),
            Stacked::Run(run) => run.len(),
        }
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `Some(None)`: deleted here; `None`: not changed here.
    pub fn get(&self, key: &[u8]) -> Option<Option<ValueRef<'_>>> {
        match self {
            Stacked::Map(map) => map
                .get(key)
                .map(|value| value.clone().map(ValueRef::Shared)),
            Stacked::Run(run) => run.get(key).map(|value| value.map(ValueRef::Borrowed)),
        }
    }

    /// Whether the key was changed (set or deleted) here.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            Stacked::Map(map) => map.contains_key(key),
            Stacked::Run(run) => run.get(key).is_some(),
        }
    }

    /// The entries from `start` on, in key order.
    pub(crate) fn range_from<'a>(&'a self, start: &[u8]) -> LayerIter<'a> {
        match self {
            Stacked::Map(map) => layer_from(map, start),
            Stacked::Run(run) => Box::new(run.range_from(start)),
        }
    }
}

/// Merges `layers` (newest first) into one run: the newest change of each key, deletions
/// kept (they may hide a value in a layer below these).
pub fn merge(layers: &[Stacked]) -> Replayed {
    let mut batch = ReplayBatch::default();
    let entries: usize = layers.iter().map(Stacked::len).sum();
    batch.reserve(entries.saturating_mul(64));
    let mut merged = Overlays::from_layers(layers.iter().map(|layer| layer.range_from(&[])));
    while let Some((key, value)) = merged.peek() {
        batch.push(key, value);
        merged.advance();
    }
    batch.finish_sorted()
}

/// The first adjacent pair (from the top) whose upper layer holds at least half the
/// entries of the lower one.
fn first_due(stack: &[Stacked]) -> Option<usize> {
    stack.windows(2).position(
        |pair| matches!(pair, [upper, lower] if upper.len().saturating_mul(2) >= lower.len()),
    )
}

/// The adjacent pair with the fewest entries.
fn smallest_pair(stack: &[Stacked]) -> Option<usize> {
    (0..stack.len().saturating_sub(1)).min_by_key(|&i| {
        stack
            .get(i..i + 2)
            .map_or(usize::MAX, |pair| pair.iter().map(Stacked::len).sum())
    })
}

fn merge_at(stack: &mut Vec<Stacked>, i: usize) {
    if let Some(merged) = stack.get(i..i + 2).map(merge) {
        stack.splice(i..i + 2, [Stacked::Run(Arc::new(merged))]);
    }
}

/// Whether [`normalize`] would merge anything.
pub fn needs_merge(stack: &[Stacked], max: usize) -> bool {
    stack.len() > max.max(1) || first_due(stack).is_some()
}

/// Merges adjacent layers until each holds less than half the entries of the one below
/// it, and at most `max` (at least one) are left; drops empty layers.
pub fn normalize(stack: &mut Vec<Stacked>, max: usize) {
    stack.retain(|layer| !layer.is_empty());
    while let Some(i) = first_due(stack) {
        merge_at(stack, i);
    }
    bound(stack, max);
}

/// Merges the adjacent pair with the fewest entries until at most `max` (at least one)
/// layers are left; drops empty layers.
pub fn bound(stack: &mut Vec<Stacked>, max: usize) {
    let max = max.max(1);
    stack.retain(|layer| !layer.is_empty());
    while stack.len() > max {
        let Some(i) = smallest_pair(stack) else { break };
        merge_at(stack, i);
    }
    debug_assert!(stack.len() <= max, "the stack is bounded");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::state::Version;

    fn run(changes: &[(&[u8], Option<&[u8]>)]) -> Replayed {
        let mut batch = ReplayBatch::default();
        for (key, value) in changes {
            batch.push(key, *value);
        }
        batch.finish()
    }

    fn get(version: &Version, key: &[u8]) -> Option<Vec<u8>> {
        version.get(key).expect("get").map(|v| v.to_vec())
    }

    fn scan(version: &Version, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        version
            .scan(prefix)
            .expect("scan")
            .map(|entry| entry.map(|(k, v)| (k, v.to_vec())).expect("entry"))
            .collect()
    }

    #[test]
    fn a_run_wins_over_older_layers_and_newer_sets_win_over_it() {
        let mut version = Version::default();
        version.set_ref(b"\x01a", Some(b"1"));
        version.set_ref(b"\x01b", Some(b"2"));
        version.push_run(run(&[
            (b"\x01b", Some(b"x")),
            (b"\x01c", Some(b"30")),
            (b"\x01b", Some(b"20")),
            (b"\x01a", None),
        ]));
        assert!(version.active.is_empty(), "the active overlay moved down");
        assert_eq!(version.stack.len(), 2);
        version.set_ref(b"\x01c", Some(b"300"));
        assert_eq!(get(&version, b"\x01a"), None, "deleted by the run");
        assert_eq!(
            get(&version, b"\x01b").as_deref(),
            Some(&b"20"[..]),
            "last wins"
        );
        assert_eq!(get(&version, b"\x01c").as_deref(), Some(&b"300"[..]));
        assert_eq!(
            scan(&version, b"\x01"),
            vec![
                (b"\x01b".to_vec(), b"20".to_vec()),
                (b"\x01c".to_vec(), b"300".to_vec())
            ]
        );
        // Deleting a key a run holds keeps a deletion above it.
        version.set_ref(b"\x01b", None);
        assert_eq!(get(&version, b"\x01b"), None);
        assert_eq!(scan(&version, b"\x01").len(), 1);
    }

    #[test]
    fn freeze_and_thaw_keep_the_stack_in_order() {
        let mut version = Version::default();
        version.set_ref(b"k1", Some(b"a"));
        version.push_run(run(&[(b"k1", Some(b"b")), (b"k2", Some(b"b"))]));
        version.freeze();
        assert!(version.stack.is_empty() && version.active.is_empty());
        assert_eq!(get(&version, b"k1").as_deref(), Some(&b"b"[..]));
        version.push_run(run(&[(b"k2", Some(b"c"))]));
        version.set_ref(b"k3", Some(b"c"));
        let frozen = version.clone();
        version.thaw();
        for v in [&frozen, &version] {
            assert_eq!(get(v, b"k1").as_deref(), Some(&b"b"[..]));
            assert_eq!(get(v, b"k2").as_deref(), Some(&b"c"[..]));
            assert_eq!(get(v, b"k3").as_deref(), Some(&b"c"[..]));
        }
        assert!(version.frozen.is_none());
    }

    #[test]
    fn the_stack_is_bounded_and_readers_keep_their_layers() {
        let mut version = Version::default();
        let mut old = Vec::new();
        for i in 0u8..20 {
            let changes: Vec<([u8; 2], [u8; 1])> = (0u8..10).map(|k| ([k, i % 3], [i])).collect();
            let refs: Vec<(&[u8], Option<&[u8]>)> = changes
                .iter()
                .map(|(k, v)| (&k[..], Some(&v[..])))
                .collect();
            version.push_run(run(&refs));
            version.set_ref(&[99, i], Some(&[i]));
            assert!(version.stack.len() <= STACK_MAX);
            old.push(version.clone());
        }
        for (i, v) in old.iter().enumerate() {
            let i = i as u8;
            assert_eq!(get(v, &[3, i % 3]), Some(vec![i]), "version {i}");
            assert_eq!(get(v, &[99, i]), Some(vec![i]));
            assert_eq!(scan(v, &[99]).len(), usize::from(i) + 1);
        }
    }

    /// Runs of new keys keep sizes doubling downwards (each entry merged O(log n) times):
    /// merging on a count of layers alone kept merging each new run into the largest.
    #[test]
    fn sizes_double_downwards() {
        let mut version = Version::default();
        for i in 0u32..300 {
            let keys: Vec<[u8; 4]> = (0u32..100).map(|k| (i * 100 + k).to_be_bytes()).collect();
            let refs: Vec<(&[u8], Option<&[u8]>)> =
                keys.iter().map(|k| (&k[..], Some(&b"v"[..]))).collect();
            version.push_run(run(&refs));
            let below: Vec<usize> = version.stack.iter().skip(1).map(Stacked::len).collect();
            assert!(
                below.windows(2).all(|w| matches!(w, [a, b] if a * 2 < *b)),
                "run {i}: {below:?}"
            );
            assert!(version.stack.len() <= STACK_MAX);
        }
        assert_eq!(version.overlay_len(), 30_000);
    }

    /// Random sets, deletions, runs, freezes and thaws against a `BTreeMap`.
    #[test]
    fn layers_match_a_map() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for _ in 0..20 {
            let mut version = Version::default();
            let mut model = BTreeMap::new();
            for _ in 0..200 {
                match next(10) {
                    0..=3 => {
                        let key = vec![1, next(60) as u8];
                        if next(3) == 0 {
                            version.set_ref(&key, None);
                            model.remove(&key);
                        } else {
                            let value = vec![next(250) as u8];
                            version.set_ref(&key, Some(&value));
                            model.insert(key, value);
                        }
                    }
                    4..=7 => {
                        let changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..next(40))
                            .map(|_| {
                                let key = vec![1, next(60) as u8];
                                let value = (next(3) != 0).then(|| vec![next(250) as u8]);
                                (key, value)
                            })
                            .collect();
                        for (key, value) in &changes {
                            match value {
                                Some(value) => model.insert(key.clone(), value.clone()),
                                None => model.remove(key),
                            };
                        }
                        let refs: Vec<(&[u8], Option<&[u8]>)> = changes
                            .iter()
                            .map(|(k, v)| (k.as_slice(), v.as_deref()))
                            .collect();
                        version.push_run(run(&refs));
                    }
                    8 => version.freeze(),
                    _ => version.thaw(),
                }
                assert!(version.stack.len() <= STACK_MAX);
                let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert_eq!(scan(&version, &[1]), expected);
                for k in 0..60u8 {
                    assert_eq!(get(&version, &[1, k]), model.get(&vec![1, k]).cloned());
                }
            }
        }
    }
}
