//! Posting lists as a snapshot stores them: the value of key `0x05 term`.
//!
//! ```text
//! varint count                     postings in the list, >= 1
//! skip table (only if count > 128): one 12-byte entry per block of 128 postings
//!     u64 last_doc   u32 end                                  (little-endian)
//! blocks, one after another:
//!     varint impact_count (1..=8), then impact_count x (varint tf, varint len)
//!     postings: varint doc_gap, varint tf, varint len
//! ```
//! Doc ids ascend strictly. `doc_gap` is the difference from the previous posting's doc
//! id; the first posting of a block counts from the previous block's `last_doc` (from 0
//! for the first block), so any block decodes on its own. `end` is the offset just past
//! the block, counted from the start of the blocks area. A block's *impacts* bound its
//! postings (as Lucene's do): every posting `(tf, len)` has an impact with a tf at least
//! `tf` and a length at most `len`. BM25 rises with tf and falls with length, so a
//! block's best possible score is the best score of its impacts, known without decoding
//! the postings (block-max pruning). The impacts are the block's Pareto frontier, merged
//! pairwise into looser points while there are more than [`IMPACTS_MAX`].

use crate::codec::{get_varint, put_varint, read_u32, read_u64};

/// Postings per block.
pub const BLOCK_POSTINGS: usize = 128;
/// Bytes of one skip-table entry.
pub const SKIP_ENTRY_BYTES: usize = 12;
/// Most impacts a block stores.
pub const IMPACTS_MAX: usize = 8;

const _: () = assert!(BLOCK_POSTINGS.is_power_of_two() && SKIP_ENTRY_BYTES == 8 + 4);
const _: () = assert!(IMPACTS_MAX >= 1 && IMPACTS_MAX < 128);

/// One (term, document) pair: what BM25 needs, so scoring never looks the document up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Posting {
    /// The document's id.
    pub doc: u64,
    /// Occurrences of the term in the document, >= 1.
    pub tf: u32,
    /// The document's length in tokens.
    pub len: u32,
}

/// What bounds the postings of one block: its last doc id and its impacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockBound {
    /// The block's last (largest) doc id.
    pub last_doc: u64,
    impacts: [(u32, u32); IMPACTS_MAX],
    count: usize,
}

impl BlockBound {
    /// The bound `(max tf, min len)` of `postings`: one loose impact, cheap to compute
    /// (for in-memory segments).
    pub fn loose(postings: &[Posting]) -> BlockBound {
        let max_tf = postings.iter().map(|p| p.tf).max().unwrap_or(0);
        let min_len = postings.iter().map(|p| p.len).min().unwrap_or(0);
        BlockBound::new(postings.last().map_or(0, |p| p.doc), &[(max_tf, min_len)])
    }

    /// The tight bound of `postings`: their Pareto frontier of `(tf, len)`, coarsened to
    /// at most [`IMPACTS_MAX`] points.
    pub fn frontier(postings: &[Posting]) -> BlockBound {
        let mut pairs: Vec<(u32, u32)> = postings.iter().map(|p| (p.tf, p.len)).collect();
        // By tf descending, then length ascending: a pair is on the frontier when it is
        // shorter than every pair with a larger tf.
        pairs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut frontier: Vec<(u32, u32)> = Vec::new();
        for (tf, len) in pairs {
            if frontier.last().is_none_or(|&(_, shortest)| len < shortest) {
                frontier.push((tf, len));
            }
        }
        while frontier.len() > IMPACTS_MAX {
            // Merge neighbours (t1, l1), (t2, l2) with t1 > t2, l1 > l2 into (t1, l2),
            // which dominates both.
            frontier = frontier
                .chunks(2)
                .map(|pair| match pair {
                    [(tf, _), (_, len)] => (*tf, *len),
                    [one] => *one,
                    _ => (0, 0),
                })
                .collect();
        }
        BlockBound::new(postings.last().map_or(0, |p| p.doc), &frontier)
    }

