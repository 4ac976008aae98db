//! Parity sidecars: `<lsn>.par` beside `<lsn>.snap`, so that a snapshot damaged after it
//! was written (a bit flip, a lost or misdirected 4 KiB write) can be rebuilt, at 6.3 %
//! of its size (up to 64 KiB below 1 MiB), instead of keeping a second copy of the data.
//!
//! The snapshot file is cut into 4 KiB pages (the last one padded with zeros). Every run
//! of 256 pages (a *stripe*, 1 MiB) has 16 *groups*: page `i` of the file belongs to group
//! `i % 16` of stripe `i / 256`, so neighbouring pages never share a group. Each group
//! has one parity page, the XOR of its pages; each page and each parity page has a
//! checksum in the sidecar. A damaged page is found by its checksum and rebuilt from its
//! group, so damage is repairable when no two damaged pages share a group: any run of up
//! to 16 consecutive damaged pages (64 KiB) per stripe, or scattered single pages.
//!
//! ```text
//! +------------------------+ 0
//! | header (64 bytes)      |  magic b"WALSTPAR", version, store id, lsn (header.rs)
//! +------------------------+ 64
//! | parity pages           |  stripe by stripe, group by group, 4096 bytes each
//! +------------------------+
//! | checksum table         |  u32 LE per snapshot page, then per parity page
//! +------------------------+ file_len - 40
//! | footer (40 bytes)      |  magic b"WALSTPFT", snapshot length, geometry,
//! |                        |  checksum(table), reserved, checksum(footer)
//! +------------------------+ file_len
//! ```
//!
//! The sidecar is optional: a snapshot without one is complete, and a damaged sidecar
//! only takes away the repair. Code that reads a snapshot never reads its sidecar.

use std::borrow::Cow;
use std::path::Path;

use crate::codec::{checksum, read_array, read_u32, read_u64};
use crate::error::{Error, Result};
use crate::header::{FileHeader, HEADER_BYTES, StoreId};

/// Suffix of a parity sidecar.
pub const SUFFIX: &str = ".par";
/// Suffix of a sidecar being written.
pub const TMP_SUFFIX: &str = ".par.tmp";
/// Magic of a sidecar's header.
pub const PARITY_MAGIC: [u8; 8] = *b"WALSTPAR";
/// Magic at the start of a sidecar's footer.
pub const PARITY_FOOTER_MAGIC: [u8; 8] = *b"WALSTPFT";
/// Footer size in bytes.
pub const PARITY_FOOTER_BYTES: usize = 40;
/// Bytes per page, of the snapshot and of a parity page.
pub const PAGE_BYTES: usize = 4096;
/// Snapshot pages per stripe.
pub const STRIPE_PAGES: u64 = 256;
/// Groups (and so parity pages) per full stripe.
pub const GROUPS: u64 = 16;

const _: () = assert!(
    STRIPE_PAGES.is_multiple_of(GROUPS),
    "a group's pages are GROUPS apart"
);
const _: () = assert!(PARITY_FOOTER_BYTES == 8 + 8 + 4 + 4 + 4 + 4 + 4 + 4);
const _: () = assert!(PAGE_BYTES.is_multiple_of(8));

/// `<lsn, 20 digits>.par`.
pub fn file_name(lsn: u64) -> String {
    crate::wal::segment::numbered_name(lsn, SUFFIX)
}

/// `<lsn, 20 digits>.par.tmp`.
pub fn tmp_name(lsn: u64) -> String {
    crate::wal::segment::numbered_name(lsn, TMP_SUFFIX)
}

/// Pages of a snapshot of `snapshot_bytes` bytes.
pub fn data_pages(snapshot_bytes: u64) -> u64 {
    snapshot_bytes.div_ceil(PAGE_BYTES as u64)
}

/// Parity pages for `data_pages` snapshot pages: one per group that has a page.
pub fn parity_pages(data_pages: u64) -> u64 {
    let full = data_pages / STRIPE_PAGES;
    full * GROUPS + (data_pages % STRIPE_PAGES).min(GROUPS)
}

/// The parity page of snapshot page `page`.
fn parity_index(page: u64) -> u64 {
    page / STRIPE_PAGES * GROUPS + page % GROUPS
}

