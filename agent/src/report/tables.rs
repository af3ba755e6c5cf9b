//! Summary tables of a fleetcal result, per operation and precision.
//!
//! Total over any result that deserialises: a figure a record lacks prints as `n/a`, so
//! `--load` of a hand-edited or foreign file never panics (validation is the contract's
//! business, not the reader's).

use std::collections::BTreeMap;

use fleetcal_proto::result::{CalibrationResult, Record, Status};
use fleetcal_proto::{Operation, Precision};

use super::size_label;

fn pct(e: Option<f64>) -> String {
    e.map_or("n/a".into(), |e| format!("{:.1}%", e * 100.0))
}

/// A figure with one decimal, or `n/a` when the record lacks it (a file read by `--load` may
/// hold anything the schema allows).
fn num(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.1}"))
}

fn flags(r: &Record) -> String {
    let mut f = Vec::new();
    if r.flags.above_theoretical {
        f.push("⚠ ABOVE THEORETICAL");
    }
    if r.flags.noisy {
        f.push("⚠ NOISY");
    }
    if r.flags.throttled {
        f.push("⚠ THROTTLED");
    }
    if r.flags.clock_spread {
        f.push("⚠ CLOCK SPREAD");
    }
    if r.flags.in_cache {
        f.push("in cache");
    }
    f.join(", ")
}

/// The tables printed at the end of a run and by `--load`.
pub fn summary_tables(result: &CalibrationResult) -> Vec<String> {
    let md = &result.metadata;
    let rule = "=".repeat(96);
    let mut out = vec![
        String::new(),
        rule.clone(),
        format!(
            "SUMMARY: {} — {} on {} ({})",
            md.hardware_name,
            md.framework.as_str().to_uppercase(),
            md.actual_device,
            md.engine.library
        ),
        rule,
    ];
    if let Some(fb) = &md.fallback {
        out.push(format!(
            "⚠ Device fallback: requested {}, ran on {} ({}; accepted by {})",
            fb.requested, fb.actual, fb.reason, fb.accepted_by
        ));
    }

    let mut best: BTreeMap<(Operation, Precision), &Record> = BTreeMap::new();
    let mut not_run: BTreeMap<(Operation, Precision), &Record> = BTreeMap::new();
    for r in &result.records {
        let key = (r.operation, r.precision);
        match r.status {
            Status::Measured => {
                let better = best
                    .get(&key)
                    .is_none_or(|b| r.headline_rate() > b.headline_rate());
                if better {
                    best.insert(key, r);
                }
            }
            _ => {
                not_run.entry(key).or_insert(r);
            }
        }
    }

    let blas: Vec<_> = best.iter().filter(|((op, _), _)| !op.is_stream()).collect();
    if !blas.is_empty() || not_run.keys().any(|(op, _)| !op.is_stream()) {
        out.push(String::new());
        out.push("BLAS performance (best size per operation and precision; rates from best / median / mean latency):".into());
        out.push(format!(
            "  {:<7} {:<9} {:>12} {:>11} {:>11} {:>11} {:>11} {:>10}  {}",
            "Op", "Precision", "Size", "Latency", "Best", "Median", "Mean", "Efficiency", "Flags"
        ));
        out.push(format!("  {}", "-".repeat(94)));
        for ((op, p), r) in &blas {
            out.push(format!(
                "  {:<7} {:<9} {:>12} {:>11} {:>11} {:>11} {:>11} {:>10}  {}",
                op.as_str(),
                p.as_str(),
                size_label(*op, r.size, r.array_mib),
                r.latency_ms
                    .map_or("n/a".into(), |l| format!("{:.3}ms", l.best)),
                num(r.gops.map(|g| g.best)),
                num(r.gops.map(|g| g.median)),
                num(r.gops.map(|g| g.mean)),
                pct(r.efficiency),
                flags(r)
            ));
        }
        for ((op, p), r) in not_run.iter().filter(|((op, _), _)| !op.is_stream()) {
            if !best.contains_key(&(*op, *p)) {
                out.push(format!(
                    "  {:<7} {:<9} {:?}: {}",
                    op.as_str(),
                    p.as_str(),
                    r.status,
                    r.reason.as_deref().unwrap_or("")
                ));
            }
        }
    }

    let stream: Vec<&Record> = result
        .records
        .iter()
        .filter(|r| r.operation.is_stream() && r.status == Status::Measured)
        .collect();
    if !stream.is_empty() {
        out.push(String::new());
        out.push("Memory bandwidth (STREAM; bytes by STREAM's rules; no temporaries):".into());
        out.push(format!(
            "  {:<13} {:>10} {:>11} {:>11} {:>10}  {}",
            "Kernel", "Array", "Best GB/s", "Median", "Efficiency", "Notes"
        ));
        out.push(format!("  {}", "-".repeat(74)));
        for r in stream {
            let mut notes = flags(r);
            if r.flags.bandwidth_eligible {
                notes = if notes.is_empty() {
                    "≥4× LLC".into()
                } else {
                    format!("{notes}, ≥4× LLC")
                };
            }
            out.push(format!(
                "  {:<13} {:>10} {:>11} {:>11} {:>10}  {}",
                r.operation.as_str(),
                size_label(r.operation, r.size, r.array_mib),
                num(r.bandwidth_gbps.map(|b| b.best)),
                num(r.bandwidth_gbps.map(|b| b.median)),
                pct(r.efficiency),
                notes
            ));
        }
    }

    let s = &result.summary;
    out.push(String::new());
    out.push("Peak by precision:".into());
    for (p, f) in &s.peak_by_precision {
        out.push(format!(
            "  {:<6} {:>10.1} {:<6} ({} {}) {}",
            p.as_str(),
            f.gops,
            p.rate_unit(),
            f.operation,
            f.size,
            f.efficiency
                .map_or(String::new(), |e| format!("{:.1}% of peak", e * 100.0))
        ));
    }
    match s.memory_bandwidth_gbps {
        Some(bw) => out.push(format!(
            "Memory bandwidth: {bw:.1} GB/s from {}{}",
            s.bandwidth_source,
            s.bandwidth_efficiency.map_or(String::new(), |e| format!(
                ", {:.1}% of theoretical",
                e * 100.0
            ))
        )),
        None => out.push(format!(
            "Memory bandwidth: not measured ({})",
            s.bandwidth_source
        )),
    }
    if let Some(line) = noise_line(s) {
        out.push(line);
    }
    if !s.unsupported_precisions.is_empty() {
        let names: Vec<_> = s
            .unsupported_precisions
            .iter()
            .map(|p| p.as_str())
            .collect();
        out.push(format!("Unsupported precisions: {}", names.join(", ")));
    }
    if !s.anomalies.is_empty() {
        out.push(String::new());
        out.push("Anomalies:".into());
        out.extend(s.anomalies.iter().map(|a| format!("  ⚠ {a}")));
    }
    if result.records.iter().any(|r| r.flags.above_theoretical) {
        out.extend([
            String::new(),
            "Note on >100% Efficiency:".into(),
            "  Efficiency above theoretical peak typically indicates:".into(),
            "    • Turbo Boost / GPU Boost clocks exceeding base frequency".into(),
            "    • Optimized BLAS libraries (MKL, cuBLAS) exceeding naive calculations".into(),
            "    • Conservative theoretical peaks (based on sustained, not peak clocks)".into(),
        ]);
    }
    out
}

