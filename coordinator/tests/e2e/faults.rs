//! The fault suite: real coordinator and agent processes on loopback, each scenario a fault
//! the fleet promises to survive, ending with a count of the results stored, lost and
//! duplicated, printed as one row of the table
//! `fault | scenario | stored | lost | duplicated | outcome` (`scripts/test` gathers the rows
//! under a header), and asserting the promise: every result stored exactly once or its run
//! ended failed with a reason, the campaign finished, nothing duplicated.
//!
//! - the coordinator `kill -9`ed mid-campaign (a run calibrating) and mid-upload (the result
//!   stored, its acknowledgement not yet delivered), restarted on the same database;
//! - an agent `kill -9`ed mid-run: restarted, it runs the re-sent plan again; never back, the
//!   run ends timed_out with the reason, not running;
//! - the network silent for 30 s in both directions mid-upload (a proxy that forwards nothing
//!   and closes nothing);
//! - the agent's spool on a full tmpfs and the agent `kill -9`ed while the result waits in
//!   its memory (needs root to mount; `FLEETCAL_SKIP_ROOT_TESTS=1` skips it loudly);
//! - agents whose clock is a day ahead, a day behind and at 1970 (libfaketime; skipped loudly
//!   without the `faketime` command unless `FLEETCAL_REQUIRE_FAKETIME=1`), and an agent at
//!   1970 that enrolls and works over mutual TLS (its clock floor, `daemon::clock`);
//! - a reconnect storm: 2,000 simulated agents over real gRPC with mutual TLS (a connection
//!   and a certificate each) reconnect and upload at once after a coordinator `kill -9`, with
//!   the coordinator's memory before and after.
//!
//! Counting: `stored` = runs with a stored result (what `results export` writes),
//! `duplicated` = stored results beyond one per board and framework plus exported files
//! beyond one per run id, `lost` = runs neither stored nor ended failed/timed_out with a
//! reason.

mod storm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fleetcal_proto::CalibrationResult;
use serde_json::Value;

use crate::fleet::agent::{agent_exe, Agent, Board};
use crate::fleet::common::{ctl_json, free_port, serve_with, wait_for, wait_online};
use crate::fleet::proxy::Proxy;
use crate::fleet::spool_full::FullSpool;
use crate::fleet::{all_logs, coordinator_logs, runs_of};
use crate::support::fleetctl;

/// A campaign that takes well under a second on a board.
const TINY: [&str; 11] = [
    "--quick",
    "--sizes",
    "16",
    "--stream-mib",
    "1",
    "--operations",
    "gemm",
    "--precisions",
    "fp32",
    "--warmup",
    "0",
];

/// A campaign that calibrates for a few seconds (two sizes, each up to quick mode's 2 s limit
/// with 1000 trials asked for): long enough to be killed mid-run.
const LONG: [&str; 13] = [
    "--quick",
    "--sizes",
    "256,384",
    "--stream-mib",
    "1",
    "--operations",
    "gemm",
    "--precisions",
    "fp64",
    "--warmup",
    "0",
    "--trials",
    "1000",
];

/// Starts a campaign over every agent with `flags`; its id.
fn campaign(url: &str, flags: &[&str]) -> String {
    let mut args = vec!["campaign", "start", "--all", "--json"];
    args.extend(flags);
    ctl_json(url, &args)["id"]
        .as_str()
        .expect("campaign id")
        .to_string()
}

/// Waits for the campaign to finish (whatever the outcome); its status.
fn finished(url: &str, id: &str, logs: &dyn Fn() -> String) -> Value {
    wait_for("the campaign to finish", logs, || {
        let c = ctl_json(url, &["campaign", "status", id, "--json"]);
        (c["finished"] == true).then_some(c)
    })
}

/// Waits until `agent`'s log contains `text`.
fn logged(agent: &Agent, text: &str, logs: &dyn Fn() -> String) {
    wait_for(&format!("the agent to log {text:?}"), logs, || {
        agent.log().contains(text).then_some(())
    });
}

/// What one scenario left behind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    /// Runs with a stored result.
    stored: usize,
    /// Runs neither stored nor ended with a reason.
    lost: usize,
    /// Results stored more than once (per run id, or per board and framework).
    duplicated: usize,
    /// Runs that ended failed, timed_out or agent_offline with a reason: (state, reason).
    failed: Vec<(String, String)>,
}

