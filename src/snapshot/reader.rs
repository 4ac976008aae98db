//! Reads a snapshot in place through a memory map.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::block::{self, BlockRef};
use super::{FOOTER_BYTES, FOOTER_MAGIC, SECTION_COUNT};
use crate::codec::{checksum, read_array, read_u32, read_u64};
use crate::error::{Error, Result};
use crate::header::{FileHeader, HEADER_BYTES, SNAPSHOT_MAGIC};
use crate::model::keys::Tag;
use crate::storage::Mapped;

/// An open snapshot: header, footer and top index checked; blocks checked on first read.
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    map: Mapped,
    header: FileHeader,
    sections: [u64; SECTION_COUNT],
    entry_count: u64,
    top: Vec<BlockRef>,
    /// Index blocks, checked and parsed on first use, then shared by every lookup.
    index_cache: Box<[OnceLock<Vec<BlockRef>>]>,
    data_checked: Box<[AtomicBool]>,
    /// Per data block, built on its first lookup: every [`RESTART_INTERVAL`]th entry's
    /// end offset and full key, so a lookup decodes at most that many entries.
    restarts: Box<[OnceLock<Restarts>]>,
    /// The open file, holding a shared lock while the file is mapped, so that the writer
    /// does not reuse it ([`super::reuse`]). `None` for bytes not mapped from a file.
    _file: Option<Box<dyn crate::storage::StorageFile>>,
}

/// Entries between two restart points of a block's lookup cache.
const RESTART_INTERVAL: usize = 16;

/// The unit the kernel reads a mapped file in.
const PAGE_BYTES: usize = 4096;
/// The tail of the file asked for at open: the footer and the top index (8.5 KiB for
/// 1,000,000 fingerprints; a larger top index faults its remaining pages in as usual).
const OPEN_TAIL_BYTES: usize = 32 * 1024;
const _: () =
    assert!(OPEN_TAIL_BYTES >= FOOTER_BYTES && OPEN_TAIL_BYTES.is_multiple_of(PAGE_BYTES));

/// How a block is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// By a lookup (a seek, an index block): a block over two pages is asked for whole
    /// before its checksum is first checked, so a cold read waits once, not twice.
    Lookup,
    /// In order, by a cursor moving on (read-ahead, or a full scan's sequential advice,
    /// does the work; one hint per block would cost a system call each).
    InOrder,
}

/// `(offset just past an entry, that entry's full key)`, ascending.
type Restarts = Vec<(usize, Box<[u8]>)>;

