//! Fleet reports: ingest rate, stored bytes per result and `fleet_rows` latency, on SQLite
//! and PostgreSQL, for B boards × N nights of realistic results.
//!
//! `cargo bench -p fleetcal-coordinator --bench fleet_reports`. For each backend and size:
//! 1. **Seed** B boards × N nights (one scheduled campaign per night) through
//!    `Store::store_result` in process (the bulk: the same transaction an upload runs, without
//!    the gRPC hop and the validation). Each result is the real quick result
//!    `testdata/quick-result.json` (numpy engine, 164 records), varied per board (a board
//!    factor of ±10 %) and per night (±1.5 % noise), by scaling its trials and deriving its
//!    figures again (`support/vary.rs`); every tenth board drops 20 % from the
//!    middle night on (a step), every tenth from the third on loses 0.05 % a night (a creep).
//! 2. **Ingest** a sample through the real upload path: the real coordinator binary on the
//!    same database, `FLEET_REPORTS_UPLOADS` results (default 2000) from up to 500 of the
//!    seeded boards (those without a step or a creep), each with its history of N nights, as
//!    simulated agents over real gRPC on loopback (register, directive stream, a campaign
//!    each round, every board uploads at once a result varied as its nights were, so that
//!    the drift check after each upload reads the board's last 120 days as it would in a
//!    fleet; before session 7 the uploaders were new agents without history, whose checks
//!    read nothing: see docs/coordinator.md); results per second of the
//!    upload phase (validation, parsing, compression, the store transaction), and the CPU
//!    time per result of the coordinator (with the drift checks each upload starts) and of
//!    the bench's client, which do not depend on what else the machine runs. PostgreSQL
//!    runs durable (`fsync=on`); SQLite with `synchronous = FULL`. Each phase has a time
//!    limit and names itself when it stalls. One round of uploads goes first, untimed and
//!    printed apart (a warm-up: a coordinator that has run a night keeps each board's drift
//!    history, a fresh one reads each board's window once); the rate is that of the timed
//!    rounds, with their best and median. Each result goes in the packed form, as an
//!    agent sends it to a coordinator that takes it (`UploadRequest.result_packed`, encoded
//!    before the timed phase as the JSON is, on the board); `FLEET_REPORTS_UPLOAD=json`
//!    sends its JSON instead, as an agent older than the packed form does.
//! 3. **Stored bytes** per result: the compressed document alone, and the database's growth
//!    from empty (tables and indexes: the SQLite file after a checkpoint, PostgreSQL's
//!    `pg_database_size` after `VACUUM ANALYZE`) divided by the results stored.
//! 4. **`fleet_rows`** latency (best of 3) for report-sized queries, then each report's pure
//!    function (`fleet::*`) timed once on the rows it read ([`time_reports`]).
//!
//! `FLEET_REPORTS_SIZES` (default `100x365,1000x365`; `4x7` under `cargo test --benches`),
//! `FLEET_REPORTS_BACKENDS` (default `sqlite,postgres`; PostgreSQL needs its server binaries,
//! as the storage suite does, and is skipped with a line otherwise), `FLEET_REPORTS_KEEP=DIR`
//! (SQLite: keep the seeded database in DIR; when it is there, time only the reports on it,
//! and the upload path too with `FLEET_REPORTS_INGEST=1`, or alone with `=only`; each such
//! run adds its uploads to the kept history), `FLEET_REPORTS_DAY=YYYY-MM-DD` (the day a kept
//! database was seeded: its nights count back from that day's midnight),
//! `FLEETCAL_BENCH_COORDINATOR` (the coordinator binary to measure) and `FLEETCAL_BENCH_LOG`
//! (its log filter, e.g. `sqlx::query=debug`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetcal_coordinator::fleet::{self, FleetQuery, FleetRows, FleetRun};
use fleetcal_coordinator::model::{
    AgentRecord, CampaignRecord, CampaignSpec, Capabilities, FiringTag, FrameworkChoice, Overrides,
    RunRecord, RunState, Selector,
};
use fleetcal_coordinator::store::{PgStore, SqliteStore, Store};
use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_client::AdminServiceClient;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use fleetcal_proto::{CalibrationResult, DeviceKind, Framework};
use tonic::transport::{Channel, Endpoint};

#[path = "../tests/e2e/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "support/process.rs"]
mod process;
#[path = "support/vary.rs"]
mod vary;

const TEMPLATE: &str = include_str!("../testdata/quick-result.json");
const DAY_MS: i64 = 86_400_000;
/// The first of `nights` nights (at 02:00 UTC), so that the last is last night by the
/// coordinator's clock: the reports' windows (and the anomalies' stale days) count back from
/// its now.
fn first_night(nights: usize) -> i64 {
    static MIDNIGHT: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let midnight = *MIDNIGHT.get_or_init(|| {
        // `FLEET_REPORTS_DAY=YYYY-MM-DD`: the day a kept database was seeded, so that a rerun
        // on a later day asks for the same nights.
        if let Ok(day) = std::env::var("FLEET_REPORTS_DAY") {
            let date = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .unwrap_or_else(|e| panic!("FLEET_REPORTS_DAY {day:?}: {e} (want YYYY-MM-DD)"));
            return date
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp_millis();
        }
        let now = chrono::Utc::now().timestamp_millis();
        now - now.rem_euclid(DAY_MS)
    });
    midnight + 2 * 3_600_000 - i64::try_from(nights).expect("nights") * DAY_MS
}
const UPLOAD_AGENTS: usize = 500;
const PER_CONNECTION: usize = 100;

