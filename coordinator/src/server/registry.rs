//! Live agent sessions: who has a directive stream open, when each was last heard from, and
//! what it was last sent. In memory only: after a restart agents reconnect and are re-sent
//! their desired state.
//!
//! An open stream alone does not make an agent live: a connection can be half-open (a silent
//! partition keeps both ends' sockets open while nothing is forwarded). An agent is live while
//! its stream is open *and* it was heard from (subscribe, heartbeat, any call) within the
//! offline window; [`Registry::close_stale`] ends the sessions that are not.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fleetcal_proto::pb;
use tokio::sync::mpsc;

use super::clones::{CloneWatch, Verdict};
use crate::model::Millis;

/// What a directive stream carries.
pub type DirectiveItem = Result<pb::Directive, tonic::Status>;

struct Session {
    conn: u64,
    tx: mpsc::Sender<DirectiveItem>,
    last_sent: Option<pb::Directive>,
    /// When the agent was last heard from on any call.
    last_contact: Millis,
    /// When `last_contact` was last written to the store.
    persisted: Millis,
}

/// What [`Registry::touch`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touched {
    /// The agent has no open session: record the contact in the store.
    NoSession,
    /// Recorded in memory; [`Registry::due_contacts`] hands it to the store later.
    InMemory,
}

/// The open directive streams, by agent id.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Session>>,
    /// Revoked agents (loaded from the store at start, added by a revocation).
    revoked: Mutex<HashSet<String>>,
    /// Agents quarantined as cloned boards, with the reason (the store's list, read again on
    /// every dispatch pass, so a quarantine or release by another coordinator shows here).
    quarantined: Mutex<HashMap<String, String>>,
    /// Which instances subscribed as which agent lately ([`CloneWatch`]).
    clones: Mutex<CloneWatch>,
    next_conn: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for an agent at `now`, replacing (and thereby closing) an older one.
    /// Returns its connection number and the stream's receiving end.
    pub fn connect(&self, agent_id: &str, now: Millis) -> (u64, mpsc::Receiver<DirectiveItem>) {
        let (tx, rx) = mpsc::channel(8);
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if !self.closed.load(Ordering::SeqCst) {
            self.lock().insert(
                agent_id.to_string(),
                Session {
                    conn,
                    tx,
                    last_sent: None,
                    last_contact: now,
                    persisted: now,
                },
            );
        }
        (conn, rx)
    }

    /// Records contact from an agent at `now` (in memory, for an agent with a session).
    pub fn touch(&self, agent_id: &str, now: Millis) -> Touched {
        let mut sessions = self.lock();
        let Some(s) = sessions.get_mut(agent_id) else {
            return Touched::NoSession;
        };
        s.last_contact = s.last_contact.max(now);
        Touched::InMemory
    }

    /// The contacts to write to the store at `now`: each session's last contact when the
    /// store's copy is `persist_every` or more older, marked written. The driver writes them
    /// all in one transaction, so a large fleet's heartbeats are not a write each.
    pub fn due_contacts(&self, now: Millis, persist_every: Millis) -> Vec<(String, Millis)> {
        let mut sessions = self.lock();
        sessions
            .iter_mut()
            .filter(|(_, s)| s.last_contact > s.persisted && now - s.persisted >= persist_every)
            .map(|(id, s)| {
                s.persisted = s.last_contact;
                (id.clone(), s.last_contact)
            })
            .collect()
    }

    /// When an agent with an open session was last heard from; `None` without a session.
    pub fn last_contact(&self, agent_id: &str) -> Option<Millis> {
        self.lock().get(agent_id).map(|s| s.last_contact)
    }

    /// The agents with a stream open that were heard from within `window` of `now`.
    pub fn live(&self, now: Millis, window: Millis) -> HashSet<String> {
        self.lock()
            .iter()
            .filter(|(_, s)| now - s.last_contact < window)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Ends the sessions not heard from within `window` of `now` (a half-open connection, an
    /// agent that stopped sending heartbeats); their streams end. Returns the agents with how
    /// long they had been silent.
    pub fn close_stale(&self, now: Millis, window: Millis) -> Vec<(String, Millis)> {
        let mut sessions = self.lock();
        let stale: Vec<(String, Millis)> = sessions
            .iter()
            .filter(|(_, s)| now - s.last_contact >= window)
            .map(|(id, s)| (id.clone(), now - s.last_contact))
            .collect();
        for (id, _) in &stale {
            sessions.remove(id);
        }
        stale
    }

    /// Ends a session if it is still the agent's current one; true when it was.
    pub fn disconnect(&self, agent_id: &str, conn: u64) -> bool {
        let mut sessions = self.lock();
        if sessions.get(agent_id).is_some_and(|s| s.conn == conn) {
            sessions.remove(agent_id);
            return true;
        }
        false
    }

    /// Ends an agent's session, whichever it is (its stream ends).
    pub fn close(&self, agent_id: &str) {
        self.lock().remove(agent_id);
    }

    /// Whether an agent has a stream open.
    pub fn is_connected(&self, agent_id: &str) -> bool {
        self.lock().contains_key(agent_id)
    }

    /// Sends a directive unless it equals the last one sent on the agent's current stream.
    /// A full or closed stream drops the message and is retried on the next change or tick.
    pub fn send_if_changed(&self, agent_id: &str, directive: &pb::Directive) {
        let mut sessions = self.lock();
        let Some(s) = sessions.get_mut(agent_id) else {
            return;
        };
        if s.last_sent.as_ref() == Some(directive) {
            return;
        }
        if s.tx.try_send(Ok(directive.clone())).is_ok() {
            s.last_sent = Some(directive.clone());
        }
    }

    /// Marks agents revoked and ends their sessions (their streams end at once).
    pub fn revoke(&self, agent_ids: impl IntoIterator<Item = String>) {
        let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        let mut sessions = self.lock();
        for id in agent_ids {
            sessions.remove(&id);
            revoked.insert(id);
        }
    }

    /// Whether an agent is revoked.
    pub fn is_revoked(&self, agent_id: &str) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(agent_id)
    }

    /// Records that `agent_id` subscribed from agent process `instance` at `now`
    /// ([`CloneWatch`]); an agent already quarantined is not judged again.
    pub fn watch_subscription(&self, agent_id: &str, instance: &str, now: Millis) -> Verdict {
        if self.quarantine(agent_id).is_some() {
            return Verdict::Fine;
        }
        self.clones
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .subscribed(agent_id, instance, now)
    }

    /// Replaces the quarantined agents (id → reason) with the store's list.
    pub fn set_quarantined(&self, agents: impl IntoIterator<Item = (String, String)>) {
        *self.quarantined.lock().unwrap_or_else(|p| p.into_inner()) = agents.into_iter().collect();
    }

    /// Marks one agent quarantined (until the store's list is read again).
    pub fn add_quarantined(&self, agent_id: &str, reason: &str) {
        self.quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agent_id.to_string(), reason.to_string());
    }

    /// Lifts an agent's quarantine here and forgets its subscription history.
    pub fn release(&self, agent_id: &str) {
        self.quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(agent_id);
        self.clones
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget(agent_id);
    }

    /// Why an agent is quarantined, if it is.
    pub fn quarantine(&self, agent_id: &str) -> Option<String> {
        self.quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent_id)
            .cloned()
    }

    /// Closes every stream and refuses new ones (graceful shutdown).
    pub fn close_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.lock().clear();
    }
}