impl Snapshot {
    /// Opens a mapped snapshot, checking the header, the footer and the top index.
    pub fn open(path: &Path, map: Mapped) -> Result<Snapshot> {
        // From a cold cache the header, the footer and the top index would be read one
        // page fault after another: ask for the first page and the tail at once.
        map.will_need(0, PAGE_BYTES);
        map.will_need(map.len().saturating_sub(OPEN_TAIL_BYTES), OPEN_TAIL_BYTES);
        let header = FileHeader::decode(&map, SNAPSHOT_MAGIC, path)?;
        let len = map.len();
        let corrupt = |offset: usize, reason: String| Error::corrupt(path, offset as u64, reason);
        let footer_at = len
            .checked_sub(FOOTER_BYTES)
            .filter(|at| *at >= HEADER_BYTES)
            .ok_or_else(|| {
                corrupt(
                    len,
                    format!("file of {len} bytes is too short for header and footer"),
                )
            })?;
        let footer = map.get(footer_at..).unwrap_or_default();
        let stored = read_u32(footer, 60).unwrap_or_default();
        let computed = checksum(&[footer.get(..60).unwrap_or_default()]);
        if stored != computed {
            return Err(corrupt(
                footer_at + 60,
                format!(
                    "footer checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                ),
            ));
        }
        if read_array::<8>(footer, 0) != Some(FOOTER_MAGIC) {
            return Err(corrupt(footer_at, "bad footer magic".into()));
        }
        let field = |at: usize| read_u64(footer, at).unwrap_or_default();
        let top_offset = usize::try_from(field(8)).unwrap_or(usize::MAX);
        let top_len = read_u32(footer, 16).unwrap_or_default() as usize;
        let index_blocks = read_u32(footer, 20).unwrap_or_default() as usize;
        let data_blocks = usize::try_from(field(24)).unwrap_or(usize::MAX);
        let entry_count = field(32);
        let top_crc = read_u32(footer, 40).unwrap_or_default();
        if footer
            .get(44..60)
            .is_some_and(|reserved| reserved.iter().any(|&b| b != 0))
        {
            return Err(corrupt(
                footer_at + 44,
                "reserved footer bytes are not zero".into(),
            ));
        }
        let top_bytes = top_offset
            .checked_add(top_len)
            .filter(|end| *end == footer_at)
            .and_then(|end| map.get(top_offset..end))
            .ok_or_else(|| {
                corrupt(
                    footer_at + 8,
                    format!(
                        "top index {top_offset}+{top_len} does not end at the footer ({footer_at})"
                    ),
                )
            })?;
        if checksum(&[top_bytes]) != top_crc {
            return Err(corrupt(top_offset, "top index checksum mismatch".into()));
        }
        let mut sections = [0u64; SECTION_COUNT];
        for (i, count) in sections.iter_mut().enumerate() {
            *count = read_u64(top_bytes, i * 8).unwrap_or_default();
        }
        let top = top_bytes
            .get(SECTION_COUNT * 8..)
            .and_then(|refs| block::read_refs(refs, true))
            .filter(|refs| refs.len() == index_blocks)
            .ok_or_else(|| {
                corrupt(
                    top_offset,
                    format!("top index does not decode into {index_blocks} entries"),
                )
            })?;
        if sections.iter().sum::<u64>() != entry_count || data_blocks as u64 > entry_count {
            return Err(corrupt(
                top_offset,
                format!(
                    "section counts {sections:?} disagree with {entry_count} entries in {data_blocks} blocks"
                ),
            ));
        }
        Ok(Snapshot {
            path: path.to_path_buf(),
            index_cache: (0..index_blocks).map(|_| OnceLock::new()).collect(),
            data_checked: (0..data_blocks).map(|_| AtomicBool::new(false)).collect(),
            restarts: (0..data_blocks).map(|_| OnceLock::new()).collect(),
            map,
            header,
            sections,
            entry_count,
            top,
            _file: None,
        })
    }

    /// Keeps `file` (which holds a shared lock on this snapshot's file) open as long as
    /// this snapshot.
    pub(crate) fn holding(mut self, file: Box<dyn crate::storage::StorageFile>) -> Snapshot {
        self._file = Some(file);
        self
    }

    /// Hints that the whole file is about to be read in order (verify, checkpoint).
    pub fn advise_full_scan(&self) {
        self.map.advise_sequential();
    }

    /// The lsn this snapshot covers.
    pub fn lsn(&self) -> u64 {
        self.header.lsn
    }

    /// Its header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// Total entries.
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// Entries in one collection.
    pub fn section_count(&self, tag: Tag) -> u64 {
        self.sections
            .get(tag as usize - 1)
            .copied()
            .unwrap_or_default()
    }

    /// A block body, its checksum checked once (`checked` remembers it).
    fn block(
        &self,
        block: &BlockRef,
        checked: Option<&AtomicBool>,
        access: Access,
    ) -> Result<&[u8]> {
        let start = usize::try_from(block.offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(block.body_len as usize);
        let bytes = end
            .checked_add(4)
            .and_then(|crc_end| self.map.get(start..crc_end))
            .filter(|_| start >= HEADER_BYTES)
            .ok_or_else(|| {
                Error::corrupt(
                    &self.path,
                    block.offset,
                    format!("block of {} bytes lies outside the file", block.body_len),
                )
            })?;
        let (body, crc) = bytes.split_at(block.body_len as usize);
        let already = checked.is_some_and(|flag| flag.load(Ordering::Acquire));
        if !already {
            let pages = start / PAGE_BYTES..=(start + bytes.len() - 1) / PAGE_BYTES;
            if access == Access::Lookup && pages.start() != pages.end() {
                self.map.will_need(start, bytes.len());
            }
            let stored = read_u32(crc, 0).unwrap_or_default();
            let computed = checksum(&[body]);
            if stored != computed {
                return Err(Error::corrupt(
                    &self.path,
                    block.offset,
                    format!(
                        "block checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                    ),
                ));
            }
            if let Some(flag) = checked {
                flag.store(true, Ordering::Release);
            }
        }
        Ok(body)
    }

    /// The data block refs of index block `i` (checked and parsed once).
    fn index_block(&self, i: usize) -> Result<Option<&[BlockRef]>> {
        let (Some(top_ref), Some(cache)) = (self.top.get(i), self.index_cache.get(i)) else {
            return Ok(None);
        };
        if let Some(refs) = cache.get() {
            return Ok(Some(refs));
        }
        let body = self.block(top_ref, None, Access::Lookup)?;
        let refs = block::read_refs(body, false)
            .filter(|refs| !refs.is_empty())
            .ok_or_else(|| {
                Error::corrupt(&self.path, top_ref.offset, "index block does not decode")
            })?;
        Ok(Some(cache.get_or_init(|| refs)))
    }

    /// The file offset of `bytes`, a slice of this snapshot's map (for error reports).
    pub fn offset_of(&self, bytes: &[u8]) -> u64 {
        (bytes.as_ptr() as usize).wrapping_sub(self.map.as_ptr() as usize) as u64
    }

    /// The whole file.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Every data block, in order, as `(ordinal, index entry)`.
    pub(crate) fn data_refs(&self) -> Result<Vec<(usize, &BlockRef)>> {
        let mut out = Vec::with_capacity(self.data_checked.len());
        for (i, top_ref) in self.top.iter().enumerate() {
            let first = usize::try_from(top_ref.count).unwrap_or(usize::MAX);
            for (j, data_ref) in self.index_block(i)?.unwrap_or_default().iter().enumerate() {
                out.push((first.saturating_add(j), data_ref));
            }
        }
        Ok(out)
    }

    /// Data block `ordinal` (its checksum checked once): its body, and its body followed
    /// by its checksum as they lie in the file.
    pub(crate) fn data_block(&self, ordinal: usize, data_ref: &BlockRef) -> Result<(&[u8], &[u8])> {
        let body = self.block(data_ref, self.data_checked.get(ordinal), Access::InOrder)?;
        let start = usize::try_from(data_ref.offset).unwrap_or(usize::MAX);
        let framed = self
            .map
            .get(start..start + body.len() + 4)
            .unwrap_or_default();
        Ok((body, framed))
    }

    /// The error for a data block entry that does not decode.
    pub(crate) fn malformed_entry(&self, offset: u64) -> Error {
        Error::corrupt(&self.path, offset, "malformed entry in data block")
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        // A key below the first one is in no block, so none is read: a lookup in a
        // collection the snapshot has no entry of, before every other (the writer
        // open's look for an interrupted indexing run, in a store of fingerprints only,
        // cost three cold page faults).
        if self
            .top
            .first()
            .is_none_or(|first| key < first.first_key.as_slice())
        {
            return Ok(None);
        }
        let mut cursor = self.seek(key)?;
        match cursor.next_entry()? {
            Some((found, value)) if found == key => Ok(Some(value)),
            _ => Ok(None),
        }
    }

    /// A cursor at the first entry whose key is >= `start`.
    pub fn seek(&self, start: &[u8]) -> Result<Cursor<'_>> {
        let top_at = self
            .top
            .partition_point(|r| r.first_key.as_slice() <= start)
            .saturating_sub(1);
        let mut cursor = Cursor::new(self, top_at);
        cursor.load_index(top_at)?;
        if let Some(refs) = &cursor.index {
            cursor.data_at = refs
                .partition_point(|r| r.first_key.as_slice() <= start)
                .saturating_sub(1);
        }
        cursor.load_data(Access::Lookup)?;
        cursor.skip_within_block(start)?;
        while let Some(key) = cursor.peek_key()? {
            if key >= start {
                break;
            }
            cursor.next_entry()?;
        }
        Ok(cursor)
    }

    /// The restart points of data block `ordinal` (whose checked body is `body`).
    fn restarts(&self, ordinal: usize, body: &[u8], offset: u64) -> Result<&Restarts> {
        let Some(cache) = self.restarts.get(ordinal) else {
            return Err(self.malformed_entry(offset));
        };
        if let Some(restarts) = cache.get() {
            return Ok(restarts);
        }
        let mut restarts = Vec::new();
        let (mut pos, mut key, mut entries) = (0, Vec::new(), 0usize);
        while pos < body.len() {
            block::next_entry(body, &mut pos, &mut key)
                .ok_or_else(|| self.malformed_entry(offset + pos as u64))?;
            entries += 1;
            if entries.is_multiple_of(RESTART_INTERVAL) {
                restarts.push((pos, key.clone().into_boxed_slice()));
            }
        }
        Ok(cache.get_or_init(|| restarts))
    }

    /// Checks every block's checksum and every entry's framing and order. Returns the
    /// number of entries seen.
    pub fn verify_all(&self) -> Result<u64> {
        self.advise_full_scan();
        let mut cursor = self.seek(&[])?;
        let mut previous: Option<Vec<u8>> = None;
        let mut count = 0u64;
        while let Some((key, _)) = cursor.next_entry()? {
            if previous.as_deref().is_some_and(|p| p >= key) {
                return Err(Error::corrupt(
                    &self.path,
                    cursor.position(),
                    "keys out of order",
                ));
            }
            previous = Some(key.to_vec());
            count += 1;
        }
        if count != self.entry_count {
            return Err(Error::corrupt(
                &self.path,
                0,
                format!(
                    "footer says {} entries, blocks hold {count}",
                    self.entry_count
                ),
            ));
        }
        Ok(count)
    }
}

/// A forward cursor over a snapshot's entries.
#[derive(Debug)]
pub struct Cursor<'a> {
    snapshot: &'a Snapshot,
    top_at: usize,
    index: Option<&'a [BlockRef]>,
    data_at: usize,
    body: &'a [u8],
    body_offset: u64,
    pos: usize,
    key: Vec<u8>,
    pending: Option<std::ops::Range<usize>>,
    /// Ordinal of the loaded data block.
    ordinal: usize,
}

impl<'a> Cursor<'a> {
    fn new(snapshot: &'a Snapshot, top_at: usize) -> Self {
        Cursor {
            snapshot,
            top_at,
            index: None,
            data_at: 0,
            body: &[],
            body_offset: 0,
            pos: 0,
            key: Vec::new(),
            pending: None,
            ordinal: 0,
        }
    }

