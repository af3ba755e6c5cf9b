//! The fleet end to end: the real `fleetcal-coordinator`, real `fleetcal-agent run`
//! processes calibrating this host on tiny sizes, and `fleetctl`.
//!
//! - a campaign over three differently labelled agents with different presets succeeds and
//!   exports one valid file per board in both formats;
//! - a coordinator killed mid-campaign and restarted on the same port and database finishes it;
//! - a result finished while the coordinator is unreachable waits in the spool, survives an
//!   agent restart, and is stored exactly once when the coordinator is back;
//! - a run the agent cannot do (its presets lack the planned one) ends failed with the reason;
//! - a campaign's `--warmup`/`--trials` reach the board: the stored result says how many ran;
//! - a run past its `--timeout` is cancelled on the board within moments (not after the whole
//!   calibration), and the next campaign's run succeeds on the same board;
//! - during a silent partition (connections open, nothing forwarded) the agent goes offline
//!   within the offline window and no run starts on it until the network is back.
//!
//! Runs are pinned between "plan received" and "result acknowledged" by holding the agents'
//! upstream bytes in a TCP proxy, not by timing.

pub(crate) mod agent;
pub(crate) mod common;
pub(crate) mod proxy;
pub(crate) mod spool_full;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use fleetcal_proto::origin::{self, OriginProfile};
use fleetcal_proto::result::Status;
use fleetcal_proto::schema::{ORIGIN_SCHEMA, RESULT_SCHEMA};
use fleetcal_proto::CalibrationResult;
use serde_json::Value;

use self::agent::Agent;
use self::common::{ctl_json, free_port, online_agents, serve, serve_with, wait_for, wait_online};
use self::proxy::Proxy;
use crate::support::fleetctl;

/// A campaign small enough for debug builds on two cores.
const TINY: [&str; 9] = [
    "--quick",
    "--sizes",
    "16,32",
    "--stream-mib",
    "1",
    "--precisions",
    "fp64,fp32",
    "--operations",
    "dot,gemm,stream_triad",
];

fn start_campaign(url: &str) -> String {
    start_campaign_with(url, &[])
}

/// [`start_campaign`] with more `campaign start` flags.
fn start_campaign_with(url: &str, extra: &[&str]) -> String {
    let args: Vec<&str> = ["campaign", "start", "--all", "--json"]
        .into_iter()
        .chain(TINY)
        .chain(extra.iter().copied())
        .collect();
    let c = ctl_json(url, &args);
    c["id"].as_str().expect("campaign id").to_string()
}

