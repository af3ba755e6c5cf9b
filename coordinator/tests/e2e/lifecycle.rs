//! Campaign life cycles against the real coordinator binary: refused combinations, agent
//! failures, timeouts, offline deadlines, concurrency, graceful shutdown, and state that
//! survives a restart.

use std::time::Duration;

use fleetcal_proto::pb;

use fleetcal_coordinator::server::serve;

use crate::support::*;

fn start_campaign(url: &str, args: &[&str]) -> String {
    let mut all = vec!["campaign", "start"];
    all.extend(args);
    let out = fleetctl(url, &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn runs_of(url: &str, campaign: &str) -> Vec<pb::Run> {
    admin_client(url)
        .await
        .list_runs(pb::ListRunsRequest {
            campaign_id: Some(campaign.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .runs
}

#[tokio::test]
async fn refused_failed_and_timed_out_runs_fail_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let (mut client, numpy_only) =
        register_new(&url, "np", &[("k", "1")], cpu_caps(&["numpy"])).await;
    let (mut client_both, both) =
        register_new(&url, "both", &[("k", "1")], cpu_caps(&["numpy", "pytorch"])).await;

    // No agent matches: a clear message and the FAILED_PRECONDITION exit code.
    let out = fleetctl(&url, &["campaign", "start", "--select", "site=moon"]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("site=moon") && err.contains("matches no registered agent"),
        "{err}"
    );

    // compare: numpy + pytorch on the board with the pytorch engine, numpy on the other.
    let campaign = start_campaign(&url, &["--all", "--framework", "compare", "--timeout", "1"]);
    let runs = runs_of(&url, &campaign).await;
    let mut got: Vec<(String, String)> = runs
        .iter()
        .map(|r| (r.hostname.clone(), r.framework.clone()))
        .collect();
    got.sort();
    let want = [("both", "numpy"), ("both", "pytorch"), ("np", "numpy")];
    assert_eq!(got, want.map(|(h, f)| (h.to_string(), f.to_string())));

    // One agent reports failure; the other never answers and times out (1 s).
    let (_s1, p1) = subscribe_plan(&mut client, &numpy_only).await;
    let (_s2, _p2) = subscribe_plan(&mut client_both, &both).await;
    assert!(
        !report(
            &mut client,
            &numpy_only,
            &p1.run_id,
            pb::RunState::Failed,
            0.1,
            "numpy engine crashed"
        )
        .await
    );
    let out = fleetctl(&url, &["campaign", "status", &campaign, "--wait"]);
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = runs_of(&url, &campaign).await;
    let failed = runs.iter().find(|r| r.run_id == p1.run_id).unwrap();
    assert_eq!(
        (failed.state.as_str(), failed.message.as_str()),
        ("failed", "numpy engine crashed")
    );
    let timed_out: Vec<_> = runs.iter().filter(|r| r.state == "timed_out").collect();
    assert_eq!(
        timed_out.len(),
        2,
        "both runs of 'both' ran one after the other and timed out"
    );
    assert!(timed_out[0].message.contains("no result within 1s"));

    // The board cancels a run it is no longer given and reports it FAILED, late: the report
    // is acknowledged and changes nothing (the run stays timed_out, counted once).
    let late = timed_out[0].clone();
    assert!(
        !report(
            &mut client_both,
            &both,
            &late.run_id,
            pb::RunState::Failed,
            0.0,
            "cancelled: the coordinator withdrew the run"
        )
        .await
    );
    let after = runs_of(&url, &campaign).await;
    let run = after.iter().find(|r| r.run_id == late.run_id).unwrap();
    assert_eq!((&run.state, &run.message), (&late.state, &late.message));
    assert_eq!(after.iter().filter(|r| r.state == "failed").count(), 1);

    // numpy on a board whose preset targets cuda is recorded as a failed run with the reason.
    let gpu_caps = pb::Capabilities {
        cuda_available: true,
        gpu_name: "NVIDIA Test".into(),
        ..cpu_caps(&["numpy", "pytorch"])
    };
    let gpu_id = uuid::Uuid::new_v4().to_string();
    let gpu = agent_client_as(&url, &gpu_id)
        .await
        .register(pb::RegisterRequest {
            instance: String::new(),
            agent_id: gpu_id.clone(),
            hostname: "gpu".into(),
            labels: [("role".to_string(), "gpu".to_string())].into(),
            preset: Some("auto".into()),
            capabilities: Some(gpu_caps),
            agent_version: "t".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gpu.matched_preset, "auto");
    let out = fleetctl(&url, &["agents", "--json"]);
    let agents: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(agents.as_array().unwrap().len(), 3);
    let out = fleetctl(&url, &["agents"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("HOSTNAME") && table.contains("NVIDIA Test"),
        "{table}"
    );
}

#[tokio::test]
async fn refused_combinations_are_failed_runs_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let presets = write_presets(dir.path());
    std::fs::write(
        presets.join("test-gpu.toml"),
        "schema_version = 1\nid = \"test-gpu\"\nhardware_name = \"Test GPU\"\ndevice = \"cuda\"\n\
         architecture = \"x86_64\"\nplatform = \"datacenter-gpu\"\ndefault_framework = \"pytorch\"\n\
         notes = \"t\"\n[match]\ngpu_name = [\"Test GPU\"]\n[peaks]\nfp32 = 1000.0\n",
    )
    .unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &["--presets", presets.to_str().unwrap()]);
    let url = coord.url();
    let caps = pb::Capabilities {
        cuda_available: true,
        gpu_name: "Test GPU 80GB".into(),
        ..cpu_caps(&["numpy", "pytorch"])
    };
    register_new(&url, "gpu-box", &[], caps).await;
    let campaign = start_campaign(&url, &["--all", "--framework", "numpy"]);
    let runs = runs_of(&url, &campaign).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].preset_id.as_str(), runs[0].device.as_str()),
        ("test-gpu", "cuda")
    );
    assert_eq!(runs[0].state, "failed");
    assert!(
        runs[0]
            .message
            .contains("'numpy' cannot run on a cuda device"),
        "{}",
        runs[0].message
    );
    let campaign = start_campaign(&url, &["--preset", "test-gpu"]);
    let runs = runs_of(&url, &campaign).await;
    assert_eq!(
        (runs[0].framework.as_str(), runs[0].state.as_str()),
        ("pytorch", "queued")
    );
}

#[tokio::test]
async fn offline_agents_get_their_run_on_return_until_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let (mut client, late) = register_new(&url, "late", &[], cpu_caps(&["numpy"])).await;
    let (_never_client, never) = register_new(&url, "never", &[], cpu_caps(&["numpy"])).await;
    let campaign = start_campaign(&url, &["--all", "--deadline", "3", "--concurrency", "1"]);
    let runs = runs_of(&url, &campaign).await;
    let (_stream, plan) = subscribe_plan(&mut client, &late).await;
    let run = runs.iter().find(|r| r.agent_id == late).unwrap();
    assert_eq!(plan.run_id, run.run_id);
    // The scheduler pass that started the late agent's run left the offline one queued
    // (its deadline has not passed).
    let runs = runs_of(&url, &campaign).await;
    let waiting = runs.iter().find(|r| r.agent_id == never).unwrap();
    assert_eq!(waiting.state, "queued", "offline agents wait: {runs:?}");
    let stored = client
        .upload_result(pb::UploadRequest {
            agent_id: late.clone(),
            run_id: plan.run_id.clone(),
            result_packed: Default::default(),
            result_json: sample_result(
                &plan.run_id,
                fleetcal_proto::Framework::Numpy,
                fleetcal_proto::DeviceKind::Cpu,
            )
            .to_json()
            .into_bytes()
            .into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stored;
    assert!(stored);
    let done = eventually(Duration::from_secs(10), || async {
        runs_of(&url, &campaign)
            .await
            .iter()
            .any(|r| r.agent_id == never && r.state == "agent_offline")
    })
    .await;
    assert!(
        done,
        "the never-connected agent's run became agent_offline after the deadline"
    );
    let out = fleetctl(&url, &["campaign", "status", &campaign, "--json"]);
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["run_counts"]["succeeded"], 1);
    assert_eq!(c["run_counts"]["agent_offline"], 1);
    assert_eq!(c["finished"], true);
}

// Multi-threaded: the client's connection task must keep running while this test blocks
// waiting for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_graceful_and_running_runs_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let (mut client, agent) = register_new(&url, "steady", &[], cpu_caps(&["numpy"])).await;
    let campaign = start_campaign(&url, &["--all", "--timeout", "600"]);
    let (mut stream, plan) = subscribe_plan(&mut client, &agent).await;

    // SIGTERM with a directive stream open: the stream ends and the process exits 0.
    let started = std::time::Instant::now();
    let status = coord
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit within 10 s:\n{}", coord.log_text()));
    assert!(
        started.elapsed() < serve::SHUTDOWN_GRACE,
        "the open stream was closed at once, not after the grace period"
    );
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        coord.log_text()
    );
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
    assert!(
        matches!(end, Ok(Ok(None)) | Ok(Err(_))),
        "stream ended: {end:?}"
    );

    // Same database, new process (new port): the run is still running and is re-sent.
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let mut client = agent_client_as(&coord.url(), &agent).await;
    let (_stream, again) = subscribe_plan(&mut client, &agent).await;
    assert_eq!(again.run_id, plan.run_id);
    assert_eq!(again.campaign_id, campaign);
    let runs = runs_of(&coord.url(), &campaign).await;
    assert_eq!(runs[0].state, "running");
}

