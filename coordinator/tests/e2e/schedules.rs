//! Cron schedules end to end: the real coordinator firing campaigns by itself on a seconds
//! schedule, with real agents (tiny runs), simulated agents over gRPC, and fleetctl.
//!
//! - several firings land, each with one campaign and one run per board; the coordinator
//!   stopped across two firings and restarted makes exactly one catch-up campaign and records
//!   the rest missed; pause, resume, run-now and remove do what they say;
//! - a board busy with an earlier run is recorded skipped with the run it is busy with (or
//!   queued behind it, with its jitter), and an offline board's run ends agent_offline at the
//!   next firing; bad input is refused naming it;
//! - two coordinators on one PostgreSQL database create one campaign per firing, and the
//!   survivor goes on alone when one stops.
//!
//! Every wait is for an observable event (a campaign, a firing, a run state) with a bounded
//! timeout; where a test needs a firing time to pass (an outage, a pause), it waits for that
//! time and then for an event after it.

use std::collections::BTreeSet;
use std::time::Duration;

use fleetcal_proto::pb;
use serde_json::Value;

use crate::fleet::agent::Agent;
use crate::fleet::common::{ctl_json, free_port, serve, wait_for, wait_online};
use crate::pg::PgCluster;
use crate::support::{cpu_caps, fleetctl, next_plan, register_new, subscribe, CoordinatorProcess};

/// A campaign small enough for debug builds on two cores.
const TINY: [&str; 13] = [
    "--quick",
    "--sizes",
    "16",
    "--stream-mib",
    "1",
    "--operations",
    "gemm",
    "--precisions",
    "fp32",
    "--trials",
    "1",
    "--warmup",
    "0",
];