/// The snapshot pages of parity page `parity` (of a snapshot with `data_pages` pages).
fn group_members(parity: u64, data_pages: u64) -> impl Iterator<Item = u64> {
    let stripe_start = parity / GROUPS * STRIPE_PAGES;
    let stripe_end = (stripe_start + STRIPE_PAGES).min(data_pages);
    (stripe_start + parity % GROUPS..stripe_end).step_by(GROUPS as usize)
}

fn xor_into(acc: &mut [u8], page: &[u8]) {
    debug_assert_eq!(acc.len(), page.len());
    for (a, b) in acc.iter_mut().zip(page) {
        *a ^= b;
    }
}

/// Computes a sidecar from a snapshot's bytes as they are written, in order.
///
/// Memory: the current stripe's 16 parity pages (64 KiB) and 4 bytes per page.
#[derive(Debug)]
pub struct ParityBuilder {
    /// The current page, while it is incomplete.
    page: Vec<u8>,
    /// Index of the next complete page.
    page_index: u64,
    /// The current stripe's parity pages.
    stripe: Vec<u8>,
    page_crcs: Vec<u32>,
    parity_crcs: Vec<u32>,
    snapshot_bytes: u64,
    /// Parity pages completed and not yet taken by [`ParityBuilder::take_ready`].
    ready: Vec<u8>,
}

impl Default for ParityBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ParityBuilder {
    /// A builder that has seen no byte yet.
    pub fn new() -> Self {
        ParityBuilder {
            page: Vec::with_capacity(PAGE_BYTES),
            page_index: 0,
            stripe: vec![0; GROUPS as usize * PAGE_BYTES],
            page_crcs: Vec::new(),
            parity_crcs: Vec::new(),
            snapshot_bytes: 0,
            ready: Vec::new(),
        }
    }

    /// Takes in the next bytes of the snapshot.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.snapshot_bytes += bytes.len() as u64;
        if !self.page.is_empty() {
            let take = (PAGE_BYTES - self.page.len()).min(bytes.len());
            let (head, rest) = bytes.split_at(take);
            self.page.extend_from_slice(head);
            bytes = rest;
            if self.page.len() < PAGE_BYTES {
                return;
            }
            let page = std::mem::take(&mut self.page);
            self.add_page(&page);
            self.page = page;
            self.page.clear();
        }
        let mut pages = bytes.chunks_exact(PAGE_BYTES);
        for page in pages.by_ref() {
            self.add_page(page);
        }
        self.page.extend_from_slice(pages.remainder());
    }

    fn add_page(&mut self, page: &[u8]) {
        assert_eq!(page.len(), PAGE_BYTES);
        self.page_crcs.push(checksum(&[page]));
        let group = (self.page_index % GROUPS) as usize;
        if let Some(acc) = self
            .stripe
            .get_mut(group * PAGE_BYTES..(group + 1) * PAGE_BYTES)
        {
            xor_into(acc, page);
        }
        self.page_index += 1;
        if self.page_index.is_multiple_of(STRIPE_PAGES) {
            self.close_stripe(GROUPS);
        }
    }

    /// Moves the first `groups` parity pages of the stripe to `ready`.
    fn close_stripe(&mut self, groups: u64) {
        let used = groups as usize * PAGE_BYTES;
        for parity in self
            .stripe
            .get(..used)
            .unwrap_or_default()
            .chunks(PAGE_BYTES)
        {
            self.parity_crcs.push(checksum(&[parity]));
        }
        self.ready
            .extend_from_slice(self.stripe.get(..used).unwrap_or_default());
        self.stripe.fill(0);
    }

    /// Completed parity pages not taken yet, in file order after the header.
    pub fn take_ready(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.ready)
    }

    /// Ends the snapshot: pads its last page, closes the last stripe and returns the
    /// remaining parity pages, then the checksum table and the footer.
    pub fn finish(mut self) -> Vec<u8> {
        let snapshot_bytes = self.snapshot_bytes;
        if !self.page.is_empty() {
            let mut page = std::mem::take(&mut self.page);
            page.resize(PAGE_BYTES, 0);
            self.add_page(&page);
        }
        let in_last_stripe = self.page_index % STRIPE_PAGES;
        if in_last_stripe > 0 {
            self.close_stripe(in_last_stripe.min(GROUPS));
        }
        let pages = data_pages(snapshot_bytes);
        assert_eq!(self.page_crcs.len() as u64, pages);
        assert_eq!(self.parity_crcs.len() as u64, parity_pages(pages));
        let mut out = std::mem::take(&mut self.ready);
        let table_start = out.len();
        for crc in self.page_crcs.iter().chain(&self.parity_crcs) {
            out.extend_from_slice(&crc.to_le_bytes());
        }
        let table_crc = checksum(&[out.get(table_start..).unwrap_or_default()]);
        out.extend_from_slice(&encode_footer(snapshot_bytes, table_crc));
        out
    }
}

