//! SIGTERM and SIGINT as one stream of shutdown requests.
//!
//! The first request stops the link and lets the current run finish (its result is spooled and
//! one upload attempted); a second one abandons the run. A finished result is always in the
//! spool before its upload, so nothing finished is lost either way.

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::AgentError;

/// Both signals.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers (from now on the signals no longer kill the process).
    pub fn install() -> Result<Signals, AgentError> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| AgentError::Usage(format!("cannot handle {name}: {e}")))
        };
        Ok(Signals {
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// The next SIGTERM or SIGINT (cancel-safe).
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
