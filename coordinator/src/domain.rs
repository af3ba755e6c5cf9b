//! The domain error: what the pure modules (planning, dispatch, cron rules) refuse, with no
//! transport or storage type inside. [`crate::Error`] wraps it at the edges, and its one
//! table maps it to a gRPC status and an exit code like every other error.

/// What a pure module refuses; messages are lowercase and name the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A cron expression that does not parse.
    #[error("cron expression '{expr}': {message}")]
    Cron {
        /// The expression (a bounded prefix).
        expr: String,
        /// What is wrong with it.
        message: String,
    },
    /// A time zone that is not an IANA name.
    #[error("unknown time zone '{0}' (expected an IANA name such as UTC or Europe/Berlin)")]
    UnknownZone(String),
}
