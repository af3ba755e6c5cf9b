//! NumPy vs PyTorch: for each board group, operation, precision and size, both frameworks'
//! figures from `compare` runs on the same board in the same campaign (a pair from two
//! campaigns is never compared), the PyTorch/NumPy ratio per board, the group's median ratio
//! and spread, and a headline per group and precision (GEMM peak, STREAM bandwidth): which
//! framework wins and by how much, or "no difference" inside the runs' noise floor.

use serde::{Deserialize, Serialize};

use super::group::BoardGroup;
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

/// One board's pair of figures (one campaign).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardPair {
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
pub struct CompareReport {
    /// When it was computed.
    pub generated_at: Millis,
    /// The groups it covers (key, facts, members).
    pub groups: Vec<BoardGroup>,
    /// Headlines, by group, then figure and precision.
    pub headlines: Vec<CompareHeadline>,
    /// Every group × operation × precision × size with a pair.
    pub rows: Vec<CompareRow>,
}
