//! Drift: each board × framework × headline figure over nights, against the board's own
//! baseline. A change of environment (`env_key`) starts a new baseline period (a marker,
//! never an alert). A drop counts only when a statistical test over a window of nights says
//! so (Mann–Whitney U for a step, Mann–Kendall with a Theil–Sen slope for a slow creep) and
//! it exceeds the board's own noise (trial CVs, night-to-night spread, noise floor). A
//! suspected drop starts a one-board confirmation run; `decide` is the alert life cycle.

use serde::{Deserialize, Serialize};

use super::alert::{AlertRecord, AlertState};
use super::group::BoardGroup;
use crate::model::Millis;

/// A step (a sudden drop) or a creep (a slow decline over weeks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// A sudden drop.
    Step,
    /// A slow decline.
    Creep,
}

impl DriftKind {
    /// `step` or `creep`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Step => "step",
            DriftKind::Creep => "creep",
        }
    }
}

/// One night's value of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftPoint {
    /// The run.
    pub run_id: String,
    /// Its campaign.
    pub campaign_id: String,
    /// When it was measured.
    pub at: Millis,
    /// The figure's value.
    pub value: f64,
    /// The trial CV of the figure's record, in percent, when known.
    pub cv_pct: Option<f64>,
    /// The result's noise floor, in percent, when known.
    pub noise_floor_pct: Option<f64>,
    /// The result's environment key.
    pub env_key: Option<String>,
}

/// A baseline period: nights with one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftPeriod {
    /// Its first night.
    pub start_at: Millis,
    /// Its first run.
    pub start_run_id: String,
    /// The environment key.
    pub env_key: Option<String>,
    /// The environment before it (a marker: the environment changed here); `None` for the
    /// first period.
    pub previous_env_key: Option<String>,
    /// Nights in it.
    pub nights: u32,
}

/// What the test found at the end of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftFinding {
    /// Step or creep.
    pub kind: DriftKind,
    /// The first night after the change.
    pub began_at: Millis,
    /// Its run.
    pub began_run_id: String,
    /// The baseline (median of the period's nights before the change; for a creep the
    /// Theil–Sen line at the window's start).
    pub baseline: f64,
    /// The current value (median of the nights since the change; for a creep the line at
    /// the latest night).
    pub current: f64,
    /// (current − baseline) ÷ baseline, in percent.
    pub change_pct: f64,
    /// The test's one-sided p value.
    pub p_value: f64,
    /// The board's noise the change exceeds, in percent.
    pub threshold_pct: f64,
    /// Whether the test says so (false: a suspicion from one low night, the test needs
    /// more nights, e.g. the confirmation run).
    pub significant: bool,
    /// The latest run.
    pub run_id: String,
}

/// One board × framework × headline figure over nights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftSeries {
    /// The board group.
    pub group_key: String,
    /// The board.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// `numpy` or `pytorch`.
    pub framework: String,
    /// The headline figure (`gemm_peak fp32`, `stream_bandwidth`).
    pub figure: String,
    /// `GFLOPS`, `GIOPS` or `GB/s`.
    pub unit: String,
    /// Its nights, oldest first.
    pub points: Vec<DriftPoint>,
    /// Its baseline periods, oldest first (each after the first is a marker).
    pub periods: Vec<DriftPeriod>,
    /// The current period's baseline (median), when it has nights.
    pub baseline: Option<f64>,
    /// The latest value.
    pub latest: Option<f64>,
    /// (latest − baseline) ÷ baseline, in percent.
    pub latest_change_pct: Option<f64>,
    /// The board's noise a change must exceed, in percent.
    pub threshold_pct: f64,
    /// A drop found at the end of the current period.
    pub finding: Option<DriftFinding>,
}

/// The drift report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// When it was computed.
    pub generated_at: Millis,
    /// The groups it covers (key, facts, members).
    pub groups: Vec<BoardGroup>,
    /// Every series, by group, host name, framework, figure.
    pub series: Vec<DriftSeries>,
    /// The stored alerts of these boards (every state), newest first.
    pub alerts: Vec<AlertRecord>,
}

impl DriftReport {
    /// The series with a finding (suspects and significant drops).
    pub fn suspects(&self) -> impl Iterator<Item = &DriftSeries> {
        self.series.iter().filter(|s| s.finding.is_some())
    }
}

/// The knobs of the drift test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftParams {
    /// Nights of baseline a test needs before the change.
    pub min_baseline: usize,
    /// Most baseline nights used (the latest before the change).
    pub baseline_window: usize,
    /// Most nights after a step that are tested together.
    pub max_after: usize,
    /// The step test's one-sided significance level (Mann–Whitney U).
    pub step_alpha: f64,
    /// The creep test's one-sided significance level (Mann–Kendall).
    pub creep_alpha: f64,
    /// Fewest nights a creep is tested over.
    pub min_creep: usize,
    /// Most nights a creep is tested over.
    pub creep_window: usize,
    /// A change must exceed this many night-to-night standard deviations.
    pub spread_factor: f64,
    /// ... and this many times the median trial CV.
    pub cv_factor: f64,
    /// ... and this percentage, whatever the noise.
    pub min_change_pct: f64,
}

impl Default for DriftParams {
    fn default() -> Self {
        DriftParams {
            min_baseline: 7,
            baseline_window: 28,
            max_after: 14,
            step_alpha: 0.05,
            creep_alpha: 0.01,
            min_creep: 10,
            creep_window: 60,
            spread_factor: 3.0,
            cv_factor: 2.0,
            min_change_pct: 2.0,
        }
    }
}

/// What the coordinator does after a result is stored, for one series (`decide`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DriftAction {
    /// Record this new alert (state `Suspected`) and start a one-board confirmation run of
    /// its board and framework; then set the campaign on the alert.
    Suspect {
        /// The new alert.
        alert: AlertRecord,
    },
    /// Move a stored alert to a new state (if it is still in `from`).
    Update {
        /// The alert.
        id: String,
        /// The states it must be in.
        from: Vec<AlertState>,
        /// Its new state.
        to: AlertState,
        /// A new current value.
        current: Option<f64>,
        /// A new change in percent.
        change_pct: Option<f64>,
        /// Why.
        message: String,
    },
}
