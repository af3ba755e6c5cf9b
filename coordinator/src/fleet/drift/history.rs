//! A board's drift history kept between its results: the nights the drift check after each
//! result reads ([`super::DriftNight`], both frameworks', with the facts its group key is
//! made of), so that a new result adds one night instead of reading and decoding the
//! board's 120 days again.
//!
//! It is exact, not a guess: the store never deletes nor changes a stored run, so a history
//! read from the store (every run of the board measured from `since` on) and then given
//! only runs read from the store is a subset of the store's runs in its window; when the
//! store counts as many runs in that window, the two are the same. The caller
//! (`server/reports.rs`) counts, adds the one new run when the count is one more, and reads
//! the whole window again otherwise.

use std::sync::Arc;

use super::night::{board_series, sort_series};
use super::{DriftNight, DriftParams, DriftSeries};
use crate::fleet::group::{fingerprint, merged_facts};
use crate::fleet::headline::Indexed;
use crate::fleet::rows::{BoardFacts, FleetRows};
use crate::model::Millis;

/// One kept night with what the board's group key needs of it.
#[derive(Debug, Clone)]
struct KeptNight {
    framework: Arc<str>,
    facts: Arc<BoardFacts>,
    night: DriftNight,
}

/// Why a run could not be added to a history: read the window again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdded {
    /// The rows hold no run of this board in the window.
    Missing,
    /// A kept night has the same time: the store's order of the two (by run id, in the
    /// database's collation) decides where it goes.
    SameTime,
}

/// One board's nights from `since` on, oldest first (the store's order: by time, then run
/// id), both frameworks'.
#[derive(Debug, Clone)]
pub struct BoardHistory {
    agent_id: String,
    since: Millis,
    nights: Vec<KeptNight>,
}

impl BoardHistory {
    /// The history of `agent_id` from its rows read from `since` on, in the store's order
    /// (rows of other boards, or measured before `since`, are left out).
    pub fn new(agent_id: &str, since: Millis, rows: &FleetRows) -> BoardHistory {
        let idx = Indexed::new(rows);
        let mut nights: Vec<KeptNight> = Vec::with_capacity(rows.runs.len());
        for run in rows
            .runs
            .iter()
            .filter(|r| r.agent_id == agent_id && r.started_at >= since)
        {
            let kept = kept_night(run, idx.figures_of(&run.run_id), nights.last());
            nights.push(kept);
        }
        BoardHistory {
            agent_id: agent_id.to_string(),
            since,
            nights,
        }
    }

    /// Whether it holds the window that starts at `since` (it was read from then or
    /// earlier): a clock set back asks for nights it never read.
    pub fn covers(&self, since: Millis) -> bool {
        self.since <= since
    }

    /// Drops the nights before `since` (the window moved on).
    pub fn expire(&mut self, since: Millis) {
        if since > self.since {
            self.nights.retain(|n| n.night.at >= since);
            self.since = since;
        }
    }

    /// Its nights.
    pub fn len(&self) -> usize {
        self.nights.len()
    }

    /// Whether it has no night.
    pub fn is_empty(&self) -> bool {
        self.nights.is_empty()
    }

    /// Whether it holds `run_id`'s night (the latest first: a new run is usually there).
    pub fn contains(&self, run_id: &str) -> bool {
        self.nights.iter().rev().any(|n| &*n.night.run_id == run_id)
    }

    /// Adds the one run of this board in `rows` (read from the store by its run id) in its
    /// place by time. Nothing changes when it cannot be placed exactly ([`NotAdded`]).
    pub fn add(&mut self, rows: &FleetRows) -> Result<(), NotAdded> {
        let idx = Indexed::new(rows);
        let run = rows
            .runs
            .iter()
            .find(|r| r.agent_id == self.agent_id && r.started_at >= self.since)
            .ok_or(NotAdded::Missing)?;
        if self.nights.iter().any(|n| n.night.at == run.started_at) {
            return Err(NotAdded::SameTime);
        }
        let at = self.nights.partition_point(|n| n.night.at < run.started_at);
        let before = at.checked_sub(1).and_then(|i| self.nights.get(i));
        let kept = kept_night(run, idx.figures_of(&run.run_id), before);
        self.nights.insert(at, kept);
        Ok(())
    }

    /// The series of its `framework` nights, in the board's group (its key made of every
    /// night's facts, both frameworks'): what [`super::series`] makes of the same rows.
    pub fn series(&self, framework: &str, params: &DriftParams) -> Vec<DriftSeries> {
        let facts: Vec<(&str, &BoardFacts)> = self
            .nights
            .iter()
            .map(|n| (&*n.framework, &*n.facts))
            .collect();
        if facts.is_empty() {
            return Vec::new();
        }
        let key = fingerprint(&merged_facts(&facts));
        let nights = self
            .nights
            .iter()
            .filter(|n| &*n.framework == framework)
            .map(|n| &n.night);
        let mut out = board_series(&key, &self.agent_id, framework, nights, params);
        sort_series(&mut out);
        out
    }
}

