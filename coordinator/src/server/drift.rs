//! The drift confirmation flow, a fourth `impl` of [`Coordinator`]: after a result is stored
//! the core evaluates drift for that board and framework (the decision is
//! [`crate::fleet::drift::decide`], pure); a suspected drop is recorded as a `suspected` alert
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
