//! What the fleet reports read: rows the store returns for a [`FleetQuery`], one
//! [`FleetRun`] per stored result and one [`FleetFigure`] per result record, plus the board
//! facts each result carries. Plain data; the store fills it with indexed queries on
//! normalised tables, `fleet::*` turns it into report models, `render` draws those.
//!
//! A row is made once, at ingest, from the result document by [`FleetRun::from_result`] and
//! [`FleetFigure::from_record`]; reports never parse result JSON.

use serde::{Deserialize, Serialize};

use crate::model::Millis;

/// The facts of the board a result was taken on that decide which boards are siblings
/// (see `fleet::group`): hardware, power mode and the engine's libraries. `None` is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BoardFacts {
    /// CPU model name.
    pub cpu_model: Option<String>,
    /// Microarchitecture (`Zen 4`, `Cortex-A78`).
    pub microarch: Option<String>,
    /// Physical cores.
    pub cores: Option<u32>,
    /// Logical CPUs the process could use.
    pub logical_cpus: Option<u32>,
    /// Memory in whole GB (rounded, so 23.4 and 23.6 GB boards are siblings).
    pub memory_gb: Option<u32>,
    /// GPU model (CUDA device, or a Jetson's integrated GPU).
    pub gpu_model: Option<String>,
    /// Jetson module (`NVIDIA Jetson AGX Orin`).
    pub jetson_model: Option<String>,
    /// Power mode (a Jetson's nvpmodel mode; the CPU governor elsewhere).
    pub power_mode: Option<String>,
    /// The BLAS under the engine with its version (`OpenBLAS 0.3.21`).
    pub blas: Option<String>,
    /// libtorch's version (pytorch engine).
    pub libtorch: Option<String>,
    /// The fleetcal version that measured.
    pub tool_version: Option<String>,
}

/// One stored result, as the fleet reports see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetRun {
    /// The run (and the result's `metadata.run_id`).
    pub run_id: String,
    /// Its campaign.
    pub campaign_id: String,
    /// The schedule whose firing made the campaign, if one did.
    pub schedule: Option<String>,
    /// The board.
    pub agent_id: String,
    /// The board's host name when it ran.
    pub hostname: String,
    /// `numpy` or `pytorch`.
    pub framework: String,
    /// The device it ran on (`cpu`, `cuda`).
    pub device: String,
    /// The device the preset asked for, when it differs (a fallback).
    pub fallback_from: Option<String>,
    /// The preset.
    pub preset_id: String,
    /// Quick mode.
    pub quick: bool,
    /// When the measurement started (the result's `metadata.started_at`).
    pub started_at: Millis,
    /// When the coordinator stored it.
    pub stored_at: Millis,
    /// The board facts the result carries.
    pub facts: BoardFacts,
    /// `metadata.environment.host_key`, when present.
    pub host_key: Option<String>,
    /// `metadata.environment.key`, when present: a change starts a new drift period.
    pub env_key: Option<String>,
    /// `summary.noise_floor_pct`.
    pub noise_floor_pct: Option<f64>,
    /// `summary.memory_bandwidth_gbps`.
    pub bandwidth_gbps: Option<f64>,
    /// `summary.bandwidth_efficiency`.
    pub bandwidth_efficiency: Option<f64>,
    /// `summary.peak_by_precision`: (precision, GFLOPS/GIOPS, efficiency), by precision.
    pub peaks: Vec<PeakRow>,
    /// `summary.anomalies`.
    pub anomalies: Vec<String>,
}

/// One precision's headline peak of a stored result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakRow {
    /// Precision name.
    pub precision: String,
    /// Best GFLOPS/GIOPS at it.
    pub gops: f64,
    /// The operation that reached it.
    pub operation: String,
    /// At which size.
    pub size: i64,
    /// Against the theoretical peak.
    pub efficiency: Option<f64>,
}

/// One record of a stored result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetFigure {
    /// The run.
    pub run_id: String,
    /// Position in the result's records.
    pub idx: i64,
    /// Operation name.
    pub operation: String,
    /// Precision name.
    pub precision: String,
    /// Problem size.
    pub size: i64,
    /// `measured`, `skipped`, `unsupported` or `failed`.
    pub status: String,
    /// Why it was skipped, unsupported or failed.
    pub reason: Option<String>,
    /// Best and median GFLOPS/GIOPS.
    pub best_gops: Option<f64>,
    /// Median GFLOPS/GIOPS.
    pub median_gops: Option<f64>,
    /// Best GB/s.
    pub best_gbps: Option<f64>,
    /// Median GB/s.
    pub median_gbps: Option<f64>,
    /// Best rate ÷ theoretical peak.
    pub efficiency: Option<f64>,
    /// Trials timed.
    pub trials: u32,
    /// Coefficient of variation of the trials, in percent.
    pub cv_pct: Option<f64>,
    /// Flag: above theoretical.
    pub above_theoretical: bool,
    /// Flag: noisy.
    pub noisy: bool,
    /// Flag: throttled.
    pub throttled: bool,
    /// Flag: STREAM working set in cache.
    pub in_cache: bool,
    /// Flag: STREAM bandwidth eligible.
    pub bandwidth_eligible: bool,
}

/// Which stored results a report reads. Every field narrows; the default reads everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetQuery {
    /// Only boards whose labels hold every one of these `key=value` pairs.
    pub select: Vec<(String, String)>,
    /// Only this board.
    pub agent_id: Option<String>,
    /// Only results measured at or after this time.
    pub since: Option<Millis>,
    /// Only results measured before this time.
    pub until: Option<Millis>,
    /// Only results of this schedule's campaigns.
    pub schedule: Option<String>,
    /// Only results of this framework.
    pub framework: Option<String>,
    /// Only results of this campaign.
    pub campaign_id: Option<String>,
}

/// What the store returns for a [`FleetQuery`]: the runs (oldest first by `started_at`, then
/// run id) and their figures (by run, then record order), and each board's labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetRows {
    /// The runs.
    pub runs: Vec<FleetRun>,
    /// Their figures.
    pub figures: Vec<FleetFigure>,
}
