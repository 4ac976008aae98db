//! The active overlay: the newest changes, in two persistent maps.
//!
//! ```text
//! recent   (at most RECENT_ENTRIES_MAX keys; newest wins)
//! settled  (everything older)
//! ```
//! A commit changes a version that readers may hold, so its insert copies the path it
//! touches: in one map of 100,000 keys, three nodes of up to 64 entries, each copy taking
//! a reference on every child, and each replaced one dropping them again (measured: 3 µs
//! of a one-key commit's 6 µs of CPU at 100,000 keys against 100). A small `recent` map
//! is one node: a commit copies that, and every `RECENT_ENTRIES_MAX` inserts it moves
//! into `settled` at once, where keys that share a node share its copy.

use std::sync::Arc;

use super::version::Layer;

/// Keys `recent` holds before it moves into `settled`: one node of the map (64 entries).
const RECENT_ENTRIES_MAX: usize = 32;

/// The active overlay: `recent` above `settled`.
#[derive(Debug, Clone, Default)]
pub struct Active {
    recent: Layer,
    settled: Layer,
}

impl Active {
    /// The value of `key`: `Some(None)` for a deletion.
    pub fn get(&self, key: &[u8]) -> Option<&Option<Arc<[u8]>>> {
        self.recent.get(key).or_else(|| self.settled.get(key))
    }

    /// Sets `key` (`None`: a deletion that hides older layers).
    pub fn insert(&mut self, key: Arc<[u8]>, value: Option<Arc<[u8]>>) {
        self.recent.insert(key, value);
        if self.recent.len() > RECENT_ENTRIES_MAX {
            self.settle();
        }
    }

    /// Forgets `key` (no older layer holds it).
    pub fn remove(&mut self, key: &[u8]) {
        self.recent.remove(key);
        if self.settled.contains_key(key) {
            self.settled.remove(key);
        }
    }

    /// Entries, counting a key in both maps twice (a measure of un-checkpointed state).
    pub fn len(&self) -> usize {
        self.recent.len() + self.settled.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty() && self.settled.is_empty()
    }

    /// The maps, newest first, for a merged scan.
    pub fn layers(&self) -> [&Layer; 2] {
        [&self.recent, &self.settled]
    }

    /// Takes everything as one map, leaving it empty (a checkpoint freezes it, a run
    /// is stacked above it).
    pub fn take(&mut self) -> Layer {
        self.settle();
        std::mem::take(&mut self.settled)
    }

    /// Moves `recent` into `settled`.
    fn settle(&mut self) {
        let recent = std::mem::take(&mut self.recent);
        if self.settled.is_empty() {
            self.settled = recent;
            return;
        }
        for (key, value) in recent {
            self.settled.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Arc<[u8]> {
        format!("k{i:05}").into_bytes().into()
    }

    /// Against one plain map, through inserts, deletions and removals across many
    /// settles: the same gets, the same merged contents.
    #[test]
    fn agrees_with_one_map() {
        let mut active = Active::default();
        let mut plain = Layer::default();
        for step in 0..2_000usize {
            let k = key((step * 7_919) % 300);
            match step % 5 {
                0..=2 => {
                    let value: Option<Arc<[u8]>> = Some(step.to_le_bytes().to_vec().into());
                    active.insert(k.clone(), value.clone());
                    plain.insert(k, value);
                }
                3 => {
                    active.insert(k.clone(), None);
                    plain.insert(k, None);
                }
                _ => {
                    active.remove(&k);
                    plain.remove(&*k);
                }
            }
            assert!(active.layers()[0].len() <= RECENT_ENTRIES_MAX);
            if step % 97 == 0 {
                for i in 0..300 {
                    assert_eq!(active.get(&key(i)), plain.get(&*key(i)), "step {step}");
                }
                let snapshot = active.clone();
                assert_eq!(snapshot.clone().take(), plain);
                assert!(snapshot.len() >= plain.len());
            }
        }
        let taken = active.take();
        assert_eq!(taken, plain);
        assert!(active.is_empty());
    }
}
