//! Roofline per board group: the compute roof per precision and the bandwidth roof from the
//! measured figures, with each board's points (arithmetic intensity, rate).

use serde::{Deserialize, Serialize};

use super::group::BoardGroup;
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
    /// Each board's BLAS points.
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
