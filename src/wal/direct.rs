//! Appending to a segment around the page cache (`O_DIRECT`), for synced groups.
//!
//! A durable commit through the page cache costs a copy into it, then, in `fdatasync`,
//! the kernel's write-back of the dirty page, then the device cache flush. Written
//! directly, the bytes go to the device in the `write` call, and `fdatasync` of a zeroed
//! segment only flushes (measured: a 100-byte append + `fdatasync` 4–7 % faster than a
//! buffered one into a sparse file, 8–13 % faster than into a zeroed one;
//! `benches/README.md`, sixth session).
//!
//! Direct writes cover whole blocks ([`DirectFile::block_bytes`]), so each one writes
//! again the head of the block it starts in (bytes already written, and perhaps durable)
//! with the same bytes, and pads the block it ends in with zeros: the
//! segment holds zeros after its last record anyway (preallocated, or cut back after a
//! torn tail). A buffered append that starts inside a block has the device write that
//! block whole too, so a power loss during the write puts at risk no bytes it did not
//! (disk assumption 5: synced bytes that share a sector with a torn write survive).

use std::io;

use crate::storage::{DIRECT_ALIGN_BYTES, DirectFile, Storage, StorageFile};

/// Bytes written per direct `pwrite` at most: a larger group is written in several, so
/// the aligned buffer never grows past this (plus alignment room) whatever the group's
/// size. One `pwrite` of a whole group lets the kernel have all of its requests in
/// flight at once, where writes one after the other each wait for the device: a group of
/// 10,000 fingerprints (0.9 MB) in 256 KiB writes took 1.40–1.54 ms to commit, in one
/// write 1.11–1.19 ms (`benches/README.md`, tenth session).
const CHUNK_BYTES: usize = 2 * 1024 * 1024;
const _: () = assert!(CHUNK_BYTES.is_multiple_of(DIRECT_ALIGN_BYTES));

/// The direct handle on a segment, and what it needs to write whole blocks.
#[derive(Debug)]
pub struct DirectTail {
    file: DirectFile,
    /// The segment's bytes from the start of the sector holding the write offset up to
    /// it: always `write_offset % block_bytes` of them.
    block_head: Vec<u8>,
    /// Reused for every write, and by the next segment's tail ([`Self::into_buffer`]):
    /// grown to what the largest write so far needed, at most `CHUNK_BYTES` from its
    /// first aligned address.
    buffer: Vec<u8>,
}

impl DirectTail {
    /// Opens the segment at `path` for direct writes at `write_offset`, reading the head
    /// of its block through `buffered`, writing through `buffer` (the last segment's, or
    /// empty). `None` where the storage cannot write directly, or on any failure: the
    /// caller then writes through the page cache, as before.
    pub fn open(
        storage: &dyn Storage,
        path: &std::path::Path,
        buffered: &dyn StorageFile,
        write_offset: u64,
        buffer: Vec<u8>,
    ) -> Option<DirectTail> {
        let file = storage.open_direct(path).ok()??;
        let head_bytes = usize::try_from(write_offset % file.block_bytes as u64).ok()?;
        let mut block_head = vec![0u8; head_bytes];
        buffered
            .read_exact_at(&mut block_head, write_offset - head_bytes as u64)
            .ok()?;
        Some(DirectTail {
            file,
            block_head,
            buffer,
        })
    }

