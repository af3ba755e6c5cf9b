//! TEMPORARY until `Coordinator::report` (issue12-fleet) is merged: delete this file then.
//! A plain composition of the fleet functions, so the pages and metrics can be exercised end
//! to end meanwhile (no group narrowing, no confirmation runs).

use std::collections::BTreeMap;

use crate::fleet::anomalies::{anomalies, AnomalyInputs};
use crate::fleet::boards::boards;
use crate::fleet::compare::compare;
use crate::fleet::drift::{drift, DriftParams};
use crate::fleet::group::group_boards;
use crate::fleet::roofline::roofline;
use crate::fleet::{Report, ReportKind, ReportQuery};
use crate::model::Millis;
use crate::server::core::Coordinator;
use crate::store::Store;
use crate::Error;

impl<S: Store> Coordinator<S> {
    /// TEMP.
    pub async fn report(
        &self,
        kind: ReportKind,
        q: &ReportQuery,
        now: Millis,
    ) -> Result<Report, Error> {
        let fq = q.rows_query(now)?;
        let rows = self.store.fleet_rows(&fq).await?;
        let groups = group_boards(&rows.runs);
        Ok(match kind {
            ReportKind::Compare => Report::Compare(compare(&rows, &groups, now)),
            ReportKind::Boards => Report::Boards(boards(&rows, &groups, now)),
            ReportKind::Drift => {
                let alerts = self.store.alerts(&[]).await?;
                Report::Drift(drift(&rows, &groups, alerts, &DriftParams::default(), now))
            }
            ReportKind::Anomalies => {
                let runs = self.store.runs(None).await?;
                let agents = self.store.agents().await?;
                let mut last: BTreeMap<String, Millis> = BTreeMap::new();
                for r in &rows.runs {
                    let e = last.entry(r.agent_id.clone()).or_insert(r.started_at);
                    *e = (*e).max(r.started_at);
                }
                Report::Anomalies(anomalies(
                    &rows,
                    &groups,
                    AnomalyInputs {
                        runs: &runs,
                        agents: &agents,
                        last_result: &last,
                        since: fq.since,
                        stale_days: q.stale_days(),
                        group: q.group.as_deref(),
                    },
                    now,
                ))
            }
            ReportKind::Roofline => Report::Roofline(roofline(&rows, &groups, now)),
        })
    }
}
