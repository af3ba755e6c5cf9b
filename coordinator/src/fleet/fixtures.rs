//! Hand-made rows for the fleet report tests.

use super::report::DAY_MS;
use super::rows::{BoardFacts, FleetFigure, FleetRows, FleetRun};

/// Night `n` at 02:00 (some day in 2026).
pub fn night(n: i64) -> i64 {
    1_767_225_600_000 + n * DAY_MS + 2 * 3_600_000
}

/// The facts of a board with this CPU (8 cores, 32 GB).
pub fn facts(cpu: &str) -> BoardFacts {
    BoardFacts {
        cpu_model: Some(cpu.to_string()),
        microarch: Some("Zen 4".into()),
        cores: Some(8),
        logical_cpus: Some(16),
        memory_gb: Some(32),
        tool_version: Some("0.1.0".into()),
        ..BoardFacts::default()
    }
}

/// A run: NumPy results carry the BLAS, PyTorch results libtorch (as the engines report).
pub fn run(
    run_id: &str,
    campaign: &str,
    agent: &str,
    framework: &str,
    at: i64,
    cpu: &str,
) -> FleetRun {
    let mut facts = facts(cpu);
    match framework {
        "numpy" => facts.blas = Some("OpenBLAS 0.3.21".into()),
        _ => facts.libtorch = Some("2.4.0".into()),
    }
    FleetRun {
        run_id: run_id.to_string(),
        campaign_id: campaign.to_string(),
        schedule: None,
        agent_id: agent.to_string(),
        hostname: format!("host-{agent}"),
        framework: framework.to_string(),
        device: "cpu".into(),
        fallback_from: None,
        preset_id: "auto".into(),
        quick: true,
        started_at: at,
        stored_at: at + 60_000,
        facts,
        host_key: Some(format!("hk-{agent}")),
        env_key: Some("env-1".into()),
        noise_floor_pct: Some(2.0),
        bandwidth_gbps: None,
        bandwidth_efficiency: None,
        peaks: Vec::new(),
        anomalies: Vec::new(),
        figure_flags: Vec::new(),
    }
}

/// A measured GEMM record (efficiency against a 200 GFLOPS peak).
pub fn gemm(run_id: &str, precision: &str, size: i64, best: f64) -> FleetFigure {
    FleetFigure {
        run_id: run_id.to_string(),
        idx: 0,
        operation: "gemm".into(),
        precision: precision.to_string(),
        size,
        status: "measured".into(),
        reason: None,
        best_gops: Some(best),
        median_gops: Some(best * 0.98),
        best_gbps: None,
        median_gbps: None,
        efficiency: Some(best / 200.0),
        trials: 5,
        cv_pct: Some(1.0),
        above_theoretical: false,
        noisy: false,
        throttled: false,
        in_cache: false,
        bandwidth_eligible: false,
    }
}

/// A measured STREAM triad record.
pub fn triad(run_id: &str, mib: i64, gbps: f64) -> FleetFigure {
    FleetFigure {
        operation: "stream_triad".into(),
        precision: "fp64".into(),
        size: mib,
        best_gops: None,
        median_gops: None,
        best_gbps: Some(gbps),
        median_gbps: Some(gbps * 0.97),
        efficiency: Some(gbps / 50.0),
        bandwidth_eligible: true,
        ..gemm(run_id, "fp64", mib, 1.0)
    }
}

/// Rows from runs, each with its figures; the runs' `bandwidth_gbps` from a triad figure.
pub fn rows(items: Vec<(FleetRun, Vec<FleetFigure>)>) -> FleetRows {
    let mut out = FleetRows::default();
    for (mut r, figs) in items {
        r.figure_flags = super::anomalies::figure_flags(&figs);
        if let Some(bw) = figs.iter().find_map(|f| f.best_gbps) {
            r.bandwidth_gbps = Some(bw);
            r.bandwidth_efficiency = Some(bw / 50.0);
        }
        out.runs.push(r);
        out.figures.extend(figs);
    }
    out.runs
        .sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
    out
}

/// A result document whose records are `figures` (the real quick result's metadata and
/// summary, its run id `run_id`): what a store reads the figures of a stored result from.
pub fn result_of(run_id: &str, figures: &[FleetFigure]) -> fleetcal_proto::CalibrationResult {
    use fleetcal_proto::result::{Rate, Status};
    let mut r = fleetcal_proto::CalibrationResult::from_json(
        include_str!("../../testdata/quick-result.json"),
        "template",
    )
    .expect("the template parses");
    r.metadata.run_id = run_id.to_string();
    let base = r.records[0].clone();
    let rate = |best: Option<f64>, median: Option<f64>| {
        best.map(|best| Rate {
            best,
            median: median.unwrap_or(best),
            mean: median.unwrap_or(best),
        })
    };
    r.records = figures
        .iter()
        .map(|f| {
            let mut rec = base.clone();
            rec.operation = f.operation.parse().expect("a known operation");
            rec.precision = f.precision.parse().expect("a known precision");
            rec.size = u64::try_from(f.size).expect("a size");
            rec.status = match f.status.as_str() {
                "measured" => Status::Measured,
                "skipped" => Status::Skipped,
                "unsupported" => Status::Unsupported,
                _ => Status::Failed,
            };
            rec.reason = f.reason.clone();
            rec.gops = rate(f.best_gops, f.median_gops);
            rec.bandwidth_gbps = rate(f.best_gbps, f.median_gbps);
            rec.efficiency = f.efficiency;
            rec.trials = f.trials;
            if let (Some(l), Some(cv)) = (rec.latency_ms.as_mut(), f.cv_pct) {
                l.cv = cv / 100.0;
            }
            rec.sampling = None;
            rec.flags.above_theoretical = f.above_theoretical;
            rec.flags.noisy = f.noisy;
            rec.flags.throttled = f.throttled;
            rec.flags.in_cache = f.in_cache;
            rec.flags.bandwidth_eligible = f.bandwidth_eligible;
            rec
        })
        .collect();
    r
}

/// A running NumPy run `r1` of campaign `c1` on board `a1` (`board-1`), started at 1 ms.
pub fn running_run() -> crate::model::RunRecord {
    crate::model::RunRecord {
        run_id: "r1".into(),
        campaign_id: "c1".into(),
        agent_id: "a1".into(),
        hostname: "board-1".into(),
        preset_id: "auto".into(),
        framework: fleetcal_proto::Framework::Numpy,
        device: fleetcal_proto::DeviceKind::Cpu,
        state: crate::model::RunState::Running,
        fraction: 0.0,
        message: String::new(),
        seq: 0,
        started_at: Some(1),
        finished_at: None,
        not_before: None,
    }
}
