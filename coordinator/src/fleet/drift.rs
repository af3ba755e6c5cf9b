//! Drift: each board × framework × headline figure over nights, against the board's own
//! baseline. A change of environment (`env_key`) starts a new baseline period (a marker,
//! never an alert). A drop counts only when a statistical test over a window of nights says
//! so (Mann–Whitney U for a step, Mann–Kendall with a Theil–Sen slope for a slow creep) and
//! it exceeds the board's own noise (trial CVs, night-to-night spread, noise floor). A
//! suspected drop starts a one-board confirmation run; [`decide`] is the alert life cycle.
//!
//! Here: the model and the series of a report; `detect.rs`: the periods and the tests;
//! `decide.rs`: the alert life cycle.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::alert::{AlertRecord, AlertState};
use super::group::{BoardGroup, Groups};
use super::headline::Indexed;
use super::rows::{FleetRows, FleetRun};
use crate::model::Millis;

mod decide;
mod detect;
mod history;
mod night;

pub use decide::decide;
pub use detect::{evaluate, periods, threshold_pct};
pub use history::{BoardHistory, NotAdded};
#[cfg(test)]
use night::build_series;
pub use night::{board_series, DriftNight, NightPart};

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
///
/// In the JSON a point carries its run, time, value and CV; what every point of a run
/// shares (campaign, noise floor, environment) is said once, in the report's
/// [`DriftReport::runs`], and filled in again when a report is read back. A month of 1,000
/// boards is ~250,000 points of ~31,000 runs: the report's JSON went from 55 to 36 MB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftPoint {
    /// The run (shared by the run's series: a month of 1,000 boards is ~250,000 points).
    pub run_id: Arc<str>,
    /// Its campaign (in the JSON: its run's).
    #[serde(skip)]
    pub campaign_id: Arc<str>,
    /// When it was measured.
    pub at: Millis,
    /// The figure's value.
    pub value: f64,
    /// The trial CV of the figure's record, in percent, when known.
    pub cv_pct: Option<f64>,
    /// The result's noise floor, in percent, when known (in the JSON: its run's).
    #[serde(skip)]
    pub noise_floor_pct: Option<f64>,
    /// The result's environment key (in the JSON: its run's).
    #[serde(skip)]
    pub env_key: Option<Arc<str>>,
}

/// What every point of one run shares ([`DriftReport::runs`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftRun {
    /// The run.
    pub run_id: Arc<str>,
    /// Its campaign.
    pub campaign_id: Arc<str>,
    /// When it was measured.
    pub at: Millis,
    /// The result's noise floor, in percent, when known.
    pub noise_floor_pct: Option<f64>,
    /// The result's environment key.
    pub env_key: Option<Arc<str>>,
}

impl DriftRun {
    /// The run a point was measured in.
    fn of(p: &DriftPoint) -> DriftRun {
        DriftRun {
            run_id: p.run_id.clone(),
            campaign_id: p.campaign_id.clone(),
            at: p.at,
            noise_floor_pct: p.noise_floor_pct,
            env_key: p.env_key.clone(),
        }
    }
}

/// A baseline period: nights with one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftPeriod {
    /// Its first night.
    pub start_at: Millis,
    /// Its first run.
    pub start_run_id: Arc<str>,
    /// The environment key.
    pub env_key: Option<Arc<str>>,
    /// The environment before it (a marker: the environment changed here); `None` for the
    /// first period.
    pub previous_env_key: Option<Arc<str>>,
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
    pub began_run_id: Arc<str>,
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
    pub run_id: Arc<str>,
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
#[serde(try_from = "DriftReportJson")]
pub struct DriftReport {
    /// When it was computed.
    pub generated_at: Millis,
    /// The groups it covers (key, facts, members).
    pub groups: Vec<BoardGroup>,
    /// The runs of the series' points, oldest first (what a run's points share).
    pub runs: Vec<DriftRun>,
    /// Every series, by group, host name, framework, figure.
    pub series: Vec<DriftSeries>,
    /// The stored alerts of these boards (every state), newest first.
    pub alerts: Vec<AlertRecord>,
}

/// A drift report as its JSON holds it: its points without what their runs say.
#[derive(Deserialize)]
struct DriftReportJson {
    generated_at: Millis,
    groups: Vec<BoardGroup>,
    runs: Vec<DriftRun>,
    series: Vec<DriftSeries>,
    alerts: Vec<AlertRecord>,
}

impl TryFrom<DriftReportJson> for DriftReport {
    type Error = String;

    /// Each point gets its run's campaign, noise floor and environment back; a point of a
    /// run the report does not list is an error.
    fn try_from(j: DriftReportJson) -> Result<DriftReport, String> {
        let by_id: std::collections::HashMap<&str, &DriftRun> =
            j.runs.iter().map(|r| (&*r.run_id, r)).collect();
        let mut series = j.series;
        for s in &mut series {
            for p in &mut s.points {
                let run = by_id.get(&*p.run_id).ok_or_else(|| {
                    format!(
                        "drift point of run {} ({} {}): the run is not among the report's runs",
                        fleetcal_proto::quote::quoted(&p.run_id),
                        s.hostname,
                        s.figure
                    )
                })?;
                p.run_id = run.run_id.clone();
                p.campaign_id = run.campaign_id.clone();
                p.noise_floor_pct = run.noise_floor_pct;
                p.env_key = run.env_key.clone();
            }
        }
        Ok(DriftReport {
            generated_at: j.generated_at,
            groups: j.groups,
            runs: j.runs,
            series,
            alerts: j.alerts,
        })
    }
}

