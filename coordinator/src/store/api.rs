//! The storage interface. Every backend implements [`Store`]; the coordinator is generic over
//! it, and the storage test suite runs against each backend.

use std::collections::HashSet;
use std::future::Future;

use crate::aggregate::RunCounts;
use crate::fleet::{AlertRecord, AlertState, FleetFigure, FleetQuery, FleetRows, FleetRun};
use crate::model::{
    AgentRecord, CampaignRecord, FiringRecord, Millis, RunLease, RunRecord, ScheduleRecord,
    StoreOutcome, Transition,
};
use crate::Error;

/// One page of a listing, in the listing's key order.
///
/// Rows that cannot be decoded are left out (each logged as a warning naming the row and
/// the column, see [`Store`]); `last` still moves past them, so a listing never stops at one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<K, T> {
    /// The rows that decoded, each with its key.
    pub items: Vec<(K, T)>,
    /// The key of the last row read when the page was full (more may follow: the next page
    /// starts after it); `None` when the listing ended.
    pub last: Option<K>,
}

/// Where a run is in the runs listing: its campaign's creation time and id, then its plan
/// order. Runs are listed in this order, so a page starts after one of these.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunKey {
    /// The campaign's `created_at`.
    pub created_at: Millis,
    /// The campaign's id.
    pub campaign_id: String,
    /// The run's `seq`.
    pub seq: i64,
}

/// Where a campaign is in the campaigns listing (newest first): its creation time and id. A
/// page starts after one of these.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CampaignKey {
    /// The campaign's `created_at`.
    pub created_at: Millis,
    /// The campaign's id.
    pub id: String,
}

/// The firings of one schedule that [`Store::claim_firings`] handles at once.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The schedule.
    pub schedule: &'a str,
    /// Firings recorded as missed (scheduled time, why); one already recorded stays as it is.
    pub missed: &'a [(Millis, String)],
    /// The firing that fires: its campaign (tagged with the schedule and the scheduled time),
    /// its runs, and the firing's message.
    pub fired: Option<(&'a CampaignRecord, &'a [RunRecord], &'a str)>,
    /// The schedule's `handled_until` moves up to this (never back); `None` leaves it
    /// (`run-now` is a firing outside the cron rule).
    pub handled_until: Option<Millis>,
    /// Whether a paused schedule is claimed too (`run-now`).
    pub even_paused: bool,
    /// When it is recorded.
    pub at: Millis,
}

/// What [`Store::claim_firings`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Recorded: the fired firing's campaign and runs were created, the missed ones recorded,
    /// `handled_until` moved.
    Claimed,
    /// Nothing changed: the fired firing is recorded already (another coordinator claimed
    /// it); the campaign it made, if any.
    Taken {
        /// That firing's campaign.
        campaign_id: Option<String>,
    },
    /// Nothing changed: no such schedule (or it is paused and `even_paused` is false).
    NoSchedule,
}

/// What [`Store::remove_agent`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Removed; this many of its queued runs were marked failed.
    Removed {
        /// Queued runs that became `failed`.
        failed_runs: u64,
    },
    /// Nothing changed: the agent is running this run.
    Running {
        /// The running run.
        run_id: String,
    },
    /// Nothing changed: no such agent (or it is already removed).
    NotFound,
}

