//! Several coordinators of one fleet:
//!
//! - two coordinators on one PostgreSQL database, three real agents given both URLs: one
//!   coordinator is killed with SIGKILL while it holds a running run's lease; the agents move
//!   to the other, the campaign completes, every result is stored exactly once and no board
//!   ran its run twice;
//! - fleetctl given two URLs works when the first is down;
//! - the store's leases, against SQLite and PostgreSQL: a start leases the run, another
//!   coordinator's claim fails until the lease expires, the holder renews, the database's
//!   `last_seen` says who was heard.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};

use fleetcal_coordinator::model::{
    AgentRecord, CampaignRecord, CampaignSpec, Capabilities, FrameworkChoice, Overrides, RunLease,
    RunRecord, RunState, Selector, Transition,
};
use fleetcal_coordinator::store::{PgStore, SqliteStore, Store};
use fleetcal_proto::{DeviceKind, Framework};
use serde_json::Value;
use sqlx::Row;

use crate::fleet::agent::Agent;
use crate::fleet::common::{ctl_json, presets_dir, wait_for, wait_online};
use crate::pg::PgCluster;
use crate::support::{fleetctl, with_admin_tls, CoordinatorProcess, FLEETCTL};

/// A campaign as lean as a calibration gets: one size, one operation, one precision.
const LEAN: [&str; 15] = [
    "--quick",
    "--sizes",
    "16",
    "--stream-mib",
    "1",
    "--operations",
    "gemm",
    "--precisions",
    "fp32",
    "--warmup",
    "0",
    "--trials",
    "1",
    "--concurrency",
    "1",
];

/// The coordinator's instance id, from its start-up log line.
fn instance_of(c: &CoordinatorProcess) -> Option<String> {
    let log = c.log_text();
    let at = log.find("instance=")? + "instance=".len();
    log[at..].split_whitespace().next().map(str::to_string)
}

fn serve_pg(dir: &Path, db: &str) -> CoordinatorProcess {
    let presets = presets_dir().display().to_string();
    CoordinatorProcess::start(
        dir,
        &[
            "--db",
            db,
            "--presets",
            &presets,
            "--heartbeat-interval-s",
            "1",
            "--offline-after-s",
            "3",
        ],
    )
}

