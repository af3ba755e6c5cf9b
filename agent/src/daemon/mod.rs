//! `fleetcal-agent run`: the fleet agent.
//!
//! The agent dials out to its coordinator (it never listens), registers with its labels,
//! preset and capabilities, and keeps a directive stream open; it runs the plans it receives
//! one at a time and uploads each result, which waits in the spool until acknowledged.
//!
//! - [`args`]: the `run` flags ([`RunArgs`]) and their merge with the config file.
//! - [`config`]: the versioned TOML config file.
//! - [`options`]: the resolved [`RunOptions`], the default state dir, `--labels`.
//! - [`identity`]: the stable agent id in `<state-dir>/agent-id`.
//! - [`spool`]: results not yet acknowledged, `<state-dir>/spool/<run_id>.json`.
//! - [`link`]: the connection state machine with capped, jittered backoff.
//! - [`renew`]: renews an enrolled certificate two thirds into its lifetime, without a
//!   restart.
//! - [`rpc`]: the calls to the coordinator (dialled, over TLS too, through
//!   [`fleetcal_proto::dial`]).
//! - [`clock`]: the clock floor the coordinator's certificate is checked with (boards at 1970).
//! - [`enroll`]: enrollment with a join token or by approval.
//! - [`capabilities`]: what Register announces.
//! - [`plan`]: a coordinator plan as a calibration request.
//! - [`worker`]: one plan at a time, idempotent by run id; cancels a run no longer wanted.
//! - [`uploader`]: drains the spool.
//! - [`shutdown`]: SIGTERM and SIGINT.
//! - [`service`]: the daemon loop, [`run`] and [`run_blocking`].

pub mod args;
pub mod capabilities;
pub mod clock;
pub mod config;
pub mod enroll;
pub mod identity;
pub mod link;
pub mod options;
pub mod plan;
pub mod renew;
pub mod rpc;
pub mod service;
pub mod shutdown;
pub mod spool;
pub mod uploader;
pub mod worker;

#[cfg(test)]
pub(crate) mod fake_coordinator;

pub use args::RunArgs;
pub use options::RunOptions;
pub use service::{run, run_blocking};
