//! Unit and property tests of the campaign dispatcher.

use std::collections::{HashMap, HashSet};

use fleetcal_proto::{DeviceKind, Framework};
use proptest::prelude::*;

use super::*;
use crate::model::{CampaignSpec, FrameworkChoice, Overrides, Selector};

fn campaign(id: &str, created_at: Millis, concurrency: u32) -> CampaignRecord {
    CampaignRecord {
        id: id.into(),
        created_at,
        deadline: created_at + 100_000,
        spec: CampaignSpec {
            selector: Selector::All,
            framework: FrameworkChoice::Default,
            quick: true,
            warmup: None,
            trials: None,
            max_duration_s: None,
            run_timeout_s: 10,
            deadline_s: 100,
            concurrency,
            overrides: Overrides::default(),
        },
        firing: None,
    }
}

fn run(
    id: &str,
    campaign: &str,
    agent: &str,
    state: RunState,
    started_at: Option<Millis>,
) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        campaign_id: campaign.into(),
        agent_id: agent.into(),
        hostname: agent.into(),
        preset_id: "auto".into(),
        framework: Framework::Numpy,
        device: DeviceKind::Cpu,
        state,
        fraction: 0.0,
        message: String::new(),
        seq: id
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or(0),
        started_at,
        finished_at: None,
        not_before: None,
    }
}

const ME: &str = "me";

fn nobody() -> &'static HashSet<String> {
    static NOBODY: std::sync::LazyLock<HashSet<String>> = std::sync::LazyLock::new(HashSet::new);
    &NOBODY
}

fn no_leases() -> &'static HashMap<String, RunLease> {
    static NONE: std::sync::LazyLock<HashMap<String, RunLease>> =
        std::sync::LazyLock::new(HashMap::new);
    &NONE
}

fn lease(owner: &str, expires: Millis) -> RunLease {
    RunLease {
        owner: owner.into(),
        expires,
    }
}

fn by_id_of<'a>(runs: &'a [RunRecord], id: &str) -> &'a RunRecord {
    runs.iter().find(|r| r.run_id == id).unwrap()
}

fn online(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn starts_timeouts_and_offline_deadlines() {
    let c = [campaign("c", 0, 0)];
    let runs = [
        run("r1", "c", "a", RunState::Running, Some(0)),
        run("r2", "c", "b", RunState::Queued, None),
        run("r3", "c", "z", RunState::Queued, None),
    ];
    let connected = online(&["a", "b"]);
    let snap = |now| Snapshot {
        now,
        campaigns: &c,
        runs: &runs,
        live: &connected,
        heard: nobody(),
        leases: no_leases(),
        me: ME,
        lease_ms: 1_000,
    };
    let t = dispatch(snap(5_000));
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].run_id.as_str(), t[0].to), ("r2", RunState::Running));
    let t = dispatch(snap(10_000));
    let got: Vec<_> = t.iter().map(|t| (t.run_id.as_str(), t.to)).collect();
    assert_eq!(
        got,
        vec![("r1", RunState::TimedOut), ("r2", RunState::Running)]
    );
    let t = dispatch(snap(100_000));
    assert!(t
        .iter()
        .any(|t| t.run_id == "r3" && t.to == RunState::AgentOffline));
}

#[test]
fn one_run_per_agent_across_campaigns_and_concurrency_holds() {
    let c = [campaign("old", 0, 1), campaign("new", 1, 0)];
    let runs = [
        run("r1", "old", "a", RunState::Queued, None),
        run("r2", "old", "b", RunState::Queued, None),
        run("r3", "new", "a", RunState::Queued, None),
    ];
    let connected = online(&["a", "b"]);
    let t = dispatch(Snapshot {
        now: 10,
        campaigns: &c,
        runs: &runs,
        live: &connected,
        heard: nobody(),
        leases: no_leases(),
        me: ME,
        lease_ms: 1_000,
    });
    let got: Vec<_> = t.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(
        got,
        vec!["r1"],
        "old campaign first, concurrency 1, agent a busy for r3"
    );
}

#[test]
fn a_queued_run_waits_for_its_not_before() {
    let c = [campaign("c", 0, 0)];
    let mut jittered = run("r1", "c", "a", RunState::Queued, None);
    jittered.not_before = Some(7_000);
    let mut offline = run("r2", "c", "z", RunState::Queued, None);
    offline.not_before = Some(500_000);
    let runs = [jittered, offline];
    let connected = online(&["a"]);
    let at = |now| {
        dispatch(Snapshot {
            now,
            campaigns: &c,
            runs: &runs,
            live: &connected,
            heard: nobody(),
            leases: no_leases(),
            me: ME,
            lease_ms: 1_000,
        })
        .into_iter()
        .map(|t| (t.run_id, t.to))
        .collect::<Vec<_>>()
    };
    assert_eq!(at(6_999), vec![], "not before its time");
    assert_eq!(at(7_000), vec![("r1".to_string(), RunState::Running)]);
    // The deadline still ends an offline agent's run that was waiting for its time.
    assert!(at(100_000).contains(&("r2".to_string(), RunState::AgentOffline)));
}

