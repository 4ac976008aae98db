//! A merged, ordered scan over a version's layers.
//!
//! Nothing is allocated per entry: overlay keys and values are borrowed from the layers,
//! base keys from the snapshot cursor (which rebuilds each prefix-compressed key in one
//! buffer) and base values from the mapped file. [`Scan::next_entry`] lends the key until
//! the next call; the [`Iterator`] impl copies it for callers that keep keys.

use std::ops::{Bound, Deref};
use std::sync::Arc;

use super::version::{Layer, Version};
use crate::error::Result;
use crate::snapshot::reader::Cursor;

/// A value read from a version: borrowed from the snapshot map, or shared from an overlay.
#[derive(Debug, Clone)]
pub enum ValueRef<'a> {
    /// Bytes inside the mapped snapshot (or inside an overlay the reader borrows).
    Borrowed(&'a [u8]),
    /// Bytes of an overlay entry.
    Shared(Arc<[u8]>),
}

impl Deref for ValueRef<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ValueRef::Borrowed(bytes) => bytes,
            ValueRef::Shared(bytes) => bytes,
        }
    }
}

/// An overlay entry: key, and value (`None`: a deletion hiding older layers).
pub(crate) type OverlayEntry<'a> = (&'a [u8], Option<&'a [u8]>);
pub(crate) type LayerIter<'a> = Box<dyn Iterator<Item = OverlayEntry<'a>> + 'a>;

/// The entries of `layer` from `start` on.
pub(crate) fn layer_from<'a>(layer: &'a Layer, start: &[u8]) -> LayerIter<'a> {
    Box::new(
        layer
            .range::<_, [u8]>((Bound::Included(start), Bound::Unbounded))
            .map(|(key, value)| (&**key, value.as_deref())),
    )
}

/// A version's overlays merged in key order, newest layer winning, deletions included.
pub(crate) struct Overlays<'a> {
    /// Sources, newest first, each with its next entry.
    sources: Vec<(LayerIter<'a>, Option<OverlayEntry<'a>>)>,
    head: Option<OverlayEntry<'a>>,
}

