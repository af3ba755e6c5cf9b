//! Summary tests over hand-built records.

use std::path::Path;

use fleetcal_proto::result::{Flags, LatencyStats, Rate, Record, Status};
use fleetcal_proto::{Operation, Precision, Preset};

use super::summarize;

const PRESET: &str = r#"
schema_version = 1
id = "test-board"
hardware_name = "Test-Board"
device = "cpu"
architecture = "x86_64"
platform = "desktop"
default_framework = "numpy"
bandwidth_gbps = 50.0
notes = "a test board"

[peaks]
fp64 = 100.0
fp32 = 200.0
int8 = 400.0
"#;

fn preset() -> Preset {
    Preset::from_toml(PRESET, Path::new("test-board.toml")).unwrap()
}

fn measured(op: Operation, precision: Precision, size: u64, rate: f64) -> Record {
    let lat = LatencyStats {
        best: 1.0,
        median: 1.0,
        mean: 1.0,
        std: 0.0,
        max: 1.0,
        cv: 0.0,
    };
    let r = Rate {
        best: rate,
        median: rate,
        mean: rate,
    };
    let stream = op.is_stream();
    Record {
        operation: op,
        precision,
        size,
        array_mib: stream.then(|| size as f64 * precision.item_size() as f64 / 1048576.0),
        status: Status::Measured,
        reason: None,
        flops: 1.0,
        bytes: 1.0,
        arithmetic_intensity: 1.0,
        trials: 5,
        latency_ms: Some(lat),
        gops: (!stream).then_some(r),
        bandwidth_gbps: Some(r),
        efficiency: None,
        flags: Flags::default(),
        sampling: None,
        telemetry: None,
    }
}

fn not_measured(op: Operation, precision: Precision, status: Status, reason: &str) -> Record {
    Record {
        status,
        reason: Some(reason.into()),
        latency_ms: None,
        gops: None,
        bandwidth_gbps: None,
        trials: 0,
        ..measured(op, precision, 64, 0.0)
    }
}

fn eligible(mut r: Record) -> Record {
    r.flags.bandwidth_eligible = true;
    r
}

#[test]
fn best_blas_rate_per_precision_with_its_efficiency() {
    let records = vec![
        measured(Operation::Dot, Precision::Fp32, 1000, 20.0),
        measured(Operation::Gemm, Precision::Fp32, 512, 150.0),
        measured(Operation::Gemm, Precision::Fp32, 1024, 120.0),
        measured(Operation::Gemm, Precision::Fp64, 512, 60.0),
        measured(Operation::Gemm, Precision::Int16, 512, 3.0),
        // STREAM records never count as BLAS peaks
        eligible(measured(
            Operation::StreamTriad,
            Precision::Fp32,
            1 << 26,
            999.0,
        )),
    ];
    let s = summarize(&records, &preset(), false);
    let fp32 = &s.peak_by_precision[&Precision::Fp32];
    assert_eq!(
        (fp32.gops, fp32.operation, fp32.size),
        (150.0, Operation::Gemm, 512)
    );
    assert_eq!(fp32.efficiency, Some(0.75));
    assert_eq!(s.peak_by_precision[&Precision::Fp64].efficiency, Some(0.6));
    assert_eq!(
        s.peak_by_precision[&Precision::Int16].efficiency,
        None,
        "no peak"
    );
    assert_eq!(s.peak_by_precision.len(), 3);
}

#[test]
fn bandwidth_comes_from_eligible_stream_records_only() {
    let records = vec![
        measured(Operation::StreamCopy, Precision::Fp32, 1 << 21, 300.0), // 8 MiB, in cache
        eligible(measured(
            Operation::StreamCopy,
            Precision::Fp32,
            1 << 27,
            40.0,
        )),
        eligible(measured(
            Operation::StreamTriad,
            Precision::Fp32,
            1 << 27,
            45.0,
        )),
    ];
    let s = summarize(&records, &preset(), false);
    assert_eq!(s.memory_bandwidth_gbps, Some(45.0));
    assert_eq!(s.bandwidth_source, "stream_triad 512 MiB");
    assert_eq!(s.bandwidth_efficiency, Some(0.9));
}

#[test]
fn no_eligible_stream_record_is_explained() {
    let records = vec![measured(
        Operation::StreamAdd,
        Precision::Fp32,
        1 << 24,
        80.0,
    )];
    let s = summarize(&records, &preset(), false);
    assert_eq!(s.memory_bandwidth_gbps, None);
    assert_eq!(s.bandwidth_efficiency, None);
    assert!(
        s.bandwidth_source.contains("64 MiB"),
        "{}",
        s.bandwidth_source
    );
    assert!(s.bandwidth_source.contains("4x the last-level cache"));
    let none = summarize(&[], &preset(), false);
    assert_eq!(none.bandwidth_source, "none: no STREAM kernel was measured");
}

