//! Inputs for the parsers' property tests (the result and preset parsers here, the agent's and
//! the coordinator's config parsers, which include this file by path): arbitrary text, and
//! valid documents with a few edits — deletions, insertions of tokens that parsers trip on,
//! truncation, replaced and duplicated spans — applied at character boundaries.

use proptest::prelude::*;

/// One edit of a document; positions are taken modulo its length in characters.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Removes up to `n` characters at `at`.
    Delete(usize, usize),
    /// Inserts text at `at`.
    Insert(usize, String),
    /// Keeps the first `at` characters.
    Truncate(usize),
    /// Replaces the character at `at`.
    Replace(usize, char),
    /// Repeats the `n` characters at `at` right after them.
    Duplicate(usize, usize),
}

/// Tokens parsers trip on, and short arbitrary text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "NaN",
            "nan",
            "inf",
            "-inf",
            "1e999",
            "-1",
            "-0",
            "0",
            "1e308",
            "\"\"",
            "null",
            "[]",
            "{}",
            "[x]",
            "\n[x]\n",
            "=",
            "\"",
            "'",
            ",",
            ":",
            "\\u0000",
            "\u{fffd}",
            "é",
            "18446744073709551616",
            "-9223372036854775809",
            "true",
        ])
        .prop_map(str::to_string),
        "9{300}",
        ".{0,16}",
    ]
}

/// One edit.
pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), piece()).prop_map(|(at, s)| Edit::Insert(at, s)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        (any::<usize>(), 1usize..200).prop_map(|(at, n)| Edit::Duplicate(at, n)),
    ]
}

/// `text` with `edits` applied in order.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let len = chars.len().max(1);
        match e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                if at < end {
                    chars.drain(at..end);
                }
            }
            Edit::Insert(at, s) => {
                let at = (at % (chars.len() + 1)).min(chars.len());
                chars.splice(at..at, s.chars());
            }
            Edit::Truncate(at) => chars.truncate(at % len),
            Edit::Replace(at, c) => {
                if let Some(x) = chars.get_mut(at % len) {
                    *x = *c;
                }
            }
            Edit::Duplicate(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                if at < end {
                    let copy: Vec<char> = chars[at..end].to_vec();
                    chars.splice(end..end, copy);
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// A valid document with one to four edits.
pub fn mutated(valid: String) -> impl Strategy<Value = String> {
    prop::collection::vec(edit(), 1..=4).prop_map(move |edits| apply(&valid, &edits))
}

/// Arbitrary text: printable, any Unicode, or bytes read as UTF-8 lossily.
pub fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~\n]{0,256}",
        ".{0,128}",
        prop::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}
