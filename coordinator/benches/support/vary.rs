//! One result made faster or slower as a whole: what both benches do to the real quick result
//! to vary it per agent, board or night.

use fleetcal_proto::CalibrationResult;

/// Scales every measured rate of `r` by `f` (each record's best, median and mean GFLOPS or
/// GB/s and its efficiency; the summary's peaks, bandwidth and their efficiencies).
pub fn scale_rates(r: &mut CalibrationResult, f: f64) {
    for rec in &mut r.records {
        for rate in [&mut rec.gops, &mut rec.bandwidth_gbps]
            .into_iter()
            .flatten()
        {
            rate.best *= f;
            rate.median *= f;
            rate.mean *= f;
        }
        rec.efficiency = rec.efficiency.map(|e| e * f);
    }
    for p in r.summary.peak_by_precision.values_mut() {
        p.gops *= f;
        p.efficiency = p.efficiency.map(|e| e * f);
    }
    r.summary.memory_bandwidth_gbps = r.summary.memory_bandwidth_gbps.map(|g| g * f);
    r.summary.bandwidth_efficiency = r.summary.bandwidth_efficiency.map(|e| e * f);
}
