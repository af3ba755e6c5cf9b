//! The fleetcal agent as a library: the binary `fleetcal-agent` is a thin shell over it.
//!
//! - [`bench`](mod@bench): the one benchmark interface, the plan, and the shared runner (timing,
//!   statistics, early stop, efficiency and flags).
//! - [`engines`]: the numpy engine (ndarray, CPU) and the pytorch engine (tch, CPU/CUDA,
//!   cargo feature `torch`).
//! - [`detect`]: what the host is, and `--preset auto`.
//! - [`select`]: framework selection, platform validation, device fallback.
//! - [`report`]: console output and `--load` summaries.
//! - [`output`]: result files (fleetcal and origin formats) and where `--output` puts them.
//! - [`atomic`]: the one atomic file write (results, the spool, the agent id).
//! - [`daemon`]: `fleetcal-agent run`, the fleet agent.
//! - [`calibrate`]: one calibration from request to result (CLI and daemon share it).
//! - [`presets`]: built-in presets and `--presets DIR`.
//! - [`cli`]: argument parsing and the mapping of errors to exit codes.
//! - [`limits`]: the accepted range of every numeric flag, config key and request field.

pub use fleetcal_files::atomic;
pub mod bench;
pub mod calibrate;
pub mod cli;
pub mod daemon;
pub mod detect;
pub mod engines;
pub mod error;
/// The parsers' fuzzing inputs, shared with proto's property tests.
#[cfg(test)]
#[path = "../../proto/src/fuzz_tests.rs"]
mod fuzz_tests;
pub mod limits;
pub mod output;
pub mod presets;
pub mod report;
pub mod select;
#[cfg(test)]
mod testing;

pub use error::AgentError;
