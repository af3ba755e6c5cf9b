//! The web side (`serve --http 127.0.0.1:0`) end to end, against the real coordinator with
//! results seeded through the real upload path (AgentService: register, subscribe, plan,
//! upload):
//!
//! - every page answers 200 with HTML under a no-script content security policy, the same
//!   data as JSON and CSV, bad parameters are 400 naming the parameter, an unknown page or
//!   board is 404, anything but GET is 405;
//! - `/metrics` passes a Prometheus text-format parser (`prometheus-parse`) and carries the
//!   agents, runs, results ingested, last calibration, headline figures and alerts;
//! - every page opened in headless Chromium (`/usr/bin/chromium`, Debian's package): the
//!   visible text is there and every plot's SVG rendered; screenshots are saved (and written to
//!   `docs/screenshots/` with `FLEETCAL_UPDATE_SCREENSHOTS=1`);
//! - with TLS the web side serves HTTPS with the gRPC side's certificate (and its client CA);
//! - SIGTERM stops the HTTP listener with the gRPC one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fleetcal_proto::pb;
use fleetcal_proto::result::PeakFigure;
use fleetcal_proto::{DeviceKind, Framework, Precision};

use crate::support::{
    agent_client, cpu_caps, fleetctl, next_plan, sample_result, subscribe, CoordinatorProcess,
    PLAIN,
};
use crate::tls::Pki;

/// Campaigns seeded (each: a numpy and a pytorch run on each of three boards).
const ROUNDS: usize = 5;

/// Earlier nights written through the store.
const NIGHTS: i64 = 12;

/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";

/// The pages, with a name for the screenshot and a text each must show.
const PAGES: [(&str, &str, &str); 6] = [
    ("overview", "/", "boards online"),
    ("compare", "/reports/compare", "NumPy vs PyTorch"),
    ("boards", "/reports/boards", "Each board against its group"),
    ("drift", "/reports/drift", "Each board over nights"),
    ("anomalies", "/reports/anomalies", "Anomalies"),
    ("roofline", "/reports/roofline", "Roofline"),
];

/// An HTTP answer.
struct Answer {
    status: u16,
    content_type: String,
    csp: String,
    body: String,
}

fn client(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)));
    if let Some(tls) = tls {
        config = config.tls_config(tls);
    }
    config.build().into()
}

fn fetch(agent: &ureq::Agent, url: &str) -> Result<Answer, ureq::Error> {
    let mut r = agent.get(url).call()?;
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (content_type, csp) = (header("content-type"), header("content-security-policy"));
    Ok(Answer {
        status: r.status().as_u16(),
        content_type,
        csp,
        body: r.body_mut().read_to_string()?,
    })
}

