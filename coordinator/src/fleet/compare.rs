//! NumPy vs PyTorch: for each board group, operation, precision and size, both frameworks'
//! figures from `compare` runs on the same board in the same campaign (a pair from two
//! campaigns is never compared), the PyTorch/NumPy ratio per board, the group's median ratio
//! and spread, and a headline per group and precision (GEMM peak, STREAM bandwidth): which
//! framework wins and by how much, or "no difference" inside the runs' noise floor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::group::{BoardGroup, Groups};
use super::headline::{self, headlines, Indexed};
use super::rows::{FleetRows, FleetRun};
use super::stats;
use crate::model::Millis;

/// Which framework is faster on a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    /// NumPy (the numpy engine) is faster by more than the noise floor.
    Numpy,
    /// PyTorch is faster by more than the noise floor.
    Pytorch,
    /// The difference is inside the runs' noise floor.
    NoDifference,
}

impl Winner {
    /// The name printed (`numpy`, `pytorch`, `no difference`).
    pub fn as_str(self) -> &'static str {
        match self {
            Winner::Numpy => "numpy",
            Winner::Pytorch => "pytorch",
            Winner::NoDifference => "no difference",
        }
    }
}

/// One board's pair of runs (one campaign): what its [`BoardPair`]s share, said once in the
/// JSON ([`CompareReport::pairs`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRuns {
    /// The board.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// The campaign both runs belong to.
    pub campaign_id: String,
    /// The NumPy run.
    pub numpy_run_id: String,
    /// The PyTorch run.
    pub pytorch_run_id: String,
}

/// One board's pair of figures (one campaign).
///
/// In the JSON a board pair is its board and figures; its host name, campaign and runs are
/// said once per board in [`CompareReport::pairs`] and filled in again when a report is read
/// back. A night of 1,000 boards is ~123,000 board pairs (the bench's quick result has 123
/// rows) of 1,000 boards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardPair {
    /// The board.
    pub agent_id: String,
    /// Its host name (in the JSON: its pair's).
    #[serde(skip)]
    pub hostname: String,
    /// The campaign both runs belong to (in the JSON: its pair's).
    #[serde(skip)]
    pub campaign_id: String,
    /// The NumPy run (in the JSON: its pair's).
    #[serde(skip)]
    pub numpy_run_id: String,
    /// The PyTorch run (in the JSON: its pair's).
    #[serde(skip)]
    pub pytorch_run_id: String,
    /// NumPy's best rate.
    pub numpy_best: f64,
    /// NumPy's median rate, when recorded.
    pub numpy_median: Option<f64>,
    /// PyTorch's best rate.
    pub pytorch_best: f64,
    /// PyTorch's median rate, when recorded.
    pub pytorch_median: Option<f64>,
    /// PyTorch best ÷ NumPy best.
    pub ratio: f64,
}

/// One group × operation × precision × size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// The board group.
    pub group_key: String,
    /// Operation name.
    pub operation: String,
    /// Precision name.
    pub precision: String,
    /// Problem size (matrix order, vector length, or STREAM MiB).
    pub size: i64,
    /// `GFLOPS`, `GIOPS` or `GB/s`.
    pub unit: String,
    /// Median over the boards of NumPy's best.
    pub numpy_best: f64,
    /// Median over the boards of NumPy's median, when recorded.
    pub numpy_median: Option<f64>,
    /// Median over the boards of PyTorch's best.
    pub pytorch_best: f64,
    /// Median over the boards of PyTorch's median, when recorded.
    pub pytorch_median: Option<f64>,
    /// The group's median PyTorch/NumPy ratio.
    pub ratio_median: f64,
    /// Lowest board ratio.
    pub ratio_min: f64,
    /// Highest board ratio.
    pub ratio_max: f64,
    /// Median absolute deviation of the board ratios.
    pub ratio_mad: f64,
    /// Each board's pair.
    pub boards: Vec<BoardPair>,
}

