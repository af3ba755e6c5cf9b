//! The drift confirmation flow, a fourth `impl` of [`Coordinator`]: after a result is stored
//! the core evaluates drift for that board and framework (the decision is
//! [`crate::fleet::drift::decide`], pure, read and recorded by `server/reports.rs`); a suspected drop is recorded as a `suspected` alert
//! and starts a one-board confirmation campaign with the night's settings; only when that
//! run's result reproduces the drop does the alert become open. Alerts are not repeated
//! while one stands for the same board, framework and figure (the store refuses a second).
//! Time is an input.

use fleetcal_proto::framework::FrameworkChoice;

use super::core::Coordinator;
use crate::model::{CampaignRecord, Millis, RunRecord, Selector};
use crate::store::Store;
use crate::Error;

impl<S: Store> Coordinator<S> {
    /// After `run`'s result was stored at `now`: the drift decision for its board and
    /// framework ([`Coordinator::drift_decisions`]), recorded ([`Coordinator::apply_drift`]);
    /// each board and framework with new suspicions gets one confirmation campaign, attached
    /// to its alerts. A campaign that cannot start leaves them suspected: the board's next
    /// result decides them. Returns the confirmation campaigns started. `run` is the record
    /// the upload read ([`Coordinator::upload`]): it is not read again.
    pub async fn after_result(&self, run: &RunRecord, now: Millis) -> Result<Vec<String>, Error> {
        let actions = self.drift_decisions(run, now).await?;
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let mut started = Vec::new();
        for c in self.apply_drift(&actions, now).await? {
            if c.agent_id != run.agent_id || c.framework != run.framework.as_str() {
                continue; // decisions are of this run's series only
            }
            match self.start_confirmation(run, now).await {
                Ok(campaign) => {
                    self.attach_confirmation(&c.alert_ids, &campaign.id, now)
                        .await?;
                    started.push(campaign.id);
                }
                Err(e) => tracing::warn!(
                    agent = %c.agent_id, error = %e,
                    "drift suspected but the confirmation campaign could not start; the \
                     board's next result decides"
                ),
            }
        }
        Ok(started)
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