/// A call that never completes: an UploadResult whose request message never arrives (the
/// client's request stream stays open), so the server's handler waits for it.
async fn call_in_flight(url: &str) -> tokio::task::JoinHandle<Result<(), tonic::Status>> {
    let channel = admin_channel(url).await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    tokio::spawn(async move {
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/fleetcal.v1.AgentService/UploadResult",
        );
        let codec = tonic_prost::ProstCodec::<pb::UploadRequest, pb::UploadResponse>::default();
        let never = tokio_stream::pending::<pb::UploadRequest>();
        grpc.client_streaming(tonic::Request::new(never), path, codec)
            .await
            .map(|_| ())
    })
}

// Multi-threaded: the clients' connection tasks must run while the test waits for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_turns_every_service_not_serving_and_enforces_the_grace() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let dir = tempfile::tempdir().unwrap();
    let mut coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let channel = admin_channel(&url).await;
    let mut watches = Vec::new();
    for service in ["", "fleetcal.v1.AgentService", "fleetcal.v1.AdminService"] {
        let mut stream = HealthClient::new(channel.clone())
            .watch(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap().status;
        assert_eq!(first, ServingStatus::Serving as i32, "'{service}' at start");
        watches.push((service, stream));
    }
    let stuck = call_in_flight(&url).await;

    let started = std::time::Instant::now();
    let status = coord
        .terminate(serve::SHUTDOWN_GRACE + Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit within the grace:\n{}", coord.log_text()));
    let took = started.elapsed();
    assert!(status.success(), "exit {status:?}\n{}", coord.log_text());
    assert!(
        took < serve::SHUTDOWN_GRACE + Duration::from_secs(4),
        "a call that never completes is dropped after the grace, took {took:?}"
    );
    let log = coord.log_text();
    assert!(
        log.contains("calls still in flight after the 5s shutdown grace"),
        "{log}"
    );
    for (service, mut stream) in watches {
        let mut seen = Vec::new();
        while let Ok(Ok(Some(m))) =
            tokio::time::timeout(Duration::from_secs(5), stream.message()).await
        {
            seen.push(m.status);
        }
        assert!(
            seen.contains(&(ServingStatus::NotServing as i32)),
            "'{service}' turned NOT_SERVING at shutdown: {seen:?}"
        );
    }
    let outcome = tokio::time::timeout(Duration::from_secs(5), stuck)
        .await
        .expect("the stuck call ended with the process")
        .unwrap();
    assert!(outcome.is_err(), "the dropped call failed: {outcome:?}");
}

#[tokio::test]
async fn fleetctl_reports_an_unreachable_coordinator_and_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago and has nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = fleetctl(&format!("http://127.0.0.1:{port}"), &["agents"]);
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("127.0.0.1:{port}")));

    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "version = 1\nlisten = \"127.0.0.1:0\"\nbogus = 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(COORDINATOR)
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus") && err.contains("c.toml"), "{err}");

    // A valid config file is used (listen and db come from it).
    let db = dir.path().join("from-config.db");
    std::fs::write(
        &config,
        format!(
            "version = 1\nlisten = \"127.0.0.1:0\"\ndb = \"sqlite://{}\"\ninsecure_plaintext = true\n",
            db.display()
        ),
    )
    .unwrap();
    let coord =
        CoordinatorProcess::spawn(dir.path(), &["serve", "--config", config.to_str().unwrap()]);
    assert!(coord.addr.starts_with("127.0.0.1:"));
    let out = fleetctl(&coord.url(), &["agents", "--json"]);
    assert!(out.status.success());
    assert!(db.exists());
}

