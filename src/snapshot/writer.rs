//! Writes a snapshot: stream sorted entries into blocks under a temporary name, fsync,
//! rename, fsync the directory.

use std::path::{Path, PathBuf};

use super::block::{self, BlockRef};
use super::parity::{self, ParityBuilder};
use super::{BLOCK_BYTES_TARGET, FOOTER_BYTES, FOOTER_MAGIC, SECTION_COUNT};
use crate::codec::checksum;
use crate::error::{Error, Result};
use crate::header::{FileHeader, SNAPSHOT_MAGIC, StoreId};
use crate::model::keys::Tag;
use crate::storage::Storage;
use crate::storage::pacing::{self, Foreground, PacedWriter};

/// Bytes buffered before a write call.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Streams a snapshot into a file.
struct BlockWriter<'a> {
    buffer: Vec<u8>,
    /// Writes the file, pushing what it wrote to the device in steps (`storage::pacing`).
    out: PacedWriter<'a>,
    /// The parity sidecar, computed from the bytes as they go out, and its file.
    parity: Option<(ParityBuilder, PacedWriter<'a>)>,
}

impl BlockWriter<'_> {
    /// Bytes handed to the file so far (the buffer's first byte goes there).
    fn flushed(&self) -> u64 {
        self.out.written()
    }

    fn offset(&self) -> u64 {
        self.flushed() + self.buffer.len() as u64
    }

    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends a block body and its checksum; returns the body's offset.
    fn push_block(&mut self, body: &[u8]) -> Result<u64> {
        let offset = self.offset();
        self.push(body)?;
        self.push(&checksum(&[body]).to_le_bytes())?;
        Ok(offset)
    }

    /// Appends bytes that are already framed; a long run is written straight from
    /// `bytes` (no copy through the buffer).
    fn push_raw(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() < RAW_DIRECT_BYTES {
            return self.push(bytes);
        }
        self.flush()?;
        self.append(bytes)
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut self.buffer);
        let appended = self.append(&buffer);
        self.buffer = buffer;
        self.buffer.clear();
        appended
    }

    /// Writes `bytes` to the file, and what they complete of the sidecar to its file.
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.append(bytes)?;
        if let Some((builder, out)) = &mut self.parity {
            builder.update(bytes);
            let ready = builder.take_ready();
            if !ready.is_empty() {
                out.append(&ready)?;
            }
        }
        Ok(())
    }
}

/// Verbatim block runs at least this long are written from their source directly.
const RAW_DIRECT_BYTES: usize = 64 * 1024;

/// Builds a snapshot's blocks from entries in strictly ascending key order, or from
/// whole data blocks of another snapshot copied verbatim (see [`Builder::copy_blocks`]).
pub struct Builder<'a> {
    out: BlockWriter<'a>,
    sections: [u64; SECTION_COUNT],
    data_refs: Vec<BlockRef>,
    /// Where the open data block's body starts in `out.buffer` (blocks are built in place).
    block_start: usize,
    block_first_key: Vec<u8>,
    block_entries: u64,
    previous_key: Vec<u8>,
    total: u64,
}

/// A data block to copy verbatim: its body and checksum (`framed`), and its index entry.
#[derive(Debug, Clone, Copy)]
pub struct CopiedBlock<'b> {
    /// Body length (the 4-byte checksum follows it in `framed`).
    pub body_len: u32,
    /// Entries in the block.
    pub count: u64,
    /// Its first key.
    pub first_key: &'b [u8],
}

impl<'a> Builder<'a> {
    fn new(out: BlockWriter<'a>) -> Self {
        Builder {
            out,
            sections: [0; SECTION_COUNT],
            data_refs: Vec::new(),
            block_start: 0,
            block_first_key: Vec::new(),
            block_entries: 0,
            previous_key: Vec::new(),
            total: 0,
        }
    }

    /// Whether the next entry starts a new data block.
    pub fn at_block_boundary(&self) -> bool {
        self.block_entries == 0
    }

