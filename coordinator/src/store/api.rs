//! The storage interface. Every backend implements [`Store`]; the coordinator is generic over
//! it, and the storage test suite runs against each backend.

use std::future::Future;

use crate::aggregate::ResultRow;
use crate::model::{AgentRecord, CampaignRecord, RunRecord, StoreOutcome, Transition};
use crate::Error;

/// Durable state: agents, campaigns, runs and results.
pub trait Store: Send + Sync + 'static {
    /// Inserts an agent, or updates everything but `registered_at` of an existing one.
    fn upsert_agent(&self, agent: &AgentRecord) -> impl Future<Output = Result<(), Error>> + Send;
    /// Sets an agent's `last_seen`; false when the agent is unknown.
    fn touch_agent(
        &self,
        agent_id: &str,
        at: i64,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// One agent.
    fn agent(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<AgentRecord>, Error>> + Send;
    /// Every agent, by host name then id.
    fn agents(&self) -> impl Future<Output = Result<Vec<AgentRecord>, Error>> + Send;
    /// A campaign and its runs, in one transaction.
    fn create_campaign(
        &self,
        campaign: &CampaignRecord,
        runs: &[RunRecord],
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// One campaign.
    fn campaign(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<CampaignRecord>, Error>> + Send;
    /// Campaigns with at least one queued or running run.
    fn active_campaigns(&self) -> impl Future<Output = Result<Vec<CampaignRecord>, Error>> + Send;
    /// One run.
    fn run(&self, run_id: &str) -> impl Future<Output = Result<Option<RunRecord>, Error>> + Send;
    /// Runs of one campaign, or of all (oldest campaign first, then plan order).
    fn runs(
        &self,
        campaign_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<RunRecord>, Error>> + Send;
    /// Every queued or running run.
    fn active_runs(&self) -> impl Future<Output = Result<Vec<RunRecord>, Error>> + Send;
    /// Applies a state change if the run is still in `from`; false when it was not.
    fn transition(&self, t: &Transition) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Records progress of a running run; false when the run is not running.
    fn progress(
        &self,
        run_id: &str,
        fraction: f64,
        message: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Stores a result and its rows and marks the run succeeded, in one transaction.
    /// `Duplicate` (nothing changed) when the run already has a result;
    /// `RunNotAccepting` (nothing changed) when the run is not running.
    fn store_result(
        &self,
        run: &RunRecord,
        result_json: &str,
        rows: &[ResultRow],
        at: i64,
    ) -> impl Future<Output = Result<StoreOutcome, Error>> + Send;
    /// The stored results of a campaign with their runs, in plan order.
    fn results(
        &self,
        campaign_id: &str,
    ) -> impl Future<Output = Result<Vec<(RunRecord, String)>, Error>> + Send;
    /// The normalised rows of one run's result, in record order.
    fn result_rows(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<ResultRow>, Error>> + Send;
}