/// Sends a heartbeat for `agent_id` every 300 ms until aborted.
fn keep_beating(url: &str, agent_id: &str) -> tokio::task::JoinHandle<()> {
    let (url, agent_id) = (url.to_string(), agent_id.to_string());
    tokio::spawn(async move {
        let mut client = agent_client_as(&url, &agent_id).await;
        loop {
            let _ = client
                .heartbeat(pb::HeartbeatRequest {
                    agent_id: agent_id.clone(),
                })
                .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_needs_heartbeats_and_a_half_open_stream_gets_no_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(
        dir.path(),
        &["--heartbeat-interval-s", "1", "--offline-after-s", "2"],
    );
    let url = coord.url();
    let (mut client, a) = register_new(&url, "a", &[], cpu_caps(&["numpy"])).await;
    let (mut client_b, b) = register_new(&url, "b", &[], cpu_caps(&["numpy"])).await;
    let online = |id: String| {
        let url = url.clone();
        async move {
            admin_client(&url)
                .await
                .list_agents(pb::ListAgentsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .agents
                .into_iter()
                .find(|x| x.agent_id == id)
                .unwrap()
                .online
        }
    };
    let beat_a = keep_beating(&url, &a);
    let _beat_b = keep_beating(&url, &b);

    // Concurrency 1: a (first in plan order) runs, b is told to stay idle meanwhile.
    let first = start_campaign(&url, &["--all", "--concurrency", "1"]);
    let (mut sa, first_a) = subscribe(&mut client, &a).await;
    let plan_a = match plan_of(&first_a) {
        Some(p) => p.clone(),
        None => next_plan(&mut sa).await,
    };
    let (mut sb, first_b) = subscribe(&mut client_b, &b).await;
    assert!(plan_of(&first_b).is_none(), "b waits: {first_b:?}");
    let runs = runs_of(&url, &first).await;
    let running: Vec<_> = runs.iter().filter(|r| r.state == "running").collect();
    assert_eq!(running.len(), 1, "concurrency 1: {runs:?}");
    assert_eq!(running[0].run_id, plan_a.run_id);
    assert_eq!(running[0].agent_id, a);

    // a finishes: b's run starts; b finishes too.
    for (agent, run, stream, own) in [
        (&a, plan_a.run_id.clone(), None, &mut client),
        (&b, String::new(), Some(&mut sb), &mut client_b),
    ] {
        let run = match stream {
            Some(s) => next_plan(s).await.run_id,
            None => run,
        };
        let json = sample_result(
            &run,
            fleetcal_proto::Framework::Numpy,
            fleetcal_proto::DeviceKind::Cpu,
        )
        .to_json()
        .into_bytes();
        own.upload_result(pb::UploadRequest {
            agent_id: agent.clone(),
            run_id: run,
            result_packed: Default::default(),
            result_json: json.into(),
        })
        .await
        .unwrap();
    }

    // a's heartbeats stop while its stream stays open (a half-open connection): within the
    // offline window it shows offline and the coordinator ends its stream.
    assert!(online(a.clone()).await);
    beat_a.abort();
    let went_offline = eventually(Duration::from_secs(10), || {
        let f = online(a.clone());
        async move { !f.await }
    })
    .await;
    assert!(
        went_offline,
        "a silent agent goes offline although its stream is open"
    );
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), sa.message()).await {
            Ok(Ok(Some(_))) => continue, // directives sent before the stream was closed
            other => break other,
        }
    };
    assert!(
        matches!(ended, Ok(Ok(None)) | Ok(Err(_))),
        "the coordinator closed the silent agent's stream: {ended:?}"
    );
    assert!(
        coord
            .log_text()
            .contains("not heard from within the offline window"),
        "{}",
        coord.log_text()
    );
    assert!(online(b.clone()).await, "b keeps beating and stays online");

    // A campaign over both: b (live) gets its plan; in that same dispatch pass a's run stays
    // queued, its stream being gone.
    let second = start_campaign(&url, &["--all"]);
    let plan_b = next_plan(&mut sb).await;
    let runs = runs_of(&url, &second).await;
    let run_of = |id: &str| runs.iter().find(|r| r.agent_id == id).unwrap().clone();
    assert_eq!(run_of(&b).run_id, plan_b.run_id);
    assert_eq!(
        run_of(&a).state,
        "queued",
        "no run starts on a silent agent: {runs:?}"
    );

    // A heartbeat alone makes a online, but runs need a stream: a subscribes and gets it.
    client
        .heartbeat(pb::HeartbeatRequest {
            agent_id: a.clone(),
        })
        .await
        .unwrap();
    assert!(online(a.clone()).await, "a heartbeat counts as contact");
    let (mut sa, first_a) = subscribe(&mut client, &a).await;
    let plan = match plan_of(&first_a) {
        Some(p) => p.clone(),
        None => next_plan(&mut sa).await,
    };
    assert_eq!(plan.run_id, run_of(&a).run_id);
}
