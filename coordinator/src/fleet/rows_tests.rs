//! The rows of a real quick result (`testdata/quick-result.json`, measured by the numpy
//! engine on a 2-core VM) and of hand-made variants.

use fleetcal_proto::environment::{Fact, JetsonEnvironment, LibtorchEnvironment};
use fleetcal_proto::result::{Fallback, Status};
use fleetcal_proto::{CalibrationResult, DeviceKind};

use super::*;

const QUICK: &str = include_str!("../../testdata/quick-result.json");

fn quick() -> CalibrationResult {
    CalibrationResult::from_json(QUICK, "quick-result.json").expect("the fixture parses")
}

fn run() -> RunRecord {
    crate::fleet::fixtures::running_run()
}

#[test]
fn a_real_result_makes_its_run_row() {
    let result = quick();
    let f = FleetRun::from_result(&run(), Some("nightly"), &result, 99);
    assert_eq!(
        (
            f.run_id.as_str(),
            f.campaign_id.as_str(),
            f.agent_id.as_str()
        ),
        ("r1", "c1", "a1")
    );
    assert_eq!(f.schedule.as_deref(), Some("nightly"));
    assert_eq!(
        (f.hostname.as_str(), f.preset_id.as_str()),
        ("board-1", "auto")
    );
    assert_eq!((f.framework.as_str(), f.device.as_str()), ("numpy", "cpu"));
    assert_eq!(f.fallback_from, None);
    assert!(f.quick);
    // 2026-11-29T18:32:06.390393+00:00
    assert_eq!(f.started_at, 1_795_977_126_390);
    assert_eq!(f.stored_at, 99);
    let env = result.metadata.environment.as_ref().expect("environment");
    assert_eq!(f.host_key.as_deref(), Some(env.host_key.as_str()));
    assert_eq!(f.env_key.as_deref(), Some(env.key.as_str()));
    assert_eq!(f.noise_floor_pct, result.summary.noise_floor_pct);
    assert_eq!(f.bandwidth_gbps, result.summary.memory_bandwidth_gbps);
    assert_eq!(f.anomalies, result.summary.anomalies);
    let precisions: Vec<&str> = f.peaks.iter().map(|p| p.precision.as_str()).collect();
    assert_eq!(
        precisions,
        ["fp64", "fp32", "fp16", "int64", "int32", "int16", "int8"]
    );
    let fp32 = &result.summary.peak_by_precision[&fleetcal_proto::Precision::Fp32];
    assert_eq!(f.peaks[1].gops, fp32.gops);
    assert_eq!(f.peaks[1].operation, fp32.operation.as_str());
    assert_eq!(f.facts, {
        BoardFacts {
            cpu_model: Some("Intel(R) Xeon(R) Processor".into()),
            microarch: Some("Intel AVX-512 server core".into()),
            cores: Some(2),
            logical_cpus: Some(2),
            // 25.28 GB
            memory_gb: Some(25),
            gpu_model: None,
            jetson_model: None,
            // No cpufreq in the VM: the governor is unknown.
            power_mode: None,
            blas: Some("OpenBLAS 0.3.21".into()),
            libtorch: None,
            tool_version: Some("0.1.0".into()),
        }
    });
}

#[test]
fn facts_fall_back_to_host_and_engine_without_an_environment() {
    let mut result = quick();
    result.metadata.environment = None;
    result.metadata.host.total_memory_gb = 23.6;
    result.metadata.engine.name = "pytorch".into();
    result.metadata.engine.library = "libtorch 2.13.0+cpu".into();
    let f = FleetRun::from_result(&run(), None, &result, 5);
    assert_eq!(
        f.facts,
        BoardFacts {
            cpu_model: Some("Intel(R) Xeon(R) Processor".into()),
            microarch: None,
            cores: None,
            logical_cpus: Some(2),
            memory_gb: Some(24),
            gpu_model: None,
            jetson_model: None,
            power_mode: None,
            blas: Some("OpenBLAS 0.3.21".into()),
            libtorch: Some("2.13.0+cpu".into()),
            tool_version: Some("0.1.0".into()),
        }
    );
    assert_eq!((f.host_key, f.env_key, f.schedule), (None, None, None));
    // A memory size that is no size is unknown, not a guess.
    result.metadata.host.total_memory_gb = f64::NAN;
    let f = FleetRun::from_result(&run(), None, &result, 5);
    assert_eq!(f.facts.memory_gb, None);
}