#[test]
fn a_coordinator_killed_mid_campaign_leaves_its_runs_to_the_other() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(cluster) = rt.block_on(PgCluster::start()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let coordinators = [
        serve_pg(dir.path(), &cluster.url),
        serve_pg(dir.path(), &cluster.url),
    ];
    let urls = format!("{},{}", coordinators[0].url(), coordinators[1].url());
    let agents: Vec<Agent> = (0..3).map(|_| Agent::start(&urls, &[])).collect();
    let logs = |cs: &[CoordinatorProcess]| {
        let mut s: String = agents
            .iter()
            .map(|a| format!("--- agent ---\n{}", a.log()))
            .collect();
        for c in cs {
            s.push_str(&format!("--- coordinator ---\n{}", c.log_text()));
        }
        s
    };
    // Online state is the database's: each coordinator lists all three online, whichever
    // of them holds each agent's stream (the agents start at one hashed from their id).
    for c in &coordinators {
        wait_online(&c.url(), 3, || logs(&coordinators));
    }
    let ids: Vec<String> = coordinators
        .iter()
        .map(|c| {
            wait_for(
                "the coordinator's instance id",
                || c.log_text(),
                || instance_of(c),
            )
        })
        .collect();

    // One run at a time, so the campaign is surely under way when a coordinator dies.
    let mut start = vec!["campaign", "start", "--all", "--json"];
    start.extend(LEAN);
    let campaign = ctl_json(&urls, &start)["id"]
        .as_str()
        .expect("campaign id")
        .to_string();
    let db = |sql: &'static str| {
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&cluster.url).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            let _ = conn.close().await;
            rows
        })
    };
    // The coordinator holding the first running run's lease dies with it in flight.
    let (owner, in_flight) = wait_for(
        "a running run with a lease",
        || logs(&coordinators),
        || {
            db(
                "SELECT lease_owner, agent_id FROM runs WHERE state = 'running' \
            AND lease_owner IS NOT NULL",
            )
            .first()
            .map(|r| {
                (
                    r.get::<String, _>("lease_owner"),
                    r.get::<String, _>("agent_id"),
                )
            })
        },
    );
    let victim = ids
        .iter()
        .position(|id| *id == owner)
        .unwrap_or_else(|| panic!("lease owner {owner} is neither of {ids:?}"));
    let survivor = &coordinators[1 - victim];
    // fleetctl follows the campaign from the doomed coordinator, given both URLs.
    let victim_first = format!("{},{}", coordinators[victim].url(), survivor.url());
    let follower = with_admin_tls(&mut Command::new(FLEETCTL), &victim_first, &[])
        .args([
            "--coordinator",
            &victim_first,
            "campaign",
            "status",
            &campaign,
        ])
        .args(["--wait", "--json", "--reconnect-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", &coordinators[victim].pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // It moves to the other coordinator and follows the campaign to its end.
    let out = follower.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "campaign did not succeed: {text}\n{stderr}\n{}",
        logs(&coordinators)
    );
    assert!(
        stderr.contains(&format!("trying {}", survivor.url())),
        "{stderr}"
    );
    let c: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["finished"], true, "{c}");
    assert_eq!(c["run_counts"]["succeeded"], 3, "{c}");

    // Every result stored exactly once: one row per run, in the results and the fleet rows.
    for sql in [
        "SELECT r.run_id, COUNT(x.run_id) AS n FROM runs r LEFT JOIN results x \
         ON x.run_id = r.run_id GROUP BY r.run_id",
        "SELECT r.run_id, COUNT(x.run_id) AS n FROM runs r LEFT JOIN fleet_runs x \
         ON x.run_id = r.run_id GROUP BY r.run_id",
    ] {
        let counts: Vec<i64> = db(sql).iter().map(|r| r.get::<i64, _>("n")).collect();
        assert_eq!(counts, [1, 1, 1], "{sql}\n{}", logs(&coordinators));
    }
    // No board ran its run twice (a re-sent plan is a no-op on the board), and the board
    // whose run was in flight moved to the other coordinator.
    for a in &agents {
        let log = a.log();
        assert_eq!(log.matches("run started").count(), 1, "{log}");
        if a.agent_id().as_deref() == Some(in_flight.as_str()) {
            assert!(log.contains("moving to the next coordinator"), "{log}");
        }
    }
    assert!(
        agents
            .iter()
            .any(|a| a.agent_id().as_deref() == Some(in_flight.as_str())),
        "the in-flight run's agent is one of ours"
    );
    drop(coordinators);
    drop(agents);
}

#[test]
fn fleetctl_with_two_urls_works_when_the_first_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let up = CoordinatorProcess::start(dir.path(), &[]);
    let down = format!("https://127.0.0.1:{}", crate::fleet::common::free_port());
    let both = format!("{down},{}", up.url());
    let out = fleetctl(&both, &["health"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "SERVING");
    assert!(
        stderr.contains(&down) && stderr.contains(&format!("trying {}", up.url())),
        "{stderr}"
    );
    let agents = ctl_json(&both, &["agents", "--json"]);
    assert_eq!(agents, serde_json::json!([]));
    // Both down: the last one's error, exit 7.
    let also_down = format!("https://127.0.0.1:{}", crate::fleet::common::free_port());
    let out = fleetctl(&format!("{down},{also_down}"), &["agents"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&also_down));
}