    /// The file offset of the cursor (for error reports).
    pub fn position(&self) -> u64 {
        self.body_offset + self.pos as u64
    }

    fn load_index(&mut self, top_at: usize) -> Result<()> {
        self.top_at = top_at;
        self.index = self.snapshot.index_block(top_at)?;
        self.data_at = 0;
        Ok(())
    }

    fn load_data(&mut self, access: Access) -> Result<()> {
        self.body = &[];
        self.pos = 0;
        self.key.clear();
        self.pending = None;
        let Some(data_ref) = self.index.and_then(|refs| refs.get(self.data_at)) else {
            return Ok(());
        };
        let first_block = self.snapshot.top.get(self.top_at).map_or(0, |t| t.count);
        let ordinal = usize::try_from(first_block)
            .unwrap_or(usize::MAX)
            .saturating_add(self.data_at);
        self.body =
            self.snapshot
                .block(data_ref, self.snapshot.data_checked.get(ordinal), access)?;
        self.body_offset = data_ref.offset;
        self.ordinal = ordinal;
        Ok(())
    }

    /// Jumps, within the loaded block, to the last restart point whose key is below
    /// `start` (entries before it are all below `start`).
    fn skip_within_block(&mut self, start: &[u8]) -> Result<()> {
        if self.body.is_empty() {
            return Ok(());
        }
        let restarts = self
            .snapshot
            .restarts(self.ordinal, self.body, self.body_offset)?;
        let below = restarts.partition_point(|(_, key)| key.as_ref() < start);
        if let Some((pos, key)) = below.checked_sub(1).and_then(|i| restarts.get(i)) {
            self.pos = *pos;
            self.key.clear();
            self.key.extend_from_slice(key);
            self.pending = None;
        }
        Ok(())
    }

