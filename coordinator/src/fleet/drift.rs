//! Drift: each board × framework × headline figure over nights, against the board's own
//! baseline. A change of environment (`env_key`) starts a new baseline period (a marker,
//! never an alert). A drop counts only when a statistical test over a window of nights says
//! so (Mann–Whitney U for a step, Mann–Kendall with a Theil–Sen slope for a slow creep) and
//! it exceeds the board's own noise (trial CVs, night-to-night spread, noise floor). A
//! suspected drop starts a one-board confirmation run; [`decide`] is the alert life cycle.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::alert::{AlertRecord, AlertState};
use super::group::{BoardGroup, Groups};
use super::headline::{self, headlines, Indexed};
use super::rows::{FleetRows, FleetRun};
use super::stats;
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

/// Splits points (oldest first) into baseline periods where the environment key changes
/// (a point without a key stays in the current period).
pub fn periods(points: &[DriftPoint]) -> Vec<DriftPeriod> {
    let mut out: Vec<DriftPeriod> = Vec::new();
    for p in points {
        let starts = match out.last() {
            None => true,
            Some(cur) => p.env_key.is_some() && cur.env_key.is_some() && p.env_key != cur.env_key,
        };
        if starts {
            out.push(DriftPeriod {
                start_at: p.at,
                start_run_id: p.run_id.clone(),
                env_key: p.env_key.clone(),
                previous_env_key: out.last().and_then(|c| c.env_key.clone()),
                nights: 1,
            });
        } else if let Some(cur) = out.last_mut() {
            cur.nights = cur.nights.saturating_add(1);
            if cur.env_key.is_none() {
                cur.env_key = p.env_key.clone();
            }
        }
    }
    out
}

/// The board's noise a change must exceed, in percent, from some nights: the largest of
/// the minimum change, the median noise floor, `cv_factor` × the median trial CV and
/// `spread_factor` × the night-to-night spread (the robust standard deviation of the
/// differences between consecutive nights ÷ √2, which a slow trend does not inflate).
pub fn threshold_pct(points: &[DriftPoint], params: &DriftParams) -> f64 {
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    let floor: Vec<f64> = points.iter().filter_map(|p| p.noise_floor_pct).collect();
    let cvs: Vec<f64> = points.iter().filter_map(|p| p.cv_pct).collect();
    let diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let spread_pct = match (stats::mad(&diffs), stats::median(&values)) {
        (Some(m), Some(med)) if med > 0.0 => {
            stats::MAD_SCALE * m / std::f64::consts::SQRT_2 / med * 100.0
        }
        _ => 0.0,
    };
    [
        params.min_change_pct,
        stats::median(&floor).unwrap_or(0.0),
        params.cv_factor * stats::median(&cvs).unwrap_or(0.0),
        params.spread_factor * spread_pct,
    ]
    .into_iter()
    .filter(|x| x.is_finite())
    .fold(0.0, f64::max)
}

/// A step at the end of one period's points: the longest run of the latest nights (at most
/// `max_after`) that starts with a night below the baseline by more than the threshold,
/// whose median is below it too and none of which is above half of it; significant when
/// the Mann–Whitney U test against the baseline nights says so.
fn step(points: &[DriftPoint], params: &DriftParams) -> Option<DriftFinding> {
    let n = points.len();
    for m in (1..=params.max_after.min(n)).rev() {
        let Some(split) = n.checked_sub(m).filter(|s| *s >= params.min_baseline) else {
            continue;
        };
        let before = points.get(..split)?;
        let base = before.get(split.saturating_sub(params.baseline_window)..)?;
        let after = points.get(split..)?;
        let base_values: Vec<f64> = base.iter().map(|p| p.value).collect();
        let after_values: Vec<f64> = after.iter().map(|p| p.value).collect();
        let baseline = stats::median(&base_values)?;
        let first = after.first()?;
        let current = stats::median(&after_values)?;
        let no_step = |thr: f64| {
            let limit = baseline * (1.0 - thr / 100.0);
            let half = baseline * (1.0 - thr / 200.0);
            first.value >= limit || current >= limit || after_values.iter().any(|v| *v > half)
        };
        // The threshold is at least `min_change_pct`: nights that are no step against that
        // are none against the board's own (cheaper to tell, and most nights are).
        if no_step(params.min_change_pct) {
            continue;
        }
        let thr = threshold_pct(base, params);
        if no_step(thr) {
            continue;
        }
        let p_value = stats::mann_whitney_less(&base_values, &after_values)?;
        return Some(DriftFinding {
            kind: DriftKind::Step,
            began_at: first.at,
            began_run_id: first.run_id.clone(),
            baseline,
            current,
            change_pct: stats::change_pct(current, baseline)?,
            p_value,
            threshold_pct: thr,
            significant: p_value < params.step_alpha,
            run_id: points.last()?.run_id.clone(),
        });
    }
    None
}

