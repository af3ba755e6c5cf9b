//! The origin tool's profile format (`--format origin`) and the conversion into it.
//!
//! Keys, types and nesting are exactly those of the origin's profile file, so tools built on
//! the origin load fleetcal results unchanged. Values are fleetcal's correct ones where the
//! origin's were wrong (see `docs/result-format.md`, "origin format"):
//! - top-level best/avg/worst figures cover BLAS records only (the origin mixed in STREAM);
//! - `max_latency_ms` is the slowest trial (the origin wrote mean + std);
//! - std is the sample standard deviation for every framework;
//! - byte counts use each precision's real item size;
//! - `num_warmup_runs` is the number that ran;
//! - `measured_bandwidth_gbps` comes only from arrays at least 4× the last-level cache;
//! - a skipped (timed-out or too slow) precision is `supported: false` with the reason.
//!
//! Rates in this format are from the mean latency, as the origin computed them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::result::{CalibrationResult, Record, Status};
use crate::{ContractError, Operation, OperationKind, Precision};

/// The whole origin profile file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginProfile {
    /// Run facts.
    pub metadata: OriginMetadata,
    /// The preset's fp32 peak.
    pub theoretical_peak_gflops: f64,
    /// The preset's memory bandwidth (0 when unknown).
    pub theoretical_bandwidth_gbps: f64,
    /// Best BLAS throughput over all BLAS records.
    pub best_measured_gflops: f64,
    /// Mean BLAS throughput over all BLAS records.
    pub avg_measured_gflops: f64,
    /// Worst BLAS throughput over all BLAS records.
    pub worst_measured_gflops: f64,
    /// Memory bandwidth from out-of-cache STREAM arrays.
    pub measured_bandwidth_gbps: f64,
    /// `measured_bandwidth_gbps` ÷ `theoretical_bandwidth_gbps` (0 when unknown).
    pub bandwidth_efficiency: f64,
    /// Best BLAS efficiency.
    pub best_efficiency: f64,
    /// Mean BLAS efficiency.
    pub avg_efficiency: f64,
    /// Worst BLAS efficiency.
    pub worst_efficiency: f64,
    /// One record per operation and size, keyed as the origin keys them.
    pub operation_profiles: BTreeMap<String, OriginRecord>,
    /// Always an empty object.
    pub fusion_profiles: BTreeMap<String, Value>,
    /// Per-precision summary.
    pub precision_matrix: PrecisionMatrix,
}

/// The origin's `metadata` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginMetadata {
    /// Display name of the hardware.
    pub hardware_name: String,
    /// ISO local time of the run, without offset.
    pub calibration_date: String,
    /// The writing tool and version.
    pub calibration_tool_version: String,
    /// CPU model as detected.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Memory in GB.
    pub total_memory_gb: f64,
    /// The origin's Python version; fleetcal records `none (fleetcal native)`.
    pub python_version: String,
    /// libtorch version for pytorch runs, else null.
    pub pytorch_version: Option<String>,
    /// The array library for numpy runs (`ndarray x.y (NumPy-compatible)`), else null.
    pub numpy_version: Option<String>,
    /// Warm-up runs per figure.
    pub num_warmup_runs: u32,
    /// Timed runs per figure.
    pub num_measurement_runs: u32,
    /// `cpu` or `cuda`.
    pub device_type: String,
    /// `x86_64` or `aarch64`.
    pub platform_architecture: String,
    /// `numpy` or `pytorch`.
    pub framework: String,
}

/// One entry of `operation_profiles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginRecord {
    /// `blas1_dot`, `stream_copy`, ...
    pub operation_type: String,
    /// GFLOPS of the fastest precision (STREAM: of the kernel).
    pub measured_gflops: f64,
    /// Against the precision's peak (STREAM: against the bandwidth).
    pub efficiency: f64,
    /// GB/s.
    pub achieved_bandwidth_gbps: f64,
    /// Arithmetic intensity below the ridge point.
    pub memory_bound: bool,
    /// Arithmetic intensity at or above the ridge point.
    pub compute_bound: bool,
    /// FLOPs per byte.
    pub arithmetic_intensity: f64,
    /// Always 1.
    pub batch_size: u32,
    /// Input shape.
    pub input_shape: Vec<u64>,
    /// Output shape.
    pub output_shape: Vec<u64>,
    /// Mean latency, ms.
    pub mean_latency_ms: f64,
    /// Sample std of the latency, ms.
    pub std_latency_ms: f64,
    /// Fastest trial, ms.
    pub min_latency_ms: f64,
    /// Slowest trial, ms.
    pub max_latency_ms: f64,
    /// Timed trials.
    pub num_trials: u32,
    /// The parameters the key is built from.
    pub extra_params: BTreeMap<String, Value>,
    /// BLAS: one entry per precision; STREAM: empty.
    pub precision_results: BTreeMap<String, PrecisionResult>,
}

