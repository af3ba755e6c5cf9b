//! The coordinator's integration tests: one binary, one module per concern.
//!
//! - `support`: spawn the coordinator binary on 127.0.0.1:0, real clients, fleetctl, results;
//! - `pg`: a throw-away PostgreSQL cluster;
//! - `storage`: the storage suite against SQLite and PostgreSQL;
//! - `fleet`: the real coordinator, real `fleetcal-agent run` processes and fleetctl together;
//! - `edges`: validation at the edges: bad registrations, ids and results refused, bounded;
//! - `grpc`: error paths, idempotent uploads, export, oversized messages, health, reflection;
//! - `lifecycle`: refused/failed/timed-out/offline runs, graceful shutdown, restart;
//! - `schedules`: cron schedules firing campaigns: catch-up after a restart, pause, resume,
//!   run-now, remove, busy and offline boards, two coordinators on one PostgreSQL;
//! - `reports`: fleet reports in every format over fleetctl and HTTP, and a drift alert
//!   confirmed by the coordinator's own one-board run, on real agents (one with the torch
//!   engine) and a board really made slower;
//! - `wait`: `fleetctl campaign status --wait` rides out a coordinator restart;
//! - `tls`: TLS and mutual TLS with certificates from `fleetctl pki init`;
//! - `trust`: roles bound to certificates (an agent acts as its own id only, never as admin),
//!   plain text only with `--insecure-plaintext`;
//! - `http`: the web side (`--http`): every page in headless Chromium with screenshots,
//!   JSON/CSV, bad parameters, `/metrics` through a Prometheus text-format parser, HTTPS with
//!   the gRPC side's certificate, and the one shutdown.

mod edges;
mod fleet;
mod grpc;
mod http;
mod lifecycle;
mod pg;
mod reports;
mod schedules;
mod storage;
mod support;
mod tls;
mod trust;
mod wait;
