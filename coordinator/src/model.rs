//! The coordinator's domain types: agents, campaigns, runs and their states. Plain data with
//! no transport or storage in it; `server::convert` maps them to and from `fleetcal.v1`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use fleetcal_proto::framework::Engines;
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision};
use serde::{Deserialize, Serialize};

use crate::cron::Overlap;
use crate::domain::DomainError;

/// Milliseconds since the Unix epoch (every timestamp the coordinator stores).
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// A [`Millis`] as RFC 3339 UTC (seconds precision).
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// What an agent detected on its host (`fleetcal.v1.Capabilities`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// `x86_64` or `aarch64`.
    pub arch: String,
    /// CPU vendor id.
    pub cpu_vendor: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Memory in GB.
    pub memory_gb: f64,
    /// SIMD features.
    pub simd: Vec<String>,
    /// Operating system.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// Engines the agent can run (`numpy`, `pytorch`).
    pub engines: Vec<String>,
    /// Whether CUDA is usable.
    pub cuda_available: bool,
    /// CUDA device name.
    pub gpu_name: String,
    /// CUDA runtime version.
    pub cuda_version: String,
    /// Jetson module.
    pub jetson_model: String,
    /// Jetson power mode.
    pub power_mode: String,
    /// The host's environment fingerprint (its results' `metadata.environment.host_key`).
    pub environment_key: String,
    /// The facts behind it, as the agent sent them (JSON, stored as is).
    pub environment_json: String,
}

impl Capabilities {
    /// The engines the agent reports (names it does not know are ignored).
    pub fn engines(&self) -> Engines {
        Engines::from_names(&self.engines)
    }
}

/// A registered agent as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    /// Stable id (a UUID the agent keeps).
    pub agent_id: String,
    /// Host name.
    pub hostname: String,
    /// Operator labels.
    pub labels: BTreeMap<String, String>,
    /// The configured preset id, if any.
    pub preset: Option<String>,
    /// What it detected.
    pub capabilities: Capabilities,
    /// Its version.
    pub agent_version: String,
    /// First registration.
    pub registered_at: Millis,
    /// Last contact of any kind.
    pub last_seen: Millis,
}

/// Which agents a campaign covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Every registered agent.
    All,
    /// Agents carrying every one of these labels.
    Labels(BTreeMap<String, String>),
    /// Agents whose effective preset is this id.
    Preset(String),
    /// This one agent (a drift confirmation run).
    Agent(String),
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => f.write_str("'all'"),
            Selector::Labels(l) => {
                let pairs: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "'labels {}'", pairs.join(","))
            }
            Selector::Preset(p) => write!(f, "'preset {p}'"),
            Selector::Agent(id) => write!(f, "'agent {id}'"),
        }
    }
}

/// Which frameworks a campaign runs (the framework rules live in `fleetcal_proto::framework`).
pub use fleetcal_proto::FrameworkChoice;

/// Size and scope overrides a campaign passes through to every plan (tiny test runs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Overrides {
    /// Operations; empty = the engine's default.
    pub operations: Vec<Operation>,
    /// Precisions; empty = every precision the preset has a peak for.
    pub precisions: Vec<Precision>,
    /// BLAS sizes; empty = the default sweep.
    pub blas_sizes: Vec<u64>,
    /// STREAM MiB; empty = the default sweep.
    pub stream_mib: Vec<u64>,
    /// GEMM early-stop threshold; 0 = default.
    pub min_gflops: f64,
}

