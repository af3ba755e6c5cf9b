//! The fleetcal contract: what the agent and the coordinator both compile.
//!
//! - [`Precision`], [`Framework`], [`DeviceKind`] and [`Operation`]: the vocabulary.
//! - [`framework`]: also the framework rules (which framework(s) a board runs), used by the
//!   agent's `calibrate`, its daemon and the coordinator's planning.
//! - [`preset`]: the hardware preset file format (`presets/*.toml`).
//! - [`environment`]: the measurement environment of a result and its fingerprint keys.
//! - [`result`]: fleetcal's own versioned result schema (`schema/result.schema.json`).
//! - [`origin`]: the origin tool's profile format and the conversion into it.
//! - [`schema`]: the JSON Schemas of both result formats (`proto/schema/`).
//! - [`dial`]: how a client dials a `fleetcal.v1` endpoint (URL scheme, mutual-TLS files).
//! - [`role`]: who a certificate is in the fleet (an agent id or an admin name, as a URI SAN).
//! - [`quote`]: quoting untrusted input in messages (a bounded prefix).
//! - [`document`]: a result document's packed form (its derivable figures left out, its
//!   trials packed, zstd against a built-in dictionary, read back byte for byte): how the
//!   coordinator stores a result and how an agent uploads one; [`bytes`] its varints and
//!   reader.
//!
//! Nothing here measures, plans or stores: this crate describes data, the framework rules both
//! sides apply to it (in [`framework`]) and, in [`dial`], how a client reaches it.

pub mod bytes;
pub mod clock_floor;
pub mod dial;
pub mod document;
pub mod environment;
pub mod error;
pub mod framework;
#[cfg(test)]
mod fuzz_tests;
mod names;
pub mod operation;
pub mod origin;
pub mod pb;
pub mod precision;
pub mod preset;
pub mod quote;
pub mod result;
pub mod role;
pub mod schema;
pub mod stats;

pub use dial::DialError;
pub use error::ContractError;
pub use framework::{DeviceKind, Framework, FrameworkChoice};
pub use operation::{parse_operations, Operation, OperationKind};
pub use precision::Precision;
pub use preset::Preset;
pub use result::CalibrationResult;
