//! Live agent sessions: who has a directive stream open, and what it was last sent.
//! In memory only: after a restart agents reconnect and are re-sent their desired state.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fleetcal_proto::pb;
use tokio::sync::mpsc;

/// What a directive stream carries.
pub type DirectiveItem = Result<pb::Directive, tonic::Status>;

struct Session {
    conn: u64,
    tx: mpsc::Sender<DirectiveItem>,
    last_sent: Option<pb::Directive>,
}

/// The open directive streams, by agent id.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Session>>,
    next_conn: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for an agent, replacing (and thereby closing) an older one.
    /// Returns its connection number and the stream's receiving end.
    pub fn connect(&self, agent_id: &str) -> (u64, mpsc::Receiver<DirectiveItem>) {
        let (tx, rx) = mpsc::channel(8);
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if !self.closed.load(Ordering::SeqCst) {
            self.lock().insert(
                agent_id.to_string(),
                Session {
                    conn,
                    tx,
                    last_sent: None,
                },
            );
        }
        (conn, rx)
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

    /// Whether an agent has a stream open.
    pub fn is_connected(&self, agent_id: &str) -> bool {
        self.lock().contains_key(agent_id)
    }

    /// The agents with a stream open.
    pub fn connected(&self) -> HashSet<String> {
        self.lock().keys().cloned().collect()
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

    /// Closes every stream and refuses new ones (graceful shutdown).
    pub fn close_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.lock().clear();
    }
}

/// Ends a session when its response stream is dropped (the agent went away), then calls
/// `on_close` so the scheduler can react.
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
        let (c1, mut rx1) = r.connect("a");
        r.send_if_changed("a", &idle());
        r.send_if_changed("a", &idle());
        assert!(rx1.try_recv().is_ok());
        assert!(
            rx1.try_recv().is_err(),
            "an unchanged directive is not re-sent"
        );
        let (c2, mut rx2) = r.connect("a");
        assert!(rx1.try_recv().is_err(), "old stream closed");
        r.send_if_changed("a", &idle());
        assert!(rx2.try_recv().is_ok(), "a new stream gets the state again");
        assert!(
            !r.disconnect("a", c1),
            "a stale session does not end the new one"
        );
        assert!(r.is_connected("a"));
        assert!(r.disconnect("a", c2));
        assert!(r.connected().is_empty());
    }
}
