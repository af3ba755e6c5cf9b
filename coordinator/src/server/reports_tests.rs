//! The reports' use cases over an in-memory store: the drift life cycle after uploads (a
//! suspected drop, its confirmation campaign, the open alert, not repeated) and reading
//! reports through the `Store` trait.

use std::sync::Arc;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::*;
use crate::aggregate::RunCounts;
use crate::config::ServeArgs;
use crate::fleet::drift::DriftAction;
use crate::fleet::fixtures::{gemm, night, rows, run};
use crate::fleet::{FleetFigure, FleetRun, Report};
use crate::model::{
    AgentRecord, CampaignRecord, FiringRecord, RunState, ScheduleRecord, StoreOutcome, Transition,
};
use crate::server::registry::Registry;
use crate::store::{CampaignKey, Claim, ClaimOutcome, Page, RemoveOutcome, RunKey};
use fleetcal_proto::{DeviceKind, Framework};

/// Rows, runs and alerts in memory; what the reports do not call is unimplemented.
#[derive(Default)]
struct Fake {
    rows: Mutex<FleetRows>,
    runs: Mutex<Vec<RunRecord>>,
    alerts: Mutex<Vec<AlertRecord>>,
    agents: Mutex<Vec<AgentRecord>>,
}

impl Store for Fake {
    async fn upsert_agent(&self, _agent: &AgentRecord) -> Result<(), Error> {
        unimplemented!("upsert_agent")
    }

    async fn touch_agent(&self, _agent_id: &str, _at: i64) -> Result<bool, Error> {
        unimplemented!("touch_agent")
    }

    async fn agent(&self, _agent_id: &str) -> Result<Option<AgentRecord>, Error> {
        unimplemented!("agent")
    }

    async fn agents(&self) -> Result<Vec<AgentRecord>, Error> {
        Ok(self.agents.lock().unwrap().clone())
    }

    async fn agents_page(
        &self,
        _after: Option<&str>,
        _limit: u32,
    ) -> Result<Page<String, AgentRecord>, Error> {
        unimplemented!("agents_page")
    }

    async fn remove_agent(
        &self,
        _agent_id: &str,
        _at: Millis,
        _message: &str,
    ) -> Result<RemoveOutcome, Error> {
        unimplemented!("remove_agent")
    }

    async fn create_campaign(
        &self,
        _campaign: &CampaignRecord,
        _runs: &[RunRecord],
    ) -> Result<(), Error> {
        unimplemented!("create_campaign")
    }

    async fn campaign(&self, _id: &str) -> Result<Option<CampaignRecord>, Error> {
        unimplemented!("campaign")
    }

    async fn campaigns_page(
        &self,
        _schedule: Option<&str>,
        _after: Option<&CampaignKey>,
        _limit: u32,
    ) -> Result<Page<CampaignKey, (CampaignRecord, RunCounts)>, Error> {
        Ok(Page {
            items: Vec::new(),
            last: None,
        })
    }

    async fn active_campaigns(&self) -> Result<Vec<CampaignRecord>, Error> {
        unimplemented!("active_campaigns")
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, Error> {
        Ok(self
            .runs
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.run_id == run_id)
            .cloned())
    }

    async fn runs(&self, _campaign_id: Option<&str>) -> Result<Vec<RunRecord>, Error> {
        unimplemented!("runs")
    }

    async fn runs_page(
        &self,
        _campaign_id: Option<&str>,
        _after: Option<&RunKey>,
        _limit: u32,
    ) -> Result<Page<RunKey, RunRecord>, Error> {
        unimplemented!("runs_page")
    }

    async fn active_runs(&self) -> Result<Vec<RunRecord>, Error> {
        unimplemented!("active_runs")
    }

    async fn transition(&self, _t: &Transition) -> Result<bool, Error> {
        unimplemented!("transition")
    }

    async fn progress(&self, _run_id: &str, _fraction: f64, _message: &str) -> Result<bool, Error> {
        unimplemented!("progress")
    }

    async fn store_result(
        &self,
        _run: &RunRecord,
        _result_json: &str,
        _fleet: &FleetRun,
        _figures: &[FleetFigure],
        _at: i64,
    ) -> Result<StoreOutcome, Error> {
        unimplemented!("store_result")
    }

    async fn results(&self, _campaign_id: &str) -> Result<Vec<(RunRecord, String)>, Error> {
        unimplemented!("results")
    }

    async fn result_rows(&self, _run_id: &str) -> Result<Vec<FleetFigure>, Error> {
        unimplemented!("result_rows")
    }

    async fn add_schedule(&self, _schedule: &ScheduleRecord) -> Result<bool, Error> {
        unimplemented!("add_schedule")
    }

