//! A read-only view of a whole file: a memory map, or owned bytes (the simulated storage,
//! and empty files, which cannot be mapped).

use std::ops::Deref;
use std::sync::Arc;

/// The bytes of a file, mapped or owned.
#[derive(Debug, Clone)]
pub struct Mapped(Inner);

#[derive(Debug, Clone)]
enum Inner {
    Map(Arc<memmap2::Mmap>),
    Owned(Arc<[u8]>),
}

impl Mapped {
    /// A view over a memory map.
    pub(crate) fn from_mmap(map: memmap2::Mmap) -> Self {
        Mapped(Inner::Map(Arc::new(map)))
    }

    /// Hints that the whole view is about to be read in order (a full scan): read-ahead
    /// on. Lookups leave the default, random access (see `FsStorage`'s `map`).
    pub fn advise_sequential(&self) {
        if let Inner::Map(map) = &self.0 {
            let _ = map.advise(memmap2::Advice::Sequential);
        }
    }

    /// Hints that `len` bytes at `start` are about to be read: the kernel starts reading
    /// their pages now, together, so a cold range over several pages costs one wait
    /// instead of one page fault after another (`madvise(MADV_WILLNEED)`). Clamped to
    /// the view; nothing for owned bytes.
    pub fn will_need(&self, start: usize, len: usize) {
        if let Inner::Map(map) = &self.0 {
            let len = len.min(map.len().saturating_sub(start));
            if len > 0 {
                let _ = map.advise_range(memmap2::Advice::WillNeed, start, len);
            }
        }
    }

    /// A view over owned bytes.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        Mapped(Inner::Owned(bytes.into()))
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Inner::Map(map) => map,
            Inner::Owned(bytes) => bytes,
        }
    }
}
