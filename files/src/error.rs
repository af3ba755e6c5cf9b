//! The one error of this library.

use std::path::PathBuf;

/// A file could not be written, or a path is not one a document may be written to.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// An I/O error on a named file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path is not one a document is written to (a socket, a block device, a symbolic
    /// link to nothing, a directory where a file is wanted, a missing directory).
    #[error("{}: {what}", path.display())]
    Refused {
        /// The path as given.
        path: PathBuf,
        /// What it is (`is a socket`).
        what: String,
    },
}
