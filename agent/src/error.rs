//! The one error enum of the agent library, and its exit codes.

use fleetcal_proto::ContractError;

/// Everything the agent reports to its user.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A contract error: bad preset, bad result file, unknown name.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// A command-line or config value that is not acceptable.
    #[error("{0}")]
    Usage(String),
    /// The framework cannot serve this device, or is not built in.
    #[error("{0}")]
    Framework(String),
    /// The requested device is not available and the fallback was not accepted.
    #[error("device fallback refused: {0}")]
    FallbackRefused(String),
    /// The host does not match the preset (and the check was not skipped).
    #[error("platform check failed: {0}")]
    Platform(String),
    /// An engine failed outside a single figure.
    #[error("engine: {0}")]
    Engine(String),
    /// Talking to the coordinator failed.
    #[error("coordinator: {0}")]
    Link(String),
    /// A TLS file (CA certificate, certificate, key) that cannot be read or parsed.
    #[error("tls {role} {path}: {message}")]
    Tls {
        /// What the file is for ("ca certificate", "client key", ...).
        role: String,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl AgentError {
    /// The process exit code for this error (the one table, documented in the README):
    /// 2 usage and bad input, 3 framework/device/platform refusals, 4 engine failures,
    /// 5 coordinator link, 6 I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            AgentError::Contract(_) | AgentError::Usage(_) | AgentError::Tls { .. } => 2,
            AgentError::Framework(_) | AgentError::FallbackRefused(_) | AgentError::Platform(_) => {
                3
            }
            AgentError::Engine(_) => 4,
            AgentError::Link(_) => 5,
            AgentError::Io { .. } => 6,
        }
    }
}
