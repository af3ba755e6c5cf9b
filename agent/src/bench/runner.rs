//! The one benchmark loop shared by every engine: support checks, warm-ups, timed trials,
//! statistics, efficiency and flags, and the origin's early-stop rules.
//!
//! Order: operations in plan order; for each, the precisions (BLAS: `plan.precisions`;
//! STREAM: `plan.stream_precision` only), and for each precision the sizes ascending.
//! Every operation × precision × size gets exactly one record:
//!
//! - `unsupported` — the engine's `check_support` refused the precision; every size gets its
//!   own record with the engine's reason (so record counts do not depend on support).
//! - `failed` — `prepare`, `run` or `synchronize` returned an error (the message is the
//!   reason); larger sizes are still tried.
//! - `skipped` — an early-stop rule fired at a smaller size:
//!   a GEMM precision whose best rate fell under `plan.min_gflops`
//!   (`Skipped (poor performance at size 512: 0.7 GFLOPS < 1.0 GFLOPS)`), or any operation
//!   whose timed trials at a size took longer than `plan.timeout` in total
//!   (`Skipped (timeout at size 1024: 7.3 s > 5.0 s)`). The figure that tripped a rule is
//!   itself recorded as measured. Beyond the origin, a size whose minimum work (one warm-up
//!   and [`MIN_TRIALS`] trials), projected from the fastest call at the last measured size
//!   (n³ for gemm, n² for gemv, n otherwise), exceeds the timeout is skipped before it runs
//!   (`Skipped (projected 9.6 s at size 1024 > 5.0 s, from 300.1 ms per call at size 512)`).
//! - `measured` — `warmup_runs` calls of run + synchronize, then `measurement_runs` trials,
//!   each timed as `synchronize(); t0; run(); synchronize(); t1` so that asynchronous
//!   devices are timed to completion. Two time caps keep slow figures (naive integer GEMM at
//!   n=1024 takes seconds per call) from dominating a run: warm-ups stop once they have
//!   taken a fifth of the timeout (at least one runs), and trials stop once their total is
//!   past the timeout (at least [`MIN_TRIALS`] run) — such a figure then trips the timeout
//!   rule anyway, and its record's `trials` says how many were timed.
//!
//! Cancellation ([`run_cancellable`]): the [`CancelToken`] is checked before every figure,
//! before every warm-up call and before every timed trial — never between a trial's timer
//! reads, so it cannot change a timing. Once it is cancelled the runner returns
//! [`Cancelled`] at the next check (a call under way finishes first) and the records so far
//! are dropped: a cancelled run has no result. [`run`] is the same loop with a token nobody
//! cancels.

use std::time::{Duration, Instant};

use fleetcal_proto::result::{Flags, Record, Sampling, Status, StopReason};
use fleetcal_proto::{Operation, Precision};

use super::cancel::{CancelToken, Cancelled};
use super::efficiency;
use super::engine::{Engine, Kernel};
use super::plan::BenchPlan;
use super::stats;
use super::telemetry::{self, NoTelemetry, Telemetry};

