//! Fleet reports and drift alerts end to end: the real coordinator (gRPC and `--http`), three
//! real agents on loopback, each a "board" with its own host name (its own UTS namespace) and
//! CPU (`taskset`), and fleetctl.
//!
//! - `board-torch` is a `fleetcal-agent` built with the torch engine (`FLEETCAL_TORCH_AGENT`),
//!   so the `compare` campaigns run NumPy and PyTorch on it; `board-steady` and `board-slow`
//!   are this build's agent (NumPy only), siblings of one another;
//! - several repeated campaigns land; then `board-slow` is made slower for real: a busy loop is
//!   pinned to its CPU, so it gets about half of it (its environment does not change: no new
//!   baseline period). The coordinator suspects the drop, starts a one-board confirmation run
//!   by itself, and opens the alert once that run reproduces the drop;
//! - every report (compare, boards, drift, anomalies, roofline) names the right boards, ratios
//!   and the alert, checked by content in every format (table, json, csv, html), over fleetctl
//!   and over HTTP; `alerts ack` and `alerts dismiss` change the alert's state.
//!
//! Without `FLEETCAL_TORCH_AGENT` the test prints a loud SKIP, unless
//! `FLEETCAL_REQUIRE_TORCH=1` (set by `scripts/test`), which makes that a failure. Host names
//! need root (CI runs the tests as root); without it the test fails saying so, unless
//! `FLEETCAL_SKIP_ROOT_TESTS=1`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::fleet::agent::{Agent, Board};
use crate::fleet::common::{ctl_json, serve_with, wait_for, wait_online};
use crate::fleet::{all_logs, wait_campaign};
use crate::support::fleetctl;

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

/// The niceness of the boards' agents and of the busy loop: ahead of whatever else the test
/// machine runs (other builds and tests), equal to each other, so the busy loop takes half of
/// the slowed board's CPU and the others measure as dedicated boards do.
const NICE: i32 = -20;

/// A busy loop pinned to one CPU at the boards' niceness: the board there gets about half of
/// it. Killed on drop.
struct CpuHog(Child);

impl CpuHog {
    fn pin(cpu: u32) -> CpuHog {
        let nice = NICE.to_string();
        let cpu = cpu.to_string();
        let child = Command::new("nice")
            .args([
                "-n",
                &nice,
                "taskset",
                "-c",
                &cpu,
                "sh",
                "-c",
                "while :; do :; done",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("taskset");
        CpuHog(child)
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts one campaign over every board and follows it to its end; its id.
fn campaign(url: &str, runs: u64, logs: &dyn Fn() -> String) -> String {
    let args: Vec<&str> = ["campaign", "start", "--all", "--json"]
        .into_iter()
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

    let dir = tempfile::tempdir().unwrap();
    let baseline = BASELINE_CAMPAIGNS.to_string();
    let coordinator = serve_with(
        dir.path(),
        "127.0.0.1:0",
        &["--drift-min-baseline", &baseline],
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
            &["--labels", "site=lab,role=torch"],
        ),
        Agent::start_board(
            board("board-steady", shared_cpu, None),
            &url,
            &["--labels", "site=lab,role=cpu"],
        ),
        Agent::start_board(
            board("board-slow", slow_cpu, None),
            &url,
            &["--labels", "site=lab,role=cpu"],
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
        campaigns.push(campaign(&url, 4, &logs));
    }
    assert!(alerts(&url, "").is_empty(), "no alert on a steady fleet");

    // board-slow gets about half of its CPU from here on.
    let hog = CpuHog::pin(slow_cpu);
    campaigns.push(campaign(&url, 4, &logs));
    let alert = wait_for("the confirmed drift alert", logs, || {
        alerts(&url, "open").into_iter().next()
    });
    drop(hog);
    assert_eq!(alert["agent_id"], ids["board-slow"].as_str(), "{alert}");
    assert_eq!(alert["hostname"], "board-slow", "{alert}");
    assert_eq!(alert["framework"], "numpy", "{alert}");
    assert_eq!(alert["figure"], "gemm_peak fp32", "{alert}");
    let change = alert["change_pct"].as_f64().unwrap();
    assert!(change < -20.0, "a halved CPU is a large drop: {alert}");
    let confirm = alert["confirm_campaign_id"].as_str().expect("confirmation");
    let c = ctl_json(&url, &["campaign", "status", confirm, "--json"]);
    assert_eq!(
        (&c["total_runs"], &c["run_counts"]["succeeded"]),
        (&1.into(), &1.into()),
        "one run on the one board: {c}"
    );
    let every = alerts(&url, "");
    assert_eq!(every.len(), 1, "one alert, raised once: {every:?}");

    check_alert_actions(&url, alert["id"].as_str().unwrap());
}

/// `alerts ack` and `alerts dismiss` move the alert; an unknown id is NOT_FOUND naming it.
fn check_alert_actions(url: &str, id: &str) {
    let acked = ctl_json(url, &["alerts", "ack", id, "--note", "on it", "--json"]);
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
