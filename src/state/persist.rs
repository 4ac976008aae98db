//! Writing a version as a snapshot (checkpoint, backup): the base snapshot's blocks
//! merged with the overlays, block by block.
//!
//! A data block of the base whose key range no overlay entry falls in, met while the new
//! snapshot is between blocks, holds exactly the entries the new snapshot's next block
//! would hold: prefix compression restarts in every block and a block's checksum covers
//! only its body, so the block is copied verbatim (after its checksum is checked), with
//! no decoding or re-encoding. The result is byte for byte what writing every entry
//! would give (`tests::copied_blocks_give_the_bytes_of_a_full_rewrite`). Other blocks are
//! decoded and merged entry by entry, borrowing keys and values (nothing allocated per
//! entry). The FTS posting section is not taken from the base: it is written by
//! [`crate::fts::merge`], which merges the base's lists with the in-memory segments.

use super::scan::Overlays;
use super::version::Version;
use crate::error::Result;
use crate::model::keys::Tag;
use crate::snapshot::writer::{Builder, CopiedBlock};
use crate::snapshot::{BLOCK_BYTES_TARGET, block};

/// A run of consecutive base blocks waiting to be copied.
struct Run<'a> {
    start: usize,
    end: usize,
    tag: Tag,
    blocks: Vec<CopiedBlock<'a>>,
}

impl Version {
    /// Writes every live entry of this version into `out`, in key order.
    pub(crate) fn write_snapshot(&self, out: &mut Builder<'_>) -> Result<()> {
        let mut overlays = Overlays::new(self, &[]);
        let mut postings = PostingSection(Some(crate::fts::merge::posting_entries(self)?));
        if let Some(base) = &self.base {
            let map = base.bytes();
            let refs = base.data_refs()?;
            let mut run: Option<Run<'_>> = None;
            let mut key = Vec::new();
            for (j, &(ordinal, data_ref)) in refs.iter().enumerate() {
                let next_first = refs.get(j + 1).map(|(_, r)| r.first_key.as_slice());
                let tag = Tag::of(&data_ref.first_key);
                if tag.is_some_and(|t| t > Tag::FtsPosting) && postings.is_pending() {
                    flush(out, map, run.take())?;
                    // Overlay entries below this block precede the posting section when
                    // their tag does (they are pushed lazily, before the base key above
                    // them, which is in this block).
                    while let Some((over_key, over_value)) = overlays.peek() {
                        if over_key >= data_ref.first_key.as_slice() {
                            break;
                        }
                        if let Some(value) = over_value {
                            postings.before(out, Some(over_key))?;
                            out.push(over_key, value)?;
                        }
                        overlays.advance();
                    }
                    postings.before(out, Some(&data_ref.first_key))?;
                }
                // Every key of this block lies in [first_key, next_first): the same tag
                // when both ends have it; no overlay entry in that range.
                let copy = out.at_block_boundary()
                    && data_ref.body_len as usize >= BLOCK_BYTES_TARGET
                    && next_first.is_some_and(|next| {
                        tag.is_some_and(|t| t != Tag::FtsPosting)
                            && Tag::of(next) == tag
                            && overlays.peek().is_none_or(|(k, _)| k >= next)
                    });
                let (body, framed) = base.data_block(ordinal, data_ref)?;
                if let (true, Some(tag)) = (copy, tag) {
                    let start = usize::try_from(data_ref.offset).unwrap_or(usize::MAX);
                    let copied = CopiedBlock {
                        body_len: data_ref.body_len,
                        count: data_ref.count,
                        first_key: &data_ref.first_key,
                    };
                    match &mut run {
                        Some(r) if r.end == start && r.tag == tag => {
                            r.end = start + framed.len();
                            r.blocks.push(copied);
                        }
                        _ => {
                            flush(out, map, run.take())?;
                            run = Some(Run {
                                start,
                                end: start + framed.len(),
                                tag,
                                blocks: vec![copied],
                            });
                        }
                    }
                    continue;
                }
                flush(out, map, run.take())?;
                key.clear();
                let mut pos = 0;
                'entries: while pos < body.len() {
                    let at = data_ref.offset + pos as u64;
                    let range = block::next_entry(body, &mut pos, &mut key)
                        .ok_or_else(|| base.malformed_entry(at))?;
                    while let Some((over_key, over_value)) = overlays.peek() {
                        if over_key > key.as_slice() {
                            break;
                        }
                        if let Some(value) = over_value {
                            postings.before(out, Some(over_key))?;
                            out.push(over_key, value)?;
                        }
                        overlays.advance();
                        if over_key == key.as_slice() {
                            continue 'entries;
                        }
                    }
                    if key.first() == Some(&(Tag::FtsPosting as u8)) {
                        continue; // written from the merge
                    }
                    postings.before(out, Some(&key))?;
                    out.push(&key, body.get(range).unwrap_or_default())?;
                }
            }
            flush(out, map, run.take())?;
        }
        while let Some((key, value)) = overlays.peek() {
            if let Some(value) = value {
                postings.before(out, Some(key))?;
                out.push(key, value)?;
            }
            overlays.advance();
        }
        postings.before(out, None)
    }
}

