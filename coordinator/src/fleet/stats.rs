//! The statistics the fleet reports share: median, median absolute deviation, the
//! Mann–Whitney U test (a step), the Mann–Kendall test and the Theil–Sen slope (a creep).
//! Non-finite inputs are ignored everywhere.

/// A count as a float (counts here are far below 2³²; larger ones saturate).
pub fn count(n: usize) -> f64 {
    u32::try_from(n).map_or(f64::from(u32::MAX), f64::from)
}

/// Milliseconds as days (to the minute).
pub fn days(ms: i64) -> f64 {
    let minutes = ms / 60_000;
    let m = i32::try_from(minutes).map_or(
        if minutes < 0 {
            f64::from(i32::MIN)
        } else {
            f64::from(i32::MAX)
        },
        f64::from,
    );
    m / 1440.0
}

/// The finite values, sorted.
fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn u64_float(n: u64) -> f64 {
    u32::try_from(n).map_or(f64::from(u32::MAX), f64::from)
}

fn i64_float(n: i64) -> f64 {
    i32::try_from(n).map_or(
        if n < 0 {
            f64::from(i32::MIN)
        } else {
            f64::from(i32::MAX)
        },
        f64::from,
    )
}

/// The median of the finite values; `None` when there are none. By selection, not a full
/// sort (the Theil–Sen slope takes the median of every pair's slope: ~1,800 for two months
/// of nights), with the same result as sorting: the middle value, or the mean of the two.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (below, hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let hi = *hi;
    if n % 2 == 1 {
        Some(hi)
    } else {
        // The largest of the values below the middle one: the sorted order's `n / 2 - 1`th.
        let lo = below.iter().copied().max_by(f64::total_cmp)?;
        Some((lo + hi) / 2.0)
    }
}

/// A float ordered by [`f64::total_cmp`] (for the heaps of [`RunningMedian`]).
#[derive(Debug, Clone, Copy)]
struct Total(f64);

impl PartialEq for Total {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Total {}

impl PartialOrd for Total {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Total {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The median of a growing collection of values, kept as they come: each value in
/// O(log n), the median in O(1), bit for bit [`median`] of the values pushed (non-finite ones
/// are skipped as `median` skips them). The creep test's Theil–Sen slope takes the median of
/// every pair's slope of a window of nights, and each longer window adds one night's pairs:
/// one of these serves every window, where a median of each window's pairs cost O(w²).
#[derive(Debug, Clone, Default)]
pub struct RunningMedian {
    /// The lower half (a max-heap).
    low: std::collections::BinaryHeap<Total>,
    /// The upper half, as many as `low` or one more (a min-heap).
    high: std::collections::BinaryHeap<std::cmp::Reverse<Total>>,
}

impl RunningMedian {
    /// Adds a value (a non-finite one is skipped).
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        match self.high.peek() {
            Some(std::cmp::Reverse(h)) if x.total_cmp(&h.0).is_lt() => self.low.push(Total(x)),
            _ => self.high.push(std::cmp::Reverse(Total(x))),
        }
        if self.low.len() > self.high.len() {
            if let Some(t) = self.low.pop() {
                self.high.push(std::cmp::Reverse(t));
            }
        } else if self.high.len() > self.low.len() + 1 {
            if let Some(std::cmp::Reverse(t)) = self.high.pop() {
                self.low.push(t);
            }
        }
    }