    /// The write buffer, for the next segment's tail: a rotation need not allocate (and
    /// fault in) it again.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// Writes `batch` at `write_offset` (where the last write ended) directly: the
    /// sectors from the one holding `write_offset` to the one holding its end, in
    /// writes of at most [`CHUNK_BYTES`]. An error of kind `InvalidInput` (`EINVAL`)
    /// means the file system refused the alignment: nothing of that write landed.
    pub fn write(&mut self, batch: &[u8], write_offset: u64) -> io::Result<()> {
        let block_bytes = self.file.block_bytes;
        let head_bytes = self.block_head.len();
        // Never expected; a failed write (the store poisons) rather than a panic that
        // would unwind through the commit leader.
        if head_bytes as u64 != write_offset % block_bytes as u64 {
            return Err(io::Error::other(format!(
                "direct append at offset {write_offset} with {head_bytes} bytes of block head"
            )));
        }
        let largest_chunk_bytes = (head_bytes + batch.len())
            .next_multiple_of(block_bytes)
            .min(CHUNK_BYTES);
        let capacity_bytes = largest_chunk_bytes + DIRECT_ALIGN_BYTES;
        if self.buffer.capacity() < capacity_bytes {
            self.buffer.clear();
            self.buffer
                .try_reserve_exact(capacity_bytes)
                .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        }
        let skip_bytes = self.buffer.as_ptr().align_offset(DIRECT_ALIGN_BYTES);
        if skip_bytes >= DIRECT_ALIGN_BYTES {
            return Err(io::Error::other("no aligned address in the write buffer"));
        }
        let mut chunk_offset = write_offset - head_bytes as u64;
        let mut head: &[u8] = &self.block_head;
        let mut rest = batch;
        loop {
            let (now, later) = rest.split_at(rest.len().min(CHUNK_BYTES - head.len()));
            let filled_bytes = head.len() + now.len();
            // Within the capacity reserved above: nothing here reallocates.
            self.buffer.clear();
            self.buffer.resize(skip_bytes, 0);
            self.buffer.extend_from_slice(head);
            self.buffer.extend_from_slice(now);
            self.buffer
                .resize(skip_bytes + filled_bytes.next_multiple_of(block_bytes), 0);
            let aligned = self
                .buffer
                .get(skip_bytes..)
                .ok_or_else(|| io::Error::other("write buffer shorter than reserved"))?;
            debug_assert!((aligned.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN_BYTES));
            self.file.file.write_all_at(aligned, chunk_offset)?;
            if later.is_empty() {
                // The new head: the written bytes of the last sector.
                let next_head = aligned
                    .get(filled_bytes - filled_bytes % block_bytes..filled_bytes)
                    .unwrap_or_default()
                    .to_vec();
                self.block_head = next_head;
                return Ok(());
            }
            // A full chunk: a multiple of the block size, so the next starts aligned.
            chunk_offset += filled_bytes as u64;
            head = &[];
            rest = later;
        }
    }

