//! The one error enum of the coordinator library, and the one table that maps errors to gRPC
//! status codes and process exit codes.

use std::path::PathBuf;

use fleetcal_proto::dial::{error_chain, DialError};
use tonic::Code;

use crate::domain::DomainError;

/// The one table: every gRPC code an error can carry, the exit code a process ends with when
/// it fails with it, and what the class means. `fleetcal-coordinator` and `fleetctl` both
/// exit through it; codes not listed exit with 1.
pub const EXIT_TABLE: &[(Code, u8, &str)] = &[
    (Code::Internal, 1, "internal or storage error"),
    (
        Code::InvalidArgument,
        2,
        "invalid input (flag, config, request, result)",
    ),
    (
        Code::NotFound,
        3,
        "unknown campaign, run, agent, schedule, alert or enrollment request",
    ),
    (
        Code::FailedPrecondition,
        4,
        "unregistered agent, run not accepting, nothing selected, agent running a run, alert \
         not open, enrollment request decided or too many waiting",
    ),
    (
        Code::PermissionDenied,
        5,
        "another agent's run, or a call the caller's certificate may not make",
    ),
    (Code::OutOfRange, 6, "message larger than the 16 MiB limit"),
    (
        Code::ResourceExhausted,
        6,
        "message larger than the 16 MiB limit",
    ),
    (
        Code::Unavailable,
        7,
        "coordinator unreachable or address unusable",
    ),
    (Code::Aborted, 8, "campaign finished with unsuccessful runs"),
    (Code::DeadlineExceeded, 9, "timed out"),
    (Code::AlreadyExists, 10, "a schedule of that name exists"),
];

/// The exit code for a gRPC code, from [`EXIT_TABLE`].
pub fn exit_code_for(code: Code) -> u8 {
    EXIT_TABLE
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or(1, |(_, exit, _)| *exit)
}

/// The HTTP status the web side answers an error with, by its gRPC code (the row of
/// [`EXIT_TABLE`] it belongs to): bad input 400, unknown 404, refused 409, another's 403,
/// too large 413, unreachable 503, timed out 504, everything else 500.
pub fn http_status_for(code: Code) -> u16 {
    match code {
        Code::InvalidArgument => 400,
        Code::NotFound => 404,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::OutOfRange | Code::ResourceExhausted => 413,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        _ => 500,
    }
}