/// A creep at the end of one period's points: of the windows of the latest `min_creep` to
/// `creep_window` nights whose Mann–Kendall test finds a downward trend and whose Theil–Sen
/// line falls by more than the threshold (the noise of the window and the baseline window
/// of nights before it), as do its latest three nights, the steepest.
fn creep(points: &[DriftPoint], params: &DriftParams) -> Option<DriftFinding> {
    let n = points.len();
    let mut best: Option<(f64, DriftFinding)> = None;
    let lo = params.min_creep.max(3);
    let hi = params.creep_window.min(n);
    if lo > hi {
        return None;
    }
    // S of the shortest window, then one point earlier at a time (O(w) each).
    let mut s = stats::mann_kendall_s(&values_of(points.get(n - lo..)?));
    for w in lo..=hi {
        let window = points.get(n - w..)?;
        if w > lo {
            let v0 = window.first()?.value;
            s += window
                .iter()
                .skip(1)
                .map(|p| stats::sign(p.value - v0))
                .sum::<i64>();
        }
        let p_value = stats::mann_kendall_p(s, stats::mann_kendall_var(w));
        if p_value >= params.creep_alpha {
            continue;
        }
        let values = values_of(window);
        let first = window.first()?;
        let last = window.last()?;
        let day = |p: &DriftPoint| stats::days(p.at.saturating_sub(first.at));
        let xy: Vec<(f64, f64)> = window.iter().map(|p| (day(p), p.value)).collect();
        let slope = stats::theil_sen(&xy)?;
        let intercepts: Vec<f64> = xy.iter().map(|(x, y)| y - slope * x).collect();
        let intercept = stats::median(&intercepts)?;
        let baseline = intercept;
        let current = intercept + slope * day(last);
        let change = stats::change_pct(current, baseline)?;
        let thr = threshold_pct(
            &points[n.saturating_sub(w + params.baseline_window)..],
            params,
        );
        // The latest nights themselves must be low (a dip in the window's middle is no creep).
        let recent: Vec<f64> = values.iter().rev().take(3).copied().collect();
        let recent_low = stats::median(&recent)
            .and_then(|r| stats::change_pct(r, baseline))
            .is_some_and(|c| -c > thr);
        if slope >= 0.0 || -change <= thr || !recent_low {
            continue;
        }
        let rel_slope = slope / baseline;
        if best.as_ref().is_none_or(|(s, _)| rel_slope < *s) {
            best = Some((
                rel_slope,
                DriftFinding {
                    kind: DriftKind::Creep,
                    began_at: first.at,
                    began_run_id: first.run_id.clone(),
                    baseline,
                    current,
                    change_pct: change,
                    p_value,
                    threshold_pct: thr,
                    significant: true,
                    run_id: last.run_id.clone(),
                },
            ));
        }
    }
    best.map(|(_, f)| f)
}

fn values_of(points: &[DriftPoint]) -> Vec<f64> {
    points.iter().map(|p| p.value).collect()
}

