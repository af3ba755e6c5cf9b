//! Fleet reports: pure functions from the rows the store returns ([`rows`]) to report
//! models (board groups, NumPy vs PyTorch, boards vs siblings, drift, anomalies, roofline),
//! and the drift [`alert`]s they raise. No transport and no storage in here; time is a
//! parameter.

pub mod alert;
pub mod rows;

pub use alert::{AlertRecord, AlertState};
pub use rows::{BoardFacts, FleetFigure, FleetQuery, FleetRows, FleetRun, PeakRow};
