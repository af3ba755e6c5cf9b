//! The storage suite: one set of checks run against every backend (SQLite in a temporary
//! file, PostgreSQL in a throw-away cluster).

use std::collections::BTreeMap;

use fleetcal_coordinator::aggregate::RunCounts;
use fleetcal_coordinator::cron::Overlap;
use fleetcal_coordinator::domain::DomainError;
use fleetcal_coordinator::fleet::{
    self, AlertRecord, AlertState, FleetFigure, FleetQuery, FleetRows, FleetRun,
};
use fleetcal_coordinator::model::{
    AgentRecord, CampaignRecord, CampaignSpec, Capabilities, FiringOutcome, FiringTag,
    FrameworkChoice, Overrides, RunLease, RunRecord, RunState, ScheduleRecord, ScheduleSpec,
    Selector, StoreOutcome, Transition,
};
use fleetcal_coordinator::store::{
    AlertUpdate, CampaignKey, Claim, ClaimOutcome, EnrollmentRequest, EnrollmentState, PgStore,
    RemoveOutcome, RunKey, SqliteStore, Store,
};
use fleetcal_coordinator::Error;
use fleetcal_proto::{CalibrationResult, DeviceKind, Framework};

use crate::pg::PgCluster;
use crate::support::sample_result;

fn agent(id: &str, host: &str, at: i64) -> AgentRecord {
    AgentRecord {
        agent_id: id.into(),
        hostname: host.into(),
        labels: BTreeMap::from([("site".into(), "lab".into())]),
        preset: None,
        capabilities: Capabilities {
            engines: vec!["numpy".into()],
            cpu_count: 4,
            ..Capabilities::default()
        },
        agent_version: "1".into(),
        registered_at: at,
        last_seen: at,
    }
}

fn run(id: &str, campaign: &str, agent: &str, seq: i64, state: RunState) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        campaign_id: campaign.into(),
        agent_id: agent.into(),
        hostname: format!("host-{agent}"),
        preset_id: "auto".into(),
        framework: Framework::Numpy,
        device: DeviceKind::Cpu,
        state,
        fraction: 0.0,
        message: String::new(),
        seq,
        started_at: None,
        finished_at: None,
        not_before: None,
    }
}

fn to(run: &str, agent: &str, from: RunState, to: RunState, at: i64) -> Transition {
    Transition {
        run_id: run.into(),
        agent_id: agent.into(),
        from,
        to,
        at,
        message: None,
    }
}

/// Every storage check, against one backend.
async fn suite<S: Store>(store: S) {
    // Agents: insert, update keeps registered_at, touch.
    store.upsert_agent(&agent("a1", "beta", 10)).await.unwrap();
    store.upsert_agent(&agent("a2", "alpha", 11)).await.unwrap();
    let mut again = agent("a1", "beta-renamed", 99);
    again.labels.insert("rack".into(), "3".into());
    store.upsert_agent(&again).await.unwrap();
    let a1 = store.agent("a1").await.unwrap().unwrap();
    assert_eq!(a1.hostname, "beta-renamed");
    assert_eq!(a1.registered_at, 10, "re-registration keeps the first time");
    assert_eq!(a1.labels.get("rack").map(String::as_str), Some("3"));
    assert_eq!(a1.capabilities.engines, vec!["numpy".to_string()]);
    assert!(store.touch_agent("a2", 500).await.unwrap());
    assert!(!store.touch_agent("nobody", 500).await.unwrap());
    assert!(store.agent("nobody").await.unwrap().is_none());
    let hosts: Vec<String> = store
        .agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.hostname)
        .collect();
    assert_eq!(hosts, vec!["alpha", "beta-renamed"]);

    // Campaigns and runs in one transaction; a bad run rolls back the campaign too.
    let campaign = CampaignRecord {
        id: "c1".into(),
        created_at: 1000,
        deadline: 9000,
        spec: CampaignSpec {
            selector: Selector::All,
            framework: FrameworkChoice::Compare,
            quick: true,
            // Zero warm-ups must survive the round trip (absent means the default).
            warmup: Some(0),
            trials: Some(20),
            max_duration_s: None,
            run_timeout_s: 60,
            deadline_s: 8,
            concurrency: 1,
            overrides: Overrides {
                blas_sizes: vec![16, 32],
                ..Overrides::default()
            },
        },
        firing: None,
    };
    let bad = [run("rx", "c0", "nobody", 0, RunState::Queued)];
    let c0 = CampaignRecord {
        id: "c0".into(),
        ..campaign.clone()
    };
    assert!(
        store.create_campaign(&c0, &bad).await.is_err(),
        "unknown agent is refused"
    );
    assert!(
        store.campaign("c0").await.unwrap().is_none(),
        "and nothing is left behind"
    );
    let runs = [
        run("r1", "c1", "a1", 0, RunState::Queued),
        run("r2", "c1", "a2", 1, RunState::Queued),
        run("r3", "c1", "a2", 2, RunState::Failed),
    ];
    store.create_campaign(&campaign, &runs).await.unwrap();
    assert_eq!(store.campaign("c1").await.unwrap().unwrap(), campaign);
    assert_eq!(store.runs(Some("c1")).await.unwrap(), runs.to_vec());
    assert_eq!(store.runs(None).await.unwrap().len(), 3);
    assert!(store.runs(Some("zz")).await.unwrap().is_empty());
    assert_eq!(store.active_runs().await.unwrap().len(), 2);
    assert_eq!(store.active_campaigns().await.unwrap().len(), 1);

    // Guarded transitions.
    assert!(store
        .transition(&to("r1", "a1", RunState::Queued, RunState::Running, 2000))
        .await
        .unwrap());
    assert!(!store
        .transition(&to("r1", "a1", RunState::Queued, RunState::Running, 2001))
        .await
        .unwrap());
    let r1 = store.run("r1").await.unwrap().unwrap();
    assert_eq!((r1.state, r1.started_at), (RunState::Running, Some(2000)));
    assert!(store.progress("r1", 0.5, "gemm 32").await.unwrap());
    assert!(!store.progress("r2", 0.5, "not running").await.unwrap());
    let r1 = store.run("r1").await.unwrap().unwrap();
    assert_eq!((r1.fraction, r1.message.as_str()), (0.5, "gemm 32"));

    // Results: stored once with its rows, duplicates change nothing.
    let result = sample_result("r1", Framework::Numpy, DeviceKind::Cpu);
    let json = result.to_json();
    let rows = FleetFigure::from_result("r1", &result);
    let fleet = FleetRun::from_result(&r1, None, &result, 3000);
    assert_eq!(
        store
            .store_result(&r1, &json, Some(result.clone()), &fleet, 3000)
            .await
            .unwrap(),
        StoreOutcome::Stored
    );
    let stored_rows = store.result_rows("r1").await.unwrap();
    assert_eq!(stored_rows, rows);
    assert_eq!(stored_rows[0].best_gops, Some(42.0));
    assert_eq!(stored_rows[1].best_gops, None);
    assert_eq!(stored_rows[1].best_gbps, Some(12.5));
    assert!(stored_rows[1].in_cache && stored_rows[0].noisy);
    assert_eq!(stored_rows[2].status, "skipped");
    let r1 = store.run("r1").await.unwrap().unwrap();
    assert_eq!(
        (r1.state, r1.finished_at, r1.fraction),
        (RunState::Succeeded, Some(3000), 1.0)
    );
    assert_eq!(
        store
            .store_result(&r1, "{\"other\":1}", None, &fleet, 4000)
            .await
            .unwrap(),
        StoreOutcome::Duplicate
    );
    let results = store.results("c1").await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].1, json,
        "the duplicate did not replace the stored document"
    );
    assert_eq!(store.result_rows("r1").await.unwrap().len(), rows.len());

    // A result for a run that is not running is refused and nothing is stored.
    let r2 = store.run("r2").await.unwrap().unwrap();
    let err = store
        .store_result(
            &r2,
            &json,
            Some(result.clone()),
            &FleetRun::from_result(&r2, None, &result, 5000),
            5000,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Domain(DomainError::RunNotAccepting { ref state, .. }) if state == "queued"),
        "{err}"
    );
    assert!(store.result_rows("r2").await.unwrap().is_empty());
    assert_eq!(store.results("c1").await.unwrap().len(), 1);
    assert_eq!(
        store.run("r2").await.unwrap().unwrap().state,
        RunState::Queued
    );

    // Terminal transitions set finished_at and the message; the campaign goes inactive.
    let mut t = to("r2", "a2", RunState::Queued, RunState::AgentOffline, 9000);
    t.message = Some("agent stayed offline".into());
    assert!(store.transition(&t).await.unwrap());
    let r2 = store.run("r2").await.unwrap().unwrap();
    assert_eq!(
        (r2.finished_at, r2.message.as_str()),
        (Some(9000), "agent stayed offline")
    );
    assert!(store.active_runs().await.unwrap().is_empty());
    assert!(store.active_campaigns().await.unwrap().is_empty());

    // Pages: by agent id, and by campaign then plan order; `last` only when a page is full.
    let page = store.agents_page(None, 1).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].0, "a1");
    assert_eq!(page.last.as_deref(), Some("a1"));
    let page = store.agents_page(Some("a1"), 5).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!((ids, page.last), (vec!["a2"], None));
    let page = store.runs_page(None, None, 2).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|(_, r)| r.run_id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2"]);
    let key = RunKey {
        created_at: 1000,
        campaign_id: "c1".into(),
        seq: 1,
    };
    assert_eq!(page.last.as_ref(), Some(&key));
    let page = store.runs_page(None, Some(&key), 2).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|(_, r)| r.run_id.as_str()).collect();
    assert_eq!((ids, page.last), (vec!["r3"], None));
    let page = store.runs_page(Some("zz"), None, 2).await.unwrap();
    assert!(page.items.is_empty() && page.last.is_none());
}