/// What the test finds at the end of one period's points (oldest first): a significant
/// step, else a creep (always significant), else a suspected step (one low night; the
/// test needs more).
pub fn evaluate(points: &[DriftPoint], params: &DriftParams) -> Option<DriftFinding> {
    let step = step(points, params);
    if let Some(s) = step.as_ref().filter(|s| s.significant) {
        return Some(s.clone());
    }
    creep(points, params).or(step)
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
    // A board's headlines and series: each board on its own (a month of 1,000 boards is
    // ~2,000 board × framework and ~16,000 series), spread over the cores.
    let build = |((agent_id, framework), (group_key, runs)): Board| -> Vec<DriftSeries> {
        // (figure, unit of its first point, host name of its latest, points)
        let mut by: Vec<(String, String, &str, Vec<DriftPoint>)> = Vec::new();
        for run in runs {
            // The run's ids once, shared by its series' points.
            let run_id: Arc<str> = Arc::from(run.run_id.as_str());
            let campaign_id: Arc<str> = Arc::from(run.campaign_id.as_str());
            let env_key: Option<Arc<str>> = run.env_key.as_deref().map(Arc::from);
            for h in headlines(run, idx.figures_of(&run.run_id)) {
                let point = DriftPoint {
                    run_id: run_id.clone(),
                    campaign_id: campaign_id.clone(),
                    at: run.started_at,
                    value: h.value,
                    cv_pct: h.cv_pct,
                    noise_floor_pct: run.noise_floor_pct,
                    env_key: env_key.clone(),
                };
                match by.iter_mut().find(|(figure, ..)| *figure == h.figure) {
                    Some(entry) => {
                        entry.2 = run.hostname.as_str();
                        entry.3.push(point);
                    }
                    None => by.push((h.figure, h.unit, run.hostname.as_str(), vec![point])),
                }
            }
        }
        by.into_iter()
            .map(|(figure, unit, hostname, points)| {
                build_series(
                    group_key.to_string(),
                    agent_id.to_string(),
                    hostname.to_string(),
                    framework.to_string(),
                    figure,
                    unit,
                    points,
                    params,
                )
            })
            .collect()
    };
    let mut out: Vec<DriftSeries> = crate::par::par_map(boards.into_iter().collect(), build)
        .into_iter()
        .flatten()
        .collect();
    out.sort_by(|a, b| {
        (
            &a.group_key,
            &a.hostname,
            &a.agent_id,
            &a.framework,
            headline::figure_rank(&a.figure),
        )
            .cmp(&(
                &b.group_key,
                &b.hostname,
                &b.agent_id,
                &b.framework,
                headline::figure_rank(&b.figure),
            ))
    });
    out
}

