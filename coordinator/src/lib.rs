//! The fleetcal coordinator: registers agents, plans and schedules calibration campaigns,
//! stores results, and serves `fleetcal.v1` over gRPC; `fleetctl` is its admin CLI.
//!
//! - [`model`], [`plan`], [`dispatch`], [`cron`], [`aggregate`]: plain synchronous domain
//!   logic; [`domain`]: the error they return;
//! - [`store`]: durable state (SQLite, PostgreSQL) behind [`store::Store`];
//! - [`server`]: the gRPC edge (agent and admin services, health, reflection, the driver)
//!   and the web edge (`server::http`: pages, JSON/CSV, `/metrics`);
//! - [`render`]: report models drawn as HTML pages with SVG plots;
//! - [`config`]: `fleetcal-coordinator serve` settings; [`fleetctl`]: the admin CLI;
//! - [`validate`]: the checks at the edges (registrations, ids, result times), pure;
//! - [`par`]: CPU work of many boards spread over the cores;
//! - [`tls`]: the server's TLS and mutual TLS files (clients dial through
//!   [`fleetcal_proto::dial`]).

pub mod aggregate;
pub mod app;
pub mod config;
pub mod cron;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod fleet;
pub mod fleetctl;
/// The parsers' fuzzing inputs, shared with proto's property tests.
#[cfg(test)]
#[path = "../../proto/src/fuzz_tests.rs"]
mod fuzz_tests;
pub mod model;
pub mod par;
pub mod pki;
pub mod plan;
pub mod render;
pub mod server;
pub mod store;
pub mod tls;
pub mod validate;

pub use error::Error;
