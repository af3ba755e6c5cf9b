//! Certificate renewal against the real binaries: a coordinator with `--ca-key` signing agent
//! certificates valid 20 s, a real agent enrolled with a join token. The agent renews its
//! certificate on its own, two thirds into its lifetime, without restarting (same pid, a new
//! `agent.pem`), reconnects with the new certificate, runs a campaign once the first one has
//! expired, and `fleetctl agents --json` shows the later expiry, marked as expiring soon.
//! Renew itself is allowed only for the caller's own, unrevoked agent id.

use fleetcal_proto::pb;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use fleetcal_proto::role;
use serde_json::Value;
use tonic::Code;

use crate::fleet::agent::Agent;
use crate::fleet::common::wait_for;
use crate::support::CoordinatorProcess;
use crate::tls::{ctl, text, Pki};

/// The coordinator's agent certificate lifetime here: renewed about 13 s after issue.
const LIFETIME_S: &str = "20";

/// fleetctl `args` as `flags` says, which must succeed and print JSON.
fn ctl_json(url: &str, flags: &[String], args: &[&str]) -> Value {
    let out = ctl(url, flags, args);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "fleetctl {args:?}: {stderr}\n{stdout}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("fleetctl {args:?}: {e}: {stdout}"))
}

/// The agent's listing, if it is listed.
fn entry(url: &str, flags: &[String], id: &str, extra: &[&str]) -> Option<Value> {
    let args: Vec<&str> = ["agents", "--json"].iter().chain(extra).copied().collect();
    ctl_json(url, flags, &args)
        .as_array()?
        .iter()
        .find(|a| a["agent_id"] == id)
        .cloned()
}

