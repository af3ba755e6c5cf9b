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

/// `text` in single quotes, cut as [`bounded`] cuts it: `'abc'`, `'xxxx…'`. The form every
/// refusal that names a value uses.
pub fn quoted(text: &str) -> String {
    format!("'{}'", bounded(text))
}

/// A number as an error message shows it: plainly when that is short (`-1`, `0.5`, `NaN`,
/// `inf`), in exponent form when its magnitude is 1e9 or more or below 1e-6 (`1e308`, not
/// 309 digits).
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a.is_finite() && a != 0.0 && !(1e-6..1e9).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
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

    #[test]
    fn quoted_values_and_numbers_stay_short() {
        assert_eq!(quoted("abc"), "'abc'");
        let q = quoted(&"é".repeat(100_000));
        assert_eq!(q, format!("'{}…'", "é".repeat(QUOTE_CHARS)));
        assert_eq!(number(-1.0), "-1");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "-inf");
        assert_eq!(number(1e308), "1e308");
        assert_eq!(number(-2.5e-300), "-2.5e-300");
        assert_eq!(number(f64::MAX).len(), "1.7976931348623157e308".len());
    }
}
