//! Anomalies: device fallbacks, above-theoretical figures, skipped precisions and sizes,
//! failed, timed-out and offline runs, noisy figures, and boards not calibrated for more than
//! N days.

use serde::{Deserialize, Serialize};

use super::group::BoardGroup;
use crate::model::Millis;

/// What kind of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// The run measured on another device than the preset asked for.
    DeviceFallback,
    /// A figure above the theoretical peak.
    AboveTheoretical,
    /// Precisions or sizes skipped, unsupported or failed inside a result.
    Skipped,
    /// A run that failed.
    FailedRun,
    /// A run that timed out.
    TimedOut,
    /// A run whose board stayed offline until its campaign's deadline.
    Offline,
    /// A figure whose trials vary more than the noise rule allows.
    Noisy,
    /// A board not calibrated (no stored result) for more than N days.
    NotCalibrated,
}

impl AnomalyKind {
    /// The name printed.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::DeviceFallback => "device_fallback",
            AnomalyKind::AboveTheoretical => "above_theoretical",
            AnomalyKind::Skipped => "skipped",
            AnomalyKind::FailedRun => "failed",
            AnomalyKind::TimedOut => "timed_out",
            AnomalyKind::Offline => "offline",
            AnomalyKind::Noisy => "noisy",
            AnomalyKind::NotCalibrated => "not_calibrated",
        }
    }
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// The board group, when the board has results.
    pub group_key: Option<String>,
    /// The board.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// The framework, when it is about a run.
    pub framework: Option<String>,
    /// The run, when it is about one.
    pub run_id: Option<String>,
    /// Its campaign.
    pub campaign_id: Option<String>,
    /// When it happened (measured, ended, or last calibrated).
    pub at: Option<Millis>,
    /// The figures it is about (`gemm fp32 4096`), when any.
    pub figures: Vec<String>,
    /// The number behind it, when one (efficiency, CV %, days).
    pub value: Option<f64>,
    /// What it is, in words.
    pub detail: String,
}

/// The anomalies report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomaliesReport {
    /// When it was computed.
    pub generated_at: Millis,
    /// The groups it covers (key, facts, members).
    pub groups: Vec<BoardGroup>,
    /// The days without calibration after which a board is named.
    pub stale_days: u32,
    /// Every anomaly, by kind, then host name, then time.
    pub items: Vec<Anomaly>,
}
