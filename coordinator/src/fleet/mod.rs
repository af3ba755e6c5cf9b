//! Fleet reports: pure functions from the rows the store returns ([`rows`]) to report
//! models (board [`group`]s, NumPy vs PyTorch [`compare`], [`boards`] vs siblings, [`drift`],
//! [`anomalies`], [`roofline`]), and the drift [`alert`]s they raise. No transport and no
//! storage in here; time is a parameter. [`stats`] holds the statistics they share.

pub mod alert;
pub mod anomalies;
pub mod boards;
pub mod compare;
pub mod drift;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod group;
pub mod headline;
pub mod report;
pub mod roofline;
pub mod rows;
pub mod stats;

pub use alert::{AlertRecord, AlertState};
pub use group::{BoardGroup, GroupMember, Groups};
pub use report::{parse_since, Report, ReportKind, ReportQuery};
pub use rows::{BoardFacts, FleetFigure, FleetQuery, FleetRows, FleetRun, PeakRow};
