//! The run's noise floor: an A/A probe.
//!
//! The same two small kernels, one compute-bound (gemm fp32, n = 512) and one memory-bound
//! (STREAM triad fp32, 4 MiB arrays), are timed through the runner's trial loop at the start
//! of a run and again at its end, with the same warm-ups and trials every time. Nothing about
//! them changes between the two, so any difference is the machine's noise. Per probe kernel
//! the noise is the larger of the A/A difference of the two medians and the relative
//! half-width of either median's 95 % confidence interval ([`stats::median_ci_relative`]);
//! the run's noise floor is the largest over the kernels, in percent. Two figures closer than
//! the noise floor cannot be told apart on this run.

use std::time::Duration;

use fleetcal_proto::result::NoiseProbe;
use fleetcal_proto::{Operation, Precision};

use super::cancel::{CancelToken, Cancelled};
use super::engine::Engine;
use super::runner::{time_trials, Interrupt, TrialRule};
use super::stats;
use super::telemetry::NoTelemetry;

/// The probe kernels: operation, precision, size (matrix order; STREAM elements per array).
pub const PROBES: [(Operation, Precision, u64); 2] = [
    (Operation::Gemm, Precision::Fp32, 512),
    (Operation::StreamTriad, Precision::Fp32, 1024 * 1024),
];

/// The probe's trial rule: 2 warm-ups (at most 50 ms), then at least 15 trials and more, up to
/// 61, until the median's 95 % interval is within ±3 %, all stopping once the trials have taken
/// 0.1 s (at least [`stats::CI_MIN_SAMPLES`] are always taken, so each median has an
/// interval). A pass takes about 50 ms on a desktop CPU. (With 15 fixed trials the interval
/// spans the 4th to the 12th latency: on a 16-vCPU host a quarter of PyTorch's 24 µs triads
/// waited for OpenMP workers, and that one interval, ±181 %, became the run's noise floor.)
pub(crate) const PROBE_RULE: TrialRule = TrialRule {
    warmup_runs: 2,
    warmup_budget: Duration::from_millis(50),
    trials: 15,
    max_trials: 61,
    ci_target: Some(0.03),
    time_budget: Duration::from_millis(100),
    adaptive_budget: Duration::from_millis(100),
    min_trials: stats::CI_MIN_SAMPLES as u32,
    deadline: None,
};

/// One pass of the probe: per kernel, its trial latencies, or why it could not run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePass {
    /// In [`PROBES`] order.
    pub kernels: Vec<Result<Vec<Duration>, String>>,
}

/// Times every probe kernel once on `engine` (a pass at the start or the end of a run).
pub fn probe(engine: &mut dyn Engine, cancel: &CancelToken) -> Result<ProbePass, Cancelled> {
    let mut kernels = Vec::with_capacity(PROBES.len());
    for (op, precision, size) in PROBES {
        cancel.check()?;
        let timed = engine
            .check_support(op, precision)
            .and_then(|()| engine.prepare(op, precision, size))
            .map_err(Interrupt::Failed)
            .and_then(|mut k| time_trials(k.as_mut(), &PROBE_RULE, cancel, &mut NoTelemetry))
            .map(|timed| timed.samples);
        kernels.push(match timed {
            Ok(t) => Ok(t),
            Err(Interrupt::Failed(m)) => Err(m),
            Err(Interrupt::Cancelled(c)) => return Err(c),
        });
    }
    Ok(ProbePass { kernels })
}

/// The noise floor in percent (`None` when no kernel ran in both passes) and what each probe
/// kernel measured.
pub fn noise_floor(start: &ProbePass, end: &ProbePass) -> (Option<f64>, Vec<NoiseProbe>) {
    let mut floor: Option<f64> = None;
    let mut probes = Vec::new();
    for (i, (op, precision, size)) in PROBES.into_iter().enumerate() {
        let missing = || Err("the probe did not run".to_string());
        let a = start.kernels.get(i).cloned().unwrap_or_else(missing);
        let b = end.kernels.get(i).cloned().unwrap_or_else(missing);
        let mut probe = NoiseProbe {
            operation: op,
            precision,
            size,
            start_median_ms: None,
            end_median_ms: None,
            trials: [0, 0],
            difference_pct: None,
            start_ci_pct: None,
            end_ci_pct: None,
            noise_pct: None,
            reason: None,
        };
        match (a, b) {
            (Ok(a), Ok(b)) => {
                let (ma, mb) = (stats::millis(&a), stats::millis(&b));
                let med_a = stats::latency_stats(&a).map(|s| s.median);
                let med_b = stats::latency_stats(&b).map(|s| s.median);
                probe.trials = [count(a.len()), count(b.len())];
                probe.start_median_ms = med_a;
                probe.end_median_ms = med_b;
                probe.start_ci_pct = stats::median_ci_relative(&ma).map(|r| r * 100.0);
                probe.end_ci_pct = stats::median_ci_relative(&mb).map(|r| r * 100.0);
                probe.difference_pct = match (med_a, med_b) {
                    (Some(x), Some(y)) if x.min(y) > 0.0 => Some((x - y).abs() / x.min(y) * 100.0),
                    _ => None,
                };
                let noise = [probe.difference_pct, probe.start_ci_pct, probe.end_ci_pct]
                    .into_iter()
                    .flatten()
                    .reduce(f64::max);
                probe.noise_pct = noise;
                if let Some(n) = noise {
                    floor = Some(floor.map_or(n, |f| f.max(n)));
                } else {
                    probe.reason = Some("latencies below the clock's resolution".into());
                }
            }
            (Err(e), _) => probe.reason = Some(format!("start: {e}")),
            (_, Err(e)) => probe.reason = Some(format!("end: {e}")),
        }
        probes.push(probe);
    }
    (floor, probes)
}