/// Follows the campaign to its end; every run must have succeeded.
pub(crate) fn wait_campaign(url: &str, id: &str, runs: u64, logs: &dyn Fn() -> String) {
    let out = fleetctl(url, &["campaign", "status", id, "--wait", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "campaign did not succeed: {text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    let c: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["finished"], true, "{c}");
    assert_eq!(c["run_counts"]["succeeded"], runs, "{c}");
}

pub(crate) fn runs_of(url: &str, id: &str) -> Vec<Value> {
    ctl_json(url, &["runs", "--campaign", id, "--json"])
        .as_array()
        .unwrap()
        .clone()
}

fn schema_errors(schema: &str, doc: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(schema).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    v.iter_errors(doc).map(|e| e.to_string()).collect()
}

/// Exports a campaign in one format; returns file name → text.
pub(crate) fn export(url: &str, id: &str, dir: &Path, format: &str) -> BTreeMap<String, String> {
    let out_dir = dir.join(format);
    let out_arg = out_dir.display().to_string();
    let args = [
        "results",
        "export",
        "--campaign",
        id,
        "--dir",
        &out_arg,
        "--format",
        format,
    ];
    let out = fleetctl(url, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Each agent started exactly one calibration: re-sent plans (the coordinator re-sends desired
/// state on reconnect) were recognised as already run.
fn assert_one_run_each(agents: &[Agent]) {
    for a in agents {
        let log = a.log();
        assert_eq!(log.matches("run started").count(), 1, "{log}");
    }
}

pub(crate) fn all_logs(agents: &[Agent], coordinator_log: String) -> String {
    let mut s: String = agents
        .iter()
        .map(|a| format!("--- agent ---\n{}", a.log()))
        .collect();
    s.push_str("--- coordinator ---\n");
    s.push_str(&coordinator_log);
    s
}

#[test]
fn three_agents_run_a_campaign_and_every_result_exports_valid() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = serve(dir.path(), "127.0.0.1:0");
    let url = coordinator.url();
    let presets = ["auto", "i7-12700k", "ryzen-9-7950x"];
    let labels = ["site=lab,rack=1", "site=lab,rack=2", "site=edge"];
    let mut agents: Vec<Agent> = presets
        .iter()
        .zip(labels)
        .map(|(p, l)| Agent::start(&url, &["--labels", l, "--preset", p]))
        .collect();
    let logs = || all_logs(&agents, coordinator.log_text());

    let online = wait_online(&url, 3, logs);
    let preset_of: BTreeMap<String, &str> = agents
        .iter()
        .map(|a| a.agent_id().expect("agent id on disk"))
        .zip(presets)
        .collect();
    assert_eq!(online, preset_of.keys().cloned().collect::<Vec<_>>());
    let listed = ctl_json(&url, &["agents", "--json"]);
    for a in listed.as_array().unwrap() {
        let id = a["agent_id"].as_str().unwrap();
        let site = a["labels"]["site"].as_str().unwrap();
        assert_eq!(site == "edge", preset_of[id] == "ryzen-9-7950x", "{a}");
    }

    let id = start_campaign(&url);
    wait_campaign(&url, &id, 3, &logs);

    let runs = runs_of(&url, &id);
    assert_eq!(runs.len(), 3, "{runs:?}");
    let mut run_ids = BTreeSet::new();
    for r in &runs {
        let agent = r["agent_id"].as_str().unwrap();
        assert_eq!(r["state"], "succeeded", "{r}");
        assert_eq!(r["preset_id"], preset_of[agent], "{r}");
        assert_eq!(
            (&r["framework"], &r["device"]),
            (&"numpy".into(), &"cpu".into())
        );
        run_ids.insert(r["run_id"].as_str().unwrap().to_string());
    }

    let fleetcal = export(&url, &id, dir.path(), "fleetcal");
    assert_eq!(fleetcal.len(), 3, "{:?}", fleetcal.keys());
    let mut exported_runs = BTreeSet::new();
    for (name, text) in &fleetcal {
        let result = CalibrationResult::from_json(text, name).unwrap();
        assert_eq!(name, &origin::file_name(&result));
        // Uploaded packed, stored as it came, read back as the agent's own JSON.
        assert_eq!(text, &result.to_json(), "{name}");
        let doc: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            schema_errors(RESULT_SCHEMA, &doc),
            Vec::<String>::new(),
            "{name}"
        );
        assert!(!result.records.is_empty(), "{name}");
        exported_runs.insert(result.metadata.run_id.clone());
    }
    assert_eq!(exported_runs, run_ids);
    // Every agent uploaded its result in the packed form (this coordinator takes it).
    for a in &agents {
        let log = a.log();
        let uploads: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("result uploaded"))
            .collect();
        assert!(!uploads.is_empty(), "{log}");
        assert!(
            uploads.iter().all(|l| l.contains("\"packed\"")),
            "{uploads:?}"
        );
    }

    let origin_files = export(&url, &id, dir.path(), "origin");
    assert_eq!(
        origin_files.keys().collect::<Vec<_>>(),
        fleetcal.keys().collect::<Vec<_>>()
    );
    for (name, text) in &origin_files {
        let profile = OriginProfile::from_json(text, name).unwrap();
        assert!(!profile.operation_profiles.is_empty(), "{name}");
        let doc: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            schema_errors(ORIGIN_SCHEMA, &doc),
            Vec::<String>::new(),
            "{name}"
        );
    }

    // The coordinator stores a result before it acknowledges it, so the agent may still hold
    // the spooled copy for a moment after the campaign reads finished.
    wait_for("every agent to drop its acknowledged spool", logs, || {
        agents.iter().all(|a| a.spooled().is_empty()).then_some(())
    });
    assert_one_run_each(&agents);
    for a in &mut agents {
        let status = a.terminate();
        assert!(status.success(), "agent exit {status:?}\n{}", a.log());
    }
}

#[test]
fn a_coordinator_killed_mid_campaign_and_restarted_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let coordinator = serve(dir.path(), &listen);
    let proxy = Proxy::start(coordinator.addr.parse().unwrap());
    let agents: Vec<Agent> = [("site=a", "auto"), ("site=b", "i7-12700k")]
        .iter()
        .map(|(l, p)| Agent::start(&proxy.url(), &["--labels", l, "--preset", p]))
        .collect();
    let url = coordinator.url();
    let log_path = dir.path().to_path_buf();
    let logs = || all_logs(&agents, coordinator_logs(&log_path));
    let online = wait_online(&url, 2, logs);

    proxy.hold_upstream();
    let id = start_campaign(&url);
    wait_for("both results spooled, none acknowledged", logs, || {
        agents.iter().all(|a| a.spooled().len() == 1).then_some(())
    });
    let before = ctl_json(&url, &["campaign", "status", &id, "--json"]);
    assert_eq!(before["finished"], false, "{before}");

    drop(coordinator);
    proxy.cut();
    proxy.release();
    let coordinator = serve(dir.path(), &listen);
    assert_eq!(coordinator.url(), url);

    wait_campaign(&url, &id, 2, &logs);
    assert_eq!(online_agents(&url), online, "the same agents came back");
    let runs = runs_of(&url, &id);
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["state"] == "succeeded"), "{runs:?}");
    wait_for("spools drained", logs, || {
        agents.iter().all(|a| a.spooled().is_empty()).then_some(())
    });
    assert_one_run_each(&agents);
    drop(coordinator);
}