    /// Notes that `batch` was written at `write_offset` through the page cache. `false`
    /// if the head did not track `write_offset` (never expected): the caller then stops
    /// writing this segment directly.
    pub fn wrote_buffered(&mut self, batch: &[u8], write_offset: u64) -> bool {
        let block_bytes = self.file.block_bytes as u64;
        if self.block_head.len() as u64 != write_offset % block_bytes {
            return false;
        }
        let end = write_offset + batch.len() as u64;
        let next_head_bytes = (end % block_bytes) as usize;
        if batch.len() >= next_head_bytes {
            self.block_head.clear();
            self.block_head.extend_from_slice(
                batch
                    .get(batch.len() - next_head_bytes..)
                    .unwrap_or_default(),
            );
        } else {
            self.block_head.extend_from_slice(batch);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{CHUNK_BYTES, DIRECT_ALIGN_BYTES, DirectTail};
    use crate::storage::sim::CrashMode;
    use crate::storage::{OpenMode, SimStorage, Storage, StorageFile};

    const PATH: &str = "/d/seg";

    /// A synced file of 100 bytes of 0xAA in a preallocated 2 MiB, its direct tail, and
    /// the bytes it should hold.
    fn setup(
        seed: u64,
        block_bytes: usize,
    ) -> (SimStorage, Box<dyn StorageFile>, DirectTail, Vec<u8>) {
        let sim = SimStorage::new(seed);
        sim.set_direct_block_bytes(block_bytes);
        sim.create_dir_all(Path::new("/d")).expect("dir");
        let file = sim
            .open_file(Path::new(PATH), OpenMode::CreateNew)
            .expect("create");
        file.set_len(2 << 20).expect("preallocate");
        file.write_all_at(&[0xAA; 100], 0).expect("head");
        file.sync_data().expect("sync");
        sim.sync_dir(Path::new("/d")).expect("sync dir");
        let tail =
            DirectTail::open(&sim, Path::new(PATH), &*file, 100, Vec::new()).expect("direct");
        (sim, file, tail, vec![0xAA; 100])
    }

    /// Appends of many sizes, direct or buffered, synced or not, then a power loss that
    /// tears what was not synced: the synced bytes are the ones appended, although each
    /// direct write covered the sector they share with the append.
    #[test]
    fn a_torn_direct_append_keeps_the_synced_bytes_of_its_first_sector() {
        for block_bytes in [512, 4096] {
            for seed in 0..150u64 {
                let (sim, file, mut tail, mut expected) = setup(seed, block_bytes);
                let mut synced = expected.len();
                for step in 0..8u64 {
                    let len = 1 + ((seed * 31 + step * 977) % 1500) as usize;
                    let batch = vec![(step + 1) as u8; len];
                    let offset = expected.len() as u64;
                    if (seed + step) % 4 == 0 {
                        file.write_all_at(&batch, offset).expect("buffered write");
                        assert!(tail.wrote_buffered(&batch, offset));
                    } else {
                        tail.write(&batch, offset).expect("direct write");
                    }
                    expected.extend_from_slice(&batch);
                    if (seed + step) % 3 != 0 {
                        file.sync_data().expect("sync");
                        synced = expected.len();
                    }
                }
                let live = sim.read_file(PATH).expect("file");
                assert_eq!(
                    live.get(..expected.len()),
                    Some(&expected[..]),
                    "seed {seed}"
                );
                sim.crash(CrashMode::Random);
                let after = sim.read_file(PATH).expect("file after the crash");
                assert_eq!(
                    after.get(..synced),
                    expected.get(..synced),
                    "block {block_bytes} seed {seed}: synced bytes damaged"
                );
            }
        }
    }

    /// The buffer grows to what the largest write needed, never past a chunk, and the
    /// next segment's tail writes through it without allocating it again.
    #[test]
    fn the_buffer_grows_to_the_largest_write_and_passes_on() {
        let (sim, file, mut tail, _) = setup(1, 4096);
        tail.write(&[1u8; 100], 100).expect("small write");
        let small_bytes = tail.buffer.capacity();
        assert!(small_bytes <= 4096 + DIRECT_ALIGN_BYTES, "{small_bytes}");
        tail.write(&vec![2u8; CHUNK_BYTES * 3], 200)
            .expect("large write");
        assert_eq!(tail.buffer.capacity(), CHUNK_BYTES + DIRECT_ALIGN_BYTES);
        let buffer = tail.into_buffer();
        let address = buffer.as_ptr();
        let mut next = DirectTail::open(&sim, Path::new(PATH), &*file, 0, buffer).expect("direct");
        next.write(&[3u8; 5000], 0)
            .expect("write through the passed buffer");
        assert_eq!(next.buffer.as_ptr(), address, "not allocated again");
        let live = sim.read_file(PATH).expect("file");
        assert_eq!(live.get(..5000), Some(&[3u8; 5000][..]));
    }

    /// A group larger than the buffer is written in chunks, each aligned, and the next
    /// append continues from the right head.
    #[test]
    fn a_large_group_is_written_in_chunks() {
        for block_bytes in [512, 4096] {
            let (sim, _file, mut tail, mut expected) = setup(1, block_bytes);
            let large: Vec<u8> = (0..CHUNK_BYTES * 2 + 12_345)
                .map(|i| (i % 251) as u8)
                .collect();
            let calls = sim.calls();
            tail.write(&large, 100).expect("large write");
            assert_eq!(sim.calls() - calls, 3, "three chunks");
            expected.extend_from_slice(&large);
            tail.write(b"after", expected.len() as u64)
                .expect("small write");
            expected.extend_from_slice(b"after");
            let live = sim.read_file(PATH).expect("file");
            assert_eq!(live.get(..expected.len()), Some(&expected[..]));
            assert!(
                live[expected.len()..].iter().all(|&b| b == 0),
                "zeros after"
            );
        }
    }
}
