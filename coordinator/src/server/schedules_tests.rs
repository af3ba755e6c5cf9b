//! The schedules' use cases on a simulated clock: a coordinator over a SQLite file, the
//! driver's firing step called with chosen times, runs finished by hand. Weeks of nights in
//! about a second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::*;
use crate::config::Settings;
use crate::cron::Overlap;
use crate::model::{CampaignSpec, Capabilities, FrameworkChoice, Overrides, Selector, Transition};
use crate::server::core::Registration;
use crate::server::registry::Registry;
use crate::store::SqliteStore;

const MINUTE: Millis = 60_000;
const DAY: Millis = 24 * 60 * MINUTE;

fn ms(t: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .timestamp_millis()
}

/// A coordinator over a SQLite file in `dir` (also used by other use cases' unit tests).
pub(crate) async fn coordinator(dir: &tempfile::TempDir) -> Coordinator<SqliteStore> {
    let store = SqliteStore::open(&dir.path().join("c.db")).await.unwrap();
    Coordinator {
        store,
        presets: Vec::new(),
        registry: Arc::new(Registry::default()),
        settings: Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            db: String::new(),
            presets: None,
            heartbeat_interval_s: 10,
            offline_after: Duration::from_secs(30),
            default_run_timeout_s: 3600,
            default_deadline_s: 86_400,
            tick: Duration::from_secs(1),
            tls: None,
            drift: Default::default(),
            http: None,
            insecure_plaintext: true,
            ca_key: None,
            agent_cert_lifetime_s: crate::server::enroll::AGENT_CERT_LIFETIME_S,
        },
        wake: Arc::new(Notify::new()),
        ingested: Arc::default(),
        ingested_packed: Arc::default(),
        instance: "test".into(),
        histories: Arc::default(),
        schedules_of: Arc::default(),
    }
}

async fn board(c: &Coordinator<SqliteStore>, host: &str, at: Millis) -> String {
    let agent_id = uuid::Uuid::new_v4().to_string();
    c.register(
        Registration {
            agent_id: agent_id.clone(),
            hostname: host.into(),
            labels: BTreeMap::from([("site".to_string(), "lab".to_string())]),
            preset: None,
            capabilities: Capabilities {
                arch: "x86_64".into(),
                cpu_count: 4,
                memory_gb: 8.0,
                engines: vec!["numpy".into()],
                ..Capabilities::default()
            },
            agent_version: "test".into(),
        },
        at,
    )
    .await
    .unwrap();
    agent_id
}

fn spec(cron: &str, zone: &str, jitter_ms: Millis, overlap: Overlap) -> ScheduleSpec {
    ScheduleSpec {
        cron: cron.into(),
        zone: zone.into(),
        campaign: CampaignSpec {
            selector: Selector::All,
            framework: FrameworkChoice::Default,
            quick: true,
            warmup: None,
            trials: None,
            max_duration_s: None,
            run_timeout_s: 0,
            deadline_s: 0,
            concurrency: 0,
            overrides: Overrides::default(),
        },
        jitter_ms,
        overlap,
        catch_up_ms: None,
    }
}

/// Moves a run on as the dispatcher and an agent would.
async fn to(c: &Coordinator<SqliteStore>, r: &RunRecord, from: RunState, to: RunState, at: Millis) {
    let t = Transition {
        run_id: r.run_id.clone(),
        agent_id: r.agent_id.clone(),
        from,
        to,
        at,
        message: None,
    };
    assert!(c.store.transition(&t).await.unwrap(), "{t:?}");
}

/// Every campaign of a schedule, oldest first, with its runs.
async fn history(
    c: &Coordinator<SqliteStore>,
    name: &str,
) -> Vec<(CampaignRecord, Vec<RunRecord>)> {
    let page = c
        .store
        .campaigns_page(Some(name), None, 1000)
        .await
        .unwrap();
    let mut out = Vec::new();
    for (_, (campaign, _)) in page.items.into_iter().rev() {
        let runs = c.store.runs(Some(&campaign.id)).await.unwrap();
        out.push((campaign, runs));
    }
    out
}

