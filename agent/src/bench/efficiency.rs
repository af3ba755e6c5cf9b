//! THE efficiency rule and the anomaly flags, used for every engine, and the texts that
//! explain them.
//!
//! - efficiency = best rate ÷ theoretical peak: BLAS against `plan.peaks[precision]`, STREAM
//!   against `plan.bandwidth_gbps`; absent when there is no (positive) peak to compare with.
//! - `above_theoretical` when efficiency > `plan.above_theoretical` (1.10: exactly 110 % is
//!   not flagged).
//! - `noisy` when the trials' cv > `plan.noisy_cv` (0.05).
//! - STREAM `in_cache` when the whole working set (arrays × bytes per array) fits in the
//!   last-level cache; `bandwidth_eligible` when every array is at least 4× the LLC.
//!   With the LLC unknown: `in_cache` is false (nothing is claimed), and an array counts as
//!   eligible only from [`UNKNOWN_LLC_ELIGIBLE_BYTES`] (256 MiB = 4 × 64 MiB, above the LLC of
//!   any desktop or Jetson part and of most server CCDs), so an unknown cache never lets an
//!   in-cache figure pass for memory bandwidth.

use fleetcal_proto::result::{Flags, Record};
use fleetcal_proto::{Operation, Precision};

use super::plan::BenchPlan;

/// Bytes per array from which a STREAM figure counts as memory bandwidth when the LLC is unknown.
pub const UNKNOWN_LLC_ELIGIBLE_BYTES: u64 = 256 * 1024 * 1024;

/// The design note's explanation for a figure above the theoretical peak.
pub const ABOVE_THEORETICAL_CAUSE: &str =
    "Likely caused by: Turbo Boost, optimized BLAS, or conservative theoretical peak";

/// Best rate ÷ peak, when the peak is known and positive (the rule's one home is
/// `fleetcal_proto::stats`, where the coordinator's result codec derives it again).
pub use fleetcal_proto::stats::efficiency;

/// The peak a figure of `op` at `precision` is compared with: the precision's GFLOPS/GIOPS
/// for BLAS, the preset's GB/s for STREAM.
pub fn peak_for(plan: &BenchPlan, op: Operation, precision: Precision) -> Option<f64> {
    if op.is_stream() {
        plan.bandwidth_gbps
    } else {
        plan.peaks.get(&precision).copied()
    }
}

/// Whether a STREAM working set of `arrays` arrays of `bytes_per_array` fits in the LLC.
pub fn in_cache(llc_bytes: Option<u64>, arrays: u32, bytes_per_array: u64) -> bool {
    llc_bytes.is_some_and(|llc| u64::from(arrays).saturating_mul(bytes_per_array) <= llc)
}

/// Whether every array (each `bytes_per_array`) is at least 4× the LLC, so the figure counts
/// as memory bandwidth (see the module docs for an unknown LLC).
pub fn bandwidth_eligible(llc_bytes: Option<u64>, bytes_per_array: u64) -> bool {
    match llc_bytes {
        Some(llc) => bytes_per_array >= llc.saturating_mul(4),
        None => bytes_per_array >= UNKNOWN_LLC_ELIGIBLE_BYTES,
    }
}

/// The flags of one measured figure, from its efficiency and cv.
pub fn flags(
    plan: &BenchPlan,
    op: Operation,
    precision: Precision,
    size: u64,
    efficiency: Option<f64>,
    cv: f64,
) -> Flags {
    let mut flags = Flags {
        above_theoretical: efficiency.is_some_and(|e| e > plan.above_theoretical),
        noisy: cv > plan.noisy_cv,
        ..Flags::default()
    };
    if op.is_stream() {
        let per_array = size.saturating_mul(precision.item_size() as u64);
        flags.in_cache = in_cache(plan.llc_bytes, op.stream_arrays(), per_array);
        flags.bandwidth_eligible = bandwidth_eligible(plan.llc_bytes, per_array);
    }
    flags
}

/// The size of a record as people read it: `n=1024`, or `64 MiB` for STREAM.
pub fn size_label(record: &Record) -> String {
    match record.array_mib {
        Some(mib) => format!("{} MiB", trim_number(mib)),
        None => format!("n={}", record.size),
    }
}

fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The skip reason after a GEMM precision fell under the minimum rate, e.g.
/// `Skipped (poor performance at size 512: 0.7 GFLOPS < 1.0 GFLOPS)`.
///
/// One decimal, as the origin prints; more where one decimal would round the rate up to the
/// threshold (`0.98 GFLOPS < 1.0 GFLOPS`, never `1.0 GFLOPS < 1.0 GFLOPS`).
pub fn poor_performance_reason(size: u64, best: f64, min: f64, precision: Precision) -> String {
    let unit = precision.rate_unit();
    let mut decimals = 1;
    while decimals < 6 && format!("{best:.decimals$}") == format!("{min:.decimals$}") {
        decimals += 1;
    }
    format!("Skipped (poor performance at size {size}: {best:.decimals$} {unit} < {min:.1} {unit})")
}

/// The skip reason after a size's timed trials took longer than the timeout, e.g.
/// `Skipped (timeout at size 2048: 7.3 s > 5.0 s)`.
pub fn timeout_reason(size: u64, elapsed_s: f64, timeout_s: f64) -> String {
    format!("Skipped (timeout at size {size}: {elapsed_s:.1} s > {timeout_s:.1} s)")
}

/// The skip reason of figures the run's wall-time cap cut, e.g.
/// `Skipped (max duration 60.0 s reached)`.
pub fn max_duration_reason(max_duration: Option<std::time::Duration>) -> String {
    match max_duration {
        Some(d) => format!("Skipped (max duration {:.1} s reached)", d.as_secs_f64()),
        None => "Skipped (max duration reached)".into(),
    }
}

/// The skip reason when a size's minimum work is projected past the timeout, e.g.
/// `Skipped (projected 9.6 s at size 1024 > 5.0 s, from 300.1 ms per call at size 512)`.
pub fn projected_timeout_reason(
    size: u64,
    projected_s: f64,
    timeout_s: f64,
    from_size: u64,
    per_call_ms: f64,
) -> String {
    format!(
        "Skipped (projected {projected_s:.1} s at size {size} > {timeout_s:.1} s, from {per_call_ms:.1} ms per call at size {from_size})"
    )
}

/// The anomaly line of a figure above the theoretical peak, with its likely causes.
pub fn above_theoretical_line(record: &Record) -> Option<String> {
    if !record.flags.above_theoretical {
        return None;
    }
    let eff = record.efficiency?;
    let (rate, unit) = if record.operation.is_stream() {
        (record.bandwidth_gbps?.best, "GB/s")
    } else {
        (record.gops?.best, record.precision.rate_unit())
    };
    Some(format!(
        "{} {} {}: {rate:.1} {unit} is {:.1}% of the theoretical peak, ABOVE THEORETICAL. {ABOVE_THEORETICAL_CAUSE}",
        record.operation,
        record.precision,
        size_label(record),
        eff * 100.0
    ))
}

