//! Board groups: boards are siblings when their hardware fingerprint is equal — a key over
//! the [`BoardFacts`] their results carry (CPU model and microarchitecture, cores, memory, GPU
//! model, Jetson model and power mode, BLAS and libtorch versions), never their host name or
//! preset. A board's facts are merged from its latest result of each framework, so its NumPy
//! and PyTorch results land in one group.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rows::BoardFacts;

/// One board of a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupMember {
    /// The board.
    pub agent_id: String,
    /// Its host name (in its latest result).
    pub hostname: String,
}

/// Boards with one hardware fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardGroup {
    /// The fingerprint (`g-` and 12 hex digits of a stable hash of the facts).
    pub key: String,
    /// The facts, readable (`AMD EPYC 7763 (Zen 3) 64c/128t 256 GB, OpenBLAS 0.3.21`).
    pub label: String,
    /// The facts the key is made of.
    pub facts: BoardFacts,
    /// Its boards, by host name then id.
    pub members: Vec<GroupMember>,
}

/// The board groups of some rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Groups {
    /// The groups, by key.
    pub groups: Vec<BoardGroup>,
    /// Each board's group key, by agent id.
    pub by_agent: BTreeMap<String, String>,
}
