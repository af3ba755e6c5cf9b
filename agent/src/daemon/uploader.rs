//! Delivers every run's outcome to the coordinator, oldest first: results by UploadResult,
//! failures by ReportProgress(FAILED).
//!
//! An outcome is first stored in the spool ([`Uploader::result`], [`Uploader::failure`]) and
//! deleted from it only on an acknowledgement (a result stored, or a duplicate of one already
//! stored; a failure recorded). When the spool cannot store it (a full disk, a read-only
//! state dir) the outcome is *held* in memory instead, the log says so, and it is sent
//! directly, retried like a spooled one; every drain first tries to move held outcomes into
//! the spool again (once there is room they are durable). At most [`MAX_HELD`] outcomes are
//! held: past that the oldest held result is replaced by a failure report saying it was
//! dropped, so its run still ends (FAILED, with the reason) as soon as the coordinator is
//! reachable. Outcomes still held at shutdown are lost, and the log names their runs.
//!
//! A permanent refusal moves a spooled outcome to `spool/rejected/` (a held one is dropped);
//! a refused *result* then becomes a failure report `result refused by the coordinator: …`,
//! so its run ends FAILED instead of staying running until its timeout. A spooled file that
//! cannot be sent at all (not UTF-8, too large) is set aside once as `<name>.corrupt`, and its
//! run is reported FAILED the same way. Any other failure stops the drain until the next
//! wake-up: at start-up, after every (re)connect, whenever a run delivered an outcome, and
//! every `retry` while outcomes are blocked.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tonic::Status;

use fleetcal_proto::pb::RunState;

use super::rpc::{is_permanent, Rpc};
use super::spool::{Entry, Kind, Spool};
use crate::AgentError;

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nothing is left to send (as far as this drain saw).
    Empty,
    /// The coordinator could not be reached (or the spool not read); outcomes remain.
    Blocked,
}

/// Where a delivered outcome waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// In the spool, at this path.
    Spooled(PathBuf),
    /// In memory: the spool could not store it, for this reason.
    Held(String),
}

/// The most outcomes held in memory (see the module doc).
pub const MAX_HELD: usize = 16;

/// An outcome the spool could not store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The run.
    pub run_id: String,
    /// Result or failure.
    pub kind: Kind,
    /// The result document or the failure message.
    pub text: String,
    /// Why the spool could not store it.
    pub why: String,
}

/// The uploader: cheap to clone, all clones share the wake-up and the held outcomes.
#[derive(Debug, Clone)]
pub struct Uploader {
    rpc: Rpc,
    spool: Spool,
    wake: Arc<Notify>,
    held: Arc<Mutex<VecDeque<Held>>>,
}

impl Uploader {
    /// An uploader of `spool` through `rpc`.
    pub fn new(rpc: Rpc, spool: Spool) -> Uploader {
        Uploader {
            rpc,
            spool,
            wake: Arc::new(Notify::new()),
            held: Arc::default(),
        }
    }

    /// Asks for a drain (remembered if the uploader is busy).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers a run's result: spooled, or held in memory when the spool cannot store it.
    pub fn result(&self, run_id: &str, json: String) -> Waiting {
        self.deliver(run_id, Kind::Result, json)
    }

    /// Delivers a run's failure: spooled, or held in memory when the spool cannot store it.
    pub fn failure(&self, run_id: &str, message: String) -> Waiting {
        self.deliver(run_id, Kind::Failure, message)
    }

