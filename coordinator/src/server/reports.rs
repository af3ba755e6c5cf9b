//! The fleet reports' use cases, a third `impl` of the [`Coordinator`]: reading a report
//! (the rows, boards, runs and alerts it needs through [`Store`], then the pure
//! [`crate::fleet`] functions), and the drift decision after a result is stored (which
//! alerts to record or move, which boards to confirm with a one-board run).

use std::collections::{BTreeMap, BTreeSet};

use super::core::Coordinator;
use crate::domain::DomainError;
use crate::fleet::alert::{AlertRecord, AlertState};
use crate::fleet::anomalies::{anomalies, AnomalyInputs};
use crate::fleet::boards::boards;
use crate::fleet::compare::compare;
use crate::fleet::drift::{self, BoardHistory, DriftAction, DriftParams};
use crate::fleet::group::{group_boards, Groups};
use crate::fleet::report::DAY_MS;
use crate::fleet::roofline::roofline;
use crate::fleet::{FleetQuery, FleetRows, Report, ReportKind, ReportQuery};
use crate::model::{AgentRecord, Millis, RunRecord};
use crate::store::{AlertUpdate, Store};
use crate::Error;

/// Nights of a board's history the drift decision reads after an upload (enough for the
/// baseline window, the longest creep window and the nights after a step).
pub const DRIFT_LOOKBACK_DAYS: i64 = 120;

/// Most campaigns the anomalies report reads runs of.
const ANOMALY_CAMPAIGNS: usize = 1000;
/// Campaigns the anomalies report lists at a time, newest first, until one is older than
/// its window.
const ANOMALY_PAGE: u32 = 16;

/// A one-board confirmation run to start for suspected drops ([`Coordinator::apply_drift`]):
/// start a campaign of this board and framework, then attach it to the alerts
/// ([`Coordinator::attach_confirmation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The board.
    pub agent_id: String,
    /// The framework to run (`numpy` or `pytorch`).
    pub framework: String,
    /// The `Suspected` alerts it confirms.
    pub alert_ids: Vec<String>,
}

/// Whether an agent carries every `key=value` of a selection.
fn selected(agent: &AgentRecord, q: &FleetQuery) -> bool {
    q.agent_id.as_ref().is_none_or(|id| *id == agent.agent_id)
        && q.select
            .iter()
            .all(|(k, v)| agent.labels.get(k).is_some_and(|have| have == v))
}

/// The board groups of some rows, narrowed to `group` (which must be one of them).
fn groups_of(rows: &FleetRows, group: Option<&str>) -> Result<Groups, Error> {
    let all = group_boards(&rows.runs);
    if let Some(key) = group {
        if all.group(key).is_none() {
            let known: Vec<&str> = all.groups.iter().map(|g| g.key.as_str()).collect();
            return Err(Error::from(DomainError::InvalidRequest(format!(
                "field 'group': no board group {} in the results read (groups: {})",
                fleetcal_proto::quote::quoted(key),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))));
        }
    }
    Ok(all.only(group))
}

impl<S: Store> Coordinator<S> {
    /// The drift test's knobs (the one place they are read): the settings'
    /// (`--drift-min-baseline`).
    fn drift_params(&self) -> &DriftParams {
        &self.settings.drift
    }

    /// Computes a report at `now` from the stored results `q` selects.
    pub async fn report(
        &self,
        kind: ReportKind,
        q: &ReportQuery,
        now: Millis,
    ) -> Result<Report, Error> {
        let fq = q.rows_query(now)?;
        let started = std::time::Instant::now();
        let rows = self.report_rows(kind, &fq).await?;
        let read = started.elapsed();
        let groups = groups_of(&rows, q.group.as_deref())?;
        let report = match kind {
            ReportKind::Compare => Report::Compare(compare(&rows, &groups, now)),
            ReportKind::Boards => Report::Boards(boards(&rows, &groups, now)),
            ReportKind::Roofline => Report::Roofline(roofline(&rows, &groups, now)),
            ReportKind::Drift => {
                let alerts = self.store.alerts(&[]).await?;
                Report::Drift(drift::drift(
                    &rows,
                    &groups,
                    alerts,
                    self.drift_params(),
                    now,
                ))
            }
            ReportKind::Anomalies => {
                Report::Anomalies(self.anomalies_report(&fq, q, &rows, &groups, now).await?)
            }
        };
        tracing::debug!(
            report = kind.as_str(),
            runs = rows.runs.len(),
            figures = rows.figures.len(),
            read_ms = read.as_millis(),
            model_ms = (started.elapsed() - read).as_millis(),
            "report computed"
        );
        Ok(report)
    }