fn encode_footer(snapshot_bytes: u64, table_crc: u32) -> [u8; PARITY_FOOTER_BYTES] {
    let mut footer = [0u8; PARITY_FOOTER_BYTES];
    let mut fields = Vec::with_capacity(PARITY_FOOTER_BYTES);
    fields.extend_from_slice(&PARITY_FOOTER_MAGIC);
    fields.extend_from_slice(&snapshot_bytes.to_le_bytes());
    fields.extend_from_slice(&(PAGE_BYTES as u32).to_le_bytes());
    fields.extend_from_slice(&(STRIPE_PAGES as u32).to_le_bytes());
    fields.extend_from_slice(&(GROUPS as u32).to_le_bytes());
    fields.extend_from_slice(&table_crc.to_le_bytes());
    fields.extend_from_slice(&0u32.to_le_bytes());
    fields.extend_from_slice(&checksum(&[&fields]).to_le_bytes());
    footer.copy_from_slice(&fields);
    footer
}

/// A checked sidecar.
#[derive(Debug)]
pub struct Parity<'a> {
    snapshot_bytes: u64,
    data_pages: u64,
    parity: &'a [u8],
    table: &'a [u8],
}

/// What [`Parity::repair`] did.
#[derive(Debug)]
pub struct Repaired {
    /// The snapshot's bytes, every page matching its checksum.
    pub bytes: Vec<u8>,
    /// The pages rebuilt (page `i` is bytes `4096 i ..`).
    pub pages: Vec<u64>,
}

