//! `/metrics` in the Prometheus text format (OpenMetrics, prometheus-client's encoder): a
//! fresh registry per scrape, filled through the core at `now`.
//!
//! - `fleetcal_agents{state="online"|"offline"}`: registered agents;
//! - `fleetcal_runs{state}`: every run by state (`Store::run_counts`);
//! - `fleetcal_results_ingested_total`: results stored since the process started;
//! - `fleetcal_last_calibration_timestamp_seconds{agent_id,board,group}`: each board's
//!   latest stored result (its measurement start), Unix seconds;
//! - `fleetcal_board_headline{agent_id,board,group,framework,figure,unit}`: each board's
//!   latest headline figures (the boards report);
//! - `fleetcal_alerts{state="open"|"acknowledged"}`: drift alerts that stand.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::pages::{latest, STANDING};
use crate::domain::DomainError;
use crate::fleet::Report;
use crate::model::Millis;
use crate::server::core::Coordinator;
use crate::store::Store;
use crate::Error;

type Labels = Vec<(String, String)>;
type Values = Family<Labels, Gauge<f64, AtomicU64>>;
type Counts = Family<Labels, Gauge>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Milliseconds as seconds (a float, as Prometheus timestamps are).
fn seconds(ms: Millis) -> f64 {
    let whole = i32::try_from(ms.div_euclid(1000)).map_or_else(
        |_| {
            // Beyond 2038 in i32: go through the decimal text, which is exact enough.
            format!("{}", ms.div_euclid(1000))
                .parse::<f64>()
                .unwrap_or(0.0)
        },
        f64::from,
    );
    let rest = i32::try_from(ms.rem_euclid(1000)).map_or(0.0, f64::from);
    whole + rest / 1000.0
}

/// The metrics text at `now`.
pub async fn encode_metrics<S: Store>(core: &Coordinator<S>, now: Millis) -> Result<String, Error> {
    let mut registry = Registry::with_prefix("fleetcal");

    let agents = core.agents(now).await?;
    let online = agents.iter().filter(|a| a.online).count();
    let by_state: Counts = Family::default();
    by_state
        .get_or_create(&labels(&[("state", "online")]))
        .set(count(online));
    by_state
        .get_or_create(&labels(&[("state", "offline")]))
        .set(count(agents.len() - online));
    registry.register("agents", "Registered agents by state", by_state);

    let runs: Counts = Family::default();
    for (state, n) in core.store.run_counts().await? {
        runs.get_or_create(&labels(&[("state", state.as_str())]))
            .set(i64::from(n));
    }
    registry.register("runs", "Runs of every campaign by state", runs);

    let ingested: Counter<u64, AtomicU64> = Counter::default();
    ingested.inc_by(core.ingested.load(Ordering::Relaxed));
    registry.register(
        "results_ingested",
        "Results stored since the coordinator started",
        ingested,
    );
    let packed: Counter<u64, AtomicU64> = Counter::default();
    packed.inc_by(core.ingested_packed.load(Ordering::Relaxed));
    registry.register(
        "results_ingested_packed",
        "Of the results stored since the coordinator started, those uploaded in the packed form",
        packed,
    );

    let (last, report) = latest(core, now).await?;
    let hostnames: std::collections::BTreeMap<&str, &str> = agents
        .iter()
        .map(|a| (a.agent.agent_id.as_str(), a.agent.hostname.as_str()))
        .collect();
    let calibrated: Values = Family::default();
    for (agent, (at, group)) in &last {
        let board = hostnames.get(agent.as_str()).copied().unwrap_or("");
        calibrated
            .get_or_create(&labels(&[
                ("agent_id", agent),
                ("board", board),
                ("group", group),
            ]))
            .set(seconds(*at));
    }
    registry.register_with_unit(
        "last_calibration_timestamp",
        "When each board's latest stored result was measured (Unix time)",
        Unit::Seconds,
        calibrated,
    );

    let headline: Values = Family::default();
    if let Report::Boards(r) = &report {
        for row in r.rows.iter().filter(|r| r.value.is_finite()) {
            headline
                .get_or_create(&labels(&[
                    ("agent_id", &row.agent_id),
                    ("board", &row.hostname),
                    ("group", &row.group_key),
                    ("framework", &row.framework),
                    ("figure", &row.figure),
                    ("unit", &row.unit),
                ]))
                .set(row.value);
        }
    }
    registry.register(
        "board_headline",
        "Each board's latest headline figures (GFLOPS, GIOPS or GB/s, as the unit label says)",
        headline,
    );

    let alerts = core.store.alerts(&STANDING).await?;
    let standing: Counts = Family::default();
    for state in STANDING {
        standing
            .get_or_create(&labels(&[("state", state.as_str())]))
            .set(count(alerts.iter().filter(|a| a.state == state).count()));
    }
    registry.register("alerts", "Drift alerts that stand, by state", standing);

    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| {
        Error::from(DomainError::InvalidRequest(format!(
            "encoding metrics: {e}"
        )))
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_keep_the_milliseconds() {
        assert_eq!(seconds(1_764_000_000_123), 1_764_000_000.123);
        assert_eq!(seconds(-1500), -1.5);
        assert_eq!(seconds(5_000_000_000_000), 5_000_000_000.0);
    }
}
