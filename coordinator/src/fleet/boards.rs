//! Boards vs siblings: each board's headline figures (peak per precision, bandwidth, their
//! efficiency) against its group's median and the theoretical peak; outliers named by a
//! robust rule (the median absolute deviation, not mean ± 2σ) with how far off they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::group::{BoardGroup, Groups};
use super::headline::{self, headlines, Indexed};
use super::rows::{FleetRows, FleetRun};
use super::stats;
use crate::model::Millis;

/// A board is named an outlier when its robust z score is beyond this.
pub const OUTLIER_Z: f64 = 3.5;
/// Fewest boards in a group × figure before outliers are named.
pub const MIN_SIBLINGS: usize = 3;

/// One board × framework × headline figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardFigure {
    /// The board group.
    pub group_key: String,
    /// The board.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// `numpy` or `pytorch`.
    pub framework: String,
    /// The headline figure (`gemm_peak fp32`, `stream_bandwidth`).
    pub figure: String,
    /// `GFLOPS`, `GIOPS` or `GB/s`.
    pub unit: String,
    /// The board's value (its latest result in the window).
    pub value: f64,
    /// Against the theoretical peak, when known.
    pub efficiency: Option<f64>,
    /// The theoretical peak, when known.
    pub theoretical: Option<f64>,
    /// The group's median of this figure (same framework).
    pub group_median: f64,
    /// (value − group median) ÷ group median, in percent.
    pub vs_group_pct: f64,
    /// Robust z score: (value − median) ÷ the robust spread (1.4826 × MAD, at least the
    /// noise floor).
    pub robust_z: f64,
    /// Named an outlier.
    pub outlier: bool,
    /// Boards the group median is over.
    pub group_boards: u32,
    /// The run the value came from.
    pub run_id: String,
    /// When it was measured.
    pub measured_at: Millis,
}

/// The boards report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardsReport {
    /// When it was computed.
    pub generated_at: Millis,
    /// The groups it covers (key, facts, members).
    pub groups: Vec<BoardGroup>,
    /// Every board's headline figures, by group, figure, framework, then host name.
    pub rows: Vec<BoardFigure>,
}

impl BoardsReport {
    /// The outliers.
    pub fn outliers(&self) -> impl Iterator<Item = &BoardFigure> {
        self.rows.iter().filter(|r| r.outlier)
    }
}

/// The robust z score of `value` among `values`, and the median: (value − median) ÷ scale,
/// the scale 1.4826 × MAD but at least `noise_floor_pct` of the median (siblings that agree
/// exactly do not make every small difference an outlier).
pub fn robust_z(value: f64, values: &[f64], noise_floor_pct: f64) -> Option<(f64, f64)> {
    Spread::of(values, noise_floor_pct).map(|s| s.z(value))
}

/// The median and robust scale of a group's values, computed once for all its members (a
/// group of 1,000 boards took 0.55 s when each member sorted the values again).
struct Spread {
    median: f64,
    scale: f64,
}

impl Spread {
    fn of(values: &[f64], noise_floor_pct: f64) -> Option<Spread> {
        let median = stats::median(values)?;
        let mad = stats::mad(values)?;
        let scale = (stats::MAD_SCALE * mad).max(median.abs() * noise_floor_pct.max(0.0) / 100.0);
        Some(Spread { median, scale })
    }

    /// (robust z, median) of `value`.
    fn z(&self, value: f64) -> (f64, f64) {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return (0.0, self.median);
        }
        ((value - self.median) / self.scale, self.median)
    }
}

