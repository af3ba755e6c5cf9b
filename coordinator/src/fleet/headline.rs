//! The headline figures of one stored result, shared by the reports: the GEMM peak per
//! precision (`gemm_peak fp32`) and the STREAM bandwidth (`stream_bandwidth`), each with its
//! efficiency and the theoretical peak behind it. Also the orders reports list things in.

use std::collections::{BTreeMap, HashMap};

use fleetcal_proto::{Operation, Precision};
use serde::{Deserialize, Serialize};

use super::rows::{FleetFigure, FleetRows, FleetRun};
use super::stats;

/// The figure name of the STREAM bandwidth.
pub const STREAM_BANDWIDTH: &str = "stream_bandwidth";
/// The figure name prefix of a GEMM peak (`gemm_peak fp32`).
pub const GEMM_PEAK: &str = "gemm_peak";

/// One headline figure of one result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// `gemm_peak fp32` or `stream_bandwidth`.
    pub figure: String,
    /// The precision of a GEMM peak; `None` for the bandwidth.
    pub precision: Option<String>,
    /// `GFLOPS`, `GIOPS` or `GB/s`.
    pub unit: String,
    /// The best rate.
    pub value: f64,
    /// The median rate of the same record, when known.
    pub median: Option<f64>,
    /// Against the theoretical peak.
    pub efficiency: Option<f64>,
    /// The trial CV of its record(s), in percent.
    pub cv_pct: Option<f64>,
}

impl Headline {
    /// The theoretical peak behind the efficiency (value ÷ efficiency).
    pub fn theoretical(&self) -> Option<f64> {
        self.efficiency
            .filter(|e| e.is_finite() && *e > 0.0)
            .map(|e| self.value / e)
            .filter(|t| t.is_finite())
    }
}

/// The name of a GEMM peak figure.
pub fn gemm_peak(precision: &str) -> String {
    format!("{GEMM_PEAK} {precision}")
}

/// The rate unit of a precision (`GIOPS` for integers, else `GFLOPS`).
pub fn rate_unit(precision: &str) -> &'static str {
    match precision.parse::<Precision>() {
        Ok(p) if p.is_integer() => "GIOPS",
        _ => "GFLOPS",
    }
}

/// Whether an operation name is a STREAM kernel.
pub fn is_stream(operation: &str) -> bool {
    operation
        .parse::<Operation>()
        .map(Operation::is_stream)
        .unwrap_or(operation.starts_with("stream"))
}

/// A figure's unit (`GB/s` for STREAM, else the precision's rate unit).
pub fn unit(operation: &str, precision: &str) -> &'static str {
    if is_stream(operation) {
        "GB/s"
    } else {
        rate_unit(precision)
    }
}

/// A measured figure's best and median rate (GB/s for STREAM, else GFLOPS/GIOPS).
pub fn rates(f: &FleetFigure) -> Option<(f64, Option<f64>)> {
    if f.status != "measured" {
        return None;
    }
    let (best, median) = if is_stream(&f.operation) {
        (f.best_gbps, f.median_gbps)
    } else {
        (f.best_gops, f.median_gops)
    };
    best.filter(|b| b.is_finite() && *b > 0.0)
        .map(|b| (b, median.filter(|m| m.is_finite())))
}

/// Where a precision sorts (the order of [`Precision::ALL`], unknown names last).
pub fn precision_rank(p: &str) -> usize {
    Precision::ALL
        .iter()
        .position(|x| x.as_str() == p)
        .unwrap_or(Precision::ALL.len())
}

/// Where an operation sorts (the order of [`Operation::ALL`], unknown names last).
pub fn operation_rank(o: &str) -> usize {
    Operation::ALL
        .iter()
        .position(|x| x.as_str() == o)
        .unwrap_or(Operation::ALL.len())
}

/// Where a headline figure sorts: GEMM peaks by precision, then the bandwidth.
pub fn figure_rank(figure: &str) -> (usize, &str) {
    match figure.strip_prefix(GEMM_PEAK) {
        Some(p) => (precision_rank(p.trim()), figure),
        None => (usize::MAX, figure),
    }
}

/// The best measured GEMM record per precision (the first of equals), by precision rank:
/// [`best_blas`] of the GEMM records.
fn best_gemm<'a>(figures: impl Iterator<Item = &'a FleetFigure>) -> Vec<&'a FleetFigure> {
    best_blas(figures.filter(|f| f.operation == "gemm"))
}

