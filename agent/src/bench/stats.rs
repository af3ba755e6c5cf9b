//! Statistics over trial latencies, and the rates derived from them.

use std::time::Duration;

use fleetcal_proto::result::{LatencyStats, Rate};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_ci_ranks_match_the_binomial_tables() {
        // Published ranks of the 95 % order-statistic interval (e.g. Conover, Practical
        // Nonparametric Statistics, table A3): n = 6..8 → 1, 9..11 → 2, 12..14 → 3, 20 → 6,
        // 30 → 10, 100 → 40.
        assert_eq!(ci_rank(5), None);
        for (n, j) in [
            (6, 1),
            (8, 1),
            (9, 2),
            (11, 2),
            (12, 3),
            (14, 3),
            (20, 6),
            (30, 10),
            (100, 40),
        ] {
            assert_eq!(ci_rank(n), Some(j), "n = {n}");
        }
        assert!(ci_rank(100_000).is_some(), "large n stays finite");
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        assert_eq!(median_ci(&x), Some((2.0, 8.0)));
        assert_eq!(median_ci(&x[..5]), None);
        let r = median_ci_relative(&x).unwrap();
        assert!((r - 3.0 / 5.0).abs() < 1e-12, "{r}");
        assert_eq!(median_ci_relative(&[0.0; 6]), None);
    }

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn odd_count_statistics() {
        let s = latency_stats(&ms(&[30, 10, 20])).unwrap();
        assert_eq!(s.best, 10.0);
        assert_eq!(s.median, 20.0);
        assert_eq!(s.max, 30.0);
        assert!((s.mean - 20.0).abs() < 1e-9);
        // sample std of 10, 20, 30 is 10
        assert!((s.std - 10.0).abs() < 1e-9, "{}", s.std);
        assert!((s.cv - 0.5).abs() < 1e-9);
    }

    #[test]
    fn even_count_median_is_the_middle_mean() {
        let s = latency_stats(&ms(&[4, 1, 3, 2])).unwrap();
        assert_eq!(s.median, 2.5);
        assert_eq!(s.best, 1.0);
        assert_eq!(s.max, 4.0);
    }

    #[test]
    fn single_trial_has_zero_spread_and_empty_has_none() {
        let s = latency_stats(&ms(&[7])).unwrap();
        assert_eq!(
            (s.best, s.median, s.max, s.std, s.cv),
            (7.0, 7.0, 7.0, 0.0, 0.0)
        );
        assert!(latency_stats(&[]).is_none());
    }

    #[test]
    fn rates_follow_latencies() {
        let s = latency_stats(&ms(&[1, 2, 3])).unwrap();
        // 2e9 FLOPs in 1 ms = 2000 GFLOPS
        let r = rate(2e9, &s);
        assert!((r.best - 2000.0).abs() < 1e-6);
        assert!((r.median - 1000.0).abs() < 1e-6);
        assert!((r.mean - 1000.0).abs() < 1e-6);
        assert!(r.best >= r.median);
    }

    #[test]
    fn zero_latency_gives_zero_rate_not_infinity() {
        let s = latency_stats(&[Duration::ZERO]).unwrap();
        let r = rate(1e6, &s);
        assert_eq!(r.best, 0.0);
        assert!(r.best.is_finite());
    }
}
