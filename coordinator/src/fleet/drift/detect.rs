//! The drift tests on one series' points: baseline periods, the board's own noise threshold,
//! and the statistical tests for a step (Mann–Whitney U) and a creep (Mann–Kendall with a
//! Theil–Sen slope).

use super::{DriftFinding, DriftKind, DriftParams, DriftPeriod, DriftPoint};
use crate::fleet::stats;

/// Splits points (oldest first) into baseline periods where the environment key changes
/// (a point without a key stays in the current period).
pub fn periods(points: &[DriftPoint]) -> Vec<DriftPeriod> {
    let mut out: Vec<DriftPeriod> = Vec::new();
    for p in points {
        let starts = match out.last() {
            None => true,
            Some(cur) => p.env_key.is_some() && cur.env_key.is_some() && p.env_key != cur.env_key,
        };
        if starts {
            out.push(DriftPeriod {
                start_at: p.at,
                start_run_id: p.run_id.clone(),
                env_key: p.env_key.clone(),
                previous_env_key: out.last().and_then(|c| c.env_key.clone()),
                nights: 1,
            });
        } else if let Some(cur) = out.last_mut() {
            cur.nights = cur.nights.saturating_add(1);
            if cur.env_key.is_none() {
                cur.env_key = p.env_key.clone();
            }
        }
    }
    out
}

/// The board's noise a change must exceed, in percent, from some nights: the largest of
/// the minimum change, the median noise floor, `cv_factor` × the median trial CV and
/// `spread_factor` × the night-to-night spread (the robust standard deviation of the
/// differences between consecutive nights ÷ √2, which a slow trend does not inflate), at
/// most `max_threshold_pct`.
pub fn threshold_pct(points: &[DriftPoint], params: &DriftParams) -> f64 {
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    let floor: Vec<f64> = points.iter().filter_map(|p| p.noise_floor_pct).collect();
    let cvs: Vec<f64> = points.iter().filter_map(|p| p.cv_pct).collect();
    let diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let spread_pct = match (stats::mad(&diffs), stats::median(&values)) {
        (Some(m), Some(med)) if med > 0.0 => {
            stats::MAD_SCALE * m / std::f64::consts::SQRT_2 / med * 100.0
        }
        _ => 0.0,
    };
    [
        params.min_change_pct,
        stats::median(&floor).unwrap_or(0.0),
        params.cv_factor * stats::median(&cvs).unwrap_or(0.0),
        params.spread_factor * spread_pct,
    ]
    .into_iter()
    .filter(|x| x.is_finite())
    .fold(0.0, f64::max)
    .min(params.max_threshold_pct.max(params.min_change_pct))
}

/// A step at the end of one period's points: the longest run of the latest nights (at most
/// `max_after`) that starts with a night below the baseline by more than the threshold,
/// whose median is below it too and none of which is above half of it; significant when
/// the Mann–Whitney U test against the baseline nights says so.
fn step(points: &[DriftPoint], params: &DriftParams) -> Option<DriftFinding> {
    let n = points.len();
    for m in (1..=params.max_after.min(n)).rev() {
        let Some(split) = n.checked_sub(m).filter(|s| *s >= params.min_baseline) else {
            continue;
        };
        let before = points.get(..split)?;
        let base = before.get(split.saturating_sub(params.baseline_window)..)?;
        let after = points.get(split..)?;
        let first = after.first()?;
        // No baseline is above its highest night: a first night not below that by the
        // least change starts no step (most nights; no median needed to tell).
        let highest = base
            .iter()
            .map(|p| p.value)
            .fold(f64::NEG_INFINITY, f64::max);
        let keep = 1.0 - params.min_change_pct / 100.0;
        if highest.is_finite() && (0.0..=1.0).contains(&keep) && first.value >= highest * keep {
            continue;
        }
        let base_values: Vec<f64> = base.iter().map(|p| p.value).collect();
        let after_values: Vec<f64> = after.iter().map(|p| p.value).collect();
        let baseline = stats::median(&base_values)?;
        let current = stats::median(&after_values)?;
        let no_step = |thr: f64| {
            let limit = baseline * (1.0 - thr / 100.0);
            let half = baseline * (1.0 - thr / 200.0);
            first.value >= limit || current >= limit || after_values.iter().any(|v| *v > half)
        };
        // The threshold is at least `min_change_pct`: nights that are no step against that
        // are none against the board's own (cheaper to tell, and most nights are).
        if no_step(params.min_change_pct) {
            continue;
        }
        let thr = threshold_pct(base, params);
        if no_step(thr) {
            continue;
        }
        let p_value = stats::mann_whitney_less(&base_values, &after_values)?;
        return Some(DriftFinding {
            kind: DriftKind::Step,
            began_at: first.at,
            began_run_id: first.run_id.clone(),
            baseline,
            current,
            change_pct: stats::change_pct(current, baseline)?,
            p_value,
            threshold_pct: thr,
            significant: p_value < params.step_alpha,
            run_id: points.last()?.run_id.clone(),
        });
    }
    None
}