fn spec() -> CampaignSpec {
    CampaignSpec {
        selector: Selector::All,
        framework: FrameworkChoice::Default,
        quick: true,
        warmup: None,
        trials: Some(1),
        max_duration_s: None,
        run_timeout_s: 60,
        deadline_s: 0,
        concurrency: 0,
        overrides: Overrides::default(),
    }
}

fn schedule(name: &str, at: i64) -> ScheduleRecord {
    ScheduleRecord {
        name: name.into(),
        spec: ScheduleSpec {
            cron: "0 2 * * *".into(),
            zone: "Europe/Berlin".into(),
            campaign: spec(),
            jitter_ms: 60_000,
            overlap: Overlap::Queue,
            catch_up_ms: Some(3_600_000),
        },
        paused: false,
        created_at: at,
        handled_until: at,
    }
}

/// A campaign of a firing of `schedule` at `scheduled_at`, with a run per agent.
fn firing_campaign(
    id: &str,
    schedule: &str,
    scheduled_at: i64,
    agents: &[&str],
) -> (CampaignRecord, Vec<RunRecord>) {
    let c = CampaignRecord {
        id: id.into(),
        created_at: scheduled_at + 5,
        deadline: scheduled_at + 86_400_000,
        spec: spec(),
        firing: Some(FiringTag {
            schedule: schedule.into(),
            scheduled_at,
        }),
    };
    let runs = agents
        .iter()
        .zip(0i64..)
        .map(|(a, seq)| run(&format!("{id}-{a}"), id, a, seq, RunState::Queued))
        .collect();
    (c, runs)
}

fn claim<'a>(
    schedule: &'a str,
    missed: &'a [(i64, String)],
    fired: Option<&'a (CampaignRecord, Vec<RunRecord>)>,
    until: Option<i64>,
    at: i64,
) -> Claim<'a> {
    Claim {
        schedule,
        missed,
        fired: fired.map(|(c, r)| (c, r.as_slice(), "on time")),
        handled_until: until,
        even_paused: false,
        at,
    }
}

/// Schedules, firings and scheduled campaigns (on top of [`suite`]'s agents a1, a2 and the
/// poisoned rows).
async fn schedule_suite<S: Store>(store: &S) {
    const T0: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;
    // Add, refuse a taken name, read back, list by name.
    let nightly = schedule("nightly", T0);
    assert!(store.add_schedule(&nightly).await.unwrap());
    let mut other = schedule("another", T0);
    other.spec.campaign.selector = Selector::Preset("test-cpu".into());
    assert!(store.add_schedule(&other).await.unwrap());
    assert!(
        !store
            .add_schedule(&schedule("nightly", T0 + 1))
            .await
            .unwrap(),
        "a taken name changes nothing"
    );
    assert_eq!(store.schedule("nightly").await.unwrap().unwrap(), nightly);
    assert!(store.schedule("nobody").await.unwrap().is_none());
    let names: Vec<String> = store
        .schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["another", "nightly"]);

    // One missed firing and one fired, in one claim: the campaign is tagged, its runs keep
    // their jitter and states, the firings are listed newest first, handled_until moves.
    let mut first = firing_campaign("n1", "nightly", T0 + 2 * DAY, &["a1", "a2"]);
    first.1[0].not_before = Some(T0 + 2 * DAY + 31_337);
    first.1[1].state = RunState::Skipped;
    first.1[1].message = "skipped: busy with run r0".into();
    first.1[1].finished_at = Some(T0 + 2 * DAY + 5);
    let missed = [(T0 + DAY, "not fired at its time".to_string())];
    let outcome = store
        .claim_firings(claim(
            "nightly",
            &missed,
            Some(&first),
            Some(T0 + 2 * DAY + 5),
            T0 + 2 * DAY + 5,
        ))
        .await
        .unwrap();
    assert_eq!(outcome, ClaimOutcome::Claimed);
    assert_eq!(store.campaign("n1").await.unwrap().unwrap(), first.0);
    assert_eq!(store.runs(Some("n1")).await.unwrap(), first.1);
    let firings = store.firings("nightly", 10).await.unwrap();
    let got: Vec<(i64, FiringOutcome, Option<&str>, &str)> = firings
        .iter()
        .map(|f| {
            (
                f.scheduled_at,
                f.outcome,
                f.campaign_id.as_deref(),
                f.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (T0 + 2 * DAY, FiringOutcome::Fired, Some("n1"), "on time"),
            (
                T0 + DAY,
                FiringOutcome::Missed,
                None,
                "not fired at its time"
            ),
        ]
    );
    assert_eq!(store.firings("nightly", 1).await.unwrap().len(), 1);
    assert_eq!(store.missed_firings("nightly").await.unwrap(), 1);
    assert_eq!(store.missed_firings("another").await.unwrap(), 0);
    let s = store.schedule("nightly").await.unwrap().unwrap();
    assert_eq!(s.handled_until, T0 + 2 * DAY + 5);

    // The same firing claimed again (another coordinator): nothing is created, and the
    // answer names the campaign that was.
    let again = firing_campaign("n1-bis", "nightly", T0 + 2 * DAY, &["a1"]);
    let outcome = store
        .claim_firings(claim(
            "nightly",
            &[],
            Some(&again),
            Some(T0 + 3 * DAY),
            T0 + 3 * DAY,
        ))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ClaimOutcome::Taken {
            campaign_id: Some("n1".into())
        }
    );
    assert!(store.campaign("n1-bis").await.unwrap().is_none());
    assert!(store.run("n1-bis-a1").await.unwrap().is_none());
    assert_eq!(
        store
            .schedule("nightly")
            .await
            .unwrap()
            .unwrap()
            .handled_until,
        T0 + 2 * DAY + 5,
        "a refused claim changes nothing"
    );
    // A missed firing recorded again, or one that fired, stays as it is; handled_until never
    // moves back.
    let stale = [
        (T0 + DAY, "again".to_string()),
        (T0 + 2 * DAY, "stale view".to_string()),
    ];
    let outcome = store
        .claim_firings(claim("nightly", &stale, None, Some(T0), T0 + 3 * DAY))
        .await
        .unwrap();
    assert_eq!(outcome, ClaimOutcome::Claimed);
    let firings = store.firings("nightly", 10).await.unwrap();
    assert_eq!(firings.len(), 2);
    assert_eq!(firings[0].outcome, FiringOutcome::Fired);
    assert_eq!(firings[1].message, "not fired at its time");
    assert_eq!(
        store
            .schedule("nightly")
            .await
            .unwrap()
            .unwrap()
            .handled_until,
        T0 + 2 * DAY + 5
    );

    // Paused: a firing is not claimed, run-now (even_paused) is; resuming moves
    // handled_until up to the resume time, pausing does not.
    assert!(store
        .set_schedule_paused("nightly", true, T0 + 4 * DAY)
        .await
        .unwrap());
    let s = store.schedule("nightly").await.unwrap().unwrap();
    assert!(s.paused);
    assert_eq!(s.handled_until, T0 + 2 * DAY + 5);
    let third = firing_campaign("n3", "nightly", T0 + 3 * DAY, &["a1"]);
    let outcome = store
        .claim_firings(claim(
            "nightly",
            &[],
            Some(&third),
            Some(T0 + 3 * DAY),
            T0 + 3 * DAY,
        ))
        .await
        .unwrap();
    assert_eq!(outcome, ClaimOutcome::NoSchedule);
    assert!(store.campaign("n3").await.unwrap().is_none());
    let now = firing_campaign("n-now", "nightly", T0 + 4 * DAY + 7, &["a2"]);
    let mut run_now = claim("nightly", &[], Some(&now), None, T0 + 4 * DAY + 7);
    run_now.even_paused = true;
    assert_eq!(
        store.claim_firings(run_now).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert!(store
        .set_schedule_paused("nightly", false, T0 + 5 * DAY)
        .await
        .unwrap());
    let s = store.schedule("nightly").await.unwrap().unwrap();
    assert_eq!((s.paused, s.handled_until), (false, T0 + 5 * DAY));
    assert!(store
        .set_schedule_paused("nightly", false, T0 + 6 * DAY)
        .await
        .unwrap());
    assert_eq!(
        store
            .schedule("nightly")
            .await
            .unwrap()
            .unwrap()
            .handled_until,
        T0 + 5 * DAY,
        "resuming an active schedule moves nothing"
    );
    assert!(!store.set_schedule_paused("nobody", true, 0).await.unwrap());

    // Campaigns newest first, with run counts, paged, by schedule.
    let page = store.campaigns_page(None, None, 100).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|(k, _)| k.id.as_str()).collect();
    assert_eq!(ids[..2], ["n-now", "n1"]);
    assert!(ids.contains(&"c1") && !ids.contains(&"cp"), "{ids:?}");
    let (c, counts) = &page.items[1].1;
    assert_eq!(c.id, "n1");
    assert_eq!(
        (
            counts[&RunState::Queued],
            counts[&RunState::Skipped],
            counts[&RunState::Running]
        ),
        (1, 1, 0)
    );
    assert_eq!(counts.len(), RunState::ALL.len(), "every state is counted");
    let first_page = store
        .campaigns_page(Some("nightly"), None, 1)
        .await
        .unwrap();
    let key = CampaignKey {
        created_at: T0 + 4 * DAY + 12,
        id: "n-now".into(),
    };
    assert_eq!(first_page.last.as_ref(), Some(&key));
    let next = store
        .campaigns_page(Some("nightly"), Some(&key), 1)
        .await
        .unwrap();
    let ids: Vec<&str> = next.items.iter().map(|(k, _)| k.id.as_str()).collect();
    assert_eq!(ids, ["n1"]);
    let last = store
        .campaigns_page(Some("nightly"), next.last.as_ref(), 1)
        .await
        .unwrap();
    assert!(last.items.is_empty() && last.last.is_none());
    assert!(store
        .campaigns_page(Some("another"), None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    // A scheduled run waiting for its jitter is active like any queued run, and its
    // campaign's tag comes back with the active campaigns.
    let active = store.active_campaigns().await.unwrap();
    assert!(active
        .iter()
        .any(|c| c.id == "n1" && c.firing == first.0.firing));

    // Removal: the schedule and its firings go, its campaigns stay (still naming it).
    assert!(store.remove_schedule("nightly").await.unwrap());
    assert!(!store.remove_schedule("nightly").await.unwrap());
    assert!(store.schedule("nightly").await.unwrap().is_none());
    assert!(store.firings("nightly", 10).await.unwrap().is_empty());
    assert_eq!(
        store.campaign("n1").await.unwrap().unwrap().firing,
        first.0.firing
    );
    assert_eq!(
        store
            .campaigns_page(Some("nightly"), None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let late = firing_campaign("n9", "nightly", T0 + 9 * DAY, &["a1"]);
    assert_eq!(
        store
            .claim_firings(claim(
                "nightly",
                &[],
                Some(&late),
                Some(T0 + 9 * DAY),
                T0 + 9 * DAY
            ))
            .await
            .unwrap(),
        ClaimOutcome::NoSchedule
    );
    assert!(store.campaign("n9").await.unwrap().is_none());
}

/// Two stores on one database (two coordinators) claim the same firings at once: for each,
/// exactly one creates its campaign and the other is told it is taken.
async fn two_stores_race_for_each_firing<S: Store>(a: &S, b: &S) {
    const T0: i64 = 1_900_000_000_000;
    assert!(a.add_schedule(&schedule("race", T0)).await.unwrap());
    for i in 0..8i64 {
        let at = T0 + i * 1000;
        let (ca, cb) = (
            firing_campaign(&format!("race-a{i}"), "race", at, &["a1"]),
            firing_campaign(&format!("race-b{i}"), "race", at, &["a1"]),
        );
        let (x, y) = tokio::join!(
            a.claim_firings(claim("race", &[], Some(&ca), Some(at), at)),
            b.claim_firings(claim("race", &[], Some(&cb), Some(at), at)),
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let winner = match (&x, &y) {
            (ClaimOutcome::Claimed, ClaimOutcome::Taken { campaign_id }) => {
                assert_eq!(campaign_id.as_deref(), Some(ca.0.id.as_str()));
                &ca.0.id
            }
            (ClaimOutcome::Taken { campaign_id }, ClaimOutcome::Claimed) => {
                assert_eq!(campaign_id.as_deref(), Some(cb.0.id.as_str()));
                &cb.0.id
            }
            other => panic!("firing {i}: not exactly one winner: {other:?}"),
        };
        let of_firing: Vec<String> = a
            .campaigns_page(Some("race"), None, 100)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|(_, (c, _))| c.firing.as_ref().is_some_and(|f| f.scheduled_at == at))
            .map(|(k, _)| k.id)
            .collect();
        assert_eq!(of_firing, std::slice::from_ref(winner), "firing {i}");
    }
}

/// Rows no coordinator writes (the capabilities a NaN memory_gb used to become, a broken
/// campaign spec, an unknown framework), inserted with raw SQL on top of [`suite`]'s data.
const POISON: &[&str] = &[
    r#"INSERT INTO agents (agent_id, hostname, labels, preset, capabilities, agent_version,
       registered_at, last_seen) VALUES ('poison', 'nan-box', '{}', NULL,
       '{"memory_gb": null}', '1', 5, 5)"#,
    r#"INSERT INTO campaigns (id, created_at, deadline, spec) VALUES ('cp', 2000, 99999, '{oops')"#,
    r#"INSERT INTO runs (run_id, campaign_id, agent_id, hostname, preset_id, framework, device,
       state, fraction, message, seq) VALUES ('rp', 'c1', 'a1', 'h', 'auto', 'cobol', 'cpu',
       'queued', 0, '', 10)"#,
    r#"INSERT INTO runs (run_id, campaign_id, agent_id, hostname, preset_id, framework, device,
       state, fraction, message, seq) VALUES ('rq', 'c1', 'poison', 'nan-box', 'auto', 'numpy',
       'cpu', 'queued', 0, '', 11)"#,
    r#"INSERT INTO runs (run_id, campaign_id, agent_id, hostname, preset_id, framework, device,
       state, fraction, message, seq) VALUES ('rc', 'cp', 'a2', 'h', 'auto', 'numpy', 'cpu',
       'queued', 0, '', 0)"#,
];