/// One measured configuration.
#[derive(Default)]
struct Line {
    backend: &'static str,
    boards: usize,
    nights: usize,
    seed_per_s: f64,
    upload_per_s: f64,
    /// Coordinator, client and coordinator-while-answering CPU seconds per uploaded result.
    upload_cpu: (f64, f64, f64),
    /// The coordinator's resident and peak memory after the ingest, in MB.
    upload_mb: (f64, f64),
    /// How the ingest's results went (`packed`, `json`).
    upload_form: &'static str,
    /// The ingest's best and median round, results per second.
    upload_rounds: (f64, f64),
    /// Its untimed first round: results per second, coordinator CPU seconds per result.
    upload_warm_up: (f64, f64),
    uploads: usize,
    blob_bytes: f64,
    db_bytes_per_result: f64,
    json_bytes: usize,
    /// Bytes per result of each table with its indexes and TOAST (PostgreSQL only):
    /// (table, bytes per result, [heap, TOAST, indexes] of it), largest first.
    tables: Vec<(String, f64, [f64; 3])>,
    /// (query, best latency, runs, figures, each report's time on those rows)
    queries: Vec<QueryTiming>,
    /// Each report over gRPC: (report and window, best latency, model bytes).
    reports: Vec<(String, Duration, usize)>,
}

/// One query's timings: (query, best latency, runs, figures, each report's time on its rows).
type QueryTiming = (String, Duration, usize, usize, Vec<(String, Duration)>);

/// A small deterministic generator (xorshift), so every run seeds the same fleet.
struct Rng(u64);