/// Ends a session when its response stream is dropped (the agent went away), then calls
/// `on_close` so the dispatch driver can react.
pub struct SessionGuard {
    /// The registry.
    pub registry: Arc<Registry>,
    /// The agent.
    pub agent_id: String,
    /// The session's connection number.
    pub conn: u64,
    /// Called after the session ended, when it was still the current one.
    pub on_close: Box<dyn Fn() + Send + Sync>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.registry.disconnect(&self.agent_id, self.conn) {
            (self.on_close)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> pb::Directive {
        pb::Directive {
            action: Some(pb::directive::Action::Idle(pb::Idle {})),
        }
    }

    #[test]
    fn sends_only_changes_and_a_reconnect_replaces_the_session() {
        let r = Registry::default();
        let (c1, mut rx1) = r.connect("a", 0);
        r.send_if_changed("a", &idle());
        r.send_if_changed("a", &idle());
        assert!(rx1.try_recv().is_ok());
        assert!(
            rx1.try_recv().is_err(),
            "an unchanged directive is not re-sent"
        );
        let (c2, mut rx2) = r.connect("a", 0);
        assert!(rx1.try_recv().is_err(), "old stream closed");
        r.send_if_changed("a", &idle());
        assert!(rx2.try_recv().is_ok(), "a new stream gets the state again");
        assert!(
            !r.disconnect("a", c1),
            "a stale session does not end the new one"
        );
        assert!(r.is_connected("a"));
        assert!(r.disconnect("a", c2));
        assert!(r.live(0, 1).is_empty());
    }

    #[test]
    fn an_open_stream_is_live_only_while_the_agent_is_heard_from() {
        let r = Registry::default();
        let (_, mut rx) = r.connect("a", 1_000);
        let (_, _rx_b) = r.connect("b", 1_000);
        assert_eq!(r.live(1_500, 1_000).len(), 2);
        // b keeps sending heartbeats; a goes silent (a half-open connection).
        assert_eq!(r.touch("b", 1_900), Touched::InMemory);
        assert_eq!(r.touch("nobody", 1_900), Touched::NoSession);
        let live = r.live(2_500, 1_000);
        assert!(live.contains("b") && !live.contains("a"), "{live:?}");
        assert_eq!(r.last_contact("b"), Some(1_900));
        // A touch dated before the last contact does not move it back.
        r.touch("b", 1_200);
        assert_eq!(r.last_contact("b"), Some(1_900));
        assert_eq!(r.close_stale(2_500, 1_000), vec![("a".to_string(), 1_500)]);
        assert!(!r.is_connected("a") && r.is_connected("b"));
        assert!(
            matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)),
            "the stale session's stream ended"
        );
    }

    #[test]
    fn a_quarantine_follows_the_store_and_a_release_forgets_the_history() {
        let r = Registry::default();
        let flip = |r: &Registry, from: i64| {
            (0..6)
                .map(|i| r.watch_subscription("a", if i % 2 == 0 { "x" } else { "y" }, from + i))
                .filter(|v| *v != Verdict::Fine)
                .count()
        };
        assert_eq!(flip(&r, 0), 1, "judged a clone once");
        r.add_quarantined("a", "clone");
        assert_eq!(r.quarantine("a").as_deref(), Some("clone"));
        assert_eq!(flip(&r, 10), 0, "a quarantined id is not judged again");
        r.set_quarantined([("b".to_string(), "other".to_string())]);
        assert_eq!(
            r.quarantine("a"),
            None,
            "the store's list replaces this one"
        );
        assert!(r.quarantine("b").is_some());
        r.release("b");
        assert_eq!(r.quarantine("b"), None);
        r.release("a");
        assert_eq!(flip(&r, 40), 1, "released: judged again");
    }

    #[test]
    fn contact_is_persisted_at_most_once_per_period() {
        let r = Registry::default();
        r.connect("a", 0);
        r.connect("b", 0);
        assert_eq!(r.touch("a", 4_000), Touched::InMemory);
        assert!(r.due_contacts(4_000, 5_000).is_empty(), "not due yet");
        r.touch("a", 5_000);
        assert_eq!(
            r.due_contacts(5_000, 5_000),
            vec![("a".to_string(), 5_000)],
            "b, not heard from since it connected, has nothing to write"
        );
        assert!(r.due_contacts(6_000, 5_000).is_empty(), "written once");
        r.close("b");
        assert!(!r.is_connected("b") && r.is_connected("a"));
        r.touch("a", 9_000);
        assert!(r.due_contacts(9_000, 5_000).is_empty(), "within the period");
        r.touch("a", 10_000);
        assert_eq!(
            r.due_contacts(10_000, 5_000),
            vec![("a".to_string(), 10_000)]
        );
    }
}