/// The headline of a group and precision (`gemm_peak`) or of its bandwidth
/// (`stream_bandwidth`, precision empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareHeadline {
    /// The board group.
    pub group_key: String,
    /// `gemm_peak` or `stream_bandwidth`.
    pub figure: String,
    /// Precision name (`fp32`); empty for the bandwidth.
    pub precision: String,
    /// `GFLOPS`, `GIOPS` or `GB/s`.
    pub unit: String,
    /// Median over the boards of NumPy's figure.
    pub numpy: f64,
    /// Median over the boards of PyTorch's figure.
    pub pytorch: f64,
    /// The median PyTorch/NumPy ratio over the boards.
    pub ratio_median: f64,
    /// Median absolute deviation of the board ratios.
    pub ratio_mad: f64,
    /// The noise floor a difference must exceed, in percent (the runs' median
    /// `noise_floor_pct`).
    pub noise_floor_pct: f64,
    /// Who wins.
    pub winner: Winner,
    /// By how much the winner is faster, in percent (0 for no difference).
    pub by_pct: f64,
    /// Boards paired.
    pub boards: u32,
    /// The runs the numbers came from.
    pub run_ids: Vec<String>,
}

/// The compare report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CompareReportJson")]
pub struct CompareReport {
    /// When it was computed.
    pub generated_at: Millis,
    /// The groups it covers (key, facts, members).
    pub groups: Vec<BoardGroup>,
    /// Headlines, by group, then figure and precision.
    pub headlines: Vec<CompareHeadline>,
    /// Each paired board's runs, by host name (what its board pairs share).
    pub pairs: Vec<PairRuns>,
    /// Every group × operation × precision × size with a pair.
    pub rows: Vec<CompareRow>,
}

/// A compare report as its JSON holds it: its board pairs without what their runs say.
#[derive(Deserialize)]
struct CompareReportJson {
    generated_at: Millis,
    groups: Vec<BoardGroup>,
    headlines: Vec<CompareHeadline>,
    pairs: Vec<PairRuns>,
    rows: Vec<CompareRow>,
}

impl TryFrom<CompareReportJson> for CompareReport {
    type Error = String;

    /// Each board pair gets its board's host name, campaign and runs back; a board pair of a
    /// board the report's pairs do not list is an error.
    fn try_from(j: CompareReportJson) -> Result<CompareReport, String> {
        let by_agent: std::collections::HashMap<&str, &PairRuns> =
            j.pairs.iter().map(|p| (p.agent_id.as_str(), p)).collect();
        let mut rows = j.rows;
        for row in &mut rows {
            for b in &mut row.boards {
                let runs = by_agent.get(b.agent_id.as_str()).ok_or_else(|| {
                    format!(
                        "compare pair of board {} ({} {} {}): the board is not among the \
                         report's pairs",
                        fleetcal_proto::quote::quoted(&b.agent_id),
                        row.operation,
                        row.precision,
                        row.size
                    )
                })?;
                b.fill(runs);
            }
        }
        Ok(CompareReport {
            generated_at: j.generated_at,
            groups: j.groups,
            headlines: j.headlines,
            pairs: j.pairs,
            rows,
        })
    }
}

impl BoardPair {
    /// The host name, campaign and runs of its board's pair.
    fn fill(&mut self, runs: &PairRuns) {
        self.hostname.clone_from(&runs.hostname);
        self.campaign_id.clone_from(&runs.campaign_id);
        self.numpy_run_id.clone_from(&runs.numpy_run_id);
        self.pytorch_run_id.clone_from(&runs.pytorch_run_id);
    }
}

/// One board's pair of runs: the latest campaign in which it ran both frameworks on one
/// device.
struct Pair<'a> {
    numpy: &'a FleetRun,
    pytorch: &'a FleetRun,
}

/// Each board's pair of runs from its latest campaign with both frameworks (on one device),
/// by agent id. Runs of different campaigns are never paired.
fn pairs<'a>(rows: &'a FleetRows) -> BTreeMap<&'a str, Pair<'a>> {
    // (agent, campaign, device) → (numpy, pytorch), the latest run of each.
    type Both<'a> = (Option<&'a FleetRun>, Option<&'a FleetRun>);
    let mut by_campaign: BTreeMap<(&str, &str, &str), Both> = BTreeMap::new();
    for r in &rows.runs {
        let slot = by_campaign
            .entry((&r.agent_id, &r.campaign_id, &r.device))
            .or_default();
        match r.framework.as_str() {
            "numpy" => slot.0 = Some(r),
            "pytorch" => slot.1 = Some(r),
            _ => {}
        }
    }
    let mut out: BTreeMap<&str, Pair> = BTreeMap::new();
    for ((agent, _, _), (numpy, pytorch)) in by_campaign {
        let (Some(numpy), Some(pytorch)) = (numpy, pytorch) else {
            continue;
        };
        let at = numpy.started_at.max(pytorch.started_at);
        let newer = out
            .get(agent)
            .is_none_or(|p| at >= p.numpy.started_at.max(p.pytorch.started_at));
        if newer {
            out.insert(agent, Pair { numpy, pytorch });
        }
    }
    out
}

