//! The replayed layer: the key-value changes recovery read from the WAL, built once and
//! never changed after.
//!
//! Replaying a large WAL into a persistent map costs a tree insert per change (and two
//! allocations). Recovery instead appends every change of the blind-write records (the
//! generic key-value operations) to one arena, sorts the changes once by key (a stable
//! sort: the last change of a key wins) and installs the result as an immutable layer
//! between the frozen overlay and the base snapshot. Later commits go to the active
//! overlay above it; the next checkpoint writes it out and drops it.
//!
//! The same sorted arena holds the run of a large commit group, and layers merged
//! together, in the overlay stack (`stack.rs`).

use crate::model::fingerprint::Fingerprint;
use crate::model::keys::{self, Tag};

/// Sorted, deduplicated changes: key to value, `None` for a deletion.
#[derive(Debug, Default)]
pub struct Replayed {
    data: Vec<u8>,
    entries: Vec<Entry>,
}

/// A change in the arena: the key at `start`, the value right after it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u64,
    key_len: u32,
    /// [`DELETED`] for a deletion.
    value_len: u32,
}

/// `value_len` of a deletion (no value is that long: records are bounded far below).
const DELETED: u32 = u32::MAX;

impl Entry {
    fn key(self, data: &[u8]) -> &[u8] {
        let start = usize::try_from(self.start).unwrap_or(usize::MAX);
        data.get(start..start.saturating_add(self.key_len as usize))
            .unwrap_or_default()
    }

    fn value(self, data: &[u8]) -> Option<&[u8]> {
        if self.value_len == DELETED {
            return None;
        }
        let start = usize::try_from(self.start)
            .unwrap_or(usize::MAX)
            .saturating_add(self.key_len as usize);
        Some(
            data.get(start..start.saturating_add(self.value_len as usize))
                .unwrap_or_default(),
        )
    }
}

impl Replayed {
    /// The layer, holding no more than an eighth of spare capacity: it lives until a
    /// checkpoint, and an arena reserved by estimate (or grown by doubling) could hold
    /// twice its bytes (found by review: a merged run of 1.7 MB in 2.56 MB).
    fn trimmed(mut data: Vec<u8>, mut entries: Vec<Entry>) -> Replayed {
        if data.capacity() - data.len() > data.len() / 8 {
            data.shrink_to_fit();
        }
        if entries.capacity() - entries.len() > entries.len() / 8 {
            entries.shrink_to_fit();
        }
        Replayed { data, entries }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn key(&self, entry: &Entry) -> &[u8] {
        entry.key(&self.data)
    }

    fn value(&self, entry: &Entry) -> Option<&[u8]> {
        entry.value(&self.data)
    }

    /// `Some(None)`: deleted here; `None`: not changed here.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let at = self
            .entries
            .binary_search_by(|entry| self.key(entry).cmp(key))
            .ok()?;
        self.entries.get(at).map(|entry| self.value(entry))
    }

    /// The changes whose key is >= `start`, in key order.
    pub fn range_from<'a>(
        &'a self,
        start: &[u8],
    ) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let first = self
            .entries
            .partition_point(|entry| self.key(entry) < start);
        self.entries
            .get(first..)
            .unwrap_or_default()
            .iter()
            .map(|entry| (self.key(entry), self.value(entry)))
    }
}

/// Changes in the order they were made, to be sorted into a [`Replayed`].
#[derive(Debug, Default)]
pub struct ReplayBatch {
    data: Vec<u8>,
    entries: Vec<Entry>,
    key_start: usize,
}

/// A position in a [`ReplayBatch`], to undo changes after it.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    data: usize,
    entries: usize,
}

impl ReplayBatch {
    /// Appends one change: `key`, and `value` (`None`: a deletion).
    pub fn push(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.begin();
        let out = self.buffer();
        out.extend_from_slice(key);
        let value_at = out.len();
        if let Some(value) = value {
            out.extend_from_slice(value);
        }
        self.end(value_at, value.is_some());
    }

    /// Appends the change a metadata or config op makes: key `keys::simple(tag, name)`,
    /// its encoded value (`None`: a deletion).
    pub fn push_simple(&mut self, tag: Tag, name: &[u8], value: Option<&[u8]>) {
        self.begin();
        let out = self.buffer();
        out.push(tag as u8);
        out.extend_from_slice(name);
        let value_at = out.len();
        if let Some(value) = value {
            out.extend_from_slice(value);
        }
        self.end(value_at, value.is_some());
    }

    /// Appends the change a fingerprint op makes: key `keys::pair(Fingerprint, ns, path)`,
    /// the stored fingerprint `(hash, size, mtime)` (`None`: a deletion).
    pub fn push_fingerprint(&mut self, ns: &str, path: &str, stored: Option<(&[u8], u64, i64)>) {
        self.begin_fingerprint(ns.as_bytes(), path.as_bytes());
        let out = self.buffer();
        let value_at = out.len();
        if let Some((hash, size, mtime)) = stored {
            Fingerprint::put_stored(out, hash, size, mtime);
        }
        self.end(value_at, stored.is_some());
    }

