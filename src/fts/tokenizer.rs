//! The tokenizer for code and prose. The persisted index depends on it, so its rules are
//! part of the format (`format-spec/tokenizer.md`); change them only with a version bump.
//!
//! 1. A *word* is a maximal run of Unicode alphanumeric characters (`char::is_alphanumeric`).
//!    Each word, lowercased (`str::to_lowercase`: Unicode case mapping, including the
//!    final-sigma rule), is a token.
//! 2. An *identifier* is a maximal run of alphanumerics and `_`. When it joins two or more
//!    words with `_` (`MAX_RETRY_COUNT`), the whole identifier lowercased is a token too.
//! 3. A word is split into parts at lower-to-upper case changes (`atomicWrite`), before the
//!    last capital of a capital run followed by a lower-case letter (`HTMLParser` ->
//!    `HTML`, `Parser`), and between a digit and a non-digit in either order (`parse2d` ->
//!    `parse`, `2`, `d`; digits are `char::is_numeric`).
//!    When a word has two or more parts, each part lowercased is a token too.
//! 4. A token longer than [`TOKEN_BYTES_MAX`] bytes is dropped.
//!
//! Tokens are emitted in text order; a token may repeat.

/// Longest token kept, in bytes of UTF-8.
pub const TOKEN_BYTES_MAX: usize = 64;

/// The tokens of `text`, in order.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for identifier in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let words: Vec<&str> = identifier.split('_').filter(|w| !w.is_empty()).collect();
        if words.len() >= 2 {
            push(&mut out, identifier.trim_matches('_'));
        }
        for word in words {
            push(&mut out, word);
            let parts = word_parts(word);
            if parts.len() >= 2 {
                for part in parts {
                    push(&mut out, part);
                }
            }
        }
    }
    out
}

fn push(out: &mut Vec<String>, token: &str) {
    let lower = token.to_lowercase();
    if !lower.is_empty() && lower.len() <= TOKEN_BYTES_MAX {
        out.push(lower);
    }
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
    let chars: Vec<(usize, Class)> = word.char_indices().map(|(at, c)| (at, class(c))).collect();
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

#[cfg(test)]
mod tests {
    use super::tokens;

    fn toks(text: &str) -> Vec<String> {
        tokens(text)
    }

    #[test]
    fn identifiers_split() {
        assert_eq!(
            toks("atomicWriteJson"),
            ["atomicwritejson", "atomic", "write", "json"]
        );
        assert_eq!(
            toks("MAX_RETRY_COUNT"),
            ["max_retry_count", "max", "retry", "count"]
        );
        assert_eq!(toks("parse2d"), ["parse2d", "parse", "2", "d"]);
        assert_eq!(toks("HTMLParser"), ["htmlparser", "html", "parser"]);
        assert_eq!(
            toks("Hello, wörld! ÉCOLE 42"),
            ["hello", "wörld", "école", "42"]
        );
        assert_eq!(toks("_private __x__"), ["private", "x"]);
        assert!(toks(&"a".repeat(65)).is_empty());
    }
}