/// What a campaign was asked to do. Stored as JSON (`campaigns.spec`): a field added later has
/// a serde default, so rows written before it still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    /// Which agents.
    pub selector: Selector,
    /// Which frameworks.
    pub framework: FrameworkChoice,
    /// Quick mode.
    pub quick: bool,
    /// Warm-up calls per figure (0..=[`fleetcal_proto::pb::MAX_WARMUP`]); `None` = the engine's default (3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<u32>,
    /// Timed trials per figure (1..=[`fleetcal_proto::pb::MAX_TRIALS`]); `None` = the engine's default (10, 5
    /// in quick mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<u32>,
    /// Wall-time cap of each run's measurements in seconds
    /// (1..=[`fleetcal_proto::pb::MAX_DURATION_S`]); `None` = none. Absent in specs stored
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<u32>,
    /// Per-run timeout in seconds.
    pub run_timeout_s: u32,
    /// Seconds from creation after which queued runs of offline agents become `agent_offline`.
    pub deadline_s: u32,
    /// Most runs running at once; 0 = unlimited.
    pub concurrency: u32,
    /// Pass-through overrides.
    pub overrides: Overrides,
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRecord {
    /// Its id.
    pub id: String,
    /// Creation time.
    pub created_at: Millis,
    /// Its deadline (`created_at + deadline_s`; for a schedule's campaign by default its
    /// next firing).
    pub deadline: Millis,
    /// What was asked.
    pub spec: CampaignSpec,
    /// The schedule firing that made it; `None` for a campaign started by hand.
    pub firing: Option<FiringTag>,
}

/// Which firing of which schedule made a campaign (`campaigns.schedule`,
/// `campaigns.scheduled_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringTag {
    /// The schedule's name.
    pub schedule: String,
    /// The firing's scheduled time (for `run-now`, the time it was asked).
    pub scheduled_at: Millis,
}

/// What a schedule is asked to do. Stored as JSON (`schedules.spec`): a field added later has
/// a serde default, so rows written before it still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// The cron expression (5 fields, or 6 with leading seconds).
    pub cron: String,
    /// The IANA time zone it is evaluated in.
    pub zone: String,
    /// The campaign every firing starts, as `campaign start` takes it. `run_timeout_s` 0 =
    /// the coordinator's default at the firing; `deadline_s` 0 = until the next firing.
    pub campaign: CampaignSpec,
    /// Each board's run starts after a delay in `[0, jitter_ms)` (0 = none).
    #[serde(default)]
    pub jitter_ms: Millis,
    /// What a firing does with a board still busy with an earlier run.
    #[serde(default)]
    pub overlap: Overlap,
    /// How old the latest missed firing may be to be caught up; `None` = one period (the
    /// latest missed firing is caught up until the next one comes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_ms: Option<Millis>,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    /// Its name (the key).
    pub name: String,
    /// What it does.
    pub spec: ScheduleSpec,
    /// Paused: it does not fire (firings while paused are not due later).
    pub paused: bool,
    /// When it was added.
    pub created_at: Millis,
    /// Every firing at or before this time is handled (fired, recorded missed, or passed
    /// while paused); the next one due is the first after it. Starts at `created_at`.
    pub handled_until: Millis,
}

/// What happened to one firing of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FiringOutcome {
    /// A campaign was created for it.
    Fired,
    /// No campaign: the coordinator was not running then (and it was not the one caught
    /// up), or its selector matched no agent; the firing's message says which.
    Missed,
}

impl FiringOutcome {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            FiringOutcome::Fired => "fired",
            FiringOutcome::Missed => "missed",
        }
    }
}

impl FromStr for FiringOutcome {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        match s {
            "fired" => Ok(FiringOutcome::Fired),
            "missed" => Ok(FiringOutcome::Missed),
            _ => Err(DomainError::InvalidRequest(format!(
                "unknown firing outcome {}",
                fleetcal_proto::quote::quoted(s)
            ))),
        }
    }
}

/// A stored firing (`schedule_firings`).
#[derive(Debug, Clone, PartialEq)]
pub struct FiringRecord {
    /// The schedule.
    pub schedule: String,
    /// Its scheduled time.
    pub scheduled_at: Millis,
    /// Fired or missed.
    pub outcome: FiringOutcome,
    /// The campaign it created.
    pub campaign_id: Option<String>,
    /// Why it was missed, or how it fired (`on time`, `catch-up`, `run now`).
    pub message: String,
    /// When it was recorded.
    pub recorded_at: Millis,
}

/// The life cycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunState {
    /// Waiting for its agent (online, idle, under the concurrency limit).
    Queued,
    /// Sent to its agent.
    Running,
    /// Its result is stored.
    Succeeded,
    /// The agent reported failure, or the plan was refused for this board.
    Failed,
    /// No result within the run timeout.
    TimedOut,
    /// Its agent stayed offline until the campaign deadline.
    AgentOffline,
    /// Not run: a schedule fired while its board was still busy with an earlier run (overlap
    /// policy `skip`); the message names that run.
    Skipped,
}

