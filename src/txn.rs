//! Transactions: [`WriteTxn`] (a buffered batch, atomic at commit) and [`ReadTxn`]
//! (an immutable, consistent view at one lsn).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::fts::view::FtsView;
use crate::fts::{DocEntry, DocTerms, FtsStats};
use crate::model::encoded::EncodedOps;
use crate::model::fingerprint::{Fingerprint, FingerprintRef};
use crate::model::keys::{self, Tag};
use crate::model::op::{Op, decode, read_totals};
use crate::model::value::Value;
use crate::state::Version;
use crate::store::{Durability, Inner};

/// A write transaction: changes are buffered and become visible and durable together,
/// atomically, at [`WriteTxn::commit`]. Dropping it without committing discards it.
///
/// Writes are blind (they do not read), so concurrent transactions never conflict:
/// they apply in lsn order, the later one winning on the same key, and commits on
/// several threads share one fsync (group commit).
#[derive(Debug)]
#[must_use = "a write transaction does nothing until it is committed"]
pub struct WriteTxn {
    inner: Arc<Inner>,
    /// The ops, encoded as the WAL record's payload as they are added.
    ops: EncodedOps,
    durability: Durability,
}

impl WriteTxn {
    pub(crate) fn new(inner: Arc<Inner>, durability: Durability) -> Self {
        // The buffer a large transaction left, if no other transaction is taking it.
        let kept = inner
            .payload_buffer
            .try_lock()
            .map(|mut kept| std::mem::take(&mut *kept));
        let ops = match kept {
            Some(buffer) if buffer.capacity() > 0 => EncodedOps::with_buffer(buffer),
            _ => EncodedOps::default(),
        };
        WriteTxn {
            inner,
            ops,
            durability,
        }
    }

    /// Sets this transaction's durability (default: the store's).
    pub fn set_durability(&mut self, durability: Durability) -> &mut Self {
        self.durability = durability;
        self
    }

    /// Sets a metadata key.
    pub fn set_meta(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.ops.simple(Tag::Metadata, key, Some(&value.into()));
        self
    }

    /// Sets a metadata key to any serializable value.
    pub fn set_meta_as<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<&mut Self> {
        Ok(self.set_meta(key, Value::from_serialize(value)?))
    }

    /// Deletes a metadata key.
    pub fn delete_meta(&mut self, key: &str) -> &mut Self {
        self.ops.simple(Tag::Metadata, key, None);
        self
    }

    /// Sets a config key.
    pub fn set_config(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.ops.simple(Tag::Config, key, Some(&value.into()));
        self
    }

    /// Sets a config key to any serializable value.
    pub fn set_config_as<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<&mut Self> {
        Ok(self.set_config(key, Value::from_serialize(value)?))
    }

    /// Deletes a config key.
    pub fn delete_config(&mut self, key: &str) -> &mut Self {
        self.ops.simple(Tag::Config, key, None);
        self
    }

    /// Sets the fingerprint of `path` in namespace `ns`.
    pub fn put_fingerprint(&mut self, ns: &str, path: &str, fingerprint: Fingerprint) -> &mut Self {
        self.ops.fingerprint(ns, path, Some(&fingerprint));
        self
    }

    /// Deletes the fingerprint of `path` in namespace `ns`.
    pub fn delete_fingerprint(&mut self, ns: &str, path: &str) -> &mut Self {
        self.ops.fingerprint(ns, path, None);
        self
    }

    /// Adds or replaces document `doc` in the full-text index. The text is tokenized
    /// now; only the document's terms are logged, never the whole index.
    pub fn index_doc(&mut self, doc: &str, text: &str) -> &mut Self {
        self.ops.op(Op::IndexDoc {
            doc: doc.to_owned(),
            terms: DocTerms::from_text(text),
        });
        self
    }

    /// Adds or replaces document `doc` given its terms, tokenized by the caller (for
    /// instance on other threads, with [`DocTerms::from_text`]).
    pub fn index_doc_terms(&mut self, doc: &str, terms: DocTerms) -> &mut Self {
        self.ops.op(Op::IndexDoc {
            doc: doc.to_owned(),
            terms,
        });
        self
    }

    /// Removes document `doc` from the full-text index.
    pub fn remove_doc(&mut self, doc: &str) -> &mut Self {
        self.ops.op(Op::RemoveDoc {
            doc: doc.to_owned(),
        });
        self
    }

    /// Records `run` as the indexing run in progress (start it, or update its progress).
    pub fn set_run(&mut self, run: &crate::run::RunInfo) -> Result<&mut Self> {
        self.set_meta_as(crate::run::RUN_KEY, run)
    }

