//! The side-by-side table of a one-board compare (`calibrate --framework compare`): per
//! operation and precision, the NumPy and the PyTorch figure, their ratio, and whether the
//! difference is inside the run's noise floor.
//!
//! A figure is the best median-latency rate over the sizes both measured (GFLOPS/GIOPS for
//! BLAS, GB/s for STREAM): medians, because the noise floor is about medians. The difference
//! counts as noise when |ratio − 1| is within the larger of the two results' noise floors.

use std::collections::{BTreeMap, BTreeSet};

use fleetcal_proto::result::{CalibrationResult, Record, Status};
use fleetcal_proto::stats::{beyond_noise, Faster};
use fleetcal_proto::{Operation, Precision};

/// The median-latency rate of a measured record.
fn median_rate(r: &Record) -> Option<f64> {
    if r.operation.is_stream() {
        r.bandwidth_gbps.map(|b| b.median)
    } else {
        r.gops.map(|g| g.median)
    }
}

/// Measured median rates by (operation, precision) and size.
fn rates(result: &CalibrationResult) -> BTreeMap<(Operation, Precision), BTreeMap<u64, f64>> {
    let mut out: BTreeMap<(Operation, Precision), BTreeMap<u64, f64>> = BTreeMap::new();
    for r in result
        .records
        .iter()
        .filter(|r| r.status == Status::Measured)
    {
        if let Some(rate) = median_rate(r) {
            out.entry((r.operation, r.precision))
                .or_default()
                .insert(r.size, rate);
        }
    }
    out
}

/// The table's lines; `numpy` and `pytorch` are the two results of one compare run.
pub fn compare_table(numpy: &CalibrationResult, pytorch: &CalibrationResult) -> Vec<String> {
    let floor = numpy
        .summary
        .noise_floor_pct
        .into_iter()
        .chain(pytorch.summary.noise_floor_pct)
        .reduce(f64::max);
    let (a, b) = (rates(numpy), rates(pytorch));
    let keys: BTreeSet<_> = a.keys().chain(b.keys()).copied().collect();
    let rule = "=".repeat(96);
    let mut out = vec![
        String::new(),
        rule.clone(),
        format!(
            "COMPARE: {} — NumPy ({}) against PyTorch ({}), interleaved on this board",
            numpy.metadata.hardware_name, numpy.metadata.engine.library, pytorch.metadata.engine.library
        ),
        rule,
        format!(
            "Median-latency rates, best size both measured; noise floor {} (the larger of the two runs').",
            floor.map_or("unknown".into(), |f| format!("{f:.1} %"))
        ),
        format!(
            "  {:<13} {:<9} {:>10} {:>12} {:>12} {:>8}  {}",
            "Op", "Precision", "Size", "NumPy", "PyTorch", "Ratio", "Verdict"
        ),
        format!("  {}", "-".repeat(94)),
    ];
    for key @ (op, p) in keys {
        let unit = if op.is_stream() {
            "GB/s"
        } else {
            p.rate_unit()
        };
        let (na, nb) = (a.get(&key), b.get(&key));
        let common = na.zip(nb).and_then(|(x, y)| {
            x.iter()
                .filter_map(|(size, &rx)| y.get(size).map(|&ry| (*size, rx, ry)))
                .max_by(|l, r| l.1.max(l.2).total_cmp(&r.1.max(r.2)))
        });
        let line = match common {
            Some((size, rx, ry)) => {
                let ratio = if rx > 0.0 { Some(ry / rx) } else { None };
                let verdict = match (ratio, floor) {
                    (None, _) => "n/a",
                    (Some(_), None) => "noise floor unknown",
                    (Some(q), Some(f)) => match beyond_noise(q, f) {
                        None => "within noise",
                        Some((Faster::Second, _)) => "PyTorch faster",
                        Some((Faster::First, _)) => "NumPy faster",
                    },
                };
                format!(
                    "  {:<13} {:<9} {:>10} {:>12} {:>12} {:>8}  {}",
                    op.as_str(),
                    p.as_str(),
                    super::size_label(
                        op,
                        size,
                        op.is_stream()
                            .then(|| size as f64 * p.item_size() as f64 / (1024.0 * 1024.0))
                    ),
                    format!("{rx:.1} {unit}"),
                    format!("{ry:.1} {unit}"),
                    ratio.map_or("n/a".into(), |q| format!("{q:.2}×")),
                    verdict
                )
            }
            None => {
                let why = |side: Option<&BTreeMap<u64, f64>>, result: &CalibrationResult| match side
                {
                    Some(_) => "measured".to_string(),
                    None => not_measured_reason(result, op, p),
                };
                format!(
                    "  {:<13} {:<9} NumPy: {}; PyTorch: {}",
                    op.as_str(),
                    p.as_str(),
                    why(na, numpy),
                    why(nb, pytorch)
                )
            }
        };
        out.push(line);
    }
    out
}

/// Why a framework has no figure for an operation and precision.
fn not_measured_reason(result: &CalibrationResult, op: Operation, p: Precision) -> String {
    result
        .records
        .iter()
        .find(|r| r.operation == op && r.precision == p)
        .and_then(|r| r.reason.clone())
        .unwrap_or_else(|| "not run".into())
}

#[cfg(test)]
mod tests {
    use fleetcal_proto::result::{Flags, LatencyStats, Rate, Summary};

    use super::*;