/// One precision of a BLAS record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecisionResult {
    /// The precision name.
    pub precision: String,
    /// Whether it was measured.
    pub supported: bool,
    /// Why not.
    pub failure_reason: Option<String>,
    /// GFLOPS/GIOPS from the mean latency.
    pub measured_gops: Option<f64>,
    /// Against the precision's peak.
    pub efficiency: Option<f64>,
    /// Mean latency, ms.
    pub mean_latency_ms: Option<f64>,
    /// Sample std, ms.
    pub std_latency_ms: Option<f64>,
    /// Fastest trial, ms.
    pub min_latency_ms: Option<f64>,
    /// Slowest trial, ms.
    pub max_latency_ms: Option<f64>,
    /// This precision's rate ÷ fp32's at the same size.
    pub speedup_vs_fp32: Option<f64>,
    /// The size.
    pub test_size: u64,
    /// Timed trials.
    pub num_trials: Option<u32>,
    /// FLOPs per byte at this precision.
    pub arithmetic_intensity: Option<f64>,
    /// GB/s.
    pub achieved_bandwidth_gbps: Option<f64>,
}

/// The origin's `precision_matrix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecisionMatrix {
    /// Display name.
    pub hardware_name: String,
    /// Precisions measured at least once.
    pub supported_precisions: Vec<String>,
    /// Precisions never measured.
    pub unsupported_precisions: Vec<String>,
    /// Best BLAS rate per precision.
    pub peak_gflops_by_precision: BTreeMap<String, f64>,
    /// Best rate ÷ best fp32 rate.
    pub speedup_vs_fp32: BTreeMap<String, f64>,
    /// The preset's peaks.
    pub theoretical_peaks: BTreeMap<String, f64>,
}

impl OriginProfile {
    /// Parses an origin profile, rejecting missing and extra keys; `source_name` names it in errors.
    pub fn from_json(text: &str, source_name: &str) -> Result<OriginProfile, ContractError> {
        serde_json::from_str(text).map_err(|e| ContractError::Result {
            source_name: source_name.to_string(),
            message: format!("not an origin profile: {e}"),
        })
    }

    /// Serialises with 2-space indentation, as the origin does.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("profile serialises")
    }
}

/// The file name of a result: `<hardware_slug>_<framework>.json` (both formats).
pub fn file_name(result: &CalibrationResult) -> String {
    format!(
        "{}_{}.json",
        crate::preset::slug(&result.metadata.hardware_name),
        result.metadata.framework
    )
}

/// The origin's key for an operation profile: type, then sorted `k=v` pairs joined by `_`.
pub fn profile_key(operation_type: &str, extra: &BTreeMap<String, Value>) -> String {
    let mut key = operation_type.to_string();
    for (k, v) in extra {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        key.push_str(&format!("_{k}={v}"));
    }
    key
}

fn rate_from_mean(work: f64, rec: &Record) -> Option<f64> {
    let mean = rec.latency_ms?.mean;
    (mean > 0.0).then(|| work / (mean * 1e-3) / 1e9)
}

fn shapes(op: Operation, n: u64) -> (Vec<u64>, Vec<u64>) {
    match op {
        Operation::Dot => (vec![n], vec![]),
        Operation::Axpy => (vec![n], vec![n]),
        Operation::Gemv => (vec![n, n], vec![n]),
        Operation::Gemm => (vec![n, n], vec![n, n]),
        _ => (vec![n], vec![n]),
    }
}

