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

/// How soon a certificate's expiry is marked "soon" when `--expiring-within` is not given.
pub const EXPIRES_SOON: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Where an agent's certificate stands at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    /// Valid beyond the threshold.
    Valid,
    /// Expires within the threshold.
    Soon,
    /// Past its expiry.
    Expired,
}

impl CertState {
    /// The mark `fleetctl agents` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            CertState::Valid => "valid",
            CertState::Soon => "soon",
            CertState::Expired => "expired",
        }
    }
}

/// Where a certificate expiring at `not_after` (RFC 3339, as `ListAgents` gives it) stands at
/// `now_ms` with the "soon" threshold `within`; `None` when no expiry is known (or it cannot
/// be read).
pub fn cert_state(not_after: &str, now_ms: i64, within: std::time::Duration) -> Option<CertState> {
    let at = chrono::DateTime::parse_from_rfc3339(not_after)
        .ok()?
        .timestamp_millis();
    let within_ms = i64::try_from(within.as_millis()).unwrap_or(i64::MAX);
    Some(if at <= now_ms {
        CertState::Expired
    } else if at.saturating_sub(now_ms) <= within_ms {
        CertState::Soon
    } else {
        CertState::Valid
    })
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
/// `pending`) as a table or JSON, by host name then id; with `expiring_within`, only the
/// agents whose certificate expires within it.
pub async fn list(
    admin: &mut Admin,
    as_json: bool,
    expiring_within: Option<std::time::Duration>,
) -> Result<(), Error> {
    let mut agents = all_agents(admin).await?;
    let now = crate::model::now_ms();
    let within = expiring_within.unwrap_or(EXPIRES_SOON);
    let state = |a: &pb::Agent| cert_state(&a.cert_not_after, now, within);
    // Pending requests have no certificate yet: not listed with --expiring-within.
    let mut pending = match expiring_within {
        Some(_) => Vec::new(),
        None => {
            admin
                .list_pending_agents(pb::ListPendingAgentsRequest {})
                .await?
                .into_inner()
                .pending
        }
    };
    pending.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    for p in &pending {
        eprintln!(
            "fleetctl: agent {} on host '{}' waits for approval, key {}; if that is the \
             board's key (it logs it), run: fleetctl agents approve {} (or deny)",
            p.agent_id, p.hostname, p.key_fingerprint, p.agent_id
        );
    }
    if expiring_within.is_some() {
        agents.retain(|a| matches!(state(a), Some(CertState::Soon | CertState::Expired)));
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
        let mut items: Vec<_> = agents.iter().map(|a| agent_json(a, state(a))).collect();
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
                match state(a) {
                    None => "-".into(),
                    Some(CertState::Valid) => a.cert_not_after.clone(),
                    Some(s) => format!("{} ({})", a.cert_not_after, s.as_str()),
                },
            ]
        })
        .chain(pending.iter().map(|p| {
            let mut row = vec![p.hostname.clone(), p.agent_id.clone(), "pending".into()];
            row.extend(["-"; 5].map(String::from));
            row.push(p.requested_at.clone());
            row.push("-".into());
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
                "LAST SEEN",
                "CERT EXPIRES"
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

fn agent_json(a: &pb::Agent, cert: Option<CertState>) -> serde_json::Value {
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
        "cert_not_after": (!a.cert_not_after.is_empty()).then_some(&a.cert_not_after),
        "cert_state": cert.map(CertState::as_str),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_certificate_is_valid_then_soon_then_expired() {
        let at = "2026-12-08T00:00:00Z";
        let expiry = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .timestamp_millis();
        let day = 86_400_000;
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(
            cert_state(at, expiry - 8 * day, week),
            Some(CertState::Valid)
        );
        assert_eq!(
            cert_state(at, expiry - 7 * day, week),
            Some(CertState::Soon)
        );
        assert_eq!(cert_state(at, expiry - 1, week), Some(CertState::Soon));
        assert_eq!(cert_state(at, expiry, week), Some(CertState::Expired));
        assert_eq!(
            cert_state(at, expiry - 2 * day, Duration::from_secs(3600)),
            Some(CertState::Valid)
        );
        assert_eq!(cert_state("", expiry, week), None);
        assert_eq!(cert_state("not a time", expiry, week), None);
    }
}