fn get(url: &str) -> Answer {
    fetch(&client(None), url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A result for `run` with figures scaled by `scale` (a slower board, a later night).
fn result(run: &pb::Plan, hostname: &str, scale: f64) -> Vec<u8> {
    let framework: Framework = run.framework.parse().expect("plan framework");
    result_doc(&run.run_id, framework, hostname, scale)
        .to_json()
        .into_bytes()
}

/// The result document of [`result`].
fn result_doc(
    run_id: &str,
    framework: Framework,
    hostname: &str,
    scale: f64,
) -> fleetcal_proto::CalibrationResult {
    let mut r = sample_result(run_id, framework, DeviceKind::Cpu);
    let base = match framework {
        Framework::Numpy => 240.0,
        _ => 200.0,
    } * scale;
    r.metadata.host.hostname = hostname.into();
    for rec in &mut r.records {
        if let Some(g) = rec.gops.as_mut() {
            g.best = base;
            g.median = base * 0.97;
            g.mean = base * 0.96;
        }
        if let Some(b) = rec.bandwidth_gbps.as_mut() {
            b.best = 38.0 * scale;
            b.median = 37.0 * scale;
            b.mean = 36.5 * scale;
        }
        if rec.efficiency.is_some() {
            rec.efficiency = Some(base / 500.0);
        }
    }
    r.summary.peak_by_precision.insert(
        Precision::Fp32,
        PeakFigure {
            gops: base,
            operation: fleetcal_proto::Operation::Gemm,
            size: 32,
            efficiency: Some(base / 500.0),
        },
    );
    r.summary.memory_bandwidth_gbps = Some(38.0 * scale);
    r.summary.bandwidth_efficiency = Some(38.0 * scale / 50.0);
    r.summary.noise_floor_pct = Some(1.5);
    r.summary.bandwidth_source = "stream_triad".into();
    r
}

const DAY: i64 = 86_400_000;

/// Earlier nights the upload path cannot take (it refuses results far from the coordinator's
/// clock): `nights` nights before today of the boards' numpy and pytorch results, written
/// into the coordinator's SQLite database through the store (the same `store_result` the
/// upload path ends in) before the coordinator starts. `board-3` is 40 % slower for the last
/// three of them.
async fn seed_nights(db: &Path, boards: &[(String, String)], nights: i64) {
    use fleetcal_coordinator::fleet::FleetRun;
    use fleetcal_coordinator::model::{
        AgentRecord, CampaignRecord, CampaignSpec, FrameworkChoice, RunRecord, RunState, Selector,
    };
    use fleetcal_coordinator::store::{SqliteStore, Store};
    let store = SqliteStore::open(db).await.expect("opening the database");
    let now = chrono::Utc::now().timestamp_millis();
    for (id, host) in boards {
        let agent = AgentRecord {
            agent_id: id.clone(),
            hostname: host.clone(),
            labels: [("site".to_string(), "lab".to_string())].into(),
            preset: None,
            capabilities: Default::default(),
            agent_version: "test".into(),
            registered_at: now - nights * DAY,
            last_seen: now - nights * DAY,
        };
        store.upsert_agent(&agent).await.unwrap();
    }
    for n in (1..=nights).rev() {
        let at = now - n * DAY;
        let campaign = CampaignRecord {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: at,
            deadline: at + 3_600_000,
            spec: CampaignSpec {
                selector: Selector::All,
                framework: FrameworkChoice::Compare,
                quick: true,
                warmup: None,
                trials: None,
                run_timeout_s: 3600,
                deadline_s: 3600,
                concurrency: 0,
                overrides: Default::default(),
                max_duration_s: None,
            },
            firing: None,
        };
        let mut runs = Vec::new();
        for (seq, ((id, host), framework)) in boards
            .iter()
            .flat_map(|b| [(b, Framework::Numpy), (b, Framework::Pytorch)])
            .enumerate()
        {
            runs.push((
                RunRecord {
                    run_id: uuid::Uuid::new_v4().to_string(),
                    campaign_id: campaign.id.clone(),
                    agent_id: id.clone(),
                    hostname: host.clone(),
                    preset_id: "auto".into(),
                    framework,
                    device: DeviceKind::Cpu,
                    state: RunState::Running,
                    fraction: 0.0,
                    message: String::new(),
                    seq: seq as i64,
                    started_at: Some(at),
                    finished_at: None,
                    not_before: None,
                },
                framework,
            ));
        }
        let records: Vec<RunRecord> = runs.iter().map(|(r, _)| r.clone()).collect();
        store.create_campaign(&campaign, &records).await.unwrap();
        for (run, framework) in &runs {
            let jitter = 1.0 + 0.01 * ((n * 7 + run.seq) % 5 - 2) as f64;
            let slow = run.hostname == "board-3" && n <= 3;
            let scale = if slow { 0.6 * jitter } else { jitter };
            let mut doc = result_doc(&run.run_id, *framework, &run.hostname, scale);
            let started = chrono::DateTime::from_timestamp_millis(at).unwrap();
            doc.metadata.started_at = started.to_rfc3339();
            doc.metadata.finished_at = (started + chrono::Duration::minutes(3)).to_rfc3339();
            let fleet = FleetRun::from_result(run, None, &doc, at);
            store
                .store_result(run, &doc.to_json(), Some(doc.clone()), &fleet, at)
                .await
                .unwrap();
        }
    }
}

/// Registers the boards and runs `rounds` compare campaigns (`board-3` still 40 % slower),
/// every run answered through the upload path with figures that vary a little
/// between rounds.
async fn seed(url: &str, boards: &[(String, String)], rounds: usize) {
    let mut client = agent_client(url).await;
    for (id, host) in boards {
        client
            .register(pb::RegisterRequest {
                instance: String::new(),
                agent_id: id.clone(),
                hostname: host.clone(),
                labels: [("site".to_string(), "lab".to_string())].into(),
                preset: None,
                capabilities: Some(cpu_caps(&["numpy", "pytorch"])),
                agent_version: "test".into(),
            })
            .await
            .expect("register");
    }
    let mut streams = Vec::new();
    for (id, _) in boards {
        streams.push(subscribe(&mut client, id).await.0);
    }
    for round in 0..rounds {
        let out = fleetctl(
            url,
            &["campaign", "start", "--all", "--framework", "compare"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for ((id, host), stream) in boards.iter().zip(streams.iter_mut()) {
            let jitter = [1.0, 1.012, 0.994, 1.006, 0.998][round % 5];
            let scale = if host == "board-3" {
                0.6 * jitter
            } else {
                jitter
            };
            // compare on a board with both engines: a numpy run, then a pytorch run.
            for _ in 0..2 {
                let plan = next_plan(stream).await;
                client
                    .upload_result(pb::UploadRequest {
                        agent_id: id.clone(),
                        run_id: plan.run_id.clone(),
                        result_packed: Default::default(),
                        result_json: result(&plan, host, scale).into(),
                    })
                    .await
                    .expect("upload");
            }
        }
    }
}

/// Runs Chromium headless on `url` with `args`; its stdout.
fn chromium(url: &str, args: &[&str]) -> String {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: scripts/install-deps --postgres installs Debian's chromium"
    );
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1400",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The plots in a DOM: (name, whether its `<svg>` has drawn elements).
fn plots(dom: &str) -> Vec<(String, bool)> {
    dom.split("<figure class=\"plot\" data-plot=\"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap_or("").to_string();
            let body = rest.split("</figure>").next().unwrap_or("");
            let drawn = body.contains("<svg")
                && ["<rect", "<polyline", "<circle", "<line"]
                    .iter()
                    .any(|e| body.contains(e));
            (name, drawn)
        })
        .collect()
}

fn screenshot_dir() -> Option<PathBuf> {
    (std::env::var("FLEETCAL_UPDATE_SCREENSHOTS").as_deref() == Ok("1"))
        .then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_in_chromium_and_metrics_parse() {
    let dir = tempfile::tempdir().unwrap();
    let boards: Vec<(String, String)> = ["board-1", "board-2", "board-3"]
        .iter()
        .map(|h| (uuid::Uuid::new_v4().to_string(), h.to_string()))
        .collect();
    seed_nights(&dir.path().join("coordinator.db"), &boards, NIGHTS).await;
    // The simulated boards do not heartbeat: a long offline window keeps them online while
    // the pages are opened.
    // Plain text on purpose: the web pages are read without a client certificate.
    let coord = CoordinatorProcess::start(
        dir.path(),
        &["--http", "127.0.0.1:0", "--offline-after-s", "600", PLAIN],
    );
    let web = format!("http://{}", coord.http.clone().expect("http address"));
    seed(&coord.url(), &boards, ROUNDS).await;
    let (slow_id, _) = boards.iter().find(|(_, h)| h == "board-3").unwrap().clone();

    // Every page: 200, HTML, no script allowed; the same data as JSON and CSV.
    let mut pages: Vec<(String, String, &str)> = PAGES
        .iter()
        .map(|(name, path, text)| (name.to_string(), format!("{web}{path}"), *text))
        .collect();
    pages.push(("board".into(), format!("{web}/boards/{slow_id}"), "board-3"));
    for (name, url, text) in &pages {
        let a = get(url);
        assert_eq!(a.status, 200, "{url}: {}", a.body);
        assert!(
            a.content_type.starts_with("text/html"),
            "{url}: {}",
            a.content_type
        );
        assert!(a.csp.contains("default-src 'none'"), "{url}: {}", a.csp);
        assert!(a.body.contains(text), "{name}: {text}");
        if *name != "overview" {
            let json = get(&format!("{url}?format=json"));
            assert_eq!(json.status, 200, "{url} json: {}", json.body);
            let v: serde_json::Value = serde_json::from_str(&json.body).expect("json");
            assert!(v.get("report").is_some(), "{name}: {v}");
            let csv = get(&format!("{url}?format=csv"));
            assert_eq!(csv.status, 200, "{url} csv: {}", csv.body);
            assert!(
                csv.content_type.starts_with("text/csv"),
                "{}",
                csv.content_type
            );
        }
    }
    let overview = get(&format!("{web}/"));
    for (_, host) in &boards {
        assert!(overview.body.contains(host.as_str()), "{host} listed");
    }
    assert!(overview
        .body
        .contains("<div class=\"v ok\">3</div>boards online"));

    // Bad parameters name themselves; unknown pages and boards are 404; only GET.
    for (query, name) in [
        ("nights=0", "'nights'"),
        ("since=yesterday", "'since'"),
        ("select=site", "'select'"),
        ("format=xml", "'format'"),
        ("colour=red", "'colour'"),
    ] {
        let a = get(&format!("{web}/reports/drift?{query}"));
        assert_eq!(a.status, 400, "{query}");
        assert!(a.body.contains(name), "{query}: {}", a.body);
    }
    assert_eq!(get(&format!("{web}/reports/speed")).status, 404);
    assert_eq!(get(&format!("{web}/nowhere")).status, 404);
    let unknown = get(&format!("{web}/boards/{}", uuid::Uuid::new_v4()));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let post = client(None).post(&format!("{web}/")).send_empty().unwrap();
    assert_eq!(post.status().as_u16(), 405);

    // /metrics through a Prometheus text-format parser.
    let metrics = get(&format!("{web}/metrics"));
    assert_eq!(metrics.status, 200);
    let lines = metrics.body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("prometheus text format");
    let value = |name: &str, label: Option<(&str, &str)>| -> Vec<f64> {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .collect()
    };
    assert_eq!(
        value("fleetcal_agents", Some(("state", "online"))),
        vec![3.0]
    );
    assert_eq!(
        value("fleetcal_agents", Some(("state", "offline"))),
        vec![0.0]
    );
    // Each round and night: a numpy and a pytorch run on each of the three boards; the
    // counter counts what this process ingested (the uploads), not the seeded nights.
    let results = (ROUNDS * 6) as f64;
    assert_eq!(
        value("fleetcal_runs", Some(("state", "succeeded"))),
        vec![results + (NIGHTS * 6) as f64]
    );
    assert_eq!(
        value("fleetcal_results_ingested_total", None),
        vec![results]
    );
    // This test's uploads are JSON (an agent older than the packed form).
    assert_eq!(
        value("fleetcal_results_ingested_packed_total", None),
        vec![0.0]
    );
    assert_eq!(value("fleetcal_alerts", Some(("state", "open"))).len(), 1);
    let calibrated = value("fleetcal_last_calibration_timestamp_seconds", None);
    assert_eq!(calibrated.len(), 3, "{}", metrics.body);
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        calibrated.iter().all(|t| (now - t).abs() < 600.0),
        "{calibrated:?}"
    );
    let headline = |host: &str| value("fleetcal_board_headline", Some(("board", host)));
    assert!(!headline("board-1").is_empty(), "{}", metrics.body);
    assert!(scrape
        .samples
        .iter()
        .filter(|s| s.metric == "fleetcal_board_headline")
        .all(|s| s.labels.get("group").is_some_and(|g| g.starts_with("g-"))));

    // Every page in headless Chromium: the text is in the rendered DOM, each plot's SVG drew.
    let shots = tempfile::tempdir().unwrap();
    for (name, url, text) in &pages {
        let dom = chromium(url, &["--dump-dom"]);
        assert!(dom.contains(text), "{name}: '{text}' in the rendered page");
        assert!(!dom.contains("<script"), "{name}: no script");
        let drawn = plots(&dom);
        assert!(
            drawn.iter().all(|(_, ok)| *ok),
            "{name}: every plot rendered: {drawn:?}"
        );
        if *name != "overview" && *name != "anomalies" {
            assert!(
                !drawn.is_empty(),
                "{name} has plots with the seeded results"
            );
        }
        let png = shots.path().join(format!("{name}.png"));
        chromium(url, &[&format!("--screenshot={}", png.display())]);
        let bytes = std::fs::read(&png).expect("screenshot written");
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{name}.png"
        );
        if let Some(dir) = screenshot_dir() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(&png, dir.join(format!("{name}.png"))).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_same_certificate_and_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &["ops"]);
    let ca = std::fs::read(pki.file("ca.pem")).unwrap();
    let ca = ureq::tls::Certificate::from_pem(&ca).unwrap();
    let roots = ureq::tls::RootCerts::new_with_certs(&[ca]);
    let trusting = |cert: Option<ureq::tls::ClientCert>| {
        client(Some(
            ureq::tls::TlsConfig::builder()
                .root_certs(roots.clone())
                .client_cert(cert)
                .build(),
        ))
    };

    // TLS alone: HTTPS with the server certificate; plain http is refused.
    let mut flags = pki.server_flags(false);
    flags.extend(["--http".into(), "127.0.0.1:0".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let coord = CoordinatorProcess::start(dir.path(), &flags);
    let port = coord
        .http
        .clone()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let https = format!("https://localhost:{port}");
    let a = fetch(&trusting(None), &format!("{https}/reports/roofline")).expect("https");
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Roofline"));
    let plain = fetch(&client(None), &format!("http://127.0.0.1:{port}/"));
    assert!(
        plain.as_ref().map_or(true, |a| a.status >= 400),
        "plain http is not served by a TLS listener"
    );
    drop(coord);

    // Mutual TLS: the client CA covers the web side too.
    let mut flags = pki.server_flags(true);
    flags.extend(["--http".into(), "127.0.0.1:0".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let coord = CoordinatorProcess::start(dir.path(), &flags);
    let port = coord
        .http
        .clone()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let https = format!("https://localhost:{port}/metrics");
    assert!(
        fetch(&trusting(None), &https).is_err(),
        "no client certificate: refused"
    );
    let chain =
        ureq::tls::Certificate::from_pem(&std::fs::read(pki.file("ops.pem")).unwrap()).unwrap();
    let key =
        ureq::tls::PrivateKey::from_pem(&std::fs::read(pki.file("ops.key")).unwrap()).unwrap();
    let cert = ureq::tls::ClientCert::new_with_certs(&[chain], key);
    let a = fetch(&trusting(Some(cert)), &https).expect("with the client certificate");
    assert_eq!(a.status, 200);
    assert!(a.body.contains("fleetcal_agents"));
    // An agent's certificate of the same CA is refused, as on the admin service.
    let id = pki.agent("board");
    let pem = |name: &str| std::fs::read(pki.file(name)).unwrap();
    let chain = ureq::tls::Certificate::from_pem(&pem("board.pem")).unwrap();
    let key = ureq::tls::PrivateKey::from_pem(&pem("board.key")).unwrap();
    let cert = ureq::tls::ClientCert::new_with_certs(&[chain], key);
    let a = fetch(&trusting(Some(cert)), &https).expect("an answer: 403");
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body.contains(&format!("agent certificate '{id}'"))
            && a.body.contains("may not read the web pages"),
        "{}",
        a.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_http_listener_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut coord = CoordinatorProcess::start(dir.path(), &["--http", ":0"]);
    let addr = coord.http.clone().unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "':0' is loopback: {addr}");
    // HTTPS with the admin certificate of the run's fleet PKI (mutual TLS, as the gRPC side).
    let pki = crate::support::fleet_pki();
    let pem = |name: &str| std::fs::read(pki.file(name)).unwrap();
    let ca = ureq::tls::Certificate::from_pem(&pem("ca.pem")).unwrap();
    let admin = ureq::tls::ClientCert::new_with_certs(
        &[ureq::tls::Certificate::from_pem(&pem("admin.pem")).unwrap()],
        ureq::tls::PrivateKey::from_pem(&pem("admin.key")).unwrap(),
    );
    let admin = client(Some(
        ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
            .client_cert(Some(admin))
            .build(),
    ));
    let port = addr.rsplit(':').next().unwrap();
    let roofline = format!("https://localhost:{port}/reports/roofline");
    let a = fetch(&admin, &roofline).unwrap_or_else(|e| panic!("GET {roofline}: {e}"));
    assert_eq!(a.status, 200, "{}", a.body);
    let status = coord
        .terminate(Duration::from_secs(15))
        .expect("the coordinator exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let log = coord.log_text();
    assert!(log.contains("http listener stopped"), "{log}");
    let start = Instant::now();
    assert!(
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
            .is_err(),
        "nothing listens on {addr} any more ({:?})",
        start.elapsed()
    );
}
