//! Fleet load: how many agents one coordinator holds, how fast it pushes a campaign's plans
//! and ingests the results when every board reports at once, how fast a fleet comes back
//! after a restart, and at what memory and CPU; on SQLite and on PostgreSQL.
//!
//! `cargo bench -p fleetcal-coordinator --bench fleet_load` starts the real coordinator binary
//! on 127.0.0.1:0 (a fresh SQLite file, or a throw-away PostgreSQL cluster started as the
//! storage suite starts one) and simulates N agents in this process over real gRPC on
//! loopback. Each simulated agent behaves as the real one does: it registers, opens its
//! directive stream, sends a heartbeat every `heartbeat_interval_s` (the coordinator's
//! answer), and on a plan reports `RUNNING` and uploads a result; when its stream ends it
//! backs off as the agent does (0.5 s doubling to 30 s, equal jitter) and registers and
//! subscribes again. By default each agent has its own HTTP/2 connection, as real agents do
//! (`FLEET_LOAD_PER_CONNECTION` shares one among several), so the bench first raises its
//! open-file limit (and so the coordinator's, which inherits it) to the hard limit with
//! `prlimit`, and says so.
//!
//! Phases, each measured:
//! 1. **Hold**: every agent connected (its stream open and its first directive received),
//!    then `ListAgents` must list all of them online.
//! 2. **Campaign** over all of them: plan push latency from the `StartCampaign` call to each
//!    agent receiving its plan (p50, p99, max); once every plan is out, every agent uploads its
//!    result at once ("every board reports at once"), at most `FLEET_LOAD_INFLIGHT` (default
//!    256) uploads in flight from this process to bound its memory; results ingested per
//!    second of that phase; time from the campaign's start until the last result is stored
//!    (then `GetCampaign` must say it finished). Each result is the real quick result
//!    `testdata/quick-result.json` (266 KB of JSON, 164 records) in one of 64 variants (rates
//!    scaled by 0.9–1.1), with the agent's run id, hostname and times written in.
//! 3. **Reconnect storm**: the coordinator is stopped (SIGTERM: its streams close) and a new
//!    one started on the same address and database; time from the new one listening until
//!    every agent has its stream open again, and the failed calls meanwhile.
//!
//! Coordinator RSS (VmRSS, and the peak VmHWM) and CPU (utime + stime from `/proc`, as a
//! percentage of one core over the phase) are read after each phase; on PostgreSQL also the
//! database server's CPU (the postmaster and its backends); during the push also this
//! process's (the simulated fleet's). A Markdown table of every line is
//! printed at the end.
//!
//! `FLEET_LOAD_AGENTS` (default `100,1000,10000`; `20` under `cargo test --benches`),
//! `FLEET_LOAD_BACKENDS` (default `sqlite,postgres`; `sqlite` under `cargo test --benches`;
//! PostgreSQL needs its server binaries and is skipped with a line otherwise),
//! `FLEET_LOAD_PER_CONNECTION` (default 1), `FLEET_LOAD_INFLIGHT` (default 256),
//! `FLEET_LOAD_LIMIT_S` (default 600: each line gets at most that long, and its coordinator
//! is killed when the line ends, however it ends), `FLEET_LOAD_UPLOAD` (default `packed`, as
//! the agent uploads: each agent packs its result, `fleetcal_proto::document::encode_upload`,
//! before the gate opens, as a board has it packed when it uploads; `json`: the JSON text,
//! made when the upload's turn comes, as an agent older than the packed form sends it).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_client::AdminServiceClient;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use fleetcal_proto::CalibrationResult;
use tokio::sync::{watch, Semaphore};
use tonic::transport::{Channel, Endpoint};

#[path = "../tests/e2e/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "support/process.rs"]
mod process;
#[path = "support/vary.rs"]
mod vary;

const TEMPLATE: &str = include_str!("../testdata/quick-result.json");
/// Written into the template's variants, then replaced per upload (same lengths).
const RUN_HOLE: &str = "00000000-0000-4000-8000-000000000000";
const HOST_HOLE: &str = "sim-host-hole-00000";
const TIME_HOLE: &str = "2000-01-01T00:00:00.000Z";
const VARIANTS: usize = 64;

/// A phase's bound: a phase that does not finish within it fails the line.
const PHASE_LIMIT: Duration = Duration::from_secs(300);

/// The template's variants, serialized with holes for the per-upload fields.
struct Bodies {
    variants: Vec<Vec<u8>>,
    /// Byte offsets of each hole in each variant: (run ids, hostnames, times).
    holes: Vec<(Vec<usize>, Vec<usize>, Vec<usize>)>,
}

