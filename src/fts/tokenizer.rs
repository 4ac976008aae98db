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

/// Calls `emit` with each token of `text`, in order, without allocating per token.
///
/// One pass over the bytes, classified by [`BYTE_CLASS`]. An identifier of ASCII
/// characters only takes a byte-level path that gives the same tokens as the Unicode
/// rules. Its tokens are slices of the identifier lowercased (ASCII lowercasing maps each
/// byte to one byte, so offsets agree), or of the text itself when it has no capital.
pub fn for_each_token(text: &str, mut emit: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut lower = String::new();
    let mut pos = 0;
    loop {
        // Skip to the next identifier character.
        let start = loop {
            let Some(&b) = bytes.get(pos) else {
                return;
            };
            match byte_class(b) {
                SEPARATOR => pos += 1,
                NON_ASCII => match char_at(text, pos) {
                    (true, _) => break pos,
                    (false, len) => pos += len,
                },
                _ => break pos,
            }
        };
        // The union of the classes of the identifier's bytes.
        let mut seen = 0;
        while let Some(&b) = bytes.get(pos) {
            let class = byte_class(b);
            if class & ASCII_IDENTIFIER != 0 {
                seen |= class;
                pos += 1;
            } else if class == NON_ASCII
                && let (true, len) = char_at(text, pos)
            {
                seen |= class;
                pos += len;
            } else {
                break;
            }
        }
        // `start` and `pos` are char boundaries: each step above moves by whole characters.
        let Some(identifier) = text.get(start..pos) else {
            return;
        };
        if seen & NON_ASCII != 0 {
            unicode_identifier(identifier, &mut lower, &mut emit);
        } else if seen == LOWER {
            // One word of one part (the most common identifier in code).
            if identifier.len() <= TOKEN_BYTES_MAX {
                emit(identifier);
            }
        } else if seen & UPPER == 0 {
            ascii_identifier(identifier.as_bytes(), identifier, seen, &mut emit);
        } else {
            lower.clear();
            lower.push_str(identifier);
            lower.make_ascii_lowercase();
            ascii_identifier(identifier.as_bytes(), &lower, seen, &mut emit);
        }
    }
}

/// Classes of a byte for the scan, one bit each: ASCII letters and digits, `_`, any byte
/// of a multi-byte character; a separator (any other ASCII byte) has none.
const SEPARATOR: u8 = 0;
const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
const UNDERSCORE: u8 = 8;
const NON_ASCII: u8 = 16;
const ASCII_IDENTIFIER: u8 = LOWER | UPPER | DIGIT | UNDERSCORE;

/// The class of each byte value.
#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of bounds fails the build"
)]
const BYTE_CLASS: [u8; 256] = {
    let mut table = [SEPARATOR; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'a'..=b'z' => LOWER,
            b'A'..=b'Z' => UPPER,
            b'0'..=b'9' => DIGIT,
            b'_' => UNDERSCORE,
            0x80.. => NON_ASCII,
            _ => SEPARATOR,
        };
        b += 1;
    }
    table
};

fn byte_class(b: u8) -> u8 {
    // In bounds: the table has an entry for every u8.
    BYTE_CLASS.get(usize::from(b)).copied().unwrap_or(SEPARATOR)
}

/// Whether the character starting at byte `at` (a char boundary) is alphanumeric, and
/// its length in bytes.
fn char_at(text: &str, at: usize) -> (bool, usize) {
    text.get(at..)
        .and_then(|rest| rest.chars().next())
        .map_or((false, 1), |c| (c.is_alphanumeric(), c.len_utf8()))
}

/// Rules 2 and 3 for an ASCII identifier: `identifier` gives the classes, `lower` (the
/// same bytes lowercased) the tokens; `seen` is the union of the classes of its bytes.
fn ascii_identifier(identifier: &[u8], lower: &str, seen: u8, emit: &mut impl FnMut(&str)) {
    // Only a capital or a digit can make a boundary.
    let may_split = seen & (UPPER | DIGIT) != 0;
    if seen & UNDERSCORE == 0 {
        ascii_word(identifier, 0, lower, may_split, emit);
        return;
    }
    let Some(first) = identifier.iter().position(|&b| b != b'_') else {
        return;
    };
    let end = identifier
        .iter()
        .rposition(|&b| b != b'_')
        .map_or(first, |e| e + 1);
    let trimmed = identifier.get(first..end).unwrap_or_default();
    // Trimmed, it starts and ends with a word: an inner `_` means two words or more.
    if trimmed.contains(&b'_') {
        push_ascii(lower, first, end, emit);
    }
    let mut word_start = first;
    for word in trimmed.split(|&b| b == b'_') {
        if !word.is_empty() {
            ascii_word(word, word_start, lower, may_split, emit);
        }
        word_start += word.len() + 1;
    }
}

/// Rule 3 for a word at byte `start` of an ASCII identifier, whose lowercase is `lower`.
fn ascii_word(
    word: &[u8],
    start: usize,
    lower: &str,
    may_split: bool,
    emit: &mut impl FnMut(&str),
) {
    push_ascii(lower, start, start + word.len(), emit);
    if !may_split {
        return;
    }
    // A window of three classes: `a` before the boundary, `b` after it.
    let mut classes = word.iter().map(|&b| byte_class(b));
    let (Some(mut a), Some(mut b)) = (classes.next(), classes.next()) else {
        return;
    };
    let mut part_start = 0;
    let mut at = 1;
    loop {
        let after_b = classes.next();
        let boundary = (a == LOWER && b == UPPER)
            || (a == UPPER && b == UPPER && after_b == Some(LOWER))
            || ((a == DIGIT) != (b == DIGIT));
        if boundary {
            push_ascii(lower, start + part_start, start + at, emit);
            part_start = at;
        }
        let Some(next) = after_b else {
            break;
        };
        (a, b) = (b, next);
        at += 1;
    }
    if part_start > 0 {
        push_ascii(lower, start + part_start, start + word.len(), emit);
    }
}

/// Emits `lower[start..end]` (non-empty) unless it is too long.
fn push_ascii(lower: &str, start: usize, end: usize, emit: &mut impl FnMut(&str)) {
    if end - start <= TOKEN_BYTES_MAX
        && let Some(token) = lower.get(start..end)
    {
        emit(token);
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
