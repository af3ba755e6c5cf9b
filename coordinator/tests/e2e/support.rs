//! Shared helpers of the coordinator's integration tests: spawn the real coordinator binary
//! on `127.0.0.1:0` and read its address, real gRPC clients, fleetctl, and valid results.
//! Everything started here is killed on drop.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_client::AdminServiceClient;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use fleetcal_proto::result::{
    EngineInfo, Flags, Host, LatencyStats, Metadata, PlatformCheck, Rate, Record, Settings, Status,
    Summary,
};
use fleetcal_proto::{CalibrationResult, DeviceKind, Framework, Operation, Precision, Preset};
use tonic::transport::Channel;

/// The coordinator binary under test.
pub const COORDINATOR: &str = env!("CARGO_BIN_EXE_fleetcal-coordinator");
/// fleetctl under test.
pub const FLEETCTL: &str = env!("CARGO_BIN_EXE_fleetctl");

/// A running `fleetcal-coordinator serve`, killed on drop.
pub struct CoordinatorProcess {
    child: Child,
    /// The bound address (`127.0.0.1:PORT`).
    pub addr: String,
    /// With `--http`: the web side's bound address (the second stdout line).
    pub http: Option<String>,
    /// Its stderr log file.
    pub log: PathBuf,
}

impl CoordinatorProcess {
    /// Starts the coordinator with a SQLite database in `dir` (unless `extra` has `--db`),
    /// a 100 ms tick, and `extra` flags; waits for its `listening on` line.
    pub fn start(dir: &Path, extra: &[&str]) -> CoordinatorProcess {
        let db = format!("sqlite://{}", dir.join("coordinator.db").display());
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--tick-ms", "100"];
        if !extra.contains(&"--db") {
            args.extend(["--db", db.as_str()]);
        }
        args.extend(extra);
        Self::spawn(dir, &args)
    }

    /// Starts the coordinator binary with these arguments — plus `--insecure-plaintext` for a
    /// `serve` without `--tls-cert` or `--config` (plain text must be asked for explicitly).
    pub fn spawn(dir: &Path, args: &[&str]) -> CoordinatorProcess {
        let log = dir.join(format!("coordinator-{}.log", unique()));
        let plain = args.first() == Some(&"serve")
            && !args.contains(&"--tls-cert")
            && !args.contains(&"--config");
        let mut child = Command::new(COORDINATOR)
            .args(args)
            .args(plain.then_some("--insecure-plaintext"))
            .env_remove("FLEETCAL_INSECURE_PLAINTEXT")
            .env_remove("FLEETCAL_CONFIG")
            .env_remove("FLEETCAL_DB")
            .env_remove("FLEETCAL_LISTEN")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawning fleetcal-coordinator");
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("reading the first stdout line");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "coordinator did not print 'listening on': {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let http = args.contains(&"--http").then(|| {
            let mut line = String::new();
            stdout
                .read_line(&mut line)
                .expect("reading the second stdout line");
            match line.trim().strip_prefix("http listening on ") {
                Some(addr) => addr.to_string(),
                None => panic!("coordinator did not print 'http listening on': {line:?}"),
            }
        });
        CoordinatorProcess {
            addr: addr.to_string(),
            http,
            child,
            log,
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The stderr log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A real AgentService client.
pub async fn agent_client(url: &str) -> AgentServiceClient<Channel> {
    AgentServiceClient::connect(url.to_string())
        .await
        .expect("connecting to the coordinator")
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
}

/// A real AdminService client.
pub async fn admin_client(url: &str) -> AdminServiceClient<Channel> {
    AdminServiceClient::connect(url.to_string())
        .await
        .expect("connecting to the coordinator")
}

/// Capabilities of a simulated CPU board.
pub fn cpu_caps(engines: &[&str]) -> pb::Capabilities {
    pb::Capabilities {
        arch: "x86_64".into(),
        cpu_vendor: "GenuineIntel".into(),
        cpu_model: "Test CPU 9000".into(),
        cpu_count: 8,
        memory_gb: 16.0,
        simd: vec!["avx2".into()],
        os: "Linux".into(),
        kernel: "6.1".into(),
        engines: engines.iter().map(|s| s.to_string()).collect(),
        ..pb::Capabilities::default()
    }
}

/// Registers a simulated agent with a fresh id; returns the id.
pub async fn register(
    client: &mut AgentServiceClient<Channel>,
    hostname: &str,
    labels: &[(&str, &str)],
    caps: pb::Capabilities,
) -> String {
    let agent_id = uuid::Uuid::new_v4().to_string();
    client
        .register(pb::RegisterRequest {
            instance: String::new(),
            agent_id: agent_id.clone(),
            hostname: hostname.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
            preset: None,
            capabilities: Some(caps),
            agent_version: "test".into(),
        })
        .await
        .expect("register");
    agent_id
}

/// Opens an agent's directive stream and returns it with the first directive.
pub async fn subscribe(
    client: &mut AgentServiceClient<Channel>,
    agent_id: &str,
) -> (tonic::Streaming<pb::Directive>, pb::Directive) {
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            instance: String::new(),
            agent_id: agent_id.into(),
        })
        .await
        .expect("subscribe")
        .into_inner();
    let first = next_directive(&mut stream).await;
    (stream, first)
}

