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
//!
//! Several coordinators on one database ([`Snapshot::me`] is this one): each dispatches only
//! to the agents whose directive streams it holds (`live`), and a started run is leased to
//! it ([`RunLease`], for `lease_ms`). [`claims`] says which running runs this coordinator
//! claims or renews: those of its live agents whose lease is its own and half spent, has
//! expired (another coordinator died, or the agent moved) or is absent. [`desired`] says
//! what a live agent is told: the plan of its running run (the same plan whoever leased it,
//! so an agent that moved here goes on at once), idle when it runs nothing. Whether an agent is offline (rule 2, and rule 4 below) is decided by
//! `heard` too: agents some coordinator heard on an open directive stream within the offline
//! window (the database's `stream_seen`), not only this one's streams:
//!
//! 4. a running run whose campaign deadline has passed, whose lease has expired (or which has
//!    none), and whose agent is neither live here nor heard anywhere, becomes `failed`: the
//!    coordinator that dispatched it went away and the agent never came back.

use std::collections::{HashMap, HashSet};

use crate::model::{CampaignRecord, Millis, RunLease, RunRecord, RunState, Transition};

/// Everything the dispatcher looks at.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The clock.
    pub now: Millis,
    /// The campaigns of `runs`.
    pub campaigns: &'a [CampaignRecord],
    /// Every queued or running run (other states are ignored).
    pub runs: &'a [RunRecord],
    /// Agents that are live here: a directive stream open to this coordinator and heard from
    /// within the offline window (a half-open connection is not live).
    pub live: &'a HashSet<String>,
    /// Agents any coordinator heard on an open directive stream within the offline window
    /// (the database's `stream_seen`); read only when a deadline has passed
    /// ([`deadline_passed`]), else empty.
    pub heard: &'a HashSet<String>,
    /// The leases of running runs, by run id (a run without one has none).
    pub leases: &'a HashMap<String, RunLease>,
    /// This coordinator's instance id.
    pub me: &'a str,
    /// How long a lease lasts from its claim or renewal.
    pub lease_ms: Millis,
}

impl Snapshot<'_> {
    /// Whether `agent` is offline for every coordinator.
    fn unheard(&self, agent: &str) -> bool {
        !self.live.contains(agent) && !self.heard.contains(agent)
    }
}

/// Whether an active campaign's deadline has passed at `now`: only then do rules 2 and 4
/// look at [`Snapshot::heard`], so the driver reads it from the database only then.
pub fn deadline_passed(now: Millis, campaigns: &[CampaignRecord]) -> bool {
    campaigns.iter().any(|c| now >= c.deadline)
}

/// Whether a running run is past its timeout at `now`.
fn timed_out(now: Millis, run: &RunRecord, c: &CampaignRecord) -> bool {
    let timeout_ms = Millis::from(c.spec.run_timeout_s) * 1000;
    now >= run.started_at.unwrap_or(c.created_at) + timeout_ms
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
        if timed_out(s.now, run, c) {
            out.push(transition(
                run,
                RunState::TimedOut,
                s.now,
                Some(format!("no result within {}s", c.spec.run_timeout_s)),
            ));
        } else if s.now >= c.deadline
            && s.leases.get(&run.run_id).is_none_or(|l| l.expires <= s.now)
            && s.unheard(&run.agent_id)
        {
            let owner = s.leases.get(&run.run_id).map_or_else(
                || "no coordinator".to_string(),
                |l| format!("coordinator '{}'", l.owner),
            );
            out.push(transition(
                run,
                RunState::Failed,
                s.now,
                Some(format!(
                    "{owner} held it and stopped renewing its lease, and the agent was not \
                     heard from again before the campaign deadline"
                )),
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
            if s.now >= c.deadline && s.unheard(&run.agent_id) {
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

/// The running runs this coordinator claims (or renews) now: those of agents live here, not
/// past their timeout, whose lease is absent, expired, or its own with at most half of
/// `lease_ms` left. The store claims each only if that still holds
/// (`Store::claim_runs`), so two coordinators never both hold one.
pub fn claims(s: Snapshot<'_>) -> Vec<String> {
    let campaigns: HashMap<&str, &CampaignRecord> =
        s.campaigns.iter().map(|c| (c.id.as_str(), c)).collect();
    s.runs
        .iter()
        .filter(|r| r.state == RunState::Running && s.live.contains(&r.agent_id))
        .filter(|r| {
            campaigns
                .get(r.campaign_id.as_str())
                .is_some_and(|c| !timed_out(s.now, r, c))
        })
        .filter(|r| match s.leases.get(&r.run_id) {
            None => true,
            Some(l) if l.expires <= s.now => true,
            Some(l) => l.owner == s.me && l.expires - s.now <= s.lease_ms / 2,
        })
        .map(|r| r.run_id.clone())
        .collect()
}

/// What a live agent is told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Desired<'a> {
    /// The plan of this running run (re-sent as is after a reconnect: the agent treats a
    /// plan it already runs, or ran, as a no-op).
    Plan(&'a RunRecord),
    /// Nothing to run.
    Idle,
}

/// What `agent` (live here) is told: its running run (the earliest started), whichever
/// coordinator leased it — the agent is on this one now, and the plan is the same — else
/// idle.
pub fn desired<'a>(agent: &str, runs: &'a [RunRecord]) -> Desired<'a> {
    runs.iter()
        .filter(|r| r.state == RunState::Running && r.agent_id == agent)
        .min_by_key(|r| r.started_at)
        .map_or(Desired::Idle, Desired::Plan)
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
