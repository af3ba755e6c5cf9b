//! The coordinator's integration tests: one binary, one module per concern.
//!
//! - `support`: spawn the coordinator binary on 127.0.0.1:0, real clients, fleetctl, results;
//! - `pg`: a throw-away PostgreSQL cluster;
//! - `storage`: the storage suite against SQLite and PostgreSQL;
//! - `fleet`: the real coordinator, real `fleetcal-agent run` processes and fleetctl together;
//! - `bad_input`: the bad-input suite: malformed, truncated, oversized and foreign results,
//!   configs, presets and certificates, each refused naming the input with nothing stored;
//!   each a row `bad input | input | outcome`;
//! - `faults`: the fault suite: coordinator and agents killed mid-run and mid-upload, a 30 s
//!   network cut, a full spool disk, wrong agent clocks, a reconnect storm; each scenario a
//!   row `fault | scenario | stored | lost | duplicated | outcome`;
//! - `clones`: one state directory copied to two real agents is quarantined (no plans,
//!   uploads refused), shown by `fleetctl agents` and released; an agent restarted is not;
//! - `edges`: validation at the edges: bad registrations, ids and results refused, bounded;
//! - `grpc`: error paths, idempotent uploads, export, oversized messages, health, reflection;
//! - `lifecycle`: refused/failed/timed-out/offline runs, graceful shutdown, restart;
//! - `schedules`: cron schedules firing campaigns: catch-up after a restart, pause, resume,
//!   run-now, remove, busy and offline boards, two coordinators on one PostgreSQL;
//! - `reports`: fleet reports in every format over fleetctl and HTTP, and a drift alert
//!   confirmed by the coordinator's own one-board run, on real agents (one with the torch
//!   engine) and a board really made slower;
//! - `wait`: `fleetctl campaign status --wait` rides out a coordinator restart;
//! - `multi`: two coordinators on one PostgreSQL, one killed mid-campaign; fleetctl given
//!   several URLs;
//! - `tls`: TLS and mutual TLS with certificates from `fleetctl pki init`;
//! - `trust`: roles bound to certificates (an agent acts as its own id only, never as admin),
//!   plain text only with `--insecure-plaintext`;
//! - `renewal`: an enrolled agent renews its certificate on its own without restarting, and
//!   `fleetctl agents` shows the later expiry;
//! - `http`: the web side (`--http`): every page in headless Chromium with screenshots,
//!   JSON/CSV, bad parameters, `/metrics` through a Prometheus text-format parser, HTTPS with
//!   the gRPC side's certificate, and the one shutdown.

mod bad_input;
mod clones;
mod edges;
mod faults;
mod fleet;
mod grpc;
mod http;
mod lifecycle;
mod multi;
mod pg;
mod renewal;
mod reports;
mod schedules;
mod storage;
mod support;
mod tls;
mod trust;
mod wait;