    /// [`ReplayBatch::push_fingerprint`] with the value already in its stored form
    /// (`postcard(Fingerprint)`, as a record's payload holds it): copied as it is.
    pub fn push_fingerprint_stored(&mut self, ns: &[u8], path: &[u8], stored: Option<&[u8]>) {
        self.begin_fingerprint(ns, path);
        let out = self.buffer();
        let value_at = out.len();
        if let Some(stored) = stored {
            out.extend_from_slice(stored);
        }
        self.end(value_at, stored.is_some());
    }

    /// Begins a fingerprint change and writes its key.
    fn begin_fingerprint(&mut self, ns: &[u8], path: &[u8]) {
        self.begin();
        let out = self.buffer();
        keys::put_pair_prefix(out, Tag::Fingerprint, ns);
        out.extend_from_slice(path);
    }

    /// Whether no change was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Makes room for about `bytes` more bytes of keys and values.
    pub fn reserve(&mut self, bytes: usize) {
        self.data.reserve(bytes);
        self.entries.reserve(bytes / 64 + 1);
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Where the batch is now.
    pub fn mark(&self) -> Mark {
        Mark {
            data: self.data.len(),
            entries: self.entries.len(),
        }
    }

    /// Drops every change (keeping the memory).
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// Drops every change added after `mark`.
    pub fn undo(&mut self, mark: Mark) {
        self.data.truncate(mark.data);
        self.entries.truncate(mark.entries);
    }

    /// Starts a change: the key is written into [`ReplayBatch::buffer`], then
    /// [`ReplayBatch::value_start`] and the value, then [`ReplayBatch::end`].
    pub fn begin(&mut self) {
        self.key_start = self.data.len();
    }

    /// The arena, to append the key (then the value) to.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Ends the change begun with [`ReplayBatch::begin`]: the key is the bytes appended
    /// before `value_at`, the value (if `Some`) those after it.
    pub fn end(&mut self, value_at: usize, has_value: bool) {
        let end = self.data.len();
        self.entries.push(Entry {
            start: self.key_start as u64,
            key_len: u32::try_from(value_at - self.key_start).unwrap_or(u32::MAX),
            value_len: if has_value {
                u32::try_from(end - value_at)
                    .unwrap_or(DELETED)
                    .min(DELETED - 1)
            } else {
                DELETED
            },
        });
    }

    /// Sorts the changes by key, keeping the last one of each key.
    pub fn finish(self) -> Replayed {
        let ReplayBatch {
            data, mut entries, ..
        } = self;
        // Stable: changes to one key stay in the order they were made. Changes made in
        // strictly increasing key order (a common case) need no sort and hold no key
        // twice: one pass of comparisons decides.
        if entries.is_sorted_by(|a, b| a.key(&data) < b.key(&data)) {
            return Replayed::trimmed(data, entries);
        }
        entries.sort_by(|a, b| a.key(&data).cmp(b.key(&data)));
        // Keep the last change of each key, in place.
        let mut kept = 0usize;
        for i in 0..entries.len() {
            let Some(&entry) = entries.get(i) else { break };
            let same = kept > 0
                && entries
                    .get(kept - 1)
                    .is_some_and(|last| last.key(&data) == entry.key(&data));
            if same {
                kept -= 1;
            }
            if let Some(slot) = entries.get_mut(kept) {
                *slot = entry;
            }
            kept += 1;
        }
        entries.truncate(kept);
        Replayed::trimmed(data, entries)
    }

    /// The changes as they are, already in strictly increasing key order (a merge of
    /// sorted layers): no sort, no pass to drop older changes.
    pub fn finish_sorted(self) -> Replayed {
        let ReplayBatch { data, entries, .. } = self;
        debug_assert!(
            entries.is_sorted_by(|a, b| a.key(&data) < b.key(&data)),
            "strictly increasing keys"
        );
        Replayed::trimmed(data, entries)
    }

    /// The changes in the order they were made, as `(key, value)`.
    pub fn changes(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.entries
            .iter()
            .map(|entry| (entry.key(&self.data), entry.value(&self.data)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::stack::{Stacked, merge};

    fn run(first: u32, n: u32) -> Replayed {
        let mut batch = ReplayBatch::default();
        for i in first..first + n {
            // About a fingerprint: a 40-byte key, a 45-byte value.
            batch.push(format!("{i:040}").as_bytes(), Some(&[7u8; 45]));
        }
        batch.finish()
    }

    /// A merged run lives until the next checkpoint: its arena holds little more than its
    /// bytes (found by review: `merge` reserved 64 bytes per entry, so 85-byte entries
    /// made the arena double once and keep about 128 bytes per entry).
    #[test]
    fn a_merged_run_keeps_little_spare_capacity() {
        let layers = [
            Stacked::Run(Arc::new(run(0, 10_000))),
            Stacked::Run(Arc::new(run(10_000, 10_000))),
        ];
        let merged = merge(&layers);
        let (len, capacity) = (merged.data.len(), merged.data.capacity());
        assert!(
            capacity <= len + len / 4,
            "arena holds {len} bytes in a capacity of {capacity}"
        );
    }
}
