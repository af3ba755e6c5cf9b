//! Validation at the edges, against the real coordinator binary: every bad registration,
//! id and result of issue 9 gets INVALID_ARGUMENT naming the field with a bounded quote,
//! nothing is stored, and the fleet's listings keep working. One coordinator per test serves
//! many cases.

use std::collections::HashMap;

use fleetcal_proto::pb;
use fleetcal_proto::result::{Record, Status};
use fleetcal_proto::{CalibrationResult, DeviceKind, Framework};
use tonic::Code;

use crate::support::*;

/// A status message must stay short whatever the input's size.
const SHORT: usize = 400;

fn registration(agent_id: &str, hostname: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        instance: String::new(),
        agent_id: agent_id.into(),
        hostname: hostname.into(),
        labels: HashMap::new(),
        preset: None,
        capabilities: Some(cpu_caps(&["numpy"])),
        agent_version: "test".into(),
    }
}

fn refused(status: tonic::Status, field: &str) -> String {
    let message = status.message().to_string();
    assert_eq!(status.code(), Code::InvalidArgument, "{message}");
    assert!(message.contains(&format!("field '{field}'")), "{message}");
    assert!(
        message.len() < SHORT,
        "not bounded: {} bytes",
        message.len()
    );
    message
}

fn agents_json(url: &str) -> Vec<serde_json::Value> {
    let out = fleetctl(url, &["agents", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn bad_registrations_and_ids_are_refused_bounded_and_the_fleet_stays_listable() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let (mut good_client, good) =
        register_new(&url, "good", &[("site", "lab")], cpu_caps(&["numpy"])).await;

    // NaN and infinite memory, new agents (each with its own certificate) and a
    // re-registration of the good one.
    for (id, bad) in [
        (uuid::Uuid::new_v4().to_string(), f64::NAN),
        (uuid::Uuid::new_v4().to_string(), f64::INFINITY),
        (good.clone(), f64::NAN),
    ] {
        let mut r = registration(&id, "poison");
        r.capabilities.as_mut().unwrap().memory_gb = bad;
        let e = agent_client_as(&url, &id)
            .await
            .register(r)
            .await
            .unwrap_err();
        refused(e, "capabilities.memory_gb");
    }

    let mb = "h".repeat(1 << 20);
    let id = uuid::Uuid::new_v4().to_string();
    let mut client = agent_client_as(&url, &id).await;
    let e = client.register(registration(&id, &mb)).await.unwrap_err();
    let m = refused(e, "hostname");
    assert!(m.contains("is 1048576 bytes, longer than 255"), "{m}");

    let mut r = registration(&id, "labelled");
    r.labels.insert("site".into(), mb.clone());
    refused(client.register(r).await.unwrap_err(), "labels.site");

    // 50k labels, sent raw.
    let mut r = registration(&id, "labelled");
    r.labels = (0..50_000)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let m = refused(client.register(r).await.unwrap_err(), "labels");
    assert!(m.contains("50000 labels, at most 64"), "{m}");

    // A message over 16 MiB is the transport's own error, not a validation one.
    let huge = "h".repeat(pb::MAX_MESSAGE_BYTES + 1024);
    let e = client.register(registration(&id, &huge)).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{}", e.message());

    // 100 KB ids are quoted as a bounded prefix, on every service. No certificate names such
    // an id, so a registration with it is refused by the role check (before the use case's
    // validation), still quoting it bounded.
    let long_id = "x".repeat(100 * 1024);
    let e = client
        .register(registration(&long_id, "h"))
        .await
        .unwrap_err();
    let m = e.message().to_string();
    assert_eq!(e.code(), Code::PermissionDenied, "{m}");
    assert!(m.contains("act as agent 'xxx"), "{m}");
    assert!(m.len() < SHORT, "not bounded: {} bytes", m.len());
    let e = client
        .subscribe(pb::SubscribeRequest {
            instance: String::new(),
            agent_id: long_id.clone(),
        })
        .await
        .unwrap_err();
    refused(e, "agent_id");
    let e = client
        .heartbeat(pb::HeartbeatRequest {
            agent_id: long_id.clone(),
        })
        .await
        .unwrap_err();
    refused(e, "agent_id");
    let e = good_client
        .upload_result(pb::UploadRequest {
            agent_id: good.clone(),
            run_id: long_id.clone(),
            result_packed: Default::default(),
            result_json: b"{}".to_vec().into(),
        })
        .await
        .unwrap_err();
    refused(e, "run_id");
    let e = good_client
        .report_progress(pb::Progress {
            agent_id: good.clone(),
            run_id: long_id.clone(),
            state: pb::RunState::Running as i32,
            fraction: 0.5,
            message: String::new(),
        })
        .await
        .unwrap_err();
    refused(e, "run_id");
    let mut admin = admin_client(&url).await;
    let e = admin
        .get_campaign(pb::GetCampaignRequest {
            id: long_id.clone(),
        })
        .await
        .unwrap_err();
    refused(e, "id");
    let out = fleetctl(&url, &["campaign", "status", &long_id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.len() < SHORT, "{} bytes", stderr.len());
    // (One argument is limited to 128 KiB by the kernel.)
    let out = fleetctl(
        &url,
        &["campaign", "start", "--select", &format!("k={long_id}")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", stderr.len());
    assert!(
        stderr.contains("selector.labels.k") && stderr.len() < SHORT,
        "{} bytes",
        stderr.len()
    );

    // Nothing of that was stored: one agent, unchanged, and campaigns over everyone work.
    let agents = agents_json(&url);
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0]["agent_id"], good.as_str());
    assert_eq!(agents[0]["hostname"], "good");
    assert_eq!(agents[0]["capabilities"]["memory_gb"], 16.0);
    let out = fleetctl(&url, &["campaign", "start", "--all", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fleetctl(&url, &["campaign", "start", "--select", "site=lab"]);
    assert!(out.status.success());
    assert!(
        !coord.log_text().contains("ERROR"),
        "no internal error: {}",
        coord.log_text()
    );
}

/// Uploads a result document; the status on error.
async fn upload(
    client: &mut pb::agent_service_client::AgentServiceClient<tonic::transport::Channel>,
    agent: &str,
    run: &str,
    result: &CalibrationResult,
) -> Result<bool, tonic::Status> {
    client
        .upload_result(pb::UploadRequest {
            agent_id: agent.into(),
            run_id: run.into(),
            result_packed: Default::default(),
            result_json: serde_json::to_vec(result).unwrap().into(),
        })
        .await
        .map(|r| r.into_inner().stored)
}

#[tokio::test]
async fn bad_results_are_refused_naming_the_field_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let (mut client, agent) = register_new(&url, "board", &[], cpu_caps(&["numpy"])).await;
    let (mut other_client, other) = register_new(&url, "other", &[], cpu_caps(&["numpy"])).await;
    let out = fleetctl(&url, &["campaign", "start", "--all"]);
    assert!(out.status.success());
    let campaign = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (_stream, plan) = subscribe_plan(&mut client, &agent).await;
    let (_other_stream, other_plan) = subscribe_plan(&mut other_client, &other).await;
    let run = plan.run_id.clone();
    let good = sample_result(&run, Framework::Numpy, DeviceKind::Cpu);
    good.validate().expect("the sample is valid");

    let failed = |r: &Record| Record {
        status: Status::Failed,
        reason: Some("out of memory".into()),
        trials: 0,
        latency_ms: None,
        gops: None,
        bandwidth_gbps: None,
        efficiency: None,
        ..r.clone()
    };
    type Edit = Box<dyn Fn(&mut CalibrationResult)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "records[0]",
            Box::new(|r| r.records[0].gops.as_mut().unwrap().best = -42.0),
        ),
        (
            "records[1]",
            Box::new(|r| r.records[1].bandwidth_gbps.as_mut().unwrap().best = -12.5),
        ),
        (
            "summary.memory_bandwidth_gbps",
            Box::new(|r| r.summary.memory_bandwidth_gbps = Some(-1.0)),
        ),
        (
            "records[0]",
            Box::new(|r| r.records[0].gops.as_mut().unwrap().best = 1e308),
        ),
        ("records", Box::new(|r| r.records.clear())),
        (
            "records",
            Box::new(move |r| r.records = r.records.iter().map(failed).collect()),
        ),
        (
            "records[3]",
            Box::new(|r| {
                let again = r.records[0].clone();
                r.records.push(again);
            }),
        ),
        (
            "metadata.started_at",
            Box::new(|r| r.metadata.started_at = "yesterday".into()),
        ),
        // (Times far from the coordinator's clock are a board's clock, not a bad result:
        // faults::agents_with_a_clock_a_day_off_and_at_1970.)
        (
            "metadata.host.cpu_count",
            Box::new(|r| r.metadata.host.cpu_count = 0),
        ),
        ("records[0]", Box::new(|r| r.records[0].gops = None)),
    ];
    for (field, edit) in &cases {
        let mut bad = good.clone();
        edit(&mut bad);
        let e = upload(&mut client, &agent, &run, &bad).await.unwrap_err();
        let message = e.message().to_string();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {message}");
        assert!(
            message.contains(&format!("field '{field}'")) && message.len() < SHORT,
            "{field}: {message}"
        );
    }

    // Nothing was stored: the run is still running and nothing exports.
    let runs = admin_client(&url)
        .await
        .list_runs(pb::ListRunsRequest {
            campaign_id: Some(campaign.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    assert!(runs.iter().all(|r| r.state == "running"), "{runs:?}");
    let export = dir.path().join("export");
    assert_nothing_exported(&url, &campaign, &export);

    // The good ones are stored.
    assert!(upload(&mut client, &agent, &run, &good).await.unwrap());
    let other_result = sample_result(&other_plan.run_id, Framework::Numpy, DeviceKind::Cpu);
    assert!(
        upload(&mut other_client, &other, &other_plan.run_id, &other_result)
            .await
            .unwrap()
    );

    // A result stored before these rules (every figure failed) does not stop the export of
    // the others: it is named on stderr, the rest is written, and the exit code says so.
    let mut legacy = other_result.clone();
    legacy.records = legacy.records.iter().map(failed).collect();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("coordinator.db").display()
    ))
    .await
    .unwrap();
    // As stored before: plain text, no compressed document.
    sqlx::query("UPDATE results SET result_json = $1, result_zstd = NULL WHERE run_id = $2")
        .bind(legacy.to_json())
        .bind(&other_plan.run_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let out = fleetctl(
        &url,
        &[
            "results",
            "export",
            "--campaign",
            &campaign,
            "--dir",
            export.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&other_plan.run_id) && stderr.contains("no figure was measured"),
        "{stderr}"
    );
    let written: Vec<_> = std::fs::read_dir(&export).unwrap().collect();
    assert_eq!(written.len(), 1, "the readable result is written");
}

/// Inserts an agent row as an older coordinator could have stored it (no validation then).
async fn legacy_agent(pool: &sqlx::SqlitePool, id: &str, hostname: &str, capabilities: &str) {
    sqlx::query(
        "INSERT INTO agents (agent_id, hostname, labels, preset, capabilities, agent_version, \
         registered_at, last_seen) VALUES ($1, $2, '{}', NULL, $3, 'old', 1, 1)",
    )
    .bind(id)
    .bind(hostname)
    .bind(capabilities)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn listings_page_skip_poisoned_rows_and_a_poisoned_agent_can_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let (mut client, good) = register_new(&url, "good", &[], cpu_caps(&["numpy"])).await;

    // 17 agents with 1 MB host names (what made one ListAgents response exceed 16 MiB) and
    // the row a NaN memory_gb used to become, written as an older coordinator stored them.
    let db = format!("sqlite://{}", dir.path().join("coordinator.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let caps = r#"{"arch":"x86_64","cpu_model":"Test CPU 9000","engines":["numpy"]}"#;
    let mut big = Vec::new();
    for i in 0..17 {
        let id = uuid::Uuid::new_v4().to_string();
        legacy_agent(&pool, &id, &format!("{i:02}{}", "h".repeat(1 << 20)), caps).await;
        big.push(id);
    }
    let poison = uuid::Uuid::new_v4().to_string();
    legacy_agent(&pool, &poison, "nan-box", r#"{"memory_gb":null}"#).await;
    let repaired = uuid::Uuid::new_v4().to_string();
    legacy_agent(&pool, &repaired, "nan-box-2", r#"{"memory_gb":null}"#).await;
    pool.close().await;

    // The agent of a poisoned row registers again (it used to get INTERNAL): the row is
    // replaced.
    let mut again = registration(&repaired, "nan-box-2");
    again.capabilities.as_mut().unwrap().memory_gb = 8.0;
    agent_client_as(&url, &repaired)
        .await
        .register(again)
        .await
        .expect("re-registration repairs the row");
    let out = fleetctl(&url, &["agents", "remove", &repaired]);
    assert!(
        out.status.success(),
        "a repaired row is an agent like any other"
    );

    // fleetctl follows the pages; the poisoned row is left out and logged by id and column.
    let agents = agents_json(&url);
    assert_eq!(agents.len(), 18, "17 big agents and the good one");
    assert_eq!(agents[17]["agent_id"], good.as_str(), "sorted by host name");
    let log = coord.log_text();
    assert!(
        log.contains(&format!("skipping row '{poison}' of table agents"))
            && log.contains("capabilities"),
        "{log}"
    );

    // Raw pages: at most 4 MiB each, a token per page, every agent exactly once.
    let mut admin = admin_client(&url)
        .await
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES);
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = admin
            .list_agents(pb::ListAgentsRequest {
                page_size: 0,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.agents.len() <= 4, "4 MiB pages: {}", page.agents.len());
        seen.extend(page.agents.into_iter().map(|a| a.agent_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(pages >= 5, "{pages} pages");
    let mut want = big.clone();
    want.push(good.clone());
    want.sort();
    assert_eq!(seen, want, "in id order, each once");
    let e = admin
        .list_agents(pb::ListAgentsRequest {
            page_size: 1,
            page_token: "bogus".into(),
        })
        .await
        .unwrap_err();
    refused(e, "page_token");

    // Runs copy the host names: one campaign over everyone, and `fleetctl runs` still works.
    let out = fleetctl(&url, &["campaign", "start", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let campaign = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = fleetctl(&url, &["runs", "--campaign", &campaign, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 18);

    // The poisoned row is removed; removing it twice is NOT_FOUND (exit 3).
    let out = fleetctl(&url, &["agents", "remove", &poison]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 queued run(s) failed"));
    let out = fleetctl(&url, &["agents", "remove", &poison]);
    assert_eq!(out.status.code(), Some(3));
    // A big agent's queued run fails with it; the good agent's running run refuses removal.
    let out = fleetctl(&url, &["agents", "remove", &big[0]]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 queued run(s) failed"));
    let (_stream, plan) = subscribe_plan(&mut client, &good).await;
    let out = fleetctl(&url, &["agents", "remove", &good]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&plan.run_id), "{stderr}");
    let left = fleetcal_coordinator::fleetctl::client::all_agents(&mut admin)
        .await
        .unwrap();
    assert_eq!(left.len(), 17, "the good one stays, big[0] is gone");
    assert!(!left.iter().any(|a| a.agent_id == big[0]));
}