/// Per BLAS operation (not STREAM) and precision, its best measured record: a board's
/// points on the roofline. In operation, then precision order; the first of equals.
pub fn best_blas<'a>(figures: impl Iterator<Item = &'a FleetFigure>) -> Vec<&'a FleetFigure> {
    // Few operations and precisions: a linear scan.
    let mut best: Vec<(f64, &FleetFigure)> = Vec::new();
    for f in figures.filter(|f| !is_stream(&f.operation)) {
        let Some((value, _)) = rates(f) else { continue };
        match best
            .iter_mut()
            .find(|(_, b)| b.operation == f.operation && b.precision == f.precision)
        {
            Some(slot) if value > slot.0 => *slot = (value, f),
            Some(_) => {}
            None => best.push((value, f)),
        }
    }
    best.sort_by_key(|(_, f)| (operation_rank(&f.operation), precision_rank(&f.precision)));
    best.into_iter().map(|(_, f)| f).collect()
}

/// The records of one result that are a board's roofline points ([`best_blas`]) and not
/// among its `headline` records ([`headline_records`], which the caller has picked already),
/// in record order: the store keeps them with each run too, apart, so that the roofline reads
/// no document and the drift no point.
pub fn point_records(figures: &[FleetFigure], headline: &[FleetFigure]) -> Vec<FleetFigure> {
    let headline: Vec<i64> = headline.iter().map(|f| f.idx).collect();
    let points: Vec<i64> = best_blas(figures.iter()).iter().map(|f| f.idx).collect();
    figures
        .iter()
        .filter(|f| points.contains(&f.idx) && !headline.contains(&f.idx))
        .cloned()
        .collect()
}

/// Whether a record is one of the STREAM figures the bandwidth headline's CV is made of.
fn is_bandwidth_record(f: &FleetFigure) -> bool {
    is_stream(&f.operation) && f.bandwidth_eligible
}

/// The records of one result that its headline figures are made of: per precision the best
/// measured GEMM record (the one [`headlines`] picks) and the bandwidth-eligible STREAM
/// records (whose CVs make the bandwidth's), in record order. [`headlines`] gives the same
/// from these as from every record: the store keeps them with each run, so that reports
/// over many nights (the drift) read no other figure.
pub fn headline_records(figures: &[FleetFigure]) -> Vec<FleetFigure> {
    let kept: Vec<i64> = best_gemm(figures.iter()).iter().map(|f| f.idx).collect();
    figures
        .iter()
        .filter(|f| kept.contains(&f.idx) || is_bandwidth_record(f))
        .cloned()
        .collect()
}

/// One headline figure of one result, borrowed from its rows: what [`headlines`] makes a
/// [`Headline`] of. The drift report reads ~260,000 of them a month of 1,000 boards, and
/// needs only the value and CV: no name is made for it until a series is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadlinePart<'a> {
    /// The GEMM peak's precision; `None` for the bandwidth.
    pub precision: Option<&'a str>,
    /// The best rate.
    pub value: f64,
    /// The median rate of the same record, when known.
    pub median: Option<f64>,
    /// Against the theoretical peak.
    pub efficiency: Option<f64>,
    /// The trial CV of its record(s), in percent.
    pub cv_pct: Option<f64>,
}

impl HeadlinePart<'_> {
    /// Its figure name (`gemm_peak fp32`, `stream_bandwidth`).
    pub fn figure(&self) -> String {
        self.precision
            .map_or_else(|| STREAM_BANDWIDTH.to_string(), gemm_peak)
    }

    /// Its unit (`GFLOPS`, `GIOPS`, `GB/s`).
    pub fn unit(&self) -> &'static str {
        self.precision.map_or("GB/s", rate_unit)
    }

    /// The owned [`Headline`].
    pub fn to_headline(&self) -> Headline {
        Headline {
            figure: self.figure(),
            precision: self.precision.map(str::to_string),
            unit: self.unit().to_string(),
            value: self.value,
            median: self.median,
            efficiency: self.efficiency,
            cv_pct: self.cv_pct,
        }
    }
}

/// The headline figures of one result: a GEMM peak for each precision with a measured GEMM
/// record (its best record; the summary's peak when no record is given), then the STREAM
/// bandwidth when the summary has one.
pub fn headlines(run: &FleetRun, figures: &[&FleetFigure]) -> Vec<Headline> {
    headline_parts(run, figures)
        .iter()
        .map(HeadlinePart::to_headline)
        .collect()
}

