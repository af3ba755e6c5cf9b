//! Fleet reports and drift alerts end to end: the real coordinator (gRPC and `--http`), three
//! real agents on loopback, each a "board" with its own host name (its own UTS namespace), CPU
//! (`taskset`) and a niceness ahead of the machine's other work, and fleetctl.
//!
//! - `board-torch` is a `fleetcal-agent` built with the torch engine (`FLEETCAL_TORCH_AGENT`),
//!   so the `compare` campaigns run NumPy and PyTorch on it; `board-steady` and `board-slow`
//!   are this build's agent (NumPy only), siblings of one another;
//! - several repeated campaigns land; then `board-slow` is made slower for real: its agent is
//!   throttled to a tenth of the CPU time (stopped and continued every few milliseconds, as a
//!   CPU quota does; its recorded environment does not change: no new baseline period). The
//!   coordinator suspects the drop, starts a one-board confirmation run by itself, and opens
//!   the alert once that run reproduces the drop;
//! - every report (compare, boards, drift, anomalies, roofline) names the right boards, ratios
//!   and the alert, checked by content in every format (table, json, csv, html), over fleetctl
//!   and over HTTP; `alerts ack` and `alerts dismiss` change the alert's state.
//!
//! Without `FLEETCAL_TORCH_AGENT` the test prints a loud SKIP, unless
//! `FLEETCAL_REQUIRE_TORCH=1` (set by `scripts/test`), which makes that a failure. Host names
//! need root (CI runs the tests as root); without it the test fails saying so, unless
//! `FLEETCAL_SKIP_ROOT_TESTS=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::fleet::agent::{Agent, Board};
use crate::fleet::common::{ctl_json, serve_with, wait_for, wait_online};
use crate::fleet::{all_logs, export, wait_campaign};
use crate::support::{fleetctl, PLAIN};

const TEST: &str = "reports::reports_name_the_boards_ratios_and_the_confirmed_drift_alert";

/// One campaign: small, both frameworks where the board has both, one run at a time (the
/// boards share two CPUs; a board's figures must not depend on another board's run). One
/// GEMM trial at 1024 takes tens of milliseconds, several scheduler slices, so a busy loop on
/// the same CPU really halves it (a trial shorter than a slice would often run alone).
const CAMPAIGN: [&str; 17] = [
    "--quick",
    "--operations",
    "gemm,stream_triad",
    "--precisions",
    "fp32",
    "--sizes",
    "1024",
    "--stream-mib",
    "1",
    "--trials",
    "5",
    "--warmup",
    "1",
    "--framework",
    "compare",
    "--concurrency",
    "1",
];

/// Campaigns before the slowdown: the drift baseline, as many nights as the coordinator is
/// told to need (`--drift-min-baseline`). Five is the fewest with which two low nights (the
/// slowed campaign and the confirmation run) are significant (Mann–Whitney, p = 1/21).
const BASELINE_CAMPAIGNS: usize = 5;

/// The torch agent, or `None` after a loud SKIP.
fn torch_agent() -> Option<PathBuf> {
    match std::env::var_os("FLEETCAL_TORCH_AGENT") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "FLEETCAL_TORCH_AGENT={} is not a file",
                p.display()
            );
            Some(p)
        }
        None if std::env::var("FLEETCAL_REQUIRE_TORCH").is_ok_and(|v| v == "1") => panic!(
            "{TEST}: FLEETCAL_REQUIRE_TORCH=1 but FLEETCAL_TORCH_AGENT is not set (build \
             fleetcal-agent with --features torch and point it at the binary; scripts/test does)"
        ),
        None => {
            eprintln!(
                "\n*** SKIP {TEST}: FLEETCAL_TORCH_AGENT is not set (a fleetcal-agent built \
                 with --features torch; scripts/test builds it and sets it) ***\n"
            );
            None
        }
    }
}

/// Whether this process may give an agent its own host name (`unshare --uts` needs root);
/// without it the test fails saying so, unless FLEETCAL_SKIP_ROOT_TESTS=1 (then a SKIP line).
fn may_set_hostnames() -> bool {
    let out = Command::new("unshare")
        .args(["--uts", "sh", "-c", "hostname board-probe"])
        .output();
    let failed = match &out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => e.to_string(),
    };
    if std::env::var("FLEETCAL_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1") {
        eprintln!(
            "\n*** SKIP {TEST}: cannot give agents host names ({failed}); \
             FLEETCAL_SKIP_ROOT_TESTS=1 ***\n"
        );
        return false;
    }
    panic!(
        "{TEST} gives each agent its own host name in a UTS namespace and needs root: \
         unshare failed: {failed} (run as root, or set FLEETCAL_SKIP_ROOT_TESTS=1 to skip it)"
    );
}