/// Counts the campaign's runs (those of `agents` only, when given) against its stored
/// results, read back through fleetctl (`runs --json` and `results export`).
fn tally(url: &str, campaign: &str, dir: &Path, agents: Option<&[String]>) -> Tally {
    tally_as(url, &[], campaign, dir, agents)
}

/// [`tally`] with fleetctl's TLS `flags` (a coordinator serving mutual TLS).
fn tally_as(
    url: &str,
    flags: &[String],
    campaign: &str,
    dir: &Path,
    agents: Option<&[String]>,
) -> Tally {
    let with_flags = |args: &[&str]| -> Vec<String> {
        flags
            .iter()
            .cloned()
            .chain(args.iter().map(|a| a.to_string()))
            .collect()
    };
    let mine = |r: &Value| agents.is_none_or(|a| a.iter().any(|id| r["agent_id"] == id.as_str()));
    let runs_args = with_flags(&["runs", "--campaign", campaign, "--json"]);
    let runs_args: Vec<&str> = runs_args.iter().map(String::as_str).collect();
    let runs: Vec<Value> = ctl_json(url, &runs_args)
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(mine)
        .collect();
    let out = dir.join(format!("export-{}", uuid::Uuid::new_v4().simple()));
    let out_arg = out.display().to_string();
    let export = with_flags(&[
        "results",
        "export",
        "--campaign",
        campaign,
        "--dir",
        &out_arg,
    ]);
    let export: Vec<&str> = export.iter().map(String::as_str).collect();
    let o = fleetctl(url, &export);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files_per_run: BTreeMap<String, usize> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(&out) {
        for e in entries {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            let r = CalibrationResult::from_json(&text, &p.display().to_string())
                .expect("an exported result parses");
            *files_per_run.entry(r.metadata.run_id).or_default() += 1;
        }
    }
    let mut t = Tally::default();
    let mut per_board: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in &runs {
        let run_id = r["run_id"].as_str().unwrap_or_default();
        let files = files_per_run.get(run_id).copied().unwrap_or(0);
        let state = r["state"].as_str().unwrap_or_default();
        let message = r["message"].as_str().unwrap_or_default();
        t.duplicated += files.saturating_sub(1);
        if files > 0 && state == "succeeded" {
            t.stored += 1;
            let board = (
                r["agent_id"].as_str().unwrap_or_default().to_string(),
                r["framework"].as_str().unwrap_or_default().to_string(),
            );
            *per_board.entry(board).or_default() += 1;
        } else if ["failed", "timed_out", "agent_offline"].contains(&state)
            && !message.trim().is_empty()
        {
            t.failed.push((state.to_string(), message.to_string()));
        } else {
            t.lost += 1;
        }
    }
    t.duplicated += per_board.values().map(|n| n - 1).sum::<usize>();
    t
}

/// Prints the scenario's row of the fault table.
fn row(scenario: &str, t: &Tally, outcome: &str) {
    println!(
        "fault | {scenario:<66} | {:>6} | {:>4} | {:>10} | {outcome}",
        t.stored, t.lost, t.duplicated
    );
}

/// Prints the row and asserts the promise: `stored` results stored once each, nothing lost
/// or duplicated.
fn stored_once(scenario: &str, t: &Tally, stored: usize, logs: &dyn Fn() -> String) {
    let outcome = if t.stored == stored && t.lost == 0 && t.duplicated == 0 && t.failed.is_empty() {
        "ok: every result stored exactly once".to_string()
    } else {
        format!("FAILED: {t:?}")
    };
    row(scenario, t, &outcome);
    assert_eq!(
        (t.stored, t.lost, t.duplicated, t.failed.len()),
        (stored, 0, 0, 0),
        "{scenario}: {t:?}\n{}",
        logs()
    );
}

/// The coordinator of a scenario on a fixed port (so a restart is found at the same
/// address), its log directory, and a database in `dir`.
struct Site {
    dir: tempfile::TempDir,
    listen: String,
    extra: Vec<String>,
}

impl Site {
    fn new(extra: &[&str]) -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
            listen: format!("127.0.0.1:{}", free_port()),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn start(&self) -> crate::support::CoordinatorProcess {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        serve_with(self.dir.path(), &self.listen, &extra)
    }

    /// `https://` (the harness serves mutual TLS) unless the site serves plain text.
    fn url(&self) -> String {
        let plain = self.extra.iter().any(|f| f == crate::support::PLAIN);
        let scheme = if plain { "http" } else { "https" };
        format!("{scheme}://{}", self.listen)
    }