    fn new(last_doc: u64, impacts: &[(u32, u32)]) -> BlockBound {
        let mut bound = BlockBound {
            last_doc,
            impacts: [(0, 0); IMPACTS_MAX],
            count: impacts.len().min(IMPACTS_MAX),
        };
        for (slot, impact) in bound.impacts.iter_mut().zip(impacts) {
            *slot = *impact;
        }
        bound
    }

    /// The impacts `(tf, len)`.
    pub fn impacts(&self) -> &[(u32, u32)] {
        self.impacts.get(..self.count).unwrap_or_default()
    }

    /// Whether `posting` is bounded by an impact.
    pub fn covers(&self, posting: &Posting) -> bool {
        self.impacts()
            .iter()
            .any(|&(tf, len)| tf >= posting.tf && len <= posting.len)
    }
}

/// Encodes `postings` (non-empty, doc ids strictly ascending) as a stored posting list.
pub fn encode(postings: &[Posting]) -> Vec<u8> {
    debug_assert!(!postings.is_empty(), "a stored list has postings");
    debug_assert!(
        postings
            .windows(2)
            .all(|w| w.first().map(|p| p.doc) < w.get(1).map(|p| p.doc)),
        "doc ids ascend strictly"
    );
    let mut out = Vec::with_capacity(postings.len() * 4 + 8);
    put_varint(&mut out, postings.len() as u64);
    let blocks = postings.len().div_ceil(BLOCK_POSTINGS);
    let skip_at = out.len();
    if blocks > 1 {
        out.resize(skip_at + blocks * SKIP_ENTRY_BYTES, 0);
    }
    let data_at = out.len();
    let mut previous = 0u64;
    for (i, block) in postings.chunks(BLOCK_POSTINGS).enumerate() {
        let bound = BlockBound::frontier(block);
        put_varint(&mut out, bound.impacts().len() as u64);
        for &(tf, len) in bound.impacts() {
            put_varint(&mut out, u64::from(tf));
            put_varint(&mut out, u64::from(len));
        }
        for posting in block {
            put_varint(&mut out, posting.doc - previous);
            put_varint(&mut out, u64::from(posting.tf));
            put_varint(&mut out, u64::from(posting.len));
            previous = posting.doc;
        }
        if blocks > 1 {
            let end = u32::try_from(out.len() - data_at).unwrap_or(u32::MAX);
            let entry = skip_at + i * SKIP_ENTRY_BYTES;
            let mut fields = [0u8; SKIP_ENTRY_BYTES];
            fields[..8].copy_from_slice(&bound.last_doc.to_le_bytes());
            fields[8..].copy_from_slice(&end.to_le_bytes());
            if let Some(slot) = out.get_mut(entry..entry + SKIP_ENTRY_BYTES) {
                slot.copy_from_slice(&fields);
            }
        }
    }
    out
}

/// A stored posting list, checked for framing when opened; blocks decode on demand.
#[derive(Debug, Clone, Copy)]
pub struct StoredList<'a> {
    count: usize,
    skip: &'a [u8],
    data: &'a [u8],
    /// The last doc of the only block, when there is no skip table.
    single_last: Option<u64>,
}

/// Why a stored posting list does not decode.
pub type DecodeError = &'static str;

