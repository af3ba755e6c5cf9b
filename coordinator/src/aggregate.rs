//! Aggregation: run counts by state. Pure and synchronous. (The normalised rows a stored
//! result adds are `fleet::rows`: one `FleetRun` and one `FleetFigure` per record.)

use std::collections::BTreeMap;

use crate::model::{RunRecord, RunState};

/// Run counts by state (every state present, zero included).
pub type RunCounts = BTreeMap<RunState, u32>;

/// Run counts by state of some runs (every state present, zero included).
pub fn counts_by_state<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> RunCounts {
    counts_from(runs.into_iter().map(|r| (r.state, 1)))
}

/// Run counts by state from (state, count) pairs, such as a `GROUP BY state` returns (every
/// state present, zero included).
pub fn counts_from(pairs: impl IntoIterator<Item = (RunState, u32)>) -> RunCounts {
    let mut counts: RunCounts = RunState::ALL.iter().map(|s| (*s, 0)).collect();
    for (state, n) in pairs {
        let slot = counts.entry(state).or_default();
        *slot = slot.saturating_add(n);
    }
    counts
}