impl Rng {
    /// A generator whose first draws are uniform whatever `seed` (splitmix64's mix). The
    /// xorshift's first draw from a small seed is near 0, and from seeds that differ in
    /// their low bits nearly the same: the uploads' noise was -1.5 % each, every steady
    /// board's latest nights a step down.
    fn seeded(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Board `b`'s agent id (agent ids are UUIDs).
fn board_id(b: usize) -> String {
    format!("b0000000-0000-4000-8000-{b:012}")
}

fn board_name(b: usize) -> String {
    format!("board-{b:04}")
}

fn spec() -> CampaignSpec {
    CampaignSpec {
        selector: Selector::All,
        framework: FrameworkChoice::Default,
        quick: true,
        warmup: None,
        trials: None,
        run_timeout_s: 3600,
        deadline_s: 3600,
        concurrency: 0,
        overrides: Overrides::default(),
        max_duration_s: None,
    }
}

/// Board `b` drops 20 % from the middle night on (every tenth board).
fn steps(b: usize) -> bool {
    b % 10 == 3
}

/// Board `b` loses 0.05 % a night (every tenth other board).
fn creeps(b: usize) -> bool {
    b % 10 == 7
}

/// The performance factor of board `b` on night `n` of `nights`.
fn factor(b: usize, n: usize, nights: usize, rng: &mut Rng) -> f64 {
    let board = 0.9 + 0.2 * ((b * 7919) % 100) as f64 / 100.0;
    let noise = 1.0 + 0.03 * (rng.unit() - 0.5);
    let step = if steps(b) && n >= nights / 2 {
        0.8
    } else {
        1.0
    };
    let creep = if creeps(b) {
        1.0 - 0.0005 * n as f64
    } else {
        1.0
    };
    board * noise * step * creep
}

/// The template varied for board `b`'s run on night `n`.
fn varied(
    template: &CalibrationResult,
    run_id: &str,
    b: usize,
    started_at: i64,
    f: f64,
) -> CalibrationResult {
    let mut r = template.clone();
    r.metadata.run_id = run_id.to_string();
    r.metadata.host.hostname = board_name(b);
    let t = chrono::DateTime::from_timestamp_millis(started_at).expect("time");
    r.metadata.started_at = t.to_rfc3339();
    r.metadata.finished_at = (t + chrono::Duration::seconds(57)).to_rfc3339();
    vary::scale_rates(&mut r, f, (started_at as u64) ^ ((b as u64) << 48));
    r
}

fn agent(b: usize, nights: usize) -> AgentRecord {
    AgentRecord {
        agent_id: board_id(b),
        hostname: board_name(b),
        labels: BTreeMap::from([
            ("site".to_string(), format!("lab{}", b % 4)),
            ("rack".to_string(), format!("r{}", b % 25)),
        ]),
        preset: None,
        capabilities: Capabilities {
            engines: vec!["numpy".into()],
            cpu_count: 2,
            ..Capabilities::default()
        },
        agent_version: "bench".into(),
        registered_at: first_night(nights) - DAY_MS,
        last_seen: first_night(nights) - DAY_MS,
    }
}

/// Seeds B × N results through `Store::store_result`; returns results per second.
async fn seed<S: Store + Clone>(store: &S, boards: usize, nights: usize) -> f64 {
    let template = Arc::new(CalibrationResult::from_json(TEMPLATE, "template").expect("template"));
    for b in 0..boards {
        store.upsert_agent(&agent(b, nights)).await.expect("agent");
    }
    let t = Instant::now();
    // Many at once, as a fleet uploads: the store commits what arrives together at once.
    let workers = 32;
    for n in 0..nights {
        let night = first_night(nights) + i64::try_from(n).expect("night") * DAY_MS;
        let campaign = CampaignRecord {
            id: format!("night-{n:04}"),
            created_at: night,
            deadline: night + DAY_MS,
            spec: spec(),
            firing: Some(FiringTag {
                schedule: "nightly".into(),
                scheduled_at: night,
            }),
        };
        // The last night compares the frameworks: every board runs pytorch too (the compare
        // report's pairs).
        let frameworks: &[Framework] = if n + 1 == nights {
            &[Framework::Numpy, Framework::Pytorch]
        } else {
            &[Framework::Numpy]
        };
        let runs: Vec<RunRecord> = (0..boards)
            .flat_map(|b| frameworks.iter().map(move |fw| (b, *fw)))
            .map(|(b, framework)| RunRecord {
                run_id: match framework {
                    Framework::Numpy => format!("n{n:04}-b{b:04}"),
                    _ => format!("n{n:04}-b{b:04}-{framework}"),
                },
                campaign_id: campaign.id.clone(),
                agent_id: board_id(b),
                hostname: board_name(b),
                preset_id: "auto".into(),
                framework,
                device: DeviceKind::Cpu,
                state: RunState::Running,
                fraction: 0.0,
                message: String::new(),
                seq: i64::try_from(b * 2).expect("seq")
                    + i64::from(framework == Framework::Pytorch),
                started_at: Some(night),
                finished_at: None,
                not_before: None,
            })
            .collect();
        store
            .create_campaign(&campaign, &runs)
            .await
            .expect("campaign");
        let runs = Arc::new(runs);
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..workers {
            let (store, runs, template) = (store.clone(), runs.clone(), template.clone());
            tasks.spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((n * 131 + w) as u64 + 1));
                for i in (w..runs.len()).step_by(workers) {
                    let run = &runs[i];
                    let b = i / frameworks.len();
                    let started = night + i64::try_from(b % 600).expect("b") * 1000;
                    let f = factor(b, n, nights, &mut rng);
                    let mut result = varied(&template, &run.run_id, b, started, f);
                    if run.framework == Framework::Pytorch {
                        // PyTorch's own figures: a third faster than NumPy's here.
                        vary::scale_rates(&mut result, 1.3, i as u64);
                        result.metadata.framework = Framework::Pytorch;
                    }
                    let stored_at = started + 60_000;
                    let fleet = FleetRun::from_result(run, Some("nightly"), &result, stored_at);
                    store
                        .store_result(run, &result.to_json(), Some(result), &fleet, stored_at)
                        .await
                        .expect("store");
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("seed task");
        }
    }
    (boards * (nights + 1)) as f64 / t.elapsed().as_secs_f64()
}

/// Runs one phase of the ingest with a time limit, so a stall names its phase (and how far
/// it got, from `progress`) instead of hanging the bench.
async fn phase<T>(
    what: &str,
    limit: Duration,
    progress: &std::sync::atomic::AtomicUsize,
    f: impl std::future::Future<Output = T>,
) -> T {
    let t = Instant::now();
    match tokio::time::timeout(limit, f).await {
        Ok(v) => {
            eprintln!("  ingest: {what} in {:.2?}", t.elapsed());
            v
        }
        Err(_) => panic!(
            "ingest phase '{what}' did not finish within {limit:?} ({} done)",
            progress.load(std::sync::atomic::Ordering::Relaxed)
        ),
    }
}

/// CPU seconds (user + system) process `pid` has used so far, from `/proc/PID/stat`
/// (0 where it cannot be read): the ingest's cost independent of what else runs.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name (which may hold spaces) in parentheses.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the name), in
    // clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Field `field` (`VmRSS`, `VmHWM`) of `/proc/PID/status`, in MB (0 where it cannot be
/// read).
fn memory_mb(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1000.0)
}

async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

/// One upload's result as the bench sends it.
enum Body {
    /// Its JSON (`FLEET_REPORTS_UPLOAD=json`: an agent older than the packed form).
    Json(Vec<u8>),
    /// Its packed form (an agent of this version to a coordinator that takes it).
    Packed(Vec<u8>),
}

impl Line {
    /// The ingest's figures, `uploads` results measured.
    fn take_ingest(&mut self, measured: &Ingest, uploads: usize) {
        self.upload_per_s = measured.per_s;
        self.upload_cpu = (
            measured.coordinator_cpu,
            measured.client_cpu,
            measured.uploading_cpu,
        );
        self.upload_mb = measured.coordinator_mb;
        self.upload_form = measured.form;
        self.upload_rounds = (measured.best_round, measured.median_round);
        self.upload_warm_up = measured.warm_up;
        self.uploads = uploads;
    }
}

/// What the ingest measured.
#[derive(Default)]
struct Ingest {
    /// Results per second of the upload phases.
    per_s: f64,
    /// CPU seconds per result of the coordinator (upload phases and the drift work they
    /// leave behind) and of the bench's own client.
    coordinator_cpu: f64,
    client_cpu: f64,
    /// Of the coordinator's, what it spent while the uploads were answered (the timed
    /// window, without the drift checks that wait for a pause).
    uploading_cpu: f64,
    /// The coordinator's resident and peak resident memory after the ingest, in MB (its
    /// boards' kept drift histories among it).
    coordinator_mb: (f64, f64),
    /// How the results went: `packed` or `json`.
    form: &'static str,
    /// Results per second of the best and the median timed round.
    best_round: f64,
    median_round: f64,
    /// The untimed first round: results per second, coordinator CPU seconds per result.
    warm_up: (f64, f64),
}

/// The seeded boards that upload in the ingest phase: the first [`UPLOAD_AGENTS`] of `boards`
/// whose figures hold steady (neither [`steps`] nor [`creeps`]), so that their uploads, measured
/// as the board measured before, raise no drift and start no confirmation run.
fn upload_boards(boards: usize) -> Vec<usize> {
    (0..boards)
        .filter(|&b| !steps(b) && !creeps(b))
        .take(UPLOAD_AGENTS)
        .collect()
}

/// Uploads `total` results through the real coordinator on `db` over gRPC, as the seeded
/// boards of [`upload_boards`] would upload another night: each board with its history of
/// `nights` nights (the drift check after each upload reads it), each result varied as that
/// board's are. Each phase has a time limit ([`phase`]).
async fn ingest(db: &str, total: usize, boards: usize, nights: usize) -> Ingest {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let coord = process::start(db, 200);
    let json_uploads = std::env::var("FLEET_REPORTS_UPLOAD").as_deref() == Ok("json");
    let uploaders = upload_boards(boards);
    let n = uploaders.len().min(total);
    let mut channels = Vec::new();
    for _ in 0..n.div_ceil(PER_CONNECTION) {
        channels.push(channel(&coord.url).await);
    }
    let ids: Vec<String> = uploaders.iter().take(n).map(|&b| board_id(b)).collect();
    let done = Arc::new(AtomicUsize::new(0));
    let minute = Duration::from_secs(60);
    phase("register", 5 * minute, &done, async {
        for (i, id) in ids.iter().enumerate() {
            AgentServiceClient::new(channels[i / PER_CONNECTION].clone())
                .register(pb::RegisterRequest {
                    instance: String::new(),
                    agent_id: id.clone(),
                    hostname: board_name(uploaders[i]),
                    // The board's own labels (the reports select by them) and the bench's.
                    labels: agent(uploaders[i], nights)
                        .labels
                        .into_iter()
                        .chain([("bench".to_string(), "upload".to_string())])
                        .collect(),
                    preset: None,
                    capabilities: Some(pb::Capabilities {
                        arch: "x86_64".into(),
                        cpu_model: "Intel(R) Xeon(R) Processor".into(),
                        cpu_count: 2,
                        engines: vec!["numpy".into()],
                        ..pb::Capabilities::default()
                    }),
                    agent_version: "bench".into(),
                })
                .await
                .expect("register");
            done.fetch_add(1, Ordering::Relaxed);
        }
    })
    .await;
    done.store(0, Ordering::Relaxed);
    let mut streams = phase("subscribe", 5 * minute, &done, async {
        let mut streams = Vec::with_capacity(n);
        for (i, id) in ids.iter().enumerate() {
            let stream = AgentServiceClient::new(channels[i / PER_CONNECTION].clone())
                .subscribe(pb::SubscribeRequest {
                    instance: String::new(),
                    agent_id: id.clone(),
                })
                .await
                .expect("subscribe")
                .into_inner();
            streams.push(stream);
            done.fetch_add(1, Ordering::Relaxed);
        }
        streams
    })
    .await;
    let template = Arc::new(CalibrationResult::from_json(TEMPLATE, "template").expect("template"));
    let mut uploaded = 0;
    let mut busy = Duration::ZERO;
    let pid = coord.child.id().to_string();
    let (mut coordinator_cpu, mut client_cpu, mut uploading_cpu) = (0.0, 0.0, 0.0);
    // One untimed round first: a coordinator that has run for a night keeps each board's
    // drift history (`fleet/drift/history.rs`), and a freshly started one reads every
    // board's 120 days once on its first round. Its figures are printed apart.
    let mut warm: Option<(f64, f64)> = None;
    let mut rounds: Vec<f64> = Vec::new();
    let mut warming = true;
    while uploaded < total {
        AdminServiceClient::new(channels[0].clone())
            .start_campaign(pb::StartCampaignRequest {
                selector: Some(pb::Selector {
                    kind: Some(pb::selector::Kind::Labels(pb::Labels {
                        labels: [("bench".to_string(), "upload".to_string())].into(),
                    })),
                }),
                quick: true,
                run_timeout_s: 3600,
                ..pb::StartCampaignRequest::default()
            })
            .await
            .expect("start campaign");
        // Every agent's plan first, then every upload at once (timed).
        done.store(0, Ordering::Relaxed);
        let mut planned = phase("every plan received", 5 * minute, &done, async {
            let mut waiting = tokio::task::JoinSet::new();
            for (i, mut s) in streams.drain(..).enumerate() {
                let done = done.clone();
                waiting.spawn(async move {
                    loop {
                        let d = s.message().await.expect("directive").expect("open");
                        if let Some(pb::directive::Action::Plan(p)) = d.action {
                            done.fetch_add(1, Ordering::Relaxed);
                            return (i, s, p);
                        }
                    }
                });
            }
            let mut planned = Vec::with_capacity(n);
            while let Some(r) = waiting.join_next().await {
                planned.push(r.expect("plan task"));
            }
            planned
        })
        .await;
        planned.sort_by_key(|(i, _, _)| *i);
        let bodies: Vec<(usize, String, Body)> = planned
            .iter()
            .map(|(i, _, plan)| {
                let b = uploaders[*i];
                // One generator an upload: its seed mixed ([`Rng::seeded`]), so that its
                // first draw is as uniform as the seeded nights' many.
                let mut rng = Rng::seeded((uploaded + *i) as u64);
                let now = chrono::Utc::now().timestamp_millis();
                // The board's figures as on its last seeded night (steady boards only).
                let f = factor(b, nights.saturating_sub(1), nights, &mut rng);
                let r = varied(&template, &plan.run_id, b, now, f);
                let json = r.to_json();
                let body = if json_uploads {
                    Body::Json(json.into_bytes())
                } else {
                    Body::Packed(fleetcal_proto::document::encode_upload(&json).expect("packs"))
                };
                (*i, plan.run_id.clone(), body)
            })
            .collect();
        done.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let cpu = (cpu_seconds(&pid), cpu_seconds("self"));
        phase("every upload stored", 10 * minute, &done, async {
            let mut uploads = tokio::task::JoinSet::new();
            for (i, run_id, body) in bodies {
                let mut client = AgentServiceClient::new(channels[i / PER_CONNECTION].clone())
                    .max_decoding_message_size(pb::MAX_MESSAGE_BYTES);
                let agent_id = ids[i].clone();
                let done = done.clone();
                uploads.spawn(async move {
                    client
                        .upload_result(match body {
                            Body::Json(json) => pb::UploadRequest {
                                agent_id,
                                run_id,
                                result_json: json.into(),
                                result_packed: Default::default(),
                            },
                            Body::Packed(packed) => pb::UploadRequest {
                                agent_id,
                                run_id,
                                result_json: Default::default(),
                                result_packed: packed.into(),
                            },
                        })
                        .await
                        .expect("upload");
                    done.fetch_add(1, Ordering::Relaxed);
                });
            }
            while let Some(r) = uploads.join_next().await {
                r.expect("upload task");
                if !warming {
                    uploaded += 1;
                }
            }
        })
        .await;
        let took = t.elapsed();
        let answered = cpu_seconds(&pid);
        // The drift evaluations run after each answer: wait until the coordinator is idle
        // (less than 10 ms of CPU in 250 ms, at most 60 s) before reading its CPU time.
        let settle = Instant::now();
        let mut last = cpu_seconds(&pid);
        while settle.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = cpu_seconds(&pid);
            if now - last < 0.01 {
                break;
            }
            last = now;
        }
        let round_rate = n as f64 / took.as_secs_f64();
        if warming {
            warm = Some((round_rate, (last - cpu.0) / n as f64));
            warming = false;
        } else {
            busy += took;
            rounds.push(round_rate);
            coordinator_cpu += last - cpu.0;
            uploading_cpu += answered - cpu.0;
            client_cpu += cpu_seconds("self") - cpu.1;
        }
        streams = planned.into_iter().map(|(_, s, _)| s).collect();
    }
    rounds.sort_by(f64::total_cmp);
    drop(streams);
    let coordinator_mb = (memory_mb(&pid, "VmRSS"), memory_mb(&pid, "VmHWM"));
    drop(coord);
    let n = uploaded as f64;
    Ingest {
        per_s: n / busy.as_secs_f64(),
        coordinator_cpu: coordinator_cpu / n,
        client_cpu: client_cpu / n,
        uploading_cpu: uploading_cpu / n,
        coordinator_mb,
        form: if json_uploads { "json" } else { "packed" },
        best_round: rounds.last().copied().unwrap_or(0.0),
        median_round: rounds.get(rounds.len() / 2).copied().unwrap_or(0.0),
        warm_up: warm.unwrap_or_default(),
    }
}