/// A creep at the end of one period's points: of the windows of the latest `min_creep` to
/// `creep_window` nights whose Mann–Kendall test finds a downward trend and whose Theil–Sen
/// line falls by more than the threshold (the noise of the window and the baseline window
/// of nights before it), as do its latest three nights, the steepest.
///
/// Each window is the one before and one night earlier, so its Mann–Kendall S and its pairs'
/// slopes are the last window's and that night's (O(w) each, the slopes' median kept as they
/// come): a month of 1,000 boards tested every window's pairs anew, ~half of the drift report.
fn creep(points: &[DriftPoint], params: &DriftParams) -> Option<DriftFinding> {
    let n = points.len();
    let mut best: Option<(f64, DriftFinding)> = None;
    let lo = params.min_creep.max(3);
    let hi = params.creep_window.min(n);
    if lo > hi {
        return None;
    }
    // Each night's day, from the longest window's first night (a line through them is the
    // same line whatever night its days count from).
    let origin = points.get(n - hi)?.at;
    let xs: Vec<f64> = points
        .iter()
        .map(|p| stats::days(p.at.saturating_sub(origin)))
        .collect();
    // The slopes of every pair of the latest `paired` nights.
    let mut slopes = stats::RunningMedian::default();
    let mut paired = 0;
    // The last threshold and the night its nights began at.
    let mut thr_of: Option<(usize, f64)> = None;
    // S of the shortest window, then one point earlier at a time (O(w) each).
    let mut s = stats::mann_kendall_s(&values_of(points.get(n - lo..)?));
    for w in lo..=hi {
        let window = points.get(n - w..)?;
        if w > lo {
            let v0 = window.first()?.value;
            s += window
                .iter()
                .skip(1)
                .map(|p| stats::sign(p.value - v0))
                .sum::<i64>();
        }
        let p_value = stats::mann_kendall_p(s, stats::mann_kendall_var(w));
        if p_value >= params.creep_alpha {
            continue;
        }
        // The pairs of the nights not paired yet (the earliest last), each with every
        // later night.
        for k in (n - w..n - paired).rev() {
            let (xk, yk) = (*xs.get(k)?, points.get(k)?.value);
            for j in k + 1..n {
                let dx = xs.get(j)? - xk;
                if dx != 0.0 {
                    slopes.push((points.get(j)?.value - yk) / dx);
                }
            }
        }
        paired = w;
        let slope = slopes.median()?;
        let wx = xs.get(n - w..)?;
        let intercepts: Vec<f64> = window
            .iter()
            .zip(wx)
            .map(|(p, x)| p.value - slope * x)
            .collect();
        let intercept = stats::median(&intercepts)?;
        let first = window.first()?;
        let last = window.last()?;
        // The line at the window's first and latest night.
        let baseline = intercept + slope * wx.first()?;
        let current = intercept + slope * wx.last()?;
        let change = stats::change_pct(current, baseline)?;
        // The latest nights themselves must be low (a dip in the window's middle is no creep).
        let recent: Vec<f64> = window.iter().rev().take(3).map(|p| p.value).collect();
        let recent_change = stats::median(&recent).and_then(|r| stats::change_pct(r, baseline));
        // The threshold is at least `min_change_pct`: a window that falls less than that
        // falls less than the board's own noise (cheaper to tell, and most windows do).
        let below =
            |thr: f64| slope < 0.0 && -change > thr && recent_change.is_some_and(|c| -c > thr);
        if !below(params.min_change_pct) {
            continue;
        }
        // The noise of the window and the baseline window before it: the same nights for
        // every window once they reach back to the period's first night.
        let from = n.saturating_sub(w + params.baseline_window);
        let thr = match thr_of {
            Some((at, thr)) if at == from => thr,
            _ => threshold_pct(points.get(from..)?, params),
        };
        thr_of = Some((from, thr));
        if !below(thr) {
            continue;
        }
        let rel_slope = slope / baseline;
        if best.as_ref().is_none_or(|(s, _)| rel_slope < *s) {
            let line = (baseline, current, change);
            best = Some((rel_slope, creep_finding(first, last, line, p_value, thr)));
        }
    }
    best.map(|(_, f)| f)
}

/// A creep from the window's `first` to its `last` night: its line's (baseline, current,
/// change in percent), its Mann–Kendall p and the threshold it fell by more than.
fn creep_finding(
    first: &DriftPoint,
    last: &DriftPoint,
    (baseline, current, change_pct): (f64, f64, f64),
    p_value: f64,
    threshold_pct: f64,
) -> DriftFinding {
    DriftFinding {
        kind: DriftKind::Creep,
        began_at: first.at,
        began_run_id: first.run_id.clone(),
        baseline,
        current,
        change_pct,
        p_value,
        threshold_pct,
        significant: true,
        run_id: last.run_id.clone(),
    }
}

fn values_of(points: &[DriftPoint]) -> Vec<f64> {
    points.iter().map(|p| p.value).collect()
}