/// One series with its periods and the test's finding at its end.
#[allow(clippy::too_many_arguments)]
fn build_series(
    group_key: String,
    agent_id: String,
    hostname: String,
    framework: String,
    figure: String,
    unit: String,
    points: Vec<DriftPoint>,
    params: &DriftParams,
) -> DriftSeries {
    let periods = periods(&points);
    let start = periods
        .last()
        .and_then(|p| points.iter().position(|x| x.run_id == p.start_run_id))
        .unwrap_or(0);
    let current = points.get(start..).unwrap_or(&[]);
    let finding = evaluate(current, params);
    let base_end = finding
        .as_ref()
        .and_then(|f| current.iter().position(|p| p.run_id == f.began_run_id))
        .unwrap_or(current.len());
    let base_values: Vec<f64> = current
        .get(..base_end)
        .unwrap_or(&[])
        .iter()
        .map(|p| p.value)
        .collect();
    let baseline = finding
        .as_ref()
        .map(|f| f.baseline)
        .or_else(|| stats::median(&base_values));
    let latest = points.last().map(|p| p.value);
    let latest_change_pct = match (latest, baseline) {
        (Some(l), Some(b)) => stats::change_pct(l, b),
        _ => None,
    };
    DriftSeries {
        threshold_pct: threshold_pct(current.get(..base_end).unwrap_or(&[]), params),
        group_key,
        agent_id,
        hostname,
        framework,
        figure,
        unit,
        points,
        periods,
        baseline,
        latest,
        latest_change_pct,
        finding,
    }
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

/// The alert life cycle, after a result of `series` (its latest point) is stored:
///
/// - a live alert for the series is `Suspected`, and a newer night (the confirmation run)
///   arrived: it becomes `Open` when the test, with that night, finds a significant drop,
///   else `Unconfirmed` (nothing is raised);
/// - an `Open` or `Acknowledged` alert becomes `Resolved` once the figure's latest two
///   nights are back within half the threshold of the alert's baseline; otherwise it is
///   not repeated;
/// - no live alert and a drop is found (suspected or significant): a new `Suspected` alert
///   (id `new_id`) and a confirmation run — unless a person dismissed an alert of the same
///   baseline period.
///
/// `alerts` are the stored alerts of this series (any state). Returns `None` when nothing
/// changes.
pub fn decide(
    series: &DriftSeries,
    alerts: &[AlertRecord],
    new_id: &str,
    now: Millis,
) -> Option<DriftAction> {
    let latest = series.points.last()?;
    let mine = |a: &&AlertRecord| {
        a.agent_id == series.agent_id
            && a.framework == series.framework
            && a.figure == series.figure
    };
    let live = alerts.iter().filter(mine).find(|a| a.state.is_live());
    let finding = series.finding.as_ref();
    match live {
        Some(a) if a.state == AlertState::Suspected => {
            if *latest.run_id == *a.run_id || latest.at < a.began_at {
                return None;
            }
            match finding.filter(|f| f.significant) {
                Some(f) => Some(DriftAction::Update {
                    id: a.id.clone(),
                    from: vec![AlertState::Suspected],
                    to: AlertState::Open,
                    current: Some(f.current),
                    change_pct: Some(f.change_pct),
                    message: format!(
                        "confirmed by run {}: {} {:.1}% ({} {}, p = {:.3}, noise {:.1}%)",
                        latest.run_id,
                        f.kind.as_str(),
                        f.change_pct,
                        fmt_value(f.current),
                        series.unit,
                        f.p_value,
                        f.threshold_pct
                    ),
                }),
                None => Some(DriftAction::Update {
                    id: a.id.clone(),
                    from: vec![AlertState::Suspected],
                    to: AlertState::Unconfirmed,
                    current: Some(latest.value),
                    change_pct: stats::change_pct(latest.value, a.baseline),
                    message: format!(
                        "run {} did not reproduce the drop ({} {}, baseline {} {})",
                        latest.run_id,
                        fmt_value(latest.value),
                        series.unit,
                        fmt_value(a.baseline),
                        series.unit
                    ),
                }),
            }
        }
        Some(a) => {
            let back = |p: &DriftPoint| {
                p.at > a.began_at
                    && stats::change_pct(p.value, a.baseline)
                        .is_some_and(|c| c > -series.threshold_pct / 2.0)
            };
            let n = series.points.len();
            let recovered = n >= 2 && series.points.get(n - 2..)?.iter().all(back);
            recovered.then(|| DriftAction::Update {
                id: a.id.clone(),
                from: vec![AlertState::Open, AlertState::Acknowledged],
                to: AlertState::Resolved,
                current: Some(latest.value),
                change_pct: stats::change_pct(latest.value, a.baseline),
                message: format!(
                    "recovered in run {}: {} {} (baseline {} {})",
                    latest.run_id,
                    fmt_value(latest.value),
                    series.unit,
                    fmt_value(a.baseline),
                    series.unit
                ),
            })
        }
        None => {
            let f = finding?;
            if f.run_id != latest.run_id {
                return None;
            }
            let period_start = series.periods.last().map_or(Millis::MIN, |p| p.start_at);
            let dismissed = alerts
                .iter()
                .filter(mine)
                .any(|a| a.state == AlertState::Dismissed && a.began_at >= period_start);
            if dismissed {
                return None;
            }
            Some(DriftAction::Suspect {
                alert: AlertRecord {
                    id: new_id.to_string(),
                    agent_id: series.agent_id.clone(),
                    hostname: series.hostname.clone(),
                    group_key: series.group_key.clone(),
                    framework: series.framework.clone(),
                    figure: series.figure.clone(),
                    baseline: f.baseline,
                    current: f.current,
                    change_pct: f.change_pct,
                    kind: f.kind.as_str().to_string(),
                    began_at: f.began_at,
                    run_id: latest.run_id.to_string(),
                    confirm_campaign_id: None,
                    state: AlertState::Suspected,
                    created_at: now,
                    updated_at: now,
                    message: format!(
                        "suspected {} of {:.1}% since run {} (p = {:.3}, noise {:.1}%): \
                         confirming with a one-board run",
                        f.kind.as_str(),
                        f.change_pct,
                        f.began_run_id,
                        f.p_value,
                        f.threshold_pct
                    ),
                },
            })
        }
    }
}

/// A value with four significant digits.
fn fmt_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::fixtures::night;

    /// Deterministic noise in [-amp, amp] percent.
    struct Noise(u64);
    impl Noise {
        fn next(&mut self, amp: f64) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = f64::from(u32::try_from(self.0 >> 40).unwrap()) / f64::from(1u32 << 24);
            (u * 2.0 - 1.0) * amp
        }
    }

    fn point(n: i64, tag: &str, value: f64, env: &str) -> DriftPoint {
        DriftPoint {
            run_id: format!("n{n}{tag}").into(),
            campaign_id: format!("c{n}{tag}").into(),
            at: night(n) + if tag.is_empty() { 0 } else { 3_600_000 },
            value,
            cv_pct: Some(1.0),
            noise_floor_pct: Some(1.5),
            env_key: Some(env.into()),
        }
    }

    fn make(points: Vec<DriftPoint>) -> DriftSeries {
        build_series(
            "g-1".into(),
            "a".into(),
            "host-a".into(),
            "numpy".into(),
            "gemm_peak fp32".into(),
            "GFLOPS".into(),
            points,
            &DriftParams::default(),
        )
    }

    /// The JSON says a run's shared facts once (`runs`) and reads back to the same report;
    /// a point of a run it does not list is refused, naming the run.
    #[test]
    fn a_report_says_each_run_once_and_reads_back_whole() {
        use crate::fleet::fixtures::{gemm, rows, run, triad};
        use crate::fleet::group::group_boards;
        let mut items = Vec::new();
        for n in 0..12 {
            for agent in ["a", "b"] {
                let id = format!("{agent}-{n}");
                let mut r = run(&id, &format!("c{n}"), agent, "numpy", night(n), "CPU");
                r.noise_floor_pct = Some(1.0 + f64::from(u8::try_from(n).unwrap()));
                r.env_key = Some(if n < 6 { "env-1" } else { "env-2" }.into());
                let v = 100.0 + f64::from(u8::try_from(n).unwrap());
                items.push((r, vec![gemm(&id, "fp32", 64, v), triad(&id, 1, v / 10.0)]));
            }
        }
        let rows = rows(items);
        let groups = group_boards(&rows.runs);
        let report = drift(
            &rows,
            &groups,
            Vec::new(),
            &DriftParams::default(),
            night(13),
        );
        assert_eq!(report.runs.len(), 24, "{:?}", report.runs);
        assert!(report.runs.windows(2).all(|w| w[0].at <= w[1].at));
        let points: usize = report.series.iter().map(|s| s.points.len()).sum();
        assert!(points > report.runs.len(), "{points} points");
        let json = serde_json::to_value(&report).unwrap();
        let point = &json["series"][0]["points"][0];
        assert!(
            point.get("campaign_id").is_none() && point.get("env_key").is_none(),
            "{point}"
        );
        assert_eq!(json["runs"][0]["campaign_id"], "c0", "{}", json["runs"][0]);
        let back: DriftReport = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, report);
        let p = &back.series[0].points[7];
        assert_eq!(
            (&*p.campaign_id, p.env_key.as_deref()),
            ("c7", Some("env-2"))
        );

        let mut orphan = json;
        orphan["runs"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["run_id"] != "a-3");
        let e = serde_json::from_value::<DriftReport>(orphan)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'a-3'") && e.contains("not among the report's runs"),
            "{e}"
        );
    }

    fn apply(alerts: &mut [AlertRecord], action: &DriftAction, now: Millis) {
        if let DriftAction::Update {
            id,
            from,
            to,
            current,
            change_pct,
            message,
        } = action
        {
            for a in alerts
                .iter_mut()
                .filter(|a| &a.id == id && from.contains(&a.state))
            {
                a.state = *to;
                a.current = current.unwrap_or(a.current);
                a.change_pct = change_pct.unwrap_or(a.change_pct);
                a.message = message.clone();
                a.updated_at = now;
            }
        }
    }

    /// What happened over the nights: (night, state) of each alert change, and the alerts.
    struct Played {
        events: Vec<(i64, AlertState)>,
        alerts: Vec<AlertRecord>,
        last: DriftSeries,
    }

    /// Plays `nights` nights of `value(n)` (environment `env(n)`); a suspicion starts a
    /// confirmation run the same night measuring `confirm(n)`.
    fn play(
        nights: i64,
        value: impl Fn(i64) -> f64,
        confirm: impl Fn(i64) -> f64,
        env: impl Fn(i64) -> &'static str,
    ) -> Played {
        let mut points = Vec::new();
        let mut alerts: Vec<AlertRecord> = Vec::new();
        let mut events = Vec::new();
        let mut last = make(Vec::new());
        for n in 0..nights {
            points.push(point(n, "", value(n), env(n)));
            last = make(points.clone());
            let id = format!("alert-{n}");
            match decide(&last, &alerts, &id, night(n)) {
                Some(DriftAction::Suspect { alert }) => {
                    events.push((n, AlertState::Suspected));
                    alerts.push(alert);
                    // The one-board confirmation run.
                    points.push(point(n, "c", confirm(n), env(n)));
                    last = make(points.clone());
                    if let Some(a) = decide(&last, &alerts, "unused", night(n) + 1) {
                        if let DriftAction::Update { to, .. } = &a {
                            events.push((n, *to));
                        }
                        apply(&mut alerts, &a, night(n));
                    }
                }
                Some(a @ DriftAction::Update { .. }) => {
                    if let DriftAction::Update { to, .. } = &a {
                        events.push((n, *to));
                    }
                    apply(&mut alerts, &a, night(n));
                }
                None => {}
            }
        }
        Played {
            events,
            alerts,
            last,
        }
    }

    #[test]
    fn noise_within_the_boards_spread_raises_nothing() {
        let noise = std::cell::RefCell::new(Noise(7));
        let p = play(
            90,
            |_| 100.0 * (1.0 + noise.borrow_mut().next(2.0) / 100.0),
            |_| 100.0,
            |_| "e1",
        );
        assert!(p.events.is_empty(), "{:?}", p.events);
        assert!(p.last.finding.is_none());
        assert!(p.last.threshold_pct > 2.0, "{}", p.last.threshold_pct);
    }

    #[test]
    fn a_step_is_confirmed_and_alerted_at_the_night_it_began() {
        let noise = std::cell::RefCell::new(Noise(11));
        let level = |n: i64| if n >= 30 { 85.0 } else { 100.0 };
        let p = play(
            40,
            |n| level(n) * (1.0 + noise.borrow_mut().next(1.5) / 100.0),
            |_| 84.0,
            |_| "e1",
        );
        assert_eq!(
            p.events,
            [(30, AlertState::Suspected), (30, AlertState::Open)]
        );
        let a = &p.alerts[0];
        assert_eq!(
            (a.kind.as_str(), a.began_at, a.run_id.as_str()),
            ("step", night(30), "n30")
        );
        assert!((a.baseline - 100.0).abs() < 1.5, "{}", a.baseline);
        assert!(
            a.change_pct < -12.0 && a.change_pct > -18.0,
            "{}",
            a.change_pct
        );
        assert!(a.message.contains("confirmed by run n30c"), "{}", a.message);
        // Open: the following low nights do not repeat it.
        assert_eq!(p.alerts.len(), 1);
    }

    #[test]
    fn a_slow_creep_is_alerted_once_it_is_significant_and_beyond_the_noise() {
        let noise = std::cell::RefCell::new(Noise(3));
        // Flat for 40 nights, then 0.1% lower every night: never a night far from the
        // nights before it, but 6% lower after two months.
        let level = |n: i64| {
            if n < 40 {
                100.0
            } else {
                100.0 - 0.1 * f64::from(i32::try_from(n - 40).unwrap())
            }
        };
        let p = play(
            110,
            |n| level(n) * (1.0 + noise.borrow_mut().next(0.4) / 100.0),
            level,
            |_| "e1",
        );
        let first = p.events.first().copied().expect("a creep is alerted");
        assert_eq!(
            p.events,
            [
                (first.0, AlertState::Suspected),
                (first.0, AlertState::Open)
            ]
        );
        let a = &p.alerts[0];
        assert_eq!(a.kind, "creep", "{a:?}");
        // Alerted once the Mann–Kendall test and the Theil–Sen line agree, 18 nights in; the
        // window that is steepest starts where the creep began.
        assert_eq!((first.0, a.began_at), (58, night(40)), "{a:?}");
        assert!(a.change_pct < -1.5, "{a:?}");
    }

    #[test]
    fn an_environment_change_starts_a_period_and_raises_nothing() {
        let noise = std::cell::RefCell::new(Noise(5));
        let p = play(
            50,
            |n| if n >= 30 { 80.0 } else { 100.0 } * (1.0 + noise.borrow_mut().next(1.0) / 100.0),
            |_| 80.0,
            |n| if n >= 30 { "e2" } else { "e1" },
        );
        assert!(p.events.is_empty(), "{:?}", p.events);
        assert_eq!(p.last.periods.len(), 2);
        let marker = &p.last.periods[1];
        assert_eq!(
            (marker.start_at, marker.previous_env_key.as_deref()),
            (night(30), Some("e1"))
        );
        assert_eq!((marker.env_key.as_deref(), marker.nights), (Some("e2"), 20));
        assert!(p.last.finding.is_none());
        assert!((p.last.baseline.unwrap() - 80.0).abs() < 1.0);
    }

    #[test]
    fn a_drop_the_confirmation_run_does_not_reproduce_raises_nothing() {
        let noise = std::cell::RefCell::new(Noise(13));
        let p = play(
            45,
            |n| {
                if n == 30 {
                    80.0
                } else {
                    100.0 * (1.0 + noise.borrow_mut().next(1.0) / 100.0)
                }
            },
            |_| 100.0,
            |_| "e1",
        );
        assert_eq!(
            p.events,
            [(30, AlertState::Suspected), (30, AlertState::Unconfirmed)]
        );
        assert_eq!(p.alerts[0].state, AlertState::Unconfirmed);
        assert!(p.alerts.iter().all(|a| a.state != AlertState::Open));
    }

    #[test]
    fn an_open_alert_resolves_when_the_figure_recovers() {
        let noise = std::cell::RefCell::new(Noise(17));
        let p = play(
            45,
            |n| {
                if (30..35).contains(&n) {
                    85.0
                } else {
                    100.0 * (1.0 + noise.borrow_mut().next(1.0) / 100.0)
                }
            },
            |_| 85.0,
            |_| "e1",
        );
        assert_eq!(
            p.events,
            [
                (30, AlertState::Suspected),
                (30, AlertState::Open),
                (36, AlertState::Resolved)
            ]
        );
    }

    #[test]
    fn a_dismissed_alert_is_not_raised_again_in_its_period() {
        let points: Vec<DriftPoint> = (0..20)
            .map(|n| {
                point(
                    n,
                    "",
                    if n >= 15 {
                        80.0
                    } else {
                        100.0 + (n % 3) as f64 * 0.3
                    },
                    "e1",
                )
            })
            .collect();
        let s = make(points);
        assert!(
            s.finding.as_ref().is_some_and(|f| f.significant),
            "{:?}",
            s.finding
        );
        let Some(DriftAction::Suspect { mut alert }) = decide(&s, &[], "x", 0) else {
            panic!("a suspect")
        };
        alert.state = AlertState::Dismissed;
        assert_eq!(decide(&s, &[alert], "y", 0), None);
    }

    #[test]
    fn five_baseline_nights_are_the_fewest_a_confirmed_step_needs() {
        let series = |base: usize| -> Vec<DriftPoint> {
            let mut v: Vec<DriftPoint> = (0..base)
                .map(|n| {
                    point(
                        i64::try_from(n).unwrap(),
                        "",
                        100.0 + (n % 2) as f64 * 0.5,
                        "e1",
                    )
                })
                .collect();
            v.push(point(50, "", 80.0, "e1"));
            v.push(point(50, "c", 80.5, "e1"));
            v
        };
        for (base, significant) in [(4, false), (5, true)] {
            let params = DriftParams {
                min_baseline: base,
                ..DriftParams::default()
            };
            let f = evaluate(&series(base), &params).expect("a step");
            assert_eq!(
                (f.kind, f.significant),
                (DriftKind::Step, significant),
                "{f:?}"
            );
        }
    }
}
