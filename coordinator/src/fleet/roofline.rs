//! Roofline per board group: the compute roof per precision and the bandwidth roof from the
//! measured figures, with each board's points (arithmetic intensity, rate).

use std::collections::BTreeMap;

use fleetcal_proto::{Operation, Precision};
use serde::{Deserialize, Serialize};

use super::group::{BoardGroup, Groups};
use super::headline::{self, headlines, Indexed};
use super::rows::{FleetFigure, FleetRows};
use super::stats;
use crate::model::Millis;

/// A compute roof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeRoof {
    /// Precision name.
    pub precision: String,
    /// `GFLOPS` or `GIOPS`.
    pub unit: String,
    /// The roof: the group's median of its boards' peaks (latest result per board).
    pub gops: f64,
    /// The best board's peak.
    pub best_gops: f64,
    /// The theoretical peak, when known (median over the boards).
    pub theoretical: Option<f64>,
    /// The runs the peaks came from.
    pub run_ids: Vec<String>,
}

/// One measured figure of one board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RooflinePoint {
    /// The board.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// `numpy` or `pytorch`.
    pub framework: String,
    /// Operation name.
    pub operation: String,
    /// Precision name.
    pub precision: String,
    /// Problem size.
    pub size: i64,
    /// FLOPs (or integer operations) per byte moved.
    pub intensity: f64,
    /// The best rate in GFLOPS/GIOPS.
    pub gops: f64,
    /// The run.
    pub run_id: String,
}

/// One group's roofline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRoofline {
    /// The board group.
    pub group_key: String,
    /// The bandwidth roof in GB/s: the group's median of its boards' STREAM bandwidth.
    pub bandwidth_gbps: Option<f64>,
    /// The runs the bandwidths came from.
    pub bandwidth_run_ids: Vec<String>,
    /// The compute roofs, by precision.
    pub compute: Vec<ComputeRoof>,
    /// Each board's BLAS points: per operation and precision, its best figure (of the sizes
    /// measured, the one nearest the roof).
    pub points: Vec<RooflinePoint>,
}

/// The roofline report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RooflineReport {
    /// When it was computed.
    pub generated_at: Millis,
    /// The groups it covers (key, facts, members).
    pub groups: Vec<BoardGroup>,
    /// One roofline per group, by key.
    pub rooflines: Vec<GroupRoofline>,
}

/// FLOPs per byte moved of a BLAS figure (`None` for STREAM, unknown names or sizes).
pub fn intensity(f: &FleetFigure) -> Option<f64> {
    let op: Operation = f.operation.parse().ok()?;
    let precision: Precision = f.precision.parse().ok()?;
    if op.is_stream() {
        return None;
    }
    let n = u64::try_from(f.size).ok().filter(|n| *n > 0)?;
    let item = u32::try_from(precision.item_size()).ok()?;
    let bytes = op.elements_moved(n) * f64::from(item);
    let i = op.flops(n) / bytes;
    (i.is_finite() && i > 0.0).then_some(i)
}

/// A board's peak at one precision: (GFLOPS, run id, theoretical).
type BoardPeak = (f64, String, Option<f64>);

#[derive(Default)]
struct Acc {
    bandwidth: BTreeMap<String, (f64, String)>,
    /// (precision rank, precision) → agent → (peak, run id, theoretical).
    peaks: BTreeMap<(usize, String), BTreeMap<String, BoardPeak>>,
    points: Vec<RooflinePoint>,
}

