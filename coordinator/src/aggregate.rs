//! Aggregation: the normalised rows a stored result adds (one per record) and run counts by
//! state. Pure and synchronous.

use std::collections::BTreeMap;

use fleetcal_proto::result::Status;
use fleetcal_proto::CalibrationResult;

use crate::model::{RunRecord, RunState};

/// One normalised result record, as the `result_records` table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// The run.
    pub run_id: String,
    /// Position in the result's records.
    pub idx: i64,
    /// Operation name (`gemm`, `stream_triad`).
    pub operation: String,
    /// Precision name.
    pub precision: String,
    /// Problem size.
    pub size: i64,
    /// `measured`, `skipped`, `unsupported` or `failed`.
    pub status: String,
    /// Best GFLOPS/GIOPS (BLAS, measured).
    pub best_gops: Option<f64>,
    /// Best GB/s (measured).
    pub best_gbps: Option<f64>,
    /// Best rate ÷ theoretical peak.
    pub efficiency: Option<f64>,
    /// Flag: above theoretical.
    pub above_theoretical: bool,
    /// Flag: noisy.
    pub noisy: bool,
    /// Flag: STREAM working set in cache.
    pub in_cache: bool,
    /// Flag: STREAM bandwidth eligible.
    pub bandwidth_eligible: bool,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Measured => "measured",
        Status::Skipped => "skipped",
        Status::Unsupported => "unsupported",
        Status::Failed => "failed",
    }
}

/// The normalised rows of a result.
pub fn result_rows(run_id: &str, result: &CalibrationResult) -> Vec<ResultRow> {
    result
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| ResultRow {
            run_id: run_id.to_string(),
            idx: i as i64,
            operation: r.operation.as_str().to_string(),
            precision: r.precision.as_str().to_string(),
            size: i64::try_from(r.size).unwrap_or(i64::MAX),
            status: status_name(r.status).to_string(),
            best_gops: r.gops.map(|g| g.best),
            best_gbps: r.bandwidth_gbps.map(|b| b.best),
            efficiency: r.efficiency,
            above_theoretical: r.flags.above_theoretical,
            noisy: r.flags.noisy,
            in_cache: r.flags.in_cache,
            bandwidth_eligible: r.flags.bandwidth_eligible,
        })
        .collect()
}

/// Run counts by state name (every state present, zero included).
pub fn counts_by_state(runs: &[RunRecord]) -> BTreeMap<&'static str, u32> {
    let mut counts: BTreeMap<&'static str, u32> =
        RunState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for r in runs {
        *counts.entry(r.state.as_str()).or_default() += 1;
    }
    counts
}
