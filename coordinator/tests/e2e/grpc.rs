//! The real coordinator binary over real gRPC: error paths, idempotent uploads, export,
//! oversized messages, health and reflection.

use std::time::Duration;

use fleetcal_proto::origin::OriginProfile;
use fleetcal_proto::pb;
use fleetcal_proto::{DeviceKind, Framework};
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn unknown_agents_and_bad_registrations_get_clear_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let stranger = uuid::Uuid::new_v4().to_string();
    // A certificate for the unknown id, so the calls reach the use case.
    let mut agent = agent_client_as(&coord.url(), &stranger).await;

    let err = agent
        .subscribe(pb::SubscribeRequest {
            instance: String::new(),
            agent_id: stranger.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .contains(&format!("unknown agent '{stranger}'")),
        "{}",
        err.message()
    );

    let err = agent
        .upload_result(pb::UploadRequest {
            agent_id: stranger.clone(),
            run_id: "r".into(),
            result_packed: Default::default(),
            result_json: b"{}".to_vec().into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());

    let err = agent
        .register(pb::RegisterRequest {
            instance: String::new(),
            agent_id: "not-a-uuid".into(),
            hostname: "h".into(),
            ..pb::RegisterRequest::default()
        })
        .await
        .unwrap_err();
    // No certificate names a non-UUID id, so the role check refuses it first (naming it).
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    assert!(err.message().contains("'not-a-uuid'"), "{}", err.message());
}

/// Uploads `json` for a run; the raw status on error.
async fn upload(
    client: &mut pb::agent_service_client::AgentServiceClient<tonic::transport::Channel>,
    agent: &str,
    run: &str,
    json: Vec<u8>,
) -> Result<bool, tonic::Status> {
    client
        .upload_result(pb::UploadRequest {
            agent_id: agent.into(),
            run_id: run.into(),
            result_packed: Default::default(),
            result_json: json.into(),
        })
        .await
        .map(|r| r.into_inner().stored)
}

async fn run_state(url: &str, run_id: &str) -> String {
    let runs = admin_client(url)
        .await
        .list_runs(pb::ListRunsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .runs;
    runs.into_iter()
        .find(|r| r.run_id == run_id)
        .map(|r| r.state)
        .unwrap_or_default()
}

#[tokio::test]
async fn uploads_are_validated_idempotent_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let presets = write_presets(dir.path());
    let coord = CoordinatorProcess::start(dir.path(), &["--presets", presets.to_str().unwrap()]);
    let url = coord.url();
    let (mut client, a) =
        register_new(&url, "host-a", &[("site", "lab")], cpu_caps(&["numpy"])).await;
    let (mut client_b, b) =
        register_new(&url, "host-b", &[("site", "lab")], cpu_caps(&["numpy"])).await;
    let (mut sa, first) = subscribe(&mut client, &a).await;
    assert!(plan_of(&first).is_none(), "idle before any campaign");
    let (mut sb, _) = subscribe(&mut client_b, &b).await;

    let out = fleetctl(
        &url,
        &[
            "campaign",
            "start",
            "--select",
            "site=lab",
            "--quick",
            "--sizes",
            "16,32",
            "--stream-mib",
            "1",
            "--precisions",
            "fp32,fp64",
            "--operations",
            "gemm,stream_triad",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let campaign = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["total_runs"], 2);

    let pa = next_plan(&mut sa).await;
    let pb_ = next_plan(&mut sb).await;
    assert_eq!(
        (pa.framework.as_str(), pa.device.as_str()),
        ("numpy", "cpu")
    );
    assert_eq!(pa.preset_id, "test-cpu", "matched by [match] cpu_model");
    assert_eq!(pa.blas_sizes, vec![16, 32]);
    assert_eq!(pa.stream_mib, vec![1]);
    assert_eq!(pa.precisions, vec!["fp32", "fp64"]);
    assert_eq!(pa.operations, vec!["gemm", "stream_triad"]);
    assert!(pa.quick && pa.campaign_id == campaign);
    assert_eq!(
        (pa.warmup, pa.trials),
        (None, 0),
        "not asked: the engine's defaults"
    );

    let good = |run: &str| {
        sample_result(run, Framework::Numpy, DeviceKind::Cpu)
            .to_json()
            .into_bytes()
    };
    // A run that does not exist.
    let err = upload(&mut client, &a, "no-such-run", good("no-such-run"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("'no-such-run'"), "{}", err.message());
    // Another agent's run (a's own certificate and id: the use case refuses it).
    let err = upload(&mut client, &a, &pb_.run_id, good(&pb_.run_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains(&pb_.run_id), "{}", err.message());
    // Malformed documents.
    let err = upload(
        &mut client,
        &a,
        &pa.run_id,
        b"{\"schema_version\": 1".to_vec(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains(&pa.run_id), "{}", err.message());
    let mut wrong = sample_result(&pa.run_id, Framework::Pytorch, DeviceKind::Cpu);
    let err = upload(&mut client, &a, &pa.run_id, wrong.to_json().into_bytes())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("metadata.framework"),
        "{}",
        err.message()
    );
    wrong = sample_result("some-other-run", Framework::Numpy, DeviceKind::Cpu);
    let err = upload(&mut client, &a, &pa.run_id, wrong.to_json().into_bytes())
        .await
        .unwrap_err();
    assert!(
        err.message().contains("metadata.run_id"),
        "{}",
        err.message()
    );
    let mut bad_record = sample_result(&pa.run_id, Framework::Numpy, DeviceKind::Cpu);
    bad_record.records[0].trials = 0;
    let err = upload(
        &mut client,
        &a,
        &pa.run_id,
        bad_record.to_json().into_bytes(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("records[0]"), "{}", err.message());
    // Nothing of that was stored: both runs still running, no results.
    assert_eq!(run_state(&url, &pa.run_id).await, "running");
    assert_eq!(run_state(&url, &pb_.run_id).await, "running");
    assert_nothing_exported(&url, &campaign, &dir.path().join("none"));

    // Progress, then the real upload; a second upload is a no-op.
    assert!(
        report(
            &mut client,
            &a,
            &pa.run_id,
            pb::RunState::Running,
            0.5,
            "gemm fp32"
        )
        .await
    );
    // The document as uploaded (its times are "now", so it is built once).
    let uploaded = good(&pa.run_id);
    assert!(upload(&mut client, &a, &pa.run_id, uploaded.clone())
        .await
        .unwrap());
    assert!(!upload(&mut client, &a, &pa.run_id, good(&pa.run_id))
        .await
        .unwrap());
    assert_eq!(run_state(&url, &pa.run_id).await, "succeeded");
    // The agent's desired state goes back to idle.
    assert!(plan_of(&next_directive(&mut sa).await).is_none());
    assert!(upload(&mut client_b, &b, &pb_.run_id, good(&pb_.run_id))
        .await
        .unwrap());

    let out = fleetctl(&url, &["campaign", "status", &campaign, "--wait"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("succeeded 2") && text.contains("(finished)"),
        "{text}"
    );

    let out = fleetctl(&url, &["runs", "--campaign", &campaign, "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert!(runs
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["state"] == "succeeded"));

    // Both boards share a hardware slug: the host name prefixes the file names.
    let export = dir.path().join("origin");
    let out = fleetctl(
        &url,
        &[
            "results",
            "export",
            "--campaign",
            &campaign,
            "--dir",
            export.to_str().unwrap(),
            "--format",
            "origin",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "host_a_test_test_cpu_numpy.json",
            "host_b_test_test_cpu_numpy.json"
        ]
    );
    let text = std::fs::read_to_string(export.join(&names[0])).unwrap();
    OriginProfile::from_json(&text, "export").expect("a valid origin profile");

    let export = dir.path().join("fleetcal");
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
    assert!(out.status.success());
    let text = std::fs::read_to_string(export.join("host_a_test_test_cpu_numpy.json")).unwrap();
    assert_eq!(text.into_bytes(), uploaded, "exported as uploaded");
}

#[tokio::test]
async fn oversized_messages_get_a_clear_status_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let (mut client, a) = register_new(&coord.url(), "big", &[], cpu_caps(&["numpy"])).await;
    let err = upload(
        &mut client,
        &a,
        "r",
        vec![b' '; pb::MAX_MESSAGE_BYTES + 1024],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());
    assert!(
        err.message().contains("too large")
            && err.message().contains(&pb::MAX_MESSAGE_BYTES.to_string()),
        "{}",
        err.message()
    );
    // Just under the limit reaches the handler (and fails validation, not transport).
    let err = upload(&mut client, &a, "r", vec![b' '; 1024 * 1024])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
}

#[tokio::test]
async fn health_and_reflection_respond() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    // Raw tonic clients on a channel presenting the admin certificate.
    let channel = admin_channel(&url).await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "fleetcal.v1.AgentService", "fleetcal.v1.AdminService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service '{service}'");
    }
    let err = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "no.Such".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["fleetcal.v1.AgentService", "fleetcal.v1.AdminService"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
}

/// A stock client of `grpc.reflection.v1alpha`: Python's grpcio-reflection, which is what
/// grpcurl before v1, Evans and Postman speak too.
#[test]
fn a_stock_v1alpha_reflection_client_lists_and_resolves_the_services() {
    let dir = tempfile::tempdir().unwrap();
    // Plain text on purpose: the stock Python client dials an insecure channel.
    let coord = CoordinatorProcess::start(dir.path(), &[PLAIN]);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/reflection_v1alpha.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&coord.addr)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the v1alpha client failed (scripts/test installs grpcio-reflection):\n{stdout}\n{stderr}"
    );
    for want in [
        "service fleetcal.v1.AgentService",
        "service fleetcal.v1.AdminService",
        "method fleetcal.v1.AgentService.UploadResult",
        "method fleetcal.v1.AdminService.StartCampaign",
    ] {
        assert!(
            stdout.lines().any(|l| l == want),
            "{want} not in:\n{stdout}"
        );
    }
}