/// The report-sized queries, with their names.
fn queries(boards: usize, nights: usize) -> Vec<(String, FleetQuery)> {
    let end = first_night(nights) + i64::try_from(nights).expect("nights") * DAY_MS;
    let last = end - DAY_MS;
    // What reports read now: every run with its headline records (`runs_only` without them).
    let window = |n: i64, runs_only: bool| FleetQuery {
        since: Some(end - n * DAY_MS),
        until: Some(end),
        runs_only,
        headline_figures_only: !runs_only,
        ..FleetQuery::default()
    };
    vec![
        (
            "last night, every board".to_string(),
            FleetQuery {
                since: Some(last),
                until: Some(end),
                headline_figures_only: true,
                ..FleetQuery::default()
            },
        ),
        (
            "one campaign (last night's)".to_string(),
            FleetQuery {
                campaign_id: Some(format!("night-{:04}", nights.saturating_sub(1))),
                headline_figures_only: true,
                ..FleetQuery::default()
            },
        ),
        (
            "30 nights, every board, headline records".to_string(),
            window(30, false),
        ),
        (
            "30 nights, every board, runs only".to_string(),
            window(30, true),
        ),
        (
            format!("{nights} nights, every board, runs only"),
            window(i64::try_from(nights).expect("nights"), true),
        ),
        (
            "30 nights, --select site=lab1".to_string(),
            FleetQuery {
                select: vec![("site".into(), "lab1".into())],
                ..window(30, false)
            },
        ),
        (
            format!("one board, {nights} nights"),
            FleetQuery {
                agent_id: Some(board_id(boards / 2)),
                headline_figures_only: true,
                ..FleetQuery::default()
            },
        ),
    ]
}