impl<'a> Parity<'a> {
    /// Checks the sidecar `bytes` of the snapshot of `lsn` in store `store_id`: header,
    /// footer, geometry, length and table checksum. It does not read the parity pages.
    pub fn parse(bytes: &'a [u8], path: &Path, store_id: StoreId, lsn: u64) -> Result<Self> {
        let header = FileHeader::decode(bytes, PARITY_MAGIC, path)?;
        if header.store_id != store_id {
            return Err(Error::corrupt(path, 16, "sidecar of another store"));
        }
        if header.lsn != lsn {
            return Err(Error::corrupt(
                path,
                32,
                format!("sidecar of lsn {}, the snapshot's is {lsn}", header.lsn),
            ));
        }
        let footer_at = bytes
            .len()
            .checked_sub(PARITY_FOOTER_BYTES)
            .filter(|&at| at >= HEADER_BYTES)
            .ok_or_else(|| Error::corrupt(path, 0, "sidecar shorter than header and footer"))?;
        let footer = bytes.get(footer_at..).unwrap_or_default();
        let corrupt =
            |at: usize, reason: String| Error::corrupt(path, (footer_at + at) as u64, reason);
        let stored = read_u32(footer, PARITY_FOOTER_BYTES - 4).unwrap_or(0);
        let computed = checksum(&[footer.get(..PARITY_FOOTER_BYTES - 4).unwrap_or_default()]);
        if stored != computed {
            return Err(corrupt(
                PARITY_FOOTER_BYTES - 4,
                format!(
                    "footer checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                ),
            ));
        }
        if read_array::<8>(footer, 0) != Some(PARITY_FOOTER_MAGIC) {
            return Err(corrupt(0, "footer magic is not WALSTPFT".into()));
        }
        let snapshot_bytes = read_u64(footer, 8).unwrap_or(0);
        let geometry = (
            read_u32(footer, 16).unwrap_or(0),
            read_u32(footer, 20).unwrap_or(0),
            read_u32(footer, 24).unwrap_or(0),
        );
        if geometry != (PAGE_BYTES as u32, STRIPE_PAGES as u32, GROUPS as u32) {
            return Err(corrupt(
                16,
                format!("geometry {geometry:?}; this build reads (4096, 256, 16)"),
            ));
        }
        if read_u32(footer, 32) != Some(0) {
            return Err(corrupt(32, "reserved bytes are not zero".into()));
        }
        let data = data_pages(snapshot_bytes);
        let parity = parity_pages(data);
        let expected = (HEADER_BYTES as u64)
            .checked_add(parity.saturating_mul(PAGE_BYTES as u64))
            .and_then(|n| n.checked_add((data + parity).saturating_mul(4)))
            .and_then(|n| n.checked_add(PARITY_FOOTER_BYTES as u64));
        if expected != Some(bytes.len() as u64) {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "sidecar is {} bytes; a snapshot of {snapshot_bytes} bytes needs {expected:?}",
                    bytes.len()
                ),
            ));
        }
        let parity_end = HEADER_BYTES + parity as usize * PAGE_BYTES;
        let table = bytes.get(parity_end..footer_at).unwrap_or_default();
        let table_crc = read_u32(footer, 28).unwrap_or(0);
        if checksum(&[table]) != table_crc {
            return Err(Error::corrupt(
                path,
                parity_end as u64,
                "checksum table does not match its checksum",
            ));
        }
        Ok(Parity {
            snapshot_bytes,
            data_pages: data,
            parity: bytes.get(HEADER_BYTES..parity_end).unwrap_or_default(),
            table,
        })
    }

    /// The length of the snapshot the sidecar was computed from.
    pub fn snapshot_bytes(&self) -> u64 {
        self.snapshot_bytes
    }

    fn page_crc(&self, page: u64) -> Option<u32> {
        read_u32(self.table, usize::try_from(page).ok()?.checked_mul(4)?)
    }

    fn parity_crc(&self, parity: u64) -> Option<u32> {
        self.page_crc(self.data_pages + parity)
    }

    fn parity_page(&self, parity: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(parity).ok()?.checked_mul(PAGE_BYTES)?;
        self.parity.get(start..start.checked_add(PAGE_BYTES)?)
    }

    /// Page `page` of `snapshot`, padded with zeros (beyond the end of a short file too).
    fn page_of(snapshot: &[u8], page: u64) -> Cow<'_, [u8]> {
        let start = usize::try_from(page)
            .unwrap_or(usize::MAX)
            .saturating_mul(PAGE_BYTES);
        let end = start.saturating_add(PAGE_BYTES);
        match snapshot.get(start..end) {
            // A whole page: no copy (every page but a file's last).
            Some(whole) => Cow::Borrowed(whole),
            None => {
                let mut padded = snapshot
                    .get(start.min(snapshot.len())..)
                    .unwrap_or_default()
                    .to_vec();
                padded.resize(PAGE_BYTES, 0);
                Cow::Owned(padded)
            }
        }
    }

    /// Pages of `snapshot` (cut or padded to the recorded length) whose checksum differs.
    pub fn damaged_pages(&self, snapshot: &[u8]) -> Vec<u64> {
        let len = usize::try_from(self.snapshot_bytes).unwrap_or(usize::MAX);
        let snapshot = snapshot.get(..len).unwrap_or(snapshot);
        (0..self.data_pages)
            .filter(|&page| {
                Some(checksum(&[&Self::page_of(snapshot, page)])) != self.page_crc(page)
            })
            .collect()
    }

    /// Parity pages that are not the XOR of their group, or do not match their checksum,
    /// given a `snapshot` with no damaged page (`verify`).
    pub fn stale_parity_pages(&self, snapshot: &[u8]) -> Vec<u64> {
        (0..parity_pages(self.data_pages))
            .filter(|&parity| {
                let Some(stored) = self.parity_page(parity) else {
                    return true;
                };
                let mut acc = vec![0u8; PAGE_BYTES];
                for member in group_members(parity, self.data_pages) {
                    xor_into(&mut acc, &Self::page_of(snapshot, member));
                }
                acc != stored || Some(checksum(&[stored])) != self.parity_crc(parity)
            })
            .collect()
    }

    /// Rebuilds the damaged pages of `snapshot` (whose length may be wrong: a cut file is
    /// extended, a longer one cut). Fails, saying why, when two damaged pages share a
    /// group, a needed parity page is damaged, or a rebuilt page does not match its
    /// checksum.
    pub fn repair(&self, snapshot: &[u8]) -> std::result::Result<Repaired, String> {
        let len = usize::try_from(self.snapshot_bytes).map_err(|e| e.to_string())?;
        let damaged = self.damaged_pages(snapshot);
        let mut bytes = snapshot.get(..len).unwrap_or(snapshot).to_vec();
        bytes.resize(len, 0);
        for &page in &damaged {
            let parity = parity_index(page);
            if let Some(&other) = damaged
                .iter()
                .find(|&&other| other != page && parity_index(other) == parity)
            {
                return Err(format!(
                    "pages {page} and {other} (bytes {} and {}) are both damaged and share parity page {parity}",
                    page * PAGE_BYTES as u64,
                    other * PAGE_BYTES as u64
                ));
            }
            let stored = self
                .parity_page(parity)
                .filter(|stored| Some(checksum(&[stored])) == self.parity_crc(parity))
                .ok_or_else(|| {
                    format!("parity page {parity}, needed for page {page}, is damaged")
                })?;
            let mut rebuilt = stored.to_vec();
            for member in group_members(parity, self.data_pages).filter(|&m| m != page) {
                xor_into(&mut rebuilt, &Self::page_of(&bytes, member));
            }
            if Some(checksum(&[&rebuilt])) != self.page_crc(page) {
                return Err(format!(
                    "page {page} rebuilt from parity does not match its checksum"
                ));
            }
            let start = page as usize * PAGE_BYTES;
            let end = len.min(start + PAGE_BYTES);
            if let (Some(target), Some(source)) =
                (bytes.get_mut(start..end), rebuilt.get(..end - start))
            {
                target.copy_from_slice(source);
            }
        }
        Ok(Repaired {
            bytes,
            pages: damaged,
        })
    }
}