/// [`headlines`], borrowed from the rows (the one rule of what a result's headlines are).
pub fn headline_parts<'a>(run: &'a FleetRun, figures: &[&'a FleetFigure]) -> Vec<HeadlinePart<'a>> {
    let mut out: Vec<HeadlinePart<'a>> = best_gemm(figures.iter().copied())
        .into_iter()
        .filter_map(|f| {
            let (value, median) = rates(f)?;
            Some(HeadlinePart {
                precision: Some(f.precision.as_str()),
                value,
                median,
                efficiency: f.efficiency,
                cv_pct: f.cv_pct,
            })
        })
        .collect();
    if out.is_empty() {
        out = run
            .peaks
            .iter()
            .filter(|p| p.operation == "gemm" && p.gops.is_finite() && p.gops > 0.0)
            .map(|p| HeadlinePart {
                precision: Some(p.precision.as_str()),
                value: p.gops,
                median: None,
                efficiency: p.efficiency,
                cv_pct: None,
            })
            .collect();
        // By figure rank: by precision rank, then name.
        out.sort_by(|a, b| {
            let key = |h: &HeadlinePart<'a>| h.precision.map(|p| (precision_rank(p), p));
            key(a).cmp(&key(b))
        });
    }
    if let Some(bw) = run.bandwidth_gbps.filter(|b| b.is_finite() && *b > 0.0) {
        let cvs: Vec<f64> = figures
            .iter()
            .filter(|f| is_bandwidth_record(f))
            .filter_map(|f| f.cv_pct)
            .collect();
        out.push(HeadlinePart {
            precision: None,
            value: bw,
            median: None,
            efficiency: run.bandwidth_efficiency,
            cv_pct: stats::median(&cvs),
        });
    }
    out
}

/// The rows indexed for the reports: each run's figures by run id.
pub struct Indexed<'a> {
    /// The runs, oldest first.
    pub runs: &'a [FleetRun],
    /// Each run's figures, in record order.
    pub figures: HashMap<&'a str, Vec<&'a FleetFigure>>,
}

impl<'a> Indexed<'a> {
    /// Indexes some rows.
    pub fn new(rows: &'a FleetRows) -> Indexed<'a> {
        let mut figures: HashMap<&str, Vec<&FleetFigure>> = HashMap::new();
        // The store returns figures by run: one lookup per run, not per figure.
        let mut i = 0;
        while let Some(first) = rows.figures.get(i) {
            let run = first.run_id.as_str();
            let len = rows.figures[i..]
                .iter()
                .take_while(|f| f.run_id == run)
                .count();
            figures
                .entry(run)
                .or_default()
                .extend(rows.figures[i..i + len].iter());
            i += len;
        }
        Indexed {
            runs: &rows.runs,
            figures,
        }
    }

    /// One run's figures.
    pub fn figures_of(&self, run_id: &str) -> &[&'a FleetFigure] {
        self.figures.get(run_id).map_or(&[], Vec::as_slice)
    }

    /// The latest run of each board × framework (by `started_at`, then run id), by (agent,
    /// framework).
    pub fn latest(&self) -> BTreeMap<(&'a str, &'a str), &'a FleetRun> {
        let mut out: BTreeMap<(&str, &str), &FleetRun> = BTreeMap::new();
        for r in self.runs {
            let key = (r.agent_id.as_str(), r.framework.as_str());
            let newer = out
                .get(&key)
                .is_none_or(|o| (r.started_at, &r.run_id) >= (o.started_at, &o.run_id));
            if newer {
                out.insert(key, r);
            }
        }
        out
    }
}

/// The median noise floor of some runs, in percent; `FALLBACK_NOISE_FLOOR_PCT` when none
/// carries one.
pub fn noise_floor<'a>(runs: impl IntoIterator<Item = &'a FleetRun>) -> f64 {
    let v: Vec<f64> = runs
        .into_iter()
        .filter_map(|r| r.noise_floor_pct)
        .filter(|x| x.is_finite() && *x >= 0.0)
        .collect();
    stats::median(&v).unwrap_or(FALLBACK_NOISE_FLOOR_PCT)
}

/// The noise floor assumed when no result carries one, in percent.
pub const FALLBACK_NOISE_FLOOR_PCT: f64 = 2.0;
