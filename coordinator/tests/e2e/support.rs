//! Shared helpers of the coordinator's integration tests: spawn the real coordinator binary
//! on `127.0.0.1:0` and read its address, real gRPC clients, fleetctl, and valid results.
//! Everything started here is killed on drop.
//!
//! A coordinator started here serves mutual TLS by default, with the run's fleet PKI
//! ([`fleet_pki`]: made once per test binary run by the real `fleetctl pki init`) and its CA
//! key, so agents enroll: [`CoordinatorProcess::url`] is then `https://`, [`fleetctl`] and
//! [`admin_client`] present the admin certificate, and the fleet's real agents
//! (`fleet::agent::Agent`) enroll with a join token made by the real `fleetctl token create`.
//! A test that serves plain text passes `--insecure-plaintext` (see [`PLAIN`]); one that
//! brings its own certificates (`--tls-cert`) or a `--config` gets exactly its flags.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fleetcal_proto::dial::ClientTlsFiles;
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

/// The flag a test passes to serve plain text on purpose (the harness's default is mutual
/// TLS): `CoordinatorProcess::start(dir, &[PLAIN])`.
pub const PLAIN: &str = "--insecure-plaintext";

/// The run's fleet PKI: a `fleetctl pki init` directory (`ca.{pem,key}`, `server.{pem,key}`
/// for `localhost,127.0.0.1`, `admin.{pem,key}`), shared by every coordinator the harness
/// starts in this test binary run. Tests that need a CA of their own make one (`tls::Pki`).
pub struct FleetPki {
    dir: PathBuf,
}

/// The run's fleet PKI, made on first use by the real `fleetctl pki init` (about 40 ms) in
/// the target's temporary dir; those of earlier runs whose process is gone are removed.
pub fn fleet_pki() -> &'static FleetPki {
    static PKI: OnceLock<FleetPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix("fleet-pki-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = root.join(format!("fleet-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(FLEETCTL)
            .args(["pki", "init"])
            .arg(&dir)
            .args(["--server-names", "localhost,127.0.0.1"])
            .output()
            .expect("running fleetctl pki init");
        assert!(
            out.status.success(),
            "fleetctl pki init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        FleetPki { dir }
    })
}

impl FleetPki {
    /// A file of the PKI directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `serve` flags: its certificate, the client CA (mutual TLS) and the CA key (enrollment).
    pub fn server_flags(&self) -> Vec<String> {
        [
            ("--tls-cert", "server.pem"),
            ("--tls-key", "server.key"),
            ("--client-ca", "ca.pem"),
            ("--ca-key", "ca.key"),
        ]
        .iter()
        .flat_map(|(flag, file)| [flag.to_string(), self.file(file).display().to_string()])
        .collect()
    }

