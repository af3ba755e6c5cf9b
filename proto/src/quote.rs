//! Quoting untrusted input in messages: at most a bounded prefix, never the whole value.

/// The most characters of an offending value an error message quotes.
pub const QUOTE_CHARS: usize = 64;

/// `text` as an error message may quote it: its first [`QUOTE_CHARS`] characters, then `…`
/// when it was longer. Control characters are escaped so that a value cannot forge log lines.
pub fn bounded(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == QUOTE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_marked() {
        assert_eq!(bounded("http://c:1"), "http://c:1");
        let long = "x".repeat(1_000_000);
        let q = bounded(&long);
        assert_eq!(q.chars().count(), QUOTE_CHARS + 1);
        assert!(q.ends_with('…'));
        assert_eq!(bounded(&"y".repeat(QUOTE_CHARS)), "y".repeat(QUOTE_CHARS));
        assert_eq!(bounded("a\nb"), "a\\nb");
        assert_eq!(bounded(""), "");
    }
}