#[test]
fn power_mode_is_the_jetson_mode_else_the_governor() {
    let mut result = quick();
    let env = result.metadata.environment.as_mut().expect("environment");
    env.host.governor = Fact::Known("performance".into());
    let facts = BoardFacts::from_metadata(&result.metadata);
    assert_eq!(facts.power_mode.as_deref(), Some("performance"));

    let env = result.metadata.environment.as_mut().expect("environment");
    env.host.gpu_model = Fact::Known("Orin (nvgpu)".into());
    env.host.jetson = Some(JetsonEnvironment {
        model: "NVIDIA Jetson AGX Orin".into(),
        l4t_release: Fact::Known("R36.4.3".into()),
        nvpmodel: Fact::Known("MAXN (mode 0)".into()),
        jetson_clocks: Fact::Known(true),
        emc_max_hz: Fact::unknown("not root"),
        emc_rate_hz: Fact::unknown("not root"),
    });
    env.software.libtorch = Some(LibtorchEnvironment {
        version: Fact::Known("2.5.0".into()),
        backends: vec!["cuda".into()],
    });
    let facts = BoardFacts::from_metadata(&result.metadata);
    assert_eq!(facts.power_mode.as_deref(), Some("MAXN (mode 0)"));
    assert_eq!(
        facts.jetson_model.as_deref(),
        Some("NVIDIA Jetson AGX Orin")
    );
    assert_eq!(facts.gpu_model.as_deref(), Some("Orin (nvgpu)"));
    assert_eq!(facts.libtorch.as_deref(), Some("2.5.0"));
    // An unknown nvpmodel falls back to the governor.
    if let Some(j) = result
        .metadata
        .environment
        .as_mut()
        .and_then(|e| e.host.jetson.as_mut())
    {
        j.nvpmodel = Fact::unknown("nvpmodel not installed");
    }
    let facts = BoardFacts::from_metadata(&result.metadata);
    assert_eq!(facts.power_mode.as_deref(), Some("performance"));
}

#[test]
fn a_fallback_names_the_requested_device() {
    let mut result = quick();
    result.metadata.requested_device = DeviceKind::Cuda;
    result.metadata.fallback = Some(Fallback {
        requested: DeviceKind::Cuda,
        actual: DeviceKind::Cpu,
        reason: "no CUDA".into(),
        accepted_by: "--allow-fallback".into(),
    });
    let f = FleetRun::from_result(&run(), None, &result, 5);
    assert_eq!(f.fallback_from.as_deref(), Some("cuda"));
    assert_eq!(f.device, "cpu");
}

#[test]
fn a_start_that_does_not_parse_falls_back_to_the_store_time() {
    let mut result = quick();
    result.metadata.started_at = "yesterday".into();
    assert_eq!(
        FleetRun::from_result(&run(), None, &result, 77).started_at,
        77
    );
}

#[test]
fn every_record_makes_a_figure_in_order() {
    let result = quick();
    let figures = FleetFigure::from_result("r1", &result);
    assert_eq!(figures.len(), result.records.len());
    for (i, (f, r)) in figures.iter().zip(&result.records).enumerate() {
        assert_eq!(f.idx, i64::try_from(i).unwrap());
        assert_eq!(f.run_id, "r1");
        assert_eq!(f.operation, r.operation.as_str());
        assert_eq!(f.precision, r.precision.as_str());
        assert_eq!(f.status, status_name(r.status));
        assert_eq!(f.trials, r.trials);
        assert_eq!(f.best_gops, r.gops.map(|g| g.best));
        assert_eq!(f.median_gbps, r.bandwidth_gbps.map(|b| b.median));
        assert_eq!(f.noisy, r.flags.noisy);
    }
    let measured = result
        .records
        .iter()
        .position(|r| r.status == Status::Measured && r.gops.is_some())
        .expect("a measured BLAS figure");
    let r = &result.records[measured];
    let f = &figures[measured];
    let cv = r.latency_ms.expect("latency").cv * 100.0;
    assert_eq!(f.cv_pct, Some(cv));
    assert_eq!(f.median_gops, r.gops.map(|g| g.median));
    let skipped = result
        .records
        .iter()
        .position(|r| r.status == Status::Skipped)
        .expect("a skipped figure");
    assert_eq!(figures[skipped].status, "skipped");
    assert_eq!(figures[skipped].reason, result.records[skipped].reason);
    assert_eq!(figures[skipped].best_gops, None);
}
