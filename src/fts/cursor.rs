//! A cursor over one term's live postings in a version: the snapshot's stored list, then
//! each in-memory segment's postings, oldest first (doc ids ascend across them), with
//! removed documents skipped. It moves forward only: `advance`, `seek`, and a shallow
//! look at the bound of the block a target doc would fall in (block-max pruning).

use std::path::Path;

use super::posting::{BLOCK_POSTINGS, Block, BlockBound, DecodeError, Posting, StoredList};
use crate::error::{Error, Result};

/// Doc id of an exhausted cursor.
pub const END: u64 = u64::MAX;

/// Where a term's postings come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A snapshot's list; `offset` is where it lies in `file` (for error reports).
    Stored {
        /// The list.
        list: StoredList<'a>,
        /// The snapshot file.
        file: &'a Path,
        /// The list's offset in the file.
        offset: u64,
    },
    /// An in-memory segment's postings.
    Memory(&'a [Posting]),
}

impl Source<'_> {
    /// Postings, removed ones included.
    pub fn len(&self) -> usize {
        match self {
            Source::Stored { list, .. } => list.len(),
            Source::Memory(postings) => postings.len(),
        }
    }

    /// Whether the source has no postings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn blocks(&self) -> usize {
        match self {
            Source::Stored { list, .. } => list.blocks(),
            Source::Memory(postings) => postings.len().div_ceil(BLOCK_POSTINGS),
        }
    }

    fn chunk(postings: &[Posting], i: usize) -> &[Posting] {
        let start = i.saturating_mul(BLOCK_POSTINGS).min(postings.len());
        let end = start.saturating_add(BLOCK_POSTINGS).min(postings.len());
        postings.get(start..end).unwrap_or_default()
    }

    fn last_doc_of(&self, i: usize) -> u64 {
        match self {
            Source::Stored { list, .. } => list.last_doc(i),
            Source::Memory(postings) => Self::chunk(postings, i).last().map_or(END, |p| p.doc),
        }
    }

    /// The bound of block `i`.
    pub fn bound(&self, i: usize) -> BlockBound {
        match self {
            Source::Stored { list, .. } => list.bound(i),
            Source::Memory(postings) => BlockBound::loose(Self::chunk(postings, i)),
        }
    }

    fn last_doc(&self) -> u64 {
        self.last_doc_of(self.blocks().saturating_sub(1))
    }

    /// The first block at or after `from` whose last doc is >= `target`.
    fn block_for(&self, from: usize, target: u64) -> usize {
        crate::util::partition_point(from..self.blocks(), |i| self.last_doc_of(i) >= target)
    }

    fn load(&self, i: usize, out: &mut Block, term: &str) -> Result<()> {
        match self {
            Source::Stored { list, file, offset } => list
                .decode_block(i, out)
                .map_err(|e| corrupt(file, *offset, term, e)),
            Source::Memory(postings) => {
                out.fill(Self::chunk(postings, i));
                Ok(())
            }
        }
    }
}

/// The error for a stored list that does not decode.
pub fn corrupt(file: &Path, offset: u64, term: &str, reason: DecodeError) -> Error {
    Error::corrupt(
        file,
        offset,
        format!("posting list of term {term:?}: {reason}"),
    )
}

/// A forward cursor over one term's live postings.
#[derive(Debug)]
pub struct TermCursor<'a> {
    term: &'a str,
    sources: Vec<Source<'a>>,
    removed: &'a [u64],
    removed_at: usize,
    src: usize,
    blk: usize,
    pos: usize,
    loaded: bool,
    block: Box<Block>,
    current: Option<Posting>,
}

impl<'a> TermCursor<'a> {
    /// A cursor at the first live posting of `sources` (doc ranges ascending).
    pub fn new(term: &'a str, sources: Vec<Source<'a>>, removed: &'a [u64]) -> Result<Self> {
        let mut cursor = TermCursor {
            term,
            sources,
            removed,
            removed_at: 0,
            src: 0,
            blk: 0,
            pos: 0,
            loaded: false,
            block: Box::default(),
            current: None,
        };
        cursor.settle()?;
        Ok(cursor)
    }