#[test]
fn an_enrolled_agent_renews_its_certificate_without_restarting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &[]);
    let mut flags = pki.server_flags(true);
    flags.extend([
        "--ca-key".into(),
        pki.file("ca.key"),
        "--agent-cert-lifetime-s".into(),
        LIFETIME_S.into(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let coordinator = CoordinatorProcess::start(dir.path(), &flags);
    let url = format!("https://{}", coordinator.addr);
    let admin = pki.client_flags("admin");
    let token = text(&ctl(&url, &admin, &["token", "create"])).0;
    let ca = pki.file("ca.pem");
    let agent = Agent::start(&url, &["--ca-cert", &ca, "--join-token", token.trim()]);
    let logs = || format!("{}\n{}", agent.log(), coordinator.log_text());
    let pem = agent.state_dir().join("agent.pem");
    let not_after = || {
        std::fs::read(&pem)
            .ok()
            .and_then(|p| role::of_pem(&p).ok())
            .map(|c| c.not_after)
    };

    let id = wait_for("the enrolled agent online", logs, || {
        let id = agent.agent_id()?;
        let e = entry(&url, &admin, &id, &[])?;
        (e["online"] == true).then_some(id)
    });
    let pid = agent.pid();
    let first_pem = std::fs::read(&pem).unwrap();
    let first = not_after().unwrap();
    // Recorded from the certificate it registered with, marked: 20 s is within 7 days.
    let e = entry(&url, &admin, &id, &[]).unwrap();
    assert_eq!(e["cert_state"], "soon", "{e}");
    assert!(e["cert_not_after"].is_string(), "{e}");

    // On its own, without a restart: a new certificate in the state dir, logged.
    let renewed = wait_for("the agent to renew its certificate", logs, || {
        not_after().filter(|t| *t > first)
    });
    assert_one_live_process(&agent, pid);
    assert_ne!(std::fs::read(&pem).unwrap(), first_pem);
    assert!(
        agent.log().contains("certificate renewed"),
        "{}",
        agent.log()
    );
    let cert = role::of_pem(&std::fs::read(&pem).unwrap()).unwrap();
    assert_eq!(cert.single(), Some(&role::Role::Agent(id.clone())));

    // fleetctl shows the later expiry (at least the renewed one: it may renew again), online.
    let later = chrono::DateTime::from_timestamp(renewed, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let e = wait_for("the later expiry listed", logs, || {
        entry(&url, &admin, &id, &[])
            .filter(|e| e["online"] == true && e["cert_not_after"].as_str() >= Some(later.as_str()))
    });
    assert_eq!(e["cert_state"], "soon", "{e}");
    // `--expiring-within` lists only certificates expiring within it.
    assert!(entry(&url, &admin, &id, &["--expiring-within", "1d"]).is_some());
    assert_eq!(
        entry(&url, &admin, &id, &["--expiring-within", "0s"]),
        None,
        "not expired yet"
    );

    assert!(
        agent
            .log()
            .contains("reconnecting with the renewed certificate"),
        "{}",
        agent.log()
    );

    // Once the first certificate has expired, a campaign runs: its calls present the new one.
    wait_for("the first certificate to expire", logs, || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        (i64::try_from(now.as_secs()).ok()? > first).then_some(())
    });
    let start: Vec<&str> = ["campaign", "start", "--all", "--warmup", "0"]
        .into_iter()
        .chain(crate::support::TINY_CAMPAIGN)
        .collect();
    let started = ctl_json(&url, &admin, &start);
    let campaign = started["id"].as_str().unwrap();
    let done = ctl_json(
        &url,
        &admin,
        &["campaign", "status", campaign, "--wait", "--json"],
    );
    assert_eq!(done["run_counts"]["succeeded"], 1, "{done}\n{}", logs());
    assert_one_live_process(&agent, pid);
}

/// The agent is still process `pid`, alive, started once.
fn assert_one_live_process(agent: &Agent, pid: u32) {
    assert_eq!(agent.pid(), pid);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    assert!(
        state.starts_with(['R', 'S', 'D']),
        "agent {pid} not running: {stat}\n{}",
        agent.log()
    );
    assert_eq!(
        agent.log().matches("fleetcal agent starting").count(),
        1,
        "{}",
        agent.log()
    );
}

/// A signing request for a new key.
fn csr() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
}

/// Renew is allowed only for the caller's own agent id: another id, an admin certificate and
/// a revoked agent are PERMISSION_DENIED naming why; the renewed certificate names the agent
/// and lasts the configured lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_agents_own_unrevoked_certificate_renews_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &[]);
    let (a, b) = (pki.agent("a"), pki.agent("b"));
    let mut flags = pki.server_flags(true);
    flags.extend([
        "--ca-key".into(),
        pki.file("ca.key"),
        "--agent-cert-lifetime-s".into(),
        "3600".into(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let coordinator = CoordinatorProcess::start(dir.path(), &flags);
    let url = format!("https://{}", coordinator.addr);
    let request = |agent_id: &str| pb::RenewRequest {
        agent_id: agent_id.into(),
        csr_pem: csr(),
    };

    let mut as_a = AgentServiceClient::new(pki.channel(&url, "a").await);
    let answer = as_a.renew(request(&a)).await.expect("renew").into_inner();
    let cert = role::of_pem(answer.certificate_pem.as_bytes()).unwrap();
    assert_eq!(cert.single(), Some(&role::Role::Agent(a.clone())));
    assert_eq!(
        cert.not_after - cert.not_before,
        3600 + 300,
        "lifetime + backdate"
    );
    assert!(answer.not_after.ends_with('Z'), "{answer:?}");

    let e = as_a.renew(request(&b)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains(&format!("may not act as agent '{b}' (Renew)")),
        "{e:?}"
    );
    let mut as_admin = AgentServiceClient::new(pki.channel(&url, "admin").await);
    let e = as_admin.renew(request(&a)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("admin certificate"), "{e:?}");

    let out = ctl(&url, &pki.client_flags("admin"), &["agents", "revoke", &a]);
    assert!(out.status.success(), "{}", text(&out).1);
    let e = as_a.renew(request(&a)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("Renew: it is revoked"), "{e:?}");
}