fn memory_bound(result: &CalibrationResult, rec: &Record) -> bool {
    let preset = &result.metadata.preset;
    match (preset.peak(rec.precision), preset.bandwidth_gbps) {
        (Some(peak), Some(bw)) if !rec.operation.is_stream() => {
            rec.arithmetic_intensity < peak / bw
        }
        _ => rec.operation != Operation::Gemm,
    }
}

struct Base<'a> {
    result: &'a CalibrationResult,
    framework: String,
    device: Option<String>,
}

impl Base<'_> {
    fn extra(&self, mut extra: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        extra.insert("framework".into(), Value::from(self.framework.clone()));
        if let Some(d) = &self.device {
            extra.insert("device".into(), Value::from(d.clone()));
        }
        extra
    }

    fn stream_record(&self, rec: &Record) -> Option<(String, OriginRecord)> {
        let lat = rec.latency_ms?;
        let mib = rec.array_mib.unwrap_or(0.0);
        let size_mb = if mib.fract() == 0.0 {
            Value::from(mib as u64)
        } else {
            Value::from(mib)
        };
        let extra = self.extra(BTreeMap::from([
            ("size_mb".to_string(), size_mb),
            (
                "kernel".to_string(),
                Value::from(rec.operation.stream_kernel().unwrap_or_default()),
            ),
            (
                "num_arrays".to_string(),
                Value::from(rec.operation.stream_arrays()),
            ),
            (
                "num_memory_ops".to_string(),
                Value::from(rec.operation.stream_arrays()),
            ),
            (
                "flops_per_element".to_string(),
                Value::from(rec.operation.stream_flops_per_element()),
            ),
        ]));
        let bw = rate_from_mean(rec.bytes, rec).unwrap_or(0.0);
        let theoretical = self.result.metadata.preset.bandwidth_gbps;
        let (input_shape, output_shape) = shapes(rec.operation, rec.size);
        let record = OriginRecord {
            operation_type: rec.operation.origin_type().to_string(),
            measured_gflops: rate_from_mean(rec.flops, rec).unwrap_or(0.0),
            efficiency: theoretical.map_or(0.0, |t| bw / t),
            achieved_bandwidth_gbps: bw,
            memory_bound: true,
            compute_bound: false,
            arithmetic_intensity: rec.arithmetic_intensity,
            batch_size: 1,
            input_shape,
            output_shape,
            mean_latency_ms: lat.mean,
            std_latency_ms: lat.std,
            min_latency_ms: lat.best,
            max_latency_ms: lat.max,
            num_trials: rec.trials,
            precision_results: BTreeMap::new(),
            extra_params: BTreeMap::new(),
        };
        let key = profile_key(rec.operation.origin_type(), &extra);
        Some((
            key,
            OriginRecord {
                extra_params: extra,
                ..record
            },
        ))
    }

    fn precision_result(&self, rec: &Record, fp32_rate: Option<f64>) -> PrecisionResult {
        let rate = rate_from_mean(rec.flops, rec);
        let lat = rec.latency_ms;
        let measured = rec.status == Status::Measured;
        PrecisionResult {
            precision: rec.precision.to_string(),
            supported: measured,
            failure_reason: if measured { None } else { rec.reason.clone() },
            measured_gops: rate,
            efficiency: rate.and_then(|r| {
                self.result
                    .metadata
                    .preset
                    .peak(rec.precision)
                    .map(|p| r / p)
            }),
            mean_latency_ms: lat.map(|l| l.mean),
            std_latency_ms: lat.map(|l| l.std),
            min_latency_ms: lat.map(|l| l.best),
            max_latency_ms: lat.map(|l| l.max),
            speedup_vs_fp32: rate.zip(fp32_rate).map(|(r, f)| r / f),
            test_size: rec.size,
            num_trials: measured.then_some(rec.trials),
            arithmetic_intensity: measured.then_some(rec.arithmetic_intensity),
            achieved_bandwidth_gbps: rate_from_mean(rec.bytes, rec),
        }
    }

    fn blas_record(
        &self,
        op: Operation,
        size: u64,
        recs: &[&Record],
    ) -> Option<(String, OriginRecord)> {
        let fp32_rate = recs
            .iter()
            .find(|r| r.precision == Precision::Fp32)
            .and_then(|r| rate_from_mean(r.flops, r));
        let best = recs
            .iter()
            .filter(|r| r.status == Status::Measured)
            .max_by(|a, b| {
                let ra = rate_from_mean(a.flops, a).unwrap_or(0.0);
                let rb = rate_from_mean(b.flops, b).unwrap_or(0.0);
                ra.total_cmp(&rb)
            })
            .copied();
        let level = match op.kind() {
            OperationKind::Blas(l) => l,
            OperationKind::Stream => return None,
        };
        let extra = self.extra(BTreeMap::from([
            ("size".to_string(), Value::from(size)),
            ("operation".to_string(), Value::from(op.as_str())),
            ("blas_level".to_string(), Value::from(level)),
            (
                "best_precision".to_string(),
                Value::from(best.map_or("none".to_string(), |b| b.precision.to_string())),
            ),
        ]));
        let precision_results = recs
            .iter()
            .map(|r| (r.precision.to_string(), self.precision_result(r, fp32_rate)))
            .collect();
        let (input_shape, output_shape) = shapes(op, size);
        let lat = best.and_then(|b| b.latency_ms);
        let rate = best.and_then(|b| rate_from_mean(b.flops, b)).unwrap_or(0.0);
        let record = OriginRecord {
            operation_type: op.origin_type().to_string(),
            measured_gflops: rate,
            efficiency: best
                .and_then(|b| self.result.metadata.preset.peak(b.precision))
                .map_or(0.0, |p| rate / p),
            achieved_bandwidth_gbps: best.and_then(|b| rate_from_mean(b.bytes, b)).unwrap_or(0.0),
            memory_bound: best.is_none_or(|b| memory_bound(self.result, b)),
            compute_bound: best.is_some_and(|b| !memory_bound(self.result, b)),
            arithmetic_intensity: best.map_or(0.0, |b| b.arithmetic_intensity),
            batch_size: 1,
            input_shape,
            output_shape,
            mean_latency_ms: lat.map_or(0.0, |l| l.mean),
            std_latency_ms: lat.map_or(0.0, |l| l.std),
            min_latency_ms: lat.map_or(0.0, |l| l.best),
            max_latency_ms: lat.map_or(0.0, |l| l.max),
            num_trials: best.map_or(0, |b| b.trials),
            extra_params: extra,
            precision_results,
        };
        Some((profile_key(op.origin_type(), &record.extra_params), record))
    }
}