impl<'a> StoredList<'a> {
    /// Reads the header (and, for a one-block list, the block itself, for its last doc).
    pub fn open(bytes: &'a [u8]) -> Result<StoredList<'a>, DecodeError> {
        let mut pos = 0;
        let count = get_varint(bytes, &mut pos)
            .and_then(|c| usize::try_from(c).ok())
            .filter(|&c| c >= 1 && c <= bytes.len())
            .ok_or("posting count is missing, zero or larger than the list")?;
        let blocks = count.div_ceil(BLOCK_POSTINGS);
        let skip_bytes = if blocks > 1 {
            blocks * SKIP_ENTRY_BYTES
        } else {
            0
        };
        let skip = bytes
            .get(pos..pos + skip_bytes)
            .ok_or("skip table runs past the end of the list")?;
        let data = bytes.get(pos + skip_bytes..).unwrap_or_default();
        let mut list = StoredList {
            count,
            skip,
            data,
            single_last: None,
        };
        if blocks == 1 {
            let mut buf = Block::default();
            list.decode_block(0, &mut buf)?;
            if buf.end != data.len() {
                return Err("bytes follow the last posting");
            }
            list.single_last = Some(buf.postings().last().map_or(0, |p| p.doc));
        } else {
            let last_end = read_u32(skip, (blocks - 1) * SKIP_ENTRY_BYTES + 8)
                .ok_or("skip table truncated")?;
            if usize::try_from(last_end).ok() != Some(data.len()) {
                return Err("the last block's end is not the end of the list");
            }
        }
        Ok(list)
    }

    /// Postings in the list (removed documents included).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a stored list has at least one posting.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.count.div_ceil(BLOCK_POSTINGS)
    }

    /// The last doc id of block `i` (< `blocks()`).
    pub fn last_doc(&self, i: usize) -> u64 {
        match self.single_last {
            Some(last) => last,
            None => read_u64(self.skip, i * SKIP_ENTRY_BYTES).unwrap_or(u64::MAX),
        }
    }

    /// The bound of block `i` (< `blocks()`): its last doc and its impacts. Damaged
    /// impacts read as the loosest bound (`verify` reports them).
    pub fn bound(&self, i: usize) -> BlockBound {
        let (start, end) = self.block_range(i);
        let bytes = self.data.get(start..end).unwrap_or_default();
        let mut pos = 0;
        read_impacts(bytes, &mut pos)
            .map(|(impacts, count)| {
                BlockBound::new(self.last_doc(i), impacts.get(..count).unwrap_or_default())
            })
            .unwrap_or_else(|_| BlockBound::new(self.last_doc(i), &[(u32::MAX, 0)]))
    }

    fn block_range(&self, i: usize) -> (usize, usize) {
        if self.blocks() == 1 {
            return (0, self.data.len());
        }
        let end_of = |j: usize| {
            read_u32(self.skip, j * SKIP_ENTRY_BYTES + 8)
                .and_then(|e| usize::try_from(e).ok())
                .unwrap_or(usize::MAX)
        };
        let start = if i == 0 { 0 } else { end_of(i - 1) };
        (start, end_of(i))
    }

    /// Decodes block `i` into `out`, checking its framing and doc order.
    pub fn decode_block(&self, i: usize, out: &mut Block) -> Result<(), DecodeError> {
        let (start, end) = self.block_range(i);
        let bytes = self
            .data
            .get(start..end)
            .ok_or("a block's bytes lie outside the list")?;
        let n = if i + 1 == self.blocks() {
            self.count - i * BLOCK_POSTINGS
        } else {
            BLOCK_POSTINGS
        };
        let first = if i == 0 { 0 } else { self.last_doc(i - 1) };
        let mut pos = 0;
        read_impacts(bytes, &mut pos)?;
        // The fast loop finds damage but not its kind: on any, the checked loop decodes
        // the block again and names it.
        let Some(last) = decode_postings(bytes, &mut pos, first, i == 0, n, out) else {
            return Err(postings_error(bytes, first, i == 0, n));
        };
        out.end = start + pos;
        if self.single_last.is_none() && self.blocks() > 1 {
            if pos != bytes.len() {
                return Err("a block's postings do not fill it");
            }
            if last != self.last_doc(i) {
                return Err("a block's skip entry does not match its last doc");
            }
        }
        Ok(())
    }
}

/// A varint, with the one- and two-byte ones (gaps, tfs, lengths) taken inline.
#[inline(always)]
fn take_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let at = *pos;
    match (bytes.get(at), bytes.get(at.wrapping_add(1))) {
        (Some(&b0), _) if b0 < 0x80 => {
            *pos = at + 1;
            Some(u64::from(b0))
        }
        (Some(&b0), Some(&b1)) if b1 < 0x80 => {
            *pos = at + 2;
            Some(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
        }
        _ => get_varint(bytes, pos),
    }
}