    /// The rows report `kind` reads for `fq`: every run with its headline records (only each
    /// board × framework's latest for the reports of the latest results), and the packed
    /// values the report reads besides (roofline points, pair rates, figure flags), in the
    /// order [`FleetRows`] says. No report opens a result document.
    async fn report_rows(&self, kind: ReportKind, fq: &FleetQuery) -> Result<FleetRows, Error> {
        self.store
            .fleet_rows(&FleetQuery {
                headline_figures_only: true,
                latest_only: kind.latest_only(),
                paired_only: kind.paired_only(),
                roofline_points: kind.roofline_points(),
                pair_rates: kind.pair_rates(),
                figure_flags: kind.figure_flags(),
                ..fq.clone()
            })
            .await
    }

    /// The anomalies report: the rows' latest results, the runs of the campaigns created in
    /// the window (by default the last `stale_days`), and the selected boards' last results.
    async fn anomalies_report(
        &self,
        fq: &FleetQuery,
        q: &ReportQuery,
        rows: &FleetRows,
        groups: &Groups,
        now: Millis,
    ) -> Result<crate::fleet::anomalies::AnomaliesReport, Error> {
        let stale_days = q.stale_days();
        let stale_since = now.saturating_sub(i64::from(stale_days).saturating_mul(DAY_MS));
        let since = fq.since.unwrap_or(stale_since);
        let agents: Vec<AgentRecord> = self
            .store
            .agents()
            .await?
            .into_iter()
            .filter(|a| selected(a, fq))
            .collect();
        let chosen: BTreeSet<&str> = agents.iter().map(|a| a.agent_id.as_str()).collect();
        // The runs that ended without a result, of the campaigns created since the window
        // began (newest first, a small page at a time: a page's run counts are read with it,
        // and a page of 1,000 campaigns of 1,000 boards each cost ~0.4 s), bounded.
        let mut campaigns: Vec<String> = Vec::new();
        let mut after = None;
        'pages: loop {
            let page = self
                .store
                .campaigns_page(fq.schedule.as_deref(), after.as_ref(), ANOMALY_PAGE)
                .await?;
            for (key, _) in page.items {
                if key.created_at < since || campaigns.len() >= ANOMALY_CAMPAIGNS {
                    break 'pages;
                }
                if fq.campaign_id.as_ref().is_none_or(|c| *c == key.id) {
                    campaigns.push(key.id);
                }
            }
            match page.last {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        let runs: Vec<RunRecord> = self
            .store
            .runs_ended_badly(&campaigns)
            .await?
            .into_iter()
            .filter(|r| chosen.contains(r.agent_id.as_str()))
            .filter(|r| {
                fq.framework
                    .as_ref()
                    .is_none_or(|f| f == r.framework.as_str())
            })
            .collect();
        // Each board's latest result: from the rows, and from the stale window when the
        // rows do not reach back that far.
        let mut last: BTreeMap<String, Millis> = BTreeMap::new();
        let mut note = |rows: &FleetRows| {
            for r in &rows.runs {
                let slot = last.entry(r.agent_id.clone()).or_insert(r.started_at);
                *slot = (*slot).max(r.started_at);
            }
        };
        note(rows);
        if fq.since.is_some_and(|s| s > stale_since) {
            let recent = FleetQuery {
                select: fq.select.clone(),
                agent_id: fq.agent_id.clone(),
                since: Some(stale_since),
                runs_only: true,
                ..FleetQuery::default()
            };
            note(&self.store.fleet_rows(&recent).await?);
        }
        Ok(anomalies(
            rows,
            groups,
            AnomalyInputs {
                runs: &runs,
                agents: &agents,
                last_result: &last,
                since: Some(since),
                stale_days,
                group: q.group.as_deref(),
            },
            now,
        ))
    }

    /// The drift decision after the result of `run` was stored at `now`: for each of its
    /// headline figures, what the alert life cycle does ([`drift::decide`]). Reads the
    /// board's last [`DRIFT_LOOKBACK_DAYS`] of results (its kept history and the new run,
    /// [`Coordinator::board_history`]) and its alerts; changes nothing
    /// ([`Coordinator::apply_drift`] records the decisions).
    pub async fn drift_decisions(
        &self,
        run: &RunRecord,
        now: Millis,
    ) -> Result<Vec<DriftAction>, Error> {
        let run_id = run.run_id.as_str();
        // The alerts first: a history taken out is given back on every path below.
        let alerts: Vec<AlertRecord> = self.store.agent_alerts(&run.agent_id).await?;
        let history = self.board_history(run, now).await?;
        // Only this framework's series are decided: the other's are not tested.
        let actions = history
            .series(run.framework.as_str(), self.drift_params())
            .iter()
            .filter(|s| s.points.last().is_some_and(|p| &*p.run_id == run_id))
            .filter_map(|s| decide_one(s, &alerts, now))
            .collect();
        self.histories.give_back(&run.agent_id, history);
        Ok(actions)
    }

    /// The board of `run`'s nights of the last [`DRIFT_LOOKBACK_DAYS`] before `now`, both
    /// frameworks' (its group key is made of both): its kept history when the store counts
    /// as many runs in the window, or one more and that is `run` (read alone and added);
    /// else the window read again. (Exact: [`crate::fleet::drift::BoardHistory`].) The
    /// caller gives it back ([`super::histories::Histories::give_back`]).
    pub async fn board_history(&self, run: &RunRecord, now: Millis) -> Result<BoardHistory, Error> {
        let since = now.saturating_sub(DRIFT_LOOKBACK_DAYS.saturating_mul(DAY_MS));
        let window = FleetQuery {
            agent_id: Some(run.agent_id.clone()),
            since: Some(since),
            // The series are of headline figures: the other records are not read.
            headline_figures_only: true,
            ..FleetQuery::default()
        };
        if let Some(mut kept) = self
            .histories
            .take(&run.agent_id)
            .filter(|h| h.covers(since))
        {
            kept.expire(since);
            let stored = self.store.fleet_run_count(&window).await?;
            let held = u64::try_from(kept.len()).unwrap_or(u64::MAX);
            if stored == held {
                return Ok(kept);
            }
            if stored == held.saturating_add(1) && !kept.contains(&run.run_id) {
                let one = FleetQuery {
                    run_id: Some(run.run_id.clone()),
                    ..window.clone()
                };
                let rows = self.store.fleet_rows(&one).await?;
                if kept.add(&rows).is_ok() {
                    return Ok(kept);
                }
            }
        }
        let rows = self.store.fleet_rows(&window).await?;
        Ok(BoardHistory::new(&run.agent_id, since, &rows))
    }

    /// Records drift decisions at `now`: new `Suspected` alerts (one already live for the
    /// same figure wins; the new one is dropped) and state changes. Returns the one-board
    /// confirmation runs to start, one per board and framework.
    pub async fn apply_drift(
        &self,
        actions: &[DriftAction],
        now: Millis,
    ) -> Result<Vec<Confirmation>, Error> {
        let mut confirm: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for action in actions {
            match action {
                DriftAction::Suspect { alert } => {
                    if self.store.insert_alert(alert).await? {
                        tracing::info!(
                            alert = %alert.id, agent = %alert.agent_id, figure = %alert.figure,
                            change_pct = alert.change_pct, "drift suspected; confirming"
                        );
                        confirm
                            .entry((alert.agent_id.clone(), alert.framework.clone()))
                            .or_default()
                            .push(alert.id.clone());
                    }
                }
                DriftAction::Update {
                    id,
                    from,
                    to,
                    current,
                    change_pct,
                    message,
                } => {
                    let update = AlertUpdate {
                        state: *to,
                        current: *current,
                        change_pct: *change_pct,
                        confirm_campaign_id: None,
                        message: message.clone(),
                        at: now,
                    };
                    if self.store.update_alert(id, from, &update).await? {
                        tracing::info!(alert = %id, state = to.as_str(), "drift alert updated");
                    }
                }
            }
        }
        Ok(confirm
            .into_iter()
            .map(|((agent_id, framework), alert_ids)| Confirmation {
                agent_id,
                framework,
                alert_ids,
            })
            .collect())
    }

    /// Notes the confirmation campaign started for suspected alerts (they stay `Suspected`).
    pub async fn attach_confirmation(
        &self,
        alert_ids: &[String],
        campaign_id: &str,
        now: Millis,
    ) -> Result<(), Error> {
        for id in alert_ids {
            let before = self
                .store
                .alert(id)
                .await?
                .map(|a| format!("{}; ", a.message))
                .unwrap_or_default();
            let update = AlertUpdate {
                state: AlertState::Suspected,
                current: None,
                change_pct: None,
                confirm_campaign_id: Some(campaign_id.to_string()),
                message: format!("{before}confirmation campaign {campaign_id} started"),
                at: now,
            };
            self.store
                .update_alert(id, &[AlertState::Suspected], &update)
                .await?;
        }
        Ok(())
    }
}

/// One series' decision, with a fresh alert id.
fn decide_one(
    series: &crate::fleet::drift::DriftSeries,
    alerts: &[AlertRecord],
    now: Millis,
) -> Option<DriftAction> {
    let id = uuid::Uuid::new_v4().to_string();
    drift::decide(series, alerts, &id, now)
}

#[cfg(test)]
#[path = "reports_tests.rs"]
mod tests;