fn local_naive(rfc3339: &str) -> String {
    // `2026-11-25T03:40:05.123456+00:00` → `2026-11-25T03:40:05.123456` (local time, as the origin writes it).
    let cut = rfc3339
        .char_indices()
        .skip(19)
        .find(|(_, c)| matches!(c, '+' | '-' | 'Z'))
        .map_or(rfc3339.len(), |(i, _)| i);
    rfc3339[..cut].to_string()
}

fn stats(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let best = values.iter().copied().fold(f64::MIN, f64::max);
    let worst = values.iter().copied().fold(f64::MAX, f64::min);
    (
        best,
        values.iter().sum::<f64>() / values.len() as f64,
        worst,
    )
}

/// Converts a fleetcal result into the origin's profile.
pub fn to_origin(result: &CalibrationResult) -> OriginProfile {
    let md = &result.metadata;
    let pytorch = md.framework == crate::Framework::Pytorch;
    let base = Base {
        result,
        framework: md.framework.to_string(),
        device: pytorch.then(|| md.device_type.to_string()),
    };
    let mut profiles = BTreeMap::new();
    let mut blas_groups: BTreeMap<(Operation, u64), Vec<&Record>> = BTreeMap::new();
    for rec in &result.records {
        if rec.operation.is_stream() {
            if let Some((k, v)) = base.stream_record(rec) {
                profiles.insert(k, v);
            }
        } else {
            blas_groups
                .entry((rec.operation, rec.size))
                .or_default()
                .push(rec);
        }
    }
    for ((op, size), recs) in &blas_groups {
        if let Some((k, v)) = base.blas_record(*op, *size, recs) {
            profiles.insert(k, v);
        }
    }
    let blas: Vec<&OriginRecord> = profiles
        .values()
        .filter(|r| !r.operation_type.starts_with("stream") && r.measured_gflops > 0.0)
        .collect();
    let (best_g, avg_g, worst_g) =
        stats(&blas.iter().map(|r| r.measured_gflops).collect::<Vec<_>>());
    let (best_e, avg_e, worst_e) = stats(&blas.iter().map(|r| r.efficiency).collect::<Vec<_>>());
    let theoretical_bw = md.preset.bandwidth_gbps.unwrap_or(0.0);
    let measured_bw = result.summary.memory_bandwidth_gbps.unwrap_or(0.0);
    let peak_by: BTreeMap<String, f64> = result
        .summary
        .peak_by_precision
        .iter()
        .map(|(p, f)| (p.to_string(), f.gops))
        .collect();
    let fp32 = result
        .summary
        .peak_by_precision
        .get(&Precision::Fp32)
        .map(|f| f.gops);
    let names = |ps: &[Precision]| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    OriginProfile {
        metadata: OriginMetadata {
            hardware_name: md.hardware_name.clone(),
            calibration_date: local_naive(&md.started_at),
            calibration_tool_version: format!("fleetcal {}", md.tool_version),
            cpu_model: md.host.cpu_model.clone(),
            cpu_count: md.host.cpu_count,
            total_memory_gb: md.host.total_memory_gb,
            python_version: "none (fleetcal native)".into(),
            pytorch_version: pytorch.then(|| md.engine.library.clone()),
            numpy_version: (!pytorch).then(|| format!("{} (NumPy-compatible)", md.engine.library)),
            num_warmup_runs: md.settings.warmup_runs,
            num_measurement_runs: md.settings.measurement_runs,
            device_type: md.device_type.to_string(),
            platform_architecture: md.host.architecture.clone(),
            framework: md.framework.to_string(),
        },
        theoretical_peak_gflops: md.preset.peak(Precision::Fp32).unwrap_or(0.0),
        theoretical_bandwidth_gbps: theoretical_bw,
        best_measured_gflops: best_g,
        avg_measured_gflops: avg_g,
        worst_measured_gflops: worst_g,
        measured_bandwidth_gbps: measured_bw,
        bandwidth_efficiency: if theoretical_bw > 0.0 {
            measured_bw / theoretical_bw
        } else {
            0.0
        },
        best_efficiency: best_e,
        avg_efficiency: avg_e,
        worst_efficiency: worst_e,
        operation_profiles: profiles,
        fusion_profiles: BTreeMap::new(),
        precision_matrix: PrecisionMatrix {
            hardware_name: md.hardware_name.clone(),
            supported_precisions: names(&result.summary.supported_precisions),
            unsupported_precisions: names(&result.summary.unsupported_precisions),
            speedup_vs_fp32: peak_by
                .iter()
                .filter_map(|(p, g)| fp32.map(|f| (p.clone(), g / f)))
                .collect(),
            peak_gflops_by_precision: peak_by,
            theoretical_peaks: md
                .preset
                .peaks
                .iter()
                .map(|(p, v)| (p.to_string(), *v))
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_built_like_the_origin() {
        let extra = BTreeMap::from([
            ("size_mb".to_string(), Value::from(8)),
            ("kernel".to_string(), Value::from("copy")),
            ("framework".to_string(), Value::from("numpy")),
            ("num_arrays".to_string(), Value::from(2)),
            ("num_memory_ops".to_string(), Value::from(2)),
            ("flops_per_element".to_string(), Value::from(0)),
        ]);
        assert_eq!(
            profile_key("stream_copy", &extra),
            "stream_copy_flops_per_element=0_framework=numpy_kernel=copy_num_arrays=2_num_memory_ops=2_size_mb=8"
        );
    }

    #[test]
    fn local_time_drops_the_offset() {
        assert_eq!(
            local_naive("2026-11-25T03:40:05.123+01:00"),
            "2026-11-25T03:40:05.123"
        );
        assert_eq!(local_naive("2026-11-25T03:40:05Z"), "2026-11-25T03:40:05");
        assert_eq!(
            local_naive("2026-11-25T03:40:05-05:00"),
            "2026-11-25T03:40:05"
        );
    }

    #[test]
    fn extra_keys_are_rejected() {
        let err = OriginProfile::from_json("{\"metadata\": {}}", "x.json").unwrap_err();
        assert!(err.to_string().contains("x.json"));
    }
}