/// Each report's pure function (`fleet::*`, from branch issue12-fleet) timed once on the
/// rows `fleet_rows` returned for one query: grouping, then the reports that read that kind
/// of query (the drift report its runs-only window, the others a night or a campaign).
fn time_reports(name: &str, rows: &FleetRows, now: i64) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    let mut timed = |what: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        out.push((what.to_string(), t.elapsed()));
    };
    let mut groups = fleet::group::group_boards(&rows.runs);
    timed("group_boards", &mut || {
        groups = fleet::group::group_boards(&rows.runs);
    });
    if rows.runs.is_empty() {
        return out;
    }
    if name.contains("runs only") {
        timed("drift", &mut || {
            let _ = fleet::drift::drift(
                rows,
                &groups,
                Vec::new(),
                &fleet::drift::DriftParams::default(),
                now,
            );
        });
    } else {
        timed("compare", &mut || {
            let _ = fleet::compare::compare(rows, &groups, now);
        });
        timed("boards", &mut || {
            let _ = fleet::boards::boards(rows, &groups, now);
        });
        let last_result = BTreeMap::new();
        timed("anomalies", &mut || {
            let _ = fleet::anomalies::anomalies(
                rows,
                &groups,
                fleet::anomalies::AnomalyInputs {
                    runs: &[],
                    agents: &[],
                    last_result: &last_result,
                    since: None,
                    stale_days: 3,
                    group: None,
                },
                now,
            );
        });
        timed("roofline", &mut || {
            let _ = fleet::roofline::roofline(rows, &groups, now);
        });
        if name.starts_with("one board") {
            timed("drift", &mut || {
                let _ = fleet::drift::drift(
                    rows,
                    &groups,
                    Vec::new(),
                    &fleet::drift::DriftParams::default(),
                    now,
                );
            });
        }
    }
    out
}

