//! Runs the coordinator's plans, one at a time, and cancels a run that is no longer wanted.
//!
//! A plan whose run id is running, done in this process, waiting in the spool, or acknowledged
//! since start is ignored (the coordinator re-sends desired state, so a re-sent plan with the
//! running run's id changes nothing). A run reports RUNNING, calibrates on the blocking pool
//! with a [`CancelToken`], and hands its result to the uploader (spooled; when the spool cannot
//! store it, held in memory and uploaded directly); a failure (a run that measured nothing
//! included) is delivered the same way and reported as FAILED with the error message.
//!
//! Cancellation: the running run is cancelled when the coordinator's desired state no longer
//! holds it — `Idle`, or a plan with another run id (that plan then waits for the cancelled
//! run to return, and starts next; only the latest waiting plan is kept, `Idle` drops it) —
//! or when the plan's `timeout_s` (0 = none) has passed since the run started on this agent.
//! The runner stops at its next check (between figures, warm-ups and trials; a call under way
//! finishes first) and the run ends as a failure `cancelled: the coordinator withdrew the run`
//! or `cancelled: timeout of 30 s passed`, spooled and reported as FAILED like any other (the
//! coordinator, which has usually marked the run timed_out already, acknowledges it and keeps
//! its state). The time limit is also kept while shutting down.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fleetcal_proto::pb::{Plan, RunState};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::plan::{to_request, LocalSettings};
use super::rpc::Rpc;
use super::spool::{valid_run_id, Spool};
use super::uploader::{Uploader, Waiting};
use crate::bench::CancelToken;
use crate::calibrate::calibrate;
use crate::report::QuietConsole;

/// What the link forwards to the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// Run this plan (unless already run); a running run with another id is cancelled.
    Plan(Box<Plan>),
    /// Nothing is assigned: drop a waiting plan and cancel the running run.
    Idle,
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The result is spooled for upload.
    Spooled,
    /// The spool could not store the result (the reason): the uploader holds it in memory and
    /// uploads it directly.
    Held(String),
    /// The run failed; the failure is delivered for ReportProgress(FAILED).
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

/// Why a running run is cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelReason {
    /// The coordinator sent `Idle`: the run is no longer assigned (timed out or withdrawn).
    Withdrawn,
    /// The coordinator assigned another run (this id) instead.
    Replaced(String),
    /// The plan's `timeout_s` passed since the run started on this agent.
    Timeout(u32),
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Withdrawn => write!(f, "the coordinator withdrew the run"),
            CancelReason::Replaced(next) => {
                write!(
                    f,
                    "the coordinator withdrew the run and assigned run {next}"
                )
            }
            CancelReason::Timeout(s) => write!(f, "timeout of {s} s passed"),
        }
    }
}

/// The plan's wall-clock limit on this agent: `timeout_s`, 0 = none.
pub fn time_limit(plan: &Plan) -> Option<Duration> {
    (plan.timeout_s > 0).then(|| Duration::from_secs(u64::from(plan.timeout_s)))
}

/// The run in progress.
struct Current {
    run_id: String,
    task: JoinHandle<Outcome>,
    cancel: CancelToken,
    /// When the plan's time limit passes, and the limit in seconds.
    limit: Option<(Instant, u32)>,
}

impl Current {
    /// When the time limit passes, unless the run is already cancelled.
    fn expiry(&self) -> Option<Instant> {
        self.limit
            .filter(|_| !self.cancel.is_cancelled())
            .map(|(at, _)| at)
    }

    /// Cancels the run (once; a finished task is left alone).
    fn cancel(&self, reason: &CancelReason) {
        if self.task.is_finished() {
            return;
        }
        if self.cancel.cancel(reason.to_string()) {
            tracing::warn!(run_id = %self.run_id, "cancelling the run: {reason}");
        }
    }

    fn timed_out(&self) {
        if let Some((_, s)) = self.limit {
            self.cancel(&CancelReason::Timeout(s));
        }
    }
}

/// What the worker is doing, as [`Worker::activity`] publishes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// The run id of the run in progress (until its outcome is handled).
    pub running: Option<String>,
    /// Runs started since the worker was made.
    pub started: u64,
}