impl RunState {
    /// Every state, in life-cycle order.
    pub const ALL: [RunState; 7] = [
        RunState::Queued,
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::TimedOut,
        RunState::AgentOffline,
        RunState::Skipped,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::TimedOut => "timed_out",
            RunState::AgentOffline => "agent_offline",
            RunState::Skipped => "skipped",
        }
    }

    /// Whether the run can no longer change.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running)
    }

    /// Terminal and not successful.
    pub fn is_unsuccessful(self) -> bool {
        self.is_terminal() && self != RunState::Succeeded
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        RunState::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| DomainError::InvalidRequest(format!("unknown run state '{s}'")))
    }
}

/// A stored run: one agent × framework × device of one campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Its id (a UUID; the result's `metadata.run_id`).
    pub run_id: String,
    /// Its campaign.
    pub campaign_id: String,
    /// Its agent.
    pub agent_id: String,
    /// The agent's host name when planned.
    pub hostname: String,
    /// The preset id (`auto` when none matched).
    pub preset_id: String,
    /// The framework.
    pub framework: Framework,
    /// The device.
    pub device: DeviceKind,
    /// Its state.
    pub state: RunState,
    /// Last reported completed share.
    pub fraction: f64,
    /// Last progress message, or why it ended unsuccessfully.
    pub message: String,
    /// Order within the campaign.
    pub seq: i64,
    /// When it was sent to its agent.
    pub started_at: Option<Millis>,
    /// When it ended.
    pub finished_at: Option<Millis>,
    /// Not started before this time (a schedule's jitter); `None` = as soon as possible.
    pub not_before: Option<Millis>,
}

/// A guarded state change: applied only while the run is still in `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The run.
    pub run_id: String,
    /// Its agent (so callers know whose desired state changed).
    pub agent_id: String,
    /// The state it must still be in.
    pub from: RunState,
    /// The new state.
    pub to: RunState,
    /// When (sets `started_at` for running, `finished_at` for terminal states).
    pub at: Millis,
    /// The new message, if it changes.
    pub message: Option<String>,
}

/// A coordinator's lease on a running run (several coordinators on one database): the run
/// is dispatched by `owner` (a coordinator's instance id) until `expires`, unless renewed; an
/// expired lease may be taken by the coordinator that holds the run's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLease {
    /// The instance id of the coordinator holding it.
    pub owner: String,
    /// When it lapses unless renewed.
    pub expires: Millis,
}

/// Whether an upload stored something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored now.
    Stored,
    /// This run already had a result; nothing changed.
    Duplicate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_stored_before_warmup_and_trials_still_loads() {
        let old = r#"{"selector":"all","framework":"compare","quick":true,"run_timeout_s":60,
            "deadline_s":8,"concurrency":1,"overrides":{"operations":[],"precisions":[],
            "blas_sizes":[16,32],"stream_mib":[],"min_gflops":0.0}}"#;
        let spec: CampaignSpec = serde_json::from_str(old).unwrap();
        assert_eq!((spec.warmup, spec.trials), (None, None));
        assert_eq!(spec.max_duration_s, None);
        assert_eq!(spec.overrides.blas_sizes, [16, 32]);
        // Unset, they are left out, so the row reads as before; set, they round-trip (0
        // warm-ups included).
        let text = serde_json::to_string(&spec).unwrap();
        assert!(
            !text.contains("warmup") && !text.contains("trials") && !text.contains("max_duration"),
            "{text}"
        );
        let set = CampaignSpec {
            warmup: Some(0),
            trials: Some(20),
            max_duration_s: Some(90),
            ..spec
        };
        let text = serde_json::to_string(&set).unwrap();
        assert!(
            text.contains("\"warmup\":0")
                && text.contains("\"trials\":20")
                && text.contains("\"max_duration_s\":90"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<CampaignSpec>(&text).unwrap(), set);
    }
}
