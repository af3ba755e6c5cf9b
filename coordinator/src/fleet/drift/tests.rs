use super::*;
use crate::fleet::fixtures::night;

/// Deterministic noise in [-amp, amp] percent.
struct Noise(u64);
impl Noise {
    fn next(&mut self, amp: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = f64::from(u32::try_from(self.0 >> 40).unwrap()) / f64::from(1u32 << 24);
        (u * 2.0 - 1.0) * amp
    }
}

fn point(n: i64, tag: &str, value: f64, env: &str) -> DriftPoint {
    DriftPoint {
        run_id: format!("n{n}{tag}").into(),
        campaign_id: format!("c{n}{tag}").into(),
        at: night(n) + if tag.is_empty() { 0 } else { 3_600_000 },
        value,
        cv_pct: Some(1.0),
        noise_floor_pct: Some(1.5),
        env_key: Some(env.into()),
    }
}

fn make(points: Vec<DriftPoint>) -> DriftSeries {
    build_series(
        "g-1".into(),
        "a".into(),
        "host-a".into(),
        "numpy".into(),
        "gemm_peak fp32".into(),
        "GFLOPS".into(),
        points,
        &DriftParams::default(),
    )
}

/// The JSON says a run's shared facts once (`runs`) and reads back to the same report;
/// a point of a run it does not list is refused, naming the run.
#[test]
fn a_report_says_each_run_once_and_reads_back_whole() {
    use crate::fleet::fixtures::{gemm, rows, run, triad};
    use crate::fleet::group::group_boards;
    let mut items = Vec::new();
    for n in 0..12 {
        for agent in ["a", "b"] {
            let id = format!("{agent}-{n}");
            let mut r = run(&id, &format!("c{n}"), agent, "numpy", night(n), "CPU");
            r.noise_floor_pct = Some(1.0 + f64::from(u8::try_from(n).unwrap()));
            r.env_key = Some(if n < 6 { "env-1" } else { "env-2" }.into());
            let v = 100.0 + f64::from(u8::try_from(n).unwrap());
            items.push((r, vec![gemm(&id, "fp32", 64, v), triad(&id, 1, v / 10.0)]));
        }
    }
    let rows = rows(items);
    let groups = group_boards(&rows.runs);
    let report = drift(
        &rows,
        &groups,
        Vec::new(),
        &DriftParams::default(),
        night(13),
    );
    assert_eq!(report.runs.len(), 24, "{:?}", report.runs);
    assert!(report.runs.windows(2).all(|w| w[0].at <= w[1].at));
    let points: usize = report.series.iter().map(|s| s.points.len()).sum();
    assert!(points > report.runs.len(), "{points} points");
    let json = serde_json::to_value(&report).unwrap();
    let point = &json["series"][0]["points"][0];
    assert!(
        point.get("campaign_id").is_none() && point.get("env_key").is_none(),
        "{point}"
    );
    assert_eq!(json["runs"][0]["campaign_id"], "c0", "{}", json["runs"][0]);
    let back: DriftReport = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, report);
    let p = &back.series[0].points[7];
    assert_eq!(
        (&*p.campaign_id, p.env_key.as_deref()),
        ("c7", Some("env-2"))
    );

    let mut orphan = json;
    orphan["runs"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["run_id"] != "a-3");
    let e = serde_json::from_value::<DriftReport>(orphan)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'a-3'") && e.contains("not among the report's runs"),
        "{e}"
    );
}

fn apply(alerts: &mut [AlertRecord], action: &DriftAction, now: Millis) {
    if let DriftAction::Update {
        id,
        from,
        to,
        current,
        change_pct,
        message,
    } = action
    {
        for a in alerts
            .iter_mut()
            .filter(|a| &a.id == id && from.contains(&a.state))
        {
            a.state = *to;
            a.current = current.unwrap_or(a.current);
            a.change_pct = change_pct.unwrap_or(a.change_pct);
            a.message = message.clone();
            a.updated_at = now;
        }
    }
}

/// What happened over the nights: (night, state) of each alert change, and the alerts.
struct Played {
    events: Vec<(i64, AlertState)>,
    alerts: Vec<AlertRecord>,
    last: DriftSeries,
}

