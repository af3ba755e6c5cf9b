//! TEMPORARY until issue12-fleet's `Coordinator::report` is merged: delete this file then.
//! Empty reports, so the pages and metrics can be exercised end to end meanwhile.

use crate::fleet::anomalies::AnomaliesReport;
use crate::fleet::boards::BoardsReport;
use crate::fleet::compare::CompareReport;
use crate::fleet::drift::DriftReport;
use crate::fleet::roofline::RooflineReport;
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
        q.rows_query(now)?;
        let groups = Vec::new();
        Ok(match kind {
            ReportKind::Compare => Report::Compare(CompareReport {
                generated_at: now,
                groups,
                headlines: vec![],
                rows: vec![],
            }),
            ReportKind::Boards => Report::Boards(BoardsReport {
                generated_at: now,
                groups,
                rows: vec![],
            }),
            ReportKind::Drift => Report::Drift(DriftReport {
                generated_at: now,
                groups,
                series: vec![],
                alerts: vec![],
            }),
            ReportKind::Anomalies => Report::Anomalies(AnomaliesReport {
                generated_at: now,
                groups,
                stale_days: 3,
                items: vec![],
            }),
            ReportKind::Roofline => Report::Roofline(RooflineReport {
                generated_at: now,
                groups,
                rooflines: vec![],
            }),
        })
    }
}
