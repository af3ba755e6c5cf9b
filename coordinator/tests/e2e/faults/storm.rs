//! The reconnect storm: [`AGENTS`] simulated agents (tasks of this test over real gRPC with
//! mutual TLS, each on its own connection with a certificate for its own id, as real agents
//! are) hold their directive streams and runs on a coordinator that is then `kill -9`ed. Each retries until the restarted coordinator answers, so all of them
//! reconnect the moment it listens: register, subscribe, receive their run's plan again and
//! upload its result. The coordinator's resident memory is read before the kill (every agent
//! connected with a run) and after the storm (every agent connected again, every result
//! stored).

use std::time::{Duration, Instant};

use fleetcal_proto::pb;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use fleetcal_proto::{DeviceKind, Framework};
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use super::Site;
use crate::fleet::common::ctl_json;
use crate::support::{cpu_caps, fleet_pki, is_tls, sample_result};

/// How many simulated agents storm the coordinator.
pub const AGENTS: usize = 2000;
/// Simulated agents sharing one HTTP/2 connection on plain text (mutual TLS: one each).
const PER_PLAIN_CONNECTION: usize = 20;
/// The open files the test process and the coordinator need, each, over mutual TLS: one
/// connection per agent and some to spare.
pub const OPEN_FILES: u64 = 2 * AGENTS as u64 + 512;
/// The most one phase may take before the test fails saying which.
const PHASE_LIMIT: Duration = Duration::from_secs(180);

/// What the storm measured.
pub struct Report {
    /// The campaign over every simulated agent.
    pub campaign: String,
    /// The coordinator's VmRSS before the kill, MiB.
    pub rss_before_mib: f64,
    /// The restarted coordinator's VmRSS after the storm, MiB.
    pub rss_after_mib: f64,
    /// From the restart to the last result stored.
    pub took: Duration,
    /// The restarted coordinator, still running.
    pub coordinator: crate::support::CoordinatorProcess,
}

/// A process's VmRSS in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Lazily connecting channels, one per agent of `ids` (they reconnect by themselves after
/// the coordinator is back). Over mutual TLS each is its own connection presenting a
/// certificate for that agent's id (issued once, then reused); on plain text
/// [`PER_PLAIN_CONNECTION`] agents share one.
fn channels(url: &str, ids: &[String]) -> Vec<Channel> {
    let lazy = |endpoint: Endpoint| {
        endpoint
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy()
    };
    if is_tls(url) {
        return ids
            .iter()
            .map(|id| {
                let tls = fleet_pki().agent_files(url, id);
                lazy(fleetcal_proto::dial::endpoint(url, Some(&tls)).expect("a TLS endpoint"))
            })
            .collect();
    }
    let shared: Vec<Channel> = (0..ids.len().div_ceil(PER_PLAIN_CONNECTION))
        .map(|_| lazy(Endpoint::from_shared(url.to_string()).unwrap()))
        .collect();
    (0..ids.len())
        .map(|i| shared[i / PER_PLAIN_CONNECTION].clone())
        .collect()
}

/// The next plan on a directive stream.
async fn plan(stream: &mut tonic::Streaming<pb::Directive>) -> pb::Plan {
    loop {
        let d = stream
            .message()
            .await
            .expect("directive stream ok")
            .expect("directive stream open");
        if let Some(pb::directive::Action::Plan(p)) = d.action {
            return p;
        }
    }
}

/// One simulated agent's life: register and subscribe (retrying every 100–300 ms while the
/// coordinator cannot be reached); with `upload`, wait for its plan and upload its result,
/// else wait for the first directive. The open stream is returned so the agent stays
/// connected.
async fn agent(
    channel: Channel,
    id: String,
    i: usize,
    upload: bool,
) -> tonic::Streaming<pb::Directive> {
    let mut client =
        AgentServiceClient::new(channel).max_decoding_message_size(pb::MAX_MESSAGE_BYTES);
    let mut stream = loop {
        let attempt = async {
            client
                .register(pb::RegisterRequest {
                    instance: String::new(),
                    agent_id: id.clone(),
                    hostname: format!("storm-{i:05}"),
                    labels: Default::default(),
                    preset: None,
                    capabilities: Some(cpu_caps(&["numpy"])),
                    agent_version: "storm".into(),
                })
                .await?;
            client
                .subscribe(pb::SubscribeRequest {
                    instance: String::new(),
                    agent_id: id.clone(),
                })
                .await
        };
        match attempt.await {
            Ok(s) => break s.into_inner(),
            Err(_) => {
                let pause = 100 + u64::try_from(i % 200).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
    };
    if !upload {
        stream
            .message()
            .await
            .expect("directive stream ok")
            .expect("directive stream open");
        return stream;
    }
    let plan = plan(&mut stream).await;
    {
        let json = sample_result(&plan.run_id, Framework::Numpy, DeviceKind::Cpu).to_json();
        client
            .upload_result(pb::UploadRequest {
                agent_id: id,
                run_id: plan.run_id,
                result_packed: Default::default(),
                result_json: json.into_bytes().into(),
            })
            .await
            .expect("upload");
    }
    stream
}

/// Runs every agent at once; their streams once each has done its part.
async fn fleet(
    channels: &[Channel],
    ids: &[String],
    upload: bool,
    phase: &str,
) -> Vec<tonic::Streaming<pb::Directive>> {
    let mut tasks = JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let channel = channels[i].clone();
        tasks.spawn(agent(channel, id.clone(), i, upload));
    }
    let mut streams = Vec::with_capacity(ids.len());
    let all = async {
        while let Some(s) = tasks.join_next().await {
            streams.push(s.expect("simulated agent"));
        }
    };
    tokio::time::timeout(PHASE_LIMIT, all)
        .await
        .unwrap_or_else(|_| panic!("{phase}: not done within {PHASE_LIMIT:?}"));
    streams
}

/// The storm on `site`'s coordinator.
pub async fn run(site: &Site) -> Report {
    let coordinator = site.start();
    let url = site.url();
    let ids: Vec<String> = (0..AGENTS)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();

    // Every agent registered; one campaign gives each a run, which it receives.
    let before = channels(&url, &ids);
    let mut running = fleet(&before, &ids, false, "registering").await;
    let u = url.clone();
    let campaign = tokio::task::spawn_blocking(move || {
        ctl_json(
            &u,
            &["campaign", "start", "--all", "--json", "--timeout", "600"],
        )["id"]
            .as_str()
            .expect("campaign id")
            .to_string()
    })
    .await
    .unwrap();
    let receive = async {
        for s in &mut running {
            plan(s).await;
        }
    };
    tokio::time::timeout(PHASE_LIMIT, receive)
        .await
        .expect("every plan received");
    let rss_before_mib = rss_mib(coordinator.pid());

    // kill -9 with every stream open and every run running; the agents come back at once.
    drop(coordinator);
    drop(running);
    drop(before);
    let after = channels(&url, &ids);
    let storm = {
        let (after, ids) = (after.clone(), ids.clone());
        tokio::spawn(async move { fleet(&after, &ids, true, "the storm").await })
    };
    let coordinator = site.start();
    let started = Instant::now();
    let streams = storm.await.expect("the storm");
    let took = started.elapsed();
    let rss_after_mib = rss_mib(coordinator.pid());
    drop(streams);
    Report {
        campaign,
        rss_before_mib,
        rss_after_mib,
        took,
        coordinator,
    }
}
