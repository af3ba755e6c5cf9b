//! A `fleet_runs` row back as a [`FleetRun`] with its headline records: the one decoding of
//! the rows every fleet report reads, over either backend's rows ([`Columns`]).

use super::columns::{Columns, OwnedRow};
use super::sql::{corrupt, skipped, Sections};
use crate::fleet::{BoardFacts, FleetFigure, FleetRun};

/// A `fleet_runs` row with the records of its packed summary (the run's headline figures are
/// made of them), and the packed values `want` says (figure flags, roofline points, pair
/// rates; selected by the query only then).
pub(crate) fn fleet_run_from(
    row: &mut impl Columns,
    want: Sections,
) -> Result<(FleetRun, Vec<FleetFigure>), sqlx::Error> {
    let mut count = |column: &str| -> Result<Option<u32>, sqlx::Error> {
        row.int(column)?
            .map(|n| u32::try_from(n).map_err(|e| corrupt(column, e)))
            .transpose()
    };
    let cores = count("cores")?;
    let logical_cpus = count("logical_cpus")?;
    let memory_gb = count("memory_gb")?;
    let summary = match row.blob("summary")? {
        Some(bytes) => super::packed::unpack(&bytes).map_err(|e| corrupt("summary", e))?,
        None => super::packed::RunSummary::default(),
    };
    let run_id = row.required_text("run_id")?;
    let mut kept = summary.figures;
    if want.points {
        if let Some(bytes) = row.blob("points")? {
            kept.extend(super::packed::unpack_points(&bytes).map_err(|e| corrupt("points", e))?);
        }
    }
    if want.rates {
        if let Some(bytes) = row.blob("rates")? {
            kept.extend(super::packed::unpack_rates(&bytes).map_err(|e| corrupt("rates", e))?);
        }
    }
    if want.points || want.rates {
        kept.sort_by_key(|f| f.idx);
    }
    let mut figure_flags = Vec::new();
    if want.flags {
        if let Some(bytes) = row.blob("flags")? {
            figure_flags = super::packed::unpack_flags(&bytes).map_err(|e| corrupt("flags", e))?;
        }
    }
    let figures = kept
        .into_iter()
        .map(|f| FleetFigure {
            run_id: run_id.clone(),
            ..f
        })
        .collect();
    let run = FleetRun {
        run_id,
        campaign_id: row.required_text("campaign_id")?,
        schedule: row.text("schedule")?,
        agent_id: row.required_text("agent_id")?,
        hostname: row.required_text("hostname")?,
        framework: row.required_text("framework")?,
        device: row.required_text("device")?,
        fallback_from: row.text("fallback_from")?,
        preset_id: row.required_text("preset_id")?,
        quick: row.flag("quick")?,
        started_at: row.required_int("started_at")?,
        stored_at: row.required_int("stored_at")?,
        facts: BoardFacts {
            cpu_model: row.text("cpu_model")?,
            microarch: row.text("microarch")?,
            cores,
            logical_cpus,
            memory_gb,
            gpu_model: row.text("gpu_model")?,
            jetson_model: row.text("jetson_model")?,
            power_mode: row.text("power_mode")?,
            blas: row.text("blas")?,
            libtorch: row.text("libtorch")?,
            tool_version: row.text("tool_version")?,
        },
        host_key: row.text("host_key")?,
        env_key: row.text("env_key")?,
        noise_floor_pct: row.real("noise_floor_pct")?,
        bandwidth_gbps: row.real("bandwidth_gbps")?,
        bandwidth_efficiency: row.real("bandwidth_efficiency")?,
        peaks: summary.peaks,
        anomalies: summary.anomalies,
        figure_flags,
    };
    Ok((run, figures))
}

/// [`fleet_run_from`] of each row, over the cores; a row that does not decode is logged
/// (its run id and the error, which names the column) and left out.
pub(crate) fn decode_fleet_rows(
    rows: Vec<OwnedRow>,
    want: Sections,
) -> Vec<(FleetRun, Vec<FleetFigure>)> {
    crate::par::par_map(rows, |mut row| {
        let id = row.peek_text("run_id").unwrap_or("<no run id>").to_string();
        fleet_run_from(&mut row, want)
            .map_err(|e| skipped("fleet_runs", &id, &e))
            .ok()
    })
    .into_iter()
    .flatten()
    .collect()
}
