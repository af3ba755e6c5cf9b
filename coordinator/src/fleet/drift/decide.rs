//! The alert life cycle of one drift series: what a new night's finding does to its stored
//! alerts (suspect, confirm, resolve, or nothing).

use super::{DriftAction, DriftPoint, DriftSeries};
use crate::fleet::alert::{AlertRecord, AlertState};
use crate::fleet::stats;
use crate::model::Millis;

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