/// After [`POISON`]: every listing skips the bad rows and keeps the rest; the poisoned agent
/// can be removed (its queued run fails) and a new registration repairs it; an agent with a
/// running run cannot be removed.
async fn poisoned_rows_are_skipped_and_repairable<S: Store>(store: &S) {
    let ids = |agents: Vec<AgentRecord>| -> Vec<String> {
        agents.into_iter().map(|a| a.agent_id).collect()
    };
    assert_eq!(ids(store.agents().await.unwrap()), ["a2", "a1"]);
    assert!(
        store.agent("poison").await.is_err(),
        "a direct read says what is wrong"
    );
    // Pages step over the bad row too.
    let page = store.agents_page(Some("a2"), 1).await.unwrap();
    assert!(page.items.is_empty());
    assert_eq!(
        page.last.as_deref(),
        Some("poison"),
        "the listing moves past it"
    );
    let all = store.runs(None).await.unwrap();
    assert!(!all.iter().any(|r| r.run_id == "rp"), "{all:?}");
    assert!(all.iter().any(|r| r.run_id == "rq"));
    let page = store.runs_page(Some("c1"), None, 100).await.unwrap();
    let run_ids: Vec<&str> = page.items.iter().map(|(_, r)| r.run_id.as_str()).collect();
    assert_eq!(run_ids, ["r1", "r2", "r3", "rq"]);
    let active: Vec<String> = store
        .active_campaigns()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(active, ["c1"], "the campaign with a broken spec is skipped");
    let active: Vec<String> = store
        .active_runs()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert!(active.contains(&"rq".to_string()) && !active.contains(&"rp".to_string()));

    // Removal: the queued run fails, the agent is gone everywhere, twice is NotFound.
    assert_eq!(
        store
            .remove_agent("poison", 7000, "agent removed")
            .await
            .unwrap(),
        RemoveOutcome::Removed { failed_runs: 1 }
    );
    let rq = store.run("rq").await.unwrap().unwrap();
    assert_eq!(
        (rq.state, rq.finished_at, rq.message.as_str()),
        (RunState::Failed, Some(7000), "agent removed")
    );
    assert!(store.agent("poison").await.unwrap().is_none());
    assert!(!store.touch_agent("poison", 7001).await.unwrap());
    assert_eq!(
        store.remove_agent("poison", 7002, "x").await.unwrap(),
        RemoveOutcome::NotFound
    );
    assert_eq!(
        store.remove_agent("nobody", 7002, "x").await.unwrap(),
        RemoveOutcome::NotFound
    );
    // A registration brings it back, repaired, with its first registration time.
    store
        .upsert_agent(&agent("poison", "nan-box", 8000))
        .await
        .unwrap();
    let back = store.agent("poison").await.unwrap().unwrap();
    assert_eq!((back.registered_at, back.last_seen), (5, 8000));
    assert_eq!(store.agents().await.unwrap().len(), 3);

    // An agent running a run is not removed, and nothing changes.
    assert!(store
        .transition(&to("rc", "a2", RunState::Queued, RunState::Running, 9000))
        .await
        .unwrap());
    assert_eq!(
        store.remove_agent("a2", 9001, "x").await.unwrap(),
        RemoveOutcome::Running {
            run_id: "rc".into()
        }
    );
    assert!(store.agent("a2").await.unwrap().is_some());
    assert_eq!(
        store.run("rc").await.unwrap().unwrap().state,
        RunState::Running
    );
}

