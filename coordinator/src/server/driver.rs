//! The dispatch driver: on every event and every tick, ends the sessions of agents not heard
//! from within the offline window, reads the quarantined agents (cloned boards: not live for
//! dispatch, sent idle), loads the active runs and their leases, asks the pure
//! [`dispatch`] what changes, applies the changes (each guarded by the run's state; a start
//! leases the run to this coordinator), claims or renews the leases of the running runs of its
//! live agents ([`dispatch::claims`]), sends every live agent its desired state
//! ([`dispatch::desired`]) if that changed, and then fires the schedules that are due
//! ([`Coordinator::fire_due_schedules`]; after the dispatch, so a run whose deadline is this
//! firing has ended before the firing looks for busy boards; a firing wakes the driver, so
//! its runs start at once). The driver's loop reads the clock; [`tick`] takes it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::watch;

use super::convert::{idle_directive, plan_directive};
use super::core::Coordinator;
use crate::dispatch::{self, Desired, Snapshot};
use crate::model::{now_ms, CampaignRecord, Millis, RunLease, RunState};
use crate::store::Store;
use crate::Error;

/// One dispatch pass at `now`.
pub async fn tick<S: Store>(c: &Coordinator<S>, now: Millis) -> Result<(), Error> {
    let window = c.offline_window();
    for (agent, silent_ms) in c.registry.close_stale(now, window) {
        tracing::warn!(
            agent = %agent,
            silent_s = silent_ms / 1000,
            "agent not heard from within the offline window; closing its directive stream \
             (a half-open connection or a stalled agent)"
        );
    }
    if let Err(e) = c.persist_contacts(now).await {
        tracing::warn!("recording agents' contact: {e}");
    }
    // The quarantined agents as the store has them (another coordinator may have added or
    // lifted one): they count as not live for dispatch, and are sent idle.
    c.registry
        .set_quarantined(c.store.quarantined_agents().await?);
    let campaigns = c.store.active_campaigns().await?;
    let mut runs = c.store.active_runs().await?;
    let leases = c.store.run_leases().await?;
    let mut live = c.registry.live(now, window);
    let quarantined: Vec<String> = live
        .iter()
        .filter(|a| c.registry.quarantine(a).is_some())
        .cloned()
        .collect();
    for agent in &quarantined {
        live.remove(agent);
    }
    let mut heard = if dispatch::deadline_passed(now, &campaigns) {
        c.store.streaming_since(now.saturating_sub(window)).await?
    } else {
        HashSet::new()
    };
    // A quarantined agent is heard all the time (its clones keep subscribing) but runs
    // nothing: past the deadline its queued runs end agent_offline like an offline board's.
    heard.retain(|a| c.registry.quarantine(a).is_none());
    let snapshot = Snapshot {
        now,
        campaigns: &campaigns,
        runs: &runs,
        live: &live,
        heard: &heard,
        leases: &leases,
        me: &c.instance,
        lease_ms: window,
    };
    let changes = dispatch::dispatch(snapshot);
    let claims = dispatch::claims(snapshot);
    let lease = RunLease {
        owner: c.instance.clone(),
        expires: now.saturating_add(window),
    };
    // One transaction for all of them: a campaign over the whole fleet starts every run here
    // (each started run leased to this coordinator).
    let changed = c.store.transitions(&changes, &lease).await?;
    let index: HashMap<String, usize> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.run_id.clone(), i))
        .collect();
    for t in changes.iter().filter(|t| changed.contains(&t.run_id)) {
        if let Some(r) = index.get(&t.run_id).and_then(|&i| runs.get_mut(i)) {
            r.state = t.to;
            if t.to == RunState::Running {
                r.started_at = Some(t.at);
            }
        }
        tracing::info!(run = %t.run_id, agent = %t.agent_id, from = %t.from, to = %t.to, "run");
    }
    if !claims.is_empty() {
        for run_id in c
            .store
            .claim_runs(&claims, &c.instance, now, lease.expires)
            .await?
        {
            if let Some(p) = leases.get(&run_id).filter(|p| p.owner != c.instance) {
                tracing::info!(
                    run = %run_id,
                    from = %p.owner,
                    "took over the run: the lease of the coordinator that held it expired"
                );
            }
        }
    }
    let by_id: HashMap<&str, &CampaignRecord> =
        campaigns.iter().map(|c| (c.id.as_str(), c)).collect();
    for agent in &live {
        let directive = match dispatch::desired(agent, &runs) {
            Desired::Plan(r) => match by_id.get(r.campaign_id.as_str()) {
                Some(campaign) => plan_directive(r, campaign),
                None => continue,
            },
            Desired::Idle => idle_directive(),
        };
        c.registry.send_if_changed(agent, &directive);
    }
    for agent in &quarantined {
        c.registry.send_if_changed(agent, &idle_directive());
    }
    c.fire_due_schedules(now).await
}

/// Runs [`tick`] on every wake-up and every `settings.tick` until `stop` turns true.
pub async fn drive<S: Store>(c: Arc<Coordinator<S>>, mut stop: watch::Receiver<bool>) {
    loop {
        let started = tokio::time::Instant::now();
        if let Err(e) = tick(&c, now_ms()).await {
            tracing::warn!("dispatch: {e}");
        }
        // A breather as long as the pass took (at most a tick): wake-ups meanwhile coalesce
        // into one pass, so a stream of events (every upload wakes the driver) costs the
        // driver at most half a core instead of a pass per event back to back.
        let breather = started.elapsed().min(c.settings.tick);
        tokio::select! {
            _ = tokio::time::sleep(breather) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
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