#[cfg(test)]
#[expect(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn sidecar(snapshot: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut builder = ParityBuilder::new();
        let mut out = FileHeader {
            magic: PARITY_MAGIC,
            store_id: [7; 16],
            lsn: 9,
        }
        .encode()
        .to_vec();
        let mut at = 0;
        for &cut in cuts.iter().chain([snapshot.len()].iter()) {
            builder.update(&snapshot[at..cut.max(at)]);
            at = cut.max(at);
            out.extend(builder.take_ready());
        }
        out.extend(builder.finish());
        out
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn geometry() {
        assert_eq!(parity_pages(0), 0);
        assert_eq!(parity_pages(1), 1);
        assert_eq!(parity_pages(16), 16);
        assert_eq!(parity_pages(256), 16);
        assert_eq!(parity_pages(257), 17);
        assert_eq!(parity_index(255), 15);
        assert_eq!(parity_index(256), 16);
        assert_eq!(group_members(1, 40).collect::<Vec<_>>(), vec![1, 17, 33]);
        assert_eq!(
            group_members(16, 300).collect::<Vec<_>>(),
            vec![256, 272, 288]
        );
    }

    #[test]
    fn the_sidecar_does_not_depend_on_how_the_bytes_were_cut() {
        let snapshot = sample(300 * PAGE_BYTES + 123);
        let whole = sidecar(&snapshot, &[]);
        assert_eq!(
            sidecar(&snapshot, &[1, 4095, 4097, 70_000, 1_048_576]),
            whole
        );
        let parsed = Parity::parse(&whole, Path::new("x.par"), [7; 16], 9).unwrap();
        assert_eq!(parsed.snapshot_bytes(), snapshot.len() as u64);
        assert!(parsed.damaged_pages(&snapshot).is_empty());
        assert!(parsed.stale_parity_pages(&snapshot).is_empty());
    }

    #[test]
    fn a_run_of_sixteen_damaged_pages_is_rebuilt_and_seventeen_is_not() {
        let snapshot = sample(600 * PAGE_BYTES + 77);
        let par = sidecar(&snapshot, &[]);
        let parity = Parity::parse(&par, Path::new("x.par"), [7; 16], 9).unwrap();
        let mut damaged = snapshot.clone();
        for byte in &mut damaged[260 * PAGE_BYTES + 5..276 * PAGE_BYTES - 5] {
            *byte ^= 0x5a;
        }
        let repaired = parity.repair(&damaged).unwrap();
        assert_eq!(repaired.pages, (260..276).collect::<Vec<_>>());
        assert_eq!(repaired.bytes, snapshot);
        damaged[276 * PAGE_BYTES] ^= 1;
        let error = parity.repair(&damaged).unwrap_err();
        assert!(error.contains("share parity page"), "{error}");
    }

    #[test]
    fn a_cut_snapshot_is_extended_and_the_last_partial_page_rebuilt() {
        let snapshot = sample(40 * PAGE_BYTES + 1000);
        let par = sidecar(&snapshot, &[]);
        let parity = Parity::parse(&par, Path::new("x.par"), [7; 16], 9).unwrap();
        let cut = &snapshot[..40 * PAGE_BYTES - 300];
        let repaired = parity.repair(cut).unwrap();
        assert_eq!(repaired.pages, vec![39, 40]);
        assert_eq!(repaired.bytes, snapshot);
        let mut longer = snapshot.clone();
        longer.extend_from_slice(b"garbage");
        assert_eq!(parity.repair(&longer).unwrap().bytes, snapshot);
    }

    #[test]
    fn a_damaged_parity_page_is_found_and_not_used() {
        let snapshot = sample(20 * PAGE_BYTES);
        let mut par = sidecar(&snapshot, &[]);
        par[HEADER_BYTES + 3 * PAGE_BYTES + 9] ^= 1;
        let parity = Parity::parse(&par, Path::new("x.par"), [7; 16], 9).unwrap();
        assert_eq!(parity.stale_parity_pages(&snapshot), vec![3]);
        let mut damaged = snapshot.clone();
        damaged[3 * PAGE_BYTES] ^= 1;
        assert!(
            parity
                .repair(&damaged)
                .unwrap_err()
                .contains("parity page 3")
        );
        damaged[3 * PAGE_BYTES] ^= 1;
        damaged[4 * PAGE_BYTES] ^= 1;
        assert_eq!(parity.repair(&damaged).unwrap().bytes, snapshot);
    }

    #[test]
    fn a_damaged_sidecar_is_reported_with_its_offset() {
        let snapshot = sample(3 * PAGE_BYTES);
        let par = sidecar(&snapshot, &[]);
        let path = Path::new("x.par");
        for (at, what) in [
            (0, "checksum"),
            (par.len() - 20, "checksum"),
            (par.len() - 50, "checksum table"),
        ] {
            let mut bad = par.clone();
            bad[at] ^= 1;
            let error = Parity::parse(&bad, path, [7; 16], 9)
                .unwrap_err()
                .to_string();
            assert!(error.contains(what), "{at}: {error}");
        }
        assert!(Parity::parse(&par, path, [8; 16], 9).is_err());
        assert!(Parity::parse(&par, path, [7; 16], 10).is_err());
        assert!(Parity::parse(&par[..par.len() - 1], path, [7; 16], 9).is_err());
    }

    #[test]
    fn golden_sidecar_of_a_one_page_snapshot() {
        // Computed independently in format-spec/snapshot.md ("Parity sidecars").
        let snapshot: Vec<u8> = (0..100u8).collect();
        let par = sidecar(&snapshot, &[]);
        assert_eq!(par.len(), 64 + 4096 + 8 + 40);
        assert_eq!(&par[64..164], snapshot.as_slice());
        assert!(par[164..64 + 4096].iter().all(|&b| b == 0));
        let tail = &par[64 + 4096..];
        let hex: String = tail.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_TAIL_HEX);
    }

    /// The checksum table and footer of the golden sidecar (format-spec/snapshot.md).
    const GOLDEN_TAIL_HEX: &str = "bdf69cf0bdf69cf057414c535450465464000000000000000010000000010000100000008a61349600000000ce72a0d9";
}