/// Durable state: agents, campaigns, runs and results.
///
/// A listing (every method returning a `Vec` or a [`Page`]) never fails because of one row:
/// a row that cannot be decoded (written by hand, or by an older version with a bug) is left
/// out with a `tracing::warn!` naming the table, the row's id and the column, and the rest
/// is returned. [`Store::remove_agent`] and a new registration of the same id clear a
/// poisoned agent row. Removed agents are invisible to every agent lookup and listing.
pub trait Store: Send + Sync + 'static {
    /// Inserts an agent, or updates everything but `registered_at` of an existing one (a
    /// removed one is back).
    fn upsert_agent(&self, agent: &AgentRecord) -> impl Future<Output = Result<(), Error>> + Send;
    /// Sets an agent's `last_seen`; false when the agent is unknown.
    fn touch_agent(
        &self,
        agent_id: &str,
        at: i64,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Sets several agents' `last_seen` and `stream_seen` (agent id, time: each heard on its
    /// open directive stream) in one transaction; returns the ids it passed over because they
    /// are unknown or removed.
    fn touch_agents(
        &self,
        contacts: &[(String, i64)],
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    /// One agent.
    fn agent(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<AgentRecord>, Error>> + Send;
    /// Every agent, by host name then id.
    fn agents(&self) -> impl Future<Output = Result<Vec<AgentRecord>, Error>> + Send;
    /// Up to `limit` agents with an id after `after`, by id.
    fn agents_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Page<String, AgentRecord>, Error>> + Send;
    /// Removes an agent (it is kept for its runs' history but listed nowhere) and marks its
    /// queued runs failed with `message`, in one transaction; refused while it runs a run.
    fn remove_agent(
        &self,
        agent_id: &str,
        at: Millis,
        message: &str,
    ) -> impl Future<Output = Result<RemoveOutcome, Error>> + Send;
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
    /// Up to `limit` campaigns (of one schedule, or all) after `after`, newest first (by
    /// [`CampaignKey`], descending), each with its run counts by state.
    fn campaigns_page(
        &self,
        schedule: Option<&str>,
        after: Option<&CampaignKey>,
        limit: u32,
    ) -> impl Future<Output = Result<Page<CampaignKey, (CampaignRecord, RunCounts)>, Error>> + Send;
    /// Campaigns with at least one queued or running run.
    fn active_campaigns(&self) -> impl Future<Output = Result<Vec<CampaignRecord>, Error>> + Send;
    /// One run.
    fn run(&self, run_id: &str) -> impl Future<Output = Result<Option<RunRecord>, Error>> + Send;
    /// Runs of one campaign, or of all (oldest campaign first, then plan order).
    fn runs(
        &self,
        campaign_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<RunRecord>, Error>> + Send;
    /// The runs of these campaigns that ended without a result (failed, timed out, agent
    /// offline), by campaign then plan order: what the anomalies report lists of the
    /// campaigns in its window, without reading the runs that succeeded.
    fn runs_ended_badly(
        &self,
        campaign_ids: &[String],
    ) -> impl Future<Output = Result<Vec<RunRecord>, Error>> + Send;
    /// Up to `limit` runs (of one campaign, or of all) after `after`, in [`RunKey`] order.
    fn runs_page(
        &self,
        campaign_id: Option<&str>,
        after: Option<&RunKey>,
        limit: u32,
    ) -> impl Future<Output = Result<Page<RunKey, RunRecord>, Error>> + Send;
    /// Every queued or running run.
    fn active_runs(&self) -> impl Future<Output = Result<Vec<RunRecord>, Error>> + Send;
    /// Applies a state change if the run is still in `from`; false when it was not.
    fn transition(&self, t: &Transition) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Applies several state changes in one transaction, each only if its run is still in
    /// its `from` (as [`Store::transition`] does one); a run started (to running) is leased
    /// to `lease.owner` until `lease.expires` (as [`Store::start_run`] does one). Returns the
    /// ids of the runs that changed. The dispatch driver starts a whole campaign's runs with
    /// one call.
    fn transitions(
        &self,
        ts: &[Transition],
        lease: &RunLease,
    ) -> impl Future<Output = Result<HashSet<String>, Error>> + Send;
    /// Records progress of a running run; false when the run is not running.
    fn progress(
        &self,
        run_id: &str,
        fraction: f64,
        message: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Stores a result (its document in the stored form of `store/codec.rs`) with its fleet
    /// row (the [`FleetRun`], with the packed summary of `store/packed.rs`: its peaks,
    /// anomaly lines and the records its headline figures are made of) and marks the run
    /// succeeded, in one transaction. `result` is `result_json` parsed (`None` when it is not
    /// a result document: it is then stored as it is, without figures); it is taken, so
    /// that it is freed once its rows are made, before the commit is awaited (uploads that
    /// wait for the writer together then hold their rows, not their parsed documents).
    /// `Duplicate` (nothing changed) when the run already has a result;
    /// `RunNotAccepting` (nothing changed) when the run is not running.
    fn store_result(
        &self,
        run: &RunRecord,
        result_json: &str,
        result: Option<fleetcal_proto::CalibrationResult>,
        fleet: &FleetRun,
        at: i64,
    ) -> impl Future<Output = Result<StoreOutcome, Error>> + Send;
    /// [`Store::store_result`] of a document already in the packed form
    /// ([`fleetcal_proto::document`]: what an agent uploads to a coordinator that takes it),
    /// stored as it is; `result` is what it decodes to (checked by the caller), taken as
    /// there.
    fn store_packed_result(
        &self,
        run: &RunRecord,
        packed: &[u8],
        result: fleetcal_proto::CalibrationResult,
        fleet: &FleetRun,
        at: i64,
    ) -> impl Future<Output = Result<StoreOutcome, Error>> + Send;
    /// The stored results of a campaign with their runs, in plan order (each document as
    /// it was uploaded, decompressed; one stored before compression reads as it is).
    fn results(
        &self,
        campaign_id: &str,
    ) -> impl Future<Output = Result<Vec<(RunRecord, String)>, Error>> + Send;
    /// The figures of one run's result, in record order (from its document).
    fn result_rows(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<FleetFigure>, Error>> + Send;
    /// Every figure of the results of these runs, from their documents (decoded on every
    /// core), by run in the order given, then in record order; a run without a result has
    /// none.
    fn fleet_figures(
        &self,
        run_ids: &[String],
    ) -> impl Future<Output = Result<Vec<FleetFigure>, Error>> + Send;
    /// Adds a schedule; false (nothing changed) when its name is taken.
    fn add_schedule(
        &self,
        schedule: &ScheduleRecord,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// One schedule.
    fn schedule(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ScheduleRecord>, Error>> + Send;
    /// Every schedule, by name.
    fn schedules(&self) -> impl Future<Output = Result<Vec<ScheduleRecord>, Error>> + Send;
    /// Removes a schedule and its firing records (its campaigns stay, still naming it), in
    /// one transaction; false when there is none.
    fn remove_schedule(&self, name: &str) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Pauses or resumes a schedule; resuming a paused one moves its `handled_until` up to
    /// `at`, so firings while it was paused are not due later. False when there is none.
    fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        at: Millis,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Claims firings of a schedule, in one transaction: the fired firing's row (the key
    /// (schedule, scheduled time) is the claim) with its campaign and runs, the missed
    /// firings' rows, and the schedule's `handled_until`. When the fired firing is recorded
    /// already, nothing changes ([`ClaimOutcome::Taken`]): two coordinators on one database
    /// never create two campaigns for one firing.
    fn claim_firings(
        &self,
        claim: Claim<'_>,
    ) -> impl Future<Output = Result<ClaimOutcome, Error>> + Send;
    /// Up to `limit` firings of a schedule, newest first.
    fn firings(
        &self,
        schedule: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<FiringRecord>, Error>> + Send;
    /// How many firings of a schedule are recorded missed.
    fn missed_firings(&self, schedule: &str) -> impl Future<Output = Result<u64, Error>> + Send;

    // ---- fleet reports and alerts (issue 12) ----

    /// The stored results a fleet report reads ([`FleetQuery`] narrows them), ordered as
    /// [`FleetRows`] says: the runs from `fleet_runs` (one indexed query; each row's packed
    /// summary holds its peaks and the records its headline figures are made of), with no
    /// figures when `runs_only`, those headline records when `headline_figures_only`, else
    /// every figure, read from the documents ([`Store::fleet_figures`]; reports ask for the
    /// few runs they show that way instead).
    fn fleet_rows(&self, q: &FleetQuery) -> impl Future<Output = Result<FleetRows, Error>> + Send;
    /// How many runs [`Store::fleet_rows`] would return for `q` (one indexed count, nothing
    /// decoded): what the drift check validates a board's kept history with.
    fn fleet_run_count(&self, q: &FleetQuery) -> impl Future<Output = Result<u64, Error>> + Send;
    /// Every run's count by state (all campaigns), for `/metrics`.
    fn run_counts(&self) -> impl Future<Output = Result<RunCounts, Error>> + Send;
    /// Records an alert; false (nothing changed) when a live one ([`AlertState::is_live`])
    /// stands for the same agent, framework and figure.
    fn insert_alert(&self, a: &AlertRecord) -> impl Future<Output = Result<bool, Error>> + Send;
    /// One alert.
    fn alert(&self, id: &str) -> impl Future<Output = Result<Option<AlertRecord>, Error>> + Send;
    /// Alerts in any of `states` (every alert when empty), newest first.
    fn alerts(
        &self,
        states: &[AlertState],
    ) -> impl Future<Output = Result<Vec<AlertRecord>, Error>> + Send;
    /// Every alert of one board, newest first (what the drift decision after each of its
    /// uploads reads: an index probe, however many alerts the fleet holds).
    fn agent_alerts(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Vec<AlertRecord>, Error>> + Send;
    /// Applies `update` to an alert if its state is one of `from`; false when it was not
    /// (or there is no such alert).
    fn update_alert(
        &self,
        id: &str,
        from: &[AlertState],
        update: &AlertUpdate,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Starts a queued run (`t` goes from queued to running) leased to `lease.owner` until
    /// `lease.expires`, if the run is still queued; false when it was not.
    fn start_run(
        &self,
        t: &Transition,
        lease: &RunLease,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Claims or renews the leases of these running runs for `owner` until `expires`, each
    /// only if it is still running and its lease is absent, `owner`'s own, or expired at
    /// `now` (one conditional UPDATE: two coordinators never both hold a run). Returns the
    /// runs claimed.
    fn claim_runs(
        &self,
        run_ids: &[String],
        owner: &str,
        now: Millis,
        expires: Millis,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    /// The leases of running runs, by run id (runs without one are left out).
    fn run_leases(
        &self,
    ) -> impl Future<Output = Result<std::collections::HashMap<String, RunLease>, Error>> + Send;
    /// The agents (not removed) whose `stream_seen` is at or after `since`: heard on an open
    /// directive stream by any coordinator on this database.
    fn streaming_since(
        &self,
        since: Millis,
    ) -> impl Future<Output = Result<std::collections::HashSet<String>, Error>> + Send;
    /// Stores a join token (by its hash; `fleetctl token create`).
    fn create_join_token(&self, t: &JoinToken) -> impl Future<Output = Result<(), Error>> + Send;
    /// Takes one use of the join token with hash `token_hash` at `now`, atomically (two
    /// agents redeeming its last use at once: one gets it); says why not when it cannot.
    fn redeem_join_token(
        &self,
        token_hash: &str,
        now: crate::model::Millis,
    ) -> impl Future<Output = Result<Redeemed, Error>> + Send;
    /// Records that an agent is revoked at `at` (`fleetctl agents revoke`); revoking twice
    /// keeps the first time.
    fn revoke_agent(
        &self,
        agent_id: &str,
        at: crate::model::Millis,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Every revoked agent id.
    fn revoked_agents(&self) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    /// Quarantines an agent id as a cloned board at `at`, with the reason; quarantining twice
    /// keeps the first time and reason.
    fn quarantine_agent(
        &self,
        agent_id: &str,
        reason: &str,
        at: crate::model::Millis,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Lifts an agent's quarantine; true when it was quarantined.
    fn release_agent(&self, agent_id: &str) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Every quarantined agent id with its reason, by id.
    fn quarantined_agents(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String)>, Error>> + Send;
    /// Records that agent `agent_id` presented (or was issued) a client certificate expiring
    /// at `not_after`, at `seen_at`: the latest record replaces the one before.
    fn record_certificate(
        &self,
        agent_id: &str,
        not_after: crate::model::Millis,
        seen_at: crate::model::Millis,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// The recorded certificate expiries of the agent ids from `first` to `last` (both
    /// included; a page of [`Store::agents_page`]), by id.
    fn certificate_expiries(
        &self,
        first: &str,
        last: &str,
    ) -> impl Future<Output = Result<Vec<(String, crate::model::Millis)>, Error>> + Send;
    /// Files an enrollment request made without a join token, unless one for its agent id is
    /// stored already, and only while fewer than `max_pending` requests are pending; returns
    /// the stored request for the id (the new one or the earlier), or `None` when it could not
    /// be filed because `max_pending` requests wait.
    fn request_enrollment(
        &self,
        request: &EnrollmentRequest,
        max_pending: u32,
    ) -> impl Future<Output = Result<Option<EnrollmentRequest>, Error>> + Send;
    /// The enrollment request of an agent id, in whatever state.
    fn enrollment_request(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<EnrollmentRequest>, Error>> + Send;
    /// Decides a pending enrollment request at `at` (approved or denied), only while it is
    /// pending; returns the request as stored afterwards (`None`: no request of that id), so a
    /// request decided earlier comes back with its earlier state.
    fn decide_enrollment(
        &self,
        agent_id: &str,
        state: EnrollmentState,
        at: crate::model::Millis,
    ) -> impl Future<Output = Result<Option<EnrollmentRequest>, Error>> + Send;
    /// Every pending enrollment request, by agent id.
    fn pending_enrollments(
        &self,
    ) -> impl Future<Output = Result<Vec<EnrollmentRequest>, Error>> + Send;
}

/// Where an enrollment request made without a join token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentState {
    /// Waiting for an operator.
    Pending,
    /// Approved: the agent gets its certificate when it asks again with the same key.
    Approved,
    /// Denied: refused from then on.
    Denied,
}

impl EnrollmentState {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentState::Pending => "pending",
            EnrollmentState::Approved => "approved",
            EnrollmentState::Denied => "denied",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(name: &str) -> Option<EnrollmentState> {
        [
            EnrollmentState::Pending,
            EnrollmentState::Approved,
            EnrollmentState::Denied,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// An enrollment request made without a join token, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRequest {
    /// The agent id it asks a certificate for.
    pub agent_id: String,
    /// The host name it carried.
    pub hostname: String,
    /// The SHA-256 fingerprint of the requested key (`sha256:` and hex).
    pub key_fingerprint: String,
    /// Where it stands.
    pub state: EnrollmentState,
    /// When it was filed.
    pub requested_at: crate::model::Millis,
    /// When it was approved or denied.
    pub decided_at: Option<crate::model::Millis>,
}

/// A join token as stored: only its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The token's SHA-256, hex.
    pub token_hash: String,
    /// Labels an agent enrolled with it gets.
    pub labels: std::collections::BTreeMap<String, String>,
    /// How many enrollments it has left.
    pub uses_left: u32,
    /// When it stops working.
    pub expires_at: crate::model::Millis,
    /// When it was made.
    pub created_at: crate::model::Millis,
}

/// What [`Store::redeem_join_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// One use taken; the token's labels.
    Accepted(std::collections::BTreeMap<String, String>),
    /// No token has that hash.
    Unknown,
    /// The token expired.
    Expired,
    /// The token has no use left.
    UsedUp,
}

/// A change to a stored alert ([`Store::update_alert`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertUpdate {
    /// Its new state.
    pub state: AlertState,
    /// A new current value, if any.
    pub current: Option<f64>,
    /// A new change in percent, if any.
    pub change_pct: Option<f64>,
    /// The confirmation campaign, if one was started.
    pub confirm_campaign_id: Option<String>,
    /// Why.
    pub message: String,
    /// When.
    pub at: crate::model::Millis,
}
