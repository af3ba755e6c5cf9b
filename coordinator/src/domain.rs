//! The domain error: what the use cases and the pure modules (validation, planning, dispatch,
//! cron rules) refuse, with no transport or storage type inside. [`crate::Error`] wraps it
//! beside the storage, transport and file errors, and its one table maps it to a gRPC status
//! and an exit code like every other error.

/// What a use case refuses; messages are lowercase and name the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// An agent id that never registered.
    #[error("unknown agent '{0}' (it must call Register first)")]
    UnknownAgent(String),
    /// `RemoveAgent` of an id that is not a registered (and not removed) agent.
    #[error("no agent '{0}' is registered")]
    AgentNotFound(String),
    /// `RemoveAgent` of an agent that is running a run.
    #[error(
        "agent '{agent}' is running run '{run}': remove it once that run ended (or timed out)"
    )]
    AgentRunning {
        /// The agent.
        agent: String,
        /// Its running run.
        run: String,
    },
    /// A run id that does not exist.
    #[error("unknown run '{0}'")]
    UnknownRun(String),
    /// A campaign id that does not exist.
    #[error("unknown campaign '{0}'")]
    UnknownCampaign(String),
    /// An agent acting on a run assigned to another agent.
    #[error("run '{run}' is not assigned to agent '{agent}'")]
    NotYourRun {
        /// The run.
        run: String,
        /// The agent that asked.
        agent: String,
    },
    /// A result document that fails validation or disagrees with the run's plan.
    #[error("invalid result for run '{run}': {message}")]
    InvalidResult {
        /// The run.
        run: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A result or progress report for a run that is no longer running.
    #[error("run '{run}' is {state}, not running: {what} not accepted")]
    RunNotAccepting {
        /// The run.
        run: String,
        /// Its current state.
        state: String,
        /// What was refused ("result", "progress").
        what: &'static str,
    },
    /// A malformed request field; the message names the field and the input.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A campaign selector that matches no registered agent.
    #[error("selector {0} matches no registered agent")]
    NoAgentsMatch(String),
    /// A cron expression that does not parse.
    #[error("cron expression '{expr}': {message}")]
    Cron {
        /// The expression (a bounded prefix).
        expr: String,
        /// What is wrong with it.
        message: String,
    },
    /// A schedule name that does not exist.
    #[error("no schedule '{0}'")]
    UnknownSchedule(String),
    /// `AddSchedule` with a name that is taken.
    #[error("a schedule named '{0}' exists already (remove it first to replace it)")]
    ScheduleExists(String),
    /// A time zone that is not an IANA name.
    #[error("unknown time zone '{0}' (expected an IANA name such as UTC or Europe/Berlin)")]
    UnknownZone(String),
    /// An alert id that does not exist.
    #[error("no alert '{0}'")]
    UnknownAlert(String),
    /// Acknowledging or dismissing an alert that is not in a state that allows it.
    #[error("alert '{id}' is {state}: it cannot be {action}")]
    AlertNotActionable {
        /// The alert.
        id: String,
        /// Its current state.
        state: &'static str,
        /// What was refused ("acknowledged", "dismissed").
        action: &'static str,
    },
    /// A call of an agent id quarantined as a cloned board (two agent processes claim it).
    #[error("agent '{agent}' is quarantined as a cloned board ({reason}); to re-identify the clone: {remedy}")]
    Quarantined {
        /// The agent id.
        agent: String,
        /// Why it was quarantined.
        reason: String,
        /// What the operator does about it.
        remedy: String,
    },
    /// An enrollment request without a join token while the bound of waiting ones is reached.
    #[error(
        "{limit} enrollment requests wait for approval already: approve or deny them \
         (fleetctl agents approve|deny ID), or enroll with a join token"
    )]
    TooManyPending {
        /// The bound.
        limit: u32,
    },
    /// `fleetctl agents approve|deny` of an id no enrollment request was made for.
    #[error("no enrollment request of agent '{0}' (fleetctl agents lists the pending ones)")]
    NoEnrollmentRequest(String),
    /// `fleetctl agents approve|deny` of a request decided already.
    #[error("the enrollment request of agent '{agent}' is {state} already")]
    EnrollmentDecided {
        /// The agent id.
        agent: String,
        /// Its state.
        state: &'static str,
    },
}