    /// The median of the values pushed; `None` before the first finite one.
    pub fn median(&self) -> Option<f64> {
        let hi = self.high.peek()?.0 .0;
        if self.high.len() > self.low.len() {
            Some(hi)
        } else {
            Some((self.low.peek()?.0 + hi) / 2.0)
        }
    }
}

/// The median absolute deviation from the median (unscaled); `None` when there are no
/// finite values.
pub fn mad(xs: &[f64]) -> Option<f64> {
    let m = median(xs)?;
    let dev: Vec<f64> = xs
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| (x - m).abs())
        .collect();
    median(&dev)
}

/// 1.4826 × MAD: the standard deviation of normal data, estimated robustly.
pub const MAD_SCALE: f64 = 1.4826;

/// Lowest and highest finite value.
pub fn min_max(xs: &[f64]) -> Option<(f64, f64)> {
    let v = sorted(xs);
    Some((*v.first()?, *v.last()?))
}

/// The standard normal cumulative distribution function (Abramowitz–Stegun 7.1.26 erf;
/// absolute error below 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    if !z.is_finite() {
        return if z > 0.0 { 1.0 } else { 0.0 };
    }
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Largest n₁ × n₂ for which [`mann_whitney_less`] counts the exact distribution.
const EXACT_U_CELLS: usize = 400;

/// The one-sided Mann–Whitney U test that `ys` tend to be smaller than `xs`: its p value
/// (the probability of a U statistic this small if both came from one distribution). Exact
/// for small samples (counting every arrangement; a tie counts half, and a half-integer U
/// is rounded up), the normal approximation with the tie correction otherwise. `None` when
/// a side has no finite value.
pub fn mann_whitney_less(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let xs = sorted(xs);
    let ys = sorted(ys);
    let (n1, n2) = (xs.len(), ys.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // U_y: pairs (x, y) with y > x, ties counting half. Small U_y: ys are small.
    let mut twice_u: u64 = 0;
    for y in &ys {
        for x in &xs {
            twice_u += match y.total_cmp(x) {
                std::cmp::Ordering::Greater => 2,
                std::cmp::Ordering::Equal => 1,
                std::cmp::Ordering::Less => 0,
            };
        }
    }
    let u = u64_float(twice_u) / 2.0;
    if n1 * n2 <= EXACT_U_CELLS {
        // counts[u] = arrangements of n2 ys among n1 xs with statistic u.
        let dist = u_distribution(n1, n2);
        let total: f64 = dist.iter().sum();
        let upto = twice_u.div_ceil(2);
        let below: f64 = dist
            .iter()
            .take(usize::try_from(upto).ok()?.saturating_add(1))
            .sum();
        return Some((below / total).clamp(0.0, 1.0));
    }
    let (a, b) = (count(n1), count(n2));
    let n = a + b;
    let mean = a * b / 2.0;
    // Tie correction: Σ(t³ − t) over groups of tied values.
    let mut all: Vec<f64> = xs.iter().chain(&ys).copied().collect();
    all.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j] == all[i] {
            j += 1;
        }
        let t = count(j - i);
        ties += t * t * t - t;
        i = j;
    }
    let var = a * b / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    // Continuity correction towards the mean.
    let z = (u + 0.5 - mean) / var.sqrt();
    Some(normal_cdf(z))
}

/// The null distribution of U for samples of n1 and n2 (index = U), as counts.
fn u_distribution(n1: usize, n2: usize) -> Vec<f64> {
    // f(m, n)[u]: arrangements of m xs and n ys with statistic u (ys above xs).
    // Recurrence on the largest element: an x (adds nothing) or a y (adds m).
    let max_u = n1 * n2;
    let mut table: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n2 + 1]; n1 + 1];
    for m in 0..=n1 {
        for n in 0..=n2 {
            let mut d = vec![0.0; m * n + 1];
            if m == 0 || n == 0 {
                d[0] = 1.0;
            } else {
                for (u, slot) in d.iter_mut().enumerate() {
                    let from_x = table[m - 1][n].get(u).copied().unwrap_or(0.0);
                    let from_y = u
                        .checked_sub(m)
                        .and_then(|v| table[m][n - 1].get(v).copied())
                        .unwrap_or(0.0);
                    *slot = from_x + from_y;
                }
            }
            table[m][n] = d;
        }
    }
    let mut out = std::mem::take(&mut table[n1][n2]);
    out.resize(max_u + 1, 0.0);
    out
}

