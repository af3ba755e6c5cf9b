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
        let base_values: Vec<f64> = base.iter().map(|p| p.value).collect();
        let after_values: Vec<f64> = after.iter().map(|p| p.value).collect();
        let baseline = stats::median(&base_values)?;
        let first = after.first()?;
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
fn creep(points: &[DriftPoint], params: &DriftParams) -> Option<DriftFinding> {
    let n = points.len();
    let mut best: Option<(f64, DriftFinding)> = None;
    let lo = params.min_creep.max(3);
    let hi = params.creep_window.min(n);
    if lo > hi {
        return None;
    }
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
        let values = values_of(window);
        let first = window.first()?;
        let last = window.last()?;
        let day = |p: &DriftPoint| stats::days(p.at.saturating_sub(first.at));
        let xy: Vec<(f64, f64)> = window.iter().map(|p| (day(p), p.value)).collect();
        let slope = stats::theil_sen(&xy)?;
        let intercepts: Vec<f64> = xy.iter().map(|(x, y)| y - slope * x).collect();
        let intercept = stats::median(&intercepts)?;
        let baseline = intercept;
        let current = intercept + slope * day(last);
        let change = stats::change_pct(current, baseline)?;
        let thr = threshold_pct(
            &points[n.saturating_sub(w + params.baseline_window)..],
            params,
        );
        // The latest nights themselves must be low (a dip in the window's middle is no creep).
        let recent: Vec<f64> = values.iter().rev().take(3).copied().collect();
        let recent_low = stats::median(&recent)
            .and_then(|r| stats::change_pct(r, baseline))
            .is_some_and(|c| -c > thr);
        if slope >= 0.0 || -change <= thr || !recent_low {
            continue;
        }
        let rel_slope = slope / baseline;
        if best.as_ref().is_none_or(|(s, _)| rel_slope < *s) {
            best = Some((
                rel_slope,
                DriftFinding {
                    kind: DriftKind::Creep,
                    began_at: first.at,
                    began_run_id: first.run_id.clone(),
                    baseline,
                    current,
                    change_pct: change,
                    p_value,
                    threshold_pct: thr,
                    significant: true,
                    run_id: last.run_id.clone(),
                },
            ));
        }
    }
    best.map(|(_, f)| f)
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
