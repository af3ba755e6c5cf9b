//! The scheduler driver: on every event and every tick, loads the active runs, asks the pure
//! [`schedule`] what changes, applies the changes (each guarded by the run's state), and
//! sends every connected agent its desired state if that changed.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::convert::{idle_directive, plan_directive};
use super::core::Coordinator;
use crate::model::{now_ms, CampaignRecord, RunRecord, RunState};
use crate::schedule::{schedule, Snapshot};
use crate::store::Store;
use crate::Error;

/// One scheduling pass.
pub async fn tick<S: Store>(c: &Coordinator<S>) -> Result<(), Error> {
    let now = now_ms();
    let campaigns = c.store.active_campaigns().await?;
    let mut runs = c.store.active_runs().await?;
    let connected = c.registry.connected();
    let changes = schedule(Snapshot {
        now,
        campaigns: &campaigns,
        runs: &runs,
        connected: &connected,
    });
    for t in changes {
        if c.store.transition(&t).await? {
            if let Some(r) = runs.iter_mut().find(|r| r.run_id == t.run_id) {
                r.state = t.to;
                if t.to == RunState::Running {
                    r.started_at = Some(t.at);
                }
            }
            tracing::info!(run = %t.run_id, agent = %t.agent_id, from = %t.from, to = %t.to, "run");
        }
    }
    let by_id: HashMap<&str, &CampaignRecord> =
        campaigns.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut current: HashMap<&str, &RunRecord> = HashMap::new();
    for r in runs.iter().filter(|r| r.state == RunState::Running) {
        let slot = current.entry(r.agent_id.as_str()).or_insert(r);
        if r.started_at < slot.started_at {
            *slot = r;
        }
    }
    for agent in &connected {
        let directive = current
            .get(agent.as_str())
            .and_then(|r| {
                by_id
                    .get(r.campaign_id.as_str())
                    .map(|c| plan_directive(r, c))
            })
            .unwrap_or_else(idle_directive);
        c.registry.send_if_changed(agent, &directive);
    }
    Ok(())
}

/// Runs [`tick`] on every wake-up and every `settings.tick` until `stop` turns true.
pub async fn drive<S: Store>(c: Arc<Coordinator<S>>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = tick(&c).await {
            tracing::warn!("scheduler: {e}");
        }
        tokio::select! {
            _ = c.wake.notified() => {}
            _ = tokio::time::sleep(c.settings.tick) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
