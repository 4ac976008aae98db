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
        if token.is_empty() || token.len() > TOKEN_BYTES_MAX {
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
        if !lower.is_empty() && lower.len() <= TOKEN_BYTES_MAX {
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
    fn the_ascii_fast_path_agrees_with_the_unicode_rules() {
        let samples = [
            "atomicWriteJson MAX_RETRY_COUNT parse2d HTMLParser __x__ a_b_ _ x1y2Z3 ABCdef",
            "fn main() { let XMLHttpRequest2 = foo_barBaz_QUX9; } // TODO(someone): v2.0.1",
        ];
        let alphabet: Vec<char> = "aZb_9 .ÉéΣσςß日x-Q0".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut random: Vec<String> = Vec::new();
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..(seed % 24) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            random.push(text);
        }
        for text in samples
            .iter()
            .copied()
            .chain(random.iter().map(String::as_str))
        {
            let fast = tokens(text);
            let mut slow = Vec::new();
            for identifier in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                let words: Vec<&str> = identifier.split('_').filter(|w| !w.is_empty()).collect();
                if words.len() >= 2 {
                    slow.push(identifier.trim_matches('_').to_lowercase());
                }
                for word in words {
                    slow.push(word.to_lowercase());
                    let parts = super::word_parts(word);
                    if parts.len() >= 2 {
                        slow.extend(parts.iter().map(|p| p.to_lowercase()));
                    }
                }
            }
            slow.retain(|t| !t.is_empty() && t.len() <= super::TOKEN_BYTES_MAX);
            assert_eq!(fast, slow, "{text}");
        }
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