#[test]
fn a_result_finished_while_the_coordinator_is_down_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let coordinator = serve(dir.path(), &listen);
    let url = coordinator.url();
    let proxy = Proxy::start(coordinator.addr.parse().unwrap());
    let mut agents = vec![Agent::start(&proxy.url(), &["--preset", "auto"])];
    let log_path = dir.path().to_path_buf();
    let online = wait_online(&url, 1, || coordinator_logs(&log_path));

    // The proxy holds what the agent sends from here on: its plan arrives, its RUNNING report
    // and its upload do not, so the result is finished but unacknowledged when the
    // coordinator goes down.
    proxy.hold_upstream();
    let id = start_campaign(&url);
    let runs = runs_of(&url, &id);
    assert_eq!(runs.len(), 1);
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    wait_for(
        "the result in the spool",
        || agents[0].log(),
        || (agents[0].spooled() == [run_id.clone()]).then_some(()),
    );
    drop(coordinator);
    proxy.cut();
    proxy.release();

    let status = agents[0].terminate();
    assert!(
        status.success(),
        "agent exit {status:?}\n{}",
        agents[0].log()
    );
    assert_eq!(
        agents[0].spooled(),
        vec![run_id.clone()],
        "kept across the shutdown"
    );

    let coordinator = serve(dir.path(), &listen);
    agents[0].restart();
    let logs = || all_logs(&agents, coordinator.log_text());
    wait_campaign(&url, &id, 1, &logs);
    wait_for("spool drained", logs, || {
        agents[0].spooled().is_empty().then_some(())
    });
    assert_eq!(
        online_agents(&url),
        online,
        "the same agent id after the restart"
    );

    let runs = runs_of(&url, &id);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["state"], "succeeded");
    let exported = export(&url, &id, dir.path(), "fleetcal");
    assert_eq!(exported.len(), 1, "stored exactly once");
    let result = CalibrationResult::from_json(exported.values().next().unwrap(), "export").unwrap();
    assert_eq!(result.metadata.run_id, run_id);
    assert_one_run_each(&agents);
}

#[test]
fn a_silent_partition_takes_the_agent_offline_and_no_run_starts_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let coordinator = serve_with(
        dir.path(),
        &listen,
        &["--heartbeat-interval-s", "1", "--offline-after-s", "3"],
    );
    let url = coordinator.url();
    let proxy = Proxy::start(coordinator.addr.parse().unwrap());
    // Short RPC timeouts, so the agent's attempts during the partition show in its log.
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "version = 1\n[link]\nrpc_timeout_s = 1\n").unwrap();
    let config = config.display().to_string();
    let agents = vec![Agent::start(
        &proxy.url(),
        &["--preset", "auto", "--config", &config],
    )];
    let logs = || all_logs(&agents, coordinator.log_text());
    wait_online(&url, 1, logs);

    // Nothing the agent sends arrives any more, yet every connection stays open: the
    // coordinator stops hearing heartbeats (and keepalive pings) and takes the agent offline.
    proxy.hold_upstream();
    wait_online(&url, 0, logs);
    let id = start_campaign(&url);
    // The partition outlasts the campaign's start: the agent tries again after it, and fails.
    let attempts = |log: &str| log.matches("coordinator unreachable; retrying").count();
    let before = attempts(&agents[0].log());
    wait_for(
        "an attempt of the agent's to fail after the campaign started",
        logs,
        || (attempts(&agents[0].log()) > before).then_some(()),
    );
    let released_at = chrono::Utc::now();
    proxy.release();
    wait_campaign(&url, &id, 1, &logs);
    let run = &runs_of(&url, &id)[0];
    let started: chrono::DateTime<chrono::Utc> =
        run["started_at"].as_str().unwrap().parse().unwrap();
    // started_at has whole seconds.
    assert!(
        started.timestamp() >= released_at.timestamp(),
        "the run started at {started}, before the partition ended at {released_at}"
    );
    assert_one_run_each(&agents);
}

