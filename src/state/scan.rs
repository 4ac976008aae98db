//! A merged, ordered scan over a version's layers.

use std::ops::{Bound, Deref};
use std::sync::Arc;

use super::version::Version;
use crate::error::Result;
use crate::snapshot::reader::Cursor;

/// A value read from a version: borrowed from the snapshot map, or shared from an overlay.
#[derive(Debug, Clone)]
pub enum ValueRef<'a> {
    /// Bytes inside the mapped snapshot.
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

type LayerIter<'a> = Box<dyn Iterator<Item = (&'a Arc<[u8]>, &'a Option<Arc<[u8]>>)> + 'a>;
type Head<'a> = (Vec<u8>, Option<ValueRef<'a>>);

/// Entries with a given key prefix, newest layer winning, deletions hidden.
pub struct Scan<'a> {
    prefix: Vec<u8>,
    layers: Vec<(LayerIter<'a>, Option<Head<'a>>)>,
    base: Option<(Cursor<'a>, Option<Head<'a>>)>,
}

impl std::fmt::Debug for Scan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl<'a> Scan<'a> {
    pub(super) fn new(version: &'a Version, prefix: &[u8]) -> Result<Scan<'a>> {
        let range = |layer: &'a super::Layer| -> LayerIter<'a> {
            Box::new(layer.range::<_, [u8]>((Bound::Included(prefix), Bound::Unbounded)))
        };
        let mut layers = vec![(range(&version.active), None)];
        if let Some(frozen) = &version.frozen {
            layers.push((range(frozen), None));
        }
        let base = match &version.base {
            Some(snapshot) => Some((snapshot.seek(prefix)?, None)),
            None => None,
        };
        let mut scan = Scan {
            prefix: prefix.to_vec(),
            layers,
            base,
        };
        scan.fill()?;
        Ok(scan)
    }

    /// Refills every empty head from its source.
    fn fill(&mut self) -> Result<()> {
        let prefix = &self.prefix;
        for (iter, head) in &mut self.layers {
            if head.is_none() {
                *head = iter
                    .next()
                    .filter(|(key, _)| key.starts_with(prefix))
                    .map(|(key, value)| (key.to_vec(), value.clone().map(ValueRef::Shared)));
            }
        }
        if let Some((cursor, head)) = &mut self.base
            && head.is_none()
        {
            *head = cursor
                .next_entry()?
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(key, value)| (key.to_vec(), Some(ValueRef::Borrowed(value))));
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Head<'a>>> {
        loop {
            let heads = self
                .layers
                .iter()
                .map(|(_, head)| head)
                .chain(self.base.iter().map(|(_, head)| head));
            let Some(smallest) = heads.flatten().map(|(key, _)| key).min().cloned() else {
                return Ok(None);
            };
            // Take the entry from every source holding this key; the first (newest) wins.
            let mut winner: Option<Option<ValueRef<'a>>> = None;
            let sources = self
                .layers
                .iter_mut()
                .map(|(_, head)| head)
                .chain(self.base.iter_mut().map(|(_, head)| head));
            for head in sources {
                if head.as_ref().is_some_and(|(key, _)| *key == smallest)
                    && let Some((_, value)) = head.take()
                {
                    winner.get_or_insert(value);
                }
            }
            self.fill()?;
            if let Some(Some(value)) = winner {
                return Ok(Some((smallest, Some(value))));
            }
        }
    }
}

impl<'a> Iterator for Scan<'a> {
    type Item = Result<(Vec<u8>, ValueRef<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some((key, Some(value)))) => Some(Ok((key, value))),
            Ok(_) => None,
            Err(error) => Some(Err(error)),
        }
    }
}