/// The CPUs this process may use (`Cpus_allowed_list`).
fn allowed_cpus() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(lo.parse::<u32>().unwrap()..=hi.parse::<u32>().unwrap());
    }
    cpus
}

/// Pins this test's thread to `shared_cpu`, so that what it starts without a CPU of its own
/// (the coordinator, fleetctl) runs there too, never on `slow_cpu`: board-slow's agent
/// measures alone on its CPU. (The coordinator's drift checks after each upload, in a debug
/// build, ran beside board-slow's next run: its baseline nights' trial CVs read 10-34 % and
/// their noise floors 6-191 %, where the same calibration alone on the CPU reads 0.7 %, and
/// the drift test rightly saw no drop beyond that noise.)
fn keep_off(slow_cpu: u32, shared_cpu: u32) {
    // `/proc/thread-self` is this thread: `taskset -p` on its id sets this thread's affinity
    // alone (the test harness's other threads keep theirs), and children inherit it.
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .expect("/proc/thread-self");
    let out = Command::new("taskset")
        .args(["-p", "-c", &shared_cpu.to_string(), &tid])
        .output()
        .expect("taskset");
    assert!(
        out.status.success(),
        "taskset -p -c {shared_cpu} {tid} (keeping the test off CPU {slow_cpu}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The niceness of the boards' agents: ahead of whatever else the test machine runs (other
/// builds and tests), so they measure as dedicated boards do.
const NICE: i32 = -20;

/// Slows one board for real, as a CPU quota throttles a cgroup: its agent process is stopped
/// for 18 ms of every 20 ms (SIGSTOP/SIGCONT from a small Python loop at the boards'
/// niceness), so a GEMM trial of tens of milliseconds takes about ten times as long: a drop
/// of ~90 %, beyond the drift test's noise threshold on any board (at most 50 %,
/// `DriftParams::max_threshold_pct`; the test machines' nights swing by up to 45 %). The loop
/// runs on the other CPU: on the agent's own, its wake-up waited for the agent's time slice
/// (a few ms), and the agent ran a third of the time, not a tenth (drops of 67-81 %). Unlike
/// a cgroup quota it is not part of the board's recorded environment, so it is a drop of the
/// board's figures, not a new baseline period; unlike a busy loop it takes no CPU that the
/// other boards would miss (they are idle while board-slow runs). Stopped (and the agent
/// continued) on drop.
struct Throttle(Child, u32);

impl Throttle {
    const LOOP: &str = "import os, signal, sys, time\n\
        pid = int(sys.argv[1])\n\
        while True:\n\
        \x20   os.kill(pid, signal.SIGSTOP)\n\
        \x20   time.sleep(0.018)\n\
        \x20   os.kill(pid, signal.SIGCONT)\n\
        \x20   time.sleep(0.002)\n";

    /// Throttles process `pid`, the loop pinned to `cpu` (not the board's own).
    fn start(pid: u32, cpu: u32) -> Throttle {
        let child = Command::new("taskset")
            .args(["-c", &cpu.to_string(), "nice", "-n", &NICE.to_string()])
            .args(["python3", "-c", Self::LOOP])
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 for the throttle");
        let throttle = Throttle(child, pid);
        // It holds: the agent is seen stopped.
        let state = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().map(|r| r.trim().starts_with('T')))
                .unwrap_or(false)
        };
        wait_for("the throttled agent seen stopped", String::new, || {
            state().then_some(())
        });
        throttle
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = Command::new("kill")
            .args(["-CONT", &self.1.to_string()])
            .status();
    }
}

/// Starts one campaign over the boards `selection` names (`["--all"]`, `["--select", k=v]`)
/// and follows it to its end; its id.
fn campaign(url: &str, selection: &[&str], runs: u64, logs: &dyn Fn() -> String) -> String {
    let args: Vec<&str> = ["campaign", "start", "--json"]
        .into_iter()
        .chain(selection.iter().copied())
        .chain(CAMPAIGN)
        .collect();
    let id = ctl_json(url, &args)["id"]
        .as_str()
        .expect("campaign id")
        .to_string();
    wait_campaign(url, &id, runs, logs);
    id
}

