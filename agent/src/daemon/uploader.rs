//! Drains the spool to the coordinator, oldest outcome first: results by UploadResult,
//! failures by ReportProgress(FAILED).
//!
//! Woken at start-up, after every (re)connect and whenever a run spooled an outcome; after a
//! failed attempt it also retries on its own every `retry`. An outcome is deleted only on an
//! acknowledgement (a result stored, or a duplicate of one already stored; a failure
//! recorded); a permanent refusal moves it to `spool/rejected/`; any other failure stops the
//! drain until the next wake-up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use fleetcal_proto::pb::RunState;

use super::rpc::{is_permanent, Rpc};
use super::spool::{Kind, Spool};

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The spool is empty (as far as this drain saw).
    Empty,
    /// The coordinator could not be reached (or the spool not read); results remain.
    Blocked,
}

/// The uploader: cheap to clone, all clones share the wake-up.
#[derive(Debug, Clone)]
pub struct Uploader {
    rpc: Rpc,
    spool: Spool,
    wake: Arc<Notify>,
}

impl Uploader {
    /// An uploader of `spool` through `rpc`.
    pub fn new(rpc: Rpc, spool: Spool) -> Uploader {
        Uploader {
            rpc,
            spool,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Asks for a drain (remembered if the uploader is busy).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends every spooled outcome once, oldest first.
    pub async fn drain(&self) -> Drained {
        let entries = match self.spool.pending() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("cannot list the spool: {e}");
                return Drained::Blocked;
            }
        };
        for entry in entries {
            let text = match self.spool.read(&entry) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("cannot read spooled outcome: {e}");
                    return Drained::Blocked;
                }
            };
            let run_id = entry.run_id.as_str();
            let sent = match entry.kind {
                Kind::Result => self.rpc.upload(run_id, text).await.map(|ack| {
                    let how = if ack.stored {
                        "stored"
                    } else {
                        "already stored"
                    };
                    tracing::info!(run_id, "result uploaded ({how})");
                }),
                Kind::Failure => self
                    .rpc
                    .report(run_id, RunState::Failed, &text)
                    .await
                    .map(|_| tracing::info!(run_id, "failure reported")),
            };
            let kept = match sent {
                Ok(()) => self.spool.remove(&entry).err(),
                Err(status) if is_permanent(&status) => {
                    let reason = format!("{:?}: {}", status.code(), status.message());
                    match self.spool.reject(&entry, &reason) {
                        Ok(to) => {
                            let to = to.display();
                            tracing::error!(run_id, "coordinator refused ({reason}); kept at {to}");
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
        Drained::Empty
    }

    /// Drains on every wake-up, and every `retry` while results are blocked; never returns.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::options::RunOptions;

    #[tokio::test]
    async fn an_unreachable_coordinator_leaves_results_spooled() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions::new(format!("http://127.0.0.1:{port}"), dir.path());
        let spool = Spool::open(&opts.spool_dir()).unwrap();
        spool.store("r1", "{}").unwrap();
        spool.store_failure("r2", "no such preset").unwrap();
        let up = Uploader::new(Rpc::new(&opts, "agent").unwrap(), spool.clone());
        assert_eq!(up.drain().await, Drained::Blocked);
        assert!(spool.contains("r1") && spool.contains("r2"));
        for e in spool.pending().unwrap() {
            spool.remove(&e).unwrap();
        }
        assert_eq!(up.drain().await, Drained::Empty);
    }
}