#[test]
fn a_run_waiting_for_its_time_does_not_hold_its_agent() {
    let c = [campaign("old", 0, 0), campaign("new", 1, 0)];
    let mut waiting = run("r1", "old", "a", RunState::Queued, None);
    waiting.not_before = Some(60_000);
    let runs = [waiting, run("r2", "new", "a", RunState::Queued, None)];
    let connected = online(&["a"]);
    let t = dispatch(Snapshot {
        now: 10,
        campaigns: &c,
        runs: &runs,
        live: &connected,
        heard: nobody(),
        leases: no_leases(),
        me: ME,
        lease_ms: 1_000,
    });
    let got: Vec<_> = t.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(got, vec!["r2"]);
}

#[test]
fn a_dead_coordinators_run_is_taken_over_once_its_lease_expires() {
    let c = [campaign("c", 0, 0)];
    let runs = [run("r1", "c", "a", RunState::Running, Some(0))];
    let here = online(&["a"]);
    let leases = HashMap::from([("r1".to_string(), lease("dead", 5_000))]);
    let snap = |now, leases| Snapshot {
        now,
        campaigns: &c,
        runs: &runs,
        live: &here,
        heard: nobody(),
        leases,
        me: ME,
        lease_ms: 1_000,
    };
    // Still held elsewhere: not claimed (nor ended); the agent, now here, is sent the same
    // plan (a no-op on the board), never idle, which would cancel the run.
    assert!(claims(snap(4_999, &leases)).is_empty());
    assert!(dispatch(snap(4_999, &leases)).is_empty());
    assert_eq!(desired("a", &runs), Desired::Plan(&runs[0]));
    // Expired: claimed by the coordinator holding the agent.
    assert_eq!(claims(snap(5_000, &leases)), vec!["r1".to_string()]);
    let taken = HashMap::from([("r1".to_string(), lease(ME, 6_000))]);
    // Not live here: another coordinator's business.
    let elsewhere = online(&[]);
    let s = Snapshot {
        live: &elsewhere,
        ..snap(7_000, &taken)
    };
    assert!(claims(s).is_empty());
    assert_eq!(desired("b", &runs), Desired::Idle);
}

#[test]
fn own_leases_are_renewed_once_half_spent() {
    let c = [campaign("c", 0, 0)];
    let runs = [
        run("r1", "c", "a", RunState::Running, Some(0)),
        run("r2", "c", "b", RunState::Running, Some(0)),
        run("r3", "c", "d", RunState::Running, Some(0)),
    ];
    let here = online(&["a", "b", "d"]);
    let leases = HashMap::from([
        ("r1".to_string(), lease(ME, 9_000)),
        ("r2".to_string(), lease("other", 9_000)),
    ]);
    let snap = |now| Snapshot {
        now,
        campaigns: &c,
        runs: &runs,
        live: &here,
        heard: nobody(),
        leases: &leases,
        me: ME,
        lease_ms: 4_000,
    };
    // r3 has no lease (a row from before leases existed): claimed at once.
    assert_eq!(claims(snap(6_000)), vec!["r3".to_string()]);
    assert_eq!(
        claims(snap(7_000)),
        vec!["r1".to_string(), "r3".to_string()]
    );
    // Past the run timeout (10 s): nothing is claimed, the run times out.
    assert!(claims(snap(10_000)).is_empty());
}

#[test]
fn offline_is_what_no_coordinator_heard() {
    let c = [campaign("c", 0, 0)];
    let mut c_long = campaign("c", 0, 0);
    c_long.spec.run_timeout_s = 1_000;
    let c_long = [c_long];
    let runs = [
        run("r1", "c", "a", RunState::Queued, None),
        run("r2", "c", "b", RunState::Running, Some(95_000)),
    ];
    let here = online(&[]);
    let heard_ab = online(&["a", "b"]);
    let leases = HashMap::from([("r2".to_string(), lease("gone", 99_000))]);
    let snap = |campaigns, heard, now| Snapshot {
        now,
        campaigns,
        runs: &runs,
        live: &here,
        heard,
        leases: &leases,
        me: ME,
        lease_ms: 1_000,
    };
    assert!(deadline_passed(100_000, &c) && !deadline_passed(99_999, &c));
    // Heard by another coordinator: neither offline nor failed here.
    assert!(dispatch(snap(&c_long, &heard_ab, 100_000)).is_empty());
    // Heard by nobody at the deadline: the queued run is offline, the running one (whose
    // coordinator's lease expired) failed with the reason.
    let t = dispatch(snap(&c_long, nobody(), 100_000));
    let got: Vec<_> = t.iter().map(|t| (t.run_id.as_str(), t.to)).collect();
    assert_eq!(
        got,
        vec![("r2", RunState::Failed), ("r1", RunState::AgentOffline)]
    );
    let why = t[0].message.clone().unwrap();
    assert!(
        why.contains("coordinator 'gone'") && why.contains("deadline"),
        "{why}"
    );
    // A lease not yet expired holds the run until then.
    let held = HashMap::from([("r2".to_string(), lease("gone", 100_001))]);
    let s = Snapshot {
        leases: &held,
        ..snap(&c_long, nobody(), 100_000)
    };
    assert!(dispatch(s).iter().all(|t| t.run_id != "r2"));
}

