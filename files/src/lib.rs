//! How fleetcal writes files, shared by the agent and `fleetctl`:
//! - [`atomic`]: a file that must never be seen half-written (results, the agent's spool,
//!   its id, key and certificate, a report written by `fleetctl`);
//! - [`output`]: what an `--output` path may be (a regular file is replaced atomically, a
//!   FIFO or character device written in place, a socket or block device refused), the one
//!   rule behind `fleetcal-agent calibrate --output` and `fleetctl report --output`.

pub mod atomic;
mod error;
pub mod output;

pub use error::FileError;