/// Every coordinator log written in `dir` (one file per start).
pub(crate) fn coordinator_logs(dir: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

#[test]
fn a_run_the_agent_cannot_do_is_reported_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = serve(dir.path(), "127.0.0.1:0");
    let url = coordinator.url();
    // The coordinator knows the preset; this agent's own presets dir does not.
    let empty = dir.path().join("no-presets");
    std::fs::create_dir_all(&empty).unwrap();
    let empty_arg = empty.display().to_string();
    let agents = vec![Agent::start(
        &url,
        &["--preset", "i7-12700k", "--presets", &empty_arg],
    )];
    let logs = || all_logs(&agents, coordinator.log_text());
    wait_online(&url, 1, logs);

    let id = start_campaign(&url);
    let status = wait_for("the campaign to end", logs, || {
        let c = ctl_json(&url, &["campaign", "status", &id, "--json"]);
        (c["finished"] == true).then_some(c)
    });
    assert_eq!(status["run_counts"]["failed"], 1, "{status}\n{}", logs());
    let runs = runs_of(&url, &id);
    assert_eq!(runs[0]["state"], "failed");
    let message = runs[0]["message"].as_str().unwrap();
    assert!(message.contains("i7-12700k"), "{message}");
    // Stored before acknowledged: the agent drops its spooled report just after.
    wait_for("the agent to drop its acknowledged report", logs, || {
        agents[0].spooled().is_empty().then_some(())
    });
    assert_one_run_each(&agents);
}

#[test]
fn a_campaigns_warmups_trials_and_cap_are_what_the_board_ran() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = serve(dir.path(), "127.0.0.1:0");
    let url = coordinator.url();
    let agents = vec![Agent::start(&url, &["--preset", "auto"])];
    let logs = || all_logs(&agents, coordinator.log_text());
    wait_online(&url, 1, logs);

    // --quick alone would be at least 6 trials and 3 warm-ups.
    // The wall-time cap is far above what the tiny campaign takes: it is carried, not hit.
    let id = start_campaign_with(
        &url,
        &["--trials", "2", "--warmup", "1", "--max-duration", "10m"],
    );
    let shown = ctl_json(&url, &["campaign", "status", &id, "--json"]);
    assert_eq!((&shown["warmup"], &shown["trials"]), (&1.into(), &2.into()));
    assert_eq!(shown["max_duration_s"], 600, "{shown}");
    wait_campaign(&url, &id, 1, &logs);

    let exported = export(&url, &id, dir.path(), "fleetcal");
    assert_eq!(exported.len(), 1);
    let (name, text) = exported.iter().next().unwrap();
    let result = CalibrationResult::from_json(text, name).unwrap();
    let settings = &result.metadata.settings;
    assert_eq!(
        (settings.warmup_runs, settings.measurement_runs),
        (1, 2),
        "{name}"
    );
    assert_eq!(settings.max_duration_s, Some(600.0), "{name}");
    // A quick campaign's per-size timeout is `calibrate --quick`'s (it was 5 s, not 2).
    assert_eq!((settings.quick, settings.timeout_s), (true, 2.0), "{name}");
    let measured: Vec<_> = result
        .records
        .iter()
        .filter(|r| r.status == Status::Measured)
        .collect();
    assert!(!measured.is_empty(), "{name}");
    // The campaign's trials are the fewest: adaptive repeats may add more, up to quick mode's
    // 20, and every trial's latency is in the result.
    for r in measured {
        assert!((2..=20).contains(&r.trials), "{r:?}");
        let samples = r.sampling.as_ref().map(|s| s.samples_ns.len());
        assert_eq!(samples, Some(r.trials as usize), "{r:?}");
    }
    let origin_files = export(&url, &id, dir.path(), "origin");
    let profile =
        OriginProfile::from_json(origin_files.values().next().unwrap(), "origin export").unwrap();
    assert_eq!(
        (
            profile.metadata.num_warmup_runs,
            profile.metadata.num_measurement_runs
        ),
        (1, 2)
    );
    wait_for("the agent to drop its acknowledged spool", logs, || {
        agents[0].spooled().is_empty().then_some(())
    });
    assert_one_run_each(&agents);
}