/// The lease checks, against one backend.
async fn leases<S: Store>(store: S) {
    let agent = AgentRecord {
        agent_id: "a".into(),
        hostname: "a".into(),
        labels: BTreeMap::new(),
        preset: None,
        capabilities: Capabilities::default(),
        agent_version: "1".into(),
        registered_at: 0,
        last_seen: 1_000,
    };
    store.upsert_agent(&agent).await.unwrap();
    store
        .upsert_agent(&AgentRecord {
            agent_id: "b".into(),
            last_seen: 50,
            ..agent.clone()
        })
        .await
        .unwrap();
    let campaign = CampaignRecord {
        id: "c".into(),
        created_at: 0,
        deadline: 100_000,
        spec: CampaignSpec {
            selector: Selector::All,
            framework: FrameworkChoice::Default,
            quick: true,
            warmup: None,
            trials: None,
            max_duration_s: None,
            run_timeout_s: 60,
            deadline_s: 100,
            concurrency: 0,
            overrides: Overrides::default(),
        },
        firing: None,
    };
    let run = |id: &str| RunRecord {
        run_id: id.into(),
        campaign_id: "c".into(),
        agent_id: "a".into(),
        hostname: "a".into(),
        preset_id: "auto".into(),
        framework: Framework::Numpy,
        device: DeviceKind::Cpu,
        state: RunState::Queued,
        fraction: 0.0,
        message: String::new(),
        seq: 0,
        started_at: None,
        finished_at: None,
        not_before: None,
    };
    store
        .create_campaign(&campaign, &[run("r1"), run("r2")])
        .await
        .unwrap();
    let start = Transition {
        run_id: "r1".into(),
        agent_id: "a".into(),
        from: RunState::Queued,
        to: RunState::Running,
        at: 1_000,
        message: Some(String::new()),
    };
    let a_until = |expires| RunLease {
        owner: "coord-a".into(),
        expires,
    };
    assert!(store.start_run(&start, &a_until(4_000)).await.unwrap());
    assert!(
        !store.start_run(&start, &a_until(4_000)).await.unwrap(),
        "started once only"
    );
    let leases = store.run_leases().await.unwrap();
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(leases["r1"], a_until(4_000));
    let r1 = vec!["r1".to_string(), "r2".to_string()];
    // B cannot take a lease A still holds; A renews it; a queued run is never claimed.
    let b = store
        .claim_runs(&r1, "coord-b", 3_999, 6_999)
        .await
        .unwrap();
    assert!(b.is_empty(), "{b:?}");
    let a = store
        .claim_runs(&r1, "coord-a", 3_000, 6_000)
        .await
        .unwrap();
    assert_eq!(a, ["r1"]);
    // Once it has expired, B takes it over, and A's renewal then fails.
    let b = store
        .claim_runs(&r1, "coord-b", 6_000, 9_000)
        .await
        .unwrap();
    assert_eq!(b, ["r1"]);
    let a = store
        .claim_runs(&r1, "coord-a", 6_001, 9_001)
        .await
        .unwrap();
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(store.run_leases().await.unwrap()["r1"].owner, "coord-b");
    // Who was heard on a directive stream, whichever coordinator heard them: a Register or a
    // call without a stream (last_seen) does not count.
    assert!(store.streaming_since(0).await.unwrap().is_empty());
    let unknown = store
        .touch_agents(&[("a".into(), 1_000), ("b".into(), 50), ("nobody".into(), 50)])
        .await
        .unwrap();
    assert_eq!(unknown, vec!["nobody".to_string()]);
    let heard = store.streaming_since(500).await.unwrap();
    assert_eq!(heard, HashSet::from(["a".to_string()]));
    assert_eq!(store.agent("a").await.unwrap().unwrap().last_seen, 1_000);
}

#[tokio::test]
async fn leases_are_claimed_only_when_free_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    leases(SqliteStore::open(&dir.path().join("l.db")).await.unwrap()).await;
    if let Some(cluster) = PgCluster::start().await {
        leases(PgStore::open(&cluster.url).await.unwrap()).await;
    }
}