/// The worker: owns the running plan and the set of run ids seen.
pub struct Worker {
    ctx: Arc<RunContext>,
    current: Option<Current>,
    waiting: Option<Plan>,
    seen: HashSet<String>,
    activity: watch::Sender<Activity>,
}

impl Worker {
    /// A worker with nothing running.
    pub fn new(ctx: RunContext) -> Worker {
        Worker {
            ctx: Arc::new(ctx),
            current: None,
            waiting: None,
            seen: HashSet::new(),
            activity: watch::channel(Activity::default()).0,
        }
    }

    /// Follows what the worker is doing: which run is in progress, how many started.
    pub fn activity(&self) -> watch::Receiver<Activity> {
        self.activity.subscribe()
    }

    /// Serves orders until the sender is dropped, then finishes the current run (within its
    /// time limit).
    pub async fn run(mut self, mut orders: mpsc::Receiver<Order>) {
        // False once the sender is gone: no more orders, finish the current run and return.
        let mut open = true;
        loop {
            if !open && self.current.is_none() {
                return;
            }
            let expiry = self.current.as_ref().and_then(Current::expiry);
            tokio::select! {
                // A run that has ended is handled before any order, so that an order that
                // arrives after its end (the coordinator's Idle once the result is stored)
                // does not count as withdrawing it.
                biased;
                (run_id, outcome) = wait(&mut self.current) => {
                    log_outcome(&run_id, &outcome);
                    self.current = None;
                    self.activity.send_modify(|a| a.running = None);
                    if let Some(plan) = self.waiting.take().filter(|_| open) {
                        self.start(plan);
                    }
                }
                () = sleep_until(expiry) => {
                    if let Some(c) = &self.current {
                        c.timed_out();
                    }
                }
                order = orders.recv(), if open => match order {
                    Some(Order::Plan(plan)) => self.offer(*plan),
                    Some(Order::Idle) => {
                        self.waiting = None;
                        if let Some(c) = &self.current {
                            c.cancel(&CancelReason::Withdrawn);
                        }
                    }
                    None => {
                        open = false;
                        if let Some(c) = &self.current {
                            tracing::info!(run_id = %c.run_id, "shutting down: finishing the current run");
                        }
                    }
                },
            }
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
            Admission::Replace => {
                if let Some(c) = &self.current {
                    c.cancel(&CancelReason::Replaced(id.to_string()));
                }
                tracing::info!(run_id = %id, "plan waits for the current run to return");
                self.waiting = Some(plan);
            }
            Admission::Start => self.start(plan),
        }
    }

    fn start(&mut self, plan: Plan) {
        let run_id = plan.run_id.clone();
        tracing::info!(run_id = %run_id, preset = %plan.preset_id, framework = %plan.framework, "run started");
        self.seen.insert(run_id.clone());
        let cancel = CancelToken::new();
        let limit = time_limit(&plan).map(|d| (Instant::now() + d, plan.timeout_s));
        let task = tokio::spawn(execute(self.ctx.clone(), plan, cancel.clone()));
        self.activity.send_modify(|a| {
            a.running = Some(run_id.clone());
            a.started += 1;
        });
        self.current = Some(Current {
            run_id,
            task,
            cancel,
            limit,
        });
    }
}

/// What to do with an offered plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Its run id is running, waiting, done or spooled: a re-sent desired state.
    Ignore,
    /// Another run is going, which the coordinator no longer wants: it is cancelled, and this
    /// plan waits for it to return (replacing any waiting plan).
    Replace,
    /// Run it now.
    Start,
}

/// The idempotency rule: `known` = the run id was seen (the running run's included), waits,
/// or is known to the spool.
pub fn admit(known: bool, busy: bool) -> Admission {
    match (known, busy) {
        (true, _) => Admission::Ignore,
        (false, true) => Admission::Replace,
        (false, false) => Admission::Start,
    }
}

