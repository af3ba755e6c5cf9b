//! Headline figures derived from a run's records.

use std::collections::{BTreeMap, BTreeSet};

use fleetcal_proto::result::{PeakFigure, Record, Status, Summary};
use fleetcal_proto::{Precision, Preset};

use super::efficiency::{above_theoretical_line, efficiency, noisy_entry, size_label};

/// How many noisy figures the anomaly line names before counting the rest.
pub const NOISY_SHOWN: usize = 8;

/// Summarises `records` against `preset`: the best BLAS rate per precision, the memory
/// bandwidth (best STREAM bandwidth over bandwidth-eligible arrays), supported and
/// unsupported precisions, and the anomaly lines (device fallback, above theoretical,
/// noisy, failed, skipped).
pub fn summarize(records: &[Record], preset: &Preset, fallback: bool) -> Summary {
    let measured = || records.iter().filter(|r| r.status == Status::Measured);

    let mut peak_by_precision: BTreeMap<Precision, PeakFigure> = BTreeMap::new();
    for r in measured().filter(|r| !r.operation.is_stream()) {
        let Some(gops) = r.gops.map(|g| g.best) else {
            continue;
        };
        if peak_by_precision
            .get(&r.precision)
            .is_none_or(|best| gops > best.gops)
        {
            peak_by_precision.insert(
                r.precision,
                PeakFigure {
                    gops,
                    operation: r.operation,
                    size: r.size,
                    efficiency: efficiency(gops, preset.peak(r.precision)),
                },
            );
        }
    }

    let best_stream = measured()
        .filter(|r| r.operation.is_stream() && r.flags.bandwidth_eligible)
        .filter_map(|r| r.bandwidth_gbps.map(|b| (b.best, r)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let (memory_bandwidth_gbps, bandwidth_source) = match best_stream {
        Some((gbps, r)) => (Some(gbps), format!("{} {}", r.operation, size_label(r))),
        None => (None, no_bandwidth_reason(records)),
    };
    let bandwidth_efficiency =
        memory_bandwidth_gbps.and_then(|bw| efficiency(bw, preset.bandwidth_gbps));

    let supported: BTreeSet<Precision> = measured().map(|r| r.precision).collect();
    let unsupported: BTreeSet<Precision> = records
        .iter()
        .filter(|r| r.status == Status::Unsupported && !supported.contains(&r.precision))
        .map(|r| r.precision)
        .collect();

    Summary {
        peak_by_precision,
        memory_bandwidth_gbps,
        bandwidth_efficiency,
        bandwidth_source,
        supported_precisions: supported.into_iter().collect(),
        unsupported_precisions: unsupported.into_iter().collect(),
        anomalies: anomalies(records, preset, fallback),
        // The noise floor comes from the A/A probe around the records (`bench::noise`).
        noise_floor_pct: None,
        noise_probes: Vec::new(),
    }
}

/// Why no memory bandwidth could be reported.
fn no_bandwidth_reason(records: &[Record]) -> String {
    let largest = records
        .iter()
        .filter(|r| r.operation.is_stream() && r.status == Status::Measured)
        .filter_map(|r| r.array_mib)
        .max_by(f64::total_cmp);
    match largest {
        None => "none: no STREAM kernel was measured".into(),
        Some(mib) => format!(
            "none: no STREAM array was at least 4x the last-level cache (largest measured: {mib} MiB), so every STREAM figure includes cache"
        ),
    }
}

/// The human-readable anomaly lines, in a fixed order.
fn anomalies(records: &[Record], preset: &Preset, fallback: bool) -> Vec<String> {
    let mut out = Vec::new();
    if fallback {
        out.push(format!(
            "DEVICE FALLBACK: ran on the CPU although {} is a {} preset; these figures do not calibrate that device",
            preset.hardware_name, preset.device
        ));
    }
    out.extend(records.iter().filter_map(above_theoretical_line));
    let noisy: Vec<String> = records.iter().filter_map(noisy_entry).collect();
    if !noisy.is_empty() {
        let shown = noisy.len().min(NOISY_SHOWN);
        let more = match noisy.len() - shown {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        out.push(format!(
            "{} noisy figure(s) (trial-to-trial variation above the limit; another program was probably running): {}{more}",
            noisy.len(),
            noisy[..shown].join(", ")
        ));
    }
    for (flag, what) in [
        (
            (|r: &Record| r.flags.throttled) as fn(&Record) -> bool,
            "taken while throttled (a throttle counter rose or a CPU/GPU cooling device was active)",
        ),
        (
            |r: &Record| r.flags.clock_spread,
            "with the CPU clock moving by more than the clock-spread limit",
        ),
    ] {
        let hit: Vec<String> = records
            .iter()
            .filter(|r| flag(r))
            .map(|r| format!("{} {} {}", r.operation, r.precision, size_label(r)))
            .collect();
        if !hit.is_empty() {
            let shown = hit.len().min(NOISY_SHOWN);
            let more = match hit.len() - shown {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            out.push(format!(
                "{} figure(s) {what}: {}{more}",
                hit.len(),
                hit[..shown].join(", ")
            ));
        }
    }
    // What telemetry could not read, once per run (every figure lists it).
    let mut missing: Vec<&str> = Vec::new();
    for r in records {
        for m in r.telemetry.iter().flat_map(|t| &t.missing) {
            if !missing.contains(&m.as_str()) {
                missing.push(m);
            }
        }
    }
    if !missing.is_empty() {
        out.push(format!("telemetry missing: {}", missing.join("; ")));
    }
    for r in records.iter().filter(|r| r.status == Status::Failed) {
        out.push(format!(
            "{} {} {} failed: {}",
            r.operation,
            r.precision,
            size_label(r),
            r.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    // one line per operation × precision whose larger sizes were skipped
    let mut seen = BTreeSet::new();
    for r in records.iter().filter(|r| r.status == Status::Skipped) {
        if seen.insert((r.operation, r.precision)) {
            let count = records
                .iter()
                .filter(|o| {
                    o.status == Status::Skipped
                        && o.operation == r.operation
                        && o.precision == r.precision
                })
                .count();
            out.push(format!(
                "{} {}: {count} larger size(s) {}",
                r.operation,
                r.precision,
                r.reason.as_deref().unwrap_or("Skipped")
            ));
        }
    }
    out
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
