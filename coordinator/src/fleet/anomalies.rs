//! Anomalies: device fallbacks, above-theoretical figures, skipped precisions and sizes,
//! failed, timed-out and offline runs, noisy figures, and boards not calibrated for more than
//! N days.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::group::{BoardGroup, Groups};
use super::headline::Indexed;
use super::report::DAY_MS;
use super::rows::FleetRows;
use crate::model::{AgentRecord, Millis, RunRecord, RunState};

/// What kind of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// The run measured on another device than the preset asked for.
    DeviceFallback,
    /// A figure above the theoretical peak.
    AboveTheoretical,
    /// Precisions or sizes skipped, unsupported or failed inside a result.
    Skipped,
    /// A run that failed.
    FailedRun,
    /// A run that timed out.
    TimedOut,
    /// A run whose board stayed offline until its campaign's deadline.
    Offline,
    /// A figure whose trials vary more than the noise rule allows.
    Noisy,
    /// A board not calibrated (no stored result) for more than N days.
    NotCalibrated,
}

impl AnomalyKind {
    /// The name printed.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::DeviceFallback => "device_fallback",
            AnomalyKind::AboveTheoretical => "above_theoretical",
            AnomalyKind::Skipped => "skipped",
            AnomalyKind::FailedRun => "failed",
            AnomalyKind::TimedOut => "timed_out",
            AnomalyKind::Offline => "offline",
            AnomalyKind::Noisy => "noisy",
            AnomalyKind::NotCalibrated => "not_calibrated",
        }
    }
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// The board group, when the board has results.
    pub group_key: Option<String>,
    /// The board.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// The framework, when it is about a run.
    pub framework: Option<String>,
    /// The run, when it is about one.
    pub run_id: Option<String>,
    /// Its campaign.
    pub campaign_id: Option<String>,
    /// When it happened (measured, ended, or last calibrated).
    pub at: Option<Millis>,
    /// The figures it is about (`gemm fp32 4096`), when any.
    pub figures: Vec<String>,
    /// The number behind it, when one (efficiency, CV %, days).
    pub value: Option<f64>,
    /// What it is, in words.
    pub detail: String,
}

/// The anomalies report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomaliesReport {
    /// When it was computed.
    pub generated_at: Millis,
    /// The groups it covers (key, facts, members).
    pub groups: Vec<BoardGroup>,
    /// The days without calibration after which a board is named.
    pub stale_days: u32,
    /// Every anomaly, by kind, then host name, then time.
    pub items: Vec<Anomaly>,
}

/// What the anomalies report reads besides the result rows.
#[derive(Debug, Clone, Copy)]
pub struct AnomalyInputs<'a> {
    /// Runs to check for failures (those that ended at or after `since` count).
    pub runs: &'a [RunRecord],
    /// The registered boards (for boards not calibrated lately).
    pub agents: &'a [AgentRecord],
    /// Each board's latest stored result (`started_at`), as far as known.
    pub last_result: &'a BTreeMap<String, Millis>,
    /// Only runs that ended at or after this time.
    pub since: Option<Millis>,
    /// Boards without a result for more than this many days are named.
    pub stale_days: u32,
    /// The report is narrowed to this group: runs and boards outside it (or without a
    /// result, so without a group) are left out.
    pub group: Option<&'a str>,
}

