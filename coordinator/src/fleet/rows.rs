//! What the fleet reports read: rows the store returns for a [`FleetQuery`], one
//! [`FleetRun`] per stored result and one [`FleetFigure`] per result record, plus the board
//! facts each result carries. Plain data; the store fills it with indexed queries on
//! normalised tables, `fleet::*` turns it into report models, `render` draws those.
//!
//! A row is made once, at ingest, from the result document by [`FleetRun::from_result`] and
//! [`FleetFigure::from_record`]; reports never parse result JSON.

use fleetcal_proto::result::{Metadata, Record, Status};
use fleetcal_proto::CalibrationResult;
use serde::{Deserialize, Serialize};

use crate::model::{Millis, RunRecord};

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
    /// What its figures show (above theoretical, skipped, noisy), from every record when it
    /// was stored ([`super::anomalies::figure_flags`]).
    #[serde(default)]
    pub figure_flags: Vec<super::anomalies::FigureFlag>,
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
    /// Only this run's result (the drift check adds one run to a board's kept history).
    #[serde(default)]
    pub run_id: Option<String>,
    /// The runs alone, without their figures: a report that reads only headline figures
    /// (peaks, bandwidth, noise floor; the drift over many nights) skips the one row per
    /// record, by far the most rows.
    #[serde(default)]
    pub runs_only: bool,
    /// Of the figures, only those headline figures are made of (the records
    /// [`super::headline::headline_records`] keeps with each run): what the drift reads.
    /// The runs are not filtered by it.
    #[serde(default)]
    pub headline_figures_only: bool,
    /// Of the runs the other fields select, only each board × framework's latest (by
    /// `started_at`, then run id): what the reports of the latest results (boards, roofline,
    /// anomalies) read, whatever their window.
    #[serde(default)]
    pub latest_only: bool,
    /// Of the runs the other fields select, only those with a run of another framework on
    /// the same board and device in the same campaign: what the compare report reads.
    #[serde(default)]
    pub paired_only: bool,
    /// With [`FleetQuery::headline_figures_only`], each run's roofline points too (per BLAS
    /// operation and precision its best record, [`super::headline::point_records`], with
    /// its rates alone: no bandwidth, efficiency, CV or flags): what the roofline report
    /// reads.
    #[serde(default)]
    pub roofline_points: bool,
    /// Each run's [`FleetRun::figure_flags`] (left empty otherwise): what the anomalies
    /// report reads.
    #[serde(default)]
    pub figure_flags: bool,
    /// With [`FleetQuery::headline_figures_only`], each run's every other measured record
    /// too (its roofline points and its pair rates: operation, precision, size and the best
    /// and median rate of [`super::headline::rates`], nothing else), kept with each run so
    /// that the compare report reads no result document.
    #[serde(default)]
    pub pair_rates: bool,
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

/// A known text fact, or `None` for an unknown or empty one.
fn known_text(fact: Option<&fleetcal_proto::environment::Fact<String>>) -> Option<String> {
    fact.and_then(|f| f.known())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A text, or `None` when empty.
fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Gigabytes rounded to a whole number; `None` for a value that is not a finite size.
fn whole_gb(gb: f64) -> Option<u32> {
    let rounded = gb.round();
    // Checked first: a whole number in range, so the cast is exact.
    (rounded.is_finite() && rounded >= 1.0 && rounded <= f64::from(u32::MAX))
        .then_some(rounded as u32)
}

impl BoardFacts {
    /// The facts of a result's metadata: the known facts of `metadata.environment`, else
    /// what `metadata.host` and `metadata.engine` say (a result without an environment
    /// section, or a fact it could not read).
    pub fn from_metadata(m: &Metadata) -> BoardFacts {
        let env = m.environment.as_ref();
        let host = env.map(|e| &e.host);
        let software = env.map(|e| &e.software);
        let jetson = host.and_then(|h| h.jetson.as_ref());
        let env_blas = software.and_then(|s| {
            let library = known_text(Some(&s.blas_library))?;
            Some(match known_text(Some(&s.blas_version)) {
                Some(version) => format!("{library} {version}"),
                None => library,
            })
        });
        let engine_blas = m.engine.blas.as_ref().and_then(|b| {
            let library = non_empty(&b.library)?;
            Some(match non_empty(&b.version) {
                Some(version) => format!("{library} {version}"),
                None => library,
            })
        });
        let engine_libtorch = m
            .engine
            .library
            .trim()
            .strip_prefix("libtorch ")
            .and_then(non_empty);
        BoardFacts {
            cpu_model: known_text(host.map(|h| &h.cpu_model))
                .or_else(|| non_empty(&m.host.cpu_model)),
            microarch: known_text(host.map(|h| &h.microarch)),
            cores: host.and_then(|h| h.cores.known().copied()),
            logical_cpus: host
                .and_then(|h| h.logical_cpus.known().copied())
                .or((m.host.cpu_count > 0).then_some(m.host.cpu_count)),
            memory_gb: whole_gb(m.host.total_memory_gb),
            gpu_model: known_text(host.map(|h| &h.gpu_model))
                .or_else(|| m.engine.device_name.as_deref().and_then(non_empty)),
            jetson_model: jetson
                .and_then(|j| non_empty(&j.model))
                .or_else(|| m.host.jetson.as_deref().and_then(non_empty)),
            power_mode: known_text(jetson.map(|j| &j.nvpmodel))
                .or_else(|| known_text(host.map(|h| &h.governor))),
            blas: env_blas.or(engine_blas),
            libtorch: software
                .and_then(|s| s.libtorch.as_ref())
                .and_then(|t| known_text(Some(&t.version)))
                .or(engine_libtorch),
            tool_version: non_empty(&m.tool_version),
        }
    }
}

/// The name of a record status, as stored.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Measured => "measured",
        Status::Skipped => "skipped",
        Status::Unsupported => "unsupported",
        Status::Failed => "failed",
    }
}

