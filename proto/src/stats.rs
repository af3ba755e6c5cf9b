//! Statistics over trial latencies, and the rates derived from them: the one home of the
//! rules the agent measures with and the coordinator's result codec re-derives by.

use std::time::Duration;

use crate::result::{LatencyStats, Rate};

/// Latency statistics (milliseconds) over the timed trials.
///
/// Best, median (the mean of the two middle trials for an even count), mean, sample standard
/// deviation (n − 1; 0 for a single trial), max, and cv = std ÷ mean (0 when the mean is 0).
/// Returns `None` for an empty slice.
pub fn latency_stats(trials: &[Duration]) -> Option<LatencyStats> {
    if trials.is_empty() {
        return None;
    }
    let mut ms: Vec<f64> = trials.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    let mean = ms.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (ms.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let cv = if mean > 0.0 { std / mean } else { 0.0 };
    Some(LatencyStats {
        best: ms[0],
        median,
        mean,
        std,
        max: ms[n - 1],
        cv,
    })
}

/// Latencies in milliseconds.
pub fn millis(trials: &[Duration]) -> Vec<f64> {
    trials.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

/// Work per call ÷ latency, in giga-units per second: `amount` FLOPs gives GFLOPS, bytes give
/// GB/s (1e9). The best rate comes from the best latency, and so on; a zero latency (below
/// the clock's resolution) gives a zero rate rather than infinity.
pub fn rate(amount: f64, latency: &LatencyStats) -> Rate {
    let per_second = |ms: f64| {
        if ms > 0.0 {
            amount / (ms * 1e-3) / 1e9
        } else {
            0.0
        }
    };
    Rate {
        best: per_second(latency.best),
        median: per_second(latency.median),
        mean: per_second(latency.mean),
    }
}

/// The confidence level of [`median_ci`]: 95 %.
pub const CI_CONFIDENCE: f64 = 0.95;

/// The fewest samples for which [`median_ci`] has an interval at [`CI_CONFIDENCE`]: with 6,
/// `[min, max]` covers the median with probability 1 − 2 × 0.5⁶ ≈ 96.9 %; with 5 only 93.8 %.
pub const CI_MIN_SAMPLES: usize = 6;

/// A distribution-free confidence interval for the median: `(low, high)` =
/// `(x₍ⱼ₎, x₍ₙ₊₁₋ⱼ₎)` of the sorted samples, with `j` the largest rank whose interval still
/// covers the population median with probability ≥ [`CI_CONFIDENCE`] (from the binomial
/// distribution B(n, ½); no assumption about the latency distribution). `None` below
/// [`CI_MIN_SAMPLES`] samples.
pub fn median_ci(samples: &[f64]) -> Option<(f64, f64)> {
    let n = samples.len();
    if n < CI_MIN_SAMPLES {
        return None;
    }
    let mut x = samples.to_vec();
    x.sort_by(f64::total_cmp);
    let j = ci_rank(n)?;
    Some((x[j - 1], x[n - j]))
}

/// The largest rank `j` (1-based, `j ≤ n/2`) with `1 − 2·P(B ≤ j−1) ≥ CI_CONFIDENCE` for
/// `B ~ B(n, ½)`; `None` when even `j = 1` falls short. Computed in log space, so any `n` works.
pub fn ci_rank(n: usize) -> Option<usize> {
    let nf = n as f64;
    let mut ln_pmf = nf * 0.5f64.ln(); // P(B = 0)
    let mut cdf = 0.0; // P(B <= k - 1) as k grows
    let mut best = None;
    for j in 1..=n / 2 {
        // cdf = P(B <= j - 1)
        cdf += ln_pmf.exp();
        if 1.0 - 2.0 * cdf >= CI_CONFIDENCE {
            best = Some(j);
        } else {
            break;
        }
        let k = (j - 1) as f64;
        ln_pmf += ((nf - k) / (k + 1.0)).ln();
    }
    best
}

/// The half-width of [`median_ci`] relative to the median: `(high − low) / 2 / median`, or
/// `None` without an interval (or with a zero median).
pub fn median_ci_relative(samples: &[f64]) -> Option<f64> {
    let (low, high) = median_ci(samples)?;
    let mut x = samples.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    let median = if n % 2 == 1 {
        x[n / 2]
    } else {
        (x[n / 2 - 1] + x[n / 2]) / 2.0
    };
    (median > 0.0).then(|| (high - low) / 2.0 / median)
}

/// What a measured record's figures are, given its timed trials: the latency statistics,
/// the GB/s over `bytes`, the GFLOPS (GIOPS) over `flops` when it has FLOPs, and the
/// relative half-width of the median's confidence interval in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Derived {
    /// [`latency_stats`] of the trials.
    pub latency_ms: LatencyStats,
    /// [`rate`] of `bytes`.
    pub bandwidth_gbps: Rate,
    /// [`rate`] of `flops`, when `flops > 0`.
    pub gops: Option<Rate>,
    /// [`median_ci_relative`] × 100.
    pub ci_pct: Option<f64>,
}

/// The figures of a measured record derived from its trials (`None` without trials): the one
/// derivation the agent writes a record's figures by, and the coordinator's result codec
/// re-derives them by.
pub fn derive(flops: f64, bytes: f64, trials: &[Duration]) -> Option<Derived> {
    let latency_ms = latency_stats(trials)?;
    Some(Derived {
        latency_ms,
        bandwidth_gbps: rate(bytes, &latency_ms),
        gops: (flops > 0.0).then(|| rate(flops, &latency_ms)),
        ci_pct: median_ci_relative(&millis(trials)).map(|r| r * 100.0),
    })
}

/// The rate a record's efficiency is of: its best GB/s for a STREAM kernel, else its best
/// GFLOPS/GIOPS (0 without FLOPs).
pub fn best_rate(stream: bool, d: &Derived) -> f64 {
    if stream {
        d.bandwidth_gbps.best
    } else {
        d.gops.map_or(0.0, |g| g.best)
    }
}

/// THE efficiency rule: best rate ÷ theoretical peak, when the peak is known and positive.
pub fn efficiency(best_rate: f64, peak: Option<f64>) -> Option<f64> {
    peak.filter(|p| p.is_finite() && *p > 0.0)
        .map(|p| best_rate / p)
}

/// Which of two rates is the faster one, in [`beyond_noise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Faster {
    /// The first rate (the ratio's denominator).
    First,
    /// The second rate (the ratio's numerator).
    Second,
}