/// Waits for the current run; pending forever when there is none.
async fn wait(current: &mut Option<Current>) -> (String, Outcome) {
    match current {
        Some(c) => {
            let outcome = (&mut c.task)
                .await
                .unwrap_or_else(|e| Outcome::Failed(format!("run task failed: {e}")));
            (c.run_id.clone(), outcome)
        }
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`; pending forever when there is none.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn log_outcome(run_id: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Spooled => tracing::info!(run_id = %run_id, "run finished; result spooled"),
        Outcome::Held(why) => tracing::warn!(
            run_id = %run_id,
            "run finished; the result could not be spooled ({why}) and is uploaded directly"
        ),
        Outcome::Failed(m) => tracing::warn!(run_id = %run_id, "run failed: {m}"),
    }
}

async fn execute(ctx: Arc<RunContext>, plan: Plan, cancel: CancelToken) -> Outcome {
    let run_id = plan.run_id.clone();
    // The plan's deadline is the coordinator's, on its clock: it sends a plan only for a run
    // it started, and ends queued runs at the deadline itself. A board's own clock (a day
    // off, or 1970 on a board without a real-time clock) must not turn a wanted run away.
    let request = if !valid_run_id(&run_id) {
        Err(format!(
            "run id '{}' is not usable as a file name",
            fleetcal_proto::quote::bounded(&run_id)
        ))
    } else {
        to_request(&plan, &ctx.local)
    };
    let request = match request {
        Ok(r) => r,
        Err(m) => return fail(&ctx, &run_id, m),
    };
    let rpc = ctx.rpc.clone();
    let id = run_id.clone();
    tokio::spawn(async move {
        if let Err(s) = rpc.report(&id, RunState::Running, "calibrating").await {
            tracing::warn!(run_id = %id, "could not report RUNNING: {}", s.message());
        }
    });
    let calibrated = tokio::task::spawn_blocking(move || {
        calibrate(&request, &mut QuietConsole::default(), &cancel)
    })
    .await;
    let mut result = match calibrated {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(&ctx, &run_id, e.to_string()),
        Err(e) => return fail(&ctx, &run_id, format!("calibration panicked: {e}")),
    };
    if result.metadata.run_id != run_id {
        tracing::warn!(run_id = %run_id, got = %result.metadata.run_id, "result run id corrected");
        result.metadata.run_id = run_id.clone();
    }
    // Spooled, or held in memory and uploaded directly when the spool cannot store it.
    match ctx.uploader.result(&run_id, result.to_json()) {
        Waiting::Spooled(path) => {
            tracing::info!(run_id = %run_id, "result spooled at {}", path.display());
            Outcome::Spooled
        }
        Waiting::Held(why) => Outcome::Held(why),
    }
}

/// Delivers the failure to the uploader (spooled, else held in memory), reported as soon as
/// the coordinator is reachable.
fn fail(ctx: &RunContext, run_id: &str, message: String) -> Outcome {
    ctx.uploader.failure(run_id, message.clone());
    Outcome::Failed(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_rules() {
        assert_eq!(admit(true, false), Admission::Ignore);
        assert_eq!(admit(true, true), Admission::Ignore);
        assert_eq!(admit(false, true), Admission::Replace);
        assert_eq!(admit(false, false), Admission::Start);
    }

    #[test]
    fn cancel_reasons_say_why() {
        assert_eq!(
            CancelReason::Withdrawn.to_string(),
            "the coordinator withdrew the run"
        );
        assert_eq!(
            CancelReason::Replaced("r-2".into()).to_string(),
            "the coordinator withdrew the run and assigned run r-2"
        );
        assert_eq!(
            CancelReason::Timeout(30).to_string(),
            "timeout of 30 s passed"
        );
    }

    #[test]
    fn the_time_limit_is_the_plans_timeout_and_zero_is_none() {
        let plan = |timeout_s| Plan {
            timeout_s,
            ..Plan::default()
        };
        assert_eq!(time_limit(&plan(0)), None);
        assert_eq!(time_limit(&plan(30)), Some(Duration::from_secs(30)));
    }

    fn current(task: JoinHandle<Outcome>, limit: Option<(Instant, u32)>) -> Current {
        Current {
            run_id: "r".into(),
            task,
            cancel: CancelToken::new(),
            limit,
        }
    }

    #[tokio::test]
    async fn wait_without_a_run_never_resolves_and_with_one_it_does() {
        let mut none = None;
        tokio::select! {
            biased;
            _ = wait(&mut none) => panic!("no run, no outcome"),
            () = std::future::ready(()) => {}
        }
        let mut some = Some(current(tokio::spawn(async { Outcome::Spooled }), None));
        assert_eq!(wait(&mut some).await, ("r".to_string(), Outcome::Spooled));
    }

    #[tokio::test]
    async fn a_cancelled_run_keeps_the_first_reason_and_its_time_limit_stops_counting() {
        let at = Instant::now() + Duration::from_secs(30);
        let c = current(
            tokio::spawn(std::future::pending::<Outcome>()),
            Some((at, 30)),
        );
        assert_eq!(c.expiry(), Some(at));
        c.cancel(&CancelReason::Withdrawn);
        c.timed_out();
        assert_eq!(c.expiry(), None);
        assert_eq!(
            c.cancel.check().unwrap_err().to_string(),
            "cancelled: the coordinator withdrew the run"
        );
        c.task.abort();
    }

    #[tokio::test]
    async fn a_finished_run_is_not_cancelled() {
        let task = tokio::spawn(async { Outcome::Spooled });
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
        let c = current(task, None);
        c.cancel(&CancelReason::Withdrawn);
        assert!(!c.cancel.is_cancelled());
    }

    /// A worker on a real spool and a coordinator that is not there (RUNNING reports fail,
    /// which a run shrugs off); its outcomes are read from the spool.
    fn worker(dir: &std::path::Path) -> (Worker, Spool) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = crate::daemon::RunOptions::new(format!("http://127.0.0.1:{port}"), dir);
        let spool = Spool::open(&opts.spool_dir()).unwrap();
        let rpc = Rpc::new(&opts, "agent").unwrap();
        let worker = Worker::new(RunContext {
            uploader: Uploader::new(rpc.clone(), spool.clone()),
            rpc,
            spool: spool.clone(),
            local: LocalSettings {
                threads: Some(1),
                skip_platform_check: true,
                ..LocalSettings::default()
            },
        });
        (worker, spool)
    }

    /// A numpy CPU plan: `long` would take minutes (1000 trials of 512² GEMM, the 5 s cap
    /// per size, every precision), the other a few milliseconds.
    fn numpy_plan(run_id: &str, long: bool, timeout_s: u32) -> Box<Plan> {
        Box::new(Plan {
            run_id: run_id.into(),
            preset_id: "auto".into(),
            framework: "numpy".into(),
            device: "cpu".into(),
            operations: vec![if long { "gemm" } else { "dot" }.into()],
            precisions: vec!["fp64".into()],
            blas_sizes: if long { vec![256, 512, 1024] } else { vec![16] },
            warmup: Some(0),
            trials: if long { 1000 } else { 1 },
            timeout_s,
            ..Plan::default()
        })
    }

    /// Waits (at most a minute) for `run_id`'s outcome in the spool: `Ok(result json)` or
    /// `Err(failure message)`.
    async fn outcome(spool: &Spool, run_id: &str) -> Result<String, String> {
        let started = std::time::Instant::now();
        loop {
            let entries = spool.pending().unwrap();
            if let Some(e) = entries.iter().find(|e| e.run_id == run_id) {
                let text = spool.read(e).unwrap();
                return match e.kind {
                    super::super::spool::Kind::Result => Ok(text),
                    super::super::spool::Kind::Failure => Err(text),
                };
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no outcome for {run_id}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // Holds the lock on the pools' thread counts while its worker calibrates (a test's lock).
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_result_the_full_spool_cannot_store_reaches_the_coordinator_directly() {
        let _threads = crate::testing::thread_counts_shared();
        let Some(disk) = crate::testing::FullDisk::mount("worker: spool full") else {
            return;
        };
        let coordinator = crate::daemon::fake_coordinator::FakeCoordinator::start(0);
        let opts = crate::daemon::RunOptions::new(coordinator.url(), disk.path());
        let spool = Spool::open(&opts.spool_dir()).unwrap();
        let rpc = Rpc::new(&opts, "agent").unwrap();
        let uploader = Uploader::new(rpc.clone(), spool.clone());
        let uploads = tokio::spawn(uploader.clone().run(Duration::from_millis(100)));
        let worker = Worker::new(RunContext {
            uploader: uploader.clone(),
            rpc,
            spool: spool.clone(),
            local: LocalSettings {
                threads: Some(1),
                skip_platform_check: true,
                ..LocalSettings::default()
            },
        });
        let (orders, rx) = mpsc::channel(1);
        orders
            .send(Order::Plan(numpy_plan("r", false, 0)))
            .await
            .unwrap();
        drop(orders);
        worker.run(rx).await;
        let started = std::time::Instant::now();
        // Stored by the coordinator, and its acknowledgement handled by the uploader.
        while coordinator.uploads().is_empty() || !uploader.held().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no upload; held: {:?}",
                uploader.held()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(coordinator.uploads(), ["r"]);
        assert!(spool.pending().unwrap().is_empty());
        let left: Vec<_> = std::fs::read_dir(spool.dir()).unwrap().collect();
        assert!(left.is_empty(), "no partial file: {left:?}");
        uploads.abort();
        coordinator.stop().await;
    }

    // Holds the lock on the pools' thread counts while its worker calibrates (a test's lock).
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_that_measured_nothing_is_reported_failed_not_uploaded() {
        let _threads = crate::testing::thread_counts_shared();
        let dir = tempfile::tempdir().unwrap();
        let (worker, spool) = worker(dir.path());
        let (orders, rx) = mpsc::channel(1);
        let mut plan = numpy_plan("bf", false, 0);
        plan.precisions = vec!["bf16".into()];
        orders.send(Order::Plan(plan)).await.unwrap();
        drop(orders);
        worker.run(rx).await;
        let failure = outcome(&spool, "bf").await.unwrap_err();
        assert!(
            failure.starts_with("no figure was measured: 1 unsupported (first: dot bf16"),
            "{failure}"
        );
    }

    /// Waits (at most a minute) until the worker's activity satisfies `ok`.
    async fn wait_for(
        activity: &mut watch::Receiver<Activity>,
        ok: impl FnMut(&Activity) -> bool,
    ) -> Activity {
        tokio::time::timeout(Duration::from_secs(60), activity.wait_for(ok))
            .await
            .expect("the worker got there within a minute")
            .expect("the worker is alive")
            .clone()
    }

    // Holds the lock on the pools' thread counts while its worker calibrates (a test's lock).
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn withdrawn_replaced_and_timed_out_runs_are_cancelled_and_resent_plans_are_not() {
        let _threads = crate::testing::thread_counts_shared();
        let dir = tempfile::tempdir().unwrap();
        let (worker, spool) = worker(dir.path());
        let mut activity = worker.activity();
        let (orders, rx) = mpsc::channel(16);
        let task = tokio::spawn(worker.run(rx));
        let started = std::time::Instant::now();
        let running = |id: Option<&str>| {
            let id = id.map(str::to_string);
            move |a: &Activity| a.running == id
        };

        // Idle withdraws the run; the same plan re-sent before that changed nothing.
        orders
            .send(Order::Plan(numpy_plan("a", true, 0)))
            .await
            .unwrap();
        orders
            .send(Order::Plan(numpy_plan("a", true, 0)))
            .await
            .unwrap();
        wait_for(&mut activity, running(Some("a"))).await;
        orders.send(Order::Idle).await.unwrap();
        assert_eq!(
            outcome(&spool, "a").await,
            Err("cancelled: the coordinator withdrew the run".into())
        );
        let a = wait_for(&mut activity, running(None)).await;
        assert_eq!(a.started, 1, "the re-sent plan did not start a second run");

        // A plan with another run id cancels the running one, then runs.
        orders
            .send(Order::Plan(numpy_plan("b", true, 0)))
            .await
            .unwrap();
        wait_for(&mut activity, running(Some("b"))).await;
        orders
            .send(Order::Plan(numpy_plan("c", false, 0)))
            .await
            .unwrap();
        assert_eq!(
            outcome(&spool, "b").await,
            Err("cancelled: the coordinator withdrew the run and assigned run c".into())
        );
        let c = outcome(&spool, "c").await.expect("c ran to its end");
        assert!(c.contains("\"run_id\": \"c\""), "{c}");
        // c's end is handled before the next plan comes (else d would wait behind it and be
        // dropped when the orders end, as a waiting plan is at shutdown).
        let a = wait_for(&mut activity, running(None)).await;
        assert_eq!(a.started, 3);

        // The plan's own time limit, kept while shutting down too.
        orders
            .send(Order::Plan(numpy_plan("d", true, 1)))
            .await
            .unwrap();
        drop(orders);
        task.await.unwrap();
        assert_eq!(
            outcome(&spool, "d").await,
            Err("cancelled: timeout of 1 s passed".into())
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "cancelled runs stop promptly: {:?}",
            started.elapsed()
        );
    }
}
