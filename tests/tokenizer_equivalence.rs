//! The tokenizer and `DocTerms::from_text` against a reference: a verbatim copy of the
//! implementation at 57f1161 (the rules of `format-spec/tokenizer.md` as the index was
//! built with them), on random text over an alphabet that exercises every rule.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

use proptest::prelude::*;
use walstore::fts::DocTerms;
use walstore::fts::tokenizer::{TOKEN_BYTES_MAX, tokens};

/// The tokenizer and `from_text` at 57f1161, unchanged but for `pub`s.
mod reference {
    /// The tokens of `text`, in order.
    pub fn tokens(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_token(text, |token| out.push(token.to_owned()));
        out
    }

    /// Calls `emit` with each token of `text`, in order, without allocating per token (the
    /// lowercased token is built in a reused buffer; ASCII takes a byte-level fast path that
    /// gives the same tokens as the Unicode rules).
    pub fn for_each_token(text: &str, mut emit: impl FnMut(&str)) {
        let mut lower = String::new();
        for identifier in identifiers(text) {
            if identifier.is_ascii() {
                ascii_identifier(identifier, &mut lower, &mut emit);
            } else {
                unicode_identifier(identifier, &mut lower, &mut emit);
            }
        }
    }

    /// Rules 2 and 3 for an ASCII identifier, on bytes (any byte offset of ASCII text is a
    /// char boundary, so every slice below is a `str` without checking).
    fn ascii_identifier(identifier: &str, lower: &mut String, emit: &mut impl FnMut(&str)) {
        let bytes = identifier.as_bytes();
        let mut push = |start: usize, end: usize| {
            let Some(token) = identifier.get(start..end) else {
                return;
            };
            if token.is_empty() || token.len() > super::TOKEN_BYTES_MAX {
                return;
            }
            lower.clear();
            lower.push_str(token);
            lower.make_ascii_lowercase();
            emit(lower);
        };
        let words = || {
            let mut at = 0;
            bytes.split(|&b| b == b'_').filter_map(move |word| {
                let start = at;
                at += word.len() + 1;
                (!word.is_empty()).then_some((start, start + word.len()))
            })
        };
        if words().nth(1).is_some() {
            let start = bytes.iter().position(|&b| b != b'_').unwrap_or(0);
            let end = bytes.iter().rposition(|&b| b != b'_').map_or(0, |e| e + 1);
            push(start, end);
        }
        for (start, end) in words() {
            push(start, end);
            let word = bytes.get(start..end).unwrap_or_default();
            let mut boundaries = ascii_boundaries(word).peekable();
            if boundaries.peek().is_some() {
                let mut from = start;
                for at in boundaries {
                    push(from, start + at);
                    from = start + at;
                }
                push(from, end);
            }
        }
    }

    /// Rules 2 and 3 for an identifier with non-ASCII characters.
    fn unicode_identifier(identifier: &str, lower: &mut String, emit: &mut impl FnMut(&str)) {
        let mut push = |token: &str| {
            lower.clear();
            lower.push_str(&token.to_lowercase());
            if !lower.is_empty() && lower.len() <= super::TOKEN_BYTES_MAX {
                emit(lower);
            }
        };
        let mut words = identifier.split('_').filter(|w| !w.is_empty());
        if words.clone().nth(1).is_some() {
            push(identifier.trim_matches('_'));
        }
        for word in words.by_ref() {
            push(word);
            let parts = word_parts(word);
            if parts.len() >= 2 {
                for part in parts {
                    push(part);
                }
            }
        }
    }

    /// Maximal runs of alphanumerics and `_` (rule 2's identifiers, possibly `_` only).
    fn identifiers(text: &str) -> impl Iterator<Item = &str> {
        let bytes = text.as_bytes();
        let mut pos = 0;
        // Whether the character at `at` (a char boundary) is an identifier character, and
        // its length.
        let inside = move |at: usize| -> (bool, usize) {
            match bytes.get(at) {
                Some(&b) if b.is_ascii() => (b.is_ascii_alphanumeric() || b == b'_', 1),
                Some(_) => text
                    .get(at..)
                    .and_then(|rest| rest.chars().next())
                    .map_or((false, 1), |c| (c.is_alphanumeric(), c.len_utf8())),
                None => (false, 0),
            }
        };
        std::iter::from_fn(move || {
            while pos < bytes.len() {
                let (is_inside, len) = inside(pos);
                if is_inside {
                    break;
                }
                pos += len.max(1);
            }
            if pos >= bytes.len() {
                return None;
            }
            let start = pos;
            while pos < bytes.len() {
                let (is_inside, len) = inside(pos);
                if !is_inside {
                    break;
                }
                pos += len;
            }
            text.get(start..pos)
        })
    }

