use super::*;

fn start(extra: &[&str]) -> Result<StartArgs, String> {
    let args = ["fleetctl", "campaign", "start", "--all"]
        .iter()
        .chain(extra);
    match FleetCtl::try_parse_from(args)
        .map_err(|e| e.to_string())?
        .command
    {
        Cmd::Campaign(CampaignCmd::Start(a)) => Ok(*a),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reconnect_timeout_defaults_and_is_range_checked() {
    let status = |extra: &[&str]| {
        let args = ["fleetctl", "campaign", "status", "c1", "--wait"]
            .iter()
            .chain(extra);
        FleetCtl::try_parse_from(args).map(|c| match c.command {
            Cmd::Campaign(CampaignCmd::Status {
                reconnect_timeout, ..
            }) => reconnect_timeout,
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(status(&[]).unwrap(), 300);
    assert_eq!(status(&["--reconnect-timeout", "0"]).unwrap(), 0);
    for bad in ["86401", "-1", "1e20", "soon"] {
        let e = status(&[&format!("--reconnect-timeout={bad}")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--reconnect-timeout"), "{bad}: {e}");
    }
}

#[test]
fn warmup_and_trials_are_optional_and_range_checked() {
    let a = start(&[]).unwrap().run;
    assert_eq!((a.warmup, a.trials), (None, None));
    let a = start(&["--warmup", "0", "--trials", "20"]).unwrap().run;
    assert_eq!((a.warmup, a.trials), (Some(0), Some(20)));
    let a = start(&["--warmup", "100", "--trials", "1000"]).unwrap().run;
    assert_eq!((a.warmup, a.trials), (Some(100), Some(1000)));
    for (flag, bad) in [
        ("--trials", "0"),
        ("--trials", "1001"),
        ("--warmup", "101"),
        ("--warmup", "-1"),
        ("--trials", "many"),
    ] {
        let e = start(&[&format!("{flag}={bad}")]).unwrap_err();
        assert!(e.contains(flag) && e.contains(bad), "{flag} {bad}: {e}");
    }
}

#[test]
fn max_duration_is_optional_and_range_checked_in_campaign_start_and_schedule_add() {
    assert_eq!(start(&[]).unwrap().run.max_duration, None);
    assert_eq!(
        start(&["--max-duration", "10m"]).unwrap().run.max_duration,
        Some(600)
    );
    assert_eq!(
        add(&["--all", "--max-duration", "90s"])
            .unwrap()
            .run
            .max_duration,
        Some(90)
    );
    for bad in ["0s", "8d", "1500ms", "10"] {
        let e = start(&[&format!("--max-duration={bad}")]).unwrap_err();
        assert!(
            e.contains("--max-duration") && e.contains(bad),
            "{bad}: {e}"
        );
        let e = add(&["--all", &format!("--max-duration={bad}")]).unwrap_err();
        assert!(
            e.contains("--max-duration") && e.contains(bad),
            "{bad}: {e}"
        );
    }
}

fn add(extra: &[&str]) -> Result<ScheduleAddArgs, String> {
    let args = [
        "fleetctl",
        "schedule",
        "add",
        "nightly",
        "--cron",
        "0 2 * * *",
    ]
    .iter()
    .chain(extra);
    match FleetCtl::try_parse_from(args)
        .map_err(|e| e.to_string())?
        .command
    {
        Cmd::Schedule(ScheduleCmd::Add(a)) => Ok(*a),
        other => panic!("{other:?}"),
    }
}

#[test]
fn schedule_add_takes_the_campaign_flags_and_durations() {
    let a = add(&[
        "--tz",
        "Europe/Berlin",
        "--select",
        "site=lab",
        "--quick",
        "--framework",
        "compare",
        "--trials",
        "3",
        "--jitter",
        "10m",
        "--overlap",
        "queue",
        "--catch-up",
        "6h",
        "--deadline",
        "1d",
    ])
    .unwrap();
    assert_eq!(a.name, "nightly");
    assert_eq!(a.tz.as_deref(), Some("Europe/Berlin"));
    assert_eq!(a.selector.select.as_deref(), Some("site=lab"));
    assert!(a.run.quick);
    assert_eq!(a.run.trials, Some(3));
    assert_eq!(a.jitter, Some(Duration::from_secs(600)));
    assert_eq!(a.overlap, "queue");
    assert_eq!(a.catch_up, Some(Duration::from_secs(6 * 3600)));
    assert_eq!(a.deadline, Some(Duration::from_secs(86_400)));
    let a = add(&["--all"]).unwrap();
    assert_eq!((a.overlap.as_str(), a.jitter, a.tz), ("skip", None, None));
    // A selector is required, and only one.
    assert!(add(&[]).unwrap_err().contains("--all"));
    assert!(add(&["--all", "--preset", "x"]).is_err());
    for (flag, bad) in [
        ("--jitter", "10"),
        ("--catch-up", "2 weeks"),
        ("--deadline", "-1h"),
    ] {
        let e = add(&["--all", &format!("{flag}={bad}")]).unwrap_err();
        assert!(e.contains(flag) && e.contains(bad), "{flag} {bad}: {e}");
    }
    let e = add(&["--all", "--overlap", "wait"]).unwrap_err();
    assert!(e.contains("--overlap") && e.contains("wait"), "{e}");
}

fn report(extra: &[&str]) -> Result<ReportArgs, String> {
    let args = ["fleetctl", "report"].iter().chain(extra);
    match FleetCtl::try_parse_from(args)
        .map_err(|e| e.to_string())?
        .command
    {
        Cmd::Report(a) => Ok(*a),
        other => panic!("{other:?}"),
    }
}

#[test]
fn report_takes_a_kind_a_window_a_format_and_a_file() {
    let a = report(&["compare"]).unwrap();
    assert_eq!(
        (a.kind, a.format),
        (ReportKindArg::Compare, ReportFormat::Table)
    );
    assert_eq!((a.since, a.nights, a.output), (None, None, None));
    let a = report(&[
        "drift",
        "--select",
        "site=lab",
        "--group",
        "g1",
        "--nights",
        "14",
        "--format",
        "csv",
        "--output",
        "d.csv",
        "--board",
        "a1",
        "--framework",
        "numpy",
    ])
    .unwrap();
    assert_eq!(a.kind, ReportKindArg::Drift);
    assert_eq!(a.nights, Some(14));
    assert_eq!(a.format, ReportFormat::Csv);
    assert_eq!(a.output.as_deref(), Some(std::path::Path::new("d.csv")));
    let r = super::super::report::request(&a).unwrap();
    assert_eq!(r.kind, "drift");
    assert_eq!(r.select.get("site").map(String::as_str), Some("lab"));
    assert_eq!(
        (r.group.as_str(), r.nights, r.agent_id.as_str()),
        ("g1", 14, "a1")
    );
    let a = report(&["boards", "--since", "2026-11-01", "--format", "html"]).unwrap();
    assert_eq!(a.since.as_deref(), Some("2026-11-01"));
    assert_eq!(a.format, ReportFormat::Html);
    for (args, flag) in [
        (&["weekly"][..], "weekly"),
        (
            &["drift", "--since", "2026-11-01", "--nights", "3"],
            "--nights",
        ),
        (&["drift", "--nights", "0"], "--nights"),
        (&["drift", "--nights", "3661"], "--nights"),
        (&["drift", "--format", "pdf"], "--format"),
        (&["drift", "--framework", "jax"], "--framework"),
    ] {
        let e = report(args).unwrap_err();
        assert!(e.contains(flag), "{args:?}: {e}");
    }
    let a = report(&["drift", "--select", "site"]).unwrap();
    let e = super::super::report::request(&a).unwrap_err().to_string();
    assert!(e.contains("--select"), "{e}");
}

#[test]
fn alerts_list_takes_states_and_ack_and_dismiss_an_id() {
    let parse = |extra: &[&str]| {
        let args = ["fleetctl", "alerts"].iter().chain(extra);
        FleetCtl::try_parse_from(args).map(|c| c.command)
    };
    match parse(&["list", "--state", "open,dismissed"]).unwrap() {
        Cmd::Alerts(AlertsCmd::List { state, all, json }) => {
            assert_eq!(state, ["open", "dismissed"]);
            assert!(!all && !json);
        }
        other => panic!("{other:?}"),
    }
    let e = parse(&["list", "--state", "closed"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("closed") && e.contains("acknowledged"), "{e}");
    assert!(parse(&["list", "--state", "open", "--all"]).is_err());
    match parse(&["ack", "a1", "--note", "fan replaced"]).unwrap() {
        Cmd::Alerts(AlertsCmd::Ack { id, note, .. }) => {
            assert_eq!((id.as_str(), note.as_deref()), ("a1", Some("fan replaced")));
        }
        other => panic!("{other:?}"),
    }
    assert!(parse(&["dismiss"]).is_err(), "an id is required");
}
