//! Counting a document's tokens: the terms of [`super::DocTerms::from_text`].
//!
//! Each token is hashed once and looked up in an open-addressing table of small slots
//! that hold its first bytes and its count, so that most lookups read one slot and no
//! `memcmp` runs; the bytes of distinct tokens go into one arena, and only the distinct
//! terms become `String`s, at the end, sorted by their first 8 bytes, then the rest.

use std::hash::BuildHasher;

use super::tokenizer::for_each_token;

/// The distinct tokens of `text` with their counts (saturating), sorted by bytes: the
/// terms of `DocTerms::from_text`.
///
/// Each token is hashed once and looked up in an open-addressing table of small slots
/// that hold its first bytes and its count, so that most lookups read one slot; the bytes
/// of distinct tokens go into one arena, and only the distinct terms become `String`s, at
/// the end.
pub(crate) fn counted_terms(text: &str) -> Vec<(String, u32)> {
    let mut table = TermTable::for_text(text.len());
    for_each_token(text, |token| table.count(token));
    table.into_sorted_terms()
}

/// A distinct token's first bytes and count, or an empty slot (`term == 0`).
#[derive(Clone, Copy, Default)]
struct Slot {
    /// `head(token)`: the whole token when it is shorter than 8 bytes.
    head: u64,
    /// `1 +` the index of the token in `TermTable::terms`.
    term: usize,
    count: u32,
}

/// A distinct token: `arena[start..start + len]`.
struct Term {
    /// To place the token again when the table grows.
    hash: u64,
    /// `head(token)`, the first key of the final sort.
    head: u64,
    start: usize,
    len: usize,
}

struct TermTable {
    /// Random per table, so that no text makes many tokens collide.
    seeds: [u64; 2],
    /// For tokens longer than 16 bytes.
    hasher: foldhash::fast::RandomState,
    /// A power of two long, and at least twice `terms.len()`, so that every probe ends at
    /// an empty slot.
    slots: Vec<Slot>,
    /// In order of first occurrence.
    terms: Vec<Term>,
    arena: String,
}

impl TermTable {
    fn for_text(text_bytes: usize) -> TermTable {
        // About one distinct term per 32 bytes of source text; the table grows if needed.
        let terms = (text_bytes / 32).max(8);
        let hasher = foldhash::fast::RandomState::default();
        TermTable {
            seeds: [hasher.hash_one(0u8), hasher.hash_one(1u8)],
            hasher,
            slots: vec![Slot::default(); (2 * terms).next_power_of_two()],
            terms: Vec::with_capacity(terms),
            arena: String::with_capacity(terms * 8),
        }
    }

    fn count(&mut self, token: &str) {
        let bytes = token.as_bytes();
        let head = head(bytes);
        let hash = self.hash(bytes, head);
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        while let Some(slot) = self.slots.get_mut(at) {
            if slot.term == 0 {
                *slot = Slot {
                    head,
                    term: self.terms.len() + 1,
                    count: 1,
                };
                self.terms.push(Term {
                    hash,
                    head,
                    start: self.arena.len(),
                    len: bytes.len(),
                });
                self.arena.push_str(token);
                if 2 * self.terms.len() > self.slots.len() {
                    self.grow();
                }
                return;
            }
            // Equal heads mean equal tokens below 8 bytes (no token has a 0 byte).
            if slot.head == head
                && (bytes.len() < 8
                    || self.terms.get(slot.term - 1).is_some_and(|term| {
                        term.len == bytes.len()
                            && tail(&self.arena, term) == bytes.get(8..).unwrap_or_default()
                    }))
            {
                slot.count = slot.count.saturating_add(1);
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// A hash of `bytes`, whose first 8 bytes are `head`: one folded multiply of all the
    /// bytes of a token of at most 16 bytes (most tokens), else foldhash.
    fn hash(&self, bytes: &[u8], head: u64) -> u64 {
        let [seed, length_seed] = self.seeds;
        let rest = match bytes.len() {
            0..=8 => bytes.len() as u64 ^ length_seed,
            9..=16 => tail_word(bytes) ^ length_seed,
            _ => return self.hasher.hash_one(bytes),
        };
        let product = u128::from(head ^ seed) * u128::from(rest);
        (product as u64) ^ ((product >> 64) as u64)
    }

    fn grow(&mut self) {
        let mut slots = vec![Slot::default(); 2 * self.slots.len()];
        let mask = slots.len() - 1;
        for slot in self.slots.iter().filter(|slot| slot.term != 0) {
            let hash = self.terms.get(slot.term - 1).map_or(0, |term| term.hash);
            let mut at = hash as usize & mask;
            while let Some(free) = slots.get_mut(at) {
                if free.term == 0 {
                    *free = *slot;
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        self.slots = slots;
    }

    fn into_sorted_terms(self) -> Vec<(String, u32)> {
        let mut counts = vec![0; self.terms.len()];
        for slot in self.slots.iter().filter(|slot| slot.term != 0) {
            if let Some(count) = counts.get_mut(slot.term - 1) {
                *count = slot.count;
            }
        }
        let mut terms: Vec<(&Term, u32)> = self.terms.iter().zip(counts).collect();
        terms.sort_unstable_by(|(a, _), (b, _)| {
            (a.head.cmp(&b.head)).then_with(|| tail(&self.arena, a).cmp(tail(&self.arena, b)))
        });
        terms
            .into_iter()
            .map(|(term, count)| {
                let token = self.arena.get(term.start..term.start + term.len);
                (token.unwrap_or_default().to_owned(), count)
            })
            .collect()
    }
}

/// The first 8 bytes of `bytes`, big-endian, zero-padded. Built from (overlapping)
/// loads of the slice, not through a buffer in memory, whose byte-wise writes would stall
/// the 8-byte read that follows them.
fn head(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    if let Some(first) = bytes.first_chunk::<8>() {
        return u64::from_be_bytes(*first);
    }
    // The byte at index i goes to bits 56 - 8 i; an overlap ORs a byte with itself.
    if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        let first = u64::from(u32::from_be_bytes(*first)) << 32;
        return first | u64::from(u32::from_be_bytes(*last)) << (8 * (8 - len));
    }
    match (bytes.first(), bytes.get(len / 2), bytes.last()) {
        (Some(&first), Some(&middle), Some(&last)) => {
            u64::from(first) << 56
                | u64::from(middle) << (56 - 8 * (len / 2))
                | u64::from(last) << (56 - 8 * (len - 1))
        }
        _ => 0,
    }
}

/// The last 8 bytes of `bytes` (at least 8 long).
fn tail_word(bytes: &[u8]) -> u64 {
    bytes
        .last_chunk::<8>()
        .map_or(0, |last| u64::from_le_bytes(*last))
}

/// The bytes of the term after the first 8.
fn tail<'a>(arena: &'a str, term: &Term) -> &'a [u8] {
    let end = term.start + term.len;
    arena
        .as_bytes()
        .get(term.start + 8..end)
        .unwrap_or_default()
}
