//! Cloned boards: two agent processes claiming one agent id (one state directory copied to two
//! boards, a board flashed from another's disk image). Each agent process sends a random
//! nonce (its *instance*) when it subscribes; its directive stream replaces the id's current
//! one. Two clones take the stream from each other over and over (each reconnects as soon as
//! it is knocked off), so the session keeps moving back to an instance it was taken from. A
//! restarted agent comes back with a new instance and never returns to the old one, and a
//! network cut reconnects the same instance (no move at all): neither is a clone.
//!
//! [`CloneWatch`] is the pure decision: it is told every subscription with its time and says
//! when an id is to be quarantined. The coordinator persists the quarantine; this keeps only a
//! short in-memory history per agent (an id and its current instance once the window has
//! passed: as many entries as agents).

use std::collections::{HashMap, VecDeque};

use crate::model::Millis;

/// How many moves of the session back to an instance it was taken from, within
/// [`WINDOW_MS`], make a clone.
pub const RETURNS: usize = 3;
/// The window in which [`RETURNS`] returns make a clone, milliseconds.
pub const WINDOW_MS: Millis = 30_000;

/// The instances one agent id was subscribed from lately.
#[derive(Debug, Default)]
struct History {
    /// The instance holding the session now.
    current: String,
    /// Instances the session was taken from, with when (within the window).
    displaced: VecDeque<(Millis, String)>,
    /// When the session moved back to a displaced instance (within the window).
    returns: VecDeque<Millis>,
}

/// What [`CloneWatch::subscribed`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Fine,
    /// Quarantine the id: the reason names what was seen.
    Clone(String),
}

/// Watches subscriptions for one coordinator (see the module's doc).
#[derive(Debug, Default)]
pub struct CloneWatch {
    agents: HashMap<String, History>,
}

impl CloneWatch {
    /// Records that `agent_id` subscribed from `instance` at `now`. An empty instance (an
    /// older agent without one) is never judged.
    pub fn subscribed(&mut self, agent_id: &str, instance: &str, now: Millis) -> Verdict {
        if instance.is_empty() {
            return Verdict::Fine;
        }
        let h = self.agents.entry(agent_id.to_string()).or_default();
        while h
            .displaced
            .front()
            .is_some_and(|&(at, _)| now.saturating_sub(at) >= WINDOW_MS)
        {
            h.displaced.pop_front();
        }
        while h
            .returns
            .front()
            .is_some_and(|&at| now.saturating_sub(at) >= WINDOW_MS)
        {
            h.returns.pop_front();
        }
        if h.current.is_empty() || h.current == instance {
            h.current = instance.to_string();
            return Verdict::Fine;
        }
        if h.displaced.iter().any(|(_, i)| i == instance) {
            h.returns.push_back(now);
        }
        let previous = std::mem::replace(&mut h.current, instance.to_string());
        h.displaced.retain(|(_, i)| i != instance && *i != previous);
        h.displaced.push_back((now, previous));
        // Bounded: only the last few instances matter.
        while h.displaced.len() > 8 {
            h.displaced.pop_front();
        }
        if h.returns.len() >= RETURNS {
            let n = h.returns.len();
            self.agents.remove(agent_id);
            return Verdict::Clone(format!(
                "two agent processes claim this id: its directive stream moved back to an \
                 instance it had been taken from {n} times within {}s (a copied state directory \
                 or disk image)",
                WINDOW_MS / 1000
            ));
        }
        Verdict::Fine
    }

    /// Forgets an agent's history (its quarantine was lifted).
    pub fn forget(&mut self, agent_id: &str) {
        self.agents.remove(agent_id);
    }
}

/// What the operator is told to do about a quarantined id.
pub fn remedy(agent_id: &str) -> String {
    format!(
        "stop one of the two boards, delete agent-id (and agent.key, agent.pem if enrolled) \
         from its state directory, start it again so it takes a new id, then run \
         `fleetctl agents release {agent_id}`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_instances_taking_the_stream_from_each_other_are_a_clone() {
        let mut w = CloneWatch::default();
        let mut verdicts = Vec::new();
        for i in 0..8i64 {
            let instance = if i % 2 == 0 { "a" } else { "b" };
            verdicts.push(w.subscribed("agent", instance, i * 500));
        }
        // a, b, a(1), b(2), a(3): the fifth subscription is the third return.
        assert_eq!(verdicts.iter().position(|v| *v != Verdict::Fine), Some(4));
        assert!(matches!(&verdicts[4], Verdict::Clone(r) if r.contains("3 times")));
    }

    #[test]
    fn a_restart_or_a_reconnect_is_not_a_clone() {
        let mut w = CloneWatch::default();
        // The same instance reconnecting after a network cut, many times.
        for i in 0..20i64 {
            assert_eq!(w.subscribed("agent", "a", i * 100), Verdict::Fine);
        }
        // Restarted once, and then restarted over and over: new instances, never an old one.
        for i in 0..20i64 {
            let instance = format!("restart-{i}");
            assert_eq!(
                w.subscribed("agent", &instance, 2_000 + i * 100),
                Verdict::Fine
            );
            assert_eq!(
                w.subscribed("agent", &instance, 2_050 + i * 100),
                Verdict::Fine
            );
        }
        // Older agents without an instance are never judged.
        for i in 0..20i64 {
            assert_eq!(w.subscribed("old", "", i), Verdict::Fine);
        }
    }

    #[test]
    fn returns_further_apart_than_the_window_are_not_a_clone() {
        let mut w = CloneWatch::default();
        for i in 0..10i64 {
            let instance = if i % 2 == 0 { "a" } else { "b" };
            assert_eq!(
                w.subscribed("agent", instance, i * WINDOW_MS / 2),
                Verdict::Fine,
                "step {i}"
            );
        }
    }

    #[test]
    fn agents_are_judged_apart_and_forgotten_on_release() {
        let mut w = CloneWatch::default();
        for i in 0..4i64 {
            let (x, y) = if i % 2 == 0 { ("a", "c") } else { ("b", "d") };
            assert_eq!(w.subscribed("one", x, i), Verdict::Fine);
            assert_eq!(w.subscribed("two", y, i), Verdict::Fine);
        }
        w.forget("one");
        assert_eq!(w.subscribed("one", "a", 5), Verdict::Fine);
        assert!(matches!(w.subscribed("two", "c", 5), Verdict::Clone(_)));
        assert!(remedy("x").contains("fleetctl agents release x"));
    }
}
