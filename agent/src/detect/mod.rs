//! Host detection and `--preset auto`.
//!
//! - [`cpuinfo`](mod@cpuinfo): `/proc/cpuinfo` parsing ([`CpuInfo`]).
//! - [`microarch`]: the microarchitecture class ([`Microarch`]).
//! - [`rates`]: per-core, per-cycle throughput per precision.
//! - [`clock`]: the core clock (cpufreq, or measured).
//! - [`host`](mod@host): the [`fleetcal_proto::result::Host`] a result records.
//! - [`jetson`]: Jetson module, power mode and memory bandwidth.
//! - [`environment`](mod@environment): the host half of a result's measurement environment
//!   (readers under a root directory, tested on fixture trees).
//! - [`sensors`]: telemetry between trials (CPU clock, temperatures, throttling, Jetson GPU clock).
//! - [`root`]: where the host's `/proc`, `/sys` and `/etc` are read (`--host-root`).
//! - [`nvml`]: telemetry of a discrete NVIDIA GPU (clocks, temperature, power, throttle reasons).
//! - [`command`]: running a host tool (`nvpmodel -q`) with a time limit.
//! - [`derive`](mod@derive): the `auto` preset and its derivation.

pub mod clock;
pub mod command;
pub mod cpuinfo;
pub mod derive;
pub mod environment;
pub mod host;
pub mod jetson;
pub mod microarch;
pub mod nvml;
pub mod rates;
pub mod root;
pub mod sensors;

pub use clock::{detect_clock, measure_clock_ghz, ClockEstimate, ClockSource};
pub use cpuinfo::{cpuinfo, parse_cpuinfo, CpuInfo};
pub use derive::{auto_preset, derive_preset, AUTO_PRESET_ID};
pub use host::{host, host_for};
pub use microarch::Microarch;