    async fn schedule(&self, _name: &str) -> Result<Option<ScheduleRecord>, Error> {
        unimplemented!("schedule")
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, Error> {
        unimplemented!("schedules")
    }

    async fn remove_schedule(&self, _name: &str) -> Result<bool, Error> {
        unimplemented!("remove_schedule")
    }

    async fn set_schedule_paused(
        &self,
        _name: &str,
        _paused: bool,
        _at: Millis,
    ) -> Result<bool, Error> {
        unimplemented!("set_schedule_paused")
    }

    async fn claim_firings(&self, _claim: Claim<'_>) -> Result<ClaimOutcome, Error> {
        unimplemented!("claim_firings")
    }

    async fn firings(&self, _schedule: &str, _limit: u32) -> Result<Vec<FiringRecord>, Error> {
        unimplemented!("firings")
    }

    async fn missed_firings(&self, _schedule: &str) -> Result<u64, Error> {
        unimplemented!("missed_firings")
    }

    async fn fleet_rows(&self, q: &FleetQuery) -> Result<FleetRows, Error> {
        let rows = self.rows.lock().unwrap();
        let keep: Vec<FleetRun> = rows
            .runs
            .iter()
            .filter(|r| q.agent_id.as_ref().is_none_or(|a| *a == r.agent_id))
            .filter(|r| q.since.is_none_or(|s| r.started_at >= s))
            .cloned()
            .collect();
        let ids: Vec<&str> = keep.iter().map(|r| r.run_id.as_str()).collect();
        let figures = rows
            .figures
            .iter()
            .filter(|f| ids.contains(&f.run_id.as_str()))
            .cloned()
            .collect();
        Ok(FleetRows {
            runs: keep,
            figures,
        })
    }

    async fn run_counts(&self) -> Result<RunCounts, Error> {
        unimplemented!("run_counts")
    }

    async fn insert_alert(&self, a: &AlertRecord) -> Result<bool, Error> {
        let mut alerts = self.alerts.lock().unwrap();
        let live = alerts.iter().any(|x| {
            x.state.is_live()
                && (&x.agent_id, &x.framework, &x.figure) == (&a.agent_id, &a.framework, &a.figure)
        });
        if !live {
            alerts.push(a.clone());
        }
        Ok(!live)
    }

    async fn alert(&self, id: &str) -> Result<Option<AlertRecord>, Error> {
        Ok(self
            .alerts
            .lock()
            .unwrap()
            .iter()
            .find(|a| a.id == id)
            .cloned())
    }

    async fn alerts(&self, states: &[AlertState]) -> Result<Vec<AlertRecord>, Error> {
        Ok(self
            .alerts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| states.is_empty() || states.contains(&a.state))
            .cloned()
            .collect())
    }

    async fn update_alert(
        &self,
        id: &str,
        from: &[AlertState],
        update: &AlertUpdate,
    ) -> Result<bool, Error> {
        let mut alerts = self.alerts.lock().unwrap();
        let Some(a) = alerts
            .iter_mut()
            .find(|a| a.id == id && from.contains(&a.state))
        else {
            return Ok(false);
        };
        a.state = update.state;
        a.current = update.current.unwrap_or(a.current);
        a.change_pct = update.change_pct.unwrap_or(a.change_pct);
        if update.confirm_campaign_id.is_some() {
            a.confirm_campaign_id = update.confirm_campaign_id.clone();
        }
        a.message = update.message.clone();
        a.updated_at = update.at;
        Ok(true)
    }
}

fn coordinator() -> Coordinator<Fake> {
    Coordinator {
        store: Fake::default(),
        presets: Vec::new(),
        registry: Arc::new(Registry::default()),
        settings: ServeArgs::default().resolve().unwrap(),
        wake: Arc::new(Notify::new()),
        ingested: Arc::default(),
    }
}

/// Stores a NumPy result of board `a` measuring `value` (its run id `id`).
fn upload(c: &Coordinator<Fake>, id: &str, at: Millis, value: f64) {
    let mut rows_now = c.store.rows.lock().unwrap();
    let mut more = rows(vec![(
        run(id, &format!("camp-{id}"), "a", "numpy", at, "EPYC"),
        vec![gemm(id, "fp32", 1024, value)],
    )]);
    rows_now.runs.append(&mut more.runs);
    rows_now.figures.append(&mut more.figures);
    c.store.runs.lock().unwrap().push(RunRecord {
        run_id: id.into(),
        campaign_id: format!("camp-{id}"),
        agent_id: "a".into(),
        hostname: "host-a".into(),
        preset_id: "auto".into(),
        framework: Framework::Numpy,
        device: DeviceKind::Cpu,
        state: RunState::Succeeded,
        fraction: 1.0,
        message: String::new(),
        seq: 0,
        started_at: Some(at),
        finished_at: Some(at + 1000),
        not_before: None,
    });
}

#[tokio::test]
async fn a_drop_is_suspected_confirmed_by_its_one_board_run_and_not_repeated() {
    let c = coordinator();
    for n in 0..10 {
        upload(&c, &format!("n{n}"), night(n), 100.0 + (n % 2) as f64 * 0.5);
        let none = c.drift_decisions(&format!("n{n}"), night(n)).await.unwrap();
        assert!(none.is_empty(), "{none:?}");
    }
    upload(&c, "n10", night(10), 80.0);
    let actions = c.drift_decisions("n10", night(10)).await.unwrap();
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

    upload(&c, "n10c", night(10) + 3_600_000, 80.5);
    let actions = c
        .drift_decisions("n10c", night(10) + 3_600_000)
        .await
        .unwrap();
    assert!(c.apply_drift(&actions, night(10)).await.unwrap().is_empty());
    let open = c.store.alerts(&[AlertState::Open]).await.unwrap();
    assert_eq!(open.len(), 1, "{:?}", c.store.alerts(&[]).await.unwrap());
    assert_eq!(
        (open[0].began_at, open[0].kind.as_str()),
        (night(10), "step")
    );

    upload(&c, "n11", night(11), 80.0);
    assert!(c
        .drift_decisions("n11", night(11))
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
    assert_eq!(
        c.drift_decisions("missing", 0)
            .await
            .unwrap_err()
            .exit_code(),
        3
    );
}

#[tokio::test]
async fn every_report_reads_through_the_store_and_an_unknown_group_is_refused() {
    let c = coordinator();
    upload(&c, "r1", night(1), 100.0);
    for kind in ReportKind::ALL {
        let r = c
            .report(kind, &ReportQuery::default(), night(2))
            .await
            .unwrap();
        assert_eq!((r.kind(), r.groups().len()), (kind, 1));
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
    assert!(a.items.is_empty(), "no registered agents: {a:?}");
}
