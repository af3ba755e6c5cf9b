//! `fleetctl agents`.

use fleetcal_proto::pb;
use serde_json::json;

use super::client::{all_agents, Admin};
use super::table::render;
use crate::server::clones::remedy;
use crate::Error;

/// `fleetctl agents remove ID`: removes an agent and says how many queued runs failed.
pub async fn remove(admin: &mut Admin, agent_id: &str) -> Result<(), Error> {
    let failed = admin
        .remove_agent(pb::RemoveAgentRequest {
            agent_id: agent_id.to_string(),
        })
        .await?
        .into_inner()
        .failed_runs;
    println!("removed agent {agent_id} ({failed} queued run(s) failed)");
    Ok(())
}

/// `fleetctl agents revoke ID`: revokes an agent (its calls refused, its stream closed).
pub async fn revoke(admin: &mut Admin, agent_id: &str) -> Result<(), Error> {
    let known = admin
        .revoke_agent(pb::RevokeAgentRequest {
            agent_id: agent_id.to_string(),
        })
        .await?
        .into_inner()
        .known;
    let note = if known {
        ""
    } else {
        " (the coordinator did not know it)"
    };
    println!("revoked agent {agent_id}{note}");
    Ok(())
}

/// `fleetctl agents release ID`: lifts an agent id's clone quarantine.
pub async fn release(admin: &mut Admin, agent_id: &str) -> Result<(), Error> {
    let was = admin
        .release_agent(pb::ReleaseAgentRequest {
            agent_id: agent_id.to_string(),
        })
        .await?
        .into_inner()
        .was_quarantined;
    let note = if was { "" } else { " (it was not quarantined)" };
    println!("released agent {agent_id}{note}");
    Ok(())
}

/// `fleetctl agents approve ID` (`approve`) or `deny ID`: decides a pending enrollment.
pub async fn decide(admin: &mut Admin, agent_id: &str, approve: bool) -> Result<(), Error> {
    let request = pb::DecideAgentRequest {
        agent_id: agent_id.to_string(),
    };
    let decided = if approve {
        admin.approve_agent(request).await?
    } else {
        admin.deny_agent(request).await?
    }
    .into_inner()
    .request
    .unwrap_or_default();
    let verb = if approve { "approved" } else { "denied" };
    println!(
        "{verb} agent {agent_id} (host {}, key {})",
        decided.hostname, decided.key_fingerprint
    );
    Ok(())
}

/// Lists agents (every page) and the enrollment requests waiting for approval (listed
/// `pending`) as a table or JSON, by host name then id.
pub async fn list(admin: &mut Admin, as_json: bool) -> Result<(), Error> {
    let agents = all_agents(admin).await?;
    let mut pending = admin
        .list_pending_agents(pb::ListPendingAgentsRequest {})
        .await?
        .into_inner()
        .pending;
    pending.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    for p in &pending {
        eprintln!(
            "fleetctl: agent {} on host '{}' waits for approval, key {}; if that is the \
             board's key (it logs it), run: fleetctl agents approve {} (or deny)",
            p.agent_id, p.hostname, p.key_fingerprint, p.agent_id
        );
    }
    for a in agents.iter().filter(|a| !a.quarantine.is_empty()) {
        eprintln!(
            "fleetctl: agent {} is quarantined as a cloned board ({}); to re-identify the \
             clone: {}",
            a.agent_id,
            a.quarantine,
            remedy(&a.agent_id)
        );
    }
    if as_json {
        let mut items: Vec<_> = agents.iter().map(agent_json).collect();
        items.extend(pending.iter().map(pending_json));
        println!("{}", serde_json::to_string_pretty(&items).expect("json"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            let caps = a.capabilities.clone().unwrap_or_default();
            let mut labels: Vec<String> =
                a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            vec![
                a.hostname.clone(),
                a.agent_id.clone(),
                agent_state(a).into(),
                a.matched_preset.clone(),
                caps.arch,
                caps.engines.join(","),
                if caps.cuda_available {
                    caps.gpu_name
                } else {
                    "-".into()
                },
                labels.join(","),
                a.last_seen.clone(),
            ]
        })
        .chain(pending.iter().map(|p| {
            let mut row = vec![p.hostname.clone(), p.agent_id.clone(), "pending".into()];
            row.extend(["-"; 5].map(String::from));
            row.push(p.requested_at.clone());
            row
        }))
        .collect();
    print!(
        "{}",
        render(
            &[
                "HOSTNAME",
                "AGENT",
                "STATUS",
                "PRESET",
                "ARCH",
                "ENGINES",
                "GPU",
                "LABELS",
                "LAST SEEN"
            ],
            &rows
        )
    );
    Ok(())
}

/// The STATUS column: revoked, then quarantined (a cloned board), before online or offline.
fn agent_state(a: &pb::Agent) -> &'static str {
    if a.revoked {
        "revoked"
    } else if !a.quarantine.is_empty() {
        "quarantined"
    } else if a.online {
        "online"
    } else {
        "offline"
    }
}

/// An enrollment request waiting for approval, as `fleetctl agents --json` lists it.
fn pending_json(p: &pb::PendingAgent) -> serde_json::Value {
    json!({
        "agent_id": p.agent_id,
        "hostname": p.hostname,
        "online": false,
        "state": "pending",
        "key_fingerprint": p.key_fingerprint,
        "requested_at": p.requested_at,
    })
}

fn agent_json(a: &pb::Agent) -> serde_json::Value {
    let c = a.capabilities.clone().unwrap_or_default();
    json!({
        "agent_id": a.agent_id,
        "hostname": a.hostname,
        "online": a.online,
        "state": agent_state(a),
        "quarantine": (!a.quarantine.is_empty()).then(|| json!({
            "reason": a.quarantine,
            "remedy": remedy(&a.agent_id),
        })),
        "preset": a.preset,
        "matched_preset": a.matched_preset,
        "labels": a.labels,
        "agent_version": a.agent_version,
        "last_seen": a.last_seen,
        "capabilities": {
            "arch": c.arch, "cpu_vendor": c.cpu_vendor, "cpu_model": c.cpu_model,
            "cpu_count": c.cpu_count, "memory_gb": c.memory_gb, "simd": c.simd, "os": c.os,
            "kernel": c.kernel, "engines": c.engines, "cuda_available": c.cuda_available,
            "gpu_name": c.gpu_name, "cuda_version": c.cuda_version,
            "jetson_model": c.jetson_model, "power_mode": c.power_mode,
        },
    })
}

/// `fleetctl token create`: asks the coordinator for a join token and prints it (the only
/// place it is ever shown), then when it expires and how many uses it has on standard error.
pub async fn create_token(
    admin: &mut Admin,
    ttl: std::time::Duration,
    labels: Option<&str>,
    uses: u32,
) -> Result<(), Error> {
    let labels = match labels {
        Some(text) => super::campaign::parse_labels_for("--labels", text)?.labels,
        None => Default::default(),
    };
    let ttl_s = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
    let t = admin
        .create_join_token(pb::CreateJoinTokenRequest {
            ttl_s,
            labels,
            uses,
        })
        .await?
        .into_inner();
    println!("{}", t.token);
    eprintln!(
        "fleetctl: join token for {} agent(s), until {}; it is not shown again",
        t.uses, t.expires_at
    );
    Ok(())
}