/// ReportProgress for `agent_id`'s run; whether the coordinator still wants the run.
pub async fn report(
    client: &mut AgentServiceClient<Channel>,
    agent_id: &str,
    run_id: &str,
    state: pb::RunState,
    fraction: f64,
    message: &str,
) -> bool {
    client
        .report_progress(pb::Progress {
            agent_id: agent_id.into(),
            run_id: run_id.into(),
            state: state as i32,
            fraction,
            message: message.into(),
        })
        .await
        .expect("report progress")
        .into_inner()
        .still_wanted
}

/// The next directive, within 10 s.
pub async fn next_directive(stream: &mut tonic::Streaming<pb::Directive>) -> pb::Directive {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a directive within 10 s")
        .expect("stream ok")
        .expect("stream open")
}

/// Waits (up to 10 s) for a Plan on the stream, skipping Idle directives.
pub async fn next_plan(stream: &mut tonic::Streaming<pb::Directive>) -> pb::Plan {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no plan within 10 s"
        );
        if let Some(pb::directive::Action::Plan(p)) = next_directive(stream).await.action {
            return p;
        }
    }
}

/// The plan in a directive, if it is one.
pub fn plan_of(d: &pb::Directive) -> Option<&pb::Plan> {
    match &d.action {
        Some(pb::directive::Action::Plan(p)) => Some(p),
        _ => None,
    }
}