/// `Noise floor: 1.8 % (A/A probe: gemm fp32 512 1.2 %, stream_triad fp32 16 MiB 1.8 %)`, or
/// why there is none; nothing for files written before the probe existed.
fn noise_line(s: &fleetcal_proto::result::Summary) -> Option<String> {
    if s.noise_probes.is_empty() && s.noise_floor_pct.is_none() {
        return None;
    }
    let parts: Vec<String> = s
        .noise_probes
        .iter()
        .map(|p| {
            let what = format!(
                "{} {} {}",
                p.operation,
                p.precision,
                size_label(
                    p.operation,
                    p.size,
                    p.operation.is_stream().then(|| {
                        p.size as f64 * p.precision.item_size() as f64 / (1024.0 * 1024.0)
                    })
                )
            );
            match (p.noise_pct, &p.reason) {
                (Some(n), _) => format!("{what} {n:.1} %"),
                (None, Some(r)) => format!("{what}: {r}"),
                (None, None) => format!("{what}: n/a"),
            }
        })
        .collect();
    Some(match s.noise_floor_pct {
        Some(f) => format!(
            "Noise floor: {f:.1} % (A/A probe at start and end: {}); differences below it are noise",
            parts.join(", ")
        ),
        None => format!("Noise floor: not measured ({})", parts.join(", ")),
    })
}