#[tokio::test]
async fn nights_across_daylight_saving_with_an_outage_a_busy_board_and_jitter() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(&dir).await;
    let t0 = ms("2026-03-10T00:00:00Z");
    let alpha = board(&c, "alpha", t0).await;
    let beta = board(&c, "beta", t0).await;
    let jitter = 10 * MINUTE;
    c.add_schedule(
        "nightly",
        spec("0 2 * * *", "Europe/Berlin", jitter, Overlap::Skip),
        t0,
    )
    .await
    .unwrap();
    let rule = CronRule::parse("0 2 * * *", "Europe/Berlin").unwrap();
    let down = ms("2026-03-19T12:00:00Z")..ms("2026-03-22T08:00:00Z");
    let busy_night = ms("2026-03-25T01:00:00Z");
    let end = ms("2026-04-10T12:00:00Z");

    // Each night: the driver's firing step 30 s after the firing, then every run of the
    // night runs and succeeds, but beta's run of the busy night stays running a day.
    let mut at = t0;
    let mut held: Option<RunRecord> = None;
    while let Some(firing) = rule.next_after(at).filter(|&f| f < end) {
        at = firing;
        if down.contains(&firing) {
            continue;
        }
        let now = firing + 30_000;
        c.fire_due_schedules(now).await.unwrap();
        if let Some(r) = held.take() {
            to(&c, &r, RunState::Running, RunState::Succeeded, now + MINUTE).await;
        }
        for r in c.store.active_runs().await.unwrap() {
            if r.state != RunState::Queued {
                continue;
            }
            to(&c, &r, RunState::Queued, RunState::Running, now + MINUTE).await;
            if firing == busy_night && r.agent_id == beta {
                held = Some(r);
            } else {
                to(
                    &c,
                    &r,
                    RunState::Running,
                    RunState::Succeeded,
                    now + 2 * MINUTE,
                )
                .await;
            }
        }
        // Back from the outage on the 22nd at 09:00 local (the loop's own tick would come
        // 30 s after that night's firing; the coordinator comes back later).
        if firing == ms("2026-03-19T01:00:00Z") {
            at = down.end - 1;
            c.fire_due_schedules(down.end).await.unwrap();
            for r in c.store.active_runs().await.unwrap() {
                to(
                    &c,
                    &r,
                    RunState::Queued,
                    RunState::Running,
                    down.end + MINUTE,
                )
                .await;
                to(
                    &c,
                    &r,
                    RunState::Running,
                    RunState::Succeeded,
                    down.end + 2 * MINUTE,
                )
                .await;
            }
        }
    }

    let nights = history(&c, "nightly").await;
    let fired: Vec<Millis> = nights
        .iter()
        .map(|(c, _)| c.firing.as_ref().unwrap().scheduled_at)
        .collect();
    // One campaign per night from the 10th of March to the 10th of April except the two
    // nights of the outage (20th, 21st); the 22nd is its catch-up.
    let mut every = Vec::new();
    let mut t = t0;
    while let Some(f) = rule.next_after(t).filter(|&f| f < end) {
        every.push(f);
        t = f;
    }
    assert_eq!(every.len(), 32);
    assert_eq!(fired.len(), every.len() - 2, "{fired:?}");
    assert!(fired.windows(2).all(|w| w[0] < w[1]));
    for &f in &fired {
        let local = rule.local(f);
        // 02:00 local every night; on the 29th of March 02:00 does not exist: 03:00 CEST.
        if local.starts_with("2026-03-29") {
            assert_eq!(local, "2026-03-29T03:00:00+02:00");
        } else {
            assert!(
                local.ends_with("T02:00:00+01:00") || local.ends_with("T02:00:00+02:00"),
                "{local}"
            );
        }
    }
    assert!(fired.contains(&ms("2026-03-22T01:00:00Z")), "the catch-up");
    for missed in ["2026-03-20T01:00:00Z", "2026-03-21T01:00:00Z"] {
        assert!(!fired.contains(&ms(missed)));
    }
    let firings = c.store.firings("nightly", 100).await.unwrap();
    let missed: Vec<(Millis, &str)> = firings
        .iter()
        .filter(|f| f.outcome == crate::model::FiringOutcome::Missed)
        .map(|f| (f.scheduled_at, f.message.as_str()))
        .collect();
    assert_eq!(
        missed.iter().map(|m| m.0).collect::<Vec<_>>(),
        [ms("2026-03-21T01:00:00Z"), ms("2026-03-20T01:00:00Z")]
    );
    assert!(missed[0]
        .1
        .contains("only the latest due firing (2026-03-22T01:00:00Z)"));
    let catch_up = firings
        .iter()
        .find(|f| f.scheduled_at == ms("2026-03-22T01:00:00Z"))
        .unwrap();
    assert_eq!(catch_up.message, "catch-up");
    assert_eq!(c.store.missed_firings("nightly").await.unwrap(), 2);

    for (campaign, runs) in &nights {
        let f = campaign.firing.as_ref().unwrap().scheduled_at;
        // The deadline is the next firing; every board has a run of every night.
        assert_eq!(
            Some(campaign.deadline),
            rule.next_after(f.max(campaign.created_at))
        );
        let mut boards: Vec<&str> = runs.iter().map(|r| r.agent_id.as_str()).collect();
        boards.sort();
        let mut want = vec![alpha.as_str(), beta.as_str()];
        want.sort();
        assert_eq!(boards, want);
        for r in runs {
            if r.state == RunState::Skipped {
                continue;
            }
            assert_eq!(r.state, RunState::Succeeded, "{r:?}");
            // Jitter: stable per board and firing, within [0, 10 min) of the campaign.
            let delay = jitter_delay("nightly", f, &r.agent_id, jitter);
            assert_eq!(r.not_before, Some(campaign.created_at + delay));
            assert!((0..jitter).contains(&delay));
        }
    }
    // The night after the busy one: beta was still running, so its run is skipped naming
    // that run; alpha's is not.
    let after_busy = nights
        .iter()
        .find(|(c, _)| c.firing.as_ref().unwrap().scheduled_at == busy_night + DAY)
        .unwrap();
    let busy_run = &nights
        .iter()
        .find(|(c, _)| c.firing.as_ref().unwrap().scheduled_at == busy_night)
        .unwrap()
        .1
        .iter()
        .find(|r| r.agent_id == beta)
        .unwrap()
        .run_id;
    for r in &after_busy.1 {
        if r.agent_id == beta {
            assert_eq!(r.state, RunState::Skipped);
            assert_eq!(r.message, format!("skipped: busy with run {busy_run}"));
        } else {
            assert_eq!(r.state, RunState::Succeeded);
        }
    }
    let skipped = nights
        .iter()
        .flat_map(|(_, runs)| runs)
        .filter(|r| r.state == RunState::Skipped)
        .count();
    assert_eq!(skipped, 1);
}