/// Decodes `n` (<= [`BLOCK_POSTINGS`]) postings from `bytes[*pos..]`, counting doc ids
/// from `first` (a gap of 0 allowed first only when `list_start`), into `out`. Returns
/// the last doc id, or `None` on any damage (see [`postings_error`]). Checks are
/// gathered into one flag, so the loop does not branch on them.
fn decode_postings(
    bytes: &[u8],
    pos: &mut usize,
    first: u64,
    list_start: bool,
    n: usize,
    out: &mut Block,
) -> Option<u64> {
    out.len = 0;
    if n > BLOCK_POSTINGS {
        return None;
    }
    let mut previous = first;
    let mut min_gap = u64::from(!list_start);
    let mut bad = false;
    for slot in out.items.iter_mut().take(n) {
        let gap = take_varint(bytes, pos)?;
        let tf = take_varint(bytes, pos)?;
        let len = take_varint(bytes, pos)?;
        let (doc, overflow) = previous.overflowing_add(gap);
        bad |= (gap < min_gap)
            | overflow
            | (doc == u64::MAX)
            | (tf == 0)
            | (tf > u64::from(u32::MAX))
            | (len > u64::from(u32::MAX));
        min_gap = 1;
        previous = doc;
        *slot = Posting {
            doc,
            tf: tf as u32,
            len: len as u32,
        };
    }
    if bad {
        return None;
    }
    out.len = n;
    Some(previous)
}

/// Names the damage [`decode_postings`] found (checking each field in turn).
#[cold]
fn postings_error(bytes: &[u8], first: u64, list_start: bool, n: usize) -> DecodeError {
    let mut pos = 0;
    if let Err(e) = read_impacts(bytes, &mut pos) {
        return e;
    }
    let mut previous = first;
    for k in 0..n {
        let Some(gap) = get_varint(bytes, &mut pos) else {
            return "posting doc gap truncated";
        };
        let tf = get_varint(bytes, &mut pos)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v >= 1);
        if tf.is_none() {
            return "posting tf truncated or out of range";
        }
        if get_varint(bytes, &mut pos)
            .and_then(|v| u32::try_from(v).ok())
            .is_none()
        {
            return "posting length truncated or out of range";
        }
        if gap == 0 && !(list_start && k == 0) {
            return "doc ids do not ascend";
        }
        match previous.checked_add(gap).filter(|&doc| doc < u64::MAX) {
            Some(doc) => previous = doc,
            None => return "doc id overflows",
        }
    }
    "a block holds more postings than a block can"
}

/// Reads a block's impacts: `(impacts, count)`.
fn read_impacts(
    bytes: &[u8],
    pos: &mut usize,
) -> Result<([(u32, u32); IMPACTS_MAX], usize), DecodeError> {
    let count = get_varint(bytes, pos)
        .and_then(|c| usize::try_from(c).ok())
        .filter(|&c| (1..=IMPACTS_MAX).contains(&c))
        .ok_or("impact count missing or out of range")?;
    let mut impacts = [(0u32, 0u32); IMPACTS_MAX];
    for slot in impacts.iter_mut().take(count) {
        let tf = get_varint(bytes, pos).and_then(|v| u32::try_from(v).ok());
        let len = get_varint(bytes, pos).and_then(|v| u32::try_from(v).ok());
        match (tf, len) {
            (Some(tf), Some(len)) => *slot = (tf, len),
            _ => return Err("impact truncated or out of range"),
        }
    }
    Ok((impacts, count))
}

/// One decoded block.
#[derive(Debug, Clone)]
pub struct Block {
    items: [Posting; BLOCK_POSTINGS],
    len: usize,
    end: usize,
}

impl Default for Block {
    fn default() -> Self {
        Block {
            items: [Posting::default(); BLOCK_POSTINGS],
            len: 0,
            end: 0,
        }
    }
}

