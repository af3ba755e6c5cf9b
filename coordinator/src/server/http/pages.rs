//! What the pages show, gathered through the core at `now`: the fleet overview (agents,
//! the boards report for each board's latest calibration and group, standing alerts, the
//! latest campaigns), one board's page (its drift report), and a report as JSON or CSV.

use std::collections::BTreeMap;

use super::routes::{Format, HttpError};
use crate::domain::DomainError;
use crate::fleet::{AlertState, Report, ReportKind, ReportQuery};
use crate::model::Millis;
use crate::render::html::{BoardPage, BoardStatus, CampaignStatus, FleetStatus};
use crate::server::core::Coordinator;
use crate::store::Store;
use crate::Error;

/// How many campaigns the overview lists.
pub const CAMPAIGNS_SHOWN: u32 = 10;

/// The alert states that stand (listed on the overview, counted by `/metrics`).
pub const STANDING: [AlertState; 2] = [AlertState::Open, AlertState::Acknowledged];

/// Each board's latest result time and group, from the boards report over every result.
pub async fn latest<S: Store>(
    core: &Coordinator<S>,
    now: Millis,
) -> Result<(BTreeMap<String, (Millis, String)>, Report), Error> {
    let report = core
        .report(ReportKind::Boards, &ReportQuery::default(), now)
        .await?;
    let mut latest: BTreeMap<String, (Millis, String)> = BTreeMap::new();
    if let Report::Boards(r) = &report {
        for row in &r.rows {
            let slot = latest
                .entry(row.agent_id.clone())
                .or_insert((row.measured_at, row.group_key.clone()));
            if row.measured_at > slot.0 {
                *slot = (row.measured_at, row.group_key.clone());
            }
        }
    }
    Ok((latest, report))
}

/// The overview at `now`.
pub async fn fleet_status<S: Store>(
    core: &Coordinator<S>,
    now: Millis,
) -> Result<FleetStatus, Error> {
    let agents = core.agents(now).await?;
    let (latest, _) = latest(core, now).await?;
    let boards = agents
        .into_iter()
        .map(|a| {
            let last = latest.get(&a.agent.agent_id);
            BoardStatus {
                last_calibrated: last.map(|l| l.0),
                group_key: last.map(|l| l.1.clone()),
                agent_id: a.agent.agent_id,
                hostname: a.agent.hostname,
                preset: a.preset,
                online: a.online,
                last_seen: a.agent.last_seen,
            }
        })
        .collect();
    let alerts = core.store.alerts(&STANDING).await?;
    let campaigns = core
        .campaigns_page(None, None, CAMPAIGNS_SHOWN)
        .await?
        .items
        .into_iter()
        .map(|(_, (c, counts))| CampaignStatus {
            schedule: c.firing.map(|f| f.schedule),
            id: c.id,
            created_at: c.created_at,
            counts,
        })
        .collect();
    Ok(FleetStatus {
        boards,
        alerts,
        campaigns,
    })
}

/// One board's page at `now`: its drift report narrowed by `q`; an id that is neither
/// registered nor in any stored result is not found.
pub async fn board<S: Store>(
    core: &Coordinator<S>,
    agent_id: &str,
    q: &mut ReportQuery,
    now: Millis,
) -> Result<BoardPage, Error> {
    q.fleet.agent_id = Some(agent_id.to_string());
    let drift = core.report(ReportKind::Drift, q, now).await?;
    let series = match &drift {
        Report::Drift(r) => r.series.as_slice(),
        _ => &[],
    };
    let last = series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| p.at)
        .max();
    let group = series.first().map(|s| s.group_key.clone());
    let status = core
        .agents(now)
        .await?
        .into_iter()
        .find(|a| a.agent.agent_id == agent_id)
        .map(|a| BoardStatus {
            agent_id: a.agent.agent_id,
            hostname: a.agent.hostname,
            preset: a.preset,
            online: a.online,
            last_seen: a.agent.last_seen,
            last_calibrated: last,
            group_key: group,
        });
    if status.is_none() && series.is_empty() {
        return Err(DomainError::AgentNotFound(agent_id.to_string()).into());
    }
    Ok(BoardPage {
        agent_id: agent_id.to_string(),
        status,
        drift,
    })
}

/// A report as `fleetctl report --format json|csv` prints it (the same renderers).
pub fn data(report: &Report, format: Format) -> Result<String, HttpError> {
    match format {
        Format::Csv => Ok(crate::render::csv::report(report)),
        Format::Json | Format::Html => crate::render::json::report(report)
            .map_err(|e| HttpError::internal(format!("report as json: {e}"))),
    }
}