    /// Appends one entry; its key must be above every key before it.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        assert!(
            self.total == 0 || key > self.previous_key.as_slice(),
            "snapshot keys must be strictly ascending"
        );
        let tag = Tag::of(key).ok_or_else(|| {
            Error::InvalidArgument("snapshot key without a collection tag".into())
        })?;
        if let Some(count) = self.sections.get_mut(tag as usize - 1) {
            *count += 1;
        }
        let previous: &[u8] = if self.block_entries == 0 {
            self.block_start = self.out.buffer.len();
            self.block_first_key.clear();
            self.block_first_key.extend_from_slice(key);
            &[]
        } else {
            &self.previous_key
        };
        block::put_entry(&mut self.out.buffer, previous, key, value);
        self.previous_key.clear();
        self.previous_key.extend_from_slice(key);
        self.block_entries += 1;
        self.total += 1;
        if self.out.buffer.len() - self.block_start >= BLOCK_BYTES_TARGET {
            self.close_block()?;
        }
        Ok(())
    }

    fn close_block(&mut self) -> Result<()> {
        let body = self.out.buffer.get(self.block_start..).unwrap_or_default();
        let body_len = body.len() as u32;
        let crc = checksum(&[body]);
        self.out.buffer.extend_from_slice(&crc.to_le_bytes());
        self.data_refs.push(BlockRef {
            offset: self.out.flushed() + self.block_start as u64,
            body_len,
            count: self.block_entries,
            first_key: std::mem::take(&mut self.block_first_key),
        });
        self.block_entries = 0;
        if self.out.buffer.len() >= WRITE_BUFFER_BYTES {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Appends consecutive data blocks of another snapshot verbatim: `framed` is their
    /// bytes (each body followed by its checksum), `blocks` their index entries, and
    /// every entry's key has collection tag `tag`. Call only at a block boundary, with
    /// blocks that the entry-by-entry path would have produced byte for byte: data
    /// blocks of a version-1 snapshot whose entries are exactly the next entries to
    /// write, none of them the last block of their snapshot (a block's encoding depends
    /// only on its own entries, and a block closes at the first entry that takes its
    /// body to `BLOCK_BYTES_TARGET`).
    pub fn copy_blocks(
        &mut self,
        framed: &[u8],
        blocks: &[CopiedBlock<'_>],
        tag: Tag,
    ) -> Result<()> {
        assert!(self.at_block_boundary(), "blocks are copied between blocks");
        let mut offset = self.out.offset();
        let mut expected_len = 0usize;
        for copied in blocks {
            assert!(
                self.total == 0 || copied.first_key > self.previous_key.as_slice(),
                "snapshot keys must be strictly ascending"
            );
            assert_eq!(Tag::of(copied.first_key), Some(tag), "one collection");
            self.data_refs.push(BlockRef {
                offset,
                body_len: copied.body_len,
                count: copied.count,
                first_key: copied.first_key.to_vec(),
            });
            if let Some(count) = self.sections.get_mut(tag as usize - 1) {
                *count += copied.count;
            }
            self.total += copied.count;
            // Only the first key is known: enough for the order check of the next one.
            self.previous_key.clear();
            self.previous_key.extend_from_slice(copied.first_key);
            offset += u64::from(copied.body_len) + 4;
            expected_len += copied.body_len as usize + 4;
        }
        assert_eq!(expected_len, framed.len(), "framed bytes match the blocks");
        self.out.push_raw(framed)
    }

    /// Closes the last data block, writes the index blocks, the top index and the footer,
    /// then the rest of the sidecar. Returns `(entries, file bytes)`.
    fn finish(mut self) -> Result<(u64, u64)> {
        if self.block_entries > 0 {
            self.close_block()?;
        }
        let Builder {
            mut out,
            sections,
            data_refs,
            total,
            ..
        } = self;
        let mut top_refs: Vec<BlockRef> = Vec::new();
        let mut index_body = Vec::with_capacity(2 * BLOCK_BYTES_TARGET);
        let mut index_first: Option<(u64, Vec<u8>)> = None;
        for (ordinal, data_ref) in data_refs.iter().enumerate() {
            if index_first.is_none() {
                index_first = Some((ordinal as u64, data_ref.first_key.clone()));
            }
            block::put_ref(&mut index_body, data_ref, false);
            if index_body.len() >= BLOCK_BYTES_TARGET {
                flush_index(&mut out, &mut index_body, &mut index_first, &mut top_refs)?;
            }
        }
        flush_index(&mut out, &mut index_body, &mut index_first, &mut top_refs)?;

        let top_offset = out.offset();
        let mut top = Vec::new();
        for count in sections {
            top.extend_from_slice(&count.to_le_bytes());
        }
        for top_ref in &top_refs {
            block::put_ref(&mut top, top_ref, true);
        }
        out.push(&top)?;
        let mut footer = Vec::with_capacity(FOOTER_BYTES);
        footer.extend_from_slice(&FOOTER_MAGIC);
        footer.extend_from_slice(&top_offset.to_le_bytes());
        footer.extend_from_slice(&(top.len() as u32).to_le_bytes());
        footer.extend_from_slice(&(top_refs.len() as u32).to_le_bytes());
        footer.extend_from_slice(&(data_refs.len() as u64).to_le_bytes());
        footer.extend_from_slice(&total.to_le_bytes());
        footer.extend_from_slice(&checksum(&[&top]).to_le_bytes());
        footer.resize(FOOTER_BYTES - 4, 0);
        let footer_crc = checksum(&[&footer]);
        footer.extend_from_slice(&footer_crc.to_le_bytes());
        out.push(&footer)?;
        out.flush()?;
        if let Some((builder, mut parity_out)) = out.parity.take() {
            parity_out.append(&builder.finish())?;
        }
        Ok((total, out.offset()))
    }
}

/// What a written snapshot holds.
#[derive(Debug, Clone)]
pub struct Written {
    /// The final `.snap` path.
    pub path: PathBuf,
    /// Total entries.
    pub entries: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// Where a snapshot goes: the store directory, the store and the lsn it covers.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub storage: &'a dyn Storage,
    pub dir: &'a Path,
    pub store_id: StoreId,
    pub lsn: u64,
    /// Whether to write the parity sidecar `<lsn>.par` ([`super::parity`]).
    pub parity: bool,
}

/// Writes `entries` (strictly ascending keys) as the snapshot of `lsn`, durably, with its
/// parity sidecar. On any failure the temporary files are removed (best effort) and
/// nothing is renamed.
pub fn write<I>(
    storage: &dyn Storage,
    dir: &Path,
    store_id: StoreId,
    lsn: u64,
    entries: I,
) -> Result<Written>
where
    I: Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
{
    let mut entries = entries;
    let target = Target {
        storage,
        dir,
        store_id,
        lsn,
        parity: true,
    };
    write_with(
        target,
        &mut |builder| {
            for entry in entries.by_ref() {
                let (key, value) = entry?;
                builder.push(&key, &value)?;
            }
            Ok(())
        },
        &pacing::NoForeground,
        &mut false,
        None,
    )
}

/// Writes the snapshot whose blocks `fill` builds, durably; on any failure the temporary
/// files are removed (best effort) and nothing is renamed. Sets `sync_failed` when the
/// failure was an `fdatasync` or the directory's `fsync`: what they covered may never
/// reach the disk, and a later sync would not tell (fsyncgate), so the caller must not go
/// on as if nothing happened. Write-back gives way to `foreground` (`storage::pacing`).
///
/// `spare`: a superseded snapshot's file to write over instead of creating the temporary
/// ([`super::reuse`]); what it held past the new snapshot's length is cut off.
///
/// Order: write both temporaries, `fdatasync` the snapshot, then the sidecar; unlink any
/// `<lsn>.par`, rename the snapshot, then the sidecar; `fsync` the directory. A crash
/// leaves the snapshot with or without its sidecar (a `.par.tmp` recovery removes), never
/// a snapshot named before its bytes are durable, and never a sidecar beside a snapshot
/// it was not computed from.
pub(crate) fn write_with(
    target: Target<'_>,
    fill: &mut dyn FnMut(&mut Builder<'_>) -> Result<()>,
    foreground: &dyn Foreground,
    sync_failed: &mut bool,
    spare: Option<super::reuse::SpareSnapshot>,
) -> Result<Written> {
    let Target {
        storage, dir, lsn, ..
    } = target;
    let tmp = dir.join(super::tmp_name(lsn));
    let path = dir.join(super::file_name(lsn));
    let parity_tmp = dir.join(parity::tmp_name(lsn));
    let parity_path = dir.join(parity::file_name(lsn));
    let remove_temps = || {
        let _ = storage.remove_file(&tmp);
        if target.parity {
            let _ = storage.remove_file(&parity_tmp);
        }
    };
    let file = match spare.and_then(|spare| spare.into_temp(storage, &tmp)) {
        Some(file) => file,
        None => crate::storage::create_temp(storage, &tmp)?,
    };
    let parity_file = if target.parity {
        match crate::storage::create_temp(storage, &parity_tmp) {
            Ok(file) => Some(file),
            Err(error) => {
                remove_temps();
                return Err(error);
            }
        }
    } else {
        None
    };
    let write_back_failed = std::cell::Cell::new(false);
    let result = {
        let out = PacedWriter::new(file.as_ref(), &tmp, foreground, &write_back_failed);
        let parity_out = parity_file.as_deref().map(|parity_file| {
            PacedWriter::new(parity_file, &parity_tmp, foreground, &write_back_failed)
        });
        write_body(out, parity_out, target, fill).and_then(|(entries, bytes)| {
            // A reused file longer than this snapshot: the footer must end the file.
            if file.len().map_err(|e| Error::io("stat", &tmp, e))? > bytes {
                file.set_len(bytes)
                    .map_err(|e| Error::io("truncate", &tmp, e))?;
            }
            file.sync_data().map_err(|e| {
                *sync_failed = true;
                Error::io("fdatasync", &tmp, e)
            })?;
            if let Some(sidecar) = parity_file.as_deref() {
                sidecar.sync_data().map_err(|e| {
                    *sync_failed = true;
                    Error::io("fdatasync", &parity_tmp, e)
                })?;
            }
            Ok((entries, bytes))
        })
    };
    *sync_failed |= write_back_failed.get();
    let (entries, bytes) = match result {
        Ok(done) => done,
        Err(error) => {
            // Unlinked before the handle (and a reused file's exclusive lock) goes: a
            // reader holding the file open finds its name gone (snapshot::reuse, rule 4).
            remove_temps();
            drop(file);
            return Err(error);
        }
    };
    drop(file);
    drop(parity_file);
    // Any sidecar named like this snapshot's goes first: one left by an earlier attempt
    // at this lsn describes other bytes. Then the snapshot, then its sidecar, so that a
    // sidecar is only ever named beside the snapshot it was computed from.
    let renamed = match storage.remove_file(&parity_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("remove", &parity_path, e))
        }
        _ => Ok(()),
    }
    .and_then(|()| {
        storage
            .rename(&tmp, &path)
            .map_err(|e| Error::io("rename", &tmp, e))
    })
    .and_then(|()| {
        if !target.parity {
            return Ok(());
        }
        storage
            .rename(&parity_tmp, &parity_path)
            .map_err(|e| Error::io("rename", &parity_tmp, e))
    });
    if let Err(error) = renamed {
        remove_temps();
        return Err(error);
    }
    storage.sync_dir(dir).map_err(|e| {
        *sync_failed = true;
        Error::io("fsync directory", dir, e)
    })?;
    Ok(Written {
        path,
        entries,
        bytes,
    })
}

fn write_body<'a>(
    out: PacedWriter<'a>,
    parity_out: Option<PacedWriter<'a>>,
    target: Target<'_>,
    fill: &mut dyn FnMut(&mut Builder<'_>) -> Result<()>,
) -> Result<(u64, u64)> {
    let parity = match parity_out {
        Some(mut parity_out) => {
            let header = FileHeader {
                magic: parity::PARITY_MAGIC,
                store_id: target.store_id,
                lsn: target.lsn,
            };
            parity_out.append(&header.encode())?;
            Some((ParityBuilder::new(), parity_out))
        }
        None => None,
    };
    let mut out = BlockWriter {
        buffer: Vec::with_capacity(WRITE_BUFFER_BYTES + 2 * BLOCK_BYTES_TARGET),
        out,
        parity,
    };
    out.push(
        &FileHeader {
            magic: SNAPSHOT_MAGIC,
            store_id: target.store_id,
            lsn: target.lsn,
        }
        .encode(),
    )?;
    let mut builder = Builder::new(out);
    fill(&mut builder)?;
    builder.finish()
}

fn flush_index(
    out: &mut BlockWriter<'_>,
    body: &mut Vec<u8>,
    first: &mut Option<(u64, Vec<u8>)>,
    top_refs: &mut Vec<BlockRef>,
) -> Result<()> {
    let Some((first_block, first_key)) = first.take() else {
        return Ok(());
    };
    let offset = out.push_block(body)?;
    top_refs.push(BlockRef {
        offset,
        body_len: body.len() as u32,
        count: first_block,
        first_key,
    });
    body.clear();
    Ok(())
}