impl<'a> Overlays<'a> {
    /// Every overlay entry of `version` whose key is >= `start`.
    pub(crate) fn new(version: &'a Version, start: &[u8]) -> Overlays<'a> {
        let active = version
            .active
            .layers()
            .into_iter()
            .filter(|layer| !layer.is_empty())
            .map(|layer| layer_from(layer, start));
        let stacked = version
            .stack
            .iter()
            .chain(version.frozen.iter().flatten())
            .filter(|layer| !layer.is_empty())
            .map(|layer| layer.range_from(start));
        let replayed = version
            .replayed
            .as_ref()
            .filter(|r| !r.is_empty())
            .map(|r| -> LayerIter<'a> { Box::new(r.range_from(start)) });
        Overlays::from_layers(active.chain(stacked).chain(replayed))
    }

    /// `layers` (newest first) merged.
    pub(crate) fn from_layers(layers: impl Iterator<Item = LayerIter<'a>>) -> Overlays<'a> {
        let sources = layers
            .filter_map(|mut iter| {
                let head = iter.next();
                head.map(|head| (iter, Some(head)))
            })
            .collect();
        let mut overlays = Overlays {
            sources,
            head: None,
        };
        overlays.pick();
        overlays
    }

    fn pick(&mut self) {
        let mut best: Option<OverlayEntry<'a>> = None;
        for (_, head) in &self.sources {
            if let Some(entry) = head
                && best.is_none_or(|b| entry.0 < b.0)
            {
                best = Some(*entry);
            }
        }
        self.head = best;
    }

    /// Whether no overlay holds an entry at or after the start.
    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The smallest key not yet consumed, with the newest layer's value for it.
    pub(crate) fn peek(&self) -> Option<OverlayEntry<'a>> {
        self.head
    }

    /// Moves past the key [`Overlays::peek`] returns, in every layer.
    pub(crate) fn advance(&mut self) {
        let Some((key, _)) = self.head else {
            return;
        };
        for (iter, head) in &mut self.sources {
            if head.is_some_and(|(k, _)| k == key) {
                *head = iter.next();
            }
        }
        self.pick();
    }
}

/// Entries with a given key prefix, newest layer winning, deletions hidden.
pub struct Scan<'a> {
    prefix: Vec<u8>,
    overlays: Overlays<'a>,
    base: Option<Cursor<'a>>,
    /// The entry returned last came from `base`: move past it before the next one.
    base_taken: bool,
}

impl std::fmt::Debug for Scan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Which source the next entry comes from.
enum Take {
    Overlay { shadows_base: bool },
    Base,
    Done,
}

impl<'a> Scan<'a> {
    pub(super) fn new(version: &'a Version, prefix: &[u8]) -> Result<Scan<'a>> {
        let base = match &version.base {
            Some(snapshot) => Some(snapshot.seek(prefix)?),
            None => None,
        };
        Ok(Scan {
            prefix: prefix.to_vec(),
            overlays: Overlays::new(version, prefix),
            base,
            base_taken: false,
        })
    }

    fn decide(&mut self) -> Result<Take> {
        let prefix = self.prefix.as_slice();
        let overlay = self
            .overlays
            .peek()
            .map(|(key, _)| key)
            .filter(|key| key.starts_with(prefix));
        let base = match &mut self.base {
            Some(cursor) => cursor
                .peek_entry()?
                .map(|(key, _)| key)
                .filter(|key| key.starts_with(prefix)),
            None => None,
        };
        Ok(match (overlay, base) {
            (None, None) => Take::Done,
            (Some(_), None) => Take::Overlay {
                shadows_base: false,
            },
            (None, Some(_)) => Take::Base,
            (Some(over), Some(base)) => match over.cmp(base) {
                std::cmp::Ordering::Less => Take::Overlay {
                    shadows_base: false,
                },
                std::cmp::Ordering::Equal => Take::Overlay { shadows_base: true },
                std::cmp::Ordering::Greater => Take::Base,
            },
        })
    }

    /// The next live entry; the key is lent until the next call.
    pub fn next_entry(&mut self) -> Result<Option<(&[u8], ValueRef<'a>)>> {
        if self.overlays.is_empty() {
            return self.next_base_entry();
        }
        if std::mem::take(&mut self.base_taken)
            && let Some(cursor) = &mut self.base
        {
            cursor.advance();
        }
        loop {
            match self.decide()? {
                Take::Done => return Ok(None),
                Take::Base => break,
                Take::Overlay { shadows_base } => {
                    let entry = self.overlays.peek();
                    self.overlays.advance();
                    if shadows_base && let Some(cursor) = &mut self.base {
                        cursor.advance();
                    }
                    if let Some((key, Some(value))) = entry {
                        return Ok(Some((key, ValueRef::Borrowed(value))));
                    }
                }
            }
        }
        self.next_base_entry()
    }

    /// The base's next entry (moving past the one returned last, if it came from the
    /// base). All of [`Scan::next_entry`] when no overlay holds anything: the snapshot's
    /// entries as they are (after a checkpoint, the common case of a full scan).
    fn next_base_entry(&mut self) -> Result<Option<(&[u8], ValueRef<'a>)>> {
        let Scan {
            prefix,
            base,
            base_taken,
            ..
        } = self;
        let Some(cursor) = base else {
            return Ok(None);
        };
        if std::mem::replace(base_taken, true) {
            cursor.advance();
        }
        Ok(cursor
            .peek_entry()?
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key, ValueRef::Borrowed(value))))
    }
}

impl<'a> Iterator for Scan<'a> {
    type Item = Result<(Vec<u8>, ValueRef<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some((key, value))) => Some(Ok((key.to_vec(), value))),
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        }
    }
}