impl Block {
    /// The decoded postings.
    pub fn postings(&self) -> &[Posting] {
        self.items.get(..self.len).unwrap_or_default()
    }

    /// Fills the block from an in-memory slice (at most [`BLOCK_POSTINGS`]).
    pub fn fill(&mut self, postings: &[Posting]) {
        let n = postings.len().min(BLOCK_POSTINGS);
        if let (Some(dst), Some(src)) = (self.items.get_mut(..n), postings.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.len = n;
    }
}

/// Decodes a whole stored list (for checkpoints, `verify` and tools).
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Posting>, DecodeError> {
    let list = StoredList::open(bytes)?;
    let mut out = Vec::with_capacity(list.len());
    let mut block = Block::default();
    for i in 0..list.blocks() {
        list.decode_block(i, &mut block)?;
        let bound = list.bound(i);
        if !block.postings().iter().all(|p| bound.covers(p)) {
            return Err("a block's impacts do not bound its postings");
        }
        out.extend_from_slice(block.postings());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postings(n: u64) -> Vec<Posting> {
        (0..n)
            .map(|i| Posting {
                doc: i * 5 + (i % 5),
                tf: (i % 7) as u32 + 1,
                len: (i % 11) as u32 * 10,
            })
            .collect()
    }

    #[test]
    fn lists_round_trip_across_block_sizes() {
        for n in [1, 2, 127, 128, 129, 256, 1000] {
            let list = postings(n);
            let bytes = encode(&list);
            assert_eq!(decode_all(&bytes).unwrap(), list, "n = {n}");
            let stored = StoredList::open(&bytes).unwrap();
            for (i, chunk) in list.chunks(BLOCK_POSTINGS).enumerate() {
                assert_eq!(stored.bound(i), BlockBound::frontier(chunk));
                assert!(chunk.iter().all(|p| stored.bound(i).covers(p)));
            }
        }
    }

    #[test]
    fn first_doc_zero_is_allowed_and_repeats_are_not() {
        let list = [Posting {
            doc: 0,
            tf: 1,
            len: 1,
        }];
        assert_eq!(decode_all(&encode(&list)).unwrap(), list);
        // count 2, one impact (1, 1), then (0,1,1) twice: a repeated doc id.
        assert!(decode_all(&[2, 1, 1, 1, 0, 1, 1, 0, 1, 1]).is_err());
    }

    #[test]
    fn damage_in_a_posting_is_named() {
        // count 2, one impact (3, 1), then postings (gap, tf, len).
        let list = |postings: &[u8]| [&[2u8, 1, 3, 1][..], postings].concat();
        assert!(decode_all(&list(&[5, 3, 1, 1, 2, 1])).is_ok());
        let cases: [(&[u8], &str); 5] = [
            (&[5, 3, 1, 0, 2, 1], "doc ids do not ascend"),
            (&[5, 0, 1, 1, 2, 1], "posting tf truncated or out of range"),
            (
                &[5, 3, 1, 1, 2, 0x80],
                "posting length truncated or out of range",
            ),
            (&[5, 3, 1, 0x80, 0x80], "posting doc gap truncated"),
            (
                &[5, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 1, 2, 1],
                "posting tf truncated or out of range",
            ),
        ];
        for (postings, reason) in cases {
            assert_eq!(decode_all(&list(postings)), Err(reason), "{postings:?}");
        }
    }

    #[test]
    fn the_largest_doc_id_is_rejected_as_it_marks_an_exhausted_cursor() {
        let list = [Posting {
            doc: u64::MAX,
            tf: 1,
            len: 1,
        }];
        assert!(decode_all(&encode(&list)).is_err());
    }

    #[test]
    fn every_truncation_and_most_flips_are_rejected_without_panicking() {
        let bytes = encode(&postings(300));
        for cut in 0..bytes.len() {
            assert!(decode_all(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            let _ = decode_all(&damaged);
        }
    }
}