    fn logs(&self) -> String {
        coordinator_logs(self.dir.path())
    }
}

#[test]
fn coordinator_kill_9_mid_campaign() {
    let site = Site::new(&[]);
    let coordinator = site.start();
    let url = site.url();
    let agents = vec![Agent::start(&url, &["--preset", "auto"])];
    let logs = || all_logs(&agents, site.logs());
    wait_online(&url, 1, logs);

    let id = campaign(&url, &LONG);
    logged(&agents[0], "run started", &logs);
    drop(coordinator); // SIGKILL while the board calibrates
    let coordinator = site.start();
    finished(&url, &id, &logs);
    let t = tally(&url, &id, site.dir.path(), None);
    stored_once(
        "coordinator kill -9 mid-campaign (a run calibrating)",
        &t,
        1,
        &logs,
    );
    assert_eq!(agents[0].log().matches("run started").count(), 1);
    drop(coordinator);
}

#[test]
fn coordinator_kill_9_mid_upload() {
    let site = Site::new(&[]);
    let coordinator = site.start();
    let url = site.url();
    let proxy = Proxy::start(coordinator.addr.parse().unwrap());
    let agents = vec![Agent::start(&proxy.url(), &["--preset", "auto"])];
    let logs = || all_logs(&agents, site.logs());
    wait_online(&url, 1, logs);

    // The result is finished and spooled while its upload waits in the proxy; then the
    // upload goes through and the acknowledgement is what waits: the coordinator has stored
    // the result and dies before the agent hears so.
    proxy.hold_upstream();
    let id = campaign(&url, &TINY);
    logged(&agents[0], "result spooled at", &logs);
    proxy.hold_downstream();
    proxy.release_upstream();
    wait_for("the result stored", logs, || {
        (runs_of(&url, &id)[0]["state"] == "succeeded").then_some(())
    });
    assert!(
        !agents[0].log().contains("result uploaded"),
        "the acknowledgement got through: {}",
        logs()
    );
    drop(coordinator); // SIGKILL with the acknowledgement undelivered
    proxy.cut();
    proxy.release();
    let coordinator = site.start();
    // The agent sends the spooled result again; the coordinator knows it.
    logged(&agents[0], "result uploaded (already stored)", &logs);
    wait_for("the spool drained", logs, || {
        agents[0].spooled().is_empty().then_some(())
    });
    let t = tally(&url, &id, site.dir.path(), None);
    stored_once(
        "coordinator kill -9 mid-upload (stored, ack not delivered)",
        &t,
        1,
        &logs,
    );
    drop(coordinator);
}

#[test]
fn agent_kill_9_mid_run_and_restarted() {
    let site = Site::new(&[]);
    let coordinator = site.start();
    let url = site.url();
    let mut agents = vec![Agent::start(&url, &["--preset", "auto"])];
    wait_online(&url, 1, || site.logs());

    let id = campaign(&url, &LONG);
    let logs = || all_logs(&agents, site.logs());
    logged(&agents[0], "run started", &logs);
    agents[0].kill();
    agents[0].restart();
    let logs = || all_logs(&agents, site.logs());
    finished(&url, &id, &logs);
    let t = tally(&url, &id, site.dir.path(), None);
    stored_once(
        "agent kill -9 mid-run, restarted: the run re-sent and run again",
        &t,
        1,
        &logs,
    );
    let log = agents[0].log();
    assert_eq!(log.matches("run started").count(), 2, "{log}");
    drop(coordinator);
}

#[test]
fn agent_kill_9_mid_run_and_gone() {
    let site = Site::new(&[]);
    let coordinator = site.start();
    let url = site.url();
    let mut agents = vec![Agent::start(&url, &["--preset", "auto"])];
    wait_online(&url, 1, || site.logs());

    let mut flags = LONG.to_vec();
    flags.extend(["--timeout", "3"]);
    let id = campaign(&url, &flags);
    let logs = || all_logs(&agents, site.logs());
    logged(&agents[0], "run started", &logs);
    agents[0].kill();
    let logs = || all_logs(&agents, site.logs());
    let status = finished(&url, &id, &logs);
    let t = tally(&url, &id, site.dir.path(), None);
    let ok = t.stored == 0 && t.lost == 0 && t.duplicated == 0 && t.failed.len() == 1;
    let outcome = match (&t.failed[..], ok) {
        ([(state, reason)], true) => format!("ok: run {state}: {reason}"),
        _ => format!("FAILED: {t:?}"),
    };
    row("agent kill -9 mid-run, never back", &t, &outcome);
    assert!(ok, "{t:?} {status}\n{}", logs());
    assert_eq!(t.failed[0].0, "timed_out", "{t:?}");
    assert!(t.failed[0].1.contains("no result within 3s"), "{t:?}");
    drop(coordinator);
}

