//! Full-text search: tokenizer, BM25 ordering computed from the formula, prefix queries,
//! deltas, and the index after crash recovery.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::{Backend, for_each_backend};
use walstore::fts::tokenizer::tokens;
use walstore::storage::sim::CrashMode;
use walstore::{Durability, Store};

#[test]
fn tokenizer_handles_unicode_and_identifiers() {
    assert_eq!(
        tokens("atomicWriteJson"),
        ["atomicwritejson", "atomic", "write", "json"]
    );
    assert_eq!(
        tokens("MAX_RETRY_COUNT = 3"),
        ["max_retry_count", "max", "retry", "count", "3"]
    );
    assert_eq!(tokens("parse2d"), ["parse2d", "parse", "2", "d"]);
    assert_eq!(
        tokens("XMLHttpRequest"),
        ["xmlhttprequest", "xml", "http", "request"]
    );
    assert_eq!(
        tokens("Größe Straße ΣΊΣΥΦΟΣ"),
        ["größe", "straße", "σίσυφος"]
    );
    assert_eq!(tokens("日本語 テキスト"), ["日本語", "テキスト"]);
    assert_eq!(tokens("foo-bar.baz(qux)"), ["foo", "bar", "baz", "qux"]);
    assert_eq!(tokens("  "), Vec::<String>::new());
    assert!(
        tokens(&"x".repeat(200)).is_empty(),
        "over-long tokens are dropped"
    );
}

/// BM25 with k1 = 1.2, b = 0.75, computed here from the formula, independently of the code.
fn bm25(tf: f64, doc_len: f64, avgdl: f64, n: f64, df: f64) -> f64 {
    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
    idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * doc_len / avgdl))
}

#[test]
fn bm25_ordering_matches_the_formula() {
    for_each_backend(|backend| {
        let store = backend.open();
        let mut txn = store.begin_write();
        // Lengths in tokens: a=4, b=2, c=6, d=3.
        txn.index_doc("a", "fsync fsync rename tail")
            .index_doc("b", "fsync lock")
            .index_doc("c", "rename rename rename tail tail lock")
            .index_doc("d", "lock lock lock");
        txn.commit().expect("commit");
        let read = store.read();
        let (n, avgdl) = (4.0, 15.0 / 4.0);
        let results = read.search("fsync rename", 10).expect("search");
        let expected_a = bm25(2.0, 4.0, avgdl, n, 2.0) + bm25(1.0, 4.0, avgdl, n, 2.0);
        let expected_b = bm25(1.0, 2.0, avgdl, n, 2.0);
        let expected_c = bm25(3.0, 6.0, avgdl, n, 2.0);
        let mut expected = vec![("a", expected_a), ("b", expected_b), ("c", expected_c)];
        expected.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(y.0)));
        let got: Vec<(&str, f64)> = results
            .hits
            .iter()
            .map(|h| (h.doc.as_str(), h.score))
            .collect();
        assert_eq!(got.len(), 3, "[{}] {got:?}", backend.name);
        for ((doc, score), (want_doc, want_score)) in got.iter().zip(&expected) {
            assert_eq!(doc, want_doc, "{got:?} vs {expected:?}");
            assert!(
                (score - want_score).abs() < 1e-9,
                "{doc}: {score} vs {want_score}"
            );
        }
        assert_eq!(
            results.hits[0].doc, "a",
            "the document matching both terms comes first"
        );
        assert_eq!(results.lsn, 1);
        assert_eq!(
            read.search("fsync rename", 1).expect("search").hits.len(),
            1,
            "limit"
        );
        assert!(read.search("absent", 10).expect("search").hits.is_empty());
    });
}

#[test]
fn ties_are_broken_by_doc_id() {
    let backend = Backend::sim(3);
    let store = backend.open();
    let mut txn = store.begin_write();
    for doc in ["zeta", "alpha", "mid", "Beta"] {
        txn.index_doc(doc, "same words here");
    }
    txn.commit().expect("commit");
    let docs: Vec<String> = store
        .read()
        .search("words", 10)
        .expect("search")
        .hits
        .into_iter()
        .map(|h| h.doc)
        .collect();
    assert_eq!(docs, ["Beta", "alpha", "mid", "zeta"]);
}

