//! Unit and property tests of the cron rules, on a simulated clock.

use proptest::prelude::*;

use super::*;

/// Milliseconds of an RFC 3339 instant.
fn ms(t: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .timestamp_millis()
}

/// The firings in `(from, to]`.
fn firings(rule: &CronRule, from: &str, to: &str) -> Vec<Millis> {
    let (mut at, end) = (ms(from), ms(to));
    let mut out = Vec::new();
    while let Some(t) = rule.next_after(at).filter(|&t| t <= end) {
        out.push(t);
        at = t;
    }
    out
}

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

#[test]
fn a_nightly_expression_fires_once_a_day_in_its_zone() {
    let rule = CronRule::parse("0 2 * * *", "Europe/Berlin").unwrap();
    // 02:00 CET is 01:00 UTC in winter.
    assert_eq!(
        firings(&rule, "2026-01-10T00:00:00Z", "2026-01-12T00:00:00Z"),
        vec![ms("2026-01-10T01:00:00Z"), ms("2026-01-11T01:00:00Z")]
    );
    assert_eq!(rule.period_after(ms("2026-01-10T00:00:00Z")), Some(DAY));
    assert_eq!(
        rule.local(ms("2026-01-10T01:00:00Z")),
        "2026-01-10T02:00:00+01:00"
    );
    let utc = CronRule::parse("0 2 * * *", "UTC").unwrap();
    assert_eq!(
        utc.next_after(ms("2026-01-10T00:00:00Z")),
        Some(ms("2026-01-10T02:00:00Z"))
    );
}

#[test]
fn six_fields_have_seconds() {
    let rule = CronRule::parse("*/5 * * * * *", "UTC").unwrap();
    assert_eq!(
        firings(&rule, "2026-01-10T00:00:00Z", "2026-01-10T00:00:20Z"),
        vec![
            ms("2026-01-10T00:00:05Z"),
            ms("2026-01-10T00:00:10Z"),
            ms("2026-01-10T00:00:15Z"),
            ms("2026-01-10T00:00:20Z"),
        ]
    );
    assert_eq!(rule.period_after(0), Some(5_000));
}

#[test]
fn spring_forward_a_missing_local_time_fires_once_after_the_gap() {
    // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
    let berlin = CronRule::parse("30 2 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        firings(&berlin, "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z"),
        vec![
            ms("2026-03-29T01:00:00Z"), // 03:00 CEST, the first valid instant after the gap
            ms("2026-03-30T00:30:00Z"), // 02:30 CEST the next night
        ]
    );
    // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    let ny = CronRule::parse("30 2 * * *", "America/New_York").unwrap();
    assert_eq!(
        firings(&ny, "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z"),
        vec![ms("2026-03-08T07:00:00Z"), ms("2026-03-09T06:30:00Z")]
    );
}

#[test]
fn fall_back_a_repeated_local_time_fires_once() {
    // Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens at 00:30 and
    // 01:30 UTC. It fires at the first only.
    let berlin = CronRule::parse("30 2 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        firings(&berlin, "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z"),
        vec![ms("2026-10-25T00:30:00Z"), ms("2026-10-26T01:30:00Z")]
    );
    // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens at 05:30 and
    // 06:30 UTC.
    let ny = CronRule::parse("30 1 * * *", "America/New_York").unwrap();
    assert_eq!(
        firings(&ny, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z"),
        vec![ms("2026-11-01T05:30:00Z"), ms("2026-11-02T06:30:00Z")]
    );
}

#[test]
fn bad_expressions_and_zones_are_named() {
    let e = CronRule::parse("61 * * * *", "UTC")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cron expression '61 * * * *': "), "{e}");
    let e = CronRule::parse("* * *", "UTC").unwrap_err().to_string();
    assert!(e.contains("'* * *'") && e.contains("has 3 fields"), "{e}");
    let e = CronRule::parse("0 2 * * * * 2026", "UTC")
        .unwrap_err()
        .to_string();
    assert!(e.contains("has 7 fields"), "{e}");
    let e = CronRule::parse("0 2 * * *", "Mars/Olympus")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "unknown time zone 'Mars/Olympus' (expected an IANA name such as UTC or Europe/Berlin)"
    );
    let long = "9".repeat(100_000);
    let e = CronRule::parse(&long, "UTC").unwrap_err().to_string();
    assert!(
        e.len() < 300,
        "a huge input is quoted bounded: {} bytes",
        e.len()
    );
}

#[test]
fn on_time_the_due_firing_fires_and_nothing_is_missed() {
    let rule = CronRule::parse("0 2 * * *", "UTC").unwrap();
    let fired = ms("2026-01-10T02:00:00Z");
    let d = due(&rule, fired - DAY, fired + 300, Some(DAY));
    assert_eq!(
        d,
        Due {
            fire: Some(fired),
            missed: vec![],
            missed_more: false
        }
    );
    assert_eq!(
        due(&rule, fired, fired + HOUR, Some(DAY)),
        Due::default(),
        "fired already"
    );
    assert_eq!(
        due(&rule, fired, fired - 1, Some(DAY)),
        Due::default(),
        "clock behind"
    );
}

