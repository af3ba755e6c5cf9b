//! The one error enum of the contract crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading or validating contract data.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A name that is not one of the accepted values of a vocabulary type.
    #[error("unknown {what} '{got}' (expected one of: {expected})")]
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
    #[error("unknown preset '{id}' (known: {known})")]
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