#[test]
fn a_run_past_its_timeout_is_cancelled_on_the_board_and_the_next_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = serve(dir.path(), "127.0.0.1:0");
    let url = coordinator.url();
    let agents = vec![Agent::start(&url, &["--preset", "auto"])];
    let logs = || all_logs(&agents, coordinator.log_text());
    wait_online(&url, 1, logs);

    // Every operation, two precisions, 1000 trials a figure, no --quick: half a minute and
    // more on this board (each operation × precision runs up to the 5 s per-size limit), far
    // past the run's 3 s timeout.
    let started = Instant::now();
    let long = ctl_json(
        &url,
        &[
            "campaign",
            "start",
            "--all",
            "--json",
            "--timeout",
            "3",
            "--trials",
            "1000",
            "--warmup",
            "0",
            "--sizes",
            "256,512",
            "--stream-mib",
            "4,8",
            "--precisions",
            "fp64,fp32",
        ],
    );
    let long = long["id"].as_str().unwrap().to_string();
    let status = wait_for("the long campaign to end", logs, || {
        let c = ctl_json(&url, &["campaign", "status", &long, "--json"]);
        (c["finished"] == true).then_some(c)
    });
    let counts = &status["run_counts"];
    let count = |state: &str| counts[state].as_u64().unwrap_or(0);
    assert_eq!(
        (count("timed_out") + count("failed"), count("succeeded")),
        (1, 0),
        "{status}\n{}",
        logs()
    );
    wait_for("the board to cancel the run", logs, || {
        agents[0]
            .log()
            .contains("run failed: cancelled: ")
            .then_some(())
    });
    let cancelled_after = started.elapsed();
    assert!(
        cancelled_after < Duration::from_secs(12),
        "cancelled only {cancelled_after:?} after the start\n{}",
        logs()
    );
    // The cancellation is spooled and reported FAILED. Whichever clock went first, the
    // coordinator's (the run is timed_out, the late report is acknowledged and changes
    // nothing) or the board's own (the run is failed with the board's reason), the run ends
    // once, with its reason, and nothing is rejected.
    wait_for("the agent to drop its acknowledged report", logs, || {
        agents[0].spooled().is_empty().then_some(())
    });
    let rejected = agents[0].spool_dir().join("rejected");
    let rejected = std::fs::read_dir(&rejected).map_or(0, |d| d.count());
    assert_eq!(rejected, 0, "{}", logs());
    let runs = runs_of(&url, &long);
    assert_eq!(runs.len(), 1);
    let message = runs[0]["message"].as_str().unwrap();
    match runs[0]["state"].as_str().unwrap() {
        "timed_out" => assert!(message.contains("no result within 3s"), "{runs:?}"),
        "failed" => assert_eq!(message, "cancelled: timeout of 3 s passed", "{runs:?}"),
        other => panic!("run ended {other}: {runs:?}"),
    }
    let again = ctl_json(&url, &["campaign", "status", &long, "--json"]);
    assert_eq!(again["run_counts"], status["run_counts"], "counted once");

    // The board is free again: a tiny campaign's run succeeds on it.
    let next_started = Instant::now();
    let next = start_campaign(&url);
    wait_campaign(&url, &next, 1, &logs);
    let next_took = next_started.elapsed();
    assert!(
        next_took < Duration::from_secs(30),
        "the next run took {next_took:?}\n{}",
        logs()
    );
    let log = agents[0].log();
    assert_eq!(log.matches("run started").count(), 2, "{log}");
    assert_eq!(log.matches("run failed: cancelled: ").count(), 1, "{log}");
    wait_for("the agent to drop its acknowledged spool", logs, || {
        agents[0].spooled().is_empty().then_some(())
    });
}