/// The roofline report of some rows at `now`: each board's latest result per framework; a
/// board's roof figure is the better of its frameworks.
pub fn roofline(rows: &FleetRows, groups: &Groups, now: Millis) -> RooflineReport {
    let idx = Indexed::new(rows);
    let mut by_group: BTreeMap<&str, Acc> = BTreeMap::new();
    for ((agent, framework), run) in idx.latest() {
        let Some(group) = groups.key_of(agent) else {
            continue;
        };
        let acc = by_group.entry(group).or_default();
        let figs = idx.figures_of(&run.run_id);
        for h in headlines(run, figs) {
            match &h.precision {
                None => {
                    let slot = acc
                        .bandwidth
                        .entry(agent.to_string())
                        .or_insert((0.0, String::new()));
                    if h.value > slot.0 {
                        *slot = (h.value, run.run_id.clone());
                    }
                }
                Some(p) => {
                    let slot = acc
                        .peaks
                        .entry((headline::precision_rank(p), p.clone()))
                        .or_default()
                        .entry(agent.to_string())
                        .or_insert((0.0, String::new(), None));
                    if h.value > slot.0 {
                        *slot = (h.value, run.run_id.clone(), h.theoretical());
                    }
                }
            }
        }
        for f in headline::best_blas(figs.iter().copied()) {
            let (Some(i), Some((gops, _))) = (intensity(f), headline::rates(f)) else {
                continue;
            };
            acc.points.push(RooflinePoint {
                agent_id: agent.to_string(),
                hostname: run.hostname.clone(),
                framework: framework.to_string(),
                operation: f.operation.clone(),
                precision: f.precision.clone(),
                size: f.size,
                intensity: i,
                gops,
                run_id: run.run_id.clone(),
            });
        }
    }
    let rooflines = by_group
        .into_iter()
        .map(|(group, acc)| {
            let bw: Vec<f64> = acc.bandwidth.values().map(|(v, _)| *v).collect();
            let mut bandwidth_run_ids: Vec<String> =
                acc.bandwidth.values().map(|(_, r)| r.clone()).collect();
            bandwidth_run_ids.sort();
            let compute = acc
                .peaks
                .into_iter()
                .filter_map(|((_, precision), boards)| {
                    let values: Vec<f64> = boards.values().map(|(v, _, _)| *v).collect();
                    let theo: Vec<f64> = boards.values().filter_map(|(_, _, t)| *t).collect();
                    let mut run_ids: Vec<String> =
                        boards.values().map(|(_, r, _)| r.clone()).collect();
                    run_ids.sort();
                    Some(ComputeRoof {
                        unit: headline::rate_unit(&precision).to_string(),
                        gops: stats::median(&values)?,
                        best_gops: stats::min_max(&values)?.1,
                        theoretical: stats::median(&theo),
                        run_ids,
                        precision,
                    })
                })
                .collect();
            let mut points = acc.points;
            points.sort_by(|a, b| {
                (
                    &a.hostname,
                    &a.framework,
                    headline::precision_rank(&a.precision),
                    headline::operation_rank(&a.operation),
                    a.size,
                )
                    .cmp(&(
                        &b.hostname,
                        &b.framework,
                        headline::precision_rank(&b.precision),
                        headline::operation_rank(&b.operation),
                        b.size,
                    ))
            });
            GroupRoofline {
                group_key: group.to_string(),
                bandwidth_gbps: stats::median(&bw),
                bandwidth_run_ids,
                compute,
                points,
            }
        })
        .collect();
    RooflineReport {
        generated_at: now,
        groups: groups.groups.clone(),
        rooflines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::fixtures::{gemm, night, rows, run, triad};
    use crate::fleet::group::group_boards;

    #[test]
    fn roofs_are_the_group_medians_and_points_carry_their_intensity() {
        let mut items = Vec::new();
        for (agent, peak, bw) in [("a", 100.0, 20.0), ("b", 120.0, 22.0), ("c", 110.0, 30.0)] {
            let id = format!("{agent}-np");
            items.push((
                run(&id, "c1", agent, "numpy", night(1), "EPYC"),
                vec![
                    gemm(&id, "fp64", 1000, peak),
                    gemm(&id, "fp64", 100, peak / 4.0),
                    triad(&id, 64, bw),
                ],
            ));
        }
        // PyTorch is faster on a, slower on b and c: a board's roof is its better framework.
        for (agent, peak) in [("a", 130.0), ("b", 50.0), ("c", 50.0)] {
            let id = format!("{agent}-pt");
            items.push((
                run(&id, "c1", agent, "pytorch", night(1), "EPYC"),
                vec![gemm(&id, "fp64", 1000, peak)],
            ));
        }
        let rows = rows(items);
        let r = roofline(&rows, &group_boards(&rows.runs), 3);
        assert_eq!(r.rooflines.len(), 1);
        let g = &r.rooflines[0];
        assert_eq!(g.bandwidth_gbps, Some(22.0));
        assert_eq!(g.bandwidth_run_ids, ["a-np", "b-np", "c-np"]);
        let fp64 = &g.compute[0];
        assert_eq!(
            (fp64.precision.as_str(), fp64.unit.as_str()),
            ("fp64", "GFLOPS")
        );
        assert_eq!((fp64.gops, fp64.best_gops), (120.0, 130.0));
        assert_eq!(fp64.theoretical, Some(200.0));
        assert_eq!(fp64.run_ids, ["a-pt", "b-np", "c-np"]);
        // GEMM n = 1000 in fp64: 2n³ FLOPs over 3n² × 8 bytes.
        let p = g
            .points
            .iter()
            .find(|p| p.run_id == "b-np" && p.size == 1000)
            .unwrap();
        assert!(
            (p.intensity - 2000.0 / 24.0).abs() < 1e-9,
            "{}",
            p.intensity
        );
        // One point per board, framework, operation and precision: its best size.
        assert_eq!(g.points.len(), 6);
        assert!(g
            .points
            .iter()
            .all(|p| p.operation == "gemm" && p.size == 1000));
    }
}
