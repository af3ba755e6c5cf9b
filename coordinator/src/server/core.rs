//! The coordinator's operations, shared by the gRPC services: registration, directive
//! sessions, liveness, progress, uploads, campaigns, listings (the schedules' use cases are
//! in [`super::schedules`], a second `impl` of the same [`Coordinator`]). Storage calls go through
//! [`Store`]; planning, dispatch and aggregation are the pure functions of [`crate::plan`],
//! [`crate::dispatch`] and [`crate::aggregate`].
//!
//! Time is an input: every operation takes `now` (the services and the driver read the clock
//! at the edge), so no method here reads the wall clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fleetcal_proto::{CalibrationResult, Preset};
use tokio::sync::{mpsc, Notify};

use super::clones::{remedy, Verdict};
use super::registry::{DirectiveItem, Registry, Touched};
use crate::aggregate::RunCounts;
use crate::config::Settings;
use crate::domain::DomainError;
use crate::fleet::FleetRun;
use crate::model::{
    AgentRecord, CampaignRecord, CampaignSpec, Capabilities, Millis, RunRecord, RunState,
    StoreOutcome, Transition,
};
use crate::plan::{effective_preset, plan_campaign, PlannedRun};
use crate::store::{CampaignKey, Page, RemoveOutcome, RunKey, Store};
use crate::{validate, Error};

/// The runs of a newly planned campaign, created at `now`: queued, or failed from the start
/// with the reason when the board cannot do them.
pub(super) fn new_runs(campaign_id: &str, planned: Vec<PlannedRun>, now: Millis) -> Vec<RunRecord> {
    planned
        .into_iter()
        .zip(0i64..)
        .map(|(p, seq)| {
            let failed = p.refused.is_some();
            RunRecord {
                run_id: uuid::Uuid::new_v4().to_string(),
                campaign_id: campaign_id.to_string(),
                agent_id: p.agent_id,
                hostname: p.hostname,
                preset_id: p.preset_id,
                framework: p.framework,
                device: p.device,
                state: if failed {
                    RunState::Failed
                } else {
                    RunState::Queued
                },
                fraction: 0.0,
                message: p.refused.unwrap_or_default(),
                seq,
                started_at: None,
                finished_at: failed.then_some(now),
                not_before: None,
            }
        })
        .collect()
}

/// What a Register call carries.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Stable id (a UUID).
    pub agent_id: String,
    /// Host name.
    pub hostname: String,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Configured preset.
    pub preset: Option<String>,
    /// Detected capabilities.
    pub capabilities: Capabilities,
    /// Agent version.
    pub agent_version: String,
}

/// The coordinator's state and operations.
pub struct Coordinator<S> {
    /// Durable state.
    pub store: S,
    /// Known presets (from `--presets`).
    pub presets: Vec<Preset>,
    /// Open directive streams.
    pub registry: Arc<Registry>,
    /// Resolved settings.
    pub settings: Settings,
    /// Wakes the dispatch driver.
    pub wake: Arc<Notify>,
    /// Results stored since this process started (duplicates not counted): `/metrics`'
    /// `fleetcal_results_ingested_total`.
    pub ingested: Arc<AtomicU64>,
    /// Of those, the results that came in the packed form (`UploadRequest.result_packed`):
    /// `/metrics`' `fleetcal_results_ingested_packed_total`.
    pub ingested_packed: Arc<AtomicU64>,
    /// This process's instance id ([`new_instance_id`]): the owner of the run leases it holds
    /// when several coordinators share one database.
    pub instance: String,
    /// The boards' drift histories kept between their results ([`super::histories`]).
    pub histories: Arc<super::histories::Histories>,
    /// The schedule that fired each campaign an upload was for (`None`: started by hand),
    /// read once a campaign, when an upload for it first comes: a campaign's firing never
    /// changes.
    pub schedules_of: Arc<std::sync::Mutex<std::collections::HashMap<String, Option<String>>>>,
}