/// A campaign row as written before the spec had `warmup` and `trials`.
const OLD_CAMPAIGN_ROW: &str = r#"INSERT INTO campaigns (id, created_at, deadline, spec)
    VALUES ('old', 1000, 9000, '{"selector":"all","framework":"default","quick":true,
    "run_timeout_s":60,"deadline_s":8,"concurrency":0,"overrides":{"operations":[],
    "precisions":[],"blas_sizes":[16],"stream_mib":[],"min_gflops":0.0}}')"#;

/// The row of [`OLD_CAMPAIGN_ROW`] loads, with the engine's default warm-ups and trials.
async fn old_campaign_row_loads<S: Store>(store: &S) {
    let old = store.campaign("old").await.unwrap().expect("the old row");
    assert_eq!((old.spec.warmup, old.spec.trials), (None, None));
    assert!(old.spec.quick);
    assert_eq!(old.spec.overrides.blas_sizes, [16]);
}

#[tokio::test]
async fn sqlite_backend_passes_the_storage_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("suite.db");
    suite(SqliteStore::open(&path).await.unwrap()).await;
    // Reopening applies no migration twice and keeps the data.
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.agents().await.unwrap().len(), 2);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(OLD_CAMPAIGN_ROW).execute(&pool).await.unwrap();
    old_campaign_row_loads(&store).await;
    for sql in POISON {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    poisoned_rows_are_skipped_and_repairable(&store).await;
    schedule_suite(&store).await;
    let other = SqliteStore::open(&path).await.unwrap();
    two_stores_race_for_each_firing(&store, &other).await;
    fleet_suite(&store).await;
    ended_badly_suite(&store).await;
    let stored: i64 =
        sqlx::query_scalar("SELECT LENGTH(result_zstd) FROM results WHERE run_id = 'fr1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    check_compressed(
        quick("fr1", Framework::Numpy, 1_000_000).to_json().len(),
        stored,
    );
    old_result_setup(&store).await;
    let (json, sql) = old_result_row();
    sqlx::query(&sql).execute(&pool).await.unwrap();
    let before = summaries_before_v12(&store).await;
    for sql in WITHOUT_SUMMARIES {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let reopened = SqliteStore::open(&path).await.unwrap();
    old_result_reads(&reopened, &json).await;
    summaries_filled_in(&reopened, &before).await;
    results_arriving_together(&reopened).await;
    results_refused_alone(
        &reopened,
        |q| {
            let pool = pool.clone();
            async move {
                sqlx::query(q).execute(&pool).await.unwrap();
            }
        },
        SQLITE_REFUSE_S3,
        SQLITE_ALLOW_S3,
    )
    .await;
    join_token_suite(&reopened).await;
    quarantine_suite(&reopened).await;
    enrollment_suite(&reopened).await;
    certificate_suite(&reopened).await;
    batched_writes(&reopened).await;
}

#[tokio::test]
async fn postgres_backend_passes_the_storage_suite() {
    let Some(cluster) = PgCluster::start().await else {
        return;
    };
    suite(PgStore::open(&cluster.url).await.unwrap()).await;
    let store = PgStore::open(&cluster.url).await.unwrap();
    assert_eq!(store.agents().await.unwrap().len(), 2);
    let pool = sqlx::PgPool::connect(&cluster.url).await.unwrap();
    sqlx::query(OLD_CAMPAIGN_ROW).execute(&pool).await.unwrap();
    old_campaign_row_loads(&store).await;
    for sql in POISON {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    poisoned_rows_are_skipped_and_repairable(&store).await;
    schedule_suite(&store).await;
    let other = PgStore::open(&cluster.url).await.unwrap();
    two_stores_race_for_each_firing(&store, &other).await;
    fleet_suite(&store).await;
    ended_badly_suite(&store).await;
    let stored: i32 =
        sqlx::query_scalar("SELECT LENGTH(result_zstd) FROM results WHERE run_id = 'fr1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    check_compressed(
        quick("fr1", Framework::Numpy, 1_000_000).to_json().len(),
        i64::from(stored),
    );
    old_result_setup(&store).await;
    let (json, sql) = old_result_row();
    sqlx::query(&sql).execute(&pool).await.unwrap();
    let before = summaries_before_v12(&store).await;
    for sql in WITHOUT_SUMMARIES {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let reopened = PgStore::open(&cluster.url).await.unwrap();
    old_result_reads(&reopened, &json).await;
    summaries_filled_in(&reopened, &before).await;
    results_arriving_together(&reopened).await;
    results_refused_alone(
        &reopened,
        |q| {
            let pool = pool.clone();
            async move {
                sqlx::query(q).execute(&pool).await.unwrap();
            }
        },
        PG_REFUSE_S3,
        PG_ALLOW_S3,
    )
    .await;
    join_token_suite(&reopened).await;
    quarantine_suite(&reopened).await;
    enrollment_suite(&reopened).await;
    certificate_suite(&reopened).await;
    batched_writes(&reopened).await;
}

/// The fleet-sized writes: a campaign of more runs than one `INSERT` or one `UPDATE` carries,
/// all started with one `transitions` call (each guarded by its `from`), and several agents'
/// contacts written at once.
async fn batched_writes<S: Store>(store: &S) {
    for a in ["bw1", "bw2", "bw3"] {
        store.upsert_agent(&agent(a, a, 100)).await.unwrap();
    }
    let campaign = CampaignRecord {
        id: "bw".into(),
        created_at: 100,
        deadline: 1_000_000,
        spec: spec(),
        firing: None,
    };
    let agents = ["bw1", "bw2", "bw3"];
    let runs: Vec<RunRecord> = (0..1201)
        .map(|i| {
            let state = if i == 7 {
                RunState::Running
            } else {
                RunState::Queued
            };
            run(
                &format!("bw-{i:04}"),
                "bw",
                agents[i % 3],
                i64::try_from(i).unwrap(),
                state,
            )
        })
        .collect();
    store.create_campaign(&campaign, &runs).await.unwrap();
    assert_eq!(
        store.runs(Some("bw")).await.unwrap(),
        runs,
        "every run stored"
    );
    let starts: Vec<Transition> = runs
        .iter()
        .map(|r| {
            to(
                &r.run_id,
                &r.agent_id,
                RunState::Queued,
                RunState::Running,
                5000,
            )
        })
        .collect();
    let lease = RunLease {
        owner: "coord-a".into(),
        expires: 9000,
    };
    let changed = store.transitions(&starts, &lease).await.unwrap();
    assert_eq!(changed.len(), 1200, "all but the one already running");
    assert!(!changed.contains("bw-0007"));
    assert!(
        store.transitions(&starts, &lease).await.unwrap().is_empty(),
        "guarded"
    );
    let last = store.run("bw-1200").await.unwrap().unwrap();
    assert_eq!(
        (last.state, last.started_at),
        (RunState::Running, Some(5000))
    );
    assert_eq!(
        store.run_leases().await.unwrap().get("bw-1200"),
        Some(&lease),
        "a run started in a batch is leased to its coordinator"
    );
    assert!(store.transitions(&[], &lease).await.unwrap().is_empty());

    let unknown = store
        .touch_agents(&[
            ("bw1".into(), 7000),
            ("bw2".into(), 7001),
            ("nobody".into(), 7002),
        ])
        .await
        .unwrap();
    assert_eq!(unknown, vec!["nobody".to_string()]);
    let seen = |id: &'static str| async move { store.agent(id).await.unwrap().unwrap().last_seen };
    assert_eq!(
        (seen("bw1").await, seen("bw2").await, seen("bw3").await),
        (7000, 7001, 100)
    );
    let streaming = store.streaming_since(7000).await.unwrap();
    assert!(
        streaming.contains("bw1") && streaming.contains("bw2") && !streaming.contains("bw3"),
        "a contact written by the driver is one heard on a stream: {streaming:?}"
    );
}

// ---- fleet reports and alerts ----

/// The real quick result (numpy engine, 2-core VM) every fleet check stores.
const QUICK: &str = include_str!("../../testdata/quick-result.json");

fn quick(run_id: &str, framework: Framework, started_at: i64) -> CalibrationResult {
    let mut r = CalibrationResult::from_json(QUICK, "quick-result.json").unwrap();
    r.metadata.run_id = run_id.into();
    r.metadata.framework = framework;
    let t = chrono::DateTime::from_timestamp_millis(started_at).unwrap();
    r.metadata.started_at = t.to_rfc3339();
    r.metadata.finished_at = (t + chrono::Duration::seconds(60)).to_rfc3339();
    r
}

fn labelled(id: &str, labels: &[(&str, &str)]) -> AgentRecord {
    let mut a = agent(id, &format!("host-{id}"), 10);
    a.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    a
}

/// Stores the result of a running run as the coordinator does; returns its fleet row.
async fn store_quick<S: Store>(
    store: &S,
    run: &RunRecord,
    schedule: Option<&str>,
    started_at: i64,
) -> FleetRun {
    let result = quick(&run.run_id, run.framework, started_at);
    let fleet = FleetRun::from_result(run, schedule, &result, started_at + 61_000);
    assert_eq!(
        store
            .store_result(
                run,
                &result.to_json(),
                Some(result.clone()),
                &fleet,
                started_at + 61_000
            )
            .await
            .unwrap(),
        StoreOutcome::Stored
    );
    fleet
}

fn ids(rows: &FleetRows) -> Vec<&str> {
    rows.runs.iter().map(|r| r.run_id.as_str()).collect()
}

/// Every filter of `fleet_rows`, the compressed round trip, the labels table, run counts
/// and alerts. Uses its own agents (`f*`) and campaigns (`fc*`), so it runs on any store.
async fn fleet_suite<S: Store>(store: &S) {
    let counts_before = store.run_counts().await.unwrap();
    for a in [
        labelled("f1", &[("fsite", "lab"), ("rack", "1")]),
        labelled("f2", &[("fsite", "lab"), ("rack", "2")]),
        labelled("f3", &[("fsite", "field")]),
    ] {
        store.upsert_agent(&a).await.unwrap();
    }
    let running = |id: &str, campaign: &str, agent: &str, seq: i64, fw: Framework| RunRecord {
        framework: fw,
        ..run(id, campaign, agent, seq, RunState::Running)
    };
    let by_hand = CampaignRecord {
        id: "fc1".into(),
        created_at: 900_000,
        deadline: 9_000_000,
        spec: spec(),
        firing: None,
    };
    let hand_runs = [
        running("fr1", "fc1", "f1", 0, Framework::Numpy),
        running("fr2", "fc1", "f2", 1, Framework::Numpy),
        running("fr3", "fc1", "f3", 2, Framework::Numpy),
    ];
    store.create_campaign(&by_hand, &hand_runs).await.unwrap();
    let nightly = CampaignRecord {
        id: "fc2".into(),
        created_at: 1_900_000,
        deadline: 9_000_000,
        spec: spec(),
        firing: Some(FiringTag {
            schedule: "fleet-nightly".into(),
            scheduled_at: 1_900_000,
        }),
    };
    let night_runs = [
        running("fr4", "fc2", "f1", 0, Framework::Pytorch),
        running("fr5", "fc2", "f1", 1, Framework::Numpy),
        running("fr6", "fc2", "f2", 2, Framework::Numpy),
        running("fr7", "fc2", "f3", 3, Framework::Numpy),
    ];
    store.create_campaign(&nightly, &night_runs).await.unwrap();
    let mut stored = Vec::new();
    for (run, at) in hand_runs.iter().zip([1_000_000, 1_000_500, 1_001_000]) {
        stored.push(store_quick(store, run, None, at).await);
    }
    // fr4 and fr6 start at the same time: the run id orders them.
    for (run, at) in night_runs[..3]
        .iter()
        .zip([2_000_000, 2_000_100, 2_000_000])
    {
        stored.push(store_quick(store, run, Some("fleet-nightly"), at).await);
    }
    let per_run = CalibrationResult::from_json(QUICK, "q")
        .unwrap()
        .records
        .len();

    // Everything of this suite (the other checks' results start now, long after), in
    // (started_at, run id) order, figures in the same order.
    let all = store
        .fleet_rows(&FleetQuery {
            until: Some(2_500_000),
            figure_flags: true,
            ..FleetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&all), ["fr1", "fr2", "fr3", "fr4", "fr6", "fr5"]);
    let mut expected = stored.clone();
    expected.sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
    assert_eq!(
        all.runs, expected,
        "every column round-trips, peaks included"
    );
    assert!(all.runs[0].peaks.len() >= 4 && !all.runs[0].anomalies.is_empty());
    assert_eq!(all.figures.len(), 6 * per_run);
    let order: Vec<(&str, i64)> = all
        .figures
        .iter()
        .map(|f| (f.run_id.as_str(), f.idx))
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by_key(|(run, idx)| (ids(&all).iter().position(|r| r == run), *idx));
    assert_eq!(order, sorted, "figures follow the runs, then record order");
    let result = quick("fr1", Framework::Numpy, 1_000_000);
    assert_eq!(
        store.result_rows("fr1").await.unwrap(),
        FleetFigure::from_result("fr1", &result),
        "every figure column round-trips"
    );

    // Each filter alone, then together.
    let q = |f: fn(&mut FleetQuery)| {
        let mut q = FleetQuery::default();
        f(&mut q);
        q
    };
    let cases: Vec<(FleetQuery, Vec<&str>)> = vec![
        (
            q(|q| q.select = vec![("fsite".into(), "lab".into())]),
            vec!["fr1", "fr2", "fr4", "fr6", "fr5"],
        ),
        (
            q(|q| q.select = vec![("fsite".into(), "lab".into()), ("rack".into(), "2".into())]),
            vec!["fr2", "fr6"],
        ),
        (
            q(|q| q.select = vec![("fsite".into(), "moon".into())]),
            vec![],
        ),
        (q(|q| q.agent_id = Some("f3".into())), vec!["fr3"]),
        (
            q(|q| {
                q.since = Some(2_000_000);
                q.until = Some(2_500_000)
            }),
            vec!["fr4", "fr6", "fr5"],
        ),
        (q(|q| q.until = Some(1_000_500)), vec!["fr1"]),
        (
            q(|q| {
                q.since = Some(1_000_000);
                q.until = Some(2_000_000)
            }),
            vec!["fr1", "fr2", "fr3"],
        ),
        (
            q(|q| q.schedule = Some("fleet-nightly".into())),
            vec!["fr4", "fr6", "fr5"],
        ),
        (q(|q| q.framework = Some("pytorch".into())), vec!["fr4"]),
        (
            q(|q| q.campaign_id = Some("fc1".into())),
            vec!["fr1", "fr2", "fr3"],
        ),
        (
            q(|q| {
                q.select = vec![("fsite".into(), "lab".into())];
                q.schedule = Some("fleet-nightly".into());
                q.framework = Some("numpy".into());
                q.since = Some(2_000_050);
            }),
            vec!["fr5"],
        ),
        // Each board × framework's latest of what the other filters select.
        (
            q(|q| {
                q.latest_only = true;
                q.until = Some(2_500_000)
            }),
            vec!["fr3", "fr4", "fr6", "fr5"],
        ),
        (
            q(|q| {
                q.latest_only = true;
                q.until = Some(1_500_000)
            }),
            vec!["fr1", "fr2", "fr3"],
        ),
        (
            q(|q| {
                q.latest_only = true;
                q.select = vec![("fsite".into(), "lab".into())];
                q.framework = Some("numpy".into());
            }),
            vec!["fr6", "fr5"],
        ),
        // The runs with a run of the other framework on their board in their campaign (f1
        // ran both in fc2; f2 and f3 NumPy alone).
        (
            q(|q| {
                q.paired_only = true;
                q.until = Some(2_500_000)
            }),
            vec!["fr4", "fr5"],
        ),
        (
            q(|q| {
                q.paired_only = true;
                q.framework = Some("numpy".into());
            }),
            vec!["fr5"],
        ),
        // One run by its id (the drift check adds it to a board's kept history).
        (q(|q| q.run_id = Some("fr4".into())), vec!["fr4"]),
        (
            q(|q| {
                q.run_id = Some("fr4".into());
                q.agent_id = Some("f2".into());
            }),
            vec![],
        ),
    ];
    for (query, want) in cases {
        let rows = store.fleet_rows(&query).await.unwrap();
        assert_eq!(ids(&rows), want, "{query:?}");
        // The count the drift check validates a kept history with: as many as read.
        assert_eq!(
            store.fleet_run_count(&query).await.unwrap(),
            u64::try_from(want.len()).unwrap(),
            "{query:?}"
        );
        assert_eq!(rows.figures.len(), want.len() * per_run, "{query:?}");
        assert!(
            rows.figures
                .iter()
                .all(|f| want.contains(&f.run_id.as_str())),
            "{query:?}"
        );
    }

    // The runs alone: the same runs, no figures.
    let runs_only = store
        .fleet_rows(&FleetQuery {
            until: Some(2_500_000),
            runs_only: true,
            figure_flags: true,
            ..FleetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(runs_only.runs, all.runs);
    assert!(runs_only.figures.is_empty());

    // The labels table follows re-registration: a label changed or dropped.
    store
        .upsert_agent(&labelled("f3", &[("fsite", "lab")]))
        .await
        .unwrap();
    store
        .upsert_agent(&labelled("f2", &[("rack", "2")]))
        .await
        .unwrap();
    let lab = store
        .fleet_rows(&q(|q| q.select = vec![("fsite".into(), "lab".into())]))
        .await
        .unwrap();
    assert_eq!(ids(&lab), ["fr1", "fr3", "fr4", "fr5"]);

    // The document is stored compressed and reads back as uploaded.
    let docs = store.results("fc1").await.unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].1, result.to_json());

    // Run counts: every state, the suite's runs added.
    fr7_counts(store, &counts_before).await;

    alerts_suite(store).await;
}

/// `run_counts` has every state, and this suite's runs: 6 succeeded, 1 running (fr7).
async fn fr7_counts<S: Store>(store: &S, before: &RunCounts) {
    let after = store.run_counts().await.unwrap();
    assert_eq!(after.len(), RunState::ALL.len());
    for state in RunState::ALL {
        let added = match state {
            RunState::Succeeded => 6,
            RunState::Running => 1,
            _ => 0,
        };
        assert_eq!(after[&state], before[&state] + added, "{state:?}");
    }
}

fn alert(id: &str, agent: &str, framework: &str, figure: &str, at: i64) -> AlertRecord {
    AlertRecord {
        id: id.into(),
        agent_id: agent.into(),
        hostname: format!("host-{agent}"),
        group_key: "g1".into(),
        framework: framework.into(),
        figure: figure.into(),
        baseline: 100.0,
        current: 80.0,
        change_pct: -20.0,
        kind: "step".into(),
        began_at: at - 10,
        run_id: "fr1".into(),
        confirm_campaign_id: None,
        state: AlertState::Suspected,
        created_at: at,
        updated_at: at,
        message: "suspected".into(),
    }
}

/// Alerts: one live alert per (agent, framework, figure); guarded updates; listing.
async fn alerts_suite<S: Store>(store: &S) {
    let a1 = alert("al1", "f1", "numpy", "gemm_peak fp32", 100);
    assert!(store.insert_alert(&a1).await.unwrap());
    assert_eq!(store.alert("al1").await.unwrap(), Some(a1.clone()));
    assert_eq!(store.alert("nope").await.unwrap(), None);
    // A second live alert for the same board, framework and figure is refused...
    let mut again = alert("al2", "f1", "numpy", "gemm_peak fp32", 200);
    again.state = AlertState::Open;
    assert!(!store.insert_alert(&again).await.unwrap());
    assert_eq!(store.alert("al2").await.unwrap(), None);
    // ...one for another figure or framework is not.
    assert!(store
        .insert_alert(&alert("al3", "f1", "numpy", "stream_bandwidth", 300))
        .await
        .unwrap());
    assert!(store
        .insert_alert(&alert("al4", "f1", "pytorch", "gemm_peak fp32", 400))
        .await
        .unwrap());

    // Updates are guarded by the states they start from.
    let confirm = AlertUpdate {
        state: AlertState::Open,
        current: Some(79.0),
        change_pct: None,
        confirm_campaign_id: Some("fc2".into()),
        message: "confirmed by fc2".into(),
        at: 500,
    };
    assert!(!store
        .update_alert("al1", &[AlertState::Open], &confirm)
        .await
        .unwrap());
    assert!(!store.update_alert("al1", &[], &confirm).await.unwrap());
    assert!(!store
        .update_alert("nope", &[AlertState::Suspected], &confirm)
        .await
        .unwrap());
    assert_eq!(store.alert("al1").await.unwrap(), Some(a1.clone()));
    assert!(store
        .update_alert("al1", &[AlertState::Suspected], &confirm)
        .await
        .unwrap());
    let open = store.alert("al1").await.unwrap().unwrap();
    assert_eq!(
        open,
        AlertRecord {
            state: AlertState::Open,
            current: 79.0,
            confirm_campaign_id: Some("fc2".into()),
            message: "confirmed by fc2".into(),
            updated_at: 500,
            ..a1.clone()
        },
        "an update without a change keeps the stored one"
    );
    let dismiss = AlertUpdate {
        state: AlertState::Dismissed,
        current: None,
        change_pct: None,
        confirm_campaign_id: None,
        message: "false alarm (ops)".into(),
        at: 600,
    };
    assert!(store
        .update_alert(
            "al1",
            &[AlertState::Open, AlertState::Acknowledged],
            &dismiss
        )
        .await
        .unwrap());
    // Dismissed is not live: a new alert for that figure may be raised.
    assert!(store.insert_alert(&again).await.unwrap());

    // Listing: newest first, by state.
    let list = |states: &'static [AlertState]| async move {
        store
            .alerts(states)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(list(&[]).await, ["al4", "al3", "al2", "al1"]);
    assert_eq!(list(&[AlertState::Open]).await, ["al2"]);
    assert_eq!(list(&[AlertState::Dismissed]).await, ["al1"]);
    assert_eq!(
        list(&[AlertState::Suspected, AlertState::Open]).await,
        ["al4", "al3", "al2"]
    );
    assert!(list(&[AlertState::Resolved]).await.is_empty());

    // One board's alerts, newest first, whatever their state.
    assert!(store
        .insert_alert(&alert("al5", "f2", "numpy", "gemm_peak fp32", 700))
        .await
        .unwrap());
    let of = |agent: &'static str| async move {
        store
            .agent_alerts(agent)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("f1").await, ["al4", "al3", "al2", "al1"]);
    assert_eq!(of("f2").await, ["al5"]);
    assert!(of("nobody").await.is_empty());
}

/// Stored bytes of one quick result against its JSON (printed): the derived form.
fn check_compressed(json_len: usize, stored: i64) {
    let stored = usize::try_from(stored).unwrap();
    println!(
        "a quick result: {json_len} bytes of JSON stored as {stored} bytes ({:.1}x smaller)",
        json_len as f64 / stored as f64
    );
    // Plain zstd gives ~7×; the derived form (store/codec.rs) ~17×.
    assert!(
        stored * 12 < json_len,
        "{stored} of {json_len}: derived form"
    );
}

/// A result row written before compression (plain text, no fleet rows) for the running run
/// `or1` of campaign `oc` (made by [`old_result_setup`]).
fn old_result_row() -> (String, String) {
    let json = quick("or1", Framework::Numpy, 3_000_000).to_json();
    let sql = format!(
        "INSERT INTO results (run_id, agent_id, stored_at, result_json) \
         VALUES ('or1', 'f1', 3100000, '{}')",
        json.replace('\'', "''")
    );
    (json, sql)
}

async fn old_result_setup<S: Store>(store: &S) {
    let c = CampaignRecord {
        id: "oc".into(),
        created_at: 2_900_000,
        deadline: 9_000_000,
        spec: spec(),
        firing: None,
    };
    store
        .create_campaign(&c, &[run("or1", "oc", "f1", 0, RunState::Succeeded)])
        .await
        .unwrap();
}

/// After [`old_result_row`] and a reopen: the plain document reads, and opening filled in
/// its fleet rows.
async fn old_result_reads<S: Store>(store: &S, json: &str) {
    let docs = store.results("oc").await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].1, json);
    let rows = store
        .fleet_rows(&FleetQuery {
            campaign_id: Some("oc".into()),
            ..FleetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&rows), ["or1"]);
    assert_eq!(rows.runs[0].started_at, 3_000_000);
    assert_eq!(rows.runs[0].stored_at, 3_100_000);
    let per_run = CalibrationResult::from_json(json, "old")
        .unwrap()
        .records
        .len();
    assert_eq!(rows.figures.len(), per_run);
}

