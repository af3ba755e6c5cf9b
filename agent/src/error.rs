//! The one error enum of the agent library, and its exit codes.

use fleetcal_proto::{ContractError, DialError};

use crate::bench::Cancelled;

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
    /// The run ended without a single measured figure (every one failed, was skipped or is
    /// unsupported): there is no result to write or upload.
    #[error("no figure was measured: {0}")]
    NothingMeasured(String),
    /// Talking to the coordinator failed.
    #[error("coordinator: {0}")]
    Link(String),
    /// How to dial the coordinator: its URL and the TLS settings disagree, or a TLS file (CA
    /// certificate, certificate, key) cannot be read or parsed. The message ends with where
    /// the agent takes the setting from.
    #[error("{0}{hint}", hint = dial_hint(.0))]
    Dial(DialError),
    /// The run was cancelled before it finished (`cancelled: <reason>`); nothing was written.
    /// Only the daemon's worker cancels runs (the coordinator withdrew the run, or its time
    /// limit passed); `calibrate` never does.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
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
    /// 2 usage and bad input, 3 framework/device/platform refusals, 4 engine failures and
    /// runs that measured nothing, 5 coordinator link, 6 I/O. A cancelled run (the daemon's, never `calibrate`'s) counts
    /// as an unfinished run, 4.
    pub fn exit_code(&self) -> u8 {
        match self {
            AgentError::Contract(_) | AgentError::Usage(_) | AgentError::Dial(_) => 2,
            AgentError::Framework(_) | AgentError::FallbackRefused(_) | AgentError::Platform(_) => {
                3
            }
            AgentError::Engine(_) | AgentError::NothingMeasured(_) | AgentError::Cancelled(_) => 4,
            AgentError::Link(_) => 5,
            AgentError::Io { .. } => 6,
        }
    }
}

impl From<fleetcal_files::FileError> for AgentError {
    /// A file error: its path and cause ([`AgentError::Io`]); a path the output rule refuses
    /// is a usage error naming it.
    fn from(e: fleetcal_files::FileError) -> AgentError {
        match e {
            fleetcal_files::FileError::Io { path, source } => AgentError::Io { path, source },
            fleetcal_files::FileError::Refused { path, what } => {
                AgentError::Usage(format!("{}: {what}", path.display()))
            }
        }
    }
}

impl From<DialError> for AgentError {
    fn from(e: DialError) -> AgentError {
        AgentError::Dial(e)
    }
}

/// Where `fleetcal-agent run` takes the setting a [`DialError`] is about: a flag, its
/// environment variable, or the config file's `[tls]` table.
fn dial_hint(e: &DialError) -> &'static str {
    match e {
        DialError::CertWithoutKey { .. } => " (--key FILE or [tls] key)",
        DialError::KeyWithoutCert { .. } => " (--cert FILE or [tls] cert)",
        DialError::HttpsWithoutCa { .. } => {
            " (pass --ca-cert FILE, FLEETCAL_CA_CERT or [tls] ca_cert)"
        }
        DialError::ServerNameOnPlainHttp { .. } | DialError::InvalidServerName { .. } => {
            " (set by --tls-server-name, FLEETCAL_TLS_SERVER_NAME or [tls] server_name)"
        }
        DialError::Url { .. } | DialError::UrlCount { .. } => {
            " (set by --coordinator, FLEETCAL_COORDINATOR or 'coordinator' in the config file)"
        }
        DialError::TlsOnPlainHttp { .. } | DialError::File { .. } | DialError::TlsConfig { .. } => {
            ""
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_errors_are_bad_input_and_say_where_to_set_it() {
        let e = AgentError::from(DialError::HttpsWithoutCa {
            url: "https://c:1".into(),
        });
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("'https://c:1' is https") && e.contains("[tls] ca_cert"),
            "{e}"
        );
        let e = AgentError::from(DialError::KeyWithoutCert {
            key: "a.key".into(),
        });
        assert_eq!(
            e.to_string(),
            "client key a.key needs its certificate (--cert FILE or [tls] cert)"
        );
        let e = AgentError::from(DialError::File {
            role: "ca certificate".into(),
            path: "junk.pem".into(),
            message: "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        });
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().starts_with("tls ca certificate junk.pem: "),
            "{e}"
        );
        let e = AgentError::from(DialError::ServerNameOnPlainHttp {
            url: "http://c:1".into(),
            name: "c.lab".into(),
        });
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().ends_with(
                "(set by --tls-server-name, FLEETCAL_TLS_SERVER_NAME or [tls] server_name)"
            ),
            "{e}"
        );
    }
}