proptest! {
    #[test]
    fn invariants_hold(
        specs in prop::collection::vec(
            (0u8..4, 0u8..6, 0u8..2, any::<bool>(), prop::option::of(0i64..200_000)),
            0..24,
        ),
        conc in prop::collection::vec(0u32..3, 2),
        up in prop::collection::vec(any::<bool>(), 6),
        heard_up in prop::collection::vec(any::<bool>(), 6),
        held in prop::collection::vec((0u8..3, 0i64..200_000), 24),
        now in 0i64..200_000,
    ) {
        let campaigns = [campaign("c0", 0, conc[0]), campaign("c1", 5, conc[1])];
        let runs: Vec<RunRecord> = specs.iter().enumerate().map(|(i, (c, a, st, early, not_before))| {
            let state = if *st == 0 { RunState::Queued } else { RunState::Running };
            let started = (state == RunState::Running).then_some(if *early { 0 } else { now });
            let mut r = run(&format!("r{i}"), &format!("c{}", c % 2), &format!("a{a}"), state, started);
            r.not_before = *not_before;
            r
        }).collect();
        let connected: HashSet<String> =
            (0..6).filter(|i| up[*i]).map(|i| format!("a{i}")).collect();
        let heard: HashSet<String> =
            (0..6).filter(|i| heard_up[*i]).map(|i| format!("a{i}")).collect();
        let leases: HashMap<String, RunLease> = runs
            .iter()
            .zip(&held)
            .filter(|(r, (who, _))| r.state == RunState::Running && *who > 0)
            .map(|(r, (who, until))| {
                (r.run_id.clone(), lease(if *who == 1 { ME } else { "other" }, *until))
            })
            .collect();
        let snap = Snapshot { now, campaigns: &campaigns, runs: &runs, live: &connected, heard: &heard, leases: &leases, me: ME, lease_ms: 1_000 };
        let t = dispatch(snap);
        for id in claims(snap) {
            let r = by_id_of(&runs, &id);
            prop_assert!(connected.contains(&r.agent_id), "claimed only for a live agent");
            prop_assert!(
                leases.get(&id).is_none_or(|l| l.owner == ME || l.expires <= now),
                "never a lease another coordinator still holds"
            );
        }
        for agent in &connected {
            if let Desired::Plan(r) = desired(agent, &runs) {
                prop_assert!(r.agent_id == *agent && r.state == RunState::Running);
            }
        }
        let by_id: HashMap<&str, &RunRecord> = runs.iter().map(|r| (r.run_id.as_str(), r)).collect();
        let mut after: HashMap<&str, RunState> = runs.iter().map(|r| (r.run_id.as_str(), r.state)).collect();
        for tr in &t {
            let r = by_id[tr.run_id.as_str()];
            prop_assert_eq!(tr.from, r.state);
            match tr.to {
                RunState::Running => {
                    prop_assert!(connected.contains(&r.agent_id));
                    prop_assert!(r.not_before.is_none_or(|t| now >= t), "not before its time");
                }
                RunState::TimedOut => prop_assert!(now >= r.started_at.unwrap() + 10_000),
                RunState::AgentOffline => prop_assert!(
                    !connected.contains(&r.agent_id) && !heard.contains(&r.agent_id) && now >= 100_000
                ),
                RunState::Failed => prop_assert!(
                    !connected.contains(&r.agent_id)
                        && !heard.contains(&r.agent_id)
                        && now >= 100_000
                        && leases.get(&r.run_id).is_none_or(|l| l.expires <= now)
                ),
                other => prop_assert!(false, "unexpected {other}"),
            }
            after.insert(tr.run_id.as_str(), tr.to);
        }
        let newly: Vec<&RunRecord> = t.iter().filter(|t| t.to == RunState::Running)
            .map(|t| by_id[t.run_id.as_str()]).collect();
        // An agent never gets a second running run, and no campaign exceeds its limit
        // through newly started runs.
        let mut per_agent: HashMap<&str, u32> = HashMap::new();
        let mut per_campaign: HashMap<&str, u32> = HashMap::new();
        for r in &runs {
            if after[r.run_id.as_str()] == RunState::Running {
                *per_agent.entry(r.agent_id.as_str()).or_default() += 1;
                *per_campaign.entry(r.campaign_id.as_str()).or_default() += 1;
            }
        }
        for r in newly {
            prop_assert_eq!(per_agent[r.agent_id.as_str()], 1);
            let limit = campaigns.iter().find(|c| c.id == r.campaign_id).unwrap().spec.concurrency;
            prop_assert!(limit == 0 || per_campaign[r.campaign_id.as_str()] <= limit);
        }
    }
}