/// The FTS posting section, written once: just before the first key past it.
struct PostingSection<I>(Option<I>);

impl<I: Iterator<Item = Result<crate::fts::merge::Entry>>> PostingSection<I> {
    fn is_pending(&self) -> bool {
        self.0.is_some()
    }

    /// Writes the section if `next` (the key about to be written; `None`: the end) is
    /// past it.
    fn before(&mut self, out: &mut Builder<'_>, next: Option<&[u8]>) -> Result<()> {
        if next.is_some_and(|key| key.first() <= Some(&(Tag::FtsPosting as u8))) {
            return Ok(());
        }
        if let Some(entries) = self.0.take() {
            for entry in entries {
                let (key, value) = entry?;
                out.push(&key, &value)?;
            }
        }
        Ok(())
    }
}

fn flush(out: &mut Builder<'_>, map: &[u8], run: Option<Run<'_>>) -> Result<()> {
    match run {
        Some(run) => out.copy_blocks(
            map.get(run.start..run.end).unwrap_or_default(),
            &run.blocks,
            run.tag,
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::model::keys;
    use crate::model::op::KvState;
    use crate::snapshot::writer;
    use crate::storage::SimStorage;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn key(i: u64) -> Vec<u8> {
        if i.is_multiple_of(997) {
            keys::simple(Tag::Metadata, &format!("m{i:07}"))
        } else {
            keys::pair(
                Tag::Fingerprint,
                "code",
                &format!("src/mod{:03}/f{i:07}.rs", i / 100),
            )
        }
    }

    fn value(rng: &mut Rng) -> Vec<u8> {
        let len = 20 + rng.below(60) as usize;
        (0..len).map(|_| rng.next() as u8).collect()
    }

    fn write(
        storage: &SimStorage,
        dir: &Path,
        lsn: u64,
        version: &Version,
        direct: bool,
    ) -> Vec<u8> {
        let written = if direct {
            let target = writer::Target {
                storage,
                dir,
                store_id: [7u8; 16],
                lsn,
                parity: true,
            };
            writer::write_with(
                target,
                &mut |out| version.write_snapshot(out),
                &crate::storage::pacing::NoForeground,
                &mut false,
                None,
            )
        } else {
            let entries = version
                .scan(&[])
                .expect("scan")
                .map(|entry| entry.map(|(key, value)| (key, value.to_vec())));
            writer::write(storage, dir, [7u8; 16], lsn, entries)
        }
        .expect("write");
        storage.read_file(&written.path).expect("written file")
    }

    #[test]
    fn copied_blocks_give_the_bytes_of_a_full_rewrite() {
        let storage = SimStorage::new(1);
        let dir = Path::new("/store");
        crate::storage::Storage::create_dir_all(&storage, dir).expect("dir");
        let mut rng = Rng(42);
        let mut base_version = Version::default();
        for i in 0..20_000 {
            base_version.set(key(i * 2), Some(value(&mut rng)));
        }
        let base_bytes = write(&storage, dir, 1, &base_version, false);
        let base = Arc::new(
            crate::recovery::open_snapshot(&storage, &dir.join("00000000000000000001.snap"), true)
                .expect("open base"),
        );
        // No change: the same bytes (every block but the last copied).
        let unchanged = Version {
            lsn: 2,
            base: Some(base.clone()),
            ..Version::default()
        };
        let copied = write(&storage, dir, 2, &unchanged, true);
        assert_eq!(
            copied.get(64..),
            base_bytes.get(64..),
            "only the header's lsn differs"
        );
        for round in 0..40u64 {
            let mut version = Version {
                lsn: 3 + round,
                base: Some(base.clone()),
                ..Version::default()
            };
            let changes = [1, 2, 5, 50, 500][round as usize % 5];
            for layer in 0..2 {
                for _ in 0..changes {
                    let i = rng.below(40_100);
                    match rng.below(4) {
                        0 => version.set(key(i), None),
                        // Same length as the base value: block boundaries stay put.
                        1 if i.is_multiple_of(2) => {
                            let len = base.get(&key(i)).expect("get").map_or(30, <[u8]>::len);
                            version.set(key(i), Some(vec![rng.next() as u8; len]));
                        }
                        _ => version.set(key(i), Some(value(&mut rng))),
                    }
                }
                if layer == 0 {
                    version.freeze();
                }
            }
            let merged = write(&storage, dir, version.lsn, &version, true);
            let rewritten = write(&storage, dir, version.lsn, &version, false);
            assert!(merged == rewritten, "round {round}: bytes differ");
            let check = crate::recovery::open_snapshot(
                &storage,
                &dir.join(crate::snapshot::file_name(version.lsn)),
                true,
            )
            .expect("valid snapshot");
            assert!(check.entry_count() > 0);
        }
    }
}
