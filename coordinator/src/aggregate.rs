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

/// Run counts by state (every state present, zero included).
pub type RunCounts = BTreeMap<RunState, u32>;

/// Run counts by state of some runs (every state present, zero included).
pub fn counts_by_state<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> RunCounts {
    counts_from(runs.into_iter().map(|r| (r.state, 1)))
}

/// Run counts by state from (state, count) pairs, such as a `GROUP BY state` returns (every
/// state present, zero included).
pub fn counts_from(pairs: impl IntoIterator<Item = (RunState, u32)>) -> RunCounts {
    let mut counts: RunCounts = RunState::ALL.iter().map(|s| (*s, 0)).collect();
    for (state, n) in pairs {
        let slot = counts.entry(state).or_default();
        *slot = slot.saturating_add(n);
    }
    counts
}
