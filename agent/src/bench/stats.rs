//! Statistics over trial latencies, and the rates derived from them (their home is
//! [`fleetcal_proto::stats`], which the coordinator re-derives stored figures by).

pub use fleetcal_proto::stats::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