#[test]
fn after_an_outage_one_catch_up_fires_and_the_rest_are_missed() {
    let rule = CronRule::parse("0 2 * * *", "UTC").unwrap();
    let last = ms("2026-01-10T02:00:00Z");
    // Down from the 10th after the firing until the 13th at 09:00: the 11th, 12th and 13th
    // were due. The 13th's is 7 h old, inside the one-day window: it fires; two are missed.
    let d = due(&rule, last, ms("2026-01-13T09:00:00Z"), Some(DAY));
    assert_eq!(d.fire, Some(ms("2026-01-13T02:00:00Z")));
    assert_eq!(d.missed, vec![last + DAY, last + 2 * DAY]);
    assert!(!d.missed_more);
    // The same outage with a 1 h catch-up window: nothing fires, all three are missed.
    let d = due(&rule, last, ms("2026-01-13T09:00:00Z"), Some(HOUR));
    assert_eq!(d.fire, None);
    assert_eq!(d.missed, vec![last + DAY, last + 2 * DAY, last + 3 * DAY]);
}

#[test]
fn by_default_the_latest_missed_firing_is_caught_up_until_the_next_one() {
    let rule = CronRule::parse("0 2 * * *", "Europe/Berlin").unwrap();
    let last = ms("2026-01-10T01:00:00Z"); // 02:00 CET
                                           // Back 23 h after the 12th's firing, before the 13th's: the 12th fires, the 11th missed.
    let d = due(&rule, last, ms("2026-01-13T00:59:59Z"), None);
    assert_eq!(d.fire, Some(last + 2 * DAY));
    assert_eq!(d.missed, vec![last + DAY]);
    // A weekday schedule back on Sunday: Friday's firing is still within its period (until
    // Monday), Thursday's is missed.
    let weekdays = CronRule::parse("0 2 * * 1-5", "UTC").unwrap();
    let thursday = ms("2026-01-15T02:00:00Z");
    let d = due(&weekdays, thursday - 1, ms("2026-01-18T12:00:00Z"), None);
    assert_eq!((d.fire, d.missed), (Some(thursday + DAY), vec![thursday]));
}

#[test]
fn a_long_outage_of_a_seconds_schedule_is_bounded() {
    let rule = CronRule::parse("* * * * * *", "UTC").unwrap();
    let since = ms("2026-01-01T00:00:00Z");
    let now = since + 7 * DAY; // 604,800 firings
    let d = due(&rule, since, now, Some(10_000));
    assert_eq!(d.fire, Some(now));
    assert_eq!(d.missed.len(), MAX_MISSED_LISTED);
    assert!(d.missed_more);
    assert_eq!(d.missed[0], since + 1_000, "oldest first");
}

#[test]
fn jitter_is_bounded_stable_and_spread() {
    let at = ms("2026-01-10T02:00:00Z");
    let delays: Vec<Millis> = (0..1_000)
        .map(|i| jitter_delay("nightly", at, &format!("agent-{i}"), 60_000))
        .collect();
    assert!(delays.iter().all(|d| (0..60_000).contains(d)));
    let again: Vec<Millis> = (0..1_000)
        .map(|i| jitter_delay("nightly", at, &format!("agent-{i}"), 60_000))
        .collect();
    assert_eq!(delays, again, "stable for the same board and firing");
    let early = delays.iter().filter(|&&d| d < 30_000).count();
    assert!(
        (400..=600).contains(&early),
        "spread over the window: {early} of 1000 in the first half"
    );
    assert_ne!(
        jitter_delay("nightly", at, "agent-1", 60_000),
        jitter_delay("nightly", at + DAY, "agent-1", 60_000),
        "another night, another delay"
    );
    assert_eq!(jitter_delay("nightly", at, "a", 0), 0);
    assert_eq!(jitter_delay("nightly", at, "a", -5), 0);
}

#[test]
fn overlap_skips_with_the_busy_run_or_queues() {
    assert_eq!(admit(Overlap::Skip, None), Admission::Start);
    assert_eq!(admit(Overlap::Queue, None), Admission::Start);
    assert_eq!(admit(Overlap::Queue, Some("r1")), Admission::Queue);
    assert_eq!(
        admit(Overlap::Skip, Some("r1")),
        Admission::Skip("skipped: busy with run r1".into())
    );
    assert_eq!(" Queue ".parse::<Overlap>(), Ok(Overlap::Queue));
    assert_eq!(
        "wait".parse::<Overlap>().unwrap_err(),
        "unknown overlap policy 'wait' (expected skip or queue)"
    );
}

