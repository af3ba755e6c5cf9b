//! The pytorch engine through its public interface: construction, support probes, and the
//! shared runner producing the same records as for the numpy engine.
#![cfg(feature = "torch")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fleetcal_agent::bench::runner::{self, NullObserver};
use fleetcal_agent::bench::{BenchPlan, Engine, SizeSweep};
use fleetcal_agent::engines::numpy::NumpyEngine;
use fleetcal_agent::engines::torch::{cuda_available, cuda_info, TorchEngine};
use fleetcal_proto::result::{Record, Status};
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision};

fn plan(precisions: Vec<Precision>) -> BenchPlan {
    BenchPlan {
        operations: Operation::ALL.to_vec(),
        precisions,
        stream_precision: Precision::Fp32,
        sizes: SizeSweep {
            blas1: vec![1000, 4000],
            blas23: vec![32, 64],
            stream_mib: vec![0.25, 1.0],
        },
        warmup_runs: 1,
        measurement_runs: 2,
        max_trials: 2,
        ci_target: None,
        max_duration: None,
        deadline: None,
        min_gflops: 0.0,
        timeout: Duration::from_secs(60),
        noisy_cv: 0.05,
        above_theoretical: 1.10,
        peaks: BTreeMap::new(),
        bandwidth_gbps: None,
        llc_bytes: None,
    }
}

#[test]
fn cuda_request_without_cuda_is_a_clean_error() {
    if cuda_available() {
        return; // a CUDA machine: covered by the CUDA checks instead
    }
    assert_eq!(cuda_info(), None);
    let err = TorchEngine::new(DeviceKind::Cuda, None)
        .err()
        .expect("cuda must be refused");
    assert!(
        err.starts_with("cuda requested but not available: "),
        "{err}"
    );
}

#[test]
fn zero_threads_is_refused_naming_the_value() {
    let err = TorchEngine::new(DeviceKind::Cpu, Some(0)).err().unwrap();
    assert!(err.contains("threads 0"), "{err}");
}

#[test]
fn cpu_engine_describes_itself() {
    let engine = TorchEngine::new(DeviceKind::Cpu, None).unwrap();
    assert_eq!(engine.framework(), Framework::Pytorch);
    assert_eq!(engine.device(), DeviceKind::Cpu);
    assert!(
        engine.banner().ends_with("(libtorch) on CPU"),
        "{}",
        engine.banner()
    );
    let info = engine.info();
    assert_eq!(info.name, "pytorch");
    assert!(
        info.library.starts_with("libtorch 2.13.0"),
        "{}",
        info.library
    );
}

#[test]
fn support_probes_answer_for_every_figure_and_are_stable() {
    let engine = TorchEngine::new(DeviceKind::Cpu, None).unwrap();
    for op in Operation::ALL {
        for p in Precision::ALL {
            let first = engine.check_support(op, p);
            assert_eq!(first, engine.check_support(op, p), "{op} {p}");
            if let Err(reason) = &first {
                assert!(reason.contains("libtorch: "), "{op} {p}: {reason}");
            }
        }
    }
    // The figures every CPU libtorch has.
    for p in [Precision::Fp64, Precision::Fp32] {
        for op in Operation::ALL {
            assert_eq!(engine.check_support(op, p), Ok(()), "{op} {p}");
        }
    }
}

/// What the schema of a record depends on: its figure and which keys it serializes.
fn shape(r: &Record) -> (String, Status, BTreeSet<String>) {
    let json = serde_json::to_value(r).unwrap();
    let keys = json.as_object().unwrap().keys().cloned().collect();
    (
        format!("{} {} {}", r.operation, r.precision, r.size),
        r.status,
        keys,
    )
}

#[test]
fn the_shared_runner_gives_records_shaped_like_numpy_ones() {
    let precisions = vec![Precision::Fp64, Precision::Fp32, Precision::Int32];
    let plan = plan(precisions);
    let mut torch = TorchEngine::new(DeviceKind::Cpu, Some(1)).unwrap();
    let mut numpy = NumpyEngine::new(Some(1));
    let t = runner::run(&mut torch, &plan, &mut NullObserver);
    let n = runner::run(&mut numpy, &plan, &mut NullObserver);
    assert_eq!(t.len(), n.len());
    assert_eq!(t.len(), 4 * 3 * 2 + 4 * 2);
    for (t, n) in t.iter().zip(&n) {
        assert_eq!(t.status, Status::Measured, "{t:?}");
        assert_eq!(shape(t), shape(n));
        assert_eq!((t.flops, t.bytes, t.trials), (n.flops, n.bytes, n.trials));
        assert!(
            t.gops.as_ref().map_or(t.flops == 0.0, |g| g.best > 0.0),
            "{t:?}"
        );
        let back: Record = serde_json::from_value(serde_json::to_value(t).unwrap()).unwrap();
        assert_eq!(&back, t);
    }
}

#[test]
fn records_count_bytes_with_each_precision_real_item_size() {
    let mut plan = plan(vec![Precision::Int8, Precision::Bf16]);
    plan.operations = vec![Operation::Gemm];
    let mut torch = TorchEngine::new(DeviceKind::Cpu, None).unwrap();
    let records = runner::run(&mut torch, &plan, &mut NullObserver);
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r.status, Status::Measured, "{r:?}");
        let n = r.size as f64;
        let want = 3.0 * n * n * r.precision.item_size() as f64;
        assert_eq!(r.bytes, want, "{} {}", r.precision, r.size);
    }
}