/// The runs of some campaigns that ended without a result, and none of the others. Uses
/// campaign `eb` of agents `f1`..`f3` (made by [`fleet_suite`]).
async fn ended_badly_suite<S: Store>(store: &S) {
    let c = CampaignRecord {
        id: "eb".into(),
        created_at: 5_000_000,
        deadline: 9_000_000,
        spec: spec(),
        firing: None,
    };
    let runs = [
        run("eb1", "eb", "f1", 0, RunState::Failed),
        run("eb2", "eb", "f2", 1, RunState::Succeeded),
        run("eb3", "eb", "f3", 2, RunState::TimedOut),
        run("eb4", "eb", "f1", 3, RunState::AgentOffline),
        run("eb5", "eb", "f2", 4, RunState::Queued),
        run("eb6", "eb", "f3", 5, RunState::Running),
    ];
    store.create_campaign(&c, &runs).await.unwrap();
    let bad = store
        .runs_ended_badly(&["eb".to_string(), "no-such".to_string()])
        .await
        .unwrap();
    let ids: Vec<&str> = bad.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["eb1", "eb3", "eb4"]);
    assert!(store.runs_ended_badly(&[]).await.unwrap().is_empty());
}

/// Fleet rows as schema v11 left them: no packed summary, flags, points or rates (their
/// peaks, anomaly lines and figures were rows of the tables v12 dropped; v12's rows have a
/// summary and no flags, points or rates, v13's no rates, and are filled in alike: migration
/// v14 puts every row in `fleet_rates_todo`).
const WITHOUT_SUMMARIES: [&str; 3] = [
    "UPDATE fleet_runs SET summary = NULL, flags = NULL, points = NULL \
     WHERE campaign_id = 'fc1'",
    "DELETE FROM fleet_rates WHERE run_id IN \
     (SELECT run_id FROM fleet_runs WHERE campaign_id = 'fc1')",
    "INSERT INTO fleet_rates_todo (run_id) SELECT run_id FROM fleet_runs \
     WHERE campaign_id = 'fc1'",
];

