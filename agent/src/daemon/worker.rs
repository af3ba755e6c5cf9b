//! Runs the coordinator's plans, one at a time.
//!
//! A plan whose run id is running, done in this process, waiting in the spool, or acknowledged
//! since start is ignored (the coordinator re-sends desired state). A new plan while another runs waits (only the latest waiting plan
//! is kept; Idle drops it): a calibration cannot be interrupted mid-figure. A run reports
//! RUNNING, calibrates on the blocking pool, spools its result and wakes the uploader; a
//! failure is spooled the same way and reported as FAILED with the error message.

use std::collections::HashSet;
use std::sync::Arc;

use fleetcal_proto::pb::{Plan, RunState};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::plan::{past_deadline, to_request, LocalSettings};
use super::rpc::Rpc;
use super::spool::{valid_run_id, Spool};
use super::uploader::Uploader;
use crate::calibrate::calibrate;
use crate::report::QuietConsole;

/// What the link forwards to the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// Run this plan (unless already run).
    Plan(Box<Plan>),
    /// Nothing is assigned: drop a waiting plan.
    Idle,
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The result is spooled for upload.
    Spooled,
    /// The run failed; the failure is spooled for ReportProgress(FAILED).
    Failed(String),
}

/// Everything a run needs.
#[derive(Debug)]
pub struct RunContext {
    /// The coordinator.
    pub rpc: Rpc,
    /// Where results go first.
    pub spool: Spool,
    /// Woken after a result is spooled.
    pub uploader: Uploader,
    /// The agent's own settings.
    pub local: LocalSettings,
}

/// The worker: owns the running plan and the set of run ids seen.
pub struct Worker {
    ctx: Arc<RunContext>,
    current: Option<(String, JoinHandle<Outcome>)>,
    waiting: Option<Plan>,
    seen: HashSet<String>,
}

impl Worker {
    /// A worker with nothing running.
    pub fn new(ctx: RunContext) -> Worker {
        Worker {
            ctx: Arc::new(ctx),
            current: None,
            waiting: None,
            seen: HashSet::new(),
        }
    }

    /// Serves orders until the sender is dropped, then finishes the current run.
    pub async fn run(mut self, mut orders: mpsc::Receiver<Order>) {
        loop {
            tokio::select! {
                order = orders.recv() => match order {
                    Some(Order::Plan(plan)) => self.offer(*plan),
                    Some(Order::Idle) => self.waiting = None,
                    None => break,
                },
                (run_id, outcome) = wait(&mut self.current) => {
                    log_outcome(&run_id, &outcome);
                    self.current = None;
                    if let Some(plan) = self.waiting.take() {
                        self.start(plan);
                    }
                }
            }
        }
        if let Some((run_id, _)) = &self.current {
            tracing::info!(run_id = %run_id, "shutting down: finishing the current run");
            let (run_id, outcome) = wait(&mut self.current).await;
            log_outcome(&run_id, &outcome);
        }
    }

    fn offer(&mut self, plan: Plan) {
        let id = plan.run_id.as_str();
        let known = self.seen.contains(id)
            || self.waiting.as_ref().is_some_and(|w| w.run_id == id)
            || self.ctx.spool.knows(id);
        match admit(known, self.current.is_some()) {
            Admission::Ignore => {
                tracing::debug!(run_id = %id, "plan already running or done; ignored");
            }
            Admission::Wait => {
                tracing::info!(run_id = %id, "plan waits for the current run");
                self.waiting = Some(plan);
            }
            Admission::Start => self.start(plan),
        }
    }

    fn start(&mut self, plan: Plan) {
        let run_id = plan.run_id.clone();
        tracing::info!(run_id = %run_id, preset = %plan.preset_id, framework = %plan.framework, "run started");
        self.seen.insert(run_id.clone());
        let task = tokio::spawn(execute(self.ctx.clone(), plan));
        self.current = Some((run_id, task));
    }
}

/// What to do with an offered plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Its run id is running, waiting, done or spooled: a re-sent desired state.
    Ignore,
    /// Another run is going: it waits (replacing any waiting plan).
    Wait,
    /// Run it now.
    Start,
}