#[test]
fn supported_and_unsupported_precisions() {
    let records = vec![
        measured(Operation::Gemm, Precision::Fp32, 64, 10.0),
        not_measured(
            Operation::Gemm,
            Precision::Bf16,
            Status::Unsupported,
            "no bf16",
        ),
        not_measured(Operation::Gemm, Precision::Int8, Status::Failed, "boom"),
        // unsupported for one op but measured for another: supported
        not_measured(Operation::Dot, Precision::Fp16, Status::Unsupported, "no"),
        measured(Operation::Gemm, Precision::Fp16, 64, 1.0),
        measured(Operation::Gemm, Precision::Fp64, 64, 5.0),
    ];
    let s = summarize(&records, &preset(), false);
    assert_eq!(
        s.supported_precisions,
        [Precision::Fp64, Precision::Fp32, Precision::Fp16]
    );
    assert_eq!(s.unsupported_precisions, [Precision::Bf16]);
}

#[test]
fn anomaly_lines_cover_fallback_above_theoretical_noisy_failed_and_skipped() {
    let mut above = measured(Operation::Gemm, Precision::Fp32, 1024, 250.0);
    above.flags.above_theoretical = true;
    above.efficiency = Some(1.25);
    let mut noisy = measured(Operation::Dot, Precision::Fp64, 1000, 1.0);
    noisy.flags.noisy = true;
    noisy.latency_ms.as_mut().unwrap().cv = 0.123;
    let skip = "Skipped (poor performance at size 512: 0.7 GIOPS < 1.0 GIOPS)";
    let records = vec![
        above,
        noisy,
        not_measured(
            Operation::Gemv,
            Precision::Fp32,
            Status::Failed,
            "out of memory",
        ),
        not_measured(Operation::Gemm, Precision::Int8, Status::Skipped, skip),
        not_measured(Operation::Gemm, Precision::Int8, Status::Skipped, skip),
    ];
    let s = summarize(&records, &preset(), true);
    assert_eq!(s.anomalies.len(), 5, "{:#?}", s.anomalies);
    assert!(
        s.anomalies[0].starts_with("DEVICE FALLBACK"),
        "{}",
        s.anomalies[0]
    );
    assert!(s.anomalies[1].contains("gemm fp32 n=1024: 250.0 GFLOPS is 125.0%"));
    assert!(s.anomalies[1].contains("ABOVE THEORETICAL"));
    assert!(s.anomalies[1].ends_with(
        "Likely caused by: Turbo Boost, optimized BLAS, or conservative theoretical peak"
    ));
    assert!(
        s.anomalies[2].starts_with("1 noisy figure(s)")
            && s.anomalies[2].ends_with(": dot fp64 n=1000 (cv 12.3%)"),
        "{}",
        s.anomalies[2]
    );
    assert_eq!(s.anomalies[3], "gemv fp32 n=64 failed: out of memory");
    assert_eq!(
        s.anomalies[4],
        format!("gemm int8: 2 larger size(s) {skip}")
    );
    assert!(summarize(&records[..1], &preset(), false).anomalies.len() == 1);
}

#[test]
fn a_long_noisy_list_is_cut_short() {
    let records: Vec<Record> = (0..20)
        .map(|i| {
            let mut r = measured(Operation::Dot, Precision::Fp32, 1000 + i, 1.0);
            r.flags.noisy = true;
            r.latency_ms.as_mut().unwrap().cv = 0.2;
            r
        })
        .collect();
    let s = summarize(&records, &preset(), false);
    assert_eq!(s.anomalies.len(), 1);
    assert!(
        s.anomalies[0].starts_with("20 noisy figure(s)"),
        "{}",
        s.anomalies[0]
    );
    assert!(
        s.anomalies[0].ends_with("n=1007 (cv 20.0%) and 12 more"),
        "{}",
        s.anomalies[0]
    );
}

#[test]
fn throttled_unsteady_and_missing_telemetry_are_anomalies() {
    use fleetcal_proto::result::FigureTelemetry;
    let mut hot = measured(Operation::Gemm, Precision::Fp32, 512, 100.0);
    hot.flags.throttled = true;
    let mut unsteady = measured(Operation::Gemm, Precision::Fp32, 1024, 100.0);
    unsteady.flags.clock_spread = true;
    let blind = FigureTelemetry {
        readings: 2,
        cpu_clock_source: "measured".into(),
        cpu_mhz: None,
        running_mhz: None,
        temperature_c: None,
        hottest_sensor: None,
        gpu_mhz: None,
        throttled: None,
        missing: vec![
            "temperature: no sensor".into(),
            "throttling: no counter".into(),
        ],
        ..Default::default()
    };
    hot.telemetry = Some(blind.clone());
    unsteady.telemetry = Some(blind);
    let s = summarize(&[hot, unsteady], &preset(), false);
    let text = s.anomalies.join("\n");
    assert!(
        text.contains("1 figure(s) taken while throttled (a throttle counter rose or a CPU/GPU cooling device was active): gemm fp32 n=512"),
        "{text}"
    );
    assert!(
        text.contains("1 figure(s) with the CPU clock moving"),
        "{text}"
    );
    // Once per run, not once per figure.
    assert_eq!(
        text.matches("telemetry missing: temperature: no sensor; throttling: no counter")
            .count(),
        1,
        "{text}"
    );
}