    /// Clears the indexing run: it finished.
    pub fn finish_run(&mut self) -> &mut Self {
        self.delete_meta(crate::run::RUN_KEY)
    }

    /// Number of buffered operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation is buffered.
    pub fn is_empty(&self) -> bool {
        self.ops.len() == 0
    }

    /// Commits: logs the transaction as one WAL record and applies it. Returns its lsn
    /// once it is durable (with [`Durability::Immediate`]) and visible to readers.
    pub fn commit(self) -> Result<u64> {
        let lsn = self.inner.commit(self.ops.finish()?, self.durability)?;
        // Without a background thread, its work runs here, after the commit. A failed
        // checkpoint does not fail the commit, which is durable already, and neither
        // does a panic in it (contained, it poisons the store): see
        // `Store::last_automatic_checkpoint_error`.
        if !self.inner.options.background_thread() {
            let work = self.inner.background.lock().take_work();
            self.inner
                .run_work_contained(work, crate::store::Pacing::FullSpeed);
        }
        Ok(lsn)
    }
}

/// A consistent, immutable view of the store at one lsn. Cheap to clone; holding it
/// never blocks writers.
#[derive(Debug, Clone)]
pub struct ReadTxn {
    version: Arc<Version>,
}

impl ReadTxn {
    pub(crate) fn new(version: Arc<Version>) -> Self {
        ReadTxn { version }
    }

    pub(crate) fn version(&self) -> &Version {
        &self.version
    }

    /// The lsn of the last transaction this view includes.
    pub fn lsn(&self) -> u64 {
        self.version.lsn
    }

    fn value(&self, tag: Tag, key: &str) -> Result<Option<Value>> {
        match self.version.get(&keys::simple(tag, key))? {
            Some(bytes) => Ok(Some(decode(&bytes, tag.name())?)),
            None => Ok(None),
        }
    }

    fn values(&self, tag: Tag) -> Result<Vec<(String, Value)>> {
        let mut out = Vec::new();
        for entry in self.version.scan(&[tag as u8])? {
            let (key, bytes) = entry?;
            let name = keys::split_simple(&key).ok_or_else(|| bad_key(tag))?;
            out.push((name, decode(&bytes, tag.name())?));
        }
        Ok(out)
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Result<Option<Value>> {
        self.value(Tag::Metadata, key)
    }

    /// A metadata value converted into `T`.
    pub fn meta_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.meta(key)?
            .map(|value| value.deserialize_into())
            .transpose()
    }

    /// Every metadata entry, sorted by key.
    pub fn metadata(&self) -> Result<Vec<(String, Value)>> {
        self.values(Tag::Metadata)
    }

    /// A config value.
    pub fn config(&self, key: &str) -> Result<Option<Value>> {
        self.value(Tag::Config, key)
    }

