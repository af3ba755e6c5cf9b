//! The reports' use cases over a real SQLite store: the drift life cycle after uploads (a
//! suspected drop, its confirmation campaign, the open alert, not repeated) and reading
//! reports through the `Store` trait.

use std::sync::Arc;

use tokio::sync::Notify;

use super::*;
use crate::config::ServeArgs;
use crate::fleet::anomalies::AnomalyKind;
use crate::fleet::drift::DriftAction;
use crate::fleet::fixtures::{gemm, night, result_of, rows, run};
use crate::fleet::Report;
use crate::model::{
    AgentRecord, CampaignRecord, CampaignSpec, FrameworkChoice, Overrides, RunState, Selector,
    StoreOutcome,
};
use crate::server::registry::Registry;
use crate::store::SqliteStore;
use fleetcal_proto::{DeviceKind, Framework};

/// A coordinator on a fresh SQLite database (kept while the returned directory lives), with
/// board `a` registered.
async fn coordinator() -> (Coordinator<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("fleet.db"))
        .await
        .unwrap();
    store
        .upsert_agent(&AgentRecord {
            agent_id: "a".into(),
            hostname: "host-a".into(),
            labels: Default::default(),
            preset: Some("auto".into()),
            capabilities: Default::default(),
            agent_version: "test".into(),
            registered_at: night(0),
            last_seen: night(0),
        })
        .await
        .unwrap();
    let c = Coordinator {
        store,
        presets: Vec::new(),
        registry: Arc::new(Registry::default()),
        settings: ServeArgs {
            insecure_plaintext: true,
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap(),
        wake: Arc::new(Notify::new()),
        ingested: Arc::default(),
        ingested_packed: Arc::default(),
        instance: "test".into(),
        histories: Arc::default(),
        schedules_of: Arc::default(),
    };
    (c, dir)
}

/// Stores a NumPy result of board `a` measuring `value` (its run id `id`) through the real
/// store: its campaign and running run, then the result with its fleet rows.
async fn upload(c: &Coordinator<SqliteStore>, id: &str, at: Millis, value: f64) {
    let campaign_id = format!("camp-{id}");
    let record = RunRecord {
        run_id: id.into(),
        campaign_id: campaign_id.clone(),
        agent_id: "a".into(),
        hostname: "host-a".into(),
        preset_id: "auto".into(),
        framework: Framework::Numpy,
        device: DeviceKind::Cpu,
        state: RunState::Running,
        fraction: 0.0,
        message: String::new(),
        seq: 0,
        started_at: Some(at),
        finished_at: None,
        not_before: None,
    };
    let campaign = CampaignRecord {
        id: campaign_id.clone(),
        created_at: at,
        deadline: at + 3_600_000,
        spec: CampaignSpec {
            selector: Selector::All,
            framework: FrameworkChoice::Default,
            quick: true,
            warmup: None,
            trials: None,
            run_timeout_s: 3600,
            deadline_s: 3600,
            concurrency: 0,
            overrides: Overrides::default(),
            max_duration_s: None,
        },
        firing: None,
    };
    c.store
        .create_campaign(&campaign, std::slice::from_ref(&record))
        .await
        .unwrap();
    let stored = rows(vec![(
        run(id, &campaign_id, "a", "numpy", at, "EPYC"),
        vec![gemm(id, "fp32", 1024, value)],
    )]);
    let doc = result_of(id, &stored.figures);
    let outcome = c
        .store
        .store_result(
            &record,
            &doc.to_json(),
            Some(doc.clone()),
            &stored.runs[0],
            at + 1000,
        )
        .await
        .unwrap();
    assert_eq!(outcome, StoreOutcome::Stored, "{id}");
}