async fn measure<S: Store>(store: &S, line: &mut Line) {
    for (name, q) in queries(line.boards, line.nights) {
        let mut best = Duration::MAX;
        let mut rows = FleetRows::default();
        for _ in 0..3 {
            let t = Instant::now();
            rows = store.fleet_rows(&q).await.expect("fleet rows");
            best = best.min(t.elapsed());
        }
        let now = first_night(line.nights) + i64::try_from(line.nights).expect("nights") * DAY_MS;
        let reports = time_reports(&name, &rows, now);
        line.queries
            .push((name, best, rows.runs.len(), rows.figures.len(), reports));
    }
    // Every figure of last night's results, from their documents (what a night's compare
    // report read until schema v14; now it reads each run's packed pair rates).
    let end = first_night(line.nights) + i64::try_from(line.nights).expect("nights") * DAY_MS;
    let last = store
        .fleet_rows(&FleetQuery {
            since: Some(end - DAY_MS),
            until: Some(end),
            runs_only: true,
            ..FleetQuery::default()
        })
        .await
        .expect("last night");
    let ids: Vec<String> = last.runs.iter().map(|r| r.run_id.clone()).collect();
    let mut best = Duration::MAX;
    let mut figures = 0;
    for _ in 0..3 {
        let t = Instant::now();
        figures = store.fleet_figures(&ids).await.expect("figures").len();
        best = best.min(t.elapsed());
    }
    line.queries.push((
        "every figure of last night's results (documents)".into(),
        best,
        ids.len(),
        figures,
        Vec::new(),
    ));
}

/// Each report through the real coordinator on `db` (its `Report` RPC, as `fleetctl report`
/// asks for it: rows read, detail documents decoded, the report computed and serialised),
/// best of 3: (report and window, latency, bytes of the model).
async fn reports_over_grpc(
    db: &str,
    boards: usize,
    nights: usize,
) -> Vec<(String, Duration, usize)> {
    use fleetcal_proto::pb::admin_service_client::AdminServiceClient;
    let coord = process::start(db, 200);
    let mut admin = AdminServiceClient::new(channel(&coord.url).await)
        .max_decoding_message_size(pb::MAX_ADMIN_ANSWER_BYTES);
    let end = first_night(nights) + i64::try_from(nights).expect("nights") * DAY_MS;
    let day = |back: i64| {
        chrono::DateTime::from_timestamp_millis(end - back * DAY_MS)
            .expect("time")
            .to_rfc3339()
    };
    // (name, kind, since, nights): every window given, by the bench's nights (the last is last
    // night by the coordinator's clock).
    let mut asks: Vec<(String, &str, String, u32)> = Vec::new();
    for kind in ["compare", "boards", "roofline", "anomalies", "drift"] {
        asks.push((format!("{kind}, last night"), kind, day(1), 0));
        asks.push((format!("{kind}, 30 nights"), kind, day(30), 0));
    }
    // Every night of every board at once: a drift model holds every point (a month of 100
    // boards is ~11 MB of JSON), so only up to 40,000 results.
    if boards.saturating_mul(nights) <= 40_000 {
        let all = fleetcal_coordinator::fleet::ReportQuery::MAX_NIGHTS;
        asks.push((
            format!("drift, all {nights} nights"),
            "drift",
            String::new(),
            all,
        ));
        asks.push((
            format!("boards, all {nights} nights"),
            "boards",
            String::new(),
            all,
        ));
    } else {
        println!(
            "  (the all-nights reports are not asked at {boards}x{nights}: a drift model of every point is over the answer limit)"
        );
    }
    let mut out = Vec::new();
    for (name, kind, since, nights) in asks {
        let mut best = Duration::MAX;
        let mut bytes = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let answer = admin
                .report(pb::ReportRequest {
                    kind: kind.to_string(),
                    since: since.clone(),
                    nights,
                    ..pb::ReportRequest::default()
                })
                .await;
            let took = t.elapsed();
            match answer {
                Ok(r) => {
                    bytes = r.into_inner().model_json.len();
                    best = best.min(took);
                }
                Err(e) => {
                    println!("  report {name}: {e}");
                    break;
                }
            }
        }
        eprintln!("  report {name}: {best:.2?}");
        out.push((name, best, bytes));
    }
    out
}

