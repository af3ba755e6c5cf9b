//! The campaign dispatcher: from the active runs, the live agents and the clock, the state
//! changes to make now. Pure and synchronous; `server::driver` applies its output. (Cron
//! schedules, which create campaigns, are [`crate::cron`]'s matter: this only moves runs.)
//!
//! Rules, in order:
//! 1. a running run past `started_at + run_timeout_s` becomes `timed_out`;
//! 2. a queued run whose campaign deadline has passed while its agent is not connected becomes
//!    `agent_offline`;
//! 3. a queued run starts (`running`) when its agent is live, runs nothing else (in any
//!    campaign), its `not_before` (a schedule's jitter) has come, and its campaign runs fewer
//!    than `concurrency` runs (0 = unlimited); queued runs are considered oldest campaign
//!    first, then in plan order. A run waiting for its `not_before` does not hold its agent:
//!    a later run of that agent that may start now does.

use std::collections::{HashMap, HashSet};

use crate::model::{CampaignRecord, Millis, RunRecord, RunState, Transition};

/// Everything the dispatcher looks at.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The clock.
    pub now: Millis,
    /// The campaigns of `runs`.
    pub campaigns: &'a [CampaignRecord],
    /// Every queued or running run (other states are ignored).
    pub runs: &'a [RunRecord],
    /// Agents that are live: a directive stream open and heard from within the offline
    /// window (a half-open connection is not live).
    pub live: &'a HashSet<String>,
}

/// The state changes to make now (each guarded by the run's current state).
pub fn dispatch(s: Snapshot<'_>) -> Vec<Transition> {
    let campaigns: HashMap<&str, &CampaignRecord> =
        s.campaigns.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut out = Vec::new();
    let mut busy: HashSet<&str> = HashSet::new();
    let mut running: HashMap<&str, u32> = HashMap::new();

    for run in s.runs.iter().filter(|r| r.state == RunState::Running) {
        let Some(c) = campaigns.get(run.campaign_id.as_str()) else {
            continue;
        };
        let timeout_ms = Millis::from(c.spec.run_timeout_s) * 1000;
        let started = run.started_at.unwrap_or(c.created_at);
        if s.now >= started + timeout_ms {
            out.push(transition(
                run,
                RunState::TimedOut,
                s.now,
                Some(format!("no result within {}s", c.spec.run_timeout_s)),
            ));
        } else {
            busy.insert(run.agent_id.as_str());
            *running.entry(run.campaign_id.as_str()).or_default() += 1;
        }
    }

    let mut queued: Vec<(&CampaignRecord, &RunRecord)> = s
        .runs
        .iter()
        .filter(|r| r.state == RunState::Queued)
        .filter_map(|r| campaigns.get(r.campaign_id.as_str()).map(|c| (*c, r)))
        .collect();
    queued.sort_by(|(ca, ra), (cb, rb)| {
        (ca.created_at, &ca.id, ra.seq).cmp(&(cb.created_at, &cb.id, rb.seq))
    });
    for (c, run) in queued {
        let online = s.live.contains(&run.agent_id);
        if !online {
            if s.now >= c.deadline {
                out.push(transition(
                    run,
                    RunState::AgentOffline,
                    s.now,
                    Some("agent stayed offline until the campaign deadline".into()),
                ));
            }
            continue;
        }
        if run.not_before.is_some_and(|t| s.now < t) {
            continue;
        }
        let count = running.entry(c.id.as_str()).or_default();
        let under_limit = c.spec.concurrency == 0 || *count < c.spec.concurrency;
        if under_limit && busy.insert(run.agent_id.as_str()) {
            *count += 1;
            out.push(transition(
                run,
                RunState::Running,
                s.now,
                Some(String::new()),
            ));
        }
    }
    out
}

fn transition(run: &RunRecord, to: RunState, at: Millis, message: Option<String>) -> Transition {
    Transition {
        run_id: run.run_id.clone(),
        agent_id: run.agent_id.clone(),
        from: run.state,
        to,
        at,
        message,
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
