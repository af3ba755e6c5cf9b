//! The boards' drift histories kept between their results ([`BoardHistory`]), at most
//! [`KEPT_BOARDS`] of them: the least recently checked board's goes when another comes.
//! A history is taken out while its board is checked and given back after, so two checks
//! of one board at once never share one (the second reads the store).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::fleet::drift::BoardHistory;

/// Boards whose drift history is kept. A board's 120 days of both frameworks are ~240
/// nights of ~0.5 KB: ~120 KB a board, ~120 MB at most. A fleet larger than this still
/// checks every result; the boards beyond it read their window from the store each time.
pub const KEPT_BOARDS: usize = 1024;

/// The kept histories, by agent id, with when each was last checked.
#[derive(Debug, Default)]
pub struct Histories {
    kept: Mutex<HashMap<String, (u64, BoardHistory)>>,
    /// A counter of checks (the least recent is the smallest).
    clock: std::sync::atomic::AtomicU64,
}

impl Histories {
    /// Takes a board's kept history out (none when it has none, or another check of it
    /// holds it).
    pub fn take(&self, agent_id: &str) -> Option<BoardHistory> {
        self.lock().remove(agent_id).map(|(_, h)| h)
    }

    /// Gives a board's history back after its check (a history given back meanwhile for
    /// the same board is replaced: either is exact, [`BoardHistory`] says why).
    pub fn give_back(&self, agent_id: &str, history: BoardHistory) {
        let tick = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut kept = self.lock();
        kept.insert(agent_id.to_string(), (tick, history));
        if kept.len() > KEPT_BOARDS {
            let oldest = kept
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                kept.remove(&id);
            }
        }
    }

    /// How many boards' histories are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map; a check that panicked while holding it (it holds it for a map operation
    /// only) leaves it as it was.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, BoardHistory)>> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetRows;

    fn empty(agent: &str) -> BoardHistory {
        BoardHistory::new(agent, 0, &FleetRows::default())
    }

    #[test]
    fn a_taken_history_is_gone_until_given_back_and_the_least_recent_board_goes_first() {
        let h = Histories::default();
        assert!(h.take("a").is_none());
        h.give_back("a", empty("a"));
        assert!(h.take("a").is_some());
        assert!(
            h.take("a").is_none(),
            "taken: a second check reads the store"
        );
        for i in 0..KEPT_BOARDS {
            h.give_back(&format!("b{i}"), empty("x"));
        }
        h.give_back("new", empty("new"));
        assert_eq!(h.len(), KEPT_BOARDS);
        assert!(
            h.take("b0").is_none(),
            "the least recently checked board went"
        );
        assert!(h.take("b1").is_some());
        assert!(h.take("new").is_some());
    }
}