impl Bodies {
    fn new() -> Bodies {
        let template = CalibrationResult::from_json(TEMPLATE, "template").expect("template");
        let mut variants = Vec::new();
        let mut holes = Vec::new();
        for v in 0..VARIANTS {
            let f = 0.9 + 0.2 * v as f64 / VARIANTS as f64;
            let mut r = template.clone();
            r.metadata.run_id = RUN_HOLE.into();
            r.metadata.host.hostname = HOST_HOLE.into();
            r.metadata.started_at = TIME_HOLE.into();
            r.metadata.finished_at = TIME_HOLE.into();
            vary::scale_rates(&mut r, f, v as u64);
            let json = r.to_json();
            let at = |hole: &str| json.match_indices(hole).map(|(i, _)| i).collect();
            holes.push((at(RUN_HOLE), at(HOST_HOLE), at(TIME_HOLE)));
            variants.push(json.into_bytes());
        }
        Bodies { variants, holes }
    }

    /// Agent `i`'s result of `run_id`, stamped now.
    fn body(&self, i: usize, run_id: &str) -> Vec<u8> {
        let v = i % VARIANTS;
        let mut out = self.variants[v].clone();
        let host = format!("sim-host-hole-{i:05}");
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (runs, hosts, times) = &self.holes[v];
        for (offsets, value, hole) in [
            (runs, run_id, RUN_HOLE),
            (hosts, host.as_str(), HOST_HOLE),
            (times, now.as_str(), TIME_HOLE),
        ] {
            assert_eq!(value.len(), hole.len(), "{value:?} does not fit {hole:?}");
            for &o in offsets {
                out[o..o + hole.len()].copy_from_slice(value.as_bytes());
            }
        }
        out
    }
}

/// Failed calls, by kind.
#[derive(Default)]
struct Errors {
    register: AtomicU64,
    subscribe: AtomicU64,
    heartbeat: AtomicU64,
    progress: AtomicU64,
    upload: AtomicU64,
}

impl Errors {
    fn total(&self) -> u64 {
        [
            &self.register,
            &self.subscribe,
            &self.heartbeat,
            &self.progress,
            &self.upload,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    fn describe(&self) -> String {
        format!(
            "register {}, subscribe {}, heartbeat {}, progress {}, upload {}",
            self.register.load(Ordering::Relaxed),
            self.subscribe.load(Ordering::Relaxed),
            self.heartbeat.load(Ordering::Relaxed),
            self.progress.load(Ordering::Relaxed),
            self.upload.load(Ordering::Relaxed)
        )
    }
}

/// What the simulated agents share with the conductor.
struct Fleet {
    channels: Vec<Channel>,
    per_connection: usize,
    ids: Vec<String>,
    bodies: Bodies,
    /// Uploads go as JSON (`FLEET_LOAD_UPLOAD=json`), not packed.
    json_uploads: bool,
    /// Streams open now (first directive received).
    connected: AtomicUsize,
    /// When the campaign was started (plan latencies count from it).
    campaign_t0: Mutex<Option<Instant>>,
    /// Plan push latencies, one per run received.
    plans: Mutex<Vec<Duration>>,
    /// Opens the uploads.
    gate: watch::Receiver<bool>,
    inflight: Semaphore,
    uploaded: AtomicUsize,
    upload_failed: AtomicUsize,
    /// When the last upload was answered.
    last_upload: Mutex<Option<Instant>>,
    errors: Errors,
}

impl Fleet {
    fn client(&self, i: usize) -> AgentServiceClient<Channel> {
        AgentServiceClient::new(self.channels[i / self.per_connection].clone())
            .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(pb::MAX_MESSAGE_BYTES)
    }
}

/// The agent's reconnect backoff (`agent::daemon::link::BackoffPolicy`'s defaults: 0.5 s
/// doubling to 30 s, half fixed and half jittered).
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(Duration::from_secs(30));
    base / 2 + base.mul_f64(0.5 * jitter())
}

fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn registration(i: usize, id: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        instance: String::new(),
        agent_id: id.to_string(),
        hostname: format!("sim-{i:05}"),
        labels: [
            ("fleet".to_string(), "load".to_string()),
            ("rack".to_string(), format!("r{}", i % 40)),
        ]
        .into(),
        preset: None,
        capabilities: Some(pb::Capabilities {
            arch: "aarch64".into(),
            cpu_model: "Simulated".into(),
            cpu_count: 6,
            engines: vec!["numpy".into()],
            ..pb::Capabilities::default()
        }),
        agent_version: "load".into(),
    }
}

