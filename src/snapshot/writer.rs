//! Writes a snapshot: stream sorted entries into blocks under a temporary name, fsync,
//! rename, fsync the directory.

use std::path::{Path, PathBuf};

use super::block::{self, BlockRef};
use super::{BLOCK_BYTES_TARGET, FOOTER_BYTES, FOOTER_MAGIC, SECTION_COUNT};
use crate::codec::checksum;
use crate::error::{Error, Result};
use crate::header::{FileHeader, SNAPSHOT_MAGIC, StoreId};
use crate::model::keys::Tag;
use crate::storage::{Storage, StorageFile};

/// Bytes buffered before a write call.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Streams a snapshot into a file.
struct BlockWriter<'a> {
    file: &'a dyn StorageFile,
    path: &'a Path,
    buffer: Vec<u8>,
    flushed: u64,
}

impl BlockWriter<'_> {
    fn offset(&self) -> u64 {
        self.flushed + self.buffer.len() as u64
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

    fn flush(&mut self) -> Result<()> {
        self.file
            .write_all_at(&self.buffer, self.flushed)
            .map_err(|e| Error::io("write", self.path, e))?;
        self.flushed += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
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

/// Writes `entries` (strictly ascending keys) as the snapshot of `lsn`, durably. On any
/// failure the temporary file is removed (best effort) and nothing is renamed.
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
    write_noting_sync_failure(storage, dir, store_id, lsn, entries, &mut false)
}

/// [`write`], setting `sync_failed` when the failure was the file's `fdatasync` or the
/// directory's `fsync`: what they covered may never reach the disk, and a later sync
/// would not tell (fsyncgate), so the caller must not go on as if nothing happened.
pub(crate) fn write_noting_sync_failure<I>(
    storage: &dyn Storage,
    dir: &Path,
    store_id: StoreId,
    lsn: u64,
    entries: I,
    sync_failed: &mut bool,
) -> Result<Written>
where
    I: Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
{
    let tmp = dir.join(super::tmp_name(lsn));
    let path = dir.join(super::file_name(lsn));
    let file = crate::storage::create_temp(storage, &tmp)?;
    let result =
        write_body(file.as_ref(), &tmp, store_id, lsn, entries).and_then(|(entries, bytes)| {
            file.sync_data().map_err(|e| {
                *sync_failed = true;
                Error::io("fdatasync", &tmp, e)
            })?;
            Ok((entries, bytes))
        });
    drop(file);
    let (entries, bytes) = match result {
        Ok(done) => done,
        Err(error) => {
            let _ = storage.remove_file(&tmp);
            return Err(error);
        }
    };
    if let Err(error) = storage.rename(&tmp, &path) {
        let _ = storage.remove_file(&tmp);
        return Err(Error::io("rename", &tmp, error));
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

fn write_body<I>(
    file: &dyn StorageFile,
    path: &Path,
    store_id: StoreId,
    lsn: u64,
    entries: I,
) -> Result<(u64, u64)>
where
    I: Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
{
    let mut out = BlockWriter {
        file,
        path,
        buffer: Vec::with_capacity(WRITE_BUFFER_BYTES),
        flushed: 0,
    };
    out.push(
        &FileHeader {
            magic: SNAPSHOT_MAGIC,
            store_id,
            lsn,
        }
        .encode(),
    )?;

    let mut sections = [0u64; SECTION_COUNT];
    let mut data_refs: Vec<BlockRef> = Vec::new();
    let mut body = Vec::with_capacity(2 * BLOCK_BYTES_TARGET);
    let mut block_first_key: Vec<u8> = Vec::new();
    let mut block_entries = 0u64;
    let mut previous_key: Vec<u8> = Vec::new();
    let mut total = 0u64;
    for entry in entries {
        let (key, value) = entry?;
        assert!(
            total == 0 || key > previous_key,
            "snapshot keys must be strictly ascending"
        );
        let tag = Tag::of(&key).ok_or_else(|| {
            Error::InvalidArgument("snapshot key without a collection tag".into())
        })?;
        if let Some(count) = sections.get_mut(tag as usize - 1) {
            *count += 1;
        }
        if block_entries == 0 {
            block_first_key.clone_from(&key);
            previous_key.clear();
        }
        block::put_entry(&mut body, &previous_key, &key, &value);
        previous_key = key;
        block_entries += 1;
        total += 1;
        if body.len() >= BLOCK_BYTES_TARGET {
            let offset = out.push_block(&body)?;
            data_refs.push(BlockRef {
                offset,
                body_len: body.len() as u32,
                count: block_entries,
                first_key: std::mem::take(&mut block_first_key),
            });
            body.clear();
            block_entries = 0;
        }
    }
    if block_entries > 0 {
        let offset = out.push_block(&body)?;
        data_refs.push(BlockRef {
            offset,
            body_len: body.len() as u32,
            count: block_entries,
            first_key: block_first_key,
        });
    }

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
    Ok((total, out.offset()))
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
