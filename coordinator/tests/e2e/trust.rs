//! Roles bound to certificates, against the real coordinator serving mutual TLS with
//! `fleetctl pki init` certificates:
//!
//! - an agent certificate makes agent-service calls for its own id only: registering,
//!   subscribing, heartbeats and uploads as another agent are PERMISSION_DENIED naming the
//!   certificate and the attempt, and nothing is stored;
//! - an agent certificate may not call the admin service (gRPC or fleetctl: exit 5), an admin
//!   certificate may not act as an agent; no campaign is created by the refused call;
//! - plain text needs `--insecure-plaintext`, which logs a warning;
//! - enrollment with a join token, and without one: pending until `fleetctl agents approve`.

use std::process::Command;

use fleetcal_coordinator::fleetctl::client;
use fleetcal_proto::pb;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use tonic::Code;

use crate::fleet::common::wait_for;
use crate::support::{cpu_caps, CoordinatorProcess, COORDINATOR, PLAIN};
use crate::tls::{bounded, ctl, text, Pki};

fn registration(agent_id: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        instance: String::new(),
        agent_id: agent_id.into(),
        hostname: "board".into(),
        labels: Default::default(),
        preset: None,
        capabilities: Some(cpu_caps(&["numpy"])),
        agent_version: "test".into(),
    }
}