/// A noise floor above this many percent is an anomaly line of the summary.
pub const NOISY_FLOOR_PCT: f64 = 5.0;

/// The anomaly line of a noise floor above [`NOISY_FLOOR_PCT`], or of a run without one.
pub fn anomaly(floor: Option<f64>) -> Option<String> {
    match floor {
        None => Some("no noise floor: no probe kernel ran at both the start and the end of the run".into()),
        Some(f) if f > NOISY_FLOOR_PCT => Some(format!(
            "noise floor {f:.1} % (A/A probe, above {NOISY_FLOOR_PCT} %): the machine was noisy during the run; differences smaller than this are not differences"
        )),
        Some(_) => None,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(gemm_us: &[u64], triad_us: &[u64]) -> ProbePass {
        let d = |v: &[u64]| v.iter().map(|&u| Duration::from_micros(u)).collect();
        ProbePass {
            kernels: vec![Ok(d(gemm_us)), Ok(d(triad_us))],
        }
    }

    #[test]
    fn a_quiet_run_has_a_small_floor_and_a_disturbed_one_a_large_one() {
        let steady = [1000, 1001, 1002, 999, 1000, 1001, 1000];
        let (floor, probes) = noise_floor(&pass(&steady, &steady), &pass(&steady, &steady));
        let floor = floor.unwrap();
        assert!(floor < 0.5, "{floor}");
        assert_eq!(probes.len(), 2);
        assert_eq!(probes[0].trials, [7, 7]);
        assert_eq!(probes[0].difference_pct, Some(0.0));
        // The end pass of the memory kernel ran 20 % slower: the floor is that difference.
        let slow: Vec<u64> = steady.iter().map(|v| v * 6 / 5).collect();
        let (floor, probes) = noise_floor(&pass(&steady, &steady), &pass(&steady, &slow));
        assert!((floor.unwrap() - 20.0).abs() < 0.5, "{floor:?}");
        assert!(probes[1].difference_pct.unwrap() > 19.0);
        // A scattered pass: its interval's width counts even when the medians agree.
        let scattered = [500, 1000, 1500, 1000, 600, 1400, 1000];
        let (floor, _) = noise_floor(&pass(&scattered, &steady), &pass(&scattered, &steady));
        assert!(floor.unwrap() >= 45.0, "{floor:?}");
    }

    #[test]
    fn only_a_high_or_missing_floor_is_an_anomaly() {
        assert_eq!(anomaly(Some(1.0)), None);
        assert!(anomaly(Some(12.34))
            .unwrap()
            .starts_with("noise floor 12.3 % (A/A probe"));
        assert!(anomaly(None).unwrap().starts_with("no noise floor"));
    }

    #[test]
    fn a_kernel_that_did_not_run_is_named_and_the_other_still_counts() {
        let steady = [1000, 1001, 1002, 999, 1000, 1001, 1000];
        let mut start = pass(&steady, &steady);
        start.kernels[0] = Err("out of memory".into());
        let (floor, probes) = noise_floor(&start, &pass(&steady, &steady));
        assert!(floor.is_some());
        assert_eq!(probes[0].reason.as_deref(), Some("start: out of memory"));
        assert_eq!(probes[0].noise_pct, None);
        let none = ProbePass { kernels: vec![] };
        let (floor, probes) = noise_floor(&none, &none);
        assert_eq!(floor, None);
        assert!(probes.iter().all(|p| p.reason.is_some()));
    }

    #[test]
    fn the_numpy_engine_runs_the_probe() {
        let _threads = crate::testing::thread_counts_shared();
        let mut engine = crate::engines::numpy::NumpyEngine::new(Some(1));
        let pass = probe(&mut engine, &CancelToken::new()).unwrap();
        assert_eq!(pass.kernels.len(), PROBES.len());
        for k in &pass.kernels {
            let t = k.as_ref().unwrap();
            assert!(
                t.len() >= stats::CI_MIN_SAMPLES && t.len() <= 61,
                "{}",
                t.len()
            );
        }
        let token = CancelToken::new();
        token.cancel("stop");
        assert!(probe(&mut engine, &token).is_err());
    }
}
