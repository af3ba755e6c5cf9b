//! The one error enum of the contract crate, and [`quote`], how every fleetcal error message
//! quotes a value it refuses.

use std::path::PathBuf;

/// The most characters of a refused value an error message shows (see [`quote`]).
pub const QUOTE_CHARS: usize = 64;

/// A refused value as error messages show it: in single quotes, control characters escaped,
/// at most [`QUOTE_CHARS`] characters; a longer value is cut there and followed by `…` and
/// its whole length (`'aaaa…' (100000 bytes)`), so a message never grows with its input.
pub fn quote(value: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in value.chars().enumerate() {
        if i == QUOTE_CHARS {
            out.push_str(&format!("…' ({} bytes)", value.len()));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A refused number as error messages show it: plainly when that is short (`-1`, `0.5`,
/// `NaN`, `inf`), in exponent form when its magnitude is 1e9 or more or below 1e-6 (`1e308`,
/// not 309 digits).
pub fn quote_number(v: f64) -> String {
    let a = v.abs();
    if a.is_finite() && a != 0.0 && !(1e-6..1e9).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Everything that can go wrong while reading or validating contract data.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A name that is not one of the accepted values of a vocabulary type.
    #[error("unknown {what} {} (expected one of: {expected})", quote(.got))]
    UnknownName {
        /// What kind of name it is ("precision", "framework", ...).
        what: &'static str,
        /// The offending input, as a bounded prefix ([`crate::quote::bounded`]).
        got: String,
        /// The accepted names, comma separated.
        expected: String,
    },
    /// A preset file that cannot be parsed or fails validation.
    #[error("preset {path}: {message}")]
    Preset {
        /// The file, or the preset id when it did not come from a file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A preset id that no file provides.
    #[error("unknown preset {} (known: {known})", quote(.id))]
    UnknownPreset {
        /// The requested id, as a bounded prefix ([`crate::quote::bounded`]).
        id: String,
        /// The ids that exist.
        known: String,
    },
    /// A result document that cannot be parsed or fails validation.
    #[error("result {source_name}: {message}")]
    Result {
        /// Where the document came from (a path or "upload").
        source_name: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// numpy asked for (or a preset's default) on a cuda device: NumPy has no GPU support.
    #[error("framework 'numpy' cannot run on a cuda device: numpy has no GPU support (use pytorch, or a cpu preset)")]
    NumpyOnCuda,
    /// A framework whose engine the board does not have.
    #[error("framework '{framework}' is not built into this agent (it has: {engines})")]
    NoEngine {
        /// The framework asked for.
        framework: crate::Framework,
        /// The engines the board has.
        engines: crate::framework::Engines,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_bounds_and_escapes() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote("a\nb"), "'a\\nb'");
        let exact = "x".repeat(QUOTE_CHARS);
        assert_eq!(quote(&exact), format!("'{exact}'"));
        let long = "é".repeat(100_000);
        let q = quote(&long);
        assert_eq!(q, format!("'{}…' (200000 bytes)", "é".repeat(QUOTE_CHARS)));
        assert!(q.len() < 200);
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(quote_number(-1.0), "-1");
        assert_eq!(quote_number(0.5), "0.5");
        assert_eq!(quote_number(0.0), "0");
        assert_eq!(quote_number(f64::NAN), "NaN");
        assert_eq!(quote_number(f64::NEG_INFINITY), "-inf");
        assert_eq!(quote_number(1e308), "1e308");
        assert_eq!(quote_number(-2.5e-300), "-2.5e-300");
        assert_eq!(quote_number(f64::MAX).len(), "1.7976931348623157e308".len());
    }
}