/// Progress callbacks for a console or a log while the runner works.
pub trait Observer {
    /// An operation's section begins; `banner` is the engine's one-line description.
    fn section(&mut self, op: Operation, banner: &str);
    /// A figure is about to be prepared and timed (not called for skipped or unsupported ones).
    fn figure_started(&mut self, op: Operation, precision: Precision, size: u64);
    /// A figure's record is final (every record, whatever its status).
    fn figure_done(&mut self, record: &Record);
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullObserver;

impl Observer for NullObserver {
    fn section(&mut self, _op: Operation, _banner: &str) {}
    fn figure_started(&mut self, _op: Operation, _precision: Precision, _size: u64) {}
    fn figure_done(&mut self, _record: &Record) {}
}

/// Runs the whole plan on `engine` and returns one record per operation × precision × size,
/// in run order.
pub fn run(engine: &mut dyn Engine, plan: &BenchPlan, observer: &mut dyn Observer) -> Vec<Record> {
    run_cancellable(engine, plan, observer, &CancelToken::new())
        .unwrap_or_else(|c| unreachable!("a token nobody holds was {c}"))
}

/// [`run`], stopping with [`Cancelled`] at the first check after `cancel` is cancelled (see
/// the module doc); the observer then sees no `figure_done` for the interrupted figure.
pub fn run_cancellable(
    engine: &mut dyn Engine,
    plan: &BenchPlan,
    observer: &mut dyn Observer,
    cancel: &CancelToken,
) -> Result<Vec<Record>, Cancelled> {
    run_with_telemetry(engine, plan, observer, cancel, &mut NoTelemetry)
}

/// [`run_cancellable`] with telemetry: `telemetry` is asked for readings before each figure's
/// warm-ups, between its trials and after its last trial (never inside a timed region), and
/// each measured record keeps what it read, with the `throttled` and `clock_spread` flags.
pub fn run_with_telemetry(
    engine: &mut dyn Engine,
    plan: &BenchPlan,
    observer: &mut dyn Observer,
    cancel: &CancelToken,
    telemetry: &mut dyn Telemetry,
) -> Result<Vec<Record>, Cancelled> {
    let banner = engine.banner();
    let mut records = Vec::new();
    for &op in &plan.operations {
        observer.section(op, &banner);
        let precisions = if op.is_stream() {
            vec![plan.stream_precision]
        } else {
            plan.precisions.clone()
        };
        for precision in precisions {
            let mut sizes = plan.sizes.sizes(op, precision);
            sizes.sort_unstable();
            sizes.dedup();
            let support = engine.check_support(op, precision);
            let mut skip: Option<String> = None;
            let mut last: Option<(u64, f64)> = None;
            for size in sizes {
                cancel.check()?;
                if support.is_ok() && past_deadline(plan) {
                    // The wall-time cap cut the run: this figure and every later one.
                    skip = Some(efficiency::max_duration_reason(plan.max_duration));
                }
                if skip.is_none() && support.is_ok() {
                    skip = last.and_then(|prev| projected_skip(plan, op, prev, size));
                }
                let record = match (&support, &skip) {
                    (Err(reason), _) => blank(
                        op,
                        precision,
                        size,
                        Status::Unsupported,
                        Some(reason.clone()),
                    ),
                    (Ok(()), Some(reason)) => {
                        blank(op, precision, size, Status::Skipped, Some(reason.clone()))
                    }
                    (Ok(()), None) => {
                        observer.figure_started(op, precision, size);
                        let (record, stop) =
                            figure(engine, plan, op, precision, size, cancel, telemetry)?;
                        skip = stop;
                        last = record.latency_ms.map(|l| (size, l.best));
                        record
                    }
                };
                observer.figure_done(&record);
                records.push(record);
            }
        }
    }
    Ok(records)
}

/// How a call's time grows with the size: n³ for gemm, n² for gemv, n for the rest.
fn growth_exponent(op: Operation) -> i32 {
    match op {
        Operation::Gemm => 3,
        Operation::Gemv => 2,
        _ => 1,
    }
}

/// The projected-timeout rule: from the fastest call at the last measured size, a figure at
/// `size` whose minimum work (one warm-up and [`MIN_TRIALS`] trials) is projected past the
/// timeout would trip the timeout rule anyway; it is skipped before it runs, with the
/// projection as its reason. This keeps naive integer GEMM at n=1024 (seconds per call) from
/// dominating a run while every size that can finish in time is still measured.
fn projected_skip(plan: &BenchPlan, op: Operation, last: (u64, f64), size: u64) -> Option<String> {
    let (prev_size, best_ms) = last;
    let per_call_s = best_ms / 1e3 * (size as f64 / prev_size as f64).powi(growth_exponent(op));
    let projected_s = per_call_s * f64::from(1 + MIN_TRIALS);
    (projected_s > plan.timeout.as_secs_f64()).then(|| {
        efficiency::projected_timeout_reason(
            size,
            projected_s,
            plan.timeout.as_secs_f64(),
            prev_size,
            best_ms,
        )
    })
}

/// A record with the sizes' work counts and no measurement.
fn blank(
    op: Operation,
    precision: Precision,
    size: u64,
    status: Status,
    reason: Option<String>,
) -> Record {
    let item = precision.item_size() as f64;
    let flops = op.flops(size);
    let bytes = op.elements_moved(size) * item;
    Record {
        operation: op,
        precision,
        size,
        array_mib: op
            .is_stream()
            .then(|| size as f64 * item / (1024.0 * 1024.0)),
        status,
        reason,
        flops,
        bytes,
        arithmetic_intensity: stats::arithmetic_intensity(flops, bytes),
        trials: 0,
        latency_ms: None,
        gops: None,
        bandwidth_gbps: None,
        efficiency: None,
        flags: Flags::default(),
        sampling: None,
        telemetry: None,
    }
}

/// Why a figure's trials stopped short.
pub(crate) enum Interrupt {
    /// `prepare`, `run` or `synchronize` failed: the figure is recorded as failed.
    Failed(String),
    /// The run was cancelled: no record.
    Cancelled(Cancelled),
}

/// Whether the run's wall-time cap has passed.
fn past_deadline(plan: &BenchPlan) -> bool {
    plan.deadline.is_some_and(|d| Instant::now() >= d)
}

/// Measures one figure; returns its record and, when an early-stop rule fired, the reason
/// to skip the larger sizes with.
fn figure(
    engine: &mut dyn Engine,
    plan: &BenchPlan,
    op: Operation,
    precision: Precision,
    size: u64,
    cancel: &CancelToken,
    telemetry: &mut dyn Telemetry,
) -> Result<(Record, Option<String>), Cancelled> {
    let rule = TrialRule::of(plan);
    let timed = match engine
        .prepare(op, precision, size)
        .map_err(Interrupt::Failed)
        .and_then(|mut kernel| {
            telemetry.begin();
            time_trials(kernel.as_mut(), &rule, cancel, telemetry)
        }) {
        Ok(timed) => timed,
        Err(Interrupt::Cancelled(c)) => return Err(c),
        Err(Interrupt::Failed(message)) => {
            return Ok((
                blank(op, precision, size, Status::Failed, Some(message)),
                None,
            ))
        }
    };
    let trials = &timed.samples;
    let figure_telemetry = telemetry.finish();
    let mut record = blank(op, precision, size, Status::Measured, None);
    let Some(derived) = stats::derive(record.flops, record.bytes, trials) else {
        return Ok(if timed.stopped_by == StopReason::MaxDuration {
            let reason = efficiency::max_duration_reason(plan.max_duration);
            record.status = Status::Skipped;
            record.reason = Some(reason.clone());
            (record, Some(reason))
        } else {
            record.status = Status::Failed;
            record.reason = Some("no timed trials were run (measurement_runs is 0)".into());
            (record, None)
        });
    };
    record.trials = u32::try_from(trials.len()).unwrap_or(u32::MAX);
    let (latency, bandwidth, gops) = (derived.latency_ms, derived.bandwidth_gbps, derived.gops);
    let best = fleetcal_proto::stats::best_rate(op.is_stream(), &derived);
    record.efficiency = efficiency::efficiency(best, efficiency::peak_for(plan, op, precision));
    record.flags = efficiency::flags(plan, op, precision, size, record.efficiency, latency.cv);
    if let Some(t) = &figure_telemetry {
        record.flags.throttled = t.throttled == Some(true);
        record.flags.clock_spread = telemetry::clock_spread(t, telemetry::CLOCK_SPREAD_LIMIT);
    }
    record.telemetry = figure_telemetry;
    record.latency_ms = Some(latency);
    record.bandwidth_gbps = Some(bandwidth);
    record.gops = gops;
    record.sampling = Some(Sampling {
        samples_ns: trials
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect(),
        stopped_by: timed.stopped_by,
        ci_target_pct: rule.ci_target.map(|t| t * 100.0),
        ci_pct: derived.ci_pct,
    });

    let total: Duration = trials.iter().sum();
    let stop = if timed.stopped_by == StopReason::MaxDuration {
        Some(efficiency::max_duration_reason(plan.max_duration))
    } else if total > plan.timeout {
        Some(efficiency::timeout_reason(
            size,
            total.as_secs_f64(),
            plan.timeout.as_secs_f64(),
        ))
    } else if op == Operation::Gemm && gops.is_some_and(|g| g.best < plan.min_gflops) {
        Some(efficiency::poor_performance_reason(
            size,
            gops.map_or(0.0, |g| g.best),
            plan.min_gflops,
            precision,
        ))
    } else {
        None
    };
    Ok((record, stop))
}

/// Fewest timed trials a figure gets even when its trials run past the timeout.
pub const MIN_TRIALS: u32 = 3;

/// The time budget of adaptive repeats: trials beyond the asked minimum stop once all the
/// figure's trials have taken a quarter of the timeout (0.5 s in quick mode, 1.25 s
/// otherwise), so that slow figures are not repeated up to the timeout.
pub fn adaptive_budget(plan: &BenchPlan) -> Duration {
    plan.timeout / 4
}

/// The warm-up budget: a fifth of the timeout (1 s at the default 5 s).
pub fn warmup_budget(plan: &BenchPlan) -> Duration {
    plan.timeout / 5
}

/// How one figure's calls are made and when its trials stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TrialRule {
    /// Untimed calls before the trials.
    pub warmup_runs: u32,
    /// Warm-ups stop once they have taken longer than this (at least one runs).
    pub warmup_budget: Duration,
    /// The fewest timed trials (the asked number).
    pub trials: u32,
    /// The most timed trials (adaptive repeats); at least `trials`.
    pub max_trials: u32,
    /// Adaptive repeats: stop once the median's 95 % confidence interval is within ± this
    /// fraction of the median; `None` runs exactly `trials`.
    pub ci_target: Option<f64>,
    /// Trials stop once their total is past this and at least `min_trials` were taken.
    pub time_budget: Duration,
    /// Adaptive repeats beyond `trials` stop once the total is past this
    /// ([`adaptive_budget`]).
    pub adaptive_budget: Duration,
    /// The fewest trials taken whatever the time ([`MIN_TRIALS`] for a figure).
    pub min_trials: u32,
    /// The run's wall-time cap: no call starts after it.
    pub deadline: Option<Instant>,
}