    fn deliver(&self, run_id: &str, kind: Kind, text: String) -> Waiting {
        let waiting = match self.spool.store_as(run_id, kind, &text) {
            Ok(path) => Waiting::Spooled(path),
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(
                    run_id,
                    "cannot spool the {} ({why}); keeping it in memory and sending it directly",
                    what(kind)
                );
                self.hold(Held {
                    run_id: run_id.to_string(),
                    kind,
                    text,
                    why: why.clone(),
                });
                Waiting::Held(why)
            }
        };
        self.wake();
        waiting
    }

    /// Keeps an outcome in memory, within [`MAX_HELD`].
    fn hold(&self, held: Held) {
        let Ok(mut q) = self.held.lock() else {
            tracing::error!(run_id = %held.run_id, "the held outcomes are unusable; {} lost", what(held.kind));
            return;
        };
        if q.len() >= MAX_HELD {
            if let Some(oldest) = q.iter_mut().find(|h| h.kind == Kind::Result) {
                tracing::error!(
                    run_id = %oldest.run_id,
                    "{MAX_HELD} outcomes wait in memory: dropping this result, its run will be reported failed"
                );
                oldest.kind = Kind::Failure;
                oldest.text = format!(
                    "result dropped by the agent: the spool cannot store it ({}) and {MAX_HELD} \
                     outcomes already waited in memory",
                    oldest.why
                );
            }
        }
        q.push_back(held);
    }

    /// The run ids and kinds of the outcomes held in memory, oldest first.
    pub fn held(&self) -> Vec<(String, Kind)> {
        self.held.lock().map_or_else(
            |_| Vec::new(),
            |q| q.iter().map(|h| (h.run_id.clone(), h.kind)).collect(),
        )
    }

    fn unhold(&self, run_id: &str, kind: Kind) {
        if let Ok(mut q) = self.held.lock() {
            q.retain(|h| !(h.run_id == run_id && h.kind == kind));
        }
    }

    /// Sends every outcome once, oldest first: the spool's, then those held in memory.
    pub async fn drain(&self) -> Drained {
        self.respool_held();
        if self.drain_spool().await == Drained::Blocked {
            return Drained::Blocked;
        }
        self.drain_held().await
    }

    /// Moves held outcomes into the spool where it has room again.
    fn respool_held(&self) {
        for h in self.held_snapshot() {
            match self.spool.store_as(&h.run_id, h.kind, &h.text) {
                Ok(path) => {
                    self.unhold(&h.run_id, h.kind);
                    tracing::info!(run_id = %h.run_id, "the {} held in memory is now spooled at {}", what(h.kind), path.display());
                }
                Err(e) => tracing::debug!(run_id = %h.run_id, "still cannot spool: {e}"),
            }
        }
    }

    fn held_snapshot(&self) -> Vec<Held> {
        self.held
            .lock()
            .map_or_else(|_| Vec::new(), |q| q.iter().cloned().collect())
    }

    async fn drain_spool(&self) -> Drained {
        let entries = match self.spool.pending() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("cannot list the spool: {e}");
                return Drained::Blocked;
            }
        };
        let mut drained = Drained::Empty;
        for entry in entries {
            let run_id = entry.run_id.as_str();
            let text = match self.spool.read(&entry) {
                Ok(t) => t,
                Err(e) => {
                    let kind = match &e {
                        AgentError::Io { source, .. } => Some(source.kind()),
                        _ => None,
                    };
                    match kind {
                        Some(std::io::ErrorKind::NotFound) => {}
                        Some(std::io::ErrorKind::InvalidData) => {
                            if !self.set_aside(&entry, &e) {
                                drained = Drained::Blocked;
                            }
                        }
                        _ => {
                            tracing::warn!(run_id, "cannot read spooled outcome: {e}");
                            drained = Drained::Blocked;
                        }
                    }
                    continue;
                }
            };
            let kept = match self.send(run_id, entry.kind, text).await {
                Ok(()) => self.spool.remove(&entry).err(),
                Err(status) if is_permanent(&status) => {
                    let reason = format!("{:?}: {}", status.code(), status.message());
                    match self.spool.reject(&entry, &reason) {
                        Ok(to) => {
                            let to = to.display();
                            tracing::error!(run_id, "coordinator refused ({reason}); kept at {to}");
                            self.refused(run_id, entry.kind, &reason);
                            None
                        }
                        Err(e) => Some(e),
                    }
                }
                Err(status) => {
                    let (code, message) = (status.code(), status.message());
                    tracing::warn!(run_id, "send failed, stays spooled: {code:?}: {message}");
                    return Drained::Blocked;
                }
            };
            if let Some(e) = kept {
                tracing::error!("spool: {e}");
                return Drained::Blocked;
            }
        }
        drained
    }

    /// Sets a file that cannot be sent aside (once) and reports its run FAILED; false when
    /// even that failed.
    fn set_aside(&self, entry: &Entry, e: &AgentError) -> bool {
        let run_id = entry.run_id.as_str();
        let kind = what(entry.kind);
        match self.spool.set_aside(entry) {
            Ok(to) => {
                let to = to.display();
                tracing::error!(
                    run_id,
                    "spooled {kind} cannot be sent ({e}); moved aside to {to}"
                );
                self.failure(
                    run_id,
                    format!("the agent's spooled {kind} was unreadable: {e}"),
                );
                true
            }
            Err(m) => {
                tracing::error!(
                    run_id,
                    "spooled {kind} cannot be sent ({e}) nor moved aside ({m})"
                );
                false
            }
        }
    }

    async fn drain_held(&self) -> Drained {
        for h in self.held_snapshot() {
            let run_id = h.run_id.as_str();
            match self.send(run_id, h.kind, h.text.clone()).await {
                Ok(()) => {
                    self.unhold(run_id, h.kind);
                    tracing::info!(
                        run_id,
                        "{} sent directly (the spool could not store it: {})",
                        what(h.kind),
                        h.why
                    );
                }
                Err(status) if is_permanent(&status) => {
                    self.unhold(run_id, h.kind);
                    let reason = format!("{:?}: {}", status.code(), status.message());
                    tracing::error!(
                        run_id,
                        "coordinator refused the {} held in memory ({reason}); dropped",
                        what(h.kind)
                    );
                    self.refused(run_id, h.kind, &reason);
                }
                Err(status) => {
                    let (code, message) = (status.code(), status.message());
                    tracing::warn!(
                        run_id,
                        "send failed, {} stays in memory: {code:?}: {message}",
                        what(h.kind)
                    );
                    return Drained::Blocked;
                }
            }
        }
        Drained::Empty
    }

    /// A refused result becomes a failure report, so that its run ends.
    fn refused(&self, run_id: &str, kind: Kind, reason: &str) {
        if kind == Kind::Result {
            self.failure(
                run_id,
                format!("result refused by the coordinator: {reason}"),
            );
        }
    }

    async fn send(&self, run_id: &str, kind: Kind, text: String) -> Result<(), Status> {
        match kind {
            Kind::Result => self.rpc.upload(run_id, text).await.map(|up| {
                let how = if up.answer.stored {
                    "stored"
                } else {
                    "already stored"
                };
                tracing::info!(
                    run_id,
                    form = up.form,
                    bytes = up.bytes,
                    "result uploaded ({how})"
                );
            }),
            Kind::Failure => self
                .rpc
                .report(run_id, RunState::Failed, &text)
                .await
                .map(|_| tracing::info!(run_id, "failure reported")),
        }
    }

    /// Drains on every wake-up, and every `retry` while outcomes are blocked; never returns.
    pub async fn run(self, retry: Duration) {
        let mut blocked = false;
        loop {
            if blocked {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(retry) => {}
                }
            } else {
                self.wake.notified().await;
            }
            blocked = self.drain().await == Drained::Blocked;
        }
    }
}

/// How the log names an outcome.
fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Result => "result",
        Kind::Failure => "failure report",
    }
}

#[cfg(test)]
#[path = "uploader_tests.rs"]
mod tests;