/// Campaign `fc1`'s runs with their headline records, before [`WITHOUT_SUMMARIES`].
async fn summaries_before_v12<S: Store>(store: &S) -> FleetRows {
    let rows = store
        .fleet_rows(&FleetQuery {
            campaign_id: Some("fc1".into()),
            headline_figures_only: true,
            figure_flags: true,
            roofline_points: true,
            pair_rates: true,
            ..FleetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.runs.len(), 3);
    assert!(rows
        .runs
        .iter()
        .all(|r| !r.peaks.is_empty() && !r.anomalies.is_empty() && !r.figure_flags.is_empty()));
    assert!(!rows.figures.is_empty());
    rows
}

/// After [`WITHOUT_SUMMARIES`] and a reopen: the store filled the summaries in from the
/// documents, the same as they were.
async fn summaries_filled_in<S: Store>(store: &S, before: &FleetRows) {
    assert_eq!(&summaries_before_v12(store).await, before);
}

/// Agent `agent_id` and its campaign `campaign`, created at `at`: `n` running runs
/// `{prefix}0`.. and one queued run `{prefix}q`, which are returned.
async fn running_campaign<S: Store>(
    store: &S,
    agent_id: &str,
    campaign: &str,
    prefix: &str,
    n: i64,
    at: i64,
) -> Vec<RunRecord> {
    store
        .upsert_agent(&agent(agent_id, &format!("host-{agent_id}"), 10))
        .await
        .unwrap();
    let c = CampaignRecord {
        id: campaign.into(),
        created_at: at,
        deadline: 9_000_000,
        spec: spec(),
        firing: None,
    };
    let mut runs: Vec<RunRecord> = (0..n)
        .map(|i| {
            run(
                &format!("{prefix}{i}"),
                campaign,
                agent_id,
                i,
                RunState::Running,
            )
        })
        .collect();
    runs.push(run(
        &format!("{prefix}q"),
        campaign,
        agent_id,
        n,
        RunState::Queued,
    ));
    store.create_campaign(&c, &runs).await.unwrap();
    runs
}

/// Results arriving together are committed together (the store's group-commit writer):
/// each caller still gets its own outcome — stored, a duplicate, a run not running — and
/// every stored document reads back byte for byte. Uses agent `g1` and campaign `gc`.
async fn results_arriving_together<S: Store + Clone + 'static>(store: &S) {
    let runs = running_campaign(store, "g1", "gc", "g", 8, 4_000_000).await;
    let mut docs = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    // g0 twice (the second is a duplicate, whichever lands first), gq not running.
    for r in runs.iter().chain(std::iter::once(&runs[0])) {
        let started = 4_000_000 + 1000 * r.seq;
        let mut result = quick(&r.run_id, r.framework, started);
        // Documents the codec cannot store derived, or only in part, read back as well:
        // g1 compact (not the canonical JSON), g2 with rates that are not their latencies'
        // (kept as they are), g3 with trailing text; g4 and g5 are stored packed (below).
        if r.run_id == "g2" {
            for rec in &mut result.records {
                if let Some(g) = rec.gops.as_mut() {
                    g.best *= 1.1;
                }
            }
        }
        let json = match r.run_id.as_str() {
            "g1" => serde_json::to_string(&result).unwrap(),
            "g3" => result.to_json() + "\n",
            _ => result.to_json(),
        };
        docs.insert(r.run_id.clone(), json.clone());
        let fleet = FleetRun::from_result(r, None, &result, started + 61_000);
        let (store, r) = (store.clone(), r.clone());
        // g4 and g5 come packed, as an agent uploads to a coordinator that takes it: stored
        // as they came, read back as their JSON.
        let packed = matches!(r.run_id.as_str(), "g4" | "g5")
            .then(|| fleetcal_proto::document::encode_upload(&json).expect("packs"));
        tasks.spawn(async move {
            let outcome = match packed {
                Some(packed) => {
                    store
                        .store_packed_result(&r, &packed, result.clone(), &fleet, started + 61_000)
                        .await
                }
                None => {
                    store
                        .store_result(&r, &json, Some(result.clone()), &fleet, started + 61_000)
                        .await
                }
            };
            (r.run_id, outcome)
        });
    }
    let mut stored = Vec::new();
    let mut duplicates = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (id, Ok(StoreOutcome::Stored)) => stored.push(id),
            (id, Ok(StoreOutcome::Duplicate)) => {
                assert_eq!(id, "g0");
                duplicates += 1;
            }
            (id, Err(e)) => {
                assert_eq!(id, "gq", "{e}");
                assert!(
                    matches!(e, Error::Domain(DomainError::RunNotAccepting { ref state, .. }) if state == "queued"),
                    "{e}"
                );
            }
        }
    }
    stored.sort();
    assert_eq!(stored, ["g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"]);
    assert_eq!(duplicates, 1);
    let read = store.results("gc").await.unwrap();
    assert_eq!(read.len(), 8, "nothing of gq is stored");
    for (r, text) in &read {
        assert_eq!(
            Some(text),
            docs.get(&r.run_id),
            "{} reads back exactly",
            r.run_id
        );
        assert_eq!(r.state, RunState::Succeeded);
        let figures = store.result_rows(&r.run_id).await.unwrap();
        assert_eq!(figures.len(), 164, "{}", r.run_id);
    }
    assert!(store.result_rows("gq").await.unwrap().is_empty());
    assert_eq!(
        store.run("gq").await.unwrap().unwrap().state,
        RunState::Queued
    );
    // What the drift check reads: every run with the records its headline figures are made
    // of (kept with the run), the same headlines as from every record of the document.
    let rows = store
        .fleet_rows(&FleetQuery {
            agent_id: Some("g1".into()),
            headline_figures_only: true,
            ..FleetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.runs.len(), 8);
    for run in &rows.runs {
        let every = store.result_rows(&run.run_id).await.unwrap();
        let kept: Vec<FleetFigure> = rows
            .figures
            .iter()
            .filter(|f| f.run_id == run.run_id)
            .cloned()
            .collect();
        assert_eq!(
            kept,
            fleet::headline::headline_records(&every),
            "{}",
            run.run_id
        );
        assert!(
            !kept.is_empty() && kept.len() * 4 < every.len(),
            "{}",
            kept.len()
        );
        assert_eq!(
            fleet::headline::headlines(run, &kept.iter().collect::<Vec<_>>()),
            fleet::headline::headlines(run, &every.iter().collect::<Vec<_>>()),
        );
    }
    // With the pair rates: every measured record, with the very rates the compare report
    // reads of the document (g2's are not their latencies'), and no document opened.
    let paired = store
        .fleet_rows(&FleetQuery {
            agent_id: Some("g1".into()),
            headline_figures_only: true,
            pair_rates: true,
            ..FleetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(paired.runs, rows.runs);
    let rated = |figures: &mut dyn Iterator<Item = &FleetFigure>| {
        figures
            .filter_map(|f| {
                fleet::headline::rates(f)
                    .map(|r| (f.idx, f.operation.clone(), f.precision.clone(), f.size, r))
            })
            .collect::<Vec<_>>()
    };
    for run in &paired.runs {
        let every = store.result_rows(&run.run_id).await.unwrap();
        let kept = rated(&mut paired.figures.iter().filter(|f| f.run_id == run.run_id));
        assert_eq!(kept, rated(&mut every.iter()), "{}", run.run_id);
        assert!(
            kept.len() > 50,
            "{}: {} measured records",
            run.run_id,
            kept.len()
        );
    }
}

/// Results arriving together, each run once: whatever batches the writer makes of them, it
/// stores them set-wise (a few statements a batch), and a duplicate or a run that is not
/// running is still refused alone. Then a result whose fleet row the database refuses (a
/// trigger, made by `sql` running `refuse`, dropped by `allow`) fails alone: the batch goes
/// again result by result, the others are stored, and nothing of it is kept, so it is stored
/// once the cause is gone.
async fn results_refused_alone<S, F, Fut>(
    store: &S,
    sql: F,
    refuse: &[&'static str],
    allow: &[&'static str],
) where
    S: Store + Clone + 'static,
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runs = running_campaign(store, "s1", "sc", "s", 6, 5_000_000).await;
    let by_id = |id: &str| runs.iter().find(|r| r.run_id == id).unwrap().clone();
    store_quick(store, &by_id("s0"), None, 5_000_000).await;
    let together = |ids: &[&str]| {
        let mut tasks = tokio::task::JoinSet::new();
        for id in ids {
            let (store, r) = (store.clone(), by_id(id));
            tasks.spawn(async move {
                let started = 5_000_000 + 1000 * r.seq;
                let result = quick(&r.run_id, r.framework, started);
                let fleet = FleetRun::from_result(&r, None, &result, started + 61_000);
                let outcome = store
                    .store_result(
                        &r,
                        &result.to_json(),
                        Some(result.clone()),
                        &fleet,
                        started + 61_000,
                    )
                    .await;
                (r.run_id, outcome)
            });
        }
        tasks.join_all()
    };
    let mut outcomes = together(&["s0", "s1", "s2", "sq"]).await;
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, outcome) in &outcomes {
        match (id.as_str(), outcome) {
            ("s0", Ok(StoreOutcome::Duplicate)) | ("s1" | "s2", Ok(StoreOutcome::Stored)) => {}
            ("sq", Err(Error::Domain(DomainError::RunNotAccepting { state, .. })))
                if state == "queued" => {}
            (id, outcome) => panic!("{id}: {outcome:?}"),
        }
    }
    assert!(store.result_rows("sq").await.unwrap().is_empty());
    assert_eq!(
        store.run("sq").await.unwrap().unwrap().state,
        RunState::Queued
    );
    for id in ["s1", "s2"] {
        let r = store.run(id).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.finished_at),
            (RunState::Succeeded, Some(5_061_000 + 1000 * r.seq))
        );
        assert_eq!(store.result_rows(id).await.unwrap().len(), 164, "{id}");
    }

    for q in refuse {
        sql(q).await;
    }
    let mut outcomes = together(&["s3", "s4", "s5"]).await;
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        matches!(outcomes[0], (_, Err(Error::Storage { .. }))),
        "s3 cannot have its fleet row: {:?}",
        outcomes[0]
    );
    for (id, outcome) in &outcomes[1..] {
        assert!(
            matches!(outcome, Ok(StoreOutcome::Stored)),
            "{id}: {outcome:?}"
        );
    }
    let s3 = store.run("s3").await.unwrap().unwrap();
    assert_eq!(s3.state, RunState::Running, "nothing of s3 is kept");
    assert!(store.result_rows("s3").await.unwrap().is_empty());
    for q in allow {
        sql(q).await;
    }
    let mut outcomes = together(&["s3"]).await;
    assert!(matches!(
        outcomes.pop(),
        Some((_, Ok(StoreOutcome::Stored)))
    ));
    assert_eq!(
        store.run("s3").await.unwrap().unwrap().state,
        RunState::Succeeded
    );
}