#[test]
fn network_silent_30_s_both_ways_mid_upload() {
    let site = Site::new(&["--heartbeat-interval-s", "1", "--offline-after-s", "3"]);
    let coordinator = site.start();
    let url = site.url();
    let proxy = Proxy::start(coordinator.addr.parse().unwrap());
    // A 5 s RPC timeout, so the agent's failed upload shows within the cut.
    let config = site.dir.path().join("agent.toml");
    std::fs::write(&config, "version = 1\n[link]\nrpc_timeout_s = 5\n").unwrap();
    let config = config.display().to_string();
    let agents = vec![Agent::start(
        &proxy.url(),
        &["--preset", "auto", "--config", &config],
    )];
    let logs = || all_logs(&agents, site.logs());
    wait_online(&url, 1, logs);

    proxy.hold_upstream();
    let id = campaign(&url, &TINY);
    logged(&agents[0], "result spooled at", &logs);
    // The upload is in the proxy; now nothing passes either way, and nothing is closed.
    proxy.blackhole();
    let cut = Instant::now();
    wait_online(&url, 0, logs);
    logged(&agents[0], "send failed, stays spooled", &logs);
    let left = Duration::from_secs(30).saturating_sub(cut.elapsed());
    std::thread::sleep(left); // the cut lasts 30 s
    proxy.release();
    let status = finished(&url, &id, &logs);
    wait_for("the spool drained", logs, || {
        agents[0].spooled().is_empty().then_some(())
    });
    let t = tally(&url, &id, site.dir.path(), None);
    stored_once("network silent 30 s both ways mid-upload", &t, 1, &|| {
        format!("{status}\n{}", logs())
    });
    assert_eq!(agents[0].log().matches("run started").count(), 1);
    drop(coordinator);
}

#[test]
fn spool_on_a_full_disk_and_agent_kill_9_with_the_result_in_memory() {
    let site = Site::new(&[]);
    let coordinator = site.start();
    let url = site.url();
    let proxy = Proxy::start(coordinator.addr.parse().unwrap());
    let mut agents = vec![Agent::start(&proxy.url(), &["--preset", "auto"])];
    wait_online(&url, 1, || site.logs());
    let scenario = "spool on a full tmpfs, agent kill -9 with the result in memory";
    let Some(spool) = FullSpool::mount(&agents[0].spool_dir(), scenario) else {
        row(
            scenario,
            &Tally::default(),
            "SKIPPED: cannot mount a tmpfs (not root)",
        );
        return;
    };

    // The result cannot be spooled and its direct upload waits in the proxy when the agent
    // dies: the only copy was in its memory.
    proxy.hold_upstream();
    let id = campaign(&url, &TINY);
    let logs = || all_logs(&agents, site.logs());
    logged(
        &agents[0],
        "keeping it in memory and sending it directly",
        &logs,
    );
    agents[0].kill();
    proxy.cut();
    proxy.release();
    // Back on the same (still full) spool: the coordinator still holds the run running and
    // sends its plan again; the new result is uploaded directly.
    agents[0].restart();
    let logs = || all_logs(&agents, site.logs());
    finished(&url, &id, &logs);
    logged(&agents[0], "result sent directly", &logs);
    let t = tally(&url, &id, site.dir.path(), None);
    stored_once(scenario, &t, 1, &logs);
    assert_eq!(agents[0].log().matches("run started").count(), 2);
    assert!(spool.names().is_empty(), "{:?}", spool.names());
    drop(spool);
    drop(coordinator);
}

