//! Boards vs siblings: each board's headline figures (peak per precision, bandwidth, their
//! efficiency) against its group's median and the theoretical peak; outliers named by a
//! robust rule (the median absolute deviation, not mean ± 2σ) with how far off they are.

use serde::{Deserialize, Serialize};

use super::group::BoardGroup;
use crate::model::Millis;

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