#[tokio::test]
async fn pause_resume_run_now_and_a_selector_matching_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(&dir).await;
    let t0 = ms("2026-06-01T00:00:00Z");
    let mut lab = spec("0 * * * *", "UTC", 0, Overlap::Queue);
    lab.campaign.selector = Selector::Labels(BTreeMap::from([("site".into(), "mars".into())]));
    c.add_schedule("hourly", lab, t0).await.unwrap();
    // Nobody matches: the firing is recorded missed with the reason, once.
    c.fire_due_schedules(t0 + 61 * MINUTE).await.unwrap();
    c.fire_due_schedules(t0 + 62 * MINUTE).await.unwrap();
    let firings = c.store.firings("hourly", 10).await.unwrap();
    assert_eq!(firings.len(), 1);
    assert_eq!(
        firings[0].message,
        "not fired: selector 'labels site=mars' matches no registered agent"
    );
    let e = c
        .run_schedule_now("hourly", t0 + 63 * MINUTE)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Domain(DomainError::NoAgentsMatch(_))),
        "{e}"
    );

    // A board on Mars: paused, nothing fires; run-now does; resumed, only later firings fire.
    board(&c, "rover", t0).await;
    let mut agents = c.store.agents().await.unwrap();
    let mut rover = agents.pop().unwrap();
    rover.labels.insert("site".into(), "mars".into());
    c.store.upsert_agent(&rover).await.unwrap();
    c.set_schedule_paused("hourly", true, t0 + 64 * MINUTE)
        .await
        .unwrap();
    c.fire_due_schedules(t0 + 5 * 60 * MINUTE).await.unwrap();
    assert!(history(&c, "hourly").await.is_empty());
    let (now, runs) = c
        .run_schedule_now("hourly", t0 + 5 * 60 * MINUTE)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        now.firing.as_ref().unwrap().scheduled_at,
        t0 + 5 * 60 * MINUTE
    );
    let listed = c
        .set_schedule_paused("hourly", false, t0 + 5 * 60 * MINUTE + 1)
        .await
        .unwrap();
    assert_eq!(listed.next, Some(t0 + 6 * 60 * MINUTE));
    c.fire_due_schedules(t0 + 6 * 60 * MINUTE + 5)
        .await
        .unwrap();
    let fired: Vec<Millis> = history(&c, "hourly")
        .await
        .iter()
        .map(|(c, _)| c.firing.as_ref().unwrap().scheduled_at)
        .collect();
    assert_eq!(fired, [t0 + 5 * 60 * MINUTE, t0 + 6 * 60 * MINUTE]);
    // Overlap queue: the run-now campaign's run is still queued, so this one queues behind it.
    let last = history(&c, "hourly").await.pop().unwrap().1;
    assert_eq!(last[0].state, RunState::Queued);
    assert_eq!(
        last[0].message,
        format!("queued: busy with run {}", runs[0].run_id)
    );
    // Removed: it fires no more, its campaigns stay.
    c.remove_schedule("hourly").await.unwrap();
    c.fire_due_schedules(t0 + 9 * 60 * MINUTE).await.unwrap();
    assert_eq!(history(&c, "hourly").await.len(), 2);
    let e = c.remove_schedule("hourly").await.unwrap_err();
    assert!(
        matches!(e, Error::Domain(DomainError::UnknownSchedule(_))),
        "{e}"
    );
}

#[tokio::test]
async fn a_jitter_not_shorter_than_the_period_and_a_taken_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(&dir).await;
    let t0 = ms("2026-06-01T00:00:00Z");
    let e = c
        .add_schedule(
            "x",
            spec("*/10 * * * *", "UTC", 10 * MINUTE, Overlap::Skip),
            t0,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("field 'jitter_ms': 600000 ms is not shorter"),
        "{e}"
    );
    c.add_schedule(
        "x",
        spec("*/10 * * * *", "UTC", 9 * MINUTE, Overlap::Skip),
        t0,
    )
    .await
    .unwrap();
    let e = c
        .add_schedule("x", spec("0 2 * * *", "UTC", 0, Overlap::Skip), t0)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
    let e = c
        .add_schedule("y", spec("0 2 * * *", "Mars/Olympus", 0, Overlap::Skip), t0)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
}
