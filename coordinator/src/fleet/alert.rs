//! Drift alerts: a suspected drop of one board's headline figure, its confirmation run, and
//! what a person made of it. Stored by the store, decided by `fleet::drift`.

use serde::{Deserialize, Serialize};

use crate::model::Millis;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// A drop was suspected and a one-board confirmation run started; not shown as an alert.
    Suspected,
    /// The confirmation run reproduced the drop: an open alert.
    Open,
    /// A person acknowledged it (still counted until the figure recovers).
    Acknowledged,
    /// A person marked it a false alarm.
    Dismissed,
    /// The confirmation run did not reproduce the drop (nothing was raised).
    Unconfirmed,
    /// The figure came back to its baseline.
    Resolved,
}

impl AlertState {
    /// Every state.
    pub const ALL: [AlertState; 6] = [
        AlertState::Suspected,
        AlertState::Open,
        AlertState::Acknowledged,
        AlertState::Dismissed,
        AlertState::Unconfirmed,
        AlertState::Resolved,
    ];

    /// The state's name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Suspected => "suspected",
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Dismissed => "dismissed",
            AlertState::Unconfirmed => "unconfirmed",
            AlertState::Resolved => "resolved",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<AlertState> {
        AlertState::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the alert still stands for its (board, figure): a new one is not raised.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            AlertState::Suspected | AlertState::Open | AlertState::Acknowledged
        )
    }
}

/// One alert (or suspicion) about one board's headline figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Its id (a UUID).
    pub id: String,
    /// The board.
    pub agent_id: String,
    /// The board's host name.
    pub hostname: String,
    /// The board group key.
    pub group_key: String,
    /// The framework of the figure.
    pub framework: String,
    /// The headline figure (`gemm_peak fp32`, `stream_bandwidth`).
    pub figure: String,
    /// The baseline value (the period's median before the change).
    pub baseline: f64,
    /// The current value (after the change, confirmed when open).
    pub current: f64,
    /// (current − baseline) ÷ baseline, in percent.
    pub change_pct: f64,
    /// `step` or `creep`.
    pub kind: String,
    /// When the change began: the first night (its result's `started_at`) after it.
    pub began_at: Millis,
    /// The run that showed it.
    pub run_id: String,
    /// The one-board confirmation campaign, once started.
    pub confirm_campaign_id: Option<String>,
    /// Where it is.
    pub state: AlertState,
    /// When it was first recorded.
    pub created_at: Millis,
    /// When its state last changed.
    pub updated_at: Millis,
    /// Why it is in its state (the test's figures, who acknowledged it).
    pub message: String,
}