/// A trigger that refuses run `s3`'s fleet row ([`results_refused_alone`]), on SQLite.
const SQLITE_REFUSE_S3: &[&str] = &["CREATE TRIGGER refuse_s3 BEFORE INSERT ON fleet_runs \
     WHEN NEW.run_id = 's3' BEGIN SELECT RAISE(ABORT, 'the test refuses s3'); END"];
/// Drops [`SQLITE_REFUSE_S3`].
const SQLITE_ALLOW_S3: &[&str] = &["DROP TRIGGER refuse_s3"];
/// A trigger that refuses run `s3`'s fleet row ([`results_refused_alone`]), on PostgreSQL.
const PG_REFUSE_S3: &[&str] = &[
    "CREATE FUNCTION refuse_s3() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
     IF NEW.run_id = 's3' THEN RAISE EXCEPTION 'the test refuses s3'; END IF; RETURN NEW; \
     END $$",
    "CREATE TRIGGER refuse_s3 BEFORE INSERT ON fleet_runs FOR EACH ROW \
     EXECUTE FUNCTION refuse_s3()",
];
/// Drops [`PG_REFUSE_S3`].
const PG_ALLOW_S3: &[&str] = &[
    "DROP TRIGGER refuse_s3 ON fleet_runs",
    "DROP FUNCTION refuse_s3()",
];