/// Plays `nights` nights of `value(n)` (environment `env(n)`); a suspicion starts a
/// confirmation run the same night measuring `confirm(n)`.
fn play(
    nights: i64,
    value: impl Fn(i64) -> f64,
    confirm: impl Fn(i64) -> f64,
    env: impl Fn(i64) -> &'static str,
) -> Played {
    let mut points = Vec::new();
    let mut alerts: Vec<AlertRecord> = Vec::new();
    let mut events = Vec::new();
    let mut last = make(Vec::new());
    for n in 0..nights {
        points.push(point(n, "", value(n), env(n)));
        last = make(points.clone());
        let id = format!("alert-{n}");
        match decide(&last, &alerts, &id, night(n)) {
            Some(DriftAction::Suspect { alert }) => {
                events.push((n, AlertState::Suspected));
                alerts.push(alert);
                // The one-board confirmation run.
                points.push(point(n, "c", confirm(n), env(n)));
                last = make(points.clone());
                if let Some(a) = decide(&last, &alerts, "unused", night(n) + 1) {
                    if let DriftAction::Update { to, .. } = &a {
                        events.push((n, *to));
                    }
                    apply(&mut alerts, &a, night(n));
                }
            }
            Some(a @ DriftAction::Update { .. }) => {
                if let DriftAction::Update { to, .. } = &a {
                    events.push((n, *to));
                }
                apply(&mut alerts, &a, night(n));
            }
            None => {}
        }
    }
    Played {
        events,
        alerts,
        last,
    }
}

#[test]
fn noise_within_the_boards_spread_raises_nothing() {
    let noise = std::cell::RefCell::new(Noise(7));
    let p = play(
        90,
        |_| 100.0 * (1.0 + noise.borrow_mut().next(2.0) / 100.0),
        |_| 100.0,
        |_| "e1",
    );
    assert!(p.events.is_empty(), "{:?}", p.events);
    assert!(p.last.finding.is_none());
    assert!(p.last.threshold_pct > 2.0, "{}", p.last.threshold_pct);
}

#[test]
fn a_step_is_confirmed_and_alerted_at_the_night_it_began() {
    let noise = std::cell::RefCell::new(Noise(11));
    let level = |n: i64| if n >= 30 { 85.0 } else { 100.0 };
    let p = play(
        40,
        |n| level(n) * (1.0 + noise.borrow_mut().next(1.5) / 100.0),
        |_| 84.0,
        |_| "e1",
    );
    assert_eq!(
        p.events,
        [(30, AlertState::Suspected), (30, AlertState::Open)]
    );
    let a = &p.alerts[0];
    assert_eq!(
        (a.kind.as_str(), a.began_at, a.run_id.as_str()),
        ("step", night(30), "n30")
    );
    assert!((a.baseline - 100.0).abs() < 1.5, "{}", a.baseline);
    assert!(
        a.change_pct < -12.0 && a.change_pct > -18.0,
        "{}",
        a.change_pct
    );
    assert!(a.message.contains("confirmed by run n30c"), "{}", a.message);
    // Open: the following low nights do not repeat it.
    assert_eq!(p.alerts.len(), 1);
}

#[test]
fn a_slow_creep_is_alerted_once_it_is_significant_and_beyond_the_noise() {
    let noise = std::cell::RefCell::new(Noise(3));
    // Flat for 40 nights, then 0.1% lower every night: never a night far from the
    // nights before it, but 6% lower after two months.
    let level = |n: i64| {
        if n < 40 {
            100.0
        } else {
            100.0 - 0.1 * f64::from(i32::try_from(n - 40).unwrap())
        }
    };
    let p = play(
        110,
        |n| level(n) * (1.0 + noise.borrow_mut().next(0.4) / 100.0),
        level,
        |_| "e1",
    );
    let first = p.events.first().copied().expect("a creep is alerted");
    assert_eq!(
        p.events,
        [
            (first.0, AlertState::Suspected),
            (first.0, AlertState::Open)
        ]
    );
    let a = &p.alerts[0];
    assert_eq!(a.kind, "creep", "{a:?}");
    // Alerted once the Mann–Kendall test and the Theil–Sen line agree, 18 nights in; the
    // window that is steepest starts where the creep began.
    assert_eq!((first.0, a.began_at), (58, night(40)), "{a:?}");
    assert!(a.change_pct < -1.5, "{a:?}");
}

#[test]
fn an_environment_change_starts_a_period_and_raises_nothing() {
    let noise = std::cell::RefCell::new(Noise(5));
    let p = play(
        50,
        |n| if n >= 30 { 80.0 } else { 100.0 } * (1.0 + noise.borrow_mut().next(1.0) / 100.0),
        |_| 80.0,
        |n| if n >= 30 { "e2" } else { "e1" },
    );
    assert!(p.events.is_empty(), "{:?}", p.events);
    assert_eq!(p.last.periods.len(), 2);
    let marker = &p.last.periods[1];
    assert_eq!(
        (marker.start_at, marker.previous_env_key.as_deref()),
        (night(30), Some("e1"))
    );
    assert_eq!((marker.env_key.as_deref(), marker.nights), (Some("e2"), 20));
    assert!(p.last.finding.is_none());
    assert!((p.last.baseline.unwrap() - 80.0).abs() < 1.0);
}

