//! What a caller asks for ([`ReportKind`], [`ReportQuery`]) and what it gets ([`Report`]):
//! the one model fleetctl, the web pages and the metrics draw.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::anomalies::AnomaliesReport;
use super::boards::BoardsReport;
use super::compare::CompareReport;
use super::drift::DriftReport;
use super::group::BoardGroup;
use super::roofline::RooflineReport;
use super::rows::FleetQuery;
use crate::domain::DomainError;
use crate::model::Millis;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// NumPy vs PyTorch per group.
    Compare,
    /// Boards vs their siblings.
    Boards,
    /// Each board over nights.
    Drift,
    /// Fallbacks, failures, noisy and stale boards.
    Anomalies,
    /// Compute and bandwidth roofs per group.
    Roofline,
}

impl ReportKind {
    /// Every report.
    pub const ALL: [ReportKind; 5] = [
        ReportKind::Compare,
        ReportKind::Boards,
        ReportKind::Drift,
        ReportKind::Anomalies,
        ReportKind::Roofline,
    ];

    /// Its name (`compare`, `boards`, `drift`, `anomalies`, `roofline`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Compare => "compare",
            ReportKind::Boards => "boards",
            ReportKind::Drift => "drift",
            ReportKind::Anomalies => "anomalies",
            ReportKind::Roofline => "roofline",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReportKind {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                DomainError::InvalidRequest(format!(
                    "unknown report {} (expected compare, boards, drift, anomalies or roofline)",
                    fleetcal_proto::quote::quoted(s)
                ))
            })
    }
}

/// A report's `since` (fleetctl `--since`, the web's `?since=`, the `Report` RPC): a day
/// (`2026-11-01`, its midnight UTC) or an RFC 3339 time, in ms since the epoch; the error
/// says what it is not, quoting a bounded prefix of the text.
pub fn parse_since(text: &str) -> Result<crate::model::Millis, String> {
    let text = text.trim();
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            format!(
                "{} is neither a day (YYYY-MM-DD) nor an RFC 3339 time",
                fleetcal_proto::quote::quoted(text)
            )
        })
}

/// What a report reads: the rows ([`FleetQuery`]) and the report's own narrowing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportQuery {
    /// Which stored results.
    pub fleet: FleetQuery,
    /// Only this board group (its key).
    pub group: Option<String>,
    /// Only the last N nights (results measured within N × 24 h before `now`); ignored when
    /// `fleet.since` is set. With neither: [`ReportQuery::DEFAULT_NIGHTS`] (one board:
    /// [`ReportQuery::DEFAULT_BOARD_NIGHTS`]).
    pub nights: Option<u32>,
    /// Anomalies: boards without a result for more than this many days are named
    /// (default [`ReportQuery::DEFAULT_STALE_DAYS`]).
    pub stale_days: Option<u32>,
}

impl ReportQuery {
    /// The default of `stale_days`.
    pub const DEFAULT_STALE_DAYS: u32 = 3;
    /// The most nights a query may ask for (ten years).
    pub const MAX_NIGHTS: u32 = 3660;
    /// The nights a report reads when neither `since` nor `nights` is given: a month, so
    /// that a fleet's report stays a fleet's (a year of drift of 1,000 boards is ~600 MB of
    /// points); `nights` up to [`ReportQuery::MAX_NIGHTS`] reads further back.
    pub const DEFAULT_NIGHTS: u32 = 30;
    /// The default nights of a report of one board (`agent_id` given): a year.
    pub const DEFAULT_BOARD_NIGHTS: u32 = 365;

    /// The rows to read at `now`: `fleet` with `since` from `nights` when it is not set.
    /// `nights` must be 1..=[`ReportQuery::MAX_NIGHTS`].
    pub fn rows_query(&self, now: Millis) -> Result<FleetQuery, DomainError> {
        let mut q = self.fleet.clone();
        let default = if q.agent_id.is_some() {
            Self::DEFAULT_BOARD_NIGHTS
        } else {
            Self::DEFAULT_NIGHTS
        };
        if let Some(n) = self.nights.or(Some(default)) {
            if !(1..=Self::MAX_NIGHTS).contains(&n) {
                return Err(DomainError::InvalidRequest(format!(
                    "field 'nights': {n} is not between 1 and {}",
                    Self::MAX_NIGHTS
                )));
            }
            if q.since.is_none() {
                q.since = Some(now.saturating_sub(i64::from(n).saturating_mul(DAY_MS)));
            }
        }
        Ok(q)
    }

    /// The stale days, defaulted.
    pub fn stale_days(&self) -> u32 {
        self.stale_days.unwrap_or(Self::DEFAULT_STALE_DAYS)
    }
}

