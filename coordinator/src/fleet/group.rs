//! Board groups: boards are siblings when their hardware fingerprint is equal — a key over
//! the [`BoardFacts`] their results carry (CPU model and microarchitecture, cores, memory, GPU
//! model, Jetson model and power mode, BLAS and libtorch versions), never their host name or
//! preset. A board's facts are merged from its latest result of each framework, so its NumPy
//! and PyTorch results land in one group. (A board with results of one framework only in
//! the rows read is keyed by that framework's libraries: its libtorch, or its BLAS, is
//! unknown, so it is not a sibling of boards with both.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rows::{BoardFacts, FleetRun};

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

impl Groups {
    /// A board's group key.
    pub fn key_of(&self, agent_id: &str) -> Option<&str> {
        self.by_agent.get(agent_id).map(String::as_str)
    }

    /// One group.
    pub fn group(&self, key: &str) -> Option<&BoardGroup> {
        self.groups.iter().find(|g| g.key == key)
    }

    /// Only the group `key` (all groups when `None`).
    pub fn only(self, key: Option<&str>) -> Groups {
        match key {
            None => self,
            Some(k) => Groups {
                groups: self.groups.into_iter().filter(|g| g.key == k).collect(),
                by_agent: self.by_agent.into_iter().filter(|(_, g)| g == k).collect(),
            },
        }
    }
}

/// The facts a board is grouped by, merged from its results: each fact from its latest
/// result that knows it, except the BLAS (from its latest NumPy result first) and libtorch
/// (from its latest PyTorch result first), so both frameworks' results give one board one
/// fingerprint. `runs` are the board's results, oldest first.
pub fn board_facts(runs: &[&FleetRun]) -> BoardFacts {
    let of: Vec<(&str, &BoardFacts)> = runs
        .iter()
        .map(|r| (r.framework.as_str(), &r.facts))
        .collect();
    merged_facts(&of)
}

/// [`board_facts`] of each result's (framework, facts), oldest first: the one merge rule,
/// for the drift check's board history ([`super::drift::BoardHistory`]) too.
pub fn merged_facts(runs: &[(&str, &BoardFacts)]) -> BoardFacts {
    let latest = |fw: &str| runs.iter().rev().find(|(f, _)| *f == fw).map(|(_, x)| *x);
    let newest_first: Vec<&BoardFacts> = runs.iter().rev().map(|(_, x)| *x).collect();
    let pick = |get: &dyn Fn(&BoardFacts) -> Option<String>, prefer: Option<&BoardFacts>| {
        prefer
            .and_then(get)
            .or_else(|| newest_first.iter().find_map(|f| get(f)))
    };
    let pick_u32 =
        |get: &dyn Fn(&BoardFacts) -> Option<u32>| newest_first.iter().find_map(|f| get(f));
    let numpy = latest("numpy");
    let pytorch = latest("pytorch");
    BoardFacts {
        cpu_model: pick(&|f| f.cpu_model.clone(), None),
        microarch: pick(&|f| f.microarch.clone(), None),
        cores: pick_u32(&|f| f.cores),
        logical_cpus: pick_u32(&|f| f.logical_cpus),
        memory_gb: pick_u32(&|f| f.memory_gb),
        gpu_model: pick(&|f| f.gpu_model.clone(), None),
        jetson_model: pick(&|f| f.jetson_model.clone(), None),
        power_mode: pick(&|f| f.power_mode.clone(), None),
        blas: pick(&|f| f.blas.clone(), numpy),
        libtorch: pick(&|f| f.libtorch.clone(), pytorch),
        tool_version: pick(&|f| f.tool_version.clone(), None),
    }
}