/// The kept night of `run`, sharing the texts and facts of the night before it.
fn kept_night(
    run: &crate::fleet::rows::FleetRun,
    figures: &[&crate::fleet::rows::FleetFigure],
    before: Option<&KeptNight>,
) -> KeptNight {
    let framework = match before {
        Some(b) if *b.framework == *run.framework => b.framework.clone(),
        _ => Arc::from(run.framework.as_str()),
    };
    let facts = match before {
        Some(b) if *b.facts == run.facts => b.facts.clone(),
        _ => Arc::new(run.facts.clone()),
    };
    KeptNight {
        framework,
        facts,
        night: DriftNight::of(run, figures, before.map(|b| &b.night)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::drift::series;
    use crate::fleet::fixtures::{gemm, night, rows, run, triad};
    use crate::fleet::group::group_boards;
    use crate::fleet::rows::{FleetFigure, FleetRun};
    use crate::fleet::FleetRows;

    /// Board `a`'s run of night `n` and framework `fw` (a step down from night `step`, a new
    /// BLAS from night `env`), with a sibling `b`'s run beside it.
    fn night_rows(n: i64, fw: &str, value: f64, env: bool) -> Vec<(FleetRun, Vec<FleetFigure>)> {
        ["a", "b"]
            .iter()
            .map(|agent| {
                let id = format!("{agent}-{fw}-{n}");
                // PyTorch runs after NumPy, as a compare campaign runs them.
                let at = night(n) + if fw == "pytorch" { 3_600_000 } else { 0 };
                let mut r = run(&id, &format!("c{n}"), agent, fw, at, "EPYC");
                if env {
                    r.env_key = Some("env-2".into());
                    r.facts.blas = r.facts.blas.map(|_| "OpenBLAS 0.3.26".into());
                }
                let figures = vec![
                    gemm(&id, "fp32", 64, value),
                    gemm(&id, "fp64", 64, value / 2.0),
                    triad(&id, 64, value / 10.0),
                ];
                (r, figures)
            })
            .collect()
    }

    /// Board `a`'s series of `fw` as the drift report makes them of the window's rows.
    fn reported(all: &FleetRows, since: i64, fw: &str) -> Vec<DriftSeries> {
        let mut window = FleetRows {
            runs: all
                .runs
                .iter()
                .filter(|r| r.agent_id == "a" && r.started_at >= since)
                .cloned()
                .collect(),
            figures: all.figures.clone(),
        };
        let groups = group_boards(&window.runs);
        window.runs.retain(|r| r.framework == fw);
        series(&window, &groups, &DriftParams::default())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// A history given one run at a time, its window moving on, makes the series the
        /// report makes of the same window read whole: a step, a new environment (a new
        /// group key: the facts of both frameworks), nights of one framework only.
        #[test]
        fn a_history_grown_night_by_night_makes_the_series_of_the_window_read_whole(
            nights in 20i64..70,
            step in 5i64..80,
            env in 5i64..80,
            window_days in 10i64..40,
            torch_every in 1i64..4,
            seed in 0u64..1000,
        ) {
            let mut all = FleetRows::default();
            let mut kept: Option<BoardHistory> = None;
            let mut x = seed;
            for n in 0..nights {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let noise = 1.0 + (f64::from(u32::try_from(x >> 40).unwrap()) / f64::from(1u32 << 24) - 0.5) / 50.0;
                let value = if n >= step { 80.0 } else { 100.0 } * noise;
                let since = night(n) - window_days * crate::fleet::report::DAY_MS;
                for fw in ["numpy", "pytorch"] {
                    if fw == "pytorch" && n % torch_every != 0 {
                        continue;
                    }
                    let f = if fw == "pytorch" { 1.3 } else { 1.0 };
                    let new = rows(night_rows(n, fw, value * f, n >= env));
                    all.runs.extend(new.runs.iter().cloned());
                    all.figures.extend(new.figures.iter().cloned());
                    let r = new.runs.iter().find(|r| r.agent_id == "a").unwrap();
                    let mut h = match kept.take() {
                        Some(mut h) => {
                            h.expire(since);
                            proptest::prop_assert!(!h.contains(&r.run_id));
                            proptest::prop_assert_eq!(h.add(&new), Ok(()));
                            proptest::prop_assert!(h.contains(&r.run_id));
                            h
                        }
                        None => BoardHistory::new("a", since, &all),
                    };
                    let want = reported(&all, since, fw);
                    proptest::prop_assert_eq!(h.series(fw, &DriftParams::default()), want);
                    proptest::prop_assert_eq!(
                        h.len(),
                        all.runs.iter().filter(|x| x.agent_id == "a" && x.started_at >= since).count()
                    );
                    h.expire(since);
                    kept = Some(h);
                }
            }
        }
    }

    #[test]
    fn a_run_of_another_board_or_at_a_kept_time_is_not_added() {
        let all = rows(night_rows(0, "numpy", 100.0, false));
        let mut h = BoardHistory::new("a", night(0), &all);
        assert_eq!(h.len(), 1);
        let b_only = FleetRows {
            runs: all
                .runs
                .iter()
                .filter(|r| r.agent_id == "b")
                .cloned()
                .collect(),
            figures: all.figures.clone(),
        };
        assert_eq!(h.add(&b_only), Err(NotAdded::Missing));
        // Another run at the very time of a kept night: the store's order decides.
        let mut same = rows(night_rows(0, "numpy", 130.0, false));
        for r in &mut same.runs {
            r.run_id.push_str("-again");
        }
        assert_eq!(h.add(&same), Err(NotAdded::SameTime));
        assert_eq!(h.len(), 1, "nothing changed");
        let early = FleetRows {
            runs: rows(night_rows(-1, "numpy", 1.0, false)).runs,
            figures: Vec::new(),
        };
        assert_eq!(h.add(&early), Err(NotAdded::Missing), "before its window");
        assert!(h.covers(night(0)) && !h.covers(night(-1)));
    }
}