impl ReportKind {
    /// Whether this report shows only each board × framework's latest result, so that it
    /// reads only those runs whatever its window (`FleetQuery::latest_only`): boards,
    /// roofline and anomalies. Compare finds each board's latest *pair*, drift every night.
    pub fn latest_only(self) -> bool {
        matches!(
            self,
            ReportKind::Boards | ReportKind::Roofline | ReportKind::Anomalies
        )
    }

    /// Whether this report reads only runs paired with a run of the other framework in
    /// their campaign ([`super::FleetQuery::paired_only`]): the compare report.
    pub fn paired_only(self) -> bool {
        matches!(self, ReportKind::Compare)
    }

    /// Whether this report reads each run's roofline points besides its headline records
    /// ([`super::FleetQuery::roofline_points`]): the roofline report.
    pub fn roofline_points(self) -> bool {
        matches!(self, ReportKind::Roofline)
    }

    /// Whether this report reads each run's every measured record's rates
    /// ([`super::FleetQuery::pair_rates`]): the compare report.
    pub fn pair_rates(self) -> bool {
        matches!(self, ReportKind::Compare)
    }

    /// Whether this report reads each run's figure flags ([`super::FleetQuery::figure_flags`]):
    /// the anomalies report.
    pub fn figure_flags(self) -> bool {
        matches!(self, ReportKind::Anomalies)
    }
}

/// One day in milliseconds.
pub const DAY_MS: Millis = 86_400_000;

/// A computed report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    /// NumPy vs PyTorch.
    Compare(CompareReport),
    /// Boards vs siblings.
    Boards(BoardsReport),
    /// Drift over nights.
    Drift(DriftReport),
    /// Anomalies.
    Anomalies(AnomaliesReport),
    /// Roofline.
    Roofline(RooflineReport),
}

impl Report {
    /// Which report it is.
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::Compare(_) => ReportKind::Compare,
            Report::Boards(_) => ReportKind::Boards,
            Report::Drift(_) => ReportKind::Drift,
            Report::Anomalies(_) => ReportKind::Anomalies,
            Report::Roofline(_) => ReportKind::Roofline,
        }
    }

    /// The groups it covers.
    pub fn groups(&self) -> &[BoardGroup] {
        match self {
            Report::Compare(r) => &r.groups,
            Report::Boards(r) => &r.groups,
            Report::Drift(r) => &r.groups,
            Report::Anomalies(r) => &r.groups,
            Report::Roofline(r) => &r.groups,
        }
    }

    /// When it was computed.
    pub fn generated_at(&self) -> Millis {
        match self {
            Report::Compare(r) => r.generated_at,
            Report::Boards(r) => r.generated_at,
            Report::Drift(r) => r.generated_at,
            Report::Anomalies(r) => r.generated_at,
            Report::Roofline(r) => r.generated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_unknown_names_are_refused() {
        for k in ReportKind::ALL {
            assert_eq!(k.as_str().parse::<ReportKind>().unwrap(), k);
        }
        let e = "speed".parse::<ReportKind>().unwrap_err().to_string();
        assert!(e.contains("'speed'") && e.contains("roofline"), "{e}");
    }

    #[test]
    fn without_a_window_a_report_reads_a_month_and_a_boards_report_a_year() {
        let now = 1000 * DAY_MS;
        let fleet = ReportQuery::default().rows_query(now).unwrap();
        assert_eq!(fleet.since, Some(970 * DAY_MS));
        let board = ReportQuery {
            fleet: FleetQuery {
                agent_id: Some("a".into()),
                ..FleetQuery::default()
            },
            ..ReportQuery::default()
        };
        assert_eq!(board.rows_query(now).unwrap().since, Some(635 * DAY_MS));
        let all = ReportQuery {
            nights: Some(ReportQuery::MAX_NIGHTS),
            ..ReportQuery::default()
        };
        assert_eq!(
            all.rows_query(now).unwrap().since,
            Some((1000 - 3660) * DAY_MS)
        );
    }

    #[test]
    fn nights_become_since_unless_since_is_given() {
        let now = 10 * DAY_MS;
        let q = ReportQuery {
            nights: Some(3),
            ..ReportQuery::default()
        };
        assert_eq!(q.rows_query(now).unwrap().since, Some(7 * DAY_MS));
        let mut given = q.clone();
        given.fleet.since = Some(5);
        assert_eq!(given.rows_query(now).unwrap().since, Some(5));
        let zero = ReportQuery {
            nights: Some(0),
            ..ReportQuery::default()
        };
        let e = zero.rows_query(now).unwrap_err().to_string();
        assert!(
            e.contains("'nights'") && e.contains("between 1 and 3660"),
            "{e}"
        );
        assert_eq!(ReportQuery::default().stale_days(), 3);
    }
}