/// The run record of a stored result, as the upload hands it to the drift check.
async fn stored_run(c: &Coordinator<SqliteStore>, id: &str) -> RunRecord {
    c.store.run(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_drop_is_suspected_confirmed_by_its_one_board_run_and_not_repeated() {
    let (c, _dir) = coordinator().await;
    for n in 0..10 {
        upload(&c, &format!("n{n}"), night(n), 100.0 + (n % 2) as f64 * 0.5).await;
        let none = c
            .drift_decisions(&stored_run(&c, &format!("n{n}")).await, night(n))
            .await
            .unwrap();
        assert!(none.is_empty(), "{none:?}");
    }
    upload(&c, "n10", night(10), 80.0).await;
    let actions = c
        .drift_decisions(&stored_run(&c, "n10").await, night(10))
        .await
        .unwrap();
    assert!(
        matches!(&actions[..], [DriftAction::Suspect { .. }]),
        "{actions:?}"
    );
    let confirm = c.apply_drift(&actions, night(10)).await.unwrap();
    assert_eq!(confirm.len(), 1);
    assert_eq!(
        (confirm[0].agent_id.as_str(), confirm[0].framework.as_str()),
        ("a", "numpy")
    );
    c.attach_confirmation(&confirm[0].alert_ids, "confirm-1", night(10))
        .await
        .unwrap();
    let suspected = c.store.alerts(&[AlertState::Suspected]).await.unwrap();
    assert_eq!(suspected.len(), 1);
    assert_eq!(
        suspected[0].confirm_campaign_id.as_deref(),
        Some("confirm-1")
    );
    assert!(
        suspected[0].message.contains("suspected step"),
        "{}",
        suspected[0].message
    );
    // Applying the same suspicion again records nothing and starts nothing.
    assert!(c.apply_drift(&actions, night(10)).await.unwrap().is_empty());

    upload(&c, "n10c", night(10) + 3_600_000, 80.5).await;
    let actions = c
        .drift_decisions(&stored_run(&c, "n10c").await, night(10) + 3_600_000)
        .await
        .unwrap();
    assert!(c.apply_drift(&actions, night(10)).await.unwrap().is_empty());
    let open = c.store.alerts(&[AlertState::Open]).await.unwrap();
    assert_eq!(open.len(), 1, "{:?}", c.store.alerts(&[]).await.unwrap());
    assert_eq!(
        (open[0].began_at, open[0].kind.as_str()),
        (night(10), "step")
    );

    upload(&c, "n11", night(11), 80.0).await;
    assert!(c
        .drift_decisions(&stored_run(&c, "n11").await, night(11))
        .await
        .unwrap()
        .is_empty());

    // The drift report names the board, the drop and the alert.
    let report = c
        .report(ReportKind::Drift, &ReportQuery::default(), night(12))
        .await
        .unwrap();
    let Report::Drift(d) = report else {
        panic!("a drift report")
    };
    let s = d.series.iter().find(|s| s.finding.is_some()).unwrap();
    assert_eq!(
        (s.agent_id.as_str(), s.figure.as_str()),
        ("a", "gemm_peak fp32")
    );
    assert_eq!(d.alerts.len(), 1);
    assert_eq!(d.alerts[0].state, AlertState::Open);
}

#[tokio::test]
async fn every_report_reads_through_the_store_and_an_unknown_group_is_refused() {
    let (c, _dir) = coordinator().await;
    upload(&c, "r1", night(1), 100.0).await;
    for kind in ReportKind::ALL {
        let r = c
            .report(kind, &ReportQuery::default(), night(2))
            .await
            .unwrap();
        // The compare report reads only paired runs: a NumPy run alone is in none of its
        // groups.
        let groups = usize::from(kind != ReportKind::Compare);
        assert_eq!((r.kind(), r.groups().len()), (kind, groups));
    }
    let q = ReportQuery {
        group: Some("g-nope".into()),
        ..ReportQuery::default()
    };
    let e = c
        .report(ReportKind::Boards, &q, night(2))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("'g-nope'"), "{e}");
    // Anomalies: board a has not been calibrated for more than 3 days at night 9.
    let r = c
        .report(ReportKind::Anomalies, &ReportQuery::default(), night(9))
        .await
        .unwrap();
    let Report::Anomalies(a) = r else {
        panic!("anomalies")
    };
    assert!(
        a.items
            .iter()
            .any(|i| i.kind == AnomalyKind::NotCalibrated && i.agent_id == "a"),
        "board a is stale: {a:?}"
    );
}

/// `after_result` alone, as the upload path calls it: quiet nights start nothing; the night of
/// a drop starts one one-board confirmation campaign (board `a` only, NumPy only, the night's
/// settings) and attaches it to the suspected alert; the same run again starts nothing.
#[tokio::test]
async fn after_result_starts_one_confirmation_campaign_for_a_drop_and_only_once() {
    let (c, _dir) = coordinator().await;
    for n in 0..10 {
        let id = format!("n{n}");
        upload(&c, &id, night(n), 100.0 + (n % 2) as f64 * 0.5).await;
        assert!(c
            .after_result(&stored_run(&c, &id).await, night(n))
            .await
            .unwrap()
            .is_empty());
    }
    upload(&c, "n10", night(10), 80.0).await;
    let n10 = stored_run(&c, "n10").await;
    let started = c.after_result(&n10, night(10)).await.unwrap();
    assert_eq!(started.len(), 1, "{started:?}");
    let (campaign, runs) = c.campaign(&started[0]).await.unwrap();
    assert_eq!(campaign.spec.selector, Selector::Agent("a".into()));
    assert_eq!(
        campaign.spec.framework,
        FrameworkChoice::Only(Framework::Numpy)
    );
    assert!(campaign.spec.quick, "the night's settings");
    assert!(
        !runs.is_empty() && runs.iter().all(|r| r.agent_id == "a"),
        "{runs:?}"
    );
    let suspected = c.store.alerts(&[AlertState::Suspected]).await.unwrap();
    assert_eq!(suspected.len(), 1, "{suspected:?}");
    assert_eq!(
        suspected[0].confirm_campaign_id.as_deref(),
        Some(started[0].as_str())
    );
    assert!(c.after_result(&n10, night(10)).await.unwrap().is_empty());
    assert_eq!(c.store.alerts(&[]).await.unwrap().len(), 1);
}

/// The board's history kept between its results is checked against the store: one result
/// more is added, two more (one stored by another coordinator sharing the database) read
/// the window again; either way the series are those of the window read whole.
#[tokio::test]
async fn a_kept_history_is_checked_against_the_store_count_and_makes_the_series_read_whole() {
    let (c, _dir) = coordinator().await;
    let params = c.settings.drift.clone();
    for n in 0..10 {
        upload(&c, &format!("n{n}"), night(n), 100.0 + (n % 3) as f64).await;
        c.drift_decisions(&stored_run(&c, &format!("n{n}")).await, night(n))
            .await
            .unwrap();
    }
    let kept = c.histories.take("a").expect("kept after its checks");
    assert_eq!(kept.len(), 10);
    c.histories.give_back("a", kept);
    // Two results with no check between: the kept history is one short of the count.
    upload(&c, "n10", night(10), 80.0).await;
    upload(&c, "n11", night(11), 80.0).await;
    let h = c
        .board_history(&stored_run(&c, "n11").await, night(11))
        .await
        .unwrap();
    assert_eq!(h.len(), 12);
    assert!(h.contains("n10") && h.contains("n11"));
    c.histories.give_back("a", h);
    // One more: added to the kept history, the same series as the window read whole.
    upload(&c, "n12", night(12), 80.0).await;
    let n12 = stored_run(&c, "n12").await;
    let added = c.board_history(&n12, night(12)).await.unwrap();
    assert!(c.histories.take("a").is_none(), "taken while checked");
    let whole = c.board_history(&n12, night(12)).await.unwrap();
    assert_eq!(added.len(), 13);
    let series = added.series("numpy", &params);
    assert_eq!(series, whole.series("numpy", &params));
    assert!(
        series[0].finding.is_some(),
        "the drop is in the series: {:?}",
        series[0]
    );
    // A window that moved on past night 0 (120 days and a millisecond later) drops it.
    c.histories.give_back("a", added);
    let later = night(0) + DRIFT_LOOKBACK_DAYS * DAY_MS + 1;
    let moved = c.board_history(&n12, later).await.unwrap();
    assert_eq!(moved.len(), 12, "night 0 left the window");
    assert!(!moved.contains("n0"));
}