async fn sqlite(boards: usize, nights: usize, uploads: usize) -> Line {
    // FLEET_REPORTS_KEEP=DIR keeps the seeded database in DIR and, when it is there already,
    // measures the reports on it without seeding or ingesting again (for working on the
    // reports: a 1,000 × 365 seed takes ~10 minutes). Its windows count back from the clock of
    // the day it was seeded.
    if let Ok(keep) = std::env::var("FLEET_REPORTS_KEEP") {
        let path = std::path::Path::new(&keep).join(format!("reports-{boards}x{nights}.db"));
        if path.exists() {
            println!("  (reusing {}: no seed, no ingest)", path.display());
            let url = format!("sqlite://{}", path.display());
            let mut line = Line {
                backend: "SQLite (kept)",
                boards,
                nights,
                ..Line::default()
            };
            let ingest_too = std::env::var("FLEET_REPORTS_INGEST").ok();
            if ingest_too.is_some() {
                // The upload path again, on the kept database (each run adds its uploads).
                let measured = ingest(&url, uploads, boards, nights).await;
                line.take_ingest(&measured, uploads);
            }
            if ingest_too.as_deref() != Some("only") {
                line.reports = reports_over_grpc(&url, boards, nights).await;
            }
            return line;
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reports.db");
    let mut line = Line {
        backend: "SQLite",
        boards,
        nights,
        ..Line::default()
    };
    let files = |dir: &std::path::Path| -> u64 {
        ["reports.db", "reports.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    };
    let empty;
    {
        let store = SqliteStore::open(&path).await.expect("open");
        empty = files(dir.path());
        line.seed_per_s = seed(&store, boards, nights).await;
    }
    let measured = ingest(
        &format!("sqlite://{}", path.display()),
        uploads,
        boards,
        nights,
    )
    .await;
    line.take_ingest(&measured, uploads);
    let store = SqliteStore::open(&path).await.expect("reopen");
    measure(&store, &mut line).await;
    line.reports = reports_over_grpc(&format!("sqlite://{}", path.display()), boards, nights).await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("pool");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .expect("checkpoint");
    let (n, blob): (i64, f64) =
        sqlx::query_as("SELECT COUNT(*), AVG(CAST(LENGTH(result_zstd) AS REAL)) FROM results")
            .fetch_one(&pool)
            .await
            .expect("sizes");
    // The growth from the empty (migrated) database, after a checkpoint: no result was
    // ever deleted, so the file holds no free pages to discount.
    let bytes = files(dir.path()).saturating_sub(empty);
    line.blob_bytes = blob;
    line.db_bytes_per_result = bytes as f64 / n as f64;
    if let Ok(keep) = std::env::var("FLEET_REPORTS_KEEP") {
        let kept = std::path::Path::new(&keep).join(format!("reports-{boards}x{nights}.db"));
        drop(pool);
        std::fs::copy(&path, &kept).expect("keep the database");
    }
    line
}

async fn postgres(boards: usize, nights: usize, uploads: usize) -> Option<Line> {
    // Durable (fsync on), as a production database is: commits are what ingest costs.
    let cluster = pg::PgCluster::start_durable().await?;
    let mut line = Line {
        backend: "PostgreSQL",
        boards,
        nights,
        ..Line::default()
    };
    let size = "SELECT pg_database_size(current_database())";
    let empty: i64;
    {
        let store = PgStore::open(&cluster.url).await.expect("open");
        let pool = sqlx::PgPool::connect(&cluster.url).await.expect("pool");
        empty = sqlx::query_scalar(size)
            .fetch_one(&pool)
            .await
            .expect("size");
        line.seed_per_s = seed(&store, boards, nights).await;
    }
    let measured = ingest(&cluster.url, uploads, boards, nights).await;
    line.take_ingest(&measured, uploads);
    let store = PgStore::open(&cluster.url).await.expect("reopen");
    let pool = sqlx::PgPool::connect(&cluster.url).await.expect("pool");
    sqlx::query("VACUUM ANALYZE")
        .execute(&pool)
        .await
        .expect("analyze");
    measure(&store, &mut line).await;
    line.reports = reports_over_grpc(&cluster.url, boards, nights).await;
    let (n, blob, bytes): (i64, f64, i64) = sqlx::query_as(
        "SELECT COUNT(*), AVG(LENGTH(result_zstd))::float8, pg_database_size(current_database()) \
         FROM results",
    )
    .fetch_one(&pool)
    .await
    .expect("sizes");
    // The growth from the empty (migrated) database, after VACUUM ANALYZE (which returns
    // nothing to the system: only dead rows, and none were deleted, would be reused).
    line.blob_bytes = blob;
    line.db_bytes_per_result = (bytes - empty) as f64 / n as f64;
    // Where the bytes are: each table's total, and its heap, TOAST (with the TOAST index)
    // and indexes apart.
    let tables: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.relname::text, pg_total_relation_size(c.oid), pg_relation_size(c.oid), \
         COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0), \
         pg_indexes_size(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 2 DESC",
    )
    .fetch_all(&pool)
    .await
    .expect("table sizes");
    let per = |b: i64| b as f64 / n as f64;
    line.tables = tables
        .into_iter()
        .take(6)
        .map(|(t, all, heap, toast, idx)| (t, per(all), [per(heap), per(toast), per(idx)]))
        .collect();
    Some(line)
}

fn print(line: &Line) {
    println!(
        "\n{} {}x{} ({} results)",
        line.backend,
        line.boards,
        line.nights,
        line.boards * (line.nights + 1) + line.uploads
    );
    println!(
        "  seed through Store::store_result: {:.0} results/s",
        line.seed_per_s
    );
    println!(
        "  ingest over gRPC (real coordinator, {} uploads, {}): {:.0} results/s (rounds: best {:.0}, median {:.0}); untimed first round {:.0} results/s at {:.2} ms of coordinator CPU a result",
        line.uploads,
        line.upload_form,
        line.upload_per_s,
        line.upload_rounds.0,
        line.upload_rounds.1,
        line.upload_warm_up.0,
        line.upload_warm_up.1 * 1000.0
    );
    println!(
        "  CPU per uploaded result: coordinator {:.2} ms (with its drift checks; {:.2} ms while the uploads were answered), bench client {:.2} ms",
        line.upload_cpu.0 * 1000.0,
        line.upload_cpu.2 * 1000.0,
        line.upload_cpu.1 * 1000.0
    );
    println!(
        "  coordinator memory after the ingest: {:.0} MB resident, {:.0} MB at most",
        line.upload_mb.0, line.upload_mb.1
    );
    println!(
        "  stored per result: {:.1} KB document (of {:.1} KB JSON), {:.1} KB with its rows and indexes",
        line.blob_bytes / 1000.0,
        line.json_bytes as f64 / 1000.0,
        line.db_bytes_per_result / 1000.0
    );
    if !line.tables.is_empty() {
        let tables: Vec<String> = line
            .tables
            .iter()
            .map(|(t, b, [heap, toast, idx])| {
                format!(
                    "{t} {:.2} KB (heap {:.2}, TOAST {:.2}, indexes {:.2})",
                    b / 1000.0,
                    heap / 1000.0,
                    toast / 1000.0,
                    idx / 1000.0
                )
            })
            .collect();
        println!(
            "    of which (tables with their indexes and TOAST):\n      {}",
            tables.join("\n      ")
        );
    }
    for (name, took, runs, figures, reports) in &line.queries {
        println!("  fleet_rows {name:<40} {took:>10.2?}  {runs:>7} runs {figures:>9} figures");
        let reports: Vec<String> = reports
            .iter()
            .map(|(r, t)| format!("{r} {t:.2?}"))
            .collect();
        println!("    then {}", reports.join(", "));
    }
    for (name, took, bytes) in &line.reports {
        println!(
            "  report over gRPC {name:<34} {took:>10.2?}  {:>9.1} KB",
            *bytes as f64 / 1000.0
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<(usize, usize)> = std::env::var("FLEET_REPORTS_SIZES")
        .unwrap_or_else(|_| if bench { "100x365,1000x365" } else { "4x7" }.into())
        .split(',')
        .filter_map(|s| {
            let (b, n) = s.trim().split_once('x')?;
            Some((b.parse().ok()?, n.parse().ok()?))
        })
        .collect();
    let backends =
        std::env::var("FLEET_REPORTS_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let uploads: usize = std::env::var("FLEET_REPORTS_UPLOADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if bench { 2000 } else { 20 });
    let json_bytes = CalibrationResult::from_json(TEMPLATE, "template")
        .expect("template")
        .to_json()
        .len();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for (boards, nights) in sizes {
        for backend in backends.split(',') {
            let t = Instant::now();
            let line = match backend.trim() {
                "sqlite" => Some(runtime.block_on(sqlite(boards, nights, uploads))),
                "postgres" => runtime.block_on(postgres(boards, nights, uploads)),
                other => {
                    println!("unknown backend {other:?} (sqlite, postgres)");
                    None
                }
            };
            if let Some(mut line) = line {
                line.json_bytes = json_bytes;
                print(&line);
                println!("  (took {:.0?} in all)", t.elapsed());
            }
        }
    }
}