/// THE rule of every "which framework is faster" verdict: `ratio` is the second rate ÷ the
/// first; the faster one wins, by `(faster ÷ slower − 1) × 100` percent, when that exceeds
/// `noise_floor_pct`. Measured from the slower side, so 2× faster and 2× slower are both
/// 100 %: a run whose floor is above 100 % can still call the first rate faster.
/// `None`: no difference (within the floor, or a ratio that is not positive and finite).
pub fn beyond_noise(ratio: f64, noise_floor_pct: f64) -> Option<(Faster, f64)> {
    if !ratio.is_finite() || ratio <= 0.0 {
        return None;
    }
    let (faster, by) = if ratio >= 1.0 {
        (Faster::Second, (ratio - 1.0) * 100.0)
    } else {
        (Faster::First, (1.0 / ratio - 1.0) * 100.0)
    };
    (by > noise_floor_pct).then_some((faster, by))
}

/// A record's FLOPs per byte (0 without bytes).
pub fn arithmetic_intensity(flops: f64, bytes: f64) -> f64 {
    if bytes > 0.0 {
        flops / bytes
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_noise_is_symmetric_and_needs_more_than_the_floor() {
        assert_eq!(beyond_noise(1.03, 5.0), None);
        assert_eq!(beyond_noise(1.0 / 1.03, 5.0), None);
        assert_eq!(beyond_noise(1.5, 50.0), None);
        let (f, by) = beyond_noise(2.0, 5.0).unwrap();
        assert_eq!(f, Faster::Second);
        assert!((by - 100.0).abs() < 1e-9);
        let (f, by) = beyond_noise(0.5, 5.0).unwrap();
        assert_eq!(f, Faster::First);
        assert!((by - 100.0).abs() < 1e-9);
        // 7.7x slower is beyond a 180 % floor (2.8x): measured from the slower side, not
        // as the 87 % a difference from the first rate would be.
        let (f, by) = beyond_noise(0.13, 180.0).unwrap();
        assert_eq!(f, Faster::First);
        assert!(by > 600.0, "{by}");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(beyond_noise(bad, 5.0), None, "{bad}");
        }
    }
}