/// What the test finds at the end of one period's points (oldest first): a significant
/// step, else a creep (always significant), else a suspected step (one low night; the
/// test needs more).
pub fn evaluate(points: &[DriftPoint], params: &DriftParams) -> Option<DriftFinding> {
    let step = step(points, params);
    if let Some(s) = step.as_ref().filter(|s| s.significant) {
        return Some(s.clone());
    }
    creep(points, params).or(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::fixtures::night;

    /// The creep test as it was first written: each window's Theil–Sen line from all its
    /// pairs anew, its days counted from its own first night (the oracle of [`creep`]).
    fn creep_window_by_window(points: &[DriftPoint], params: &DriftParams) -> Option<DriftFinding> {
        let n = points.len();
        let mut best: Option<(f64, DriftFinding)> = None;
        for w in params.min_creep.max(3)..=params.creep_window.min(n) {
            let window = &points[n - w..];
            let values = values_of(window);
            let s = stats::mann_kendall_s(&values);
            let p_value = stats::mann_kendall_p(s, stats::mann_kendall_var(w));
            if p_value >= params.creep_alpha {
                continue;
            }
            let (first, last) = (window.first()?, window.last()?);
            let day = |p: &DriftPoint| stats::days(p.at - first.at);
            let xy: Vec<(f64, f64)> = window.iter().map(|p| (day(p), p.value)).collect();
            let slope = stats::theil_sen(&xy)?;
            let intercepts: Vec<f64> = xy.iter().map(|(x, y)| y - slope * x).collect();
            let baseline = stats::median(&intercepts)?;
            let current = baseline + slope * day(last);
            let change = stats::change_pct(current, baseline)?;
            let thr = threshold_pct(
                &points[n.saturating_sub(w + params.baseline_window)..],
                params,
            );
            let recent: Vec<f64> = values.iter().rev().take(3).copied().collect();
            let recent_low = stats::median(&recent)
                .and_then(|r| stats::change_pct(r, baseline))
                .is_some_and(|c| -c > thr);
            if slope >= 0.0 || -change <= thr || !recent_low {
                continue;
            }
            let rel = slope / baseline;
            if best.as_ref().is_none_or(|(s, _)| rel < *s) {
                let line = (baseline, current, change);
                best = Some((rel, creep_finding(first, last, line, p_value, thr)));
            }
        }
        best.map(|(_, f)| f)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The creep test with each window's pairs added to the last window's finds what
        /// testing each window's pairs anew finds: no creep, or the same window with the
        /// same line (to rounding), on series that creep, step, hold or jump about, some
        /// nights measured twice.
        #[test]
        fn the_incremental_creep_test_finds_what_each_window_anew_finds(
            nights in 10usize..80,
            slope_pct in -1.5..0.5f64,
            noise_pct in 0.0..6.0f64,
            step_at in proptest::option::of(0usize..80),
            twice in proptest::collection::vec(proptest::bool::weighted(0.15), 80),
            seed in 0u64..1_000_000,
        ) {
            let mut state = seed;
            let mut unit = move || {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                f64::from(u32::try_from(state >> 40).unwrap()) / f64::from(1u32 << 24)
            };
            let mut points = Vec::new();
            for (i, twice) in twice.iter().enumerate().take(nights) {
                let runs = if *twice { 2 } else { 1 };
                for r in 0..runs {
                    let trend = 1.0 + slope_pct / 100.0 * stats::count(i);
                    let step = if step_at.is_some_and(|s| i >= s) { 0.8 } else { 1.0 };
                    let noise = 1.0 + noise_pct / 100.0 * (unit() - 0.5);
                    let n = i64::try_from(i).unwrap();
                    points.push(DriftPoint {
                        run_id: format!("r{i}-{r}").into(),
                        campaign_id: format!("c{i}").into(),
                        at: night(n) + i64::from(r) * 3 * 3_600_000,
                        value: 100.0 * trend * step * noise,
                        cv_pct: Some(unit() * 3.0),
                        noise_floor_pct: Some(1.0),
                        env_key: None,
                    });
                }
            }
            let params = DriftParams::default();
            let (got, want) = (creep(&points, &params), creep_window_by_window(&points, &params));
            match (&got, &want) {
                (None, None) => {}
                (Some(g), Some(w)) => {
                    proptest::prop_assert_eq!(&g.began_run_id, &w.began_run_id);
                    proptest::prop_assert!(close(g.baseline, w.baseline), "{g:?} {w:?}");
                    proptest::prop_assert!(close(g.current, w.current), "{g:?} {w:?}");
                    proptest::prop_assert!(close(g.change_pct, w.change_pct), "{g:?} {w:?}");
                    proptest::prop_assert_eq!(g.p_value.to_bits(), w.p_value.to_bits());
                    proptest::prop_assert_eq!(g.threshold_pct.to_bits(), w.threshold_pct.to_bits());
                }
                _ => proptest::prop_assert!(false, "incremental {got:?}, window by window {want:?}"),
            }
        }
    }
}