    fn rec(op: Operation, p: Precision, size: u64, median: f64) -> Record {
        let rate = Rate {
            best: median * 1.1,
            median,
            mean: median,
        };
        Record {
            operation: op,
            precision: p,
            size,
            array_mib: None,
            status: Status::Measured,
            reason: None,
            flops: 1.0,
            bytes: 1.0,
            arithmetic_intensity: 1.0,
            trials: 6,
            latency_ms: Some(LatencyStats {
                best: 1.0,
                median: 1.0,
                mean: 1.0,
                std: 0.0,
                max: 1.0,
                cv: 0.0,
            }),
            gops: (!op.is_stream()).then_some(rate),
            bandwidth_gbps: Some(rate),
            efficiency: None,
            flags: Flags::default(),
            sampling: None,
            telemetry: None,
        }
    }

    fn result(records: Vec<Record>, floor: Option<f64>) -> CalibrationResult {
        let preset =
            serde_json::to_value(crate::presets::find(None, "i7-12700k").unwrap()).unwrap();
        let mut r: CalibrationResult = serde_json::from_value(serde_json::json!({
            "schema_version": 1,
            "metadata": {
                "run_id": "r", "hardware_name": "Test Board", "framework": "numpy",
                "device_type": "cpu", "requested_device": "cpu", "actual_device": "CPU",
                "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:01+00:00",
                "tool_version": "t", "host": {"hostname": "h", "os": "", "kernel": "", "architecture": "x86_64",
                    "cpu_vendor": "", "cpu_model": "", "cpu_count": 2, "total_memory_gb": 1.0},
                "engine": {"name": "numpy", "library": "ndarray 0.17", "threads": 2},
                "preset": preset,
                "settings": {"quick": true, "operations": ["gemm"], "warmup_runs": 1, "measurement_runs": 6,
                    "min_gflops": 1.0, "timeout_s": 2.0, "noisy_cv": 0.05, "above_theoretical": 1.1},
                "platform_check": {"skipped": false}
            },
            "records": [],
            "summary": {"peak_by_precision": {}, "bandwidth_source": "none", "supported_precisions": [],
                "unsupported_precisions": [], "anomalies": []}
        }))
        .unwrap();
        r.records = records;
        r.summary = Summary {
            noise_floor_pct: floor,
            ..r.summary
        };
        r
    }

    #[test]
    fn ratios_and_verdicts_against_the_noise_floor() {
        let numpy = result(
            vec![
                rec(Operation::Gemm, Precision::Fp32, 512, 100.0),
                rec(Operation::Gemm, Precision::Fp32, 1024, 150.0),
                rec(Operation::Dot, Precision::Fp64, 1000, 10.0),
                rec(Operation::StreamTriad, Precision::Fp32, 1 << 20, 20.0),
            ],
            Some(2.0),
        );
        let mut not_run = rec(Operation::Gemm, Precision::Bf16, 512, 0.0);
        not_run.status = Status::Unsupported;
        not_run.reason = Some("NumPy does not support this precision".into());
        let mut numpy = numpy;
        numpy.records.push(not_run);
        let pytorch = result(
            vec![
                rec(Operation::Gemm, Precision::Fp32, 512, 103.0),
                rec(Operation::Gemm, Precision::Fp32, 1024, 153.0),
                rec(Operation::Dot, Precision::Fp64, 1000, 5.0),
                rec(Operation::StreamTriad, Precision::Fp32, 1 << 20, 30.0),
                rec(Operation::Gemm, Precision::Bf16, 512, 400.0),
            ],
            Some(4.0),
        );
        let text = compare_table(&numpy, &pytorch).join("\n");
        assert!(text.contains("noise floor 4.0 %"), "{text}");
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle}: {text}"))
                .to_string()
        };
        // gemm fp32: the best common size is 1024; 153/150 = 1.02, within a 4 % floor.
        let gemm = line("gemm          fp32");
        assert!(
            gemm.contains("1024") && gemm.contains("1.02×") && gemm.ends_with("within noise"),
            "{gemm}"
        );
        assert!(line("dot           fp64").ends_with("NumPy faster"));
        let triad = line("stream_triad");
        assert!(
            triad.contains("GB/s") && triad.ends_with("PyTorch faster"),
            "{triad}"
        );
        assert!(
            line("gemm          bf16")
                .contains("NumPy: NumPy does not support this precision; PyTorch: measured"),
            "{text}"
        );
        // Without a noise floor the verdict says so.
        let blind = compare_table(
            &result(numpy.records.clone(), None),
            &result(pytorch.records.clone(), None),
        );
        assert!(blind.join("\n").contains("noise floor unknown"));
        // A floor above 100 %: dot fp64 at 5 against 10 (2× slower) is within it, and 0.13×
        // (7.7× slower, 670 % from the slower side) is not, although it is 87 % below NumPy.
        let mut slow = pytorch.records.clone();
        let noisy = |records: Vec<Record>| {
            compare_table(
                &result(numpy.records.clone(), None),
                &result(records, Some(180.0)),
            )
            .join("\n")
        };
        assert!(noisy(slow.clone()).contains("0.50×  within noise"));
        slow.iter_mut()
            .find(|r| r.operation == Operation::Dot)
            .unwrap()
            .gops = Some(Rate {
            best: 1.3,
            median: 1.3,
            mean: 1.3,
        });
        let text = noisy(slow);
        assert!(text.contains("0.13×  NumPy faster"), "{text}");
    }
}