/// Everything that can go wrong in the coordinator and fleetctl.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A database operation failed.
    #[error("storage: {context}: {source}")]
    Storage {
        /// What was being done.
        context: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("storage: migrating {url}: {source}")]
    Migrate {
        /// The database (password elided).
        url: String,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
    /// A database URL that is neither `sqlite://` nor `postgres://`.
    #[error("unsupported database url '{0}' (expected sqlite://PATH or postgres://...)")]
    DatabaseUrl(String),
    /// A malformed configuration file or flag.
    #[error("config {path}: {message}")]
    Config {
        /// The file (or `<flags>`).
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// What a use case refuses (unknown ids, bad requests and results, runs not accepting):
    /// the domain error, wrapped.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Contract data (presets, results) that fails to load.
    #[error(transparent)]
    Contract(#[from] fleetcal_proto::ContractError),
    /// An I/O error on a named file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// How fleetctl is told to dial (its URL and TLS flags disagree), or a TLS file (the
    /// server's or a client's certificate, key, CA) that cannot be read or parsed. The message
    /// ends with the flag that sets what is missing.
    #[error("{0}{hint}", hint = dial_hint(.0))]
    Dial(DialError),
    /// The server's TLS files do not work together (a key that does not fit its certificate).
    #[error("tls {role} {path}: {message}")]
    Tls {
        /// What the files are for ("server key", "server certificate and key").
        role: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The gRPC transport failed (connecting, serving); the message carries the whole cause
    /// chain (a refused connection, a TLS alert) and a hint about TLS when one may help.
    #[error("transport to {target}: {}{hint}", error_chain(.source))]
    Transport {
        /// The address or URL.
        target: String,
        /// The underlying error.
        source: tonic::transport::Error,
        /// Appended to the message (empty, or a hint about TLS).
        hint: &'static str,
    },
    /// The connection was made but the first call failed: a refused client certificate, a
    /// plain-http client talking to a TLS server, or the reverse.
    #[error("coordinator {target} did not answer: {message}{hint}")]
    Unreachable {
        /// The URL.
        target: String,
        /// The failure and its causes.
        message: String,
        /// Appended to the message (empty, or a hint about TLS).
        hint: &'static str,
    },
    /// `fleetctl health`: the coordinator answered but is not serving (it is shutting down).
    #[error("coordinator {target} is {status}")]
    NotServing {
        /// The URL.
        target: String,
        /// The health status it reported.
        status: String,
    },
    /// The coordinator answered a fleetctl call with an error status.
    #[error("coordinator: {}", .0.message())]
    Remote(tonic::Status),
    /// `fleetctl campaign status --wait` saw runs end unsuccessfully.
    #[error("campaign '{id}' finished with {unsuccessful} unsuccessful run(s)")]
    CampaignUnsuccessful {
        /// The campaign.
        id: String,
        /// Runs that failed, timed out, were skipped or whose agent stayed offline.
        unsuccessful: u32,
    },
    /// A call the caller may not make (an agent certificate acting as another agent or
    /// calling the admin service, a caller without the role): PERMISSION_DENIED.
    #[error("permission denied: {caller} may not {attempt}")]
    Denied {
        /// Who called (the certificate's role or subject).
        caller: String,
        /// What it tried.
        attempt: String,
    },
    /// Making or signing a certificate (`fleetctl pki`, enrollment) failed: a bad name or
    /// lifetime, an unreadable CA, an output file that exists.
    #[error("pki: {0}")]
    Pki(String),
}

impl Error {
    /// Wraps a driver error with what was being done.
    pub fn storage(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let context = context.into();
        move |source| Error::Storage { context, source }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::Storage { .. } | Error::Migrate { .. } | Error::Io { .. } => Code::Internal,
            Error::DatabaseUrl(_)
            | Error::Config { .. }
            | Error::Dial(_)
            | Error::Tls { .. }
            | Error::Contract(_) => Code::InvalidArgument,
            Error::Domain(e) => domain_code(e),
            Error::Bind { .. }
            | Error::Transport { .. }
            | Error::Unreachable { .. }
            | Error::NotServing { .. } => Code::Unavailable,
            Error::Remote(status) => status.code(),
            Error::CampaignUnsuccessful { .. } => Code::Aborted,
            Error::Denied { .. } => Code::PermissionDenied,
            Error::Pki(_) => Code::InvalidArgument,
        }
    }

    /// The process exit code of this error, from [`EXIT_TABLE`].
    pub fn exit_code(&self) -> u8 {
        exit_code_for(self.code())
    }
}

/// The gRPC code of a domain error: its row of the one table.
fn domain_code(e: &DomainError) -> Code {
    match e {
        DomainError::InvalidRequest(_)
        | DomainError::InvalidResult { .. }
        | DomainError::Cron { .. }
        | DomainError::UnknownZone(_) => Code::InvalidArgument,
        DomainError::UnknownRun(_)
        | DomainError::UnknownCampaign(_)
        | DomainError::UnknownSchedule(_)
        | DomainError::AgentNotFound(_)
        | DomainError::UnknownAlert(_)
        | DomainError::NoEnrollmentRequest(_) => Code::NotFound,
        DomainError::ScheduleExists(_) => Code::AlreadyExists,
        DomainError::UnknownAgent(_)
        | DomainError::RunNotAccepting { .. }
        | DomainError::NoAgentsMatch(_)
        | DomainError::AgentRunning { .. }
        | DomainError::AlertNotActionable { .. }
        | DomainError::Quarantined { .. }
        | DomainError::TooManyPending { .. }
        | DomainError::EnrollmentDecided { .. } => Code::FailedPrecondition,
        DomainError::NotYourRun { .. } => Code::PermissionDenied,
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        match e {
            Error::Remote(status) => status,
            other => tonic::Status::new(other.code(), other.to_string()),
        }
    }
}

impl From<DomainError> for tonic::Status {
    fn from(e: DomainError) -> tonic::Status {
        Error::from(e).into()
    }
}

impl From<DialError> for Error {
    fn from(e: DialError) -> Error {
        match e {
            // tonic refusing the TLS configuration has always been a transport error (exit 7).
            DialError::TlsConfig { url, source } => Error::Transport {
                target: url,
                source,
                hint: "",
            },
            other => Error::Dial(other),
        }
    }
}

/// The fleetctl flag (and environment variable) that sets what a [`DialError`] says is missing.
fn dial_hint(e: &DialError) -> &'static str {
    match e {
        DialError::CertWithoutKey { .. } => " (--key FILE)",
        DialError::KeyWithoutCert { .. } => " (--cert FILE)",
        DialError::HttpsWithoutCa { .. } => " (pass --ca-cert FILE; env FLEETCAL_CA_CERT)",
        DialError::ServerNameOnPlainHttp { .. } | DialError::InvalidServerName { .. } => {
            " (set by --tls-server-name or env FLEETCAL_TLS_SERVER_NAME)"
        }
        DialError::UrlCount { .. } => " (--coordinator URL[,URL...]; env FLEETCAL_COORDINATOR)",
        DialError::TlsOnPlainHttp { .. }
        | DialError::File { .. }
        | DialError::Url { .. }
        | DialError::TlsConfig { .. } => "",
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Error {
        Error::Remote(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_codes_to_distinct_exits_and_errors_follow_it() {
        assert_eq!(exit_code_for(Code::InvalidArgument), 2);
        assert_eq!(exit_code_for(Code::Cancelled), 1);
        let e = Error::from(DomainError::NotYourRun {
            run: "r1".into(),
            agent: "a2".into(),
        });
        assert_eq!(e.code(), Code::PermissionDenied);
        assert_eq!(e.exit_code(), 5);
        let status: tonic::Status = DomainError::UnknownAgent("x9".into()).into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("'x9'"), "{}", status.message());
        assert_eq!(Error::from(status).exit_code(), 4);
        let taken = Error::from(DomainError::ScheduleExists("nightly".into()));
        assert_eq!((taken.code(), taken.exit_code()), (Code::AlreadyExists, 10));
        let unknown = Error::from(DomainError::UnknownSchedule("nightly".into()));
        assert_eq!((unknown.code(), unknown.exit_code()), (Code::NotFound, 3));
        assert_eq!(unknown.to_string(), "no schedule 'nightly'");
    }

    #[test]
    fn http_statuses_follow_the_table() {
        let bad = Error::from(DomainError::InvalidRequest("x".into()));
        assert_eq!(http_status_for(bad.code()), 400);
        let unknown = Error::from(DomainError::UnknownCampaign("c".into()));
        assert_eq!(http_status_for(unknown.code()), 404);
        assert_eq!(http_status_for(Code::Internal), 500);
    }

    #[test]
    fn dial_errors_are_invalid_input_and_name_the_flag() {
        let e = Error::from(DialError::CertWithoutKey {
            cert: "a.pem".into(),
        });
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "client certificate a.pem needs its key (--key FILE)"
        );
        let e = Error::from(DialError::HttpsWithoutCa {
            url: "https://c:1".into(),
        });
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = e.to_string();
        assert!(
            e.contains("'https://c:1' is https") && e.contains("--ca-cert"),
            "{e}"
        );
        let e = Error::from(DialError::File {
            role: "client ca".into(),
            path: "x.pem".into(),
            message: "cannot read it".into(),
        });
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "tls client ca x.pem: cannot read it");
        let e = Error::from(DialError::InvalidServerName { name: "a b".into() });
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "tls server name 'a b' is not a dns name or an ip address (set by \
             --tls-server-name or env FLEETCAL_TLS_SERVER_NAME)"
        );
    }
}
