//! The drift confirmation flow, a fourth `impl` of [`Coordinator`]: after a result is stored
//! the core evaluates drift for that board and framework (the decision is
//! [`crate::fleet::drift::decide`], pure); a suspected drop is recorded as a `suspected` alert
//! and starts a one-board confirmation campaign with the night's settings; only when that
//! run's result reproduces the drop does the alert become open. Alerts are not repeated
//! while one stands for the same board, framework and figure (the store refuses a second).
//! Time is an input.

use fleetcal_proto::framework::FrameworkChoice;

use super::core::Coordinator;
use crate::fleet::drift::{decide, series, DriftAction};
use crate::fleet::group::group_boards;
use crate::fleet::report::DAY_MS;
use crate::fleet::{AlertState, FleetQuery};
use crate::model::{CampaignRecord, Millis, RunRecord, Selector};
use crate::store::{AlertUpdate, Store};
use crate::Error;

/// How far back the drift of one board is evaluated after a result: more nights than the
/// test's windows (baseline, steps, creeps) use.
pub const DRIFT_LOOKBACK_DAYS: i64 = 120;

impl<S: Store> Coordinator<S> {
    /// After run `run_id`'s result was stored at `now`: evaluates drift for its board and
    /// framework ([`decide`] per headline figure) and applies what it says. A suspected drop
    /// is recorded and starts one confirmation campaign (shared by every figure that run
    /// raised); an alert already standing is not repeated (the store refuses a second live
    /// one). Returns the alerts it recorded or changed, with their new state.
    pub async fn after_result(
        &self,
        run_id: &str,
        now: Millis,
    ) -> Result<Vec<(String, AlertState)>, Error> {
        let Some(run) = self.store.run(run_id).await? else {
            return Ok(Vec::new());
        };
        // Every framework of the board: its group key is the one the reports show.
        let rows = self
            .store
            .fleet_rows(&FleetQuery {
                agent_id: Some(run.agent_id.clone()),
                since: Some(now.saturating_sub(DRIFT_LOOKBACK_DAYS * DAY_MS)),
                ..FleetQuery::default()
            })
            .await?;
        let groups = group_boards(&rows.runs);
        let framework = run.framework.as_str();
        let alerts: Vec<_> = self
            .store
            .alerts(&[])
            .await?
            .into_iter()
            .filter(|a| a.agent_id == run.agent_id && a.framework == framework)
            .collect();
        let mut changed = Vec::new();
        let mut confirmation: Option<String> = None;
        for s in series(&rows, &groups, &self.settings.drift)
            .iter()
            .filter(|s| s.agent_id == run.agent_id && s.framework == framework)
        {
            let new_id = uuid::Uuid::new_v4().to_string();
            match decide(s, &alerts, &new_id, now) {
                None => {}
                Some(DriftAction::Suspect { alert }) => {
                    if !self.store.insert_alert(&alert).await? {
                        continue; // one stands already
                    }
                    let campaign = match &confirmation {
                        Some(id) => Ok(id.clone()),
                        None => self.start_confirmation(&run, now).await.map(|c| c.id),
                    };
                    let update = match campaign {
                        Ok(id) => {
                            confirmation = Some(id.clone());
                            AlertUpdate {
                                state: AlertState::Suspected,
                                current: None,
                                change_pct: None,
                                confirm_campaign_id: Some(id),
                                message: alert.message.clone(),
                                at: now,
                            }
                        }
                        // The next night decides it instead.
                        Err(e) => AlertUpdate {
                            state: AlertState::Suspected,
                            current: None,
                            change_pct: None,
                            confirm_campaign_id: None,
                            message: format!(
                                "{}; the confirmation campaign could not start ({e}): the next \
                                 result of this board decides",
                                alert.message
                            ),
                            at: now,
                        },
                    };
                    self.store
                        .update_alert(&alert.id, &[AlertState::Suspected], &update)
                        .await?;
                    tracing::warn!(
                        alert = %alert.id, agent = %alert.agent_id, figure = %alert.figure,
                        change_pct = alert.change_pct, "drift suspected"
                    );
                    changed.push((alert.id, AlertState::Suspected));
                }
                Some(DriftAction::Update {
                    id,
                    from,
                    to,
                    current,
                    change_pct,
                    message,
                }) => {
                    let update = AlertUpdate {
                        state: to,
                        current,
                        change_pct,
                        confirm_campaign_id: None,
                        message,
                        at: now,
                    };
                    if self.store.update_alert(&id, &from, &update).await? {
                        tracing::warn!(alert = %id, state = to.as_str(), "drift alert changed");
                        changed.push((id, to));
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Starts the one-board confirmation campaign of a suspicion raised by `run`'s result:
    /// the same board, preset, framework and settings as the campaign that ran it, at `now`.
    pub async fn start_confirmation(
        &self,
        run: &RunRecord,
        now: Millis,
    ) -> Result<CampaignRecord, Error> {
        let night = self.require_campaign(&run.campaign_id).await?;
        let mut spec = night.spec;
        spec.selector = Selector::Agent(run.agent_id.clone());
        spec.framework = FrameworkChoice::Only(run.framework);
        spec.concurrency = 0;
        spec.deadline_s = 0;
        let (campaign, _) = self.plan_and_store(self.with_defaults(spec), now).await?;
        tracing::info!(
            agent = %run.agent_id,
            framework = %run.framework,
            campaign = %campaign.id,
            "drift suspected: confirmation campaign started"
        );
        Ok(campaign)
    }
}