/// Milliseconds of an RFC 3339 time.
fn ms(t: &Value) -> i64 {
    let text = t.as_str().unwrap_or_else(|| panic!("not a time: {t}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_millis()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The first firing after `t` of a `*/N` seconds schedule (`period` = N s; 60 is a multiple
/// of N, so the firings are the multiples of the period).
fn next_firing(t: i64, period: i64) -> i64 {
    (t.div_euclid(period) + 1) * period
}

/// Sleeps until the wall clock passes `t`: for a firing time to go by, not for an outcome.
fn sleep_until(t: i64) {
    if let Ok(d) = u64::try_from(t - now_ms()) {
        std::thread::sleep(Duration::from_millis(d));
    }
}

/// The campaigns of a schedule, newest first.
fn campaigns(url: &str, schedule: &str) -> Vec<Value> {
    let v = ctl_json(url, &["campaigns", "--schedule", schedule, "--json"]);
    v.as_array().unwrap().clone()
}

/// The runs of a campaign.
fn runs_of(url: &str, id: &str) -> Vec<Value> {
    let v = ctl_json(url, &["runs", "--campaign", id, "--json"]);
    v.as_array().unwrap().clone()
}

/// A schedule as `schedule list --json` shows it.
fn listed(url: &str, name: &str) -> Option<Value> {
    let v = ctl_json(url, &["schedule", "list", "--json"]);
    v.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

/// Polls `check` every 100 ms (from async tests; fleetctl runs block the worker meanwhile)
/// until it yields a value or `limit` passes.
async fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = check() {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// fleetctl's exit code and stderr, for a command that must fail.
fn refused(url: &str, args: &[&str]) -> (i32, String) {
    let out = fleetctl(url, args);
    assert!(!out.status.success(), "fleetctl {args:?} succeeded");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_schedule_fires_catches_up_once_and_obeys_pause_resume_run_now_and_remove() {
    const PERIOD: i64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut coord = serve(dir.path(), &listen);
    let url = coord.url();
    let agents: Vec<Agent> = ["board=a", "board=b"]
        .into_iter()
        .map(|l| Agent::start(&url, &["--labels", l, "--preset", "auto"]))
        .collect();
    let logs = |coord: &CoordinatorProcess| {
        let mut text = coord.log_text();
        for a in &agents {
            text.push_str(&a.log());
        }
        text
    };
    let boards: BTreeSet<String> = wait_online(&url, 2, || logs(&coord)).into_iter().collect();

    let mut add = vec![
        "schedule",
        "add",
        "tick",
        "--cron",
        "*/2 * * * * *",
        "--all",
    ];
    add.extend(TINY);
    add.extend(["--max-duration", "10m", "--json"]);
    let added = ctl_json(&url, &add);
    assert_eq!(added["max_duration_s"], 600, "{added}");
    assert_eq!(
        (&added["zone"], &added["overlap"], &added["paused"]),
        (
            &Value::from("UTC"),
            &Value::from("skip"),
            &Value::from(false)
        ),
        "{added}"
    );
    assert_eq!(ms(&added["next_firing"]) % PERIOD, 0, "{added}");

    // Several firings land: one campaign each, one run per board, each run ended.
    let first_three = wait_for(
        "three finished campaigns",
        || logs(&coord),
        || {
            let mut cs = campaigns(&url, "tick");
            cs.reverse();
            cs.truncate(3);
            (cs.len() == 3 && cs.iter().all(|c| c["finished"] == true)).then_some(cs)
        },
    );
    let times: Vec<i64> = first_three.iter().map(|c| ms(&c["scheduled_at"])).collect();
    assert!(
        times.windows(2).all(|w| w[1] - w[0] == PERIOD),
        "consecutive firings: {times:?}"
    );
    for (i, c) in first_three.iter().enumerate() {
        assert_eq!(c["schedule"], "tick", "{c}");
        assert_eq!(c["total_runs"], 2, "{c}");
        assert_eq!(
            c["max_duration_s"], 600,
            "each firing's campaign carries the cap: {c}"
        );
        let runs = runs_of(&url, c["id"].as_str().unwrap());
        let on: BTreeSet<String> = runs
            .iter()
            .map(|r| r["agent_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(on, boards, "one run per board: {runs:#?}");
        for r in &runs {
            match r["state"].as_str().unwrap() {
                "succeeded" => {}
                // A board still busy with the previous firing's run (a slow machine).
                "skipped" if i > 0 => assert!(
                    r["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("skipped: busy with run "),
                    "{r}"
                ),
                _ => panic!("firing {i}: {r}\n{}", logs(&coord)),
            }
        }
    }
    let s = listed(&url, "tick").unwrap();
    assert_eq!(s["last_firing"]["outcome"], "fired", "{s}");

    // Stopped across two firings, then started again on the same port and database.
    let status = coord.terminate(Duration::from_secs(15)).expect("stopped");
    assert!(status.success(), "{status:?}");
    let stopped = now_ms();
    let second = next_firing(stopped, PERIOD) + PERIOD;
    sleep_until(second + 200);
    let coord = serve(dir.path(), &listen);
    let catch_up = wait_for(
        "the catch-up campaign",
        || logs(&coord),
        || {
            campaigns(&url, "tick")
                .into_iter()
                .filter(|c| ms(&c["scheduled_at"]) > stopped)
                .min_by_key(|c| ms(&c["scheduled_at"]))
        },
    );
    let caught = ms(&catch_up["scheduled_at"]);
    assert!(
        caught >= second,
        "the latest due firing is caught up: {catch_up}"
    );
    assert_eq!(catch_up["total_runs"], 2, "{catch_up}");
    let s = listed(&url, "tick").unwrap();
    let window: Vec<&Value> = s["recent_firings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| ms(&f["scheduled_at"]) > stopped && ms(&f["scheduled_at"]) <= caught)
        .collect();
    let fired: Vec<&&Value> = window.iter().filter(|f| f["outcome"] == "fired").collect();
    assert_eq!(fired.len(), 1, "exactly one catch-up: {s:#}");
    assert_eq!(
        (&fired[0]["campaign_id"], &fired[0]["message"]),
        (&catch_up["id"], &Value::from("catch-up")),
        "{s:#}"
    );
    let missed: Vec<&&Value> = window.iter().filter(|f| f["outcome"] == "missed").collect();
    let expected = usize::try_from((caught - next_firing(stopped, PERIOD)) / PERIOD).unwrap();
    assert!(expected >= 1);
    assert_eq!(missed.len(), expected, "every other firing missed: {s:#}");
    for m in &missed {
        let why = m["message"].as_str().unwrap();
        assert!(why.contains("only the latest due firing"), "{why}");
        assert!(m["campaign_id"].is_null(), "{m}");
    }
    assert!(s["missed_firings"].as_u64().unwrap() >= 1, "{s}");

    // After the catch-up the schedule goes on as before.
    wait_for(
        "the next firing after the catch-up",
        || logs(&coord),
        || {
            let s = listed(&url, "tick")?;
            let f = s["recent_firings"][0].clone();
            (ms(&f["scheduled_at"]) > caught && f["outcome"] == "fired").then_some(f)
        },
    );

    // Paused: it does not fire; run-now still works; resumed: it fires again from then on.
    // (Taken once the pause is stored: a firing claimed before has an earlier time.)
    let out = fleetctl(&url, &["schedule", "pause", "tick"]);
    assert!(out.status.success(), "{out:?}");
    let paused_at = now_ms();
    let s = listed(&url, "tick").unwrap();
    assert_eq!(
        (&s["paused"], &s["next_firing"]),
        (&Value::from(true), &Value::Null)
    );
    let now = ctl_json(&url, &["schedule", "run-now", "tick", "--json"]);
    let now_id = now["id"].as_str().unwrap().to_string();
    assert_eq!(now["schedule"], "tick", "{now}");
    assert_eq!(now["total_runs"], 2, "{now}");
    let s = listed(&url, "tick").unwrap();
    assert_eq!(
        (
            &s["last_firing"]["campaign_id"],
            &s["last_firing"]["message"]
        ),
        (&Value::from(now_id.as_str()), &Value::from("run now")),
        "{s:#}"
    );
    sleep_until(next_firing(now_ms(), PERIOD) + 200);
    let resumed_at = now_ms();
    let out = fleetctl(&url, &["schedule", "resume", "tick"]);
    assert!(out.status.success(), "{out:?}");
    wait_for(
        "a firing after the resume",
        || logs(&coord),
        || {
            campaigns(&url, "tick")
                .into_iter()
                .find(|c| ms(&c["scheduled_at"]) > resumed_at)
        },
    );
    let while_paused: Vec<Value> = campaigns(&url, "tick")
        .into_iter()
        .filter(|c| c["id"] != now_id.as_str())
        .filter(|c| (paused_at + 1..=resumed_at).contains(&ms(&c["scheduled_at"])))
        .collect();
    assert!(
        while_paused.is_empty(),
        "fired while paused: {while_paused:#?}"
    );

    // Removed: gone from the list, refused by name, and it fires no more (while another
    // schedule with the same rule does); its campaigns stay.
    let out = fleetctl(&url, &["schedule", "remove", "tick"]);
    assert!(out.status.success(), "{out:?}");
    let removed_at = now_ms();
    assert!(listed(&url, "tick").is_none());
    for args in [
        &["schedule", "run-now", "tick"][..],
        &["schedule", "remove", "tick"],
        &["schedule", "pause", "tick"],
    ] {
        let (code, err) = refused(&url, args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(err.contains("no schedule 'tick'"), "{err}");
    }
    let out = fleetctl(
        &url,
        &[
            "schedule",
            "add",
            "tock",
            "--cron",
            "*/2 * * * * *",
            "--preset",
            "nobody",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let tock = wait_for(
        "a firing of another schedule after the removal",
        || logs(&coord),
        || {
            let s = listed(&url, "tock")?;
            let f = s["recent_firings"][0].clone();
            (!f.is_null() && ms(&f["scheduled_at"]) > removed_at).then_some(f)
        },
    );
    // A selector that matches nobody is recorded, not retried for ever.
    assert_eq!(tock["outcome"], "missed", "{tock}");
    assert!(
        tock["message"]
            .as_str()
            .unwrap()
            .contains("selector 'preset nobody' matches no registered agent"),
        "{tock}"
    );
    let kept = campaigns(&url, "tick");
    assert!(kept.len() >= 5, "history stays: {kept:#?}");
    assert!(
        kept.iter().all(|c| ms(&c["scheduled_at"]) <= removed_at),
        "fired after removal: {kept:#?}"
    );
    drop(agents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_board_is_skipped_or_queued_and_an_offline_board_waits_for_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let (mut client, busy) =
        register_new(&url, "busy", &[("role", "nightly")], cpu_caps(&["numpy"])).await;
    // Registered, never subscribed: offline.
    let (_away_client, away) =
        register_new(&url, "away", &[("role", "nightly")], cpu_caps(&["numpy"])).await;
    let (mut stream, _) = subscribe(&mut client, &busy).await;

    // Bad input is refused, naming it.
    let (code, err) = refused(
        &url,
        &["schedule", "add", "bad", "--cron", "61 * * * *", "--all"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cron expression '61 * * * *': "), "{err}");
    let (code, err) = refused(
        &url,
        &[
            "schedule",
            "add",
            "bad",
            "--cron",
            "0 2 * * *",
            "--tz",
            "Mars/Olympus",
            "--all",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown time zone 'Mars/Olympus'"), "{err}");
    let (code, err) = refused(
        &url,
        &["schedule", "add", "a b", "--cron", "0 2 * * *", "--all"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("field 'name': 'a b'"), "{err}");

    let out = fleetctl(
        &url,
        &[
            "schedule",
            "add",
            "skip",
            "--cron",
            "*/2 * * * * *",
            "--select",
            "role=nightly",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let (code, err) = refused(
        &url,
        &["schedule", "add", "skip", "--cron", "0 2 * * *", "--all"],
    );
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("'skip' exists already"), "{err}");

    // The first firing's run reaches the busy board, which never finishes it.
    let plan: pb::Plan = next_plan(&mut stream).await;
    let first = plan.campaign_id.clone();
    // The next firing: the busy board's run is skipped naming that run; the offline board's
    // run of the first firing ended agent_offline at this firing (its deadline).
    let second = poll(Duration::from_secs(20), || {
        campaigns(&url, "skip")
            .into_iter()
            .find(|c| c["id"] != first.as_str())
            .map(|c| c["id"].as_str().unwrap().to_string())
    })
    .await
    .unwrap_or_else(|| panic!("no second firing\n{}", coord.log_text()));
    let state = |runs: &[Value], agent: &str| -> (String, String) {
        let r = runs.iter().find(|r| r["agent_id"] == agent).unwrap();
        (
            r["state"].as_str().unwrap().into(),
            r["message"].as_str().unwrap().into(),
        )
    };
    let runs = runs_of(&url, &second);
    assert_eq!(
        state(&runs, &busy),
        (
            "skipped".to_string(),
            format!("skipped: busy with run {}", plan.run_id)
        ),
        "{runs:#?}"
    );
    assert_ne!(state(&runs, &away).0, "skipped", "{runs:#?}");
    let ended = poll(Duration::from_secs(10), || {
        (state(&runs_of(&url, &first), &away).0 == "agent_offline").then_some(())
    })
    .await;
    let runs = runs_of(&url, &first);
    assert!(ended.is_some(), "{runs:#?}");
    assert_eq!(
        state(&runs, &away).1,
        "agent stayed offline until the campaign deadline"
    );
    assert_eq!(state(&runs, &busy).0, "running");

    // Overlap queue (with jitter): the busy board's run waits behind the running one.
    let out = fleetctl(
        &url,
        &[
            "schedule",
            "add",
            "queue",
            "--cron",
            "*/2 * * * * *",
            "--select",
            "role=nightly",
            "--overlap",
            "queue",
            "--jitter",
            "1500ms",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let c = poll(Duration::from_secs(20), || campaigns(&url, "queue").pop())
        .await
        .unwrap_or_else(|| panic!("no firing of the queue schedule\n{}", coord.log_text()));
    let runs = runs_of(&url, c["id"].as_str().unwrap());
    assert_eq!(
        state(&runs, &busy),
        (
            "queued".to_string(),
            format!("queued: busy with run {}", plan.run_id)
        ),
        "{runs:#?}"
    );
    let fired = ms(&c["scheduled_at"]);
    for r in &runs {
        let not_before = ms(&r["not_before"]);
        // RFC 3339 to the second: within [firing, firing + jitter) give or take a second.
        assert!(
            (fired - 1000..fired + 1500 + 1000).contains(&not_before),
            "{r} fired {fired}"
        );
    }

    // The install step of deploy/: run twice, the second leaves the schedule as it is.
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nightly-schedule");
    let install = || {
        let mut sh = std::process::Command::new("sh");
        // Its fleetctl calls present the admin certificate (FLEETCAL_CA_CERT, _CERT, _KEY).
        let out = crate::support::with_admin_tls(&mut sh, &url, &[])
            .arg(&script)
            .args(["--select", "role=nightly", "--quick"])
            .env("FLEETCTL", crate::support::FLEETCTL)
            .env("FLEETCAL_COORDINATOR", &url)
            .env("FLEETCAL_NIGHTLY_TZ", "Europe/Berlin")
            .env("FLEETCAL_NIGHTLY_WAIT_S", "10")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(install().starts_with("added schedule nightly"));
    assert!(install().contains("schedule 'nightly' exists already; left as it is"));
    let s = listed(&url, "nightly").unwrap();
    assert_eq!(
        (&s["cron"], &s["zone"], &s["jitter_ms"], &s["quick"]),
        (
            &Value::from("0 2 * * *"),
            &Value::from("Europe/Berlin"),
            &Value::from(600_000),
            &Value::from(true)
        ),
        "{s}"
    );
    assert_eq!(s["selector"]["labels"]["role"], "nightly", "{s}");
    assert!(
        s["next_firing_local"]
            .as_str()
            .unwrap()
            .contains("T02:00:00+0"),
        "{s}"
    );
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_on_one_postgres_create_one_campaign_per_firing() {
    let Some(cluster) = PgCluster::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut one = CoordinatorProcess::start(dir.path(), &["--db", &cluster.url]);
    let two = CoordinatorProcess::start(dir.path(), &["--db", &cluster.url]);
    register_new(&one.url(), "board", &[], cpu_caps(&["numpy"])).await;
    let out = fleetctl(
        &one.url(),
        &["schedule", "add", "both", "--cron", "* * * * * *", "--all"],
    );
    assert!(out.status.success(), "{out:?}");

    // Both coordinators fire the same schedule every second; each firing has one campaign.
    let one_per_firing = |url: &str, at_least: usize| {
        let cs = campaigns(url, "both");
        let firings: BTreeSet<i64> = cs.iter().map(|c| ms(&c["scheduled_at"])).collect();
        assert_eq!(
            firings.len(),
            cs.len(),
            "two campaigns for one firing: {cs:#?}"
        );
        (cs.len() >= at_least).then_some(cs.len())
    };
    let logs = || format!("{}\n{}", one.log_text(), two.log_text());
    let seen = poll(Duration::from_secs(20), || one_per_firing(&one.url(), 5)).await;
    assert!(seen.is_some(), "five firings\n{}", logs());
    // The firing records agree: each fired firing names its one campaign.
    let s = listed(&two.url(), "both").unwrap();
    let mut ids = BTreeSet::new();
    for f in s["recent_firings"].as_array().unwrap() {
        if f["outcome"] == "fired" {
            assert!(
                ids.insert(f["campaign_id"].as_str().unwrap().to_string()),
                "{s:#}"
            );
        }
    }
    assert!(ids.len() >= 5, "{s:#}");

    // One stops; the other goes on alone, still one campaign per firing.
    let before = one_per_firing(&two.url(), 0).unwrap();
    assert!(one.terminate(Duration::from_secs(15)).is_some());
    let seen = poll(Duration::from_secs(20), || {
        one_per_firing(&two.url(), before + 2)
    })
    .await;
    assert!(
        seen.is_some(),
        "firings after one coordinator stopped\n{}",
        two.log_text()
    );
}