/// The Theil–Sen slope of `(x, y)` points: the median of the pairwise slopes (points with
/// equal x are skipped). `None` with fewer than two distinct x. The creep test keeps this
/// median as its window grows ([`RunningMedian`]); this whole-window form is its oracle.
#[cfg(test)]
pub fn theil_sen(points: &[(f64, f64)]) -> Option<f64> {
    let mut slopes = Vec::new();
    for (i, (x1, y1)) in points.iter().enumerate() {
        for (x2, y2) in points.iter().skip(i + 1) {
            let dx = x2 - x1;
            if dx != 0.0 {
                slopes.push((y2 - y1) / dx);
            }
        }
    }
    median(&slopes)
}

/// The one-sided Mann–Kendall test for a downward trend of `ys` in their order: its p value
/// (normal approximation with the tie correction and a continuity correction). `None` with
/// fewer than three finite values.
pub fn mann_kendall_down(ys: &[f64]) -> Option<f64> {
    let v: Vec<f64> = ys.iter().copied().filter(|y| y.is_finite()).collect();
    let n = v.len();
    if n < 3 {
        return None;
    }
    let s = mann_kendall_s(&v);
    let nf = count(n);
    let mut sorted_v = v.clone();
    sorted_v.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < sorted_v.len() {
        let mut j = i + 1;
        while j < sorted_v.len() && sorted_v[j] == sorted_v[i] {
            j += 1;
        }
        let t = count(j - i);
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j;
    }
    let var = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    Some(mann_kendall_p(s, var))
}

/// The Mann–Kendall S statistic of finite values in their order (pairs rising minus pairs
/// falling).
pub fn mann_kendall_s(ys: &[f64]) -> i64 {
    let mut s: i64 = 0;
    for (i, a) in ys.iter().enumerate() {
        for b in ys.iter().skip(i + 1) {
            s += sign(*b - *a);
        }
    }
    s
}

/// −1, 0 or 1 as `d` is below, at or above zero.
pub fn sign(d: f64) -> i64 {
    if d > 0.0 {
        1
    } else if d < 0.0 {
        -1
    } else {
        0
    }
}

/// The variance of S for `n` values without ties.
pub fn mann_kendall_var(n: usize) -> f64 {
    let nf = count(n);
    nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0
}

/// P(S ≤ s) for a Mann–Kendall statistic with variance `var` (normal approximation with a
/// continuity correction): the one-sided p value of a downward trend.
pub fn mann_kendall_p(s: i64, var: f64) -> f64 {
    if var <= 0.0 || !var.is_finite() {
        return 1.0;
    }
    let z = (i64_float(s) + 1.0) / var.sqrt();
    normal_cdf(z)
}