    /// Byte offsets where an ASCII word splits (rule 3), in order.
    fn ascii_boundaries(word: &[u8]) -> impl Iterator<Item = usize> + '_ {
        let class = |b: u8| {
            if b.is_ascii_digit() {
                Class::Digit
            } else if b.is_ascii_uppercase() {
                Class::Upper
            } else if b.is_ascii_lowercase() {
                Class::Lower
            } else {
                Class::Other
            }
        };
        (1..word.len()).filter(move |&i| {
            let a = word.get(i - 1).map_or(Class::Other, |&b| class(b));
            let b = word.get(i).map_or(Class::Other, |&b| class(b));
            let after_b = word.get(i + 1).map(|&b| class(b));
            match (a, b) {
                (Class::Lower, Class::Upper) => true,
                (Class::Upper, Class::Upper) => after_b == Some(Class::Lower),
                (Class::Digit, Class::Digit) => false,
                (Class::Digit, _) | (_, Class::Digit) => true,
                _ => false,
            }
        })
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Class {
        Lower,
        Upper,
        Digit,
        Other,
    }

    fn class(c: char) -> Class {
        if c.is_numeric() {
            Class::Digit
        } else if c.is_uppercase() {
            Class::Upper
        } else if c.is_lowercase() {
            Class::Lower
        } else {
            Class::Other
        }
    }

    /// Splits a word at case changes and letter/digit changes (rule 3).
    fn word_parts(word: &str) -> Vec<&str> {
        let chars: Vec<(usize, Class)> =
            word.char_indices().map(|(at, c)| (at, class(c))).collect();
        let mut parts = Vec::new();
        let mut start = 0;
        for (i, pair) in chars.windows(2).enumerate() {
            let (Some(&(_, a)), Some(&(b_at, b))) = (pair.first(), pair.get(1)) else {
                continue;
            };
            let after_b = chars.get(i + 2).map(|(_, class)| *class);
            let boundary = match (a, b) {
                (Class::Lower, Class::Upper) => true,
                (Class::Upper, Class::Upper) => after_b == Some(Class::Lower),
                (Class::Digit, Class::Digit) => false,
                (Class::Digit, _) | (_, Class::Digit) => true,
                _ => false,
            };
            if boundary {
                parts.extend(word.get(start..b_at));
                start = b_at;
            }
        }
        parts.extend(word.get(start..).filter(|part| !part.is_empty()));
        parts
    }

    /// `DocTerms::from_text` at 57f1161.
    pub fn from_text(text: &str) -> Vec<(String, u32)> {
        let mut counts: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        for_each_token(text, |token| match counts.get_mut(token) {
            Some(count) => *count = count.saturating_add(1),
            None => {
                counts.insert(token.to_owned(), 1);
            }
        });
        let mut terms: Vec<(String, u32)> = counts.into_iter().collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        terms
    }
}

/// Single characters: ASCII letters of both cases, digits, `_`, punctuation and
/// whitespace; lower, upper and caseless letters outside ASCII (final sigma, `ß` whose
/// uppercase is two letters, `İ` whose lowercase is longer, titlecase `ǅ`), numerics
/// outside ASCII (`½`, Arabic-Indic `٣`), and a combining mark (not alphanumeric).
const ALPHABET: &[&str] = &[
    "a", "b", "z", "x", "A", "B", "Q", "Z", "0", "1", "9", "_", "_", " ", "\n", "\t", ".", ",",
    "-", "(", ")", "'", "::", "É", "é", "Σ", "σ", "ς", "ß", "日", "\u{301}", "İ", "ǅ", "½", "٣",
];

/// A run that makes one long token or word: 56 to 72 bytes (`TOKEN_BYTES_MAX` is 64).
fn long_run() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(vec!["a", "B", "7", "_", "é", "Σ"]);
    (prop::collection::vec(unit, 1..4), 56usize..73).prop_map(|(units, bytes)| {
        let mut run = String::new();
        for unit in units.iter().cycle() {
            if run.len() + unit.len() > bytes {
                break;
            }
            run.push_str(unit);
        }
        run
    })
}

fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        12 => prop::sample::select(ALPHABET).prop_map(str::to_owned),
        1 => long_run(),
    ];
    prop::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
}

fn assert_equivalent(text: &str) {
    assert_eq!(tokens(text), reference::tokens(text), "tokens of {text:?}");
    assert_eq!(
        DocTerms::from_text(text).terms,
        reference::from_text(text),
        "terms of {text:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    #[test]
    fn random_text_gives_the_reference_tokens_and_terms(text in text()) {
        assert_equivalent(&text);
    }
}

#[test]
fn the_documented_examples_and_token_length_bounds() {
    for text in [
        "atomicWriteJson MAX_RETRY_COUNT parse2d HTMLParser getHTTPResponse2xx IOError",
        "x86_64 v1.2.3 fn atomicWrite() Hello, wörld! ÉCOLE 42 _private __x__ a__b don't",
        "ABC aB Ab ΟΔΟΣ İstanbul ǅemal 日本語2版 ½cup",
        "",
        "_",
        "___",
    ] {
        assert_equivalent(text);
    }
    for len in TOKEN_BYTES_MAX - 2..=TOKEN_BYTES_MAX + 2 {
        let word = "a".repeat(len);
        assert_equivalent(&word);
        assert_equivalent(&format!("{word}_b {word}Xy x_{word}"));
        assert_equivalent(&format!("{}İ", "a".repeat(len - 2)));
    }
}

#[test]
fn this_crate_sources_give_the_reference_tokens_and_terms() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "format-spec"] {
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
            &mut files,
        );
    }
    assert!(files.len() > 20, "{} files", files.len());
    for file in files {
        assert_equivalent(&std::fs::read_to_string(&file).unwrap());
    }
}