/// The status is PERMISSION_DENIED and its message names all of `needles`.
fn assert_denied(status: &tonic::Status, needles: &[&str]) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    for n in needles {
        assert!(status.message().contains(n), "{n:?} not in {status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_certificate_acts_only_as_its_own_agent_and_never_as_admin() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &[]);
    let a = pki.agent("a");
    let b = uuid::Uuid::new_v4().to_string();
    let (coordinator, url) = pki.serve(dir.path(), true);
    let admin_flags = pki.client_flags("admin");

    let mut agent = AgentServiceClient::new(pki.channel(&url, "a").await);
    agent.register(registration(&a)).await.expect("its own id");
    let e = agent.register(registration(&b)).await.unwrap_err();
    assert_denied(
        &e,
        &[
            &format!("agent certificate '{a}'"),
            &format!("may not act as agent '{b}' (Register)"),
        ],
    );
    let e = agent
        .heartbeat(pb::HeartbeatRequest {
            agent_id: b.clone(),
        })
        .await
        .unwrap_err();
    assert_denied(&e, &["(Heartbeat)"]);
    let e = agent
        .subscribe(pb::SubscribeRequest {
            instance: String::new(),
            agent_id: b.clone(),
        })
        .await
        .unwrap_err();
    assert_denied(&e, &["(Subscribe)"]);
    let e = agent
        .upload_result(pb::UploadRequest {
            agent_id: b.clone(),
            run_id: "r-1".into(),
            result_packed: Default::default(),
            result_json: b"{}".to_vec().into(),
        })
        .await
        .unwrap_err();
    assert_denied(&e, &["(UploadResult)"]);

    // The admin service: refused over gRPC and through fleetctl (exit 5), nothing started.
    let mut as_admin = client::admin(pki.channel(&url, "a").await);
    let e = as_admin
        .start_campaign(pb::StartCampaignRequest::default())
        .await
        .unwrap_err();
    assert_denied(
        &e,
        &[
            &format!("agent certificate '{a}'"),
            "may not call the admin service (StartCampaign)",
        ],
    );
    let out = ctl(&url, &pki.client_flags("a"), &["agents"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("permission denied") && stderr.contains("(ListAgents)"),
        "{stderr}"
    );

    // The admin certificate sees only agent a, and no campaign; it may not act as an agent.
    let out = ctl(&url, &admin_flags, &["agents", "--json"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    let out = ctl(&url, &admin_flags, &["campaigns", "--json"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0.trim(), "[]");
    let mut admin_as_agent = AgentServiceClient::new(pki.channel(&url, "admin").await);
    let e = admin_as_agent.register(registration(&b)).await.unwrap_err();
    assert_denied(
        &e,
        &["admin certificate 'admin'", "agent service (Register)"],
    );
    drop(coordinator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetctl_token_create_prints_a_token_the_store_keeps_only_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &[]);
    pki.agent("a");
    let (coordinator, url) = pki.serve(dir.path(), true);
    let admin = pki.client_flags("admin");
    let out = ctl(
        &url,
        &admin,
        &[
            "token", "create", "--ttl", "2h", "--labels", "site=lab", "--uses", "3",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{}", coordinator.log_text());
    let token = stdout.trim();
    assert!(
        token.starts_with("fleetcal-join-") && token.len() > 60,
        "{token}"
    );
    assert!(stderr.contains("for 3 agent(s)"), "{stderr}");
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("coordinator.db").display()
    ))
    .await
    .unwrap();
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT token_hash, labels, uses_left FROM join_tokens")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].0,
        fleetcal_coordinator::server::enroll::token_hash(token)
    );
    assert!(!rows[0].0.contains(token) && !rows[0].1.contains(token));
    assert_eq!((rows[0].1.as_str(), rows[0].2), (r#"{"site":"lab"}"#, 3));
    // Out of range: named, nothing stored; an agent's certificate may not make one.
    let out = ctl(&url, &admin, &["token", "create", "--uses", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    assert!(text(&out)
        .1
        .contains("'uses': 0 is not between 1 and 100000"));
    let out = ctl(&url, &pki.client_flags("a"), &["token", "create"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out).1);
    assert!(text(&out).1.contains("(CreateJoinToken)"));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM join_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[test]
fn plain_text_needs_the_explicit_flag_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let out =
        bounded(Command::new(COORDINATOR).args(["serve", "--listen", "127.0.0.1:0", "--db", &db]));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(stderr.contains("--insecure-plaintext"), "{stderr}");
    // With the flag (the harness serves mutual TLS unless asked for it), the coordinator says
    // what it means.
    let coordinator = CoordinatorProcess::start(dir.path(), &[PLAIN]);
    wait_for(
        "the plain-text warning",
        || coordinator.log_text(),
        || {
            let log = coordinator.log_text();
            (log.contains("WARN") && log.contains("serving plain text (--insecure-plaintext)"))
                .then_some(())
        },
    );
}

/// Enrollment with a join token, real agents: the first agent makes its key in its state dir
/// (0600), gets a certificate naming its id over server-authenticated TLS, registers with the
/// token's labels and is listed online; a second agent with the used-up token is refused and
/// exits 2, never registered; a caller without a certificate reaches nothing but enrollment.
#[test]
fn an_agent_enrolls_with_a_join_token_and_a_used_up_token_is_refused() {
    use crate::fleet::agent::Agent;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &[]);
    let mut flags = pki.server_flags(true);
    flags.extend(["--ca-key".into(), pki.file("ca.key")]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let coordinator = CoordinatorProcess::start(dir.path(), &flags);
    let url = format!("https://{}", coordinator.addr);
    let admin = pki.client_flags("admin");
    let out = ctl(&url, &admin, &["token", "create", "--labels", "site=lab"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let token = text(&out).0.trim().to_string();

    let ca = pki.file("ca.pem");
    let agent = Agent::start(&url, &["--ca-cert", &ca, "--join-token", &token]);
    let listed = |flags: &[String]| -> Vec<serde_json::Value> {
        let out = ctl(&url, flags, &["agents", "--json"]);
        assert!(out.status.success(), "{}", text(&out).1);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let id = wait_for(
        "the enrolled agent to be listed online",
        || format!("{}\n{}", agent.log(), coordinator.log_text()),
        || {
            let id = agent.agent_id()?;
            listed(&admin)
                .iter()
                .any(|a| a["agent_id"] == id.as_str() && a["online"] == true)
                .then_some(id)
        },
    );
    let row = listed(&admin)
        .into_iter()
        .find(|a| a["agent_id"] == id.as_str())
        .unwrap();
    assert_eq!(row["labels"]["site"], "lab", "{row}");
    let state = agent.spool_dir().parent().unwrap().to_path_buf();
    let cert = std::fs::read(state.join("agent.pem")).unwrap();
    let roles = fleetcal_proto::role::of_pem(&cert).unwrap();
    assert_eq!(
        roles.single(),
        Some(&fleetcal_proto::role::Role::Agent(id.clone()))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("agent.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The token had one use: a second agent is refused, says why, and exits 2.
    let mut second = Agent::start(&url, &["--ca-cert", &ca, "--join-token", &token]);
    let status = second.terminate_when_exited(std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(2), "{}", second.log());
    assert!(
        second.log().contains("enrollment refused") && second.log().contains("no use left"),
        "{}",
        second.log()
    );
    // A caller without a certificate gets in (for enrollment) but may not list agents.
    let ca_only = vec!["--ca-cert".to_string(), ca.clone()];
    let out = ctl(&url, &ca_only, &["agents"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out).1);
    assert!(text(&out).1.contains("a caller without a certificate"));
    let ids: Vec<_> = listed(&admin)
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![id]);
}

/// `fleetctl agents revoke`: the agent's open directive stream ends at once, its next call is
/// PERMISSION_DENIED naming the revocation, and that holds after a coordinator restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_agent_is_cut_off_at_once_and_stays_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &[]);
    let a = pki.agent("a");
    let (coordinator, url) = pki.serve(dir.path(), true);
    let mut agent = AgentServiceClient::new(pki.channel(&url, "a").await);
    agent.register(registration(&a)).await.expect("register");
    let (mut stream, _first) = crate::support::subscribe(&mut agent, &a).await;

    let out = ctl(&url, &pki.client_flags("admin"), &["agents", "revoke", &a]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0.trim(), format!("revoked agent {a}"));
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.message().await {}
    })
    .await;
    assert!(ended.is_ok(), "the directive stream ends at once");
    let e = agent
        .heartbeat(pb::HeartbeatRequest {
            agent_id: a.clone(),
        })
        .await
        .unwrap_err();
    assert_denied(&e, &[&format!("agent '{a}'"), "Heartbeat: it is revoked"]);
    // Listed as revoked at once, never online (it was heard from a moment ago).
    let listed = ctl(&url, &pki.client_flags("admin"), &["agents", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&text(&listed).0).unwrap();
    let me = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["agent_id"] == a.as_str())
        .unwrap();
    assert_eq!(
        (&me["state"], &me["online"]),
        (&"revoked".into(), &false.into()),
        "{me}"
    );
    drop(coordinator);

    // Persisted: a restarted coordinator refuses it too.
    let (_coordinator, url) = pki.serve(dir.path(), true);
    let mut agent = AgentServiceClient::new(pki.channel(&url, "a").await);
    let e = agent.register(registration(&a)).await.unwrap_err();
    assert_denied(&e, &["Register: it is revoked"]);
}

/// Enrollment without a join token, real agents: an agent started with `--request-approval`
/// makes its key, asks, and waits; `fleetctl agents` lists it `pending` with its host name and
/// the key fingerprint the agent logs, it is no registered agent (a campaign finds no board),
/// and an agent certificate may not approve it. `fleetctl agents approve ID` (admin): the
/// agent gets its certificate on its next poll, without restarting, comes online and a tiny
/// campaign succeeds. A second agent denied with `fleetctl agents deny ID` exits 2 saying so
/// and is never listed as an agent.
#[test]
fn a_pending_agent_waits_for_approval_and_a_denied_one_stays_out() {
    use crate::fleet::agent::Agent;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &[]);
    pki.agent("a");
    let mut flags = pki.server_flags(true);
    flags.extend(["--ca-key".into(), pki.file("ca.key")]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let coordinator = CoordinatorProcess::start(dir.path(), &flags);
    let url = format!("https://{}", coordinator.addr);
    let admin = pki.client_flags("admin");
    let ca = pki.file("ca.pem");
    let listed = || -> Vec<serde_json::Value> {
        let out = ctl(&url, &admin, &["agents", "--json"]);
        assert!(out.status.success(), "{}", text(&out).1);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let entry = |id: &str| listed().into_iter().find(|a| a["agent_id"] == id);

    let agent = Agent::start(&url, &["--ca-cert", &ca, "--request-approval"]);
    let logs = || format!("{}\n{}", agent.log(), coordinator.log_text());
    let (id, row) = wait_for("the agent listed pending", logs, || {
        let id = agent.agent_id()?;
        let row = entry(&id).filter(|r| r["state"] == "pending")?;
        Some((id, row))
    });
    let key = row["key_fingerprint"].as_str().unwrap().to_string();
    assert!(key.starts_with("sha256:") && key.len() == 71, "{row}");
    assert_eq!(row["online"], false, "{row}");
    assert!(!row["hostname"].as_str().unwrap().is_empty(), "{row}");
    wait_for("the agent to say what it waits for", logs, || {
        let log = agent.log();
        (log.contains(&format!("fleetctl agents approve {id}")) && log.contains(&key)).then_some(())
    });
    let out = ctl(&url, &admin, &["agents"]);
    let (table, stderr) = text(&out);
    assert!(
        table
            .lines()
            .any(|l| l.contains(&id) && l.contains("pending")),
        "{table}"
    );
    assert!(
        stderr.contains("waits for approval") && stderr.contains(&key),
        "{stderr}"
    );
    // Pending is not registered: no plan can reach it.
    let out = ctl(&url, &admin, &["campaign", "start", "--all"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out).1);
    assert!(!agent.state_dir().join("agent.pem").exists());
    // Approval needs the admin role.
    let out = ctl(&url, &pki.client_flags("a"), &["agents", "approve", &id]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out).1);
    assert!(text(&out).1.contains("(ApproveAgent)"), "{}", text(&out).1);

    let out = ctl(&url, &admin, &["agents", "approve", &id]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains(&format!("approved agent {id}")));
    assert!(text(&out).0.contains(&key));
    wait_for("the approved agent online", logs, || {
        entry(&id).filter(|r| r["state"] == "online").map(|_| ())
    });
    let cert = std::fs::read(agent.state_dir().join("agent.pem")).unwrap();
    assert_eq!(
        fleetcal_proto::role::of_pem(&cert).unwrap().single(),
        Some(&fleetcal_proto::role::Role::Agent(id.clone()))
    );
    assert_eq!(agent.log().matches("fleetcal agent starting").count(), 1);
    let out = ctl(&url, &admin, &["agents", "deny", &id]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "decided already: {}",
        text(&out).1
    );

    let start: Vec<&str> = ["campaign", "start", "--all"]
        .into_iter()
        .chain(crate::support::TINY_CAMPAIGN)
        .collect();
    let out = ctl(&url, &admin, &start);
    assert!(out.status.success(), "{}", text(&out).1);
    let campaign: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let campaign = campaign["id"].as_str().unwrap();
    let out = ctl(
        &url,
        &admin,
        &["campaign", "status", campaign, "--wait", "--json"],
    );
    assert!(out.status.success(), "{}\n{}", text(&out).1, logs());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["run_counts"]["succeeded"], 1, "{status}");

    // A denied request: the agent stops with the reason and never joins.
    let mut denied = Agent::start(&url, &["--ca-cert", &ca, "--request-approval"]);
    let other = wait_for(
        "the second agent listed pending",
        || denied.log(),
        || {
            let id = denied.agent_id()?;
            entry(&id).filter(|r| r["state"] == "pending").map(|_| id)
        },
    );
    let out = ctl(&url, &admin, &["agents", "deny", &other]);
    assert!(out.status.success(), "{}", text(&out).1);
    let status = denied.terminate_when_exited(std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{}", denied.log());
    assert!(
        denied.log().contains("enrollment refused") && denied.log().contains("denied it"),
        "{}",
        denied.log()
    );
    assert!(entry(&other).is_none(), "a denied request is not listed");
    let ids: Vec<String> = listed()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![id]);
}
