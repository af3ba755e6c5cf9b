//! Campaign planning: which agents a campaign covers, which preset each one calibrates
//! against, and which framework(s) on which device. Pure and synchronous.
//!
//! Rules (see `docs/coordinator.md`):
//! - preset: the agent's configured preset, else the best `[match]` of the known presets
//!   (a CUDA preset wins on an agent with usable CUDA), else `auto` (the agent derives one
//!   from its CPU; device cpu, framework numpy);
//! - device: the preset's;
//! - framework: the framework rules of `fleetcal_proto::framework` (the same the agent applies
//!   to `calibrate`): the preset's `default_framework` (numpy on cpu, pytorch on cuda); an
//!   override of one framework applies to every board; `compare` plans numpy and pytorch on
//!   CPU boards whose agent reports the pytorch engine (numpy only otherwise) and pytorch on
//!   CUDA boards;
//! - a combination a board cannot run (numpy on cuda, a missing engine, a cuda preset without
//!   usable CUDA, an unknown configured preset) is not refused for the whole campaign: it is
//!   planned as a run that is failed from the start with the reason, so the rest of the fleet
//!   proceeds and `fleetctl campaign status --wait` reports it.

use fleetcal_proto::framework::{self, Target};
use fleetcal_proto::{DeviceKind, Framework, Preset};

use crate::domain::DomainError;
use crate::model::{AgentRecord, CampaignSpec, Capabilities, FrameworkChoice, Selector};

/// The id used when no preset is configured or matched.
pub const AUTO_PRESET: &str = "auto";

/// The preset an agent calibrates against.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetChoice {
    /// The preset id (`auto` when none).
    pub id: String,
    /// Its device, or why the configured preset is unusable.
    pub device: Result<DeviceKind, String>,
    /// Its default framework.
    pub default_framework: Framework,
}

/// One planned run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// The agent.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// The preset id.
    pub preset_id: String,
    /// The framework.
    pub framework: Framework,
    /// The device.
    pub device: DeviceKind,
    /// `Err(reason)` when the board cannot run it: the run starts out failed.
    pub refused: Option<String>,
}

/// The preset an agent uses: configured, matched, or `auto`.
pub fn effective_preset(agent: &AgentRecord, presets: &[Preset]) -> PresetChoice {
    if let Some(id) = agent.preset.as_deref().filter(|p| !p.is_empty()) {
        if id == AUTO_PRESET {
            return auto();
        }
        return match presets.iter().find(|p| p.id == id) {
            Some(p) => from_preset(p),
            None => PresetChoice {
                id: id.to_string(),
                device: Err(format!(
                    "preset '{id}' is not among the coordinator's presets (see --presets)"
                )),
                default_framework: Framework::Numpy,
            },
        };
    }
    presets
        .iter()
        .filter_map(|p| match_score(p, &agent.capabilities).map(|s| (s, p)))
        // Highest score wins; among equals the first id (presets come sorted by id).
        .fold(None::<(u32, &Preset)>, |best, (s, p)| match best {
            Some((bs, _)) if bs >= s => best,
            _ => Some((s, p)),
        })
        .map_or_else(auto, |(_, p)| from_preset(p))
}

fn auto() -> PresetChoice {
    PresetChoice {
        id: AUTO_PRESET.into(),
        device: Ok(DeviceKind::Cpu),
        default_framework: Framework::Numpy,
    }
}

fn from_preset(p: &Preset) -> PresetChoice {
    PresetChoice {
        id: p.id.clone(),
        device: Ok(p.device),
        default_framework: p.default_framework,
    }
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

/// How well a preset's `[match]` fits an agent: `None` when it does not match (or has no
/// match rules), else one point per rule, plus 10 for a CUDA preset on a CUDA agent.
pub fn match_score(preset: &Preset, caps: &Capabilities) -> Option<u32> {
    let m = &preset.matches;
    let mut score = 0;
    if let Some(vendor) = &m.cpu_vendor {
        if !vendor.eq_ignore_ascii_case(&caps.cpu_vendor) {
            return None;
        }
        score += 1;
    }
    if !m.cpu_model.is_empty() {
        if !m.cpu_model.iter().any(|s| contains_ci(&caps.cpu_model, s)) {
            return None;
        }
        score += 1;
    }
    if !m.gpu_name.is_empty() {
        if !caps.cuda_available || !m.gpu_name.iter().any(|s| contains_ci(&caps.gpu_name, s)) {
            return None;
        }
        score += 1;
    }
    if score == 0 {
        return None;
    }
    if preset.device == DeviceKind::Cuda && caps.cuda_available {
        score += 10;
    }
    Some(score)
}

/// Whether an agent falls under a selector.
pub fn selects(selector: &Selector, agent: &AgentRecord, presets: &[Preset]) -> bool {
    match selector {
        Selector::All => true,
        Selector::Labels(want) => want
            .iter()
            .all(|(k, v)| agent.labels.get(k).is_some_and(|have| have == v)),
        Selector::Preset(id) => effective_preset(agent, presets).id == *id,
        Selector::Agent(id) => agent.agent_id == *id,
    }
}

/// Plans the runs of a campaign over the registered agents (sorted by host name, then id).
/// `NoAgentsMatch` when the selector covers nobody.
pub fn plan_campaign(
    agents: &[AgentRecord],
    presets: &[Preset],
    spec: &CampaignSpec,
) -> Result<Vec<PlannedRun>, DomainError> {
    let mut chosen: Vec<&AgentRecord> = agents
        .iter()
        .filter(|a| selects(&spec.selector, a, presets))
        .collect();
    if chosen.is_empty() {
        return Err(DomainError::NoAgentsMatch(spec.selector.to_string()));
    }
    chosen.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    Ok(chosen
        .into_iter()
        .flat_map(|a| plan_agent(a, presets, spec.framework))
        .collect())
}

/// The runs of one agent.
pub fn plan_agent(
    agent: &AgentRecord,
    presets: &[Preset],
    choice: FrameworkChoice,
) -> Vec<PlannedRun> {
    let preset = effective_preset(agent, presets);
    let caps = &agent.capabilities;
    let run = |framework: Framework, device: DeviceKind, refused: Option<String>| PlannedRun {
        agent_id: agent.agent_id.clone(),
        hostname: agent.hostname.clone(),
        preset_id: preset.id.clone(),
        framework,
        device,
        refused,
    };
    let device = match &preset.device {
        Ok(d) => *d,
        Err(reason) => {
            // An unknown preset has no device: one failed run, recorded as cpu, with the
            // first framework the rules would pick.
            let target = Target {
                device: DeviceKind::Cpu,
                default_framework: preset.default_framework,
            };
            let fw = framework::choose(target, choice, caps.engines())
                .into_iter()
                .next()
                .map_or(preset.default_framework, |p| p.framework);
            return vec![run(fw, DeviceKind::Cpu, Some(reason.clone()))];
        }
    };
    let target = Target {
        device,
        default_framework: preset.default_framework,
    };
    framework::choose(target, choice, caps.engines())
        .into_iter()
        .map(|p| {
            let refused = p
                .refused
                .map(|e| e.to_string())
                .or_else(|| no_cuda(device, &preset.id, caps));
            run(p.framework, device, refused)
        })
        .collect()
}

/// A cuda preset on an agent without usable CUDA: the daemon never accepts a device fallback,
/// so the run could only fail.
fn no_cuda(device: DeviceKind, preset: &str, caps: &Capabilities) -> Option<String> {
    (device == DeviceKind::Cuda && !caps.cuda_available).then(|| {
        format!("preset '{preset}' targets cuda but the agent reports no usable cuda device")
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