/// The anomalies of some rows (each board × framework's latest result), runs and boards at
/// `now`.
pub fn anomalies(
    rows: &FleetRows,
    groups: &Groups,
    inputs: AnomalyInputs<'_>,
    now: Millis,
) -> AnomaliesReport {
    let idx = Indexed::new(rows);
    let mut items = Vec::new();
    let group_of = |agent: &str| groups.key_of(agent).map(str::to_string);
    for run in idx.latest().into_values() {
        if groups.key_of(&run.agent_id).is_none() {
            continue;
        }
        let base =
            |kind: AnomalyKind, figures: Vec<String>, value: Option<f64>, detail: String| Anomaly {
                kind,
                group_key: group_of(&run.agent_id),
                agent_id: run.agent_id.clone(),
                hostname: run.hostname.clone(),
                framework: Some(run.framework.clone()),
                run_id: Some(run.run_id.clone()),
                campaign_id: Some(run.campaign_id.clone()),
                at: Some(run.started_at),
                figures,
                value,
                detail,
            };
        if let Some(from) = &run.fallback_from {
            items.push(base(
                AnomalyKind::DeviceFallback,
                Vec::new(),
                None,
                format!("asked for {from}, measured on {}", run.device),
            ));
        }
        let figs = idx.figures_of(&run.run_id);
        let name =
            |f: &super::rows::FleetFigure| format!("{} {} {}", f.operation, f.precision, f.size);
        let above: Vec<_> = figs.iter().filter(|f| f.above_theoretical).collect();
        if !above.is_empty() {
            let worst = above
                .iter()
                .filter_map(|f| f.efficiency)
                .fold(f64::NAN, f64::max);
            items.push(base(
                AnomalyKind::AboveTheoretical,
                above.iter().map(|f| name(f)).collect(),
                worst.is_finite().then_some(worst),
                format!(
                    "{} figure(s) above the theoretical peak (best efficiency {})",
                    above.len(),
                    if worst.is_finite() {
                        format!("{:.0}%", worst * 100.0)
                    } else {
                        "unknown".into()
                    }
                ),
            ));
        }
        let mut skipped: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for f in figs.iter().filter(|f| f.status != "measured") {
            skipped
                .entry((f.status.clone(), f.reason.clone().unwrap_or_default()))
                .or_default()
                .push(name(f));
        }
        for ((status, reason), figures) in skipped {
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            };
            items.push(base(
                AnomalyKind::Skipped,
                figures.clone(),
                None,
                format!("{} figure(s) {status}{why}", figures.len()),
            ));
        }
        let noisy: Vec<_> = figs.iter().filter(|f| f.noisy).collect();
        if !noisy.is_empty() {
            let worst = noisy
                .iter()
                .filter_map(|f| f.cv_pct)
                .fold(f64::NAN, f64::max);
            items.push(base(
                AnomalyKind::Noisy,
                noisy.iter().map(|f| name(f)).collect(),
                worst.is_finite().then_some(worst),
                format!(
                    "{} noisy figure(s){}",
                    noisy.len(),
                    if worst.is_finite() {
                        format!(", trial CV up to {worst:.1}%")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
    }
    for r in inputs.runs {
        let kind = match r.state {
            RunState::Failed => AnomalyKind::FailedRun,
            RunState::TimedOut => AnomalyKind::TimedOut,
            RunState::AgentOffline => AnomalyKind::Offline,
            _ => continue,
        };
        let at = r.finished_at;
        if inputs.since.is_some_and(|s| at.is_none_or(|a| a < s)) {
            continue;
        }
        let grouped = group_of(&r.agent_id);
        if grouped.is_none() && inputs.group.is_some() {
            continue;
        }
        items.push(Anomaly {
            kind,
            group_key: grouped,
            agent_id: r.agent_id.clone(),
            hostname: r.hostname.clone(),
            framework: Some(r.framework.as_str().to_string()),
            run_id: Some(r.run_id.clone()),
            campaign_id: Some(r.campaign_id.clone()),
            at,
            figures: Vec::new(),
            value: None,
            detail: if r.message.is_empty() {
                r.state.as_str().to_string()
            } else {
                r.message.clone()
            },
        });
    }
    let stale_ms = i64::from(inputs.stale_days).saturating_mul(DAY_MS);
    for a in inputs.agents {
        let grouped = group_of(&a.agent_id);
        if grouped.is_none() && inputs.group.is_some() {
            continue;
        }
        let last = inputs.last_result.get(&a.agent_id).copied();
        let age = last.map(|l| now.saturating_sub(l));
        if age.is_some_and(|x| x <= stale_ms) {
            continue;
        }
        items.push(Anomaly {
            kind: AnomalyKind::NotCalibrated,
            group_key: grouped,
            agent_id: a.agent_id.clone(),
            hostname: a.hostname.clone(),
            framework: None,
            run_id: None,
            campaign_id: None,
            at: last,
            figures: Vec::new(),
            value: age.map(stats_days),
            detail: match age {
                Some(x) => format!(
                    "no result for {:.1} days (more than {})",
                    stats_days(x),
                    inputs.stale_days
                ),
                None => format!("no result in the last {} days", inputs.stale_days),
            },
        });
    }
    items.sort_by(|a, b| {
        (a.kind, &a.hostname, a.at, &a.run_id, &a.detail).cmp(&(
            b.kind,
            &b.hostname,
            b.at,
            &b.run_id,
            &b.detail,
        ))
    });
    AnomaliesReport {
        generated_at: now,
        groups: groups.groups.clone(),
        stale_days: inputs.stale_days,
        items,
    }
}

fn stats_days(ms: Millis) -> f64 {
    super::stats::days(ms)
}
