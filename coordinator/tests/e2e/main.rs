//! The coordinator's integration tests: one binary, one module per concern.
//!
//! - `support`: spawn the coordinator binary on 127.0.0.1:0, real clients, fleetctl, results;
//! - `pg`: a throw-away PostgreSQL cluster;
//! - `storage`: the storage suite against SQLite and PostgreSQL;
//! - `fleet`: the real coordinator, real `fleetcal-agent run` processes and fleetctl together;
//! - `edges`: validation at the edges: bad registrations, ids and results refused, bounded;
//! - `grpc`: error paths, idempotent uploads, export, oversized messages, health, reflection;
//! - `lifecycle`: refused/failed/timed-out/offline runs, graceful shutdown, restart;
//! - `wait`: `fleetctl campaign status --wait` rides out a coordinator restart;
//! - `tls`: TLS and mutual TLS with certificates from `deploy/certs/gen-certs`.

mod edges;
mod fleet;
mod grpc;
mod lifecycle;
mod pg;
mod storage;
mod support;
mod tls;
mod wait;
