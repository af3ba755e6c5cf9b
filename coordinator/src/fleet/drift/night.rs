//! What the drift reads of one run ([`DriftNight`]: its headline figures and what their
//! points share) and the series of one board and framework made of its nights
//! ([`board_series`]): the one way series are made, for the report over many boards
//! ([`super::series`]) and for the check after each result over a board's kept history
//! ([`super::BoardHistory`]).

use std::sync::Arc;

use super::{threshold_pct, DriftParams, DriftPoint, DriftSeries};
use crate::fleet::headline::{self, headline_parts, HeadlinePart};
use crate::fleet::rows::{FleetFigure, FleetRun};
use crate::fleet::stats;
use crate::model::Millis;

/// One headline figure of a night: its GEMM precision (`None`: the STREAM bandwidth), its
/// value and trial CV.
#[derive(Debug, Clone, PartialEq)]
pub struct NightPart {
    /// The GEMM peak's precision; `None` for the bandwidth.
    pub precision: Option<Arc<str>>,
    /// The best rate.
    pub value: f64,
    /// The trial CV of its record(s), in percent.
    pub cv_pct: Option<f64>,
}

/// What the drift reads of one run: what its points share and its headline figures
/// ([`headline_parts`], the one rule of what they are).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftNight {
    /// The run.
    pub run_id: Arc<str>,
    /// Its campaign.
    pub campaign_id: Arc<str>,
    /// The board's host name in it.
    pub hostname: Arc<str>,
    /// When it was measured (the run's `started_at`).
    pub at: Millis,
    /// The result's noise floor, in percent.
    pub noise_floor_pct: Option<f64>,
    /// The result's environment key.
    pub env_key: Option<Arc<str>>,
    /// Its headline figures, in [`headline_parts`]' order.
    pub parts: Vec<NightPart>,
}

impl DriftNight {
    /// The night of `run` with its `figures`. `previous` (the board's night before, if
    /// any) lends its shared texts: a board's host name, environment and precisions are
    /// the same night after night, and a kept history holds one copy of each.
    pub fn of(run: &FleetRun, figures: &[&FleetFigure], previous: Option<&DriftNight>) -> Self {
        let share = |text: &str, have: Option<&Arc<str>>| match have {
            Some(a) if **a == *text => a.clone(),
            _ => Arc::from(text),
        };
        let parts = headline_parts(run, figures)
            .into_iter()
            .map(|h| NightPart {
                precision: h.precision.map(|p| {
                    let had = previous.and_then(|n| {
                        n.parts
                            .iter()
                            .filter_map(|q| q.precision.as_ref())
                            .find(|q| ***q == *p)
                    });
                    share(p, had)
                }),
                value: h.value,
                cv_pct: h.cv_pct,
            })
            .collect();
        DriftNight {
            run_id: Arc::from(run.run_id.as_str()),
            campaign_id: share(&run.campaign_id, previous.map(|n| &n.campaign_id)),
            hostname: share(&run.hostname, previous.map(|n| &n.hostname)),
            at: run.started_at,
            noise_floor_pct: run.noise_floor_pct,
            env_key: run
                .env_key
                .as_deref()
                .map(|k| share(k, previous.and_then(|n| n.env_key.as_ref()))),
            parts,
        }
    }

    /// The point of one of its parts.
    fn point(&self, part: &NightPart) -> DriftPoint {
        DriftPoint {
            run_id: self.run_id.clone(),
            campaign_id: self.campaign_id.clone(),
            at: self.at,
            value: part.value,
            cv_pct: part.cv_pct,
            noise_floor_pct: self.noise_floor_pct,
            env_key: self.env_key.clone(),
        }
    }
}

/// The series of one board and framework in group `group_key`, from its nights (oldest
/// first): one a headline figure, named and united by its first night's part, with the host
/// name of its latest.
pub fn board_series<'a>(
    group_key: &str,
    agent_id: &str,
    framework: &str,
    nights: impl IntoIterator<Item = &'a DriftNight>,
    params: &DriftParams,
) -> Vec<DriftSeries> {
    // (its precision (none: the bandwidth), host name of its latest night, points).
    type Entry<'a> = (Option<&'a str>, &'a str, Vec<DriftPoint>);
    let mut by: Vec<Entry> = Vec::new();
    for night in nights {
        for part in &night.parts {
            let precision = part.precision.as_deref();
            let point = night.point(part);
            match by.iter_mut().find(|(p, ..)| *p == precision) {
                Some(entry) => {
                    entry.1 = &night.hostname;
                    entry.2.push(point);
                }
                None => by.push((precision, &night.hostname, vec![point])),
            }
        }
    }
    by.into_iter()
        .map(|(precision, hostname, points)| {
            let named = HeadlinePart {
                precision,
                value: 0.0,
                median: None,
                efficiency: None,
                cv_pct: None,
            };
            build_series(
                group_key.to_string(),
                agent_id.to_string(),
                hostname.to_string(),
                framework.to_string(),
                named.figure(),
                named.unit().to_string(),
                points,
                params,
            )
        })
        .collect()
}

/// The order of the series of a report: by group, host name, board, framework, figure.
pub(super) fn sort_series(out: &mut [DriftSeries]) {
    out.sort_by(|a, b| {
        (
            &a.group_key,
            &a.hostname,
            &a.agent_id,
            &a.framework,
            headline::figure_rank(&a.figure),
        )
            .cmp(&(
                &b.group_key,
                &b.hostname,
                &b.agent_id,
                &b.framework,
                headline::figure_rank(&b.figure),
            ))
    });
}

/// One series with its periods and the test's finding at its end.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_series(
    group_key: String,
    agent_id: String,
    hostname: String,
    framework: String,
    figure: String,
    unit: String,
    points: Vec<DriftPoint>,
    params: &DriftParams,
) -> DriftSeries {
    let periods = super::periods(&points);
    let start = periods
        .last()
        .and_then(|p| points.iter().position(|x| x.run_id == p.start_run_id))
        .unwrap_or(0);
    let current = points.get(start..).unwrap_or(&[]);
    let finding = super::evaluate(current, params);
    let base_end = finding
        .as_ref()
        .and_then(|f| current.iter().position(|p| p.run_id == f.began_run_id))
        .unwrap_or(current.len());
    let base_values: Vec<f64> = current
        .get(..base_end)
        .unwrap_or(&[])
        .iter()
        .map(|p| p.value)
        .collect();
    let baseline = finding
        .as_ref()
        .map(|f| f.baseline)
        .or_else(|| stats::median(&base_values));
    let latest = points.last().map(|p| p.value);
    let latest_change_pct = match (latest, baseline) {
        (Some(l), Some(b)) => stats::change_pct(l, b),
        _ => None,
    };
    DriftSeries {
        threshold_pct: threshold_pct(current.get(..base_end).unwrap_or(&[]), params),
        group_key,
        agent_id,
        hostname,
        framework,
        figure,
        unit,
        points,
        periods,
        baseline,
        latest,
        latest_change_pct,
        finding,
    }
}