    /// The term.
    pub fn term(&self) -> &'a str {
        self.term
    }

    /// The sources, as given.
    pub fn sources(&self) -> &[Source<'a>] {
        &self.sources
    }

    /// The current doc id, [`END`] when exhausted.
    pub fn doc(&self) -> u64 {
        self.current.map_or(END, |p| p.doc)
    }

    /// The current posting.
    pub fn posting(&self) -> Option<Posting> {
        self.current
    }

    /// The live postings from the current one on, up to the end of the decoded block or
    /// the next removed document, whichever comes first (`None`: exhausted). The caller
    /// then calls [`TermCursor::skip_block_rest`].
    pub fn block_rest(&self) -> Option<&[Posting]> {
        self.current?;
        let rest = self.block.postings().get(self.pos..)?;
        // `settle` leaves `removed_at` at the first removed id above the current doc.
        Some(match self.removed.get(self.removed_at) {
            Some(&removed) => rest
                .get(..rest.partition_point(|p| p.doc < removed))
                .unwrap_or_default(),
            None => rest,
        })
    }

    /// Moves past the postings [`TermCursor::block_rest`] returned (at least one).
    pub fn skip_block_rest(&mut self) -> Result<()> {
        match self.block_rest().map_or(0, <[Posting]>::len) {
            0 => self.advance(),
            taken => {
                self.pos += taken;
                self.settle()
            }
        }
    }

    /// Moves to the next live posting.
    pub fn advance(&mut self) -> Result<()> {
        if self.current.is_some() {
            self.pos += 1;
        }
        self.settle()
    }

    /// Moves to the first live posting with doc id >= `target`.
    pub fn seek(&mut self, target: u64) -> Result<()> {
        if self.doc() >= target {
            return Ok(());
        }
        while self
            .sources
            .get(self.src)
            .is_some_and(|s| s.last_doc() < target)
        {
            self.next_source();
        }
        let Some(source) = self.sources.get(self.src) else {
            self.current = None;
            return Ok(());
        };
        if source.last_doc_of(self.blk) < target {
            self.blk = source.block_for(self.blk + 1, target);
            self.pos = 0;
            self.loaded = false;
        }
        if !self.loaded {
            self.load()?;
        }
        let rest = self.block.postings().get(self.pos..).unwrap_or_default();
        self.pos += rest.partition_point(|p| p.doc < target);
        self.settle()
    }

    /// The bound of the block holding the first posting >= `target`, without moving
    /// (removed documents included; `None`: no posting is >= `target`).
    pub fn shallow(&self, target: u64) -> Option<BlockBound> {
        let mut src = self.src;
        let mut blk = self.blk;
        while self.sources.get(src).is_some_and(|s| s.last_doc() < target) {
            src += 1;
            blk = 0;
        }
        let source = self.sources.get(src)?;
        if source.last_doc_of(blk) < target {
            blk = source.block_for(blk + 1, target);
        }
        Some(source.bound(blk))
    }

    /// The loosest bound over every block (for the term's best possible score).
    pub fn bounds(&self) -> impl Iterator<Item = BlockBound> + '_ {
        self.sources
            .iter()
            .flat_map(|s| (0..s.blocks()).map(move |i| s.bound(i)))
    }

    fn next_source(&mut self) {
        self.src += 1;
        self.blk = 0;
        self.pos = 0;
        self.loaded = false;
    }

    fn load(&mut self) -> Result<()> {
        if let Some(source) = self.sources.get(self.src) {
            source.load(self.blk, &mut self.block, self.term)?;
        }
        self.loaded = true;
        Ok(())
    }

    /// Settles on the first live posting at or after the position.
    fn settle(&mut self) -> Result<()> {
        loop {
            let Some(blocks) = self.sources.get(self.src).map(|s| s.blocks()) else {
                self.current = None;
                return Ok(());
            };
            if !self.loaded {
                self.load()?;
            }
            if let Some(&posting) = self.block.postings().get(self.pos) {
                while self
                    .removed
                    .get(self.removed_at)
                    .is_some_and(|&r| r < posting.doc)
                {
                    self.removed_at += 1;
                }
                if self.removed.get(self.removed_at) == Some(&posting.doc) {
                    self.pos += 1;
                    continue;
                }
                self.current = Some(posting);
                return Ok(());
            }
            self.blk += 1;
            self.pos = 0;
            self.loaded = false;
            if self.blk >= blocks {
                self.next_source();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fts::posting;

    /// Reading run by run (`block_rest`) gives exactly the live postings `advance` gives.
    #[test]
    fn block_runs_stop_before_removed_documents() {
        let list: Vec<Posting> = (0..400u64)
            .map(|i| Posting {
                doc: i * 2,
                tf: 1,
                len: 5,
            })
            .collect();
        let bytes = posting::encode(&list);
        let stored = StoredList::open(&bytes).unwrap();
        let memory: Vec<Posting> = (0..300u64)
            .map(|i| Posting {
                doc: 1000 + i,
                tf: 2,
                len: 7,
            })
            .collect();
        let sources = || {
            vec![
                Source::Stored {
                    list: stored,
                    file: Path::new("list.snap"),
                    offset: 0,
                },
                Source::Memory(&memory),
            ]
        };
        let removed = [0u64, 2, 4, 254, 256, 257, 258, 798, 1000, 1127, 1128, 1299];
        let mut one = TermCursor::new("t", sources(), &removed).unwrap();
        let mut expected = Vec::new();
        while let Some(posting) = one.posting() {
            expected.push(posting);
            one.advance().unwrap();
        }
        let mut runs = TermCursor::new("t", sources(), &removed).unwrap();
        let mut got = Vec::new();
        while let Some(run) = runs.block_rest() {
            assert!(!run.is_empty());
            got.extend_from_slice(run);
            runs.skip_block_rest().unwrap();
        }
        assert_eq!(got, expected);
        assert_eq!(got.len(), 400 + 300 - (removed.len() - 1)); // 257 is in neither
    }

    /// Damaged stored lists (bytes flipped, lists cut short) never panic and never make a
    /// cursor loop in place: every move either goes forward, ends, or fails.
    #[test]
    fn damaged_lists_never_panic_or_stall_a_cursor() {
        let list: Vec<Posting> = (0..300u64)
            .map(|i| Posting {
                doc: i * 3 + 1,
                tf: 1 + (i % 4) as u32,
                len: 10 + (i % 50) as u32,
            })
            .collect();
        let bytes = posting::encode(&list);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let removed = [4u64, 100, 101, 400];
        let mut reached = 0;
        for _ in 0..5000 {
            let mut damaged = bytes.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() % damaged.len() as u64) as usize;
                if let Some(byte) = damaged.get_mut(at) {
                    *byte ^= 1 << (next() % 8);
                }
            }
            if next() % 4 == 0 {
                damaged.truncate((next() % damaged.len() as u64) as usize);
            }
            let Ok(stored) = StoredList::open(&damaged) else {
                continue;
            };
            let source = Source::Stored {
                list: stored,
                file: Path::new("damaged.snap"),
                offset: 0,
            };
            let Ok(mut cursor) = TermCursor::new("t", vec![source], &removed) else {
                continue;
            };
            reached += 1;
            let _ = cursor.bounds().count();
            for _ in 0..2000 {
                let before = cursor.doc();
                if before == END {
                    break;
                }
                let _ = cursor.shallow(before);
                let moved = if next() % 3 == 0 {
                    cursor.seek(before.saturating_add(next() % 50 + 1))
                } else {
                    cursor.advance()
                };
                if moved.is_err() {
                    break;
                }
                assert!(cursor.doc() > before, "a cursor move goes forward");
            }
        }
        // Most damage is caught at open or at the first block; enough gets through.
        assert!(
            reached > 500,
            "only {reached} damaged lists reached a cursor"
        );
    }
}