// ---- join tokens ----

/// A join token is stored by its hash; each redemption takes one use, atomically (the last use
/// raced by several redeemers goes to exactly one); an expired, used-up or unknown token is
/// refused, each with its reason.
async fn join_token_suite<S: Store>(store: &S) {
    use fleetcal_coordinator::store::{JoinToken, Redeemed};
    let labels: std::collections::BTreeMap<String, String> =
        [("site".to_string(), "lab".to_string())].into();
    let token = |hash: &str, uses: u32, expires_at: i64| JoinToken {
        token_hash: hash.into(),
        labels: labels.clone(),
        uses_left: uses,
        expires_at,
        created_at: 1_000,
    };
    store
        .create_join_token(&token("two", 2, 10_000))
        .await
        .unwrap();
    store
        .create_join_token(&token("old", 5, 2_000))
        .await
        .unwrap();
    assert!(
        store.create_join_token(&token("two", 1, 1)).await.is_err(),
        "a hash is stored once"
    );
    assert_eq!(
        store.redeem_join_token("two", 5_000).await.unwrap(),
        Redeemed::Accepted(labels.clone())
    );
    // The last use, raced by four redeemers: one gets it.
    let races = futures_like_join(store, "two", 5_000).await;
    assert_eq!(
        races
            .iter()
            .filter(|r| matches!(r, Redeemed::Accepted(_)))
            .count(),
        1,
        "{races:?}"
    );
    assert!(races
        .iter()
        .all(|r| matches!(r, Redeemed::Accepted(_) | Redeemed::UsedUp)));
    assert_eq!(
        store.redeem_join_token("two", 5_001).await.unwrap(),
        Redeemed::UsedUp
    );
    assert_eq!(
        store.redeem_join_token("old", 2_000).await.unwrap(),
        Redeemed::Expired
    );
    assert_eq!(
        store.redeem_join_token("nope", 0).await.unwrap(),
        Redeemed::Unknown
    );
}

/// A cloned board's quarantine: kept once with its first reason, listed by id, lifted once.
async fn quarantine_suite<S: Store>(store: &S) {
    assert!(store.quarantined_agents().await.unwrap().is_empty());
    store
        .quarantine_agent("q2", "clone seen", 1_000)
        .await
        .unwrap();
    store.quarantine_agent("q1", "first", 1_000).await.unwrap();
    store.quarantine_agent("q1", "second", 2_000).await.unwrap();
    assert_eq!(
        store.quarantined_agents().await.unwrap(),
        vec![
            ("q1".to_string(), "first".to_string()),
            ("q2".to_string(), "clone seen".to_string())
        ]
    );
    assert!(store.release_agent("q1").await.unwrap());
    assert!(!store.release_agent("q1").await.unwrap(), "released once");
    assert!(!store.release_agent("never").await.unwrap());
    assert_eq!(store.quarantined_agents().await.unwrap().len(), 1);
    assert!(store.release_agent("q2").await.unwrap());
}

fn enrollment(id: &str, key: &str, at: i64) -> EnrollmentRequest {
    EnrollmentRequest {
        agent_id: id.into(),
        hostname: format!("host-{id}"),
        key_fingerprint: key.into(),
        state: EnrollmentState::Pending,
        requested_at: at,
        decided_at: None,
    }
}

/// Enrollment requests without a join token (migration 0010): filed once per id (a second
/// request keeps the first), bounded in number while pending, decided only while pending.
async fn enrollment_suite<S: Store>(store: &S) {
    assert!(store.pending_enrollments().await.unwrap().is_empty());
    assert_eq!(store.enrollment_request("e1").await.unwrap(), None);
    let first = enrollment("e1", "sha256:aa", 1_000);
    assert_eq!(
        store.request_enrollment(&first, 2).await.unwrap(),
        Some(first.clone())
    );
    // Asked again (another key, later): the first request stands.
    assert_eq!(
        store
            .request_enrollment(&enrollment("e1", "sha256:bb", 2_000), 2)
            .await
            .unwrap(),
        Some(first.clone())
    );
    let second = enrollment("e2", "sha256:cc", 1_500);
    store.request_enrollment(&second, 2).await.unwrap();
    // The bound: two wait, a third is not filed.
    assert_eq!(
        store
            .request_enrollment(&enrollment("e3", "sha256:dd", 3_000), 2)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.enrollment_request("e3").await.unwrap(), None);
    assert_eq!(
        store.pending_enrollments().await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    // Decided once: approve e1, deny e2; a later decision changes nothing.
    let approved = store
        .decide_enrollment("e1", EnrollmentState::Approved, 4_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (approved.state, approved.decided_at),
        (EnrollmentState::Approved, Some(4_000))
    );
    let again = store
        .decide_enrollment("e1", EnrollmentState::Denied, 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, approved);
    store
        .decide_enrollment("e2", EnrollmentState::Denied, 4_500)
        .await
        .unwrap();
    assert_eq!(
        store.enrollment_request("e2").await.unwrap().unwrap().state,
        EnrollmentState::Denied
    );
    assert_eq!(
        store
            .decide_enrollment("never", EnrollmentState::Approved, 1)
            .await
            .unwrap(),
        None
    );
    // Decided requests no longer wait nor count against the bound.
    assert!(store.pending_enrollments().await.unwrap().is_empty());
    let third = enrollment("e3", "sha256:dd", 6_000);
    assert_eq!(
        store.request_enrollment(&third, 2).await.unwrap(),
        Some(third)
    );
}

/// Agents' certificate expiries: the latest record of an id replaces the one before; a
/// range of ids (a page of agents) reads only its own, by id.
async fn certificate_suite<S: Store>(store: &S) {
    assert!(store
        .certificate_expiries("", "\u{10ffff}")
        .await
        .unwrap()
        .is_empty());
    store.record_certificate("c2", 9_000, 1_000).await.unwrap();
    store.record_certificate("c1", 5_000, 1_000).await.unwrap();
    store.record_certificate("c3", 7_000, 1_000).await.unwrap();
    // A renewal: the later certificate replaces the earlier.
    store.record_certificate("c1", 8_000, 2_000).await.unwrap();
    assert_eq!(
        store.certificate_expiries("c1", "c2").await.unwrap(),
        vec![("c1".to_string(), 8_000), ("c2".to_string(), 9_000)]
    );
    assert_eq!(
        store.certificate_expiries("c3", "c3").await.unwrap(),
        vec![("c3".to_string(), 7_000)]
    );
    assert!(store
        .certificate_expiries("d", "z")
        .await
        .unwrap()
        .is_empty());
}

/// Four redemptions of `hash` at once.
async fn futures_like_join<S: Store>(
    store: &S,
    hash: &str,
    now: i64,
) -> Vec<fleetcal_coordinator::store::Redeemed> {
    let (a, b, c, d) = tokio::join!(
        store.redeem_join_token(hash, now),
        store.redeem_join_token(hash, now),
        store.redeem_join_token(hash, now),
        store.redeem_join_token(hash, now)
    );
    vec![a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()]
}
