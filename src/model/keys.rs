//! The ordered key space. Every collection lives in one sorted byte-keyed map, and the
//! first key byte names the collection, so each collection is one contiguous, sorted
//! section of a snapshot and one range of the in-memory overlay.
//!
//! ```text
//! metadata     0x01 key
//! config       0x02 key
//! fingerprint  0x03 esc(namespace) 0x00 0x01 path
//! fts doc      0x04 doc name                        -> varint doc id, varint length
//! fts posting  0x05 term                            -> posting list (snapshots only)
//! fts stats    0x06                                  -> postcard(FtsTotals)
//! fts doc name 0x07 doc id (u64 big-endian)          -> doc name
//! ```
//! Posting lists live in snapshots; between checkpoints the postings of new documents
//! are held in in-memory segments (`fts::overlay`), never as per-posting keys.
//! `esc` doubles every 0x00 byte as 0x00 0xFF, so the terminator 0x00 0x01 sorts below
//! any continuation and `(namespace, path)` pairs sort as tuples.

use crate::error::{Error, Result};

/// Longest encoded key, in bytes.
pub const KEY_BYTES_MAX: usize = 16 * 1024;

/// The collections, by their key tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Tag {
    /// Metadata values.
    Metadata = 1,
    /// Config values.
    Config = 2,
    /// Fingerprints by namespace and path.
    Fingerprint = 3,
    /// FTS documents: name to doc id and length.
    FtsDoc = 4,
    /// FTS postings: term to its posting list.
    FtsPosting = 5,
    /// FTS totals (document count, token count, next doc id).
    FtsStats = 6,
    /// FTS document names by doc id.
    FtsDocName = 7,
}

impl Tag {
    /// Every tag, in key order.
    pub const ALL: [Tag; 7] = [
        Tag::Metadata,
        Tag::Config,
        Tag::Fingerprint,
        Tag::FtsDoc,
        Tag::FtsPosting,
        Tag::FtsStats,
        Tag::FtsDocName,
    ];

    /// The tag of an encoded key.
    pub fn of(key: &[u8]) -> Option<Tag> {
        Tag::ALL
            .into_iter()
            .find(|tag| key.first() == Some(&(*tag as u8)))
    }

    /// A human name for the collection.
    pub fn name(self) -> &'static str {
        match self {
            Tag::Metadata => "metadata",
            Tag::Config => "config",
            Tag::Fingerprint => "fingerprints",
            Tag::FtsDoc => "fts_docs",
            Tag::FtsPosting => "fts_postings",
            Tag::FtsStats => "fts_stats",
            Tag::FtsDocName => "fts_doc_names",
        }
    }
}

/// `tag || name`.
pub fn simple(tag: Tag, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(tag as u8);
    key.extend_from_slice(name.as_bytes());
    key
}

/// `0x07 || id` (big-endian, so names sort by id).
pub fn doc_name(id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(Tag::FtsDocName as u8);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// `tag || esc(first) || 0x00 0x01 || second`.
pub fn pair(tag: Tag, first: &str, second: &str) -> Vec<u8> {
    let mut key = pair_prefix(tag, first);
    key.extend_from_slice(second.as_bytes());
    key
}

/// The length of `pair(_, first, second)`, computed without building it.
pub fn pair_len(first: &str, second: &str) -> usize {
    let zeros = first.bytes().filter(|&b| b == 0).count();
    3 + first.len() + zeros + second.len()
}

/// The prefix shared by every [`pair`] key with this `first`.
pub fn pair_prefix(tag: Tag, first: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(3 + first.len() + PAIR_SECOND_BYTES_HINT);
    put_pair_prefix(&mut key, tag, first.as_bytes());
    key
}

/// Appends [`pair_prefix`] to `out` (a key written in place).
pub fn put_pair_prefix(out: &mut Vec<u8>, tag: Tag, first: &[u8]) {
    out.push(tag as u8);
    for &byte in first {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Capacity reserved for the second string of a pair key (a typical path).
const PAIR_SECOND_BYTES_HINT: usize = 48;

/// Splits a [`pair`] key (without checking its tag) into its two strings.
pub fn split_pair(key: &[u8]) -> Option<(String, String)> {
    let body = key.get(1..)?;
    let mut first = Vec::new();
    let mut pos = 0;
    loop {
        let byte = *body.get(pos)?;
        if byte != 0 {
            first.push(byte);
            pos += 1;
            continue;
        }
        match body.get(pos + 1)? {
            0xFF => first.push(0),
            0x01 => break,
            _ => return None,
        }
        pos += 2;
    }
    let second = body.get(pos + 2..)?;
    Some((
        String::from_utf8(first).ok()?,
        String::from_utf8(second.to_vec()).ok()?,
    ))
}

/// The string after the tag of a [`simple`] key.
pub fn split_simple(key: &[u8]) -> Option<String> {
    String::from_utf8(key.get(1..)?.to_vec()).ok()
}

/// Fails if `key` is longer than [`KEY_BYTES_MAX`].
pub fn check_len(key: &[u8]) -> Result<()> {
    if key.len() > KEY_BYTES_MAX {
        return Err(Error::InvalidArgument(format!(
            "encoded key is {} bytes, at most {KEY_BYTES_MAX} allowed",
            key.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_len_is_the_length_of_the_pair() {
        for (first, second) in [("", ""), ("code", "src/a.rs"), ("a\0\0b", "\0x")] {
            assert_eq!(
                pair_len(first, second),
                pair(Tag::Fingerprint, first, second).len()
            );
        }
    }

    #[test]
    fn pairs_sort_as_tuples_and_round_trip() {
        let pairs = [
            ("a", "z"),
            ("a\0", "a"),
            ("ab", ""),
            ("b", "a\0b"),
            ("", "x"),
        ];
        let mut encoded: Vec<_> = pairs
            .iter()
            .map(|(a, b)| pair(Tag::Fingerprint, a, b))
            .collect();
        encoded.sort();
        let mut expected: Vec<_> = pairs.to_vec();
        expected.sort();
        let decoded: Vec<_> = encoded.iter().filter_map(|k| split_pair(k)).collect();
        let expected: Vec<_> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(decoded, expected);
    }
}