/// The most campaigns [`Coordinator::schedules_of`] keeps (it starts again empty past that).
const SCHEDULES_KEPT: usize = 4096;

/// A fresh instance id for a coordinator process: the host name (at most 32 bytes of it) and a
/// random suffix, so a log line and a lease row say which coordinator it was.
pub fn new_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(32)
        .collect();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
    if host.is_empty() {
        suffix.to_string()
    } else {
        format!("{host}-{suffix}")
    }
}

/// An uploaded result as it came ([`Coordinator::upload`]).
#[derive(Debug, Clone, Copy)]
pub enum UploadBody<'a> {
    /// Its JSON text (`UploadRequest.result_json`).
    Json(&'a [u8]),
    /// Its packed form (`UploadRequest.result_packed`, [`fleetcal_proto::document`]).
    Packed(&'a [u8]),
}

/// One agent as listed: its record (with `last_seen` the latest contact, in memory or
/// stored), its effective preset and whether it is online now.
#[derive(Debug, Clone)]
pub struct AgentStatus {
    /// The stored record, `last_seen` brought up to date.
    pub agent: AgentRecord,
    /// The preset its runs use.
    pub preset: String,
    /// Online: a live stream (heard from within the offline window), or — without a stream —
    /// a call within the window.
    pub online: bool,
    /// Why it is quarantined as a cloned board ([`super::clones`]), if it is.
    pub quarantine: Option<String>,
    /// Revoked (`fleetctl agents revoke`): every call refused, so never online.
    pub revoked: bool,
    /// When its certificate expires, as last recorded ([`super::renew`]); filled in by
    /// [`Coordinator::agents_page`].
    pub cert_not_after: Option<Millis>,
}

impl<S: Store> Coordinator<S> {
    /// The offline window in milliseconds.
    pub fn offline_window(&self) -> Millis {
        Millis::try_from(self.settings.offline_after.as_millis()).unwrap_or(Millis::MAX)
    }

    /// Registers or re-registers an agent at `now`; returns its effective preset id.
    pub async fn register(&self, r: Registration, now: Millis) -> Result<String, Error> {
        validate::registration(
            &r.agent_id,
            &r.hostname,
            &r.labels,
            r.preset.as_deref(),
            &r.capabilities,
            &r.agent_version,
        )?;
        // A re-registration keeps the stored registered_at (the upsert does not change it),
        // and never reads the old row: a row that cannot be decoded is replaced, not an error.
        let registered_at = now;
        let agent = AgentRecord {
            agent_id: r.agent_id,
            hostname: r.hostname,
            labels: r.labels,
            preset: r.preset.filter(|p| !p.trim().is_empty()),
            capabilities: r.capabilities,
            agent_version: r.agent_version,
            registered_at,
            last_seen: now,
        };
        self.store.upsert_agent(&agent).await?;
        self.wake.notify_one();
        Ok(effective_preset(&agent, &self.presets).id)
    }

    /// The agent, or `UnknownAgent`; records the contact at `now`. An agent with an open
    /// session is recorded in memory (the driver writes the contacts that are due, at most
    /// every half offline window per agent, in one transaction:
    /// [`Coordinator::persist_contacts`]), so heartbeats from a large fleet do not become a
    /// write each.
    pub async fn require_agent(&self, agent_id: &str, now: Millis) -> Result<(), Error> {
        match self.registry.touch(agent_id, now) {
            Touched::InMemory => Ok(()),
            Touched::NoSession => self.touch_store(agent_id, now).await,
        }
    }

    /// Writes the in-memory contacts that are due at `now` to the store, in one transaction,
    /// and ends the sessions of agents the store no longer knows (removed meanwhile): their
    /// streams close, and their next calls are refused as unregistered until they register
    /// again.
    pub async fn persist_contacts(&self, now: Millis) -> Result<(), Error> {
        let due = self.registry.due_contacts(now, self.offline_window() / 2);
        if due.is_empty() {
            return Ok(());
        }
        for agent in self.store.touch_agents(&due).await? {
            tracing::info!(agent = %agent, "agent removed: closing its directive stream");
            self.registry.close(&agent);
        }
        Ok(())
    }

    async fn touch_store(&self, agent_id: &str, now: Millis) -> Result<(), Error> {
        if self.store.touch_agent(agent_id, now).await? {
            Ok(())
        } else {
            Err(Error::from(DomainError::UnknownAgent(agent_id.to_string())))
        }
    }

    /// Opens an agent's directive session at `now` for agent process `instance` (empty from
    /// older agents); the driver sends its desired state at once. An id whose session keeps
    /// moving between two processes is quarantined as a cloned board ([`super::clones`]).
    pub async fn subscribe(
        &self,
        agent_id: &str,
        instance: &str,
        now: Millis,
    ) -> Result<(u64, mpsc::Receiver<DirectiveItem>), Error> {
        // Heard on its stream (`last_seen` and `stream_seen`); unknown when passed over.
        let contact = [(agent_id.to_string(), now)];
        if !self.store.touch_agents(&contact).await?.is_empty() {
            return Err(Error::from(DomainError::UnknownAgent(agent_id.to_string())));
        }
        if let Verdict::Clone(reason) = self.registry.watch_subscription(agent_id, instance, now) {
            self.store.quarantine_agent(agent_id, &reason, now).await?;
            self.registry.add_quarantined(agent_id, &reason);
            tracing::warn!(
                agent = %agent_id,
                reason = %reason,
                remedy = %remedy(agent_id),
                "agent id quarantined as a cloned board: no plans, its results refused"
            );
        }
        let session = self.registry.connect(agent_id, now);
        self.wake.notify_one();
        Ok(session)
    }

    /// Refuses a call of an agent quarantined as a cloned board, naming why and the remedy.
    pub fn refuse_quarantined(&self, agent_id: &str) -> Result<(), Error> {
        match self.registry.quarantine(agent_id) {
            Some(reason) => Err(Error::from(DomainError::Quarantined {
                agent: agent_id.to_string(),
                reason,
                remedy: remedy(agent_id),
            })),
            None => Ok(()),
        }
    }

    /// Lifts an agent's clone quarantine (`fleetctl agents release`); true when it was
    /// quarantined. Every coordinator on the store sees it on its next dispatch pass.
    pub async fn release_agent(&self, agent_id: &str) -> Result<bool, Error> {
        validate::id("agent_id", agent_id)?;
        let was = self.store.release_agent(agent_id).await?;
        self.registry.release(agent_id);
        self.wake.notify_one();
        if was {
            tracing::info!(agent = %agent_id, "agent's clone quarantine lifted");
        }
        Ok(was)
    }

    /// Records a liveness ping at `now`.
    pub async fn heartbeat(&self, agent_id: &str, now: Millis) -> Result<(), Error> {
        self.require_agent(agent_id, now).await
    }

    async fn owned_run(
        &self,
        agent_id: &str,
        run_id: &str,
        now: Millis,
    ) -> Result<RunRecord, Error> {
        self.require_agent(agent_id, now).await?;
        let run = self
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| Error::from(DomainError::UnknownRun(run_id.to_string())))?;
        if run.agent_id != agent_id {
            return Err(Error::from(DomainError::NotYourRun {
                run: run_id.to_string(),
                agent: agent_id.to_string(),
            }));
        }
        Ok(run)
    }

    /// Records progress (`failed = false`) or failure of a run at `now`; returns whether the
    /// run is still wanted from this agent.
    pub async fn progress(
        &self,
        agent_id: &str,
        run_id: &str,
        failed: bool,
        fraction: f64,
        message: &str,
        now: Millis,
    ) -> Result<bool, Error> {
        let run = self.owned_run(agent_id, run_id, now).await?;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::from(DomainError::InvalidRequest(format!(
                "field 'fraction': {} is not between 0 and 1",
                fleetcal_proto::quote::number(fraction)
            ))));
        }
        if run.state != RunState::Running {
            return Ok(false);
        }
        if failed {
            let reason = if message.trim().is_empty() {
                "the agent reported failure without a reason".to_string()
            } else {
                message.to_string()
            };
            self.store
                .transition(&Transition {
                    run_id: run.run_id,
                    agent_id: run.agent_id,
                    from: RunState::Running,
                    to: RunState::Failed,
                    at: now,
                    message: Some(reason),
                })
                .await?;
            self.wake.notify_one();
            return Ok(false);
        }
        self.store.progress(run_id, fraction, message).await
    }

    /// Validates and stores a result received at `now`; idempotent by run id. Returns the
    /// outcome with the run it was for, as read before storing (the drift check after a
    /// stored result needs it: [`Coordinator::after_result`]). A packed upload is decoded
    /// and checked as JSON is, and stored as it came: it is the stored form already.
    pub async fn upload(
        &self,
        agent_id: &str,
        run_id: &str,
        body: UploadBody<'_>,
        now: Millis,
    ) -> Result<(StoreOutcome, RunRecord), Error> {
        self.refuse_quarantined(agent_id)?;
        let run = self.owned_run(agent_id, run_id, now).await?;
        let invalid = |message: String| {
            Error::from(DomainError::InvalidResult {
                run: run_id.to_string(),
                message,
            })
        };
        /// A result's document as it will be stored.
        enum Document<'a> {
            /// The JSON text, which the store encodes.
            Text(&'a str),
            /// The packed form, kept as it came.
            Packed(&'a [u8]),
        }
        let (result, document) = match body {
            UploadBody::Json(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|e| invalid(format!("field 'result_json' is not UTF-8: {e}")))?;
                let result = CalibrationResult::from_json(text, "upload")
                    .map_err(|e| invalid(e.to_string()))?;
                (result, Document::Text(text))
            }
            UploadBody::Packed(bytes) => {
                let limit = u64::try_from(fleetcal_proto::pb::MAX_MESSAGE_BYTES).unwrap_or(0);
                let result = fleetcal_proto::document::decode_upload(bytes, limit)
                    .map_err(|e| invalid(format!("field 'result_packed': {e}")))?;
                result
                    .validate()
                    .map_err(|e| invalid(format!("upload: {e}")))?;
                (result, Document::Packed(bytes))
            }
        };
        let m = &result.metadata;
        if m.run_id != run.run_id {
            return Err(invalid(format!(
                "field 'metadata.run_id': '{}' is not this run",
                m.run_id
            )));
        }
        if m.framework != run.framework {
            return Err(invalid(format!(
                "field 'metadata.framework': '{}' but the run's plan is '{}'",
                m.framework, run.framework
            )));
        }
        if m.device_type != run.device {
            return Err(invalid(format!(
                "field 'metadata.device_type': '{}' but the run's plan is '{}'",
                m.device_type, run.device
            )));
        }
        let schedule = self.campaign_schedule(&run.campaign_id).await?;
        let mut fleet = FleetRun::from_result(&run, schedule.as_deref(), &result, now);
        if let Err(off) = validate::result_times(&result, now, run.started_at) {
            // The board's clock is off (a day, or 1970 on a board without a real-time
            // clock): its measurements stand, its times do not. The result is stored as sent;
            // the fleet reports place it by the coordinator's clock, when it sent the run.
            fleet.started_at = run.started_at.unwrap_or(now);
            tracing::warn!(
                run = %run_id,
                agent = %agent_id,
                "the board's clock is off ({off}); result stored, placed in the fleet reports \
                 at {} by the coordinator's clock",
                crate::model::rfc3339(fleet.started_at)
            );
        }
        let packed = matches!(document, Document::Packed(_));
        let outcome = match document {
            Document::Text(text) => {
                self.store
                    .store_result(&run, text, Some(result), &fleet, now)
                    .await?
            }
            Document::Packed(packed) => {
                self.store
                    .store_packed_result(&run, packed, result, &fleet, now)
                    .await?
            }
        };
        if outcome == StoreOutcome::Stored {
            self.ingested.fetch_add(1, Ordering::Relaxed);
            if packed {
                self.ingested_packed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.wake.notify_one();
        Ok((outcome, run))
    }

    /// The schedule that fired campaign `campaign_id` (`None`: started by hand, or no such
    /// campaign), from the store the first time and from [`Coordinator::schedules_of`] after.
    async fn campaign_schedule(&self, campaign_id: &str) -> Result<Option<String>, Error> {
        let kept =
            |m: &std::collections::HashMap<String, Option<String>>| m.get(campaign_id).cloned();
        if let Some(schedule) = self.schedules_of.lock().ok().and_then(|m| kept(&m)) {
            return Ok(schedule);
        }
        let Some(campaign) = self.store.campaign(campaign_id).await? else {
            return Ok(None);
        };
        let schedule = campaign.firing.map(|f| f.schedule);
        if let Ok(mut m) = self.schedules_of.lock() {
            if m.len() >= SCHEDULES_KEPT {
                m.clear();
            }
            m.insert(campaign_id.to_string(), schedule.clone());
        }
        Ok(schedule)
    }

    /// Every agent with its effective preset and whether it is online at `now`.
    ///
    /// An agent with an open stream is online only while it is heard from within the offline
    /// window: a half-open connection (a silent partition) shows offline once its heartbeats
    /// stop, although its socket is still open.
    pub async fn agents(&self, now: Millis) -> Result<Vec<AgentStatus>, Error> {
        let window = self.offline_window();
        Ok(self
            .store
            .agents()
            .await?
            .into_iter()
            .map(|agent| self.status(agent, now, window))
            .collect())
    }

    /// Up to `limit` agents with an id after `after` (by id), as [`Coordinator::agents`]
    /// lists them, with their certificates' expiries.
    pub async fn agents_page(
        &self,
        after: Option<&str>,
        limit: u32,
        now: Millis,
    ) -> Result<Page<String, AgentStatus>, Error> {
        let window = self.offline_window();
        let page = self.store.agents_page(after, limit).await?;
        self.with_certificate_expiries(Page {
            items: page
                .items
                .into_iter()
                .map(|(key, agent)| (key, self.status(agent, now, window)))
                .collect(),
            last: page.last,
        })
        .await
    }

    /// An agent as listed at `now`, its `last_seen` brought up to date from the registry.
    fn status(&self, mut agent: AgentRecord, now: Millis, window: Millis) -> AgentStatus {
        if let Some(at) = self.registry.last_contact(&agent.agent_id) {
            agent.last_seen = agent.last_seen.max(at);
        }
        let revoked = self.registry.is_revoked(&agent.agent_id);
        let online = !revoked && now.saturating_sub(agent.last_seen) < window;
        let preset = effective_preset(&agent, &self.presets).id;
        let quarantine = self.registry.quarantine(&agent.agent_id);
        AgentStatus {
            agent,
            preset,
            online,
            quarantine,
            revoked,
            cert_not_after: None,
        }
    }

    /// Up to `limit` runs (of one campaign, which must exist, or of all) after `after`.
    pub async fn runs_page(
        &self,
        campaign_id: Option<&str>,
        after: Option<&RunKey>,
        limit: u32,
    ) -> Result<Page<RunKey, RunRecord>, Error> {
        if let Some(id) = campaign_id {
            self.require_campaign(id).await?;
        }
        self.store.runs_page(campaign_id, after, limit).await
    }

    /// Removes an agent at `now`: it is listed and selected nowhere and its queued runs fail;
    /// refused while it runs a run. Returns how many queued runs failed. An agent that
    /// registers again is back.
    pub async fn remove_agent(&self, agent_id: &str, now: Millis) -> Result<u64, Error> {
        let outcome = self
            .store
            .remove_agent(agent_id, now, "agent removed by the operator")
            .await?;
        match outcome {
            RemoveOutcome::Removed { failed_runs } => {
                tracing::info!(agent = %agent_id, failed_runs, "agent removed");
                self.wake.notify_one();
                Ok(failed_runs)
            }
            RemoveOutcome::Running { run_id } => Err(Error::from(DomainError::AgentRunning {
                agent: agent_id.to_string(),
                run: run_id,
            })),
            RemoveOutcome::NotFound => Err(Error::from(DomainError::AgentNotFound(
                agent_id.to_string(),
            ))),
        }
    }

    /// A campaign spec with the coordinator's defaults filled in (`0` timeouts).
    pub(super) fn with_defaults(&self, mut spec: CampaignSpec) -> CampaignSpec {
        if spec.run_timeout_s == 0 {
            spec.run_timeout_s = self.settings.default_run_timeout_s;
        }
        if spec.deadline_s == 0 {
            spec.deadline_s = self.settings.default_deadline_s;
        }
        spec
    }

    /// Plans and stores a campaign created at `now`; runs a board cannot do start out failed.
    pub async fn start_campaign(
        &self,
        spec: CampaignSpec,
        now: Millis,
    ) -> Result<(CampaignRecord, Vec<RunRecord>), Error> {
        let spec = self.with_defaults(spec);
        self.plan_and_store(spec, now).await
    }

    /// Plans a campaign of a spec with its defaults filled in over the registered agents and
    /// stores it, created at `now` (by hand, or a drift confirmation).
    pub(super) async fn plan_and_store(
        &self,
        spec: CampaignSpec,
        now: Millis,
    ) -> Result<(CampaignRecord, Vec<RunRecord>), Error> {
        let agents = self.store.agents().await?;
        let planned = plan_campaign(&agents, &self.presets, &spec)?;
        let campaign = CampaignRecord {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            deadline: now + i64::from(spec.deadline_s) * 1000,
            spec,
            firing: None,
        };
        let runs = new_runs(&campaign.id, planned, now);
        self.store.create_campaign(&campaign, &runs).await?;
        self.wake.notify_one();
        Ok((campaign, runs))
    }

    /// Up to `limit` campaigns (of one schedule, or all) after `after`, newest first, each
    /// with its run counts by state.
    pub async fn campaigns_page(
        &self,
        schedule: Option<&str>,
        after: Option<&CampaignKey>,
        limit: u32,
    ) -> Result<Page<CampaignKey, (CampaignRecord, RunCounts)>, Error> {
        self.store.campaigns_page(schedule, after, limit).await
    }

    /// A campaign and its runs, or `UnknownCampaign`.
    pub async fn campaign(&self, id: &str) -> Result<(CampaignRecord, Vec<RunRecord>), Error> {
        let campaign = self.require_campaign(id).await?;
        let runs = self.store.runs(Some(id)).await?;
        Ok((campaign, runs))
    }

    /// The runs of one campaign (`UnknownCampaign` if there is none), or of all.
    pub async fn runs(&self, campaign_id: Option<&str>) -> Result<Vec<RunRecord>, Error> {
        if let Some(id) = campaign_id {
            self.require_campaign(id).await?;
        }
        self.store.runs(campaign_id).await
    }

    /// The stored results of a campaign with their runs, in plan order.
    pub async fn results(&self, campaign_id: &str) -> Result<Vec<(RunRecord, String)>, Error> {
        self.require_campaign(campaign_id).await?;
        self.store.results(campaign_id).await
    }

    pub(super) async fn require_campaign(&self, id: &str) -> Result<CampaignRecord, Error> {
        self.store
            .campaign(id)
            .await?
            .ok_or_else(|| Error::from(DomainError::UnknownCampaign(id.to_string())))
    }
}