#[test]
fn a_drop_the_confirmation_run_does_not_reproduce_raises_nothing() {
    let noise = std::cell::RefCell::new(Noise(13));
    let p = play(
        45,
        |n| {
            if n == 30 {
                80.0
            } else {
                100.0 * (1.0 + noise.borrow_mut().next(1.0) / 100.0)
            }
        },
        |_| 100.0,
        |_| "e1",
    );
    assert_eq!(
        p.events,
        [(30, AlertState::Suspected), (30, AlertState::Unconfirmed)]
    );
    assert_eq!(p.alerts[0].state, AlertState::Unconfirmed);
    assert!(p.alerts.iter().all(|a| a.state != AlertState::Open));
}

#[test]
fn an_open_alert_resolves_when_the_figure_recovers() {
    let noise = std::cell::RefCell::new(Noise(17));
    let p = play(
        45,
        |n| {
            if (30..35).contains(&n) {
                85.0
            } else {
                100.0 * (1.0 + noise.borrow_mut().next(1.0) / 100.0)
            }
        },
        |_| 85.0,
        |_| "e1",
    );
    assert_eq!(
        p.events,
        [
            (30, AlertState::Suspected),
            (30, AlertState::Open),
            (36, AlertState::Resolved)
        ]
    );
}

#[test]
fn a_dismissed_alert_is_not_raised_again_in_its_period() {
    let points: Vec<DriftPoint> = (0..20)
        .map(|n| {
            point(
                n,
                "",
                if n >= 15 {
                    80.0
                } else {
                    100.0 + (n % 3) as f64 * 0.3
                },
                "e1",
            )
        })
        .collect();
    let s = make(points);
    assert!(
        s.finding.as_ref().is_some_and(|f| f.significant),
        "{:?}",
        s.finding
    );
    let Some(DriftAction::Suspect { mut alert }) = decide(&s, &[], "x", 0) else {
        panic!("a suspect")
    };
    alert.state = AlertState::Dismissed;
    assert_eq!(decide(&s, &[alert], "y", 0), None);
}

#[test]
fn five_baseline_nights_are_the_fewest_a_confirmed_step_needs() {
    let series = |base: usize| -> Vec<DriftPoint> {
        let mut v: Vec<DriftPoint> = (0..base)
            .map(|n| {
                point(
                    i64::try_from(n).unwrap(),
                    "",
                    100.0 + (n % 2) as f64 * 0.5,
                    "e1",
                )
            })
            .collect();
        v.push(point(50, "", 80.0, "e1"));
        v.push(point(50, "c", 80.5, "e1"));
        v
    };
    for (base, significant) in [(4, false), (5, true)] {
        let params = DriftParams {
            min_baseline: base,
            ..DriftParams::default()
        };
        let f = evaluate(&series(base), &params).expect("a step");
        assert_eq!(
            (f.kind, f.significant),
            (DriftKind::Step, significant),
            "{f:?}"
        );
    }
}

/// A board whose nights swing between two levels (18 and 32: its threshold uncapped is over
/// 100 %, so no drop could ever count) is still watched: a confirmed drop by more than
/// [`DriftParams::max_threshold_pct`] is alerted; one by less raises nothing, even though
/// every low night is below every baseline night.
#[test]
fn a_board_too_noisy_for_its_threshold_is_still_alerted_on_a_drop_beyond_the_cap() {
    let swing = |n: i64| if n % 3 == 0 { 18.0 } else { 32.0 };
    let uncapped = DriftParams {
        max_threshold_pct: f64::INFINITY,
        ..DriftParams::default()
    };
    let baseline: Vec<DriftPoint> = (0..30).map(|n| point(n, "", swing(n), "e1")).collect();
    assert!(
        threshold_pct(&baseline, &uncapped) > 100.0,
        "{}",
        threshold_pct(&baseline, &uncapped)
    );
    assert_eq!(
        threshold_pct(&baseline, &DriftParams::default()),
        DriftParams::DEFAULT_MAX_THRESHOLD_PCT
    );

    let to_a_tenth = |n: i64| if n >= 30 { 3.0 } else { swing(n) };
    let p = play(40, to_a_tenth, |_| 3.5, |_| "e1");
    assert_eq!(
        p.events,
        [(30, AlertState::Suspected), (30, AlertState::Open)]
    );
    assert!(p.alerts[0].change_pct < -85.0, "{:?}", p.alerts[0]);

    // Two nights of 17: below every baseline night, but only 47 % below their median (32).
    let mut less = baseline.clone();
    less.push(point(30, "", 17.0, "e1"));
    less.push(point(30, "c", 17.0, "e1"));
    assert_eq!(evaluate(&less, &DriftParams::default()), None);
}