/// The group key of some facts: `g-` and the first 12 hex digits of a 64-bit FNV-1a hash
/// over every fact (unknown ones included, as `?`). Stable across versions and platforms.
pub fn fingerprint(facts: &BoardFacts) -> String {
    let text = [
        facts.cpu_model.clone(),
        facts.microarch.clone(),
        facts.cores.map(|c| c.to_string()),
        facts.logical_cpus.map(|c| c.to_string()),
        facts.memory_gb.map(|c| c.to_string()),
        facts.gpu_model.clone(),
        facts.jetson_model.clone(),
        facts.power_mode.clone(),
        facts.blas.clone(),
        facts.libtorch.clone(),
        facts.tool_version.clone(),
    ]
    .map(|f| f.unwrap_or_else(|| "?".to_string()))
    .join("\u{1f}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let hex = format!("{h:016x}");
    format!("g-{}", hex.get(..12).unwrap_or(&hex))
}

/// The facts, readable: `AMD EPYC 7763 (Zen 3) 64c/128t 256 GB · RTX 4090 · OpenBLAS
/// 0.3.21 · libtorch 2.4.0 · fleetcal 0.1.0`.
pub fn label(facts: &BoardFacts) -> String {
    let mut cpu = facts
        .cpu_model
        .clone()
        .unwrap_or_else(|| "unknown CPU".into());
    if let Some(m) = &facts.microarch {
        cpu.push_str(&format!(" ({m})"));
    }
    match (facts.cores, facts.logical_cpus) {
        (Some(c), Some(l)) if c != l => cpu.push_str(&format!(" {c}c/{l}t")),
        (Some(c), _) => cpu.push_str(&format!(" {c}c")),
        (None, Some(l)) => cpu.push_str(&format!(" {l}t")),
        (None, None) => {}
    }
    if let Some(m) = facts.memory_gb {
        cpu.push_str(&format!(" {m} GB"));
    }
    let mut parts = vec![cpu];
    if let Some(j) = &facts.jetson_model {
        parts.push(j.clone());
    }
    if let Some(g) = &facts.gpu_model {
        parts.push(g.clone());
    }
    if let Some(p) = &facts.power_mode {
        parts.push(format!("power {p}"));
    }
    if let Some(b) = &facts.blas {
        parts.push(b.clone());
    }
    if let Some(t) = &facts.libtorch {
        parts.push(format!("libtorch {t}"));
    }
    if let Some(v) = &facts.tool_version {
        parts.push(format!("fleetcal {v}"));
    }
    parts.join(" · ")
}

/// Groups the boards of some results (oldest first) by their fingerprint.
pub fn group_boards(runs: &[FleetRun]) -> Groups {
    let mut by_board: BTreeMap<&str, Vec<&FleetRun>> = BTreeMap::new();
    for r in runs {
        by_board.entry(r.agent_id.as_str()).or_default().push(r);
    }
    let mut groups: BTreeMap<String, BoardGroup> = BTreeMap::new();
    let mut by_agent = BTreeMap::new();
    for (agent, board_runs) in by_board {
        let facts = board_facts(&board_runs);
        let key = fingerprint(&facts);
        let hostname = board_runs
            .last()
            .map(|r| r.hostname.clone())
            .unwrap_or_default();
        by_agent.insert(agent.to_string(), key.clone());
        groups
            .entry(key.clone())
            .or_insert_with(|| BoardGroup {
                key,
                label: label(&facts),
                facts,
                members: Vec::new(),
            })
            .members
            .push(GroupMember {
                agent_id: agent.to_string(),
                hostname,
            });
    }
    let mut groups: Vec<BoardGroup> = groups.into_values().collect();
    for g in &mut groups {
        g.members
            .sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    }
    Groups { groups, by_agent }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::fixtures::{night, run};

    #[test]
    fn siblings_share_a_group_whatever_their_host_names_and_both_frameworks_land_in_it() {
        let mut runs = vec![
            run("r1", "c1", "a", "numpy", night(0), "EPYC 9654"),
            run("r2", "c1", "a", "pytorch", night(0), "EPYC 9654"),
            run("r3", "c1", "b", "numpy", night(0), "EPYC 9654"),
            run("r4", "c1", "b", "pytorch", night(0), "EPYC 9654"),
            run("r5", "c1", "c", "numpy", night(0), "Xeon 8480"),
        ];
        runs[2].hostname = "lab-7".into();
        runs[3].preset_id = "other-preset".into();
        let g = group_boards(&runs);
        assert_eq!(g.groups.len(), 2, "{g:#?}");
        let a = g.key_of("a").unwrap();
        assert_eq!(g.key_of("b"), Some(a));
        assert_ne!(g.key_of("c"), Some(a));
        let group = g.group(a).unwrap();
        let members: Vec<&str> = group.members.iter().map(|m| m.agent_id.as_str()).collect();
        assert_eq!(members, ["a", "b"]);
        // The merged facts carry both the BLAS of the NumPy result and libtorch of the
        // PyTorch one.
        assert_eq!(group.facts.blas.as_deref(), Some("OpenBLAS 0.3.21"));
        assert_eq!(group.facts.libtorch.as_deref(), Some("2.4.0"));
        assert!(
            group.label.contains("EPYC 9654 (Zen 4) 8c/16t 32 GB"),
            "{}",
            group.label
        );
        assert!(a.starts_with("g-") && a.len() == 14, "{a}");
    }

    #[test]
    fn a_power_mode_or_library_version_makes_another_group() {
        let base = run("r1", "c1", "a", "numpy", night(0), "Orin");
        let mut power = run("r2", "c1", "b", "numpy", night(0), "Orin");
        power.facts.power_mode = Some("15W".into());
        let mut blas = run("r3", "c1", "c", "numpy", night(0), "Orin");
        blas.facts.blas = Some("OpenBLAS 0.3.26".into());
        let g = group_boards(&[base, power, blas]);
        assert_eq!(g.groups.len(), 3);
        // The key is a pure function of the facts.
        assert_eq!(fingerprint(&g.groups[0].facts), g.groups[0].key);
        assert_eq!(g.clone().only(Some(&g.groups[1].key)).groups.len(), 1);
    }
}