#[test]
fn a_board_is_busy_with_a_running_run_or_a_queued_run_of_the_same_schedule() {
    use crate::model::{CampaignSpec, FiringTag, FrameworkChoice, Overrides, Selector};
    use fleetcal_proto::{DeviceKind, Framework};
    let campaign = |id: &str, schedule: Option<&str>| CampaignRecord {
        id: id.into(),
        created_at: 0,
        deadline: DAY,
        spec: CampaignSpec {
            selector: Selector::All,
            framework: FrameworkChoice::Default,
            quick: true,
            warmup: None,
            trials: None,
            max_duration_s: None,
            run_timeout_s: 60,
            deadline_s: 0,
            concurrency: 0,
            overrides: Overrides::default(),
        },
        firing: schedule.map(|s| FiringTag {
            schedule: s.into(),
            scheduled_at: 0,
        }),
    };
    let run = |id: &str, campaign: &str, agent: &str, state: RunState| RunRecord {
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
        seq: 0,
        started_at: None,
        finished_at: None,
        not_before: None,
    };
    let campaigns = [
        campaign("manual", None),
        campaign("n1", Some("nightly")),
        campaign("o1", Some("other")),
    ];
    let active = [
        run("q-manual", "manual", "a", RunState::Queued),
        run("q-other", "o1", "b", RunState::Queued),
        run("q-nightly", "n1", "c", RunState::Queued),
        run("r-manual", "manual", "d", RunState::Running),
        run("q-nightly-d", "n1", "d", RunState::Queued),
    ];
    let busy = busy_boards("nightly", &campaigns, &active);
    let mut got: Vec<(&str, &str)> = busy.iter().map(|(a, r)| (a.as_str(), r.as_str())).collect();
    got.sort();
    // a and b only wait in other campaigns' queues; c waits in this schedule's; d runs.
    assert_eq!(got, vec![("c", "q-nightly"), ("d", "r-manual")]);
}

fn expressions() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "*/7 * * * * *",
        "0 */3 * * * *",
        "15 2 * * *",
        "30 1 * * 1-5",
        "0 0 1 * *",
        "@hourly",
    ])
}

fn zones() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_next_firing_is_later_and_matches(
        expr in expressions(),
        zone in zones(),
        at in 0i64..4_102_444_800_000, // 1970 .. 2100
    ) {
        let rule = CronRule::parse(expr, zone).unwrap();
        let next = rule.next_after(at).unwrap();
        prop_assert!(next > at);
        let after = rule.next_after(next).unwrap();
        prop_assert!(after > next);
        // Nothing fires in between.
        prop_assert_eq!(rule.next_after(next - 1), Some(next));
    }

    #[test]
    fn due_fires_at_most_the_latest_and_misses_only_earlier_firings(
        expr in expressions(),
        zone in zones(),
        since in 1_700_000_000_000i64..1_800_000_000_000,
        gap in 0i64..(40 * DAY),
        catch_up in prop::option::of(0i64..(2 * DAY)),
    ) {
        let rule = CronRule::parse(expr, zone).unwrap();
        let now = since + gap;
        let d = due(&rule, since, now, catch_up);
        if let Some(f) = d.fire {
            prop_assert!(f > since && f <= now);
            match catch_up {
                Some(w) => prop_assert!(now - f <= w),
                // One period: the latest due firing is always caught up.
                None => prop_assert!(rule.next_after(f).is_none_or(|n| now < n)),
            }
            prop_assert!(rule.next_after(f).is_none_or(|n| n > now), "the latest due fires");
        }
        prop_assert!(d.missed.len() <= MAX_MISSED_LISTED);
        prop_assert!(d.missed.windows(2).all(|w| w[0] < w[1]));
        if catch_up.is_none() && (!d.missed.is_empty() || d.missed_more) {
            prop_assert!(d.fire.is_some(), "by default the latest missed firing is caught up");
        }
        for m in &d.missed {
            prop_assert!(*m > since && *m <= now);
            prop_assert!(d.fire.is_none_or(|f| *m < f));
        }
        if !d.missed_more {
            let count = d.missed.len() + usize::from(d.fire.is_some());
            let mut all = 0usize;
            let mut at = since;
            while let Some(t) = rule.next_after(at).filter(|&t| t <= now) {
                all += 1;
                at = t;
            }
            prop_assert_eq!(count, all, "every due firing is fired or missed");
        }
    }

    #[test]
    fn jitter_stays_in_its_window(
        schedule in "[a-z]{1,12}",
        at in any::<i64>(),
        agent in "[0-9a-f-]{1,36}",
        jitter in any::<i64>(),
    ) {
        let d = jitter_delay(&schedule, at, &agent, jitter);
        prop_assert!(d >= 0);
        prop_assert!(jitter <= 0 || d < jitter);
        prop_assert_eq!(d, jitter_delay(&schedule, at, &agent, jitter));
    }
}
