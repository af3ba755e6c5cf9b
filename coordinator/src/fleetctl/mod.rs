//! `fleetctl`, the coordinator's admin CLI: tables for people, `--json` for scripts.

pub mod agents;
pub mod alerts;
pub mod campaign;
pub mod cli;
pub mod client;
pub mod duration;
pub mod export;
pub mod report;
pub mod runs;
pub mod schedule;
pub mod table;

pub use cli::run;