/// One headline's values over the boards: (NumPy, PyTorch, their runs).
struct HeadAcc<'a> {
    figure: String,
    precision: String,
    unit: String,
    values: Vec<(f64, f64, &'a FleetRun, &'a FleetRun)>,
}

fn ratio(pytorch: f64, numpy: f64) -> Option<f64> {
    (numpy > 0.0 && pytorch.is_finite())
        .then(|| pytorch / numpy)
        .filter(|r| r.is_finite())
}

/// Who wins by how much, from the median PyTorch/NumPy ratio and the noise floor (%).
pub fn winner(ratio_median: f64, noise_floor_pct: f64) -> (Winner, f64) {
    use fleetcal_proto::stats::{beyond_noise, Faster};
    match beyond_noise(ratio_median, noise_floor_pct) {
        Some((Faster::Second, by)) => (Winner::Pytorch, by),
        Some((Faster::First, by)) => (Winner::Numpy, by),
        None => (Winner::NoDifference, 0.0),
    }
}

/// The compare report of some rows at `now`, over the boards of `groups`.
pub fn compare(rows: &FleetRows, groups: &Groups, now: Millis) -> CompareReport {
    let idx = Indexed::new(rows);
    let pairs = pairs(rows);
    // (group, op rank, op, precision rank, precision, size) → board pairs
    type RowKey = (String, usize, String, usize, String, i64);
    let mut table: BTreeMap<RowKey, Vec<BoardPair>> = BTreeMap::new();
    let mut heads: BTreeMap<(String, (usize, String)), HeadAcc> = BTreeMap::new();
    for (agent, pair) in &pairs {
        let Some(group) = groups.key_of(agent) else {
            continue;
        };
        let np_figs = idx.figures_of(&pair.numpy.run_id);
        let pt_figs = idx.figures_of(&pair.pytorch.run_id);
        let mut np_by: BTreeMap<(&str, &str, i64), (f64, Option<f64>)> = BTreeMap::new();
        for f in np_figs {
            if let Some(r) = headline::rates(f) {
                np_by.insert((&f.operation, &f.precision, f.size), r);
            }
        }
        for f in pt_figs {
            let Some((pt_best, pt_median)) = headline::rates(f) else {
                continue;
            };
            let Some(&(np_best, np_median)) = np_by.get(&(&f.operation, &f.precision, f.size))
            else {
                continue;
            };
            let Some(r) = ratio(pt_best, np_best) else {
                continue;
            };
            table
                .entry((
                    group.to_string(),
                    headline::operation_rank(&f.operation),
                    f.operation.clone(),
                    headline::precision_rank(&f.precision),
                    f.precision.clone(),
                    f.size,
                ))
                .or_default()
                .push(BoardPair {
                    agent_id: agent.to_string(),
                    hostname: pair.pytorch.hostname.clone(),
                    campaign_id: pair.pytorch.campaign_id.clone(),
                    numpy_run_id: pair.numpy.run_id.clone(),
                    pytorch_run_id: pair.pytorch.run_id.clone(),
                    numpy_best: np_best,
                    numpy_median: np_median,
                    pytorch_best: pt_best,
                    pytorch_median: pt_median,
                    ratio: r,
                });
        }
        let np_heads = headlines(pair.numpy, np_figs);
        for h in headlines(pair.pytorch, pt_figs) {
            let Some(n) = np_heads.iter().find(|n| n.figure == h.figure) else {
                continue;
            };
            let (rank, figure) = headline::figure_rank(&h.figure);
            heads
                .entry((group.to_string(), (rank, figure.to_string())))
                .or_insert_with(|| HeadAcc {
                    figure: match h.precision {
                        Some(_) => headline::GEMM_PEAK.to_string(),
                        None => h.figure.clone(),
                    },
                    precision: h.precision.clone().unwrap_or_default(),
                    unit: h.unit.clone(),
                    values: Vec::new(),
                })
                .values
                .push((n.value, h.value, pair.numpy, pair.pytorch));
        }
    }
    let rows_out = table
        .into_iter()
        .filter_map(
            |((group_key, _, operation, _, precision, size), mut boards)| {
                boards.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
                let pick = |f: &dyn Fn(&BoardPair) -> Option<f64>| -> Vec<f64> {
                    boards.iter().filter_map(f).collect()
                };
                let ratios = pick(&|b| Some(b.ratio));
                let (ratio_min, ratio_max) = stats::min_max(&ratios)?;
                Some(CompareRow {
                    unit: headline::unit(&operation, &precision).to_string(),
                    numpy_best: stats::median(&pick(&|b| Some(b.numpy_best)))?,
                    numpy_median: stats::median(&pick(&|b| b.numpy_median)),
                    pytorch_best: stats::median(&pick(&|b| Some(b.pytorch_best)))?,
                    pytorch_median: stats::median(&pick(&|b| b.pytorch_median)),
                    ratio_median: stats::median(&ratios)?,
                    ratio_min,
                    ratio_max,
                    ratio_mad: stats::mad(&ratios)?,
                    group_key,
                    operation,
                    precision,
                    size,
                    boards,
                })
            },
        )
        .collect();
    let headlines_out = heads
        .into_iter()
        .filter_map(|((group_key, _), acc)| {
            let HeadAcc {
                figure,
                precision,
                unit,
                values,
            } = acc;
            let ratios: Vec<f64> = values
                .iter()
                .filter_map(|(n, p, _, _)| ratio(*p, *n))
                .collect();
            let ratio_median = stats::median(&ratios)?;
            let noise_floor_pct =
                headline::noise_floor(values.iter().flat_map(|(_, _, n, p)| [*n, *p]));
            let (winner, by_pct) = winner(ratio_median, noise_floor_pct);
            let mut run_ids: Vec<String> = values
                .iter()
                .flat_map(|(_, _, n, p)| [n.run_id.clone(), p.run_id.clone()])
                .collect();
            run_ids.sort();
            run_ids.dedup();
            Some(CompareHeadline {
                figure,
                precision,
                unit,
                numpy: stats::median(&values.iter().map(|v| v.0).collect::<Vec<_>>())?,
                pytorch: stats::median(&values.iter().map(|v| v.1).collect::<Vec<_>>())?,
                ratio_median,
                ratio_mad: stats::mad(&ratios)?,
                noise_floor_pct,
                winner,
                by_pct,
                boards: u32::try_from(values.len()).unwrap_or(u32::MAX),
                run_ids,
                group_key,
            })
        })
        .collect();
    let mut pairs_out: Vec<PairRuns> = pairs
        .iter()
        .filter(|(agent, _)| groups.key_of(agent).is_some())
        .map(|(agent, pair)| PairRuns {
            agent_id: agent.to_string(),
            hostname: pair.pytorch.hostname.clone(),
            campaign_id: pair.pytorch.campaign_id.clone(),
            numpy_run_id: pair.numpy.run_id.clone(),
            pytorch_run_id: pair.pytorch.run_id.clone(),
        })
        .collect();
    pairs_out.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    CompareReport {
        generated_at: now,
        groups: groups.groups.clone(),
        headlines: headlines_out,
        pairs: pairs_out,
        rows: rows_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::fixtures::{gemm, night, rows, run, triad};
    use crate::fleet::group::group_boards;

    fn pair(
        agent: &str,
        campaign: &str,
        np: f64,
        pt: f64,
        bw: (f64, f64),
    ) -> Vec<(FleetRun, Vec<super::super::rows::FleetFigure>)> {
        let n = format!("{agent}-{campaign}-np");
        let p = format!("{agent}-{campaign}-pt");
        vec![
            (
                run(&n, campaign, agent, "numpy", night(1), "EPYC"),
                vec![gemm(&n, "fp32", 1024, np), triad(&n, 64, bw.0)],
            ),
            (
                run(&p, campaign, agent, "pytorch", night(1) + 1000, "EPYC"),
                vec![gemm(&p, "fp32", 1024, pt), triad(&p, 64, bw.1)],
            ),
        ]
    }

    #[test]
    fn ratios_per_board_group_median_spread_and_headlines() {
        let mut items = pair("a", "c1", 100.0, 150.0, (20.0, 20.2));
        items.extend(pair("b", "c1", 100.0, 140.0, (20.0, 20.1)));
        items.extend(pair("c", "c1", 100.0, 160.0, (20.0, 20.3)));
        let rows = rows(items);
        let g = group_boards(&rows.runs);
        let r = compare(&rows, &g, 7);
        assert_eq!(r.generated_at, 7);
        assert_eq!(r.groups.len(), 1);
        let gemm_row = r.rows.iter().find(|x| x.operation == "gemm").unwrap();
        assert_eq!((gemm_row.precision.as_str(), gemm_row.size), ("fp32", 1024));
        assert_eq!(gemm_row.boards.len(), 3);
        assert!((gemm_row.ratio_median - 1.5).abs() < 1e-12);
        assert!((gemm_row.ratio_min - 1.4).abs() < 1e-12);
        assert!((gemm_row.ratio_max - 1.6).abs() < 1e-12);
        assert!((gemm_row.ratio_mad - 0.1).abs() < 1e-12);
        assert_eq!(gemm_row.numpy_median, Some(98.0));
        let b = &gemm_row.boards[1];
        assert_eq!(
            (b.agent_id.as_str(), b.numpy_run_id.as_str()),
            ("b", "b-c1-np")
        );
        let peak = r
            .headlines
            .iter()
            .find(|h| h.figure == "gemm_peak")
            .unwrap();
        assert_eq!(
            (peak.precision.as_str(), peak.winner),
            ("fp32", Winner::Pytorch)
        );
        assert!((peak.by_pct - 50.0).abs() < 1e-9, "{}", peak.by_pct);
        assert_eq!(peak.run_ids.len(), 6);
        // 1% faster with a 2% noise floor: no difference.
        let bw = r
            .headlines
            .iter()
            .find(|h| h.figure == "stream_bandwidth")
            .unwrap();
        assert_eq!((bw.winner, bw.by_pct), (Winner::NoDifference, 0.0));
        assert_eq!(bw.precision, "");
    }

    #[test]
    fn a_pair_from_two_campaigns_is_never_compared() {
        let mut items = pair("a", "c1", 100.0, 150.0, (20.0, 20.0));
        // Board d: NumPy in c1, PyTorch only in c2.
        let d = pair("d", "c1", 100.0, 300.0, (20.0, 20.0));
        let mut d2 = pair("d", "c2", 100.0, 300.0, (20.0, 20.0));
        items.push(d.into_iter().next().unwrap());
        items.push(d2.remove(1));
        let rows = rows(items);
        let r = compare(&rows, &group_boards(&rows.runs), 0);
        let gemm_row = r.rows.iter().find(|x| x.operation == "gemm").unwrap();
        let boards: Vec<&str> = gemm_row
            .boards
            .iter()
            .map(|b| b.agent_id.as_str())
            .collect();
        assert_eq!(boards, ["a"]);
    }

    /// The JSON says each board's runs once (`pairs`) and reads back to the same report; a
    /// board pair of a board it does not list is refused, naming the board.
    #[test]
    fn a_report_says_each_boards_runs_once_and_reads_back_whole() {
        let mut items = pair("a", "c1", 100.0, 150.0, (20.0, 20.2));
        items.extend(pair("b", "c1", 100.0, 140.0, (20.0, 20.1)));
        let rows = rows(items);
        let r = compare(&rows, &group_boards(&rows.runs), 7);
        let hosts: Vec<&str> = r.pairs.iter().map(|p| p.hostname.as_str()).collect();
        assert_eq!(r.pairs.len(), 2, "{:?}", r.pairs);
        assert!(hosts.windows(2).all(|w| w[0] <= w[1]), "{hosts:?}");
        assert_eq!(r.pairs[0].numpy_run_id, "a-c1-np");
        let json = serde_json::to_value(&r).unwrap();
        let board = &json["rows"][0]["boards"][0];
        assert!(
            board.get("numpy_run_id").is_none() && board.get("campaign_id").is_none(),
            "{board}"
        );
        assert_eq!(board["agent_id"], "a", "{board}");
        let back: CompareReport = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.rows[0].boards[0].pytorch_run_id, "a-c1-pt");

        let mut unlisted = json;
        unlisted["pairs"].as_array_mut().unwrap().remove(0);
        let err = serde_json::from_value::<CompareReport>(unlisted).unwrap_err();
        assert!(
            err.to_string().contains("board 'a'") && err.to_string().contains("not among"),
            "{err}"
        );
    }

    #[test]
    fn the_winner_needs_more_than_the_noise_floor() {
        assert_eq!(winner(1.03, 5.0), (Winner::NoDifference, 0.0));
        let (w, by) = winner(0.5, 5.0);
        assert_eq!(w, Winner::Numpy);
        assert!((by - 100.0).abs() < 1e-9);
        assert_eq!(winner(f64::NAN, 5.0).0, Winner::NoDifference);
    }
}