/// A noisy figure as an anomaly list entry: `dot fp32 n=1000 (cv 8.1%)`.
pub fn noisy_entry(record: &Record) -> Option<String> {
    if !record.flags.noisy {
        return None;
    }
    let cv = record.latency_ms?.cv;
    Some(format!(
        "{} {} {} (cv {:.1}%)",
        record.operation,
        record.precision,
        size_label(record),
        cv * 100.0
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::bench::SizeSweep;

    fn plan(llc: Option<u64>) -> BenchPlan {
        BenchPlan {
            operations: Operation::ALL.to_vec(),
            precisions: vec![Precision::Fp32],
            stream_precision: Precision::Fp32,
            sizes: SizeSweep::quick(),
            warmup_runs: 1,
            measurement_runs: 3,
            max_trials: 3,
            ci_target: None,
            max_duration: None,
            deadline: None,
            min_gflops: 1.0,
            timeout: Duration::from_secs(5),
            noisy_cv: 0.05,
            above_theoretical: 1.10,
            peaks: BTreeMap::from([(Precision::Fp32, 100.0)]),
            bandwidth_gbps: Some(50.0),
            llc_bytes: llc,
        }
    }

    #[test]
    fn efficiency_needs_a_positive_peak() {
        assert_eq!(efficiency(50.0, Some(100.0)), Some(0.5));
        assert_eq!(efficiency(50.0, None), None);
        assert_eq!(efficiency(50.0, Some(0.0)), None);
        let p = plan(None);
        assert_eq!(peak_for(&p, Operation::Gemm, Precision::Fp32), Some(100.0));
        assert_eq!(peak_for(&p, Operation::Gemm, Precision::Fp64), None);
        assert_eq!(
            peak_for(&p, Operation::StreamAdd, Precision::Fp32),
            Some(50.0)
        );
    }

    #[test]
    fn above_theoretical_is_strictly_over_110_percent() {
        let p = plan(None);
        let at = |eff: f64| flags(&p, Operation::Gemm, Precision::Fp32, 64, Some(eff), 0.0);
        assert!(!at(1.10).above_theoretical);
        assert!(!at(1.0999).above_theoretical);
        assert!(at(1.1001).above_theoretical);
        assert!(!flags(&p, Operation::Gemm, Precision::Fp32, 64, None, 0.0).above_theoretical);
    }

    #[test]
    fn noisy_is_strictly_over_the_cv_limit() {
        let p = plan(None);
        let cv = |c: f64| flags(&p, Operation::Dot, Precision::Fp32, 64, None, c).noisy;
        assert!(!cv(0.05));
        assert!(cv(0.0501));
        assert!(!cv(0.01));
    }

    #[test]
    fn in_cache_counts_the_whole_working_set() {
        let mib = 1024 * 1024;
        // three 10 MiB arrays = 30 MiB: fits a 32 MiB LLC, not a 16 MiB one
        assert!(in_cache(Some(32 * mib), 3, 10 * mib));
        assert!(!in_cache(Some(16 * mib), 3, 10 * mib));
        assert!(in_cache(Some(30 * mib), 3, 10 * mib));
        assert!(!in_cache(None, 2, 1));
    }

    #[test]
    fn eligible_needs_every_array_at_four_times_the_llc() {
        let mib = 1024 * 1024;
        assert!(bandwidth_eligible(Some(32 * mib), 128 * mib));
        assert!(!bandwidth_eligible(Some(32 * mib), 128 * mib - 1));
        assert!(bandwidth_eligible(None, 256 * mib));
        assert!(!bandwidth_eligible(None, 255 * mib));
    }

    #[test]
    fn stream_flags_use_the_item_size_and_blas_gets_none() {
        let mib = 1024 * 1024;
        let p = plan(Some(16 * mib));
        // fp32, 16 Mi elements = 64 MiB per array = 4× LLC
        let f = flags(
            &p,
            Operation::StreamTriad,
            Precision::Fp32,
            16 * mib,
            None,
            0.0,
        );
        assert!(f.bandwidth_eligible && !f.in_cache);
        let small = flags(&p, Operation::StreamCopy, Precision::Fp32, mib, None, 0.0);
        assert!(small.in_cache && !small.bandwidth_eligible);
        let blas = flags(&p, Operation::Gemm, Precision::Fp32, 16 * mib, None, 0.0);
        assert!(!blas.in_cache && !blas.bandwidth_eligible);
    }

    #[test]
    fn reasons_read_like_the_origin() {
        assert_eq!(
            poor_performance_reason(512, 0.66, 1.0, Precision::Fp32),
            "Skipped (poor performance at size 512: 0.7 GFLOPS < 1.0 GFLOPS)"
        );
        assert_eq!(
            poor_performance_reason(256, 0.5, 1.0, Precision::Int8),
            "Skipped (poor performance at size 256: 0.5 GIOPS < 1.0 GIOPS)"
        );
        assert_eq!(
            poor_performance_reason(256, 0.98, 1.0, Precision::Int64),
            "Skipped (poor performance at size 256: 0.98 GIOPS < 1.0 GIOPS)"
        );
        assert_eq!(
            timeout_reason(1024, 7.26, 5.0),
            "Skipped (timeout at size 1024: 7.3 s > 5.0 s)"
        );
    }
}
