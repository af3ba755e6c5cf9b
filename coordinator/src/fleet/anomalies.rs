//! Anomalies: device fallbacks, above-theoretical figures, skipped precisions and sizes,
//! failed, timed-out and offline runs, noisy figures, and boards not calibrated for more than
//! N days.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::group::{BoardGroup, Groups};
use super::headline::Indexed;
use super::report::DAY_MS;
use super::rows::{FleetFigure, FleetRows};
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
    /// Every kind.
    pub const ALL: [AnomalyKind; 8] = [
        AnomalyKind::DeviceFallback,
        AnomalyKind::AboveTheoretical,
        AnomalyKind::Skipped,
        AnomalyKind::FailedRun,
        AnomalyKind::TimedOut,
        AnomalyKind::Offline,
        AnomalyKind::Noisy,
        AnomalyKind::NotCalibrated,
    ];

    /// The kind printed as `name` ([`AnomalyKind::as_str`]).
    pub fn from_name(name: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

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

/// What one result's own figures show (above the theoretical peak, skipped, unsupported or
/// failed by status and reason, noisy), made once when the result is stored
/// ([`super::rows::FleetRun::figure_flags`]): the anomalies report reads no figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureFlag {
    /// What kind ([`AnomalyKind::AboveTheoretical`], [`AnomalyKind::Skipped`] or
    /// [`AnomalyKind::Noisy`]).
    pub kind: AnomalyKind,
    /// The figures it is about (`gemm fp32 4096`).
    pub figures: Vec<String>,
    /// The number behind it (the best efficiency, the worst CV %), when one.
    pub value: Option<f64>,
    /// What it is, in words.
    pub detail: String,
}

/// The flags of one result's figures (every record, in record order).
pub fn figure_flags(figs: &[FleetFigure]) -> Vec<FigureFlag> {
    let mut items = Vec::new();
    let mut base = |kind: AnomalyKind, figures: Vec<String>, value: Option<f64>, detail: String| {
        items.push(FigureFlag {
            kind,
            figures,
            value,
            detail,
        })
    };
    let name = |f: &FleetFigure| format!("{} {} {}", f.operation, f.precision, f.size);
    let above: Vec<_> = figs.iter().filter(|f| f.above_theoretical).collect();
    if !above.is_empty() {
        let worst = above
            .iter()
            .filter_map(|f| f.efficiency)
            .fold(f64::NAN, f64::max);
        base(
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
        );
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
        let detail = format!("{} figure(s) {status}{why}", figures.len());
        base(AnomalyKind::Skipped, figures, None, detail);
    }
    let noisy: Vec<_> = figs.iter().filter(|f| f.noisy).collect();
    if !noisy.is_empty() {
        let worst = noisy
            .iter()
            .filter_map(|f| f.cv_pct)
            .fold(f64::NAN, f64::max);
        base(
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
        );
    }
    items
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
        for flag in &run.figure_flags {
            items.push(base(
                flag.kind,
                flag.figures.clone(),
                flag.value,
                flag.detail.clone(),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::fleet::fixtures::{gemm, night, rows, run};
    use crate::fleet::group::group_boards;
    use crate::model::{Capabilities, RunState};
    use fleetcal_proto::{DeviceKind, Framework};

    fn agent(id: &str) -> AgentRecord {
        AgentRecord {
            agent_id: id.into(),
            hostname: format!("host-{id}"),
            labels: BTreeMap::new(),
            preset: None,
            capabilities: Capabilities::default(),
            agent_version: "0.1.0".into(),
            registered_at: 0,
            last_seen: 0,
        }
    }

    fn failed(id: &str, agent: &str, state: RunState, at: Millis) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            campaign_id: "c9".into(),
            agent_id: agent.into(),
            hostname: format!("host-{agent}"),
            preset_id: "auto".into(),
            framework: Framework::Numpy,
            device: DeviceKind::Cpu,
            state,
            fraction: 0.0,
            message: String::new(),
            seq: 0,
            started_at: None,
            finished_at: Some(at),
            not_before: None,
        }
    }

    #[test]
    fn every_kind_is_named_with_its_board_and_run() {
        let mut fallback = run("r1", "c1", "a", "pytorch", night(5), "EPYC");
        fallback.fallback_from = Some("cuda".into());
        let mut above = gemm("r2", "fp32", 1024, 450.0);
        above.above_theoretical = true;
        let mut noisy = gemm("r2", "fp64", 1024, 90.0);
        noisy.noisy = true;
        noisy.cv_pct = Some(12.5);
        let mut skipped = gemm("r2", "fp16", 4096, 1.0);
        skipped.status = "skipped".into();
        skipped.reason = Some("over the time budget".into());
        skipped.best_gops = None;
        let rows = rows(vec![
            (fallback, vec![gemm("r1", "fp32", 1024, 100.0)]),
            (
                run("r2", "c1", "b", "numpy", night(5), "EPYC"),
                vec![above, noisy, skipped],
            ),
        ]);
        let groups = group_boards(&rows.runs);
        let runs = vec![
            failed("f1", "a", RunState::Failed, night(5)),
            failed("f2", "b", RunState::TimedOut, night(5)),
            failed("f3", "b", RunState::AgentOffline, night(5)),
            failed("old", "b", RunState::Failed, night(1)),
            failed("ok", "b", RunState::Succeeded, night(5)),
        ];
        let agents = vec![agent("a"), agent("b"), agent("c")];
        let last: BTreeMap<String, Millis> =
            [("a".to_string(), night(5)), ("b".to_string(), night(1))].into();
        let r = anomalies(
            &rows,
            &groups,
            AnomalyInputs {
                runs: &runs,
                agents: &agents,
                last_result: &last,
                since: Some(night(4)),
                stale_days: 3,
                group: None,
            },
            night(6),
        );
        let got: Vec<(AnomalyKind, &str, Option<&str>)> = r
            .items
            .iter()
            .map(|i| (i.kind, i.agent_id.as_str(), i.run_id.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (AnomalyKind::DeviceFallback, "a", Some("r1")),
                (AnomalyKind::AboveTheoretical, "b", Some("r2")),
                (AnomalyKind::Skipped, "b", Some("r2")),
                (AnomalyKind::FailedRun, "a", Some("f1")),
                (AnomalyKind::TimedOut, "b", Some("f2")),
                (AnomalyKind::Offline, "b", Some("f3")),
                (AnomalyKind::Noisy, "b", Some("r2")),
                (AnomalyKind::NotCalibrated, "b", None),
                (AnomalyKind::NotCalibrated, "c", None),
            ]
        );
        let skipped = &r.items[2];
        assert_eq!(skipped.figures, ["gemm fp16 4096"]);
        assert!(
            skipped.detail.contains("over the time budget"),
            "{}",
            skipped.detail
        );
        assert_eq!(r.items[1].value, Some(2.25));
        assert_eq!(r.items[6].value, Some(12.5));
        assert_eq!(r.items[7].value, Some(5.0));
        assert!(r.items[8].detail.contains("no result in the last 3 days"));
        assert_eq!(r.items[0].detail, "asked for cuda, measured on cpu");
    }
}
