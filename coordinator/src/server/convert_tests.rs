use super::*;

#[test]
fn capabilities_keep_the_environment_both_ways() {
    let wire = pb::Capabilities {
        cpu_model: "Cortex-A78AE".into(),
        environment_key: "bc1fbb052b477106".into(),
        environment_json: r#"{"kernel":{"known":"5.15"}}"#.into(),
        ..pb::Capabilities::default()
    };
    let stored = caps_from_pb(wire.clone());
    assert_eq!(stored.environment_key, "bc1fbb052b477106");
    assert_eq!(caps_to_pb(&stored), wire);
    // A stored row from before the fields existed decodes with them empty.
    let old: Capabilities = serde_json::from_str(r#"{"arch":"x86_64"}"#).unwrap();
    assert!(old.environment_key.is_empty() && old.environment_json.is_empty());
}

fn request() -> pb::StartCampaignRequest {
    pb::StartCampaignRequest {
        selector: Some(pb::Selector {
            kind: Some(pb::selector::Kind::All(true)),
        }),
        ..pb::StartCampaignRequest::default()
    }
}

#[test]
fn warmups_and_trials_go_from_the_request_through_the_spec_into_every_plan() {
    let spec = spec_from_pb(request()).unwrap();
    assert_eq!((spec.warmup, spec.trials), (None, None), "not asked");
    assert_eq!(spec.max_duration_s, None, "0 on the wire is no cap");
    let spec = spec_from_pb(pb::StartCampaignRequest {
        warmup: Some(0),
        trials: 20,
        max_duration_s: 90,
        ..request()
    })
    .unwrap();
    assert_eq!((spec.warmup, spec.trials), (Some(0), Some(20)));
    assert_eq!(spec.max_duration_s, Some(90));
    assert_eq!(spec_to_pb(&spec).max_duration_s, 90);
    let campaign = CampaignRecord {
        id: "c".into(),
        created_at: 0,
        deadline: 60_000,
        spec,
        firing: None,
    };
    let run = RunRecord {
        run_id: "r".into(),
        campaign_id: "c".into(),
        agent_id: "a".into(),
        hostname: "h".into(),
        preset_id: "auto".into(),
        framework: fleetcal_proto::Framework::Numpy,
        device: fleetcal_proto::DeviceKind::Cpu,
        state: crate::model::RunState::Queued,
        fraction: 0.0,
        message: String::new(),
        seq: 0,
        started_at: None,
        finished_at: None,
        not_before: None,
    };
    let Some(pb::directive::Action::Plan(plan)) = plan_directive(&run, &campaign).action else {
        panic!("not a plan");
    };
    assert_eq!((plan.warmup, plan.trials), (Some(0), 20));
    assert_eq!(plan.max_duration_s, 90);
    let shown = campaign_to_pb(&campaign, &crate::aggregate::counts_by_state([&run]));
    assert_eq!((shown.warmup, shown.trials), (Some(0), 20));
    assert_eq!(shown.max_duration_s, 90);
}

#[test]
fn page_tokens_round_trip_and_foreign_ones_are_refused() {
    assert_eq!(agent_token("").unwrap(), None);
    let id = "0b5d3e4a-9a51-4c43-8d2e-0f6f6c1d7a10".to_string();
    assert_eq!(agent_token(&agent_token_of(&id)).unwrap(), Some(id));
    let key = RunKey {
        created_at: -5,
        campaign_id: "c.with.dots".into(),
        seq: 42,
    };
    assert_eq!(run_token(&run_token_of(&key)).unwrap(), Some(key));
    for bad in [
        "a1.",
        "x",
        "r1.1.2",
        "r1.x.2.c",
        "r1.1.2.",
        &"a1.x".repeat(100),
    ] {
        assert!(agent_token(bad).is_err(), "{bad}");
        let e = run_token(bad).unwrap_err().to_string();
        assert!(e.contains("field 'page_token'") && e.len() < 200, "{e}");
    }
    assert_eq!(
        (page_size(0), page_size(7), page_size(5000)),
        (DEFAULT_PAGE_SIZE, 7, MAX_PAGE_SIZE)
    );
}

#[test]
fn a_page_stops_at_the_byte_budget_with_at_least_one_item() {
    let item = |i: u32| (i, "x".repeat(1024 * 1024 + usize::try_from(i).unwrap()));
    let to_pb = |s: String| pb::RemoveAgentRequest { agent_id: s };
    let token = |k: &u32| k.to_string();
    // 10 items of 1 MiB: the page holds 3 (under 4 MiB) and continues after the third.
    let page = Page {
        items: (0..10).map(item).collect(),
        last: Some(99),
    };
    let (out, next) = wire_page(page, to_pb, token);
    assert_eq!((out.len(), next.as_str()), (3, "2"));
    // One item over the budget still goes out alone.
    let page = Page {
        items: vec![(0, "x".repeat(MAX_PAGE_BYTES + 1))],
        last: None,
    };
    let (out, next) = wire_page(page, to_pb, token);
    assert_eq!((out.len(), next.as_str()), (1, ""));
    // Within the budget, the store's `last` decides (rows skipped at the end included).
    let page = Page {
        items: vec![item(0)],
        last: Some(7),
    };
    assert_eq!(wire_page(page, to_pb, token).1, "7");
}

#[test]
fn out_of_range_warmups_trials_and_caps_are_named() {
    let e = spec_from_pb(pb::StartCampaignRequest {
        max_duration_s: pb::MAX_DURATION_S + 1,
        ..request()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid request: field 'max_duration_s': 604801 must be 1..=604800 seconds (0 = none)"
    );
    let e = spec_from_pb(pb::StartCampaignRequest {
        warmup: Some(101),
        ..request()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid request: field 'warmup': 101 must be 0..=100"
    );
    let e = spec_from_pb(pb::StartCampaignRequest {
        trials: 1001,
        ..request()
    })
    .unwrap_err();
    assert!(
        matches!(e, Error::Domain(DomainError::InvalidRequest(_))),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "invalid request: field 'trials': 1001 must be 1..=1000 (0 = the default)"
    );
}

fn report(f: impl FnOnce(&mut pb::ReportRequest)) -> Result<(ReportKind, ReportQuery), String> {
    let mut r = pb::ReportRequest {
        kind: "drift".into(),
        ..pb::ReportRequest::default()
    };
    f(&mut r);
    report_from_pb(r).map_err(|e| e.to_string())
}

#[test]
fn report_requests_narrow_what_the_report_reads_and_bad_fields_are_named() {
    let (kind, q) = report(|_| {}).unwrap();
    assert_eq!((kind, q), (ReportKind::Drift, ReportQuery::default()));
    let (kind, q) = report(|r| {
        r.kind = "compare".into();
        r.select.insert("site".into(), "lab".into());
        r.group = "g1".into();
        r.since = "2026-11-01".into();
        r.agent_id = "a1".into();
        r.schedule = "nightly".into();
        r.framework = "pytorch".into();
    })
    .unwrap();
    assert_eq!(kind, ReportKind::Compare);
    assert_eq!(
        q.fleet.select,
        vec![("site".to_string(), "lab".to_string())]
    );
    assert_eq!(q.group.as_deref(), Some("g1"));
    assert_eq!(q.fleet.since, Some(1_793_491_200_000));
    assert_eq!(q.fleet.agent_id.as_deref(), Some("a1"));
    assert_eq!(q.fleet.schedule.as_deref(), Some("nightly"));
    assert_eq!(q.fleet.framework.as_deref(), Some("pytorch"));
    let (_, q) = report(|r| r.nights = 7).unwrap();
    assert_eq!((q.nights, q.fleet.since), (Some(7), None));
    let (_, q) = report(|r| r.since = "2026-11-01T06:00:00+02:00".into()).unwrap();
    assert_eq!(q.fleet.since, Some(1_793_491_200_000 + 4 * 3_600_000));
    for (f, want) in [
        (
            Box::new(|r: &mut pb::ReportRequest| r.kind = "weekly".into())
                as Box<dyn Fn(&mut pb::ReportRequest)>,
            "'weekly'",
        ),
        (
            Box::new(|r| r.since = "yesterday".into()),
            "field 'since': 'yesterday'",
        ),
        (Box::new(|r| r.since = "2026-13-01".into()), "field 'since'"),
        (
            Box::new(|r| {
                r.since = "2026-11-01".into();
                r.nights = 3;
            }),
            "'since' and 'nights'",
        ),
        (
            Box::new(|r| r.framework = "jax".into()),
            "field 'framework'",
        ),
        (Box::new(|r| r.schedule = "-x".into()), "field 'schedule'"),
        (
            Box::new(|r| r.agent_id = "x".repeat(100_000)),
            "field 'agent_id'",
        ),
    ] {
        let e = report(f).unwrap_err();
        assert!(e.contains(want), "{want}: {e}");
        assert!(e.len() < 400, "bounded: {e}");
    }
}

#[test]
fn an_agent_selector_round_trips_and_is_bounded() {
    use pb::selector::Kind;
    let req = pb::StartCampaignRequest {
        selector: Some(pb::Selector {
            kind: Some(Kind::AgentId("a1".into())),
        }),
        ..pb::StartCampaignRequest::default()
    };
    let spec = spec_from_pb(req).unwrap();
    assert_eq!(spec.selector, Selector::Agent("a1".into()));
    assert_eq!(
        spec_to_pb(&spec).selector.and_then(|s| s.kind),
        Some(Kind::AgentId("a1".into()))
    );
    let req = pb::StartCampaignRequest {
        selector: Some(pb::Selector {
            kind: Some(Kind::AgentId("x".repeat(1000))),
        }),
        ..pb::StartCampaignRequest::default()
    };
    let e = spec_from_pb(req).unwrap_err().to_string();
    assert!(e.contains("selector.agent_id"), "{e}");
}