    /// fleetctl's TLS variables for the admin certificate (`FLEETCAL_CA_CERT`, `_CERT`, `_KEY`).
    pub fn admin_env(&self) -> [(&'static str, PathBuf); 3] {
        [
            ("FLEETCAL_CA_CERT", self.file("ca.pem")),
            ("FLEETCAL_CERT", self.file("admin.pem")),
            ("FLEETCAL_KEY", self.file("admin.key")),
        ]
    }

    /// The admin certificate's client files for `url`.
    pub fn admin_files(&self, url: &str) -> ClientTlsFiles {
        self.client_files(url, "admin")
    }

    /// An agent certificate for `agent_id` (issued now, as `fleetctl pki issue --agent`
    /// does, unless it exists) and its client files for `url`.
    pub fn agent_files(&self, url: &str, agent_id: &str) -> ClientTlsFiles {
        let stem = format!("agent-{agent_id}");
        if !self.file(&format!("{stem}.key")).is_file() {
            let role = fleetcal_proto::role::Role::Agent(agent_id.to_string());
            let now = chrono::Utc::now().timestamp();
            fleetcal_coordinator::pki::issue(&self.dir, &role, None, now, 86_400)
                .expect("issuing an agent certificate");
        }
        self.client_files(url, &stem)
    }

    fn client_files(&self, url: &str, stem: &str) -> ClientTlsFiles {
        ClientTlsFiles::for_url(
            url,
            Some(self.file("ca.pem")),
            Some(self.file(&format!("{stem}.pem"))),
            Some(self.file(&format!("{stem}.key"))),
            None,
        )
        .expect("client TLS files")
        .expect("an https:// url")
    }

    /// A one-use join token for `url`'s coordinator, made by the real `fleetctl token create`.
    pub fn join_token(&self, url: &str) -> String {
        let out = fleetctl(url, &["token", "create", "--ttl", "1h"]);
        assert!(
            out.status.success(),
            "fleetctl token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// Whether fleetctl or an agent given `url` (one or several, comma-separated) dials TLS.
pub fn is_tls(url: &str) -> bool {
    url.split(',').any(|u| u.trim().starts_with("https://"))
}

/// Gives a fleetctl command the admin certificate of the run's fleet PKI when it dials TLS
/// and brings no certificate of its own (`--ca-cert`, `--cert`, `--key`).
pub fn with_admin_tls<'c>(cmd: &'c mut Command, url: &str, args: &[&str]) -> &'c mut Command {
    let own = args
        .iter()
        .any(|a| ["--ca-cert", "--cert", "--key"].contains(a));
    if is_tls(url) && !own {
        cmd.envs(fleet_pki().admin_env());
    }
    cmd
}

/// A running `fleetcal-coordinator serve`, killed on drop.
pub struct CoordinatorProcess {
    child: Child,
    /// Whether it serves TLS (the harness's PKI or the test's own `--tls-cert`).
    tls: bool,
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

    /// Starts the coordinator binary with these arguments — plus, for a `serve` without
    /// `--tls-cert`, `--config` or `--insecure-plaintext` ([`PLAIN`]), mutual TLS with the
    /// run's fleet PKI and its CA key ([`FleetPki::server_flags`]).
    pub fn spawn(dir: &Path, args: &[&str]) -> CoordinatorProcess {
        let log = dir.join(format!("coordinator-{}.log", unique()));
        let serve = args.first() == Some(&"serve");
        let harness_tls = serve
            && !args.contains(&"--tls-cert")
            && !args.contains(&"--config")
            && !args.contains(&PLAIN);
        let tls = harness_tls || (serve && args.contains(&"--tls-cert"));
        let pki_flags = if harness_tls {
            fleet_pki().server_flags()
        } else {
            Vec::new()
        };
        let mut child = Command::new(COORDINATOR)
            .args(args)
            .args(&pki_flags)
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
            tls,
            log,
        }
    }

    /// `https://ADDR` when it serves TLS (the default), else `http://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Whether it serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
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

/// A channel to `url`, presenting `tls`'s certificate when given.
async fn channel(url: &str, tls: Option<&ClientTlsFiles>) -> Channel {
    fleetcal_coordinator::fleetctl::client::connect(url, tls)
        .await
        .expect("connecting to the coordinator")
}

/// A channel to `url` for raw tonic clients (health, reflection, hand-made calls): over TLS
/// it presents the admin certificate.
pub async fn admin_channel(url: &str) -> Channel {
    let tls = is_tls(url).then(|| fleet_pki().admin_files(url));
    channel(url, tls.as_ref()).await
}

/// A real AgentService client. Over TLS it presents the admin certificate, which mutual TLS
/// lets make no agent-service call: a simulated agent there uses [`agent_client_as`].
pub async fn agent_client(url: &str) -> AgentServiceClient<Channel> {
    let tls = is_tls(url).then(|| fleet_pki().admin_files(url));
    AgentServiceClient::new(channel(url, tls.as_ref()).await)
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
}

/// A real AgentService client acting as agent `agent_id`: over TLS it presents an agent
/// certificate of the run's fleet PKI for that id (plain text: as [`agent_client`]).
pub async fn agent_client_as(url: &str, agent_id: &str) -> AgentServiceClient<Channel> {
    let tls = is_tls(url).then(|| fleet_pki().agent_files(url, agent_id));
    AgentServiceClient::new(channel(url, tls.as_ref()).await)
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
}

/// A real AdminService client (over TLS with the admin certificate).
pub async fn admin_client(url: &str) -> AdminServiceClient<Channel> {
    let tls = is_tls(url).then(|| fleet_pki().admin_files(url));
    AdminServiceClient::new(channel(url, tls.as_ref()).await)
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
    register_as(client, &agent_id, hostname, labels, caps).await;
    agent_id
}

/// A simulated agent with a fresh id, registered through its own client ([`agent_client_as`]:
/// over mutual TLS it presents that id's certificate); returns the client and the id.
pub async fn register_new(
    url: &str,
    hostname: &str,
    labels: &[(&str, &str)],
    caps: pb::Capabilities,
) -> (AgentServiceClient<Channel>, String) {
    let agent_id = uuid::Uuid::new_v4().to_string();
    let mut client = agent_client_as(url, &agent_id).await;
    register_as(&mut client, &agent_id, hostname, labels, caps).await;
    (client, agent_id)
}

/// Registers `agent_id` through `client`, panicking on a refusal.
async fn register_as(
    client: &mut AgentServiceClient<Channel>,
    agent_id: &str,
    hostname: &str,
    labels: &[(&str, &str)],
    caps: pb::Capabilities,
) {
    client
        .register(pb::RegisterRequest {
            instance: String::new(),
            agent_id: agent_id.into(),
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
}

/// A one-run quick campaign small enough for a debug build on two cores (gemm fp32 at 16,
/// one trial), printed as JSON: what `fleetctl campaign start --all` is given after `--all`.
pub const TINY_CAMPAIGN: [&str; 12] = [
    "--quick",
    "--sizes",
    "16",
    "--stream-mib",
    "1",
    "--precisions",
    "fp32",
    "--operations",
    "gemm",
    "--trials",
    "1",
    "--json",
];

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

/// Runs fleetctl against a coordinator (over TLS with the admin certificate, unless `args`
/// bring their own: see [`with_admin_tls`]).
pub fn fleetctl(url: &str, args: &[&str]) -> Output {
    with_admin_tls(&mut Command::new(FLEETCTL), url, args)
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
