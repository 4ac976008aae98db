//! Reading a segment and deciding, from its bytes alone, how it ends.
//!
//! Records are read in order from the header on. The first offset that does not hold
//! the next valid record (lsn = previous + 1) ends the valid prefix. What follows decides:
//!
//! | what follows the valid prefix | verdict |
//! |---|---|
//! | nothing, or only zero bytes | clean end |
//! | damage, and no later valid record | torn tail: never acknowledged |
//! | damage, then a valid record whose `durable_lsn` < the first missing lsn | torn tail: that record was written before the damaged one was durable (a group torn out of order) |
//! | damage, then a valid record whose `durable_lsn` >= the first missing lsn | corruption: the damaged record had been durable |
//! | a valid record with the wrong lsn right after the prefix | corruption |

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::record::{self, ALIGN_BYTES, Invalid};
use crate::error::{Error, Result};
use crate::header::{self, FileHeader, SEGMENT_MAGIC};

/// One valid record found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRecord {
    /// Offset of its header in the segment.
    pub offset: u64,
    /// Its lsn.
    pub lsn: u64,
    /// Its payload's byte range in the scanned bytes.
    pub payload: Range<usize>,
}

/// How a segment's valid prefix ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEnd {
    /// End of file, or only zeros (unused preallocated space).
    Clean,
    /// Damage at `offset` that only unacknowledged writes can explain.
    Torn {
        /// Where the valid prefix ends.
        offset: u64,
        /// What was found there.
        reason: String,
    },
    /// Damage at `offset` to something that was durable.
    Corrupt {
        /// Where the damage starts.
        offset: u64,
        /// What was expected and what was found.
        reason: String,
    },
}

/// The result of scanning one segment.
#[derive(Debug, Clone)]
pub struct SegmentScan {
    /// The segment's path.
    pub path: PathBuf,
    /// Its header.
    pub header: FileHeader,
    /// Its valid records, in order.
    pub records: Vec<ScannedRecord>,
    /// Offset just past the last valid record.
    pub valid_end: u64,
    /// How the valid prefix ends.
    pub end: SegmentEnd,
}

impl SegmentScan {
    /// The lsn of the last valid record, or `first_lsn - 1`.
    pub fn last_lsn(&self) -> u64 {
        self.records
            .last()
            .map_or(self.header.lsn.saturating_sub(1), |r| r.lsn)
    }
}

/// Scans a segment's bytes. Fails only if the header itself is unusable.
pub fn scan(bytes: &[u8], path: &Path) -> Result<SegmentScan> {
    let header = FileHeader::decode(bytes, SEGMENT_MAGIC, path)?;
    if header.lsn == 0 {
        return Err(Error::corrupt(
            path,
            32,
            "segment first lsn is 0; lsns start at 1",
        ));
    }
    let mut records = Vec::new();
    let mut pos = header::HEADER_BYTES;
    let mut expected_lsn = header.lsn;
    let end = loop {
        let Some(rest) = bytes.get(pos..).filter(|rest| !rest.is_empty()) else {
            break SegmentEnd::Clean;
        };
        match record::decode(rest) {
            Ok((found, payload)) if found.lsn == expected_lsn => {
                let start = pos + record::HEADER_BYTES;
                records.push(ScannedRecord {
                    offset: pos as u64,
                    lsn: found.lsn,
                    payload: start..start + payload.len(),
                });
                pos += record::framed_len(payload.len()) as usize;
                expected_lsn += 1;
            }
            Ok((found, _)) => {
                break SegmentEnd::Corrupt {
                    offset: pos as u64,
                    reason: format!(
                        "expected lsn {expected_lsn}, found a valid record with lsn {}",
                        found.lsn
                    ),
                };
            }
            Err(invalid) => break classify_damage(bytes, pos, expected_lsn, &invalid),
        }
    };
    Ok(SegmentScan {
        path: path.to_path_buf(),
        header,
        records,
        valid_end: pos as u64,
        end,
    })
}

/// Decides whether damage at `pos` is a torn tail or corruption (see the module table).
fn classify_damage(bytes: &[u8], pos: usize, missing_lsn: u64, invalid: &Invalid) -> SegmentEnd {
    let rest = bytes.get(pos..).unwrap_or_default();
    if rest.iter().all(|&b| b == 0) {
        return SegmentEnd::Clean;
    }
    let mut probe = pos + ALIGN_BYTES as usize;
    while let Some(candidate) = bytes
        .get(probe..)
        .filter(|c| c.len() >= record::HEADER_BYTES)
    {
        if let Ok((found, _)) = record::decode(candidate)
            && found.durable_lsn >= missing_lsn
        {
            return SegmentEnd::Corrupt {
                offset: pos as u64,
                reason: format!(
                    "{invalid} (expected lsn {missing_lsn}); a valid record at offset {probe} (lsn {}) was written after lsn {} was durable",
                    found.lsn, found.durable_lsn
                ),
            };
        }
        probe += ALIGN_BYTES as usize;
    }
    SegmentEnd::Torn {
        offset: pos as u64,
        reason: format!("{invalid} (expected lsn {missing_lsn})"),
    }
}