/// The alerts fleetctl lists in these states (`--all` when empty).
fn alerts(url: &str, states: &str) -> Vec<Value> {
    let args: Vec<&str> = if states.is_empty() {
        vec!["alerts", "list", "--all", "--json"]
    } else {
        vec!["alerts", "list", "--state", states, "--json"]
    };
    ctl_json(url, &args).as_array().unwrap().clone()
}

#[test]
fn reports_name_the_boards_ratios_and_the_confirmed_drift_alert() {
    let Some(torch_exe) = torch_agent() else {
        return;
    };
    if !may_set_hostnames() {
        return;
    }
    let cpus = allowed_cpus();
    assert!(cpus.len() >= 2, "{TEST} needs two CPUs, has {cpus:?}");
    let (slow_cpu, shared_cpu) = (cpus[0], cpus[1]);
    keep_off(slow_cpu, shared_cpu);

    let dir = tempfile::tempdir().unwrap();
    let baseline = BASELINE_CAMPAIGNS.to_string();
    let coordinator = serve_with(
        dir.path(),
        "127.0.0.1:0",
        // Plain text on purpose: the web pages are read without a client certificate.
        &[
            "--drift-min-baseline",
            &baseline,
            "--http",
            "127.0.0.1:0",
            PLAIN,
        ],
    );
    let http = format!(
        "http://{}",
        coordinator.http.as_deref().expect("the http address")
    );
    let url = coordinator.url();
    let board = |name: &str, cpu: u32, exe: Option<PathBuf>| Board {
        exe,
        hostname: Some(name.to_string()),
        cpus: Some(cpu.to_string()),
        nice: Some(NICE),
    };
    let agents = [
        Agent::start_board(
            board("board-torch", shared_cpu, Some(torch_exe)),
            &url,
            &["--labels", "site=lab,role=torch,board=torch"],
        ),
        Agent::start_board(
            board("board-steady", shared_cpu, None),
            &url,
            &["--labels", "site=lab,role=cpu,board=steady"],
        ),
        Agent::start_board(
            board("board-slow", slow_cpu, None),
            &url,
            &["--labels", "site=lab,role=cpu,board=slow"],
        ),
    ];
    let logs = || all_logs(&agents, coordinator.log_text());
    wait_online(&url, 3, logs);
    let ids: BTreeMap<String, String> = ctl_json(&url, &["agents", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["hostname"].as_str().unwrap().to_string(),
                a["agent_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ids.keys().collect::<Vec<_>>(),
        ["board-slow", "board-steady", "board-torch"],
        "each agent reports its own host name"
    );

    // The baseline: numpy and pytorch on board-torch, numpy on the two others.
    let mut campaigns = Vec::new();
    for _ in 0..BASELINE_CAMPAIGNS {
        campaigns.push(campaign(&url, &["--all"], 4, &logs));
    }
    assert!(alerts(&url, "").is_empty(), "no alert on a steady fleet");

    // board-slow runs a tenth of the time from here on, and measures alone: its
    // confirmation run starts while the campaign that suspected the drop may still be running,
    // and a run of another board at that time (even on the other CPU: the two vCPUs of a
    // test machine can be one core's two threads) lowers that board's figures too (seen in
    // CI: board-steady -31 %, confirmed, while board-slow's confirmation ran beside it).
    let throttle = Throttle::start(agents[2].pid(), shared_cpu);
    campaign(&url, &["--select", "board=slow"], 1, &logs);
    // On failure: what the drift test saw of board-slow (its nights, noise threshold,
    // finding) and every alert, before the logs.
    let slow_series = || {
        let out = fleetctl(&url, &["report", "drift", "--format", "json"]);
        let model: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let series: Vec<Value> = model["series"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["hostname"] == "board-slow")
            .map(|s| {
                // Each night: its value, trial CV and noise floor (the threshold's inputs).
                let nights: Vec<Value> = s["points"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let floor = model["runs"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|r| r["run_id"] == p["run_id"])
                            .map(|r| r["noise_floor_pct"].clone());
                        serde_json::json!([p["value"], p["cv_pct"], floor])
                    })
                    .collect();
                serde_json::json!({"figure": s["figure"],
                    "nights [value, cv %, noise floor %]": nights,
                    "threshold_pct": s["threshold_pct"], "finding": s["finding"]})
            })
            .collect();
        Value::Array(series)
    };
    let drift_seen = || {
        format!(
            "board-slow's drift: {}\nalerts: {:?}\n{}",
            slow_series(),
            alerts(&url, ""),
            logs()
        )
    };
    let alert = wait_for("the confirmed drift alert", drift_seen, || {
        alerts(&url, "open").into_iter().next()
    });
    drop(throttle);
    // Shown with --nocapture: how far the drop was beyond the board's noise.
    eprintln!("board-slow's drift at the alert: {}", slow_series());
    assert_eq!(alert["agent_id"], ids["board-slow"].as_str(), "{alert}");
    assert_eq!(alert["hostname"], "board-slow", "{alert}");
    assert_eq!(alert["framework"], "numpy", "{alert}");
    assert_eq!(alert["figure"], "gemm_peak fp32", "{alert}");
    let change = alert["change_pct"].as_f64().unwrap();
    assert!(
        change < -30.0,
        "a tenth of the CPU is a large drop: {alert}"
    );
    let confirm = alert["confirm_campaign_id"].as_str().expect("confirmation");
    let c = ctl_json(&url, &["campaign", "status", confirm, "--json"]);
    assert_eq!(
        (&c["total_runs"], &c["run_counts"]["succeeded"]),
        (&1.into(), &1.into()),
        "one run on the one board: {c}"
    );
    let every = alerts(&url, "");
    assert_eq!(every.len(), 1, "one alert, raised once: {every:?}");

    let alert_id = alert["id"].as_str().unwrap().to_string();
    let sources = [Source::Fleetctl(&url), Source::Http(&http)];
    check_compare(&sources, &url, &ids, &campaigns, dir.path());
    check_boards(&sources, &ids);
    check_drift(&sources, &ids, &alert_id);
    check_anomalies(&sources, &ids);
    check_roofline(&sources, &ids);
    check_output_file(&url, dir.path());

    check_alert_actions(&url, &alert_id);
}

/// Where a report is read from: fleetctl (gRPC, drawn locally) or the web side.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// `fleetctl --coordinator URL report ...`.
    Fleetctl(&'a str),
    /// `GET HTTP/reports/KIND?format=...`.
    Http(&'a str),
}

/// Every format of one report from one source: (json model, table or None over HTTP, csv,
/// html).
struct Drawn {
    json: Value,
    table: Option<String>,
    csv: String,
    html: String,
}

fn http_get(url: &str) -> String {
    let mut answer = ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(answer.status(), 200, "GET {url}");
    answer.body_mut().read_to_string().unwrap()
}

fn draw(source: Source, kind: &str) -> Drawn {
    match source {
        Source::Fleetctl(url) => {
            let text = |format: &str| {
                let out = fleetctl(url, &["report", kind, "--format", format]);
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(
                    out.status.success(),
                    "fleetctl report {kind} --format {format}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                stdout
            };
            let table = text("table");
            for line in table.lines() {
                assert!(
                    line.chars().count() <= 100,
                    "{kind} table over 100 columns: {line}"
                );
            }
            Drawn {
                json: serde_json::from_str(&text("json")).unwrap(),
                table: Some(table),
                csv: text("csv"),
                html: text("html"),
            }
        }
        Source::Http(base) => {
            let page = format!("{base}/reports/{kind}");
            Drawn {
                json: serde_json::from_str(&http_get(&format!("{page}?format=json"))).unwrap(),
                table: None,
                csv: http_get(&format!("{page}?format=csv")),
                html: http_get(&page),
            }
        }
    }
}

/// Every format names each of `needles` (host names, run ids, alert ids, numbers as drawn);
/// the pages are self-contained with their plots.
fn assert_names(d: &Drawn, kind: &str, table: &[String], csv: &[String], html: &[String]) {
    if let Some(t) = &d.table {
        for n in table {
            assert!(t.contains(n.as_str()), "{kind} table lacks {n}:\n{t}");
        }
    }
    for n in csv {
        assert!(
            d.csv.contains(n.as_str()),
            "{kind} csv lacks {n}:\n{}",
            d.csv
        );
    }
    for n in html {
        assert!(d.html.contains(n.as_str()), "{kind} html lacks {n}");
    }
    assert!(d.html.contains("<svg"), "{kind} html has no plot");
    assert!(!d.html.contains("<script"), "{kind} html runs no script");
}

/// The model without its computation time (two sources computed it at different moments).
fn timeless(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("generated_at");
    }
    v
}

/// Both sources draw the same model.
fn drawn_by_all(sources: &[Source], kind: &str) -> Vec<Drawn> {
    let drawn: Vec<Drawn> = sources.iter().map(|s| draw(*s, kind)).collect();
    for d in &drawn[1..] {
        assert_eq!(
            timeless(d.json.clone()),
            timeless(drawn[0].json.clone()),
            "{kind}: fleetctl and HTTP disagree"
        );
    }
    drawn
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The best GFLOPS of gemm fp32 in a stored result file.
fn gemm_best(text: &str) -> f64 {
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "gemm" && r["precision"] == "fp32")
        .map(|r| num(&r["gops"]["best"]))
        .expect("a gemm fp32 record")
}

/// compare: board-torch's NumPy and PyTorch figures of the latest campaign, their ratio as
/// the stored results give it, and no pair from a NumPy-only board.
fn check_compare(
    sources: &[Source],
    url: &str,
    ids: &BTreeMap<String, String>,
    campaigns: &[String],
    dir: &Path,
) {
    let drawn = drawn_by_all(sources, "compare");
    let model = &drawn[0].json;
    let row = model["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "gemm" && r["precision"] == "fp32")
        .unwrap_or_else(|| panic!("no gemm fp32 row: {model}"));
    let pairs = row["boards"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "board-torch's latest pair only: {row}");
    // Each board's campaign and runs are said once, in the report's `pairs`.
    let runs = model["pairs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "board-torch's pair only: {}", model["pairs"]);
    let runs = &runs[0];
    assert_eq!(runs["hostname"], "board-torch", "{runs}");
    assert_eq!(
        runs["campaign_id"].as_str(),
        campaigns.last().map(String::as_str),
        "of the latest campaign: {runs}"
    );
    let mut needles = vec!["board-torch".to_string()];
    let csv = vec![
        runs["numpy_run_id"].as_str().unwrap().to_string(),
        runs["pytorch_run_id"].as_str().unwrap().to_string(),
    ];
    for p in pairs {
        assert_eq!(p["agent_id"], ids["board-torch"].as_str(), "{p}");
        assert_eq!(p["agent_id"], runs["agent_id"], "{p}");
        let ratio = num(&p["pytorch_best"]) / num(&p["numpy_best"]);
        assert!((num(&p["ratio"]) - ratio).abs() < 1e-9 * ratio, "{p}");
    }
    // The figures are the stored results' own, of one campaign.
    let p = &pairs[0];
    let files = export(url, runs["campaign_id"].as_str().unwrap(), dir, "fleetcal");
    let of = |framework: &str| {
        files
            .iter()
            .find(|(_, t)| {
                let d: Value = serde_json::from_str(t).unwrap();
                d["metadata"]["framework"] == framework
                    && d["metadata"]["host"]["hostname"] == "board-torch"
            })
            .map(|(_, t)| gemm_best(t))
            .unwrap_or_else(|| panic!("no {framework} result of board-torch"))
    };
    assert_eq!(num(&p["numpy_best"]), of("numpy"), "{p}");
    assert_eq!(num(&p["pytorch_best"]), of("pytorch"), "{p}");
    needles.push(fleetcal_coordinator::render::num(num(&row["ratio_median"])));
    for d in &drawn {
        assert_names(d, "compare", &needles, &csv, &needles[..1]);
    }
}

/// boards: all three boards, board-slow (throttled in its latest result) below its group's
/// median and below board-steady, its sibling.
fn check_boards(sources: &[Source], ids: &BTreeMap<String, String>) {
    let drawn = drawn_by_all(sources, "boards");
    let rows = drawn[0].json["rows"].as_array().unwrap().clone();
    let gemm = |host: &str| {
        rows.iter()
            .find(|r| {
                r["hostname"] == host
                    && r["figure"] == "gemm_peak fp32"
                    && r["framework"] == "numpy"
            })
            .unwrap_or_else(|| panic!("no gemm_peak fp32 row of {host}: {rows:?}"))
            .clone()
    };
    let (slow, steady) = (gemm("board-slow"), gemm("board-steady"));
    assert_eq!(slow["agent_id"], ids["board-slow"].as_str());
    assert_eq!(
        slow["group_key"], steady["group_key"],
        "siblings: {slow} {steady}"
    );
    assert!(num(&slow["vs_group_pct"]) < 0.0, "{slow}");
    assert!(
        num(&slow["value"]) < num(&steady["value"]),
        "{slow} {steady}"
    );
    let hosts: Vec<String> = ids.keys().cloned().collect();
    let runs = vec![
        slow["run_id"].as_str().unwrap().to_string(),
        steady["run_id"].as_str().unwrap().to_string(),
    ];
    for d in &drawn {
        assert_names(d, "boards", &hosts, &runs, &hosts);
    }
}

/// drift: board-slow's numpy GEMM series carries the drop and the alert.
fn check_drift(sources: &[Source], ids: &BTreeMap<String, String>, alert_id: &str) {
    let drawn = drawn_by_all(sources, "drift");
    let model = &drawn[0].json;
    let series = model["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["agent_id"] == ids["board-slow"].as_str()
                && s["framework"] == "numpy"
                && s["figure"] == "gemm_peak fp32"
        })
        .unwrap_or_else(|| panic!("no series of board-slow: {model}"));
    assert!(
        series["points"].as_array().unwrap().len() > BASELINE_CAMPAIGNS,
        "{series}"
    );
    assert!(
        model["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == alert_id && a["hostname"] == "board-slow"),
        "{model}"
    );
    let hosts = vec!["board-slow".to_string()];
    for d in &drawn {
        assert_names(d, "drift", &hosts, &[alert_id.to_string()], &hosts);
    }
}

/// anomalies: whatever the runs showed (noisy figures, the throttled board), each item names
/// one of the boards by host name and id.
fn check_anomalies(sources: &[Source], ids: &BTreeMap<String, String>) {
    let drawn = drawn_by_all(sources, "anomalies");
    let items = drawn[0].json["items"].as_array().unwrap().clone();
    let mut hosts = Vec::new();
    for it in &items {
        let host = it["hostname"].as_str().unwrap().to_string();
        assert_eq!(
            ids.get(&host).map(String::as_str),
            it["agent_id"].as_str(),
            "{it}"
        );
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    for d in &drawn {
        assert_names(d, "anomalies", &hosts, &hosts, &hosts);
    }
}

/// roofline: every group has a compute roof at fp32 at least as high as each of its boards'
/// GEMM points, and the points name the boards.
fn check_roofline(sources: &[Source], ids: &BTreeMap<String, String>) {
    let drawn = drawn_by_all(sources, "roofline");
    let mut hosts = std::collections::BTreeSet::new();
    for g in drawn[0].json["rooflines"].as_array().unwrap() {
        let roof = g["compute"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["precision"] == "fp32")
            .unwrap_or_else(|| panic!("no fp32 roof: {g}"));
        for p in g["points"].as_array().unwrap() {
            hosts.insert(p["hostname"].as_str().unwrap().to_string());
            if p["precision"] == "fp32" {
                assert!(
                    num(&p["gops"]) <= num(&roof["best_gops"]) * (1.0 + 1e-9),
                    "{g}"
                );
            }
        }
    }
    let all: Vec<String> = ids.keys().cloned().collect();
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        all,
        "every board has points"
    );
    for d in &drawn {
        assert_names(d, "roofline", &all, &all, &all);
    }
}

/// `--output FILE` writes the report there, the same as standard output.
fn check_output_file(url: &str, dir: &Path) {
    let path = dir.join("boards.csv");
    let arg = path.display().to_string();
    let out = fleetctl(
        url,
        &["report", "boards", "--format", "csv", "--output", &arg],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("board-slow"), "{written}");
}

/// `alerts ack` (by the 8-character prefix the table shows) and `alerts dismiss` (by the full
/// id) move the alert; an unknown id is NOT_FOUND naming it.
fn check_alert_actions(url: &str, id: &str) {
    let table = fleetctl(url, &["alerts", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    let short: String = id.chars().take(8).collect();
    assert!(table.contains(&short) && !table.contains(id), "{table}");
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    let acked = ctl_json(url, &["alerts", "ack", &short, "--note", "on it", "--json"]);
    assert_eq!(acked["id"], id, "{acked}");
    assert_eq!(acked["state"], "acknowledged", "{acked}");
    assert!(
        acked["message"].as_str().unwrap().contains("on it"),
        "{acked}"
    );
    let again = fleetctl(url, &["alerts", "ack", id]);
    assert_eq!(again.status.code(), Some(4), "acknowledged twice");
    assert_eq!(alerts(url, "acknowledged").len(), 1);
    let unknown = "00000000-0000-0000-0000-000000000000";
    let out = fleetctl(url, &["alerts", "dismiss", unknown]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("no alert '{unknown}'")), "{err}");
    let dismissed = ctl_json(url, &["alerts", "dismiss", id, "--json"]);
    assert_eq!(dismissed["state"], "dismissed", "{dismissed}");
    assert!(alerts(url, "open,acknowledged").is_empty());
}