impl FleetRun {
    /// The row of a result stored at `stored_at` for `run` (of a campaign `schedule` fired,
    /// if one did). `started_at` is the result's own start (validated at upload); a start
    /// that does not parse falls back to `stored_at`.
    pub fn from_result(
        run: &RunRecord,
        schedule: Option<&str>,
        result: &CalibrationResult,
        stored_at: Millis,
    ) -> FleetRun {
        let m = &result.metadata;
        let s = &result.summary;
        let fallback_from = match &m.fallback {
            Some(f) => Some(f.requested.as_str().to_string()),
            None => (m.requested_device != m.device_type)
                .then(|| m.requested_device.as_str().to_string()),
        };
        FleetRun {
            run_id: run.run_id.clone(),
            campaign_id: run.campaign_id.clone(),
            schedule: schedule.map(str::to_string),
            agent_id: run.agent_id.clone(),
            hostname: run.hostname.clone(),
            framework: m.framework.as_str().to_string(),
            device: m.device_type.as_str().to_string(),
            fallback_from,
            preset_id: run.preset_id.clone(),
            quick: m.settings.quick,
            started_at: m
                .times()
                .map(|(started, _)| started.timestamp_millis())
                .unwrap_or(stored_at),
            stored_at,
            facts: BoardFacts::from_metadata(m),
            host_key: m.environment.as_ref().map(|e| e.host_key.clone()),
            env_key: m.environment.as_ref().map(|e| e.key.clone()),
            noise_floor_pct: s.noise_floor_pct,
            bandwidth_gbps: s.memory_bandwidth_gbps,
            bandwidth_efficiency: s.bandwidth_efficiency,
            peaks: s
                .peak_by_precision
                .iter()
                .map(|(precision, p)| PeakRow {
                    precision: precision.as_str().to_string(),
                    gops: p.gops,
                    operation: p.operation.as_str().to_string(),
                    size: i64::try_from(p.size).unwrap_or(i64::MAX),
                    efficiency: p.efficiency,
                })
                .collect(),
            anomalies: s.anomalies.clone(),
            figure_flags: super::anomalies::figure_flags(&FleetFigure::from_result(
                &run.run_id,
                result,
            )),
        }
    }
}

impl FleetFigure {
    /// The row of a result's record at position `idx`.
    pub fn from_record(run_id: &str, idx: i64, r: &Record) -> FleetFigure {
        FleetFigure {
            run_id: run_id.to_string(),
            idx,
            operation: r.operation.as_str().to_string(),
            precision: r.precision.as_str().to_string(),
            size: i64::try_from(r.size).unwrap_or(i64::MAX),
            status: status_name(r.status).to_string(),
            reason: r.reason.clone(),
            best_gops: r.gops.map(|g| g.best),
            median_gops: r.gops.map(|g| g.median),
            best_gbps: r.bandwidth_gbps.map(|b| b.best),
            median_gbps: r.bandwidth_gbps.map(|b| b.median),
            efficiency: r.efficiency,
            trials: r.trials,
            cv_pct: r
                .latency_ms
                .map(|l| l.cv * 100.0)
                .filter(|cv| cv.is_finite()),
            above_theoretical: r.flags.above_theoretical,
            noisy: r.flags.noisy,
            throttled: r.flags.throttled,
            in_cache: r.flags.in_cache,
            bandwidth_eligible: r.flags.bandwidth_eligible,
        }
    }

    /// The rows of every record of a result, in record order.
    pub fn from_result(run_id: &str, result: &CalibrationResult) -> Vec<FleetFigure> {
        (0_i64..)
            .zip(&result.records)
            .map(|(idx, r)| FleetFigure::from_record(run_id, idx, r))
            .collect()
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
