//! One-line renderings of figures, shared by the terminal, the log and `--load`.

use fleetcal_proto::result::{Record, Status};
use fleetcal_proto::{Operation, OperationKind};

/// How a size is shown: `1024×1024` for matrices, `n=1000000` for vectors, `64 MiB` for STREAM.
pub fn size_label(op: Operation, size: u64, array_mib: Option<f64>) -> String {
    match op.kind() {
        OperationKind::Stream => format!("{} MiB", array_mib.unwrap_or(0.0)),
        OperationKind::Blas(1) => format!("n={size}"),
        OperationKind::Blas(_) => format!("{size}×{size}"),
    }
}

/// The progress line of one figure, as the origin prints it, plus fleetcal's flags.
pub fn figure_line(r: &Record) -> String {
    let head = format!(
        "  {:<6} {:>12} ...",
        r.precision.as_str(),
        size_label(r.operation, r.size, r.array_mib)
    );
    match r.status {
        Status::Measured => {
            let lat = r.latency_ms.map_or(0.0, |l| l.best);
            let (value, unit) = if r.operation.is_stream() {
                (r.bandwidth_gbps.map_or(0.0, |b| b.best), "GB/s")
            } else {
                (r.gops.map_or(0.0, |g| g.best), r.precision.rate_unit())
            };
            let eff = r
                .efficiency
                .map_or("   n/a".to_string(), |e| format!("{:5.1}%", e * 100.0));
            let mut line = format!("{head} ✓ {value:9.1} {unit:<6} ({lat:8.3}ms) {eff} eff");
            if r.flags.above_theoretical {
                line.push_str(" ⚠ ABOVE THEORETICAL");
            }
            if r.flags.noisy {
                line.push_str(" ⚠ NOISY");
            }
            if r.flags.in_cache {
                line.push_str(" (in cache)");
            }
            line
        }
        Status::Skipped => format!("{head} ⊘ {}", r.reason.as_deref().unwrap_or("SKIPPED")),
        Status::Unsupported => format!(
            "{head} ✗ unsupported: {}",
            r.reason.as_deref().unwrap_or("")
        ),
        Status::Failed => format!("{head} ✗ FAILED: {}", r.reason.as_deref().unwrap_or("")),
    }
}