impl TrialRule {
    /// The rule of a figure of `plan`.
    pub fn of(plan: &BenchPlan) -> TrialRule {
        TrialRule {
            warmup_runs: plan.warmup_runs,
            warmup_budget: warmup_budget(plan),
            trials: plan.measurement_runs,
            max_trials: plan.max_trials.max(plan.measurement_runs),
            ci_target: plan.ci_target,
            time_budget: plan.timeout,
            adaptive_budget: adaptive_budget(plan),
            min_trials: MIN_TRIALS,
            deadline: plan.deadline,
        }
    }

    /// The stopping rule, asked after every trial with the latencies so far (ms): `Some`
    /// reason to stop, or `None` to time another trial. In order: the time budget (once at
    /// least `min_trials` ran), the asked count when not adaptive, the confidence target
    /// (once at least `trials` ran and an interval exists), the most trials, the adaptive
    /// time budget (once at least `trials` ran).
    pub fn stop(&self, samples_ms: &[f64], total: Duration) -> Option<StopReason> {
        let n = u32::try_from(samples_ms.len()).unwrap_or(u32::MAX);
        if total > self.time_budget && n >= self.min_trials {
            return Some(StopReason::Timeout);
        }
        match self.ci_target {
            None if n >= self.trials => Some(StopReason::Trials),
            None => None,
            Some(target) => {
                let within = n >= self.trials
                    && stats::median_ci_relative(samples_ms).is_some_and(|ci| ci <= target);
                if within {
                    Some(StopReason::CiTarget)
                } else if n >= self.max_trials.max(self.trials) {
                    Some(StopReason::MaxTrials)
                } else if n >= self.trials && total > self.adaptive_budget {
                    Some(StopReason::TimeBudget)
                } else {
                    None
                }
            }
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// A figure's timed trials and why they stopped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timed {
    /// Every trial's latency, in run order.
    pub samples: Vec<Duration>,
    /// Why the trials stopped.
    pub stopped_by: StopReason,
}

/// Warm-ups, then the timed trials, each bracketed by synchronize calls, until the rule says
/// stop ([`TrialRule::stop`]).
///
/// Warm-ups stop early once they have taken longer than the rule's warm-up budget (at least
/// one always runs: a call that long is warm). `cancel` and the run's deadline are checked
/// before each warm-up call and before each trial, outside the timed region; past the
/// deadline the trials so far are kept (none, when it passed during the warm-ups) and the
/// stop reason says the cap cut them. The stopping rule and the telemetry reading are
/// evaluated between trials, never inside a timed region.
pub(crate) fn time_trials(
    kernel: &mut dyn Kernel,
    rule: &TrialRule,
    cancel: &CancelToken,
    telemetry: &mut dyn Telemetry,
) -> Result<Timed, Interrupt> {
    let cut = |samples| {
        Ok(Timed {
            samples,
            stopped_by: StopReason::MaxDuration,
        })
    };
    let started = Instant::now();
    for _ in 0..rule.warmup_runs {
        cancel.check().map_err(Interrupt::Cancelled)?;
        if rule.past_deadline() {
            return cut(Vec::new());
        }
        kernel.run().map_err(Interrupt::Failed)?;
        kernel.synchronize().map_err(Interrupt::Failed)?;
        if started.elapsed() > rule.warmup_budget {
            break;
        }
    }
    let mut samples = Vec::with_capacity(rule.trials as usize);
    let mut ms = Vec::with_capacity(rule.trials as usize);
    let mut total = Duration::ZERO;
    loop {
        if rule.trials == 0 && rule.ci_target.is_none() {
            return Ok(Timed {
                samples,
                stopped_by: StopReason::Trials,
            });
        }
        cancel.check().map_err(Interrupt::Cancelled)?;
        if rule.past_deadline() {
            return cut(samples);
        }
        kernel.synchronize().map_err(Interrupt::Failed)?;
        let t0 = Instant::now();
        kernel.run().map_err(Interrupt::Failed)?;
        kernel.synchronize().map_err(Interrupt::Failed)?;
        let trial = t0.elapsed();
        samples.push(trial);
        ms.push(trial.as_secs_f64() * 1e3);
        total += trial;
        telemetry.between_trials();
        if let Some(reason) = rule.stop(&ms, total) {
            return Ok(Timed {
                samples,
                stopped_by: reason,
            });
        }
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