impl DriftReport {
    /// The series with a finding (suspects and significant drops).
    pub fn suspects(&self) -> impl Iterator<Item = &DriftSeries> {
        self.series.iter().filter(|s| s.finding.is_some())
    }
}

/// The runs of some series' points, each once, oldest first (by time, then id).
fn runs_of(series: &[DriftSeries]) -> Vec<DriftRun> {
    // A run's points share its id (`series`): one pointer, one run.
    let mut seen = std::collections::HashSet::new();
    let mut runs: Vec<DriftRun> = series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| seen.insert(Arc::as_ptr(&p.run_id).cast::<u8>()))
        .map(DriftRun::of)
        .collect();
    runs.sort_by(|a, b| (a.at, &a.run_id).cmp(&(b.at, &b.run_id)));
    runs.dedup_by(|a, b| a.run_id == b.run_id);
    runs
}

/// The knobs of the drift test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftParams {
    /// Nights of baseline a test needs before the change. At least 5 for a one-night drop
    /// and its confirmation run to be significant at a `step_alpha` of 0.05: the exact
    /// Mann–Whitney p of two nights below n baseline nights is 2 ÷ ((n + 2)(n + 1)).
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
    /// The noise threshold is at most this percentage: a drop by more than it that the
    /// statistical test finds significant counts on any board. Without a cap, the threshold
    /// of a board whose nights swing widely (3 × their spread, 2 × their trial CV) can pass
    /// 100 %, and no drop, however complete, would ever be alerted on it.
    #[serde(default = "DriftParams::default_max_threshold_pct")]
    pub max_threshold_pct: f64,
}

impl DriftParams {
    /// [`DriftParams::max_threshold_pct`]'s default: a drop by more than half.
    pub const DEFAULT_MAX_THRESHOLD_PCT: f64 = 50.0;

    fn default_max_threshold_pct() -> f64 {
        Self::DEFAULT_MAX_THRESHOLD_PCT
    }
}

impl Default for DriftParams {
    fn default() -> Self {
        DriftParams {
            min_baseline: 7,
            baseline_window: 28,
            max_after: 14,
            step_alpha: 0.05,
            creep_alpha: 0.01,
            min_creep: 14,
            creep_window: 60,
            spread_factor: 3.0,
            cv_factor: 2.0,
            min_change_pct: 2.0,
            max_threshold_pct: Self::DEFAULT_MAX_THRESHOLD_PCT,
        }
    }
}

/// What the coordinator does after a result is stored, for one series ([`decide`]).
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

/// The series of some rows: each board × framework × headline figure, oldest first.
pub fn series(rows: &FleetRows, groups: &Groups, params: &DriftParams) -> Vec<DriftSeries> {
    let idx = Indexed::new(rows);
    // Each board × framework's runs, oldest first (the rows' order), with its group.
    type Board<'a> = ((&'a str, &'a str), (&'a str, Vec<&'a FleetRun>));
    let mut boards: HashMap<(&str, &str), (&str, Vec<&FleetRun>)> = HashMap::new();
    for run in idx.runs {
        let Some(group) = groups.key_of(&run.agent_id) else {
            continue;
        };
        boards
            .entry((run.agent_id.as_str(), run.framework.as_str()))
            .or_insert_with(|| (group, Vec::new()))
            .1
            .push(run);
    }
    // A board's nights and series: each board on its own (a month of 1,000 boards is
    // ~2,000 board × framework and ~16,000 series), spread over the cores.
    let build = |((agent_id, framework), (group_key, runs)): Board| -> Vec<DriftSeries> {
        let mut nights: Vec<DriftNight> = Vec::with_capacity(runs.len());
        for run in runs {
            let night = DriftNight::of(run, idx.figures_of(&run.run_id), nights.last());
            nights.push(night);
        }
        board_series(group_key, agent_id, framework, &nights, params)
    };
    let mut out: Vec<DriftSeries> = crate::par::par_map(boards.into_iter().collect(), build)
        .into_iter()
        .flatten()
        .collect();
    night::sort_series(&mut out);
    out
}

/// The drift report of some rows at `now`, with the stored alerts of their boards.
pub fn drift(
    rows: &FleetRows,
    groups: &Groups,
    alerts: Vec<AlertRecord>,
    params: &DriftParams,
    now: Millis,
) -> DriftReport {
    let mut alerts: Vec<AlertRecord> = alerts
        .into_iter()
        .filter(|a| groups.key_of(&a.agent_id).is_some())
        .collect();
    alerts.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let series = series(rows, groups, params);
    DriftReport {
        generated_at: now,
        groups: groups.groups.clone(),
        runs: runs_of(&series),
        series,
        alerts,
    }
}

#[cfg(test)]
mod tests;