/// The idempotency rule: `known` = the run id was seen, waits, or is known to the spool.
pub fn admit(known: bool, busy: bool) -> Admission {
    match (known, busy) {
        (true, _) => Admission::Ignore,
        (false, true) => Admission::Wait,
        (false, false) => Admission::Start,
    }
}

/// Waits for the current run; pending forever when there is none.
async fn wait(current: &mut Option<(String, JoinHandle<Outcome>)>) -> (String, Outcome) {
    match current {
        Some((run_id, task)) => {
            let outcome = task
                .await
                .unwrap_or_else(|e| Outcome::Failed(format!("run task failed: {e}")));
            (run_id.clone(), outcome)
        }
        None => std::future::pending().await,
    }
}

fn log_outcome(run_id: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Spooled => tracing::info!(run_id = %run_id, "run finished; result spooled"),
        Outcome::Failed(m) => tracing::warn!(run_id = %run_id, "run failed: {m}"),
    }
}

async fn execute(ctx: Arc<RunContext>, plan: Plan) -> Outcome {
    let run_id = plan.run_id.clone();
    let now = chrono::Utc::now().timestamp();
    let request = if !valid_run_id(&run_id) {
        Err(format!("run id '{run_id}' is not usable as a file name"))
    } else if past_deadline(&plan, now) {
        Err(format!(
            "deadline {} passed before the run started",
            plan.deadline
        ))
    } else {
        to_request(&plan, &ctx.local)
    };
    let request = match request {
        Ok(r) => r,
        Err(m) => return fail(&ctx, &run_id, m).await,
    };
    let rpc = ctx.rpc.clone();
    let id = run_id.clone();
    tokio::spawn(async move {
        if let Err(s) = rpc.report(&id, RunState::Running, "calibrating").await {
            tracing::warn!(run_id = %id, "could not report RUNNING: {}", s.message());
        }
    });
    let calibrated =
        tokio::task::spawn_blocking(move || calibrate(&request, &mut QuietConsole::default()))
            .await;
    let mut result = match calibrated {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(&ctx, &run_id, e.to_string()).await,
        Err(e) => return fail(&ctx, &run_id, format!("calibration panicked: {e}")).await,
    };
    if result.metadata.run_id != run_id {
        tracing::warn!(run_id = %run_id, got = %result.metadata.run_id, "result run id corrected");
        result.metadata.run_id = run_id.clone();
    }
    match ctx.spool.store(&run_id, &result.to_json()) {
        Ok(path) => {
            tracing::info!(run_id = %run_id, "result spooled at {}", path.display());
            ctx.uploader.wake();
            Outcome::Spooled
        }
        Err(e) => fail(&ctx, &run_id, format!("cannot spool the result: {e}")).await,
    }
}

/// Spools the failure for the uploader (reported as soon as the coordinator is reachable);
/// a run id unusable as a file name is reported directly, once.
async fn fail(ctx: &RunContext, run_id: &str, message: String) -> Outcome {
    match ctx.spool.store_failure(run_id, &message) {
        Ok(_) => ctx.uploader.wake(),
        Err(e) => {
            tracing::warn!(run_id, "cannot spool the failure ({e}); reporting it once");
            if let Err(s) = ctx.rpc.report(run_id, RunState::Failed, &message).await {
                tracing::warn!(run_id, "could not report FAILED: {}", s.message());
            }
        }
    }
    Outcome::Failed(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_rules() {
        assert_eq!(admit(true, false), Admission::Ignore);
        assert_eq!(admit(true, true), Admission::Ignore);
        assert_eq!(admit(false, true), Admission::Wait);
        assert_eq!(admit(false, false), Admission::Start);
    }

    #[tokio::test]
    async fn wait_without_a_run_never_resolves_and_with_one_it_does() {
        let mut none = None;
        tokio::select! {
            biased;
            _ = wait(&mut none) => panic!("no run, no outcome"),
            () = std::future::ready(()) => {}
        }
        let mut some = Some(("r".to_string(), tokio::spawn(async { Outcome::Spooled })));
        assert_eq!(wait(&mut some).await, ("r".to_string(), Outcome::Spooled));
    }
}
