//! The coordinator's operations, shared by the gRPC services: registration, directive
//! sessions, progress, uploads, campaigns. Storage calls go through [`Store`]; planning and
//! aggregation are the pure functions of [`crate::plan`] and [`crate::aggregate`].

use std::sync::Arc;

use fleetcal_proto::{CalibrationResult, Preset};
use tokio::sync::{mpsc, Notify};

use super::registry::{DirectiveItem, Registry};
use crate::aggregate::result_rows;
use crate::config::Settings;
use crate::model::{
    now_ms, AgentRecord, CampaignRecord, CampaignSpec, Capabilities, RunRecord, RunState,
    StoreOutcome, Transition,
};
use crate::plan::{effective_preset, plan_campaign};
use crate::store::Store;
use crate::Error;

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
    /// Wakes the scheduler driver.
    pub wake: Arc<Notify>,
}

impl<S: Store> Coordinator<S> {
    /// Registers or re-registers an agent; returns its effective preset id.
    pub async fn register(&self, r: Registration) -> Result<String, Error> {
        if uuid::Uuid::parse_str(&r.agent_id).is_err() {
            return Err(Error::InvalidRequest(format!(
                "field 'agent_id': '{}' is not a UUID",
                r.agent_id
            )));
        }
        if r.hostname.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "field 'hostname': must not be empty".into(),
            ));
        }
        let now = now_ms();
        let registered_at = self
            .store
            .agent(&r.agent_id)
            .await?
            .map_or(now, |a| a.registered_at);
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

    /// The agent, or `UnknownAgent`; records the contact.
    pub async fn require_agent(&self, agent_id: &str) -> Result<(), Error> {
        if self.store.touch_agent(agent_id, now_ms()).await? {
            Ok(())
        } else {
            Err(Error::UnknownAgent(agent_id.to_string()))
        }
    }

    /// Opens an agent's directive session; the driver sends its desired state at once.
    pub async fn subscribe(
        &self,
        agent_id: &str,
    ) -> Result<(u64, mpsc::Receiver<DirectiveItem>), Error> {
        self.require_agent(agent_id).await?;
        let session = self.registry.connect(agent_id);
        self.wake.notify_one();
        Ok(session)
    }

    /// Records a liveness ping.
    pub async fn heartbeat(&self, agent_id: &str) -> Result<(), Error> {
        self.require_agent(agent_id).await
    }

    async fn owned_run(&self, agent_id: &str, run_id: &str) -> Result<RunRecord, Error> {
        self.require_agent(agent_id).await?;
        let run = self
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| Error::UnknownRun(run_id.to_string()))?;
        if run.agent_id != agent_id {
            return Err(Error::NotYourRun {
                run: run_id.to_string(),
                agent: agent_id.to_string(),
            });
        }
        Ok(run)
    }

    /// Records progress (`failed = false`) or failure of a run; returns whether the run is
    /// still wanted from this agent.
    pub async fn progress(
        &self,
        agent_id: &str,
        run_id: &str,
        failed: bool,
        fraction: f64,
        message: &str,
    ) -> Result<bool, Error> {
        let run = self.owned_run(agent_id, run_id).await?;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::InvalidRequest(format!(
                "field 'fraction': {fraction} is not between 0 and 1"
            )));
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
                    at: now_ms(),
                    message: Some(reason),
                })
                .await?;
            self.wake.notify_one();
            return Ok(false);
        }
        self.store.progress(run_id, fraction, message).await
    }

    /// Validates and stores a result; idempotent by run id.
    pub async fn upload(
        &self,
        agent_id: &str,
        run_id: &str,
        result_json: &[u8],
    ) -> Result<StoreOutcome, Error> {
        let run = self.owned_run(agent_id, run_id).await?;
        let invalid = |message: String| Error::InvalidResult {
            run: run_id.to_string(),
            message,
        };
        let text = std::str::from_utf8(result_json)
            .map_err(|e| invalid(format!("field 'result_json' is not UTF-8: {e}")))?;
        let result =
            CalibrationResult::from_json(text, "upload").map_err(|e| invalid(e.to_string()))?;
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
        let rows = result_rows(run_id, &result);
        let outcome = self.store.store_result(&run, text, &rows, now_ms()).await?;
        self.wake.notify_one();
        Ok(outcome)
    }

    /// Every agent with its effective preset and whether it is online.
    pub async fn agents(&self) -> Result<Vec<(AgentRecord, String, bool)>, Error> {
        let now = now_ms();
        let offline_ms = i64::try_from(self.settings.offline_after.as_millis()).unwrap_or(i64::MAX);
        Ok(self
            .store
            .agents()
            .await?
            .into_iter()
            .map(|a| {
                let online =
                    self.registry.is_connected(&a.agent_id) || now - a.last_seen < offline_ms;
                let preset = effective_preset(&a, &self.presets).id;
                (a, preset, online)
            })
            .collect())
    }

    /// Plans and stores a campaign; runs a board cannot do start out failed.
    pub async fn start_campaign(
        &self,
        mut spec: CampaignSpec,
    ) -> Result<(CampaignRecord, Vec<RunRecord>), Error> {
        if spec.run_timeout_s == 0 {
            spec.run_timeout_s = self.settings.default_run_timeout_s;
        }
        if spec.deadline_s == 0 {
            spec.deadline_s = self.settings.default_deadline_s;
        }
        let agents = self.store.agents().await?;
        let planned = plan_campaign(&agents, &self.presets, &spec)?;
        let now = now_ms();
        let campaign = CampaignRecord {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            deadline: now + i64::from(spec.deadline_s) * 1000,
            spec,
        };
        let runs: Vec<RunRecord> = planned
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let failed = p.refused.is_some();
                RunRecord {
                    run_id: uuid::Uuid::new_v4().to_string(),
                    campaign_id: campaign.id.clone(),
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
                    seq: i as i64,
                    started_at: None,
                    finished_at: failed.then_some(now),
                }
            })
            .collect();
        self.store.create_campaign(&campaign, &runs).await?;
        self.wake.notify_one();
        Ok((campaign, runs))
    }

    /// A campaign and its runs, or `UnknownCampaign`.
    pub async fn campaign(&self, id: &str) -> Result<(CampaignRecord, Vec<RunRecord>), Error> {
        let campaign = self
            .store
            .campaign(id)
            .await?
            .ok_or_else(|| Error::UnknownCampaign(id.to_string()))?;
        let runs = self.store.runs(Some(id)).await?;
        Ok((campaign, runs))
    }
}