#[test]
fn prefix_queries_expand_to_every_matching_term() {
    for_each_backend(|backend| {
        let store = backend.open();
        let mut txn = store.begin_write();
        txn.index_doc("w1", "write once")
            .index_doc("w2", "atomicWriteJson")
            .index_doc("w3", "writer wrist")
            .index_doc("none", "read only");
        txn.commit().expect("commit");
        let read = store.read();
        let mut docs: Vec<String> = read
            .search("wri*", 10)
            .expect("search")
            .hits
            .into_iter()
            .map(|h| h.doc)
            .collect();
        docs.sort();
        assert_eq!(docs, ["w1", "w2", "w3"]);
        let results = read.search("write*", 10).expect("search");
        assert!(
            results.terms.contains(&"writer".to_owned())
                && results.terms.contains(&"write".to_owned()),
            "{:?}",
            results.terms
        );
        assert!(!results.terms.contains(&"wrist".to_owned()));
        assert!(
            read.search("*", 10).expect("search").hits.is_empty(),
            "a bare star matches nothing"
        );
    });
}

#[test]
fn one_lowercase_word_matches_exactly_the_documents_with_that_token() {
    for_each_backend(|backend| {
        let store = backend.open();
        let mut txn = store.begin_write();
        txn.index_doc("1", "alpha beta")
            .index_doc("2", "alphabet")
            .index_doc("3", "Alpha");
        txn.commit().expect("commit");
        let mut docs: Vec<String> = store
            .read()
            .search("alpha", 10)
            .expect("search")
            .hits
            .into_iter()
            .map(|h| h.doc)
            .collect();
        docs.sort();
        assert_eq!(docs, ["1", "3"]);
        let mut txn = store.begin_write();
        txn.index_doc("1", "gamma").remove_doc("3");
        txn.commit().expect("commit");
        assert!(
            store
                .read()
                .search("alpha", 10)
                .expect("search")
                .hits
                .is_empty(),
            "current text only"
        );
    });
}

/// The FTS state of `store` printed: every doc's terms, and every term's postings.
fn fts_state(store: &Store) -> String {
    let read = store.read();
    let mut out = format!("{:?}\n", read.fts_stats().expect("stats"));
    let mut terms = std::collections::BTreeSet::new();
    for doc in read.docs().expect("docs") {
        let doc = doc.expect("doc");
        let doc_terms = read.doc_terms(&doc).expect("doc").expect("present");
        terms.extend(doc_terms.terms.iter().map(|(t, _)| t.clone()));
        out += &format!("{doc}: {doc_terms:?}\n");
    }
    for term in terms {
        let postings: Vec<_> = read
            .postings(&term)
            .expect("postings")
            .map(|p| p.expect("posting"))
            .collect();
        out += &format!("{term} -> {postings:?}\n");
    }
    out
}

#[test]
fn fts_after_crash_recovery_equals_a_rebuild_from_the_surviving_documents() {
    for seed in 0..8 {
        let backend = Backend::sim(seed);
        let sim = backend.sim.clone().expect("sim");
        let store = backend
            .options()
            .durability(Durability::None)
            .checkpoint_wal_bytes(8 * 1024)
            .background_checkpoints(false)
            .open(&backend.dir)
            .expect("open");
        // texts_at[lsn]: the documents and their texts after transaction `lsn`.
        let mut texts_at = vec![std::collections::BTreeMap::<String, String>::new()];
        for i in 0..120u64 {
            let doc = format!("doc{}", (i * 7 + seed) % 23);
            let mut texts = texts_at.last().cloned().unwrap_or_default();
            let mut txn = store.begin_write();
            if i % 5 == 4 {
                txn.remove_doc(&doc);
                texts.remove(&doc);
            } else {
                let text = format!(
                    "word{} shared{} camelCaseTerm{} {}",
                    i % 11,
                    i % 3,
                    i % 4,
                    "filler ".repeat((i % 6) as usize)
                );
                txn.index_doc(&doc, &text);
                texts.insert(doc, text);
            }
            txn.commit().expect("commit");
            texts_at.push(texts);
            if i % 17 == 0 {
                store.sync().expect("sync");
            }
        }
        sim.crash(CrashMode::Random);
        drop(store);
        let recovered = backend.open();
        let rebuilt_backend = Backend::sim(100 + seed);
        let rebuilt = rebuilt_backend.open();
        let mut txn = rebuilt.begin_write();
        for (doc, text) in &texts_at[recovered.lsn() as usize] {
            txn.index_doc(doc, text);
        }
        txn.commit().expect("commit");
        assert_eq!(
            fts_state(&recovered),
            fts_state(&rebuilt),
            "seed {seed}, recovered lsn {}",
            recovered.lsn()
        );
    }
}