/// A script that starts this build's agent under libfaketime with the clock `spec`
/// (`FAKETIME` syntax: `+1d`, `@1970-01-01 00:00:00`); the monotonic clock stays real, as on a
/// board whose wall clock is wrong. The library is preloaded directly, not through the
/// `faketime` wrapper: the wrapper keeps a shared-memory segment named by its pid that a
/// killed agent leaves behind, and a later wrapper given the same pid then fails at start
/// (`sem_open: File exists`; seen when the suites ran twice on one machine). `None` (with a
/// loud SKIP) when libfaketime is missing, unless `FLEETCAL_REQUIRE_FAKETIME=1`.
fn faked_clock_agent(dir: &Path, name: &str, spec: &str) -> Option<PathBuf> {
    let lib = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file());
    let Some(lib) = lib else {
        if std::env::var("FLEETCAL_REQUIRE_FAKETIME").is_ok_and(|v| v == "1") {
            panic!("the clock scenarios need libfaketime (Debian package faketime; scripts/install-deps --postgres installs it)");
        }
        eprintln!(
            "\n*** SKIP agent clock scenarios: no libfaketime (Debian package faketime) ***\n"
        );
        return None;
    };
    let path = dir.join(format!("agent-{name}.sh"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nexport FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME='{spec}' LD_PRELOAD='{}'\nexec '{}' \"$@\"\n",
            lib.display(),
            agent_exe().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(path)
}

#[test]
fn agents_with_a_clock_a_day_off_and_at_1970() {
    // Over mutual TLS, as a fleet runs: a board whose clock is behind checks the
    // coordinator's certificate as of its clock floor (`daemon::clock`), so it connects.
    let site = Site::new(&[]);
    let coordinator = site.start();
    let url = site.url();
    let clocks = [
        ("agent clock a day ahead", "+1d"),
        (
            "agent clock two days ahead (past the default deadline)",
            "+2d",
        ),
        ("agent clock a day behind", "-1d"),
        (
            "agent clock at 1970 (a board without RTC)",
            "@1970-01-01 00:00:00",
        ),
    ];
    let mut agents = Vec::new();
    for (i, (_, spec)) in clocks.iter().enumerate() {
        let Some(exe) = faked_clock_agent(site.dir.path(), &i.to_string(), spec) else {
            for (scenario, _) in clocks {
                row(scenario, &Tally::default(), "SKIPPED: no faketime command");
            }
            return;
        };
        let board = Board {
            exe: Some(exe),
            ..Board::default()
        };
        agents.push(Agent::start_board(board, &url, &["--preset", "auto"]));
    }
    let logs = || all_logs(&agents, site.logs());
    wait_online(&url, clocks.len(), logs);
    let before = chrono::Utc::now().timestamp_millis();
    let id = campaign(&url, &TINY);
    finished(&url, &id, &logs);
    let after = chrono::Utc::now().timestamp_millis();
    let runs = runs_of(&url, &id);
    for ((scenario, spec), agent) in clocks.iter().zip(&agents) {
        let me = agent.agent_id().expect("agent id");
        let t = tally(&url, &id, site.dir.path(), Some(std::slice::from_ref(&me)));
        stored_once(&format!("{scenario} ({spec})"), &t, 1, &logs);
        // The coordinator took the board's word for nothing: it logged the clock, and the
        // time the fleet reports use is its own.
        let run = runs.iter().find(|r| r["agent_id"] == me.as_str()).unwrap();
        let run_id = run["run_id"].as_str().unwrap();
        let log = site.logs();
        assert!(
            log.lines()
                .any(|l| l.contains(run_id) && l.contains("clock")),
            "{log}"
        );
        let when = report_time(site.dir.path(), run_id);
        assert!(
            (before - 1000..=after + 1000).contains(&when),
            "{scenario}: the fleet row's time {when} is not the coordinator's ({before}..{after})"
        );
    }
    drop(coordinator);
}

/// A board without a real-time clock (at 1970) on a coordinator serving mutual TLS: it
/// enrolls with a join token, checks the coordinator's certificate as of its clock floor
/// (warning once that its clock is below it), and its result is stored exactly once.
#[test]
fn an_agent_at_1970_enrolls_and_works_over_mutual_tls() {
    use crate::support::CoordinatorProcess;
    use crate::tls::{ctl, text, Pki};
    let scenario = "agent clock at 1970 over mutual TLS, enrolled with a join token";
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = faked_clock_agent(dir.path(), "1970-tls", "@1970-01-01 00:00:00") else {
        row(scenario, &Tally::default(), "SKIPPED: no faketime command");
        return;
    };
    let pki = Pki::generate(&dir.path().join("pki"), &[]);
    let mut flags = pki.server_flags(true);
    flags.extend(["--ca-key".into(), pki.file("ca.key")]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let coordinator = CoordinatorProcess::start(dir.path(), &flags);
    let url = format!("https://{}", coordinator.addr);
    let admin = pki.client_flags("admin");
    let out = ctl(&url, &admin, &["token", "create"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let token = text(&out).0.trim().to_string();
    let board = Board {
        exe: Some(exe),
        ..Board::default()
    };
    let ca = pki.file("ca.pem");
    let agent = Agent::start_board(
        board,
        &url,
        &["--ca-cert", &ca, "--join-token", &token, "--preset", "auto"],
    );
    let logs = || {
        format!(
            "{}
{}",
            agent.log(),
            coordinator.log_text()
        )
    };
    logged(
        &agent,
        "the system clock is before this agent's build",
        &logs,
    );
    assert!(agent.log().contains("1970-01-01"), "{}", agent.log());
    wait_online_as(&url, &admin, 1, &logs);
    let mut start = vec!["campaign", "start", "--all", "--json"];
    start.extend(TINY);
    let out = ctl(&url, &admin, &start);
    assert!(out.status.success(), "{}", text(&out).1);
    let id: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = id["id"].as_str().unwrap().to_string();
    let out = ctl(
        &url,
        &admin,
        &["campaign", "status", &id, "--wait", "--json"],
    );
    assert!(out.status.success(), "{}\n{}", text(&out).1, logs());
    let t = tally_as(&url, &admin, &id, dir.path(), None);
    stored_once(scenario, &t, 1, &logs);
    assert_eq!(
        agent
            .log()
            .matches("the system clock is before this agent's build")
            .count(),
        1,
        "warned once"
    );
}

/// Waits until `n` agents are listed online by fleetctl with TLS `flags`.
fn wait_online_as(url: &str, flags: &[String], n: usize, logs: &dyn Fn() -> String) {
    wait_for(&format!("{n} agent(s) online"), logs, || {
        let out = crate::tls::ctl(url, flags, &["agents", "--json"]);
        let listed: Value = serde_json::from_slice(&out.stdout).ok()?;
        let online = listed
            .as_array()?
            .iter()
            .filter(|a| a["online"] == true)
            .count();
        (online >= n).then_some(())
    });
}

/// Raises this process's soft limit of open files to its hard limit with `prlimit` (children
/// inherit it); the soft limit before and after.
fn raise_open_files() -> (u64, u64) {
    let soft = || -> u64 {
        std::fs::read_to_string("/proc/self/limits")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .map(str::to_string)
        .unwrap_or_default();
    let before = soft();
    if !hard.is_empty() {
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string()])
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
    }
    (before, soft())
}

/// The time the fleet reports give a run's result (`fleet_runs.started_at`, Unix ms).
fn report_time(dir: &Path, run_id: &str) -> i64 {
    let db = format!("sqlite://{}", dir.join("coordinator.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        let at: i64 = sqlx::query_scalar("SELECT started_at FROM fleet_runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        at
    })
}

#[test]
fn reconnect_storm_after_a_coordinator_kill_9() {
    // One connection per agent (mutual TLS: one certificate, one agent id), for this process
    // and the coordinator, which inherits the limit.
    let (was, now) = raise_open_files();
    assert!(
        now >= storm::OPEN_FILES,
        "the storm needs {} open files per process; the limit is {was}, raised to {now} \
         (the hard limit)",
        storm::OPEN_FILES
    );
    let site = Site::new(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(storm::run(&site));
    let t = tally(&site.url(), &report.campaign, site.dir.path(), None);
    let scenario = format!(
        "reconnect storm: {} agents after a coordinator kill -9",
        storm::AGENTS
    );
    let bounded = report.rss_after_mib <= 2.0 * report.rss_before_mib + 64.0;
    let outcome = format!(
        "{}: rss {:.0} MiB before, {:.0} MiB after ({:.1} s to reconnect and upload)",
        if bounded && t.stored == storm::AGENTS && t.lost == 0 && t.duplicated == 0 {
            "ok"
        } else {
            "FAILED"
        },
        report.rss_before_mib,
        report.rss_after_mib,
        report.took.as_secs_f64()
    );
    row(&scenario, &t, &outcome);
    assert_eq!(
        (t.stored, t.lost, t.duplicated),
        (storm::AGENTS, 0, 0),
        "{t:?}"
    );
    assert!(bounded, "{outcome}");
    drop(report.coordinator);
}