/// One simulated agent, forever (the conductor aborts it).
async fn agent(fleet: Arc<Fleet>, i: usize) {
    let id = fleet.ids[i].clone();
    let mut failures = 0u32;
    let mut last_run = String::new();
    loop {
        let mut client = fleet.client(i);
        let heartbeat_s = match client.register(registration(i, &id)).await {
            Ok(r) => r.into_inner().heartbeat_interval_s.max(1),
            Err(_) => {
                fleet.errors.register.fetch_add(1, Ordering::Relaxed);
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        let opened = async {
            let mut stream = client
                .subscribe(pb::SubscribeRequest {
                    instance: String::new(),
                    agent_id: id.clone(),
                })
                .await?
                .into_inner();
            let first = stream.message().await?;
            Ok::<_, tonic::Status>((stream, first))
        };
        let (mut stream, mut directive) = match opened.await {
            Ok((stream, Some(first))) => (stream, Some(first)),
            _ => {
                fleet.errors.subscribe.fetch_add(1, Ordering::Relaxed);
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        failures = 0;
        fleet.connected.fetch_add(1, Ordering::SeqCst);
        let period = Duration::from_secs(heartbeat_s.into());
        let mut beat = tokio::time::interval_at(
            tokio::time::Instant::now() + period.mul_f64(jitter()),
            period,
        );
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(d) = directive.take() {
                if let Some(pb::directive::Action::Plan(p)) = d.action {
                    if p.run_id != last_run {
                        last_run.clone_from(&p.run_id);
                        let t0 = *fleet.campaign_t0.lock().expect("lock");
                        if let Some(t0) = t0 {
                            fleet.plans.lock().expect("lock").push(t0.elapsed());
                        }
                        tokio::spawn(run(fleet.clone(), i, p.run_id));
                    }
                }
            }
            tokio::select! {
                m = stream.message() => match m {
                    Ok(Some(d)) => directive = Some(d),
                    _ => break,
                },
                _ = beat.tick() => {
                    let beat = client.heartbeat(pb::HeartbeatRequest { agent_id: id.clone() });
                    if beat.await.is_err() {
                        fleet.errors.heartbeat.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        fleet.connected.fetch_sub(1, Ordering::SeqCst);
        tokio::time::sleep(backoff(1)).await;
    }
}

/// A run: report it running, wait for the gate (every board finishes at once), upload.
async fn run(fleet: Arc<Fleet>, i: usize, run_id: String) {
    let mut client = fleet.client(i);
    let agent_id = fleet.ids[i].clone();
    let running = client
        .report_progress(pb::Progress {
            agent_id: agent_id.clone(),
            run_id: run_id.clone(),
            state: pb::RunState::Running.into(),
            fraction: 0.0,
            message: "calibrating".into(),
        })
        .await;
    if running.is_err() {
        fleet.errors.progress.fetch_add(1, Ordering::Relaxed);
    }
    // The packed form is small (~9 KB): every agent holds its own while it waits.
    let packed = (!fleet.json_uploads).then(|| {
        let json = String::from_utf8(fleet.bodies.body(i, &run_id)).expect("UTF-8");
        fleetcal_proto::document::encode_upload(&json).expect("the template packs")
    });
    let mut gate = fleet.gate.clone();
    if gate.wait_for(|open| *open).await.is_err() {
        return;
    }
    let Ok(_permit) = fleet.inflight.acquire().await else {
        return;
    };
    let request = match packed {
        Some(packed) => pb::UploadRequest {
            agent_id,
            run_id,
            result_packed: packed.into(),
            result_json: Default::default(),
        },
        None => pb::UploadRequest {
            agent_id,
            result_packed: Default::default(),
            result_json: fleet.bodies.body(i, &run_id).into(),
            run_id,
        },
    };
    let stored = client.upload_result(request).await;
    match stored {
        Ok(r) if r.get_ref().stored => {
            fleet.uploaded.fetch_add(1, Ordering::SeqCst);
        }
        _ => {
            fleet.errors.upload.fetch_add(1, Ordering::Relaxed);
            fleet.upload_failed.fetch_add(1, Ordering::SeqCst);
        }
    }
    *fleet.last_upload.lock().expect("lock") = Some(Instant::now());
}

/// Waits until `done()` holds, polling; panics after [`PHASE_LIMIT`] naming `what`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "{what}: not done within {PHASE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// CPU time of a process (utime + stime) in seconds, from `/proc/PID/stat`.
fn cpu_s(pid: u32, tick: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    let ticks = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / tick
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The processes of the PostgreSQL cluster whose socket directory is `dir`: its postmaster
/// (found by its command line) and the postmaster's children.
fn pg_pids(dir: &str) -> Vec<u32> {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let Some(postmaster) = pids.iter().copied().find(|p| {
        std::fs::read(format!("/proc/{p}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(dir))
            .unwrap_or(false)
    }) else {
        return Vec::new();
    };
    let mut out = vec![postmaster];
    out.extend(
        pids.iter()
            .copied()
            .filter(|&p| parent_of(p) == Some(postmaster)),
    );
    out
}

/// (VmRSS, VmHWM) in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds of the coordinator and of the database server, and a wall clock.
struct Meter {
    tick: f64,
    pg_dir: Option<String>,
}

#[derive(Clone, Copy)]
struct Reading {
    at: Instant,
    coordinator: f64,
    database: f64,
    /// This process: the simulated fleet.
    fleet: f64,
}

impl Meter {
    fn read(&self, pid: u32) -> Reading {
        let database = self.pg_dir.as_deref().map_or(0.0, |d| {
            pg_pids(d).iter().map(|&p| cpu_s(p, self.tick)).sum()
        });
        Reading {
            at: Instant::now(),
            coordinator: cpu_s(pid, self.tick),
            fleet: cpu_s(std::process::id(), self.tick),
            database,
        }
    }
}

/// Percent of one core used between two readings: (coordinator, database).
fn percent(a: Reading, b: Reading) -> (f64, f64) {
    let wall = (b.at - a.at).as_secs_f64().max(1e-9);
    (
        100.0 * (b.coordinator - a.coordinator) / wall,
        100.0 * (b.database - a.database) / wall,
    )
}

/// One measured line of the table.
#[derive(Default)]
struct Line {
    backend: &'static str,
    agents: usize,
    held: usize,
    hold: Duration,
    push_p50: Duration,
    push_p99: Duration,
    push_max: Duration,
    uploaded: usize,
    upload_failed: usize,
    results_per_s: f64,
    campaign: Duration,
    storm: Duration,
    storm_errors: u64,
    rss_held: f64,
    rss_peak: f64,
    rss_after_storm: f64,
    cpu_hold: (f64, f64),
    cpu_push: (f64, f64),
    /// The simulated fleet's (this process's) CPU during the push, % of one core.
    fleet_cpu_push: f64,
    cpu_ingest: (f64, f64),
    cpu_storm: (f64, f64),
    errors: String,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn channels(url: &str, count: usize) -> Vec<Channel> {
    (0..count)
        .map(|_| {
            Endpoint::from_shared(url.to_string())
                .expect("url")
                .connect_timeout(Duration::from_secs(10))
                .connect_lazy()
        })
        .collect()
}

/// One fleet size on one database.
async fn line(backend: &'static str, db: &str, pg_dir: Option<String>, n: usize) -> Line {
    let per_connection: usize = env_or("FLEET_LOAD_PER_CONNECTION", 1).max(1);
    let inflight: usize = env_or("FLEET_LOAD_INFLIGHT", 256).max(1);
    let meter = Meter {
        tick: clock_tick(),
        pg_dir,
    };
    let mut coord = process::start(db, 1000);
    let listen = coord.url.trim_start_matches("http://").to_string();
    let (open_gate, gate) = watch::channel(false);
    let fleet = Arc::new(Fleet {
        channels: channels(&coord.url, n.div_ceil(per_connection)).await,
        per_connection,
        ids: (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect(),
        bodies: Bodies::new(),
        json_uploads: std::env::var("FLEET_LOAD_UPLOAD").as_deref() == Ok("json"),
        connected: AtomicUsize::new(0),
        campaign_t0: Mutex::new(None),
        plans: Mutex::new(Vec::with_capacity(n)),
        gate,
        inflight: Semaphore::new(inflight),
        uploaded: AtomicUsize::new(0),
        upload_failed: AtomicUsize::new(0),
        last_upload: Mutex::new(None),
        errors: Errors::default(),
    });
    let mut out = Line {
        backend,
        agents: n,
        ..Line::default()
    };

    // 1. Hold.
    let r0 = meter.read(coord.child.id());
    let mut agents = tokio::task::JoinSet::new();
    for i in 0..n {
        agents.spawn(agent(fleet.clone(), i));
    }
    until("every agent connected", || {
        fleet.connected.load(Ordering::SeqCst) >= n
    })
    .await;
    let r1 = meter.read(coord.child.id());
    out.hold = r1.at - r0.at;
    out.cpu_hold = percent(r0, r1);
    let mut admin = AdminServiceClient::new(fleet.channels[0].clone())
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES);
    let listed = fleetcal_coordinator::fleetctl::client::all_agents(&mut admin)
        .await
        .expect("list agents");
    out.held = listed.iter().filter(|a| a.online).count();
    out.rss_held = memory(coord.child.id()).0;
    println!(
        "{backend:<10} {n:>6} agents  held {} (listed online) after {:.2?}, rss {:.0} MiB",
        out.held, out.hold, out.rss_held
    );

    // 2. Campaign: push, then every upload at once.
    let r2 = meter.read(coord.child.id());
    *fleet.campaign_t0.lock().expect("lock") = Some(r2.at);
    let campaign = admin
        .start_campaign(pb::StartCampaignRequest {
            selector: Some(pb::Selector {
                kind: Some(pb::selector::Kind::All(true)),
            }),
            quick: true,
            run_timeout_s: 3600,
            ..pb::StartCampaignRequest::default()
        })
        .await
        .expect("start campaign")
        .into_inner();
    let created = r2.at.elapsed();
    assert_eq!(campaign.total_runs as usize, n, "one run per agent");
    until("every plan received", || {
        fleet.plans.lock().expect("lock").len() >= n
    })
    .await;
    let r3 = meter.read(coord.child.id());
    out.cpu_push = percent(r2, r3);
    out.fleet_cpu_push = 100.0 * (r3.fleet - r2.fleet) / (r3.at - r2.at).as_secs_f64().max(1e-9);
    let mut plans = fleet.plans.lock().expect("lock").clone();
    plans.sort();
    out.push_p50 = quantile(&plans, 0.5);
    out.push_p99 = quantile(&plans, 0.99);
    out.push_max = plans.last().copied().unwrap_or_default();
    let _ = open_gate.send(true);
    until("every result uploaded", || {
        fleet.uploaded.load(Ordering::SeqCst) + fleet.upload_failed.load(Ordering::SeqCst) >= n
    })
    .await;
    let r4 = meter.read(coord.child.id());
    let last = fleet.last_upload.lock().expect("lock").unwrap_or(r4.at);
    out.uploaded = fleet.uploaded.load(Ordering::SeqCst);
    out.upload_failed = fleet.upload_failed.load(Ordering::SeqCst);
    out.results_per_s = out.uploaded as f64 / (last - r3.at).as_secs_f64().max(1e-9);
    out.campaign = last - r2.at;
    out.cpu_ingest = percent(r3, r4);
    out.rss_peak = memory(coord.child.id()).1;
    let done = admin
        .get_campaign(pb::GetCampaignRequest {
            id: campaign.id.clone(),
        })
        .await
        .expect("get campaign")
        .into_inner();
    println!(
        "{backend:<10} {n:>6} agents  campaign: created (StartCampaign answered) after {created:.2?}, \
         push p50 {:.2?} p99 {:.2?} max {:.2?} (CPU meanwhile: coordinator {:.0} %, \
         database {:.0} %, simulated fleet {:.0} %); {} stored ({} failed) at {:.0}/s; complete after {:.2?} (finished: {}, {:?})",
        out.push_p50,
        out.push_p99,
        out.push_max,
        out.cpu_push.0,
        out.cpu_push.1,
        out.fleet_cpu_push,
        out.uploaded,
        out.upload_failed,
        out.results_per_s,
        out.campaign,
        done.finished,
        done.run_counts
    );

    // 3. Reconnect storm after a restart on the same address and database.
    let errors_before = fleet.errors.total();
    let stopping = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &coord.child.id().to_string()])
        .status();
    let _ = coord.child.wait();
    until("every stream ended", || {
        fleet.connected.load(Ordering::SeqCst) == 0
    })
    .await;
    let old = std::mem::replace(&mut coord, process::start_at(db, 1000, &listen));
    drop(old);
    let down = stopping.elapsed();
    let r5 = meter.read(coord.child.id());
    let errors_down = fleet.errors.total() - errors_before;
    until("every agent back", || {
        fleet.connected.load(Ordering::SeqCst) >= n
    })
    .await;
    let r6 = meter.read(coord.child.id());
    out.storm = r6.at - r5.at;
    out.cpu_storm = percent(r5, r6);
    out.storm_errors = fleet.errors.total() - errors_before - errors_down;
    out.rss_after_storm = memory(coord.child.id()).0;
    out.errors = fleet.errors.describe();
    println!(
        "{backend:<10} {n:>6} agents  storm: {errors_down} failed calls while it was down \
         ({down:.2?}); all back {:.2?} after the new one listened, {} failed calls meanwhile; \
         rss {:.0} MiB; errors in all: {}",
        out.storm, out.storm_errors, out.rss_after_storm, out.errors
    );
    agents.abort_all();
    while agents.join_next().await.is_some() {}
    drop(coord);
    out
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `getconf CLK_TCK` (the unit of `/proc/PID/stat`'s CPU times), 100 if unknown.
fn clock_tick() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Raises this process's soft open-file limit to its hard limit (the coordinator, a child,
/// inherits it): one connection per simulated agent on each side. Returns (before, after).
fn raise_nofile() -> (String, String) {
    let soft = || {
        std::fs::read_to_string("/proc/self/limits")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .map(|l| {
                l.split_whitespace()
                    .skip(3)
                    .take(2)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let before = soft();
    if let Some(hard) = before.get(1) {
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string()])
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
    }
    let after = soft();
    (before.join("/"), after.join("/"))
}

fn ms(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn table(lines: &[Line]) {
    println!(
        "\n| backend | agents | held | push p50 / p99 | results/s | campaign | storm: all back | \
         RSS held / peak | CPU hold / push / ingest / storm (coordinator) | CPU ingest (database) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for l in lines {
        let db = if l.backend == "PostgreSQL" {
            format!("{:.0} %", l.cpu_ingest.1)
        } else {
            "(in process)".into()
        };
        println!(
            "| {} | {} | {} | {} / {} | {:.0} | {} | {} ({} failed calls) | {:.0} / {:.0} MiB | \
             {:.0} / {:.0} / {:.0} / {:.0} % | {} |",
            l.backend,
            l.agents,
            l.held,
            ms(l.push_p50),
            ms(l.push_p99),
            l.results_per_s,
            ms(l.campaign),
            ms(l.storm),
            l.storm_errors,
            l.rss_held,
            l.rss_peak,
            l.cpu_hold.0,
            l.cpu_push.0,
            l.cpu_ingest.0,
            l.cpu_storm.0,
            db
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list
    }
    // `cargo bench` passes --bench; `cargo test --benches` does not: then a 20-agent smoke run.
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = std::env::var("FLEET_LOAD_AGENTS")
        .unwrap_or_else(|_| if bench { "100,1000,10000" } else { "20" }.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let backends = std::env::var("FLEET_LOAD_BACKENDS")
        .unwrap_or_else(|_| if bench { "sqlite,postgres" } else { "sqlite" }.into());
    println!(
        "uploads: {} (FLEET_LOAD_UPLOAD=json|packed)",
        if std::env::var("FLEET_LOAD_UPLOAD").as_deref() == Ok("json") {
            "the JSON text"
        } else {
            "the packed form, made by each agent before the gate opens"
        }
    );
    let limit = Duration::from_secs(env_or("FLEET_LOAD_LIMIT_S", 600));
    let (before, after) = raise_nofile();
    println!("open files (soft/hard): {before} raised to {after}");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut lines = Vec::new();
    for n in sizes {
        for backend in backends.split(',').map(str::trim) {
            let measured = runtime.block_on(async {
                tokio::time::timeout(limit, async {
                    match backend {
                        "sqlite" => {
                            let dir = tempfile::tempdir().expect("temp dir");
                            let db = format!("sqlite://{}", dir.path().join("load.db").display());
                            Some(line("SQLite", &db, None, n).await)
                        }
                        "postgres" => {
                            let cluster = pg::PgCluster::start().await?;
                            let dir = cluster
                                .url
                                .split("host=")
                                .nth(1)
                                .and_then(|s| s.split('&').next())
                                .map(str::to_string);
                            Some(line("PostgreSQL", &cluster.url, dir, n).await)
                        }
                        other => {
                            println!("unknown backend {other:?} (sqlite, postgres)");
                            None
                        }
                    }
                })
                .await
            });
            match measured {
                Ok(Some(l)) => lines.push(l),
                Ok(None) => {}
                Err(_) => println!("{backend:<10} {n:>6} agents  gave up after {limit:?}"),
            }
        }
    }
    table(&lines);
}
