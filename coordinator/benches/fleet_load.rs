//! Fleet load: how many agents one coordinator holds, and at what memory.
//!
//! `cargo bench -p fleetcal-coordinator --bench fleet_load` starts the real coordinator binary
//! on 127.0.0.1:0 with a temporary SQLite database, then over real gRPC on loopback registers
//! N simulated agents, opens N directive streams (one per agent, 100 per HTTP/2 connection to
//! stay under the server's per-connection stream limit and the process's file limit), starts
//! one campaign over all of them and waits until every agent has received its plan. It prints
//! the coordinator's resident memory (VmRSS, and the peak VmHWM) after each phase.
//!
//! `FLEET_LOAD_AGENTS` (default `1000,5000`; `50` under `cargo test --benches`) lists the
//! fleet sizes; each size gets a fresh coordinator and at most `FLEET_LOAD_LIMIT_S` seconds
//! (default 180); the coordinator is killed when a size ends, however it ends.

use std::time::{Duration, Instant};

use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_client::AdminServiceClient;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use tonic::transport::{Channel, Endpoint};

#[path = "support/process.rs"]
mod process;

const PER_CONNECTION: usize = 100;

/// A coordinator on a fresh SQLite database (kept while the returned directory lives).
fn start() -> (process::Coordinator, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("load.db").display());
    (process::start(&db, 1000), dir)
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

fn report(phase: &str, n: usize, pid: u32, took: Duration) {
    let (rss, hwm) = memory(pid);
    println!("{n:>6} agents  {phase:<28} {took:>9.2?}  rss {rss:>7.1} MiB  peak {hwm:>7.1} MiB");
}

async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

async fn fleet(n: usize) {
    let (coord, _dir) = start();
    let pid = coord.child.id();
    report("started", n, pid, Duration::ZERO);
    let mut channels = Vec::new();
    for _ in 0..n.div_ceil(PER_CONNECTION) {
        channels.push(channel(&coord.url).await);
    }
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();

    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let mut client = AgentServiceClient::new(channels[i / PER_CONNECTION].clone());
        let id = id.clone();
        tasks.spawn(async move {
            client
                .register(pb::RegisterRequest {
                    agent_id: id,
                    hostname: format!("sim-{i:05}"),
                    labels: [("fleet".to_string(), "load".to_string())].into(),
                    preset: None,
                    capabilities: Some(pb::Capabilities {
                        arch: "aarch64".into(),
                        cpu_model: "Simulated".into(),
                        cpu_count: 6,
                        engines: vec!["numpy".into()],
                        ..pb::Capabilities::default()
                    }),
                    agent_version: "load".into(),
                })
                .await
                .expect("register")
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    report("registered", n, pid, t.elapsed());

    let t = Instant::now();
    let mut opened = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let mut client = AgentServiceClient::new(channels[i / PER_CONNECTION].clone());
        let id = id.clone();
        opened.spawn(async move {
            let mut stream = client
                .subscribe(pb::SubscribeRequest { agent_id: id })
                .await
                .expect("subscribe")
                .into_inner();
            stream
                .message()
                .await
                .expect("first directive")
                .expect("open");
            stream
        });
    }
    let mut streams = Vec::with_capacity(n);
    while let Some(s) = opened.join_next().await {
        streams.push(s.expect("task"));
    }
    report("streams open (idle sent)", n, pid, t.elapsed());

    let t = Instant::now();
    let mut admin = AdminServiceClient::new(channels[0].clone())
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES);
    let agents = fleetcal_coordinator::fleetctl::client::all_agents(&mut admin)
        .await
        .expect("list agents");
    assert_eq!(agents.len(), n);
    assert!(agents.iter().all(|a| a.online));
    report("ListAgents (all online)", n, pid, t.elapsed());

    let t = Instant::now();
    let campaign = AdminServiceClient::new(channels[0].clone())
        .start_campaign(pb::StartCampaignRequest {
            selector: Some(pb::Selector {
                kind: Some(pb::selector::Kind::All(true)),
            }),
            quick: true,
            ..pb::StartCampaignRequest::default()
        })
        .await
        .expect("start campaign")
        .into_inner();
    assert_eq!(campaign.total_runs as usize, n);
    let mut waiting = tokio::task::JoinSet::new();
    for mut s in streams {
        waiting.spawn(async move {
            loop {
                let d = s.message().await.expect("directive").expect("open");
                if matches!(d.action, Some(pb::directive::Action::Plan(_))) {
                    return s;
                }
            }
        });
    }
    let mut held = Vec::with_capacity(n);
    while let Some(s) = waiting.join_next().await {
        held.push(s.expect("task"));
    }
    report("campaign: every plan received", n, pid, t.elapsed());
    drop(held);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list
    }
    // `cargo bench` passes --bench; `cargo test --benches` does not: then a 50-agent smoke run.
    let default = if std::env::args().any(|a| a == "--bench") {
        "1000,5000"
    } else {
        "50"
    };
    let sizes: Vec<usize> = std::env::var("FLEET_LOAD_AGENTS")
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let limit = Duration::from_secs(
        std::env::var("FLEET_LOAD_LIMIT_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180),
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for n in sizes {
        match runtime.block_on(async { tokio::time::timeout(limit, fleet(n)).await }) {
            Ok(()) => {}
            Err(_) => println!("{n:>6} agents  gave up after {limit:?}"),
        }
    }
}