    /// Moves to the next block when the current one is used up. `false`: no more blocks.
    fn advance_block(&mut self) -> Result<bool> {
        let Some(refs) = self.index else {
            return Ok(false);
        };
        if self.data_at + 1 < refs.len() {
            self.data_at += 1;
        } else {
            self.load_index(self.top_at + 1)?;
            if self.index.is_none() {
                return Ok(false);
            }
        }
        self.load_data(Access::InOrder)?;
        Ok(true)
    }

    fn peek_key(&mut self) -> Result<Option<&[u8]>> {
        if self.pending.is_none() {
            while self.pos >= self.body.len() {
                if !self.advance_block()? {
                    return Ok(None);
                }
            }
            let range = block::next_entry(self.body, &mut self.pos, &mut self.key)
                .ok_or_else(|| self.snapshot.malformed_entry(self.position()))?;
            self.pending = Some(range);
        }
        Ok(Some(&self.key))
    }

    /// The entry the cursor is at, as `(key, value)`, without moving past it.
    pub fn peek_entry(&mut self) -> Result<Option<(&[u8], &'a [u8])>> {
        if self.peek_key()?.is_none() {
            return Ok(None);
        }
        let Some(range) = self.pending.clone() else {
            return Ok(None);
        };
        let value = self.body.get(range).unwrap_or_default();
        Ok(Some((&self.key, value)))
    }

    /// Moves past the entry [`Cursor::peek_entry`] returned (no-op if none was peeked).
    pub fn advance(&mut self) {
        self.pending = None;
    }

    /// The next entry, as `(key, value)`.
    pub fn next_entry(&mut self) -> Result<Option<(&[u8], &'a [u8])>> {
        if self.peek_key()?.is_none() {
            return Ok(None);
        }
        let Some(range) = self.pending.take() else {
            return Ok(None);
        };
        let value = self.body.get(range).unwrap_or_default();
        Ok(Some((&self.key, value)))
    }
}