/// `fleetctl results export` of a campaign with no stored result succeeds and writes nothing
/// (not even the directory `dir`).
pub fn assert_nothing_exported(url: &str, campaign: &str, dir: &Path) {
    let out = fleetctl(
        url,
        &[
            "results",
            "export",
            "--campaign",
            campaign,
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.exists(), "no results, no files");
}

/// Runs fleetctl against a coordinator.
pub fn fleetctl(url: &str, args: &[&str]) -> Output {
    Command::new(FLEETCTL)
        .arg("--coordinator")
        .arg(url)
        .args(args)
        .output()
        .expect("running fleetctl")
}

/// A preset for test results.
pub fn test_preset(device: DeviceKind) -> Preset {
    let (id, fw) = match device {
        DeviceKind::Cpu => ("test-cpu", "numpy"),
        DeviceKind::Cuda => ("test-gpu", "pytorch"),
    };
    let text = format!(
        "schema_version = 1\nid = \"{id}\"\nhardware_name = \"Test {id}\"\ndevice = \"{device}\"\n\
         architecture = \"x86_64\"\nplatform = \"desktop\"\ndefault_framework = \"{fw}\"\n\
         bandwidth_gbps = 50.0\nnotes = \"test\"\n[match]\ncpu_model = [\"Test CPU 9000\"]\n\
         [peaks]\nfp32 = 100.0\nfp64 = 50.0\n"
    );
    Preset::from_toml(&text, Path::new("<test>")).expect("test preset")
}

/// Writes the CPU test preset into `dir/test-cpu.toml` (it matches [`cpu_caps`]).
pub fn write_presets(dir: &Path) -> PathBuf {
    let presets = dir.join("presets");
    std::fs::create_dir_all(&presets).unwrap();
    let p = test_preset(DeviceKind::Cpu);
    let text = format!(
        "schema_version = 1\nid = \"{}\"\nhardware_name = \"{}\"\ndevice = \"cpu\"\n\
         architecture = \"x86_64\"\nplatform = \"desktop\"\ndefault_framework = \"numpy\"\n\
         bandwidth_gbps = 50.0\nnotes = \"test\"\n[match]\ncpu_model = [\"Test CPU 9000\"]\n\
         [peaks]\nfp32 = 100.0\nfp64 = 50.0\n",
        p.id, p.hardware_name
    );
    std::fs::write(presets.join("test-cpu.toml"), text).unwrap();
    presets
}

fn measured(operation: Operation, precision: Precision, size: u64, gops: f64) -> Record {
    let rate = Rate {
        best: gops,
        median: gops * 0.9,
        mean: gops * 0.85,
    };
    Record {
        operation,
        precision,
        size,
        array_mib: operation.is_stream().then_some(1.0),
        status: Status::Measured,
        reason: None,
        flops: operation.flops(size),
        bytes: 1024.0,
        arithmetic_intensity: 1.0,
        trials: 3,
        latency_ms: Some(LatencyStats {
            best: 1.0,
            median: 1.1,
            mean: 1.2,
            std: 0.1,
            max: 1.5,
            cv: 0.08,
        }),
        gops: (!operation.is_stream()).then_some(rate),
        bandwidth_gbps: Some(rate),
        efficiency: Some(gops / 100.0),
        flags: Flags {
            above_theoretical: false,
            noisy: true,
            in_cache: operation.is_stream(),
            bandwidth_eligible: false,
            throttled: false,
            clock_spread: false,
        },
        sampling: None,
        telemetry: None,
    }
}

/// The current time, RFC 3339 with microseconds, as the agent writes it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// A valid result document for a run.
pub fn sample_result(run_id: &str, framework: Framework, device: DeviceKind) -> CalibrationResult {
    let preset = test_preset(device);
    CalibrationResult {
        schema_version: 1,
        metadata: Metadata {
            run_id: run_id.into(),
            hardware_name: preset.hardware_name.clone(),
            framework,
            device_type: device,
            requested_device: device,
            actual_device: "CPU".into(),
            fallback: None,
            // Now: the coordinator refuses times far from its clock.
            started_at: now_rfc3339(),
            finished_at: now_rfc3339(),
            tool_version: "test".into(),
            host: Host {
                hostname: "test-host".into(),
                architecture: "x86_64".into(),
                cpu_count: 8,
                ..Host::default()
            },
            engine: EngineInfo {
                name: framework.as_str().into(),
                library: "test".into(),
                threads: 8,
                ..EngineInfo::default()
            },
            preset,
            settings: Settings {
                quick: true,
                operations: vec![Operation::Gemm, Operation::StreamTriad],
                warmup_runs: 1,
                measurement_runs: 3,
                min_gflops: 1.0,
                timeout_s: 10.0,
                noisy_cv: 0.05,
                above_theoretical: 1.1,
                max_trials: None,
                ci_target_pct: None,
                max_duration_s: None,
                clock_spread_limit: None,
            },
            platform_check: PlatformCheck::default(),
            environment: None,
        },
        records: vec![
            measured(Operation::Gemm, Precision::Fp32, 32, 42.0),
            measured(Operation::StreamTriad, Precision::Fp64, 131072, 12.5),
            Record {
                operation: Operation::Gemm,
                precision: Precision::Fp64,
                size: 64,
                array_mib: None,
                status: Status::Skipped,
                reason: Some("below min_gflops at a smaller size".into()),
                flops: Operation::Gemm.flops(64),
                bytes: 0.0,
                arithmetic_intensity: 0.0,
                trials: 0,
                latency_ms: None,
                gops: None,
                bandwidth_gbps: None,
                efficiency: None,
                flags: Flags::default(),
                sampling: None,
                telemetry: None,
            },
        ],
        summary: Summary {
            bandwidth_source: "none".into(),
            ..Summary::default()
        },
    }
}

/// Polls `check` every 50 ms until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Opens an agent's directive stream and waits for its Plan (the first directive or a later one).
pub async fn subscribe_plan(
    client: &mut AgentServiceClient<Channel>,
    agent_id: &str,
) -> (tonic::Streaming<pb::Directive>, pb::Plan) {
    let (mut stream, first) = subscribe(client, agent_id).await;
    let plan = match plan_of(&first) {
        Some(p) => p.clone(),
        None => next_plan(&mut stream).await,
    };
    (stream, plan)
}