/// The boards report of some rows at `now`: each board's latest result per framework.
pub fn boards(rows: &FleetRows, groups: &Groups, now: Millis) -> BoardsReport {
    let idx = Indexed::new(rows);
    // (group, figure rank, framework) → [(run, headline)]
    type Key<'a> = (&'a str, (usize, String), &'a str);
    let mut by: BTreeMap<Key, Vec<(&FleetRun, headline::Headline)>> = BTreeMap::new();
    for ((agent, framework), run) in idx.latest() {
        let Some(group) = groups.key_of(agent) else {
            continue;
        };
        for h in headlines(run, idx.figures_of(&run.run_id)) {
            let (rank, figure) = headline::figure_rank(&h.figure);
            by.entry((group, (rank, figure.to_string()), framework))
                .or_default()
                .push((run, h));
        }
    }
    let mut out = Vec::new();
    for ((group, _, framework), mut members) in by {
        members
            .sort_by(|(a, _), (b, _)| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
        let values: Vec<f64> = members.iter().map(|(_, h)| h.value).collect();
        let floor = headline::noise_floor(members.iter().map(|(r, _)| *r));
        let n = members.len();
        let Some(spread) = Spread::of(&values, floor) else {
            continue;
        };
        for (run, h) in &members {
            let (z, median) = spread.z(h.value);
            out.push(BoardFigure {
                group_key: group.to_string(),
                agent_id: run.agent_id.clone(),
                hostname: run.hostname.clone(),
                framework: framework.to_string(),
                figure: h.figure.clone(),
                unit: h.unit.clone(),
                value: h.value,
                efficiency: h.efficiency,
                theoretical: h.theoretical(),
                group_median: median,
                vs_group_pct: stats::change_pct(h.value, median).unwrap_or(0.0),
                robust_z: z,
                outlier: n >= MIN_SIBLINGS && z.abs() > OUTLIER_Z,
                group_boards: u32::try_from(n).unwrap_or(u32::MAX),
                run_id: run.run_id.clone(),
                measured_at: run.started_at,
            });
        }
    }
    BoardsReport {
        generated_at: now,
        groups: groups.groups.clone(),
        rows: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::fixtures::{gemm, night, rows, run, triad};
    use crate::fleet::group::group_boards;

    #[test]
    fn the_board_far_from_its_siblings_is_the_outlier() {
        let peaks = [
            ("a", 100.0),
            ("b", 101.0),
            ("c", 99.0),
            ("d", 100.5),
            ("e", 80.0),
        ];
        let mut items = Vec::new();
        for (agent, v) in peaks {
            // An older, slower night that the latest one replaces.
            let old = format!("{agent}-old");
            items.push((
                run(&old, "c0", agent, "numpy", night(0), "EPYC"),
                vec![gemm(&old, "fp32", 512, 10.0)],
            ));
            let id = format!("{agent}-new");
            items.push((
                run(&id, "c1", agent, "numpy", night(1), "EPYC"),
                vec![gemm(&id, "fp32", 512, v), triad(&id, 64, 20.0)],
            ));
        }
        // A pair of other boards: too few siblings to name one.
        for (agent, v) in [("x", 50.0), ("y", 100.0)] {
            items.push((
                run(agent, "c1", agent, "numpy", night(1), "Other"),
                vec![gemm(agent, "fp32", 512, v)],
            ));
        }
        let rows = rows(items);
        let r = boards(&rows, &group_boards(&rows.runs), 0);
        let outliers: Vec<(&str, &str)> = r
            .outliers()
            .map(|o| (o.agent_id.as_str(), o.figure.as_str()))
            .collect();
        assert_eq!(outliers, [("e", "gemm_peak fp32")]);
        let e = r
            .rows
            .iter()
            .find(|x| x.agent_id == "e" && x.figure == "gemm_peak fp32")
            .unwrap();
        assert_eq!((e.group_median, e.run_id.as_str()), (100.0, "e-new"));
        assert!((e.vs_group_pct + 20.0).abs() < 1e-9);
        assert!(e.robust_z < -OUTLIER_Z, "{}", e.robust_z);
        assert_eq!(e.theoretical, Some(200.0));
        assert_eq!(e.efficiency, Some(0.4));
        let bw = r
            .rows
            .iter()
            .find(|x| x.agent_id == "a" && x.figure == "stream_bandwidth")
            .unwrap();
        assert_eq!((bw.unit.as_str(), bw.outlier), ("GB/s", false));
        assert!(r
            .rows
            .iter()
            .filter(|x| x.agent_id == "x")
            .all(|x| !x.outlier && x.group_boards == 2));
    }

    #[test]
    fn identical_siblings_do_not_make_a_small_difference_an_outlier() {
        let values = [100.0, 100.0, 100.0, 100.0, 98.5];
        // MAD is 0; the 2% noise floor is the scale: 1.5% off is z = -0.75.
        let (z, m) = robust_z(98.5, &values, 2.0).unwrap();
        assert_eq!(m, 100.0);
        assert!((z + 0.75).abs() < 1e-9, "{z}");
    }
}