/// (value − base) ÷ base in percent; `None` when base is not a positive finite number.
pub fn change_pct(value: f64, base: f64) -> Option<f64> {
    (base.is_finite() && base > 0.0 && value.is_finite()).then(|| (value - base) / base * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad_ignore_non_finite_values() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, f64::NAN, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // deviations from 3: 2, 1, 0, 1, 97 → median 1
        assert_eq!(mad(&[1.0, 2.0, 3.0, 4.0, 100.0]), Some(1.0));
        assert_eq!(min_max(&[f64::INFINITY, 2.0, -1.0]), Some((-1.0, 2.0)));
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.6449) - 0.05).abs() < 1e-4);
    }

    #[test]
    fn mann_whitney_exact_p_is_the_share_of_arrangements() {
        // Every y below every x: U = 0, p = 1 / C(n1 + n2, n2).
        let xs = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0];
        let p = mann_whitney_less(&xs, &[1.0, 2.0]).unwrap();
        assert!((p - 1.0 / 36.0).abs() < 1e-12, "{p}");
        // One y cannot reach 0.05 against seven xs (1/8).
        let p = mann_whitney_less(&xs, &[1.0]).unwrap();
        assert!((p - 0.125).abs() < 1e-12, "{p}");
        // ys above xs: p near 1.
        assert!(mann_whitney_less(&xs, &[20.0, 21.0]).unwrap() > 0.95);
        assert_eq!(mann_whitney_less(&[], &[1.0]), None);
    }

    #[test]
    fn mann_whitney_normal_approximation_agrees_on_large_samples() {
        let xs: Vec<f64> = (0..30).map(|i| 100.0 + f64::from(i % 7)).collect();
        let low: Vec<f64> = (0..20).map(|i| 90.0 + f64::from(i % 5)).collect();
        assert!(mann_whitney_less(&xs, &low).unwrap() < 1e-6);
        let same: Vec<f64> = (0..20).map(|i| 100.0 + f64::from(i % 7)).collect();
        assert!(mann_whitney_less(&xs, &same).unwrap() > 0.2);
    }

    #[test]
    fn theil_sen_ignores_an_outlier_and_mann_kendall_sees_a_trend() {
        let mut pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 100.0 - f64::from(i)))
            .collect();
        pts[4].1 = 500.0;
        assert_eq!(theil_sen(&pts), Some(-1.0));
        let down: Vec<f64> = (0..15).map(|i| 100.0 - f64::from(i)).collect();
        assert!(mann_kendall_down(&down).unwrap() < 1e-4);
        let up: Vec<f64> = down.iter().rev().copied().collect();
        assert!(mann_kendall_down(&up).unwrap() > 0.99);
        let flat = [5.0, 5.0, 5.0, 5.0];
        assert_eq!(mann_kendall_down(&flat), Some(1.0));
        assert_eq!(mann_kendall_down(&[1.0, 2.0]), None);
    }

    #[test]
    fn change_pct_needs_a_positive_base() {
        assert_eq!(change_pct(90.0, 100.0), Some(-10.0));
        assert_eq!(change_pct(1.0, 0.0), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any values (NaN and infinities included): the median lies within the finite
        /// values, p values are probabilities.
        #[test]
        fn statistics_stay_in_range(
            xs in proptest::collection::vec(proptest::num::f64::ANY, 0..30),
            ys in proptest::collection::vec(-1e3..1e3f64, 0..30),
        ) {
            if let (Some(m), Some((lo, hi))) = (median(&xs), min_max(&xs)) {
                proptest::prop_assert!(lo <= m && m <= hi);
            }
            if let Some(p) = mann_whitney_less(&xs, &ys) {
                proptest::prop_assert!((0.0..=1.0).contains(&p), "{p}");
            }
            if let Some(p) = mann_kendall_down(&ys) {
                proptest::prop_assert!((0.0..=1.0).contains(&p), "{p}");
            }
            let pts: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, y)| (count(i), *y)).collect();
            if let Some(s) = theil_sen(&pts) {
                proptest::prop_assert!(s.is_finite());
            }
        }

        /// The running median is, bit for bit, the median of the values pushed so far,
        /// after every push.
        #[test]
        fn running_median_is_the_median_of_the_values_so_far(
            xs in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::f64::ANY,
                    proptest::sample::select(vec![0.0, -0.0, 1.0, 1.0, 2.5]),
                ],
                0..60,
            ),
        ) {
            let mut running = RunningMedian::default();
            proptest::prop_assert_eq!(running.median(), None);
            for (i, x) in xs.iter().enumerate() {
                running.push(*x);
                proptest::prop_assert_eq!(
                    running.median().map(f64::to_bits),
                    median(&xs[..=i]).map(f64::to_bits)
                );
            }
        }

        /// The median by selection is, bit for bit, the median of the sorted finite values
        /// (ties, signed zeros and non-finite values included).
        #[test]
        fn median_by_selection_is_the_sorted_median(
            xs in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::f64::ANY,
                    proptest::sample::select(vec![0.0, -0.0, 1.0, 1.0, 2.5]),
                ],
                0..40,
            ),
        ) {
            let v = sorted(&xs);
            let want = match v.len() {
                0 => None,
                n if n % 2 == 1 => Some(v[n / 2]),
                n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
            };
            proptest::prop_assert_eq!(median(&xs).map(f64::to_bits), want.map(f64::to_bits));
        }
    }
}