    /// A config value converted into `T`.
    pub fn config_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.config(key)?
            .map(|value| value.deserialize_into())
            .transpose()
    }

    /// Every config entry, sorted by key.
    pub fn configs(&self) -> Result<Vec<(String, Value)>> {
        self.values(Tag::Config)
    }

    /// The fingerprint of `path` in namespace `ns`.
    pub fn fingerprint(&self, ns: &str, path: &str) -> Result<Option<Fingerprint>> {
        match self.version.get(&keys::pair(Tag::Fingerprint, ns, path))? {
            Some(bytes) => Ok(Some(Fingerprint::decode_stored(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The fingerprints of namespace `ns`, sorted by path.
    pub fn fingerprints(
        &self,
        ns: &str,
    ) -> Result<impl Iterator<Item = Result<(String, Fingerprint)>> + '_> {
        let prefix = keys::pair_prefix(Tag::Fingerprint, ns);
        let mut scan = self.version.scan(&prefix)?;
        // The path is what follows the prefix (an escaped namespace holds no terminator):
        // read from the borrowed key, with no copy of it.
        Ok(std::iter::from_fn(move || {
            let (key, bytes) = match scan.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => return None,
                Err(error) => return Some(Err(error)),
            };
            let path = key
                .get(prefix.len()..)
                .and_then(|path| std::str::from_utf8(path).ok())
                .ok_or_else(|| bad_key(Tag::Fingerprint));
            Some(path.and_then(|path| Ok((path.to_owned(), Fingerprint::decode_stored(&bytes)?))))
        }))
    }

    /// Calls `visit` with every fingerprint of namespace `ns`, in path order, borrowed
    /// from the store: no allocation per entry (the owned [`ReadTxn::fingerprints`]
    /// allocates a path and a hash per entry). Stops early when `visit` returns
    /// [`ControlFlow::Break`](std::ops::ControlFlow).
    pub fn for_each_fingerprint(
        &self,
        ns: &str,
        mut visit: impl FnMut(&str, FingerprintRef<'_>) -> std::ops::ControlFlow<()>,
    ) -> Result<()> {
        let prefix = keys::pair_prefix(Tag::Fingerprint, ns);
        let mut scan = self.version.scan(&prefix)?;
        while let Some((key, bytes)) = scan.next_entry()? {
            let path = key
                .get(prefix.len()..)
                .and_then(|path| std::str::from_utf8(path).ok())
                .ok_or_else(|| bad_key(Tag::Fingerprint))?;
            if visit(path, Fingerprint::decode_borrowed(&bytes)?).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Every fingerprint as `(namespace, path, fingerprint)`, sorted.
    pub fn all_fingerprints(
        &self,
    ) -> Result<impl Iterator<Item = Result<(String, String, Fingerprint)>> + '_> {
        let mut scan = self.version.scan(&[Tag::Fingerprint as u8])?;
        Ok(std::iter::from_fn(move || {
            let (key, bytes) = match scan.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => return None,
                Err(error) => return Some(Err(error)),
            };
            let pair = keys::split_pair(key).ok_or_else(|| bad_key(Tag::Fingerprint));
            Some(pair.and_then(|(ns, path)| Ok((ns, path, Fingerprint::decode_stored(&bytes)?))))
        }))
    }

    /// A document's id and length, if it is indexed.
    pub fn doc(&self, doc: &str) -> Result<Option<DocEntry>> {
        match self.version.get(&keys::simple(Tag::FtsDoc, doc))? {
            Some(bytes) => Ok(Some(DocEntry::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every indexed document name, sorted by bytes (= by code point).
    pub fn docs(&self) -> Result<impl Iterator<Item = Result<String>> + '_> {
        let scan = self.version.scan(&[Tag::FtsDoc as u8])?;
        Ok(scan.map(|entry| {
            let (key, _) = entry?;
            keys::split_simple(&key).ok_or_else(|| bad_key(Tag::FtsDoc))
        }))
    }

    /// Index terms starting with `prefix`, sorted, at most `max`. A term whose documents
    /// were all removed may be listed until the next checkpoint drops it.
    pub fn terms(&self, prefix: &str, max: usize) -> Result<Vec<String>> {
        FtsView::new(&self.version).terms(prefix, max)
    }

    /// The documents containing `term`, with the term's frequency, sorted by name.
    pub fn postings(
        &self,
        term: &str,
    ) -> Result<impl Iterator<Item = Result<(String, u32)>> + use<>> {
        let view = FtsView::new(&self.version);
        let mut cursor = view.cursor(term)?;
        let mut out = Vec::new();
        while let Some(posting) = cursor.posting() {
            out.push((view.doc_name(posting.doc)?, posting.tf));
            cursor.advance()?;
        }
        out.sort_unstable();
        Ok(out.into_iter().map(Ok))
    }

    /// A document's terms, rebuilt from the postings. It reads the whole index, so it
    /// is for tests and tools: the store keeps no forward index.
    pub fn doc_terms(&self, doc: &str) -> Result<Option<DocTerms>> {
        let Some(entry) = self.doc(doc)? else {
            return Ok(None);
        };
        let view = FtsView::new(&self.version);
        let mut terms = Vec::new();
        for term in view.terms("", usize::MAX)? {
            let mut cursor = view.cursor(&term)?;
            cursor.seek(entry.id)?;
            if let Some(posting) = cursor.posting().filter(|p| p.doc == entry.id) {
                terms.push((term, posting.tf));
            }
        }
        Ok(Some(DocTerms { terms }))
    }

    /// Full-text search: BM25 over `query` (words, `prefix*`), at most `limit` hits,
    /// all from this view (see [`crate::fts::search`]).
    pub fn search(&self, query: &str, limit: usize) -> Result<crate::fts::search::SearchResults> {
        crate::fts::search::search(self, &crate::fts::search::Query::parse(query), limit)
    }

    /// The indexing run in progress as of this view, if any: results may be incomplete.
    pub fn indexing(&self) -> Result<Option<crate::run::RunInfo>> {
        self.meta_as(crate::run::RUN_KEY)
    }

    /// Index-wide totals (document count, token count).
    pub fn fts_stats(&self) -> Result<FtsStats> {
        let totals = read_totals(self.version.as_ref())?;
        Ok(FtsStats {
            docs: totals.docs,
            tokens: totals.tokens,
        })
    }
}

fn bad_key(tag: Tag) -> Error {
    Error::Conversion(format!("a stored {} key does not decode", tag.name()))
}
