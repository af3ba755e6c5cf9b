//! One result made faster or slower as a whole: what both benches do to the real quick result
//! to vary it per agent, board or night.

use std::time::Duration;

use fleetcal_proto::{stats, CalibrationResult};

/// Makes `r` as if measured `f` times faster: every trial of every measured record takes
/// 1/`f` as long (each sample rounded to a nanosecond, then jittered by up to ±1 % from
/// `seed`, as trials differ night to night), and its figures are derived again from the new
/// trials as the agent derives them (latency statistics, GFLOPS or GB/s, the median's
/// confidence interval) and its efficiency by the agent's rule (the best rate over the
/// preset's peak); the clock readings of its telemetry move by up to ±0.5 % (a board's clock
/// reads differently every night); the summary's peaks, bandwidth and their efficiencies are
/// scaled by `f`.
pub fn scale_rates(r: &mut CalibrationResult, f: f64, seed: u64) {
    let mut x = seed | 1;
    let preset = r.metadata.preset.clone();
    for rec in &mut r.records {
        let Some(sampling) = rec.sampling.as_mut() else {
            continue;
        };
        for ns in &mut sampling.samples_ns {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let jitter = 1.0 + ((x % 2001) as f64 - 1000.0) / 100_000.0;
            *ns = ((*ns as f64) / f * jitter).round().max(1.0) as u64;
        }
        let trials: Vec<Duration> = sampling
            .samples_ns
            .iter()
            .map(|&ns| Duration::from_nanos(ns))
            .collect();
        if let Some(d) = stats::derive(rec.flops, rec.bytes, &trials) {
            rec.latency_ms = Some(d.latency_ms);
            rec.gops = d.gops;
            rec.bandwidth_gbps = Some(d.bandwidth_gbps);
            sampling.ci_pct = d.ci_pct;
            let peak = if rec.operation.is_stream() {
                preset.bandwidth_gbps
            } else {
                preset.peaks.get(&rec.precision).copied()
            };
            if rec.efficiency.is_some() {
                let best = stats::best_rate(rec.operation.is_stream(), &d);
                rec.efficiency = stats::efficiency(best, peak);
            }
        }
        if let Some(t) = rec.telemetry.as_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let clock = 1.0 + ((x % 2001) as f64 - 1000.0) / 200_000.0;
            for mhz in [t.cpu_mhz.as_mut(), t.running_mhz.as_mut()]
                .into_iter()
                .flatten()
            {
                mhz.min *= clock;
                mhz.max *= clock;
            }
        }
    }
    for p in r.summary.peak_by_precision.values_mut() {
        p.gops *= f;
        p.efficiency = p.efficiency.map(|e| e * f);
    }
    r.summary.memory_bandwidth_gbps = r.summary.memory_bandwidth_gbps.map(|g| g * f);
    r.summary.bandwidth_efficiency = r.summary.bandwidth_efficiency.map(|e| e * f);
}
