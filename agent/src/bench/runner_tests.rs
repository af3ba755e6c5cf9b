//! Runner tests against a fake engine whose kernels log their calls, sleep, or fail on demand.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use fleetcal_proto::result::{EngineInfo, Record, Status};
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision};

use super::{run, run_cancellable, NullObserver, Observer};
use crate::bench::{BenchPlan, CancelToken, Cancelled, Engine, Kernel, SizeSweep};

/// What the fake engine's kernels do.
#[derive(Default)]
struct Script {
    /// Precisions `check_support` refuses.
    unsupported: Vec<Precision>,
    /// `prepare` fails at these sizes.
    prepare_fails: Vec<u64>,
    /// `run` fails at these sizes.
    run_fails: Vec<u64>,
    /// `run` sleeps this long at these sizes.
    sleeps: BTreeMap<u64, Duration>,
    /// At this size, the kernel's `n`-th `run` call (from 1) cancels the token after running.
    cancel_at: Option<(u64, usize, CancelToken)>,
}

struct FakeEngine {
    script: Script,
    log: Rc<RefCell<Vec<&'static str>>>,
    prepared: Vec<(Operation, Precision, u64)>,
}

impl FakeEngine {
    fn new(script: Script) -> FakeEngine {
        FakeEngine {
            script,
            log: Rc::default(),
            prepared: Vec::new(),
        }
    }
}

struct FakeKernel {
    log: Rc<RefCell<Vec<&'static str>>>,
    sleep: Option<Duration>,
    fails: bool,
    cancel: Option<(usize, CancelToken)>,
    calls: usize,
}

impl Kernel for FakeKernel {
    fn run(&mut self) -> Result<(), String> {
        self.log.borrow_mut().push("run");
        self.calls += 1;
        if let Some(d) = self.sleep {
            std::thread::sleep(d);
        }
        if let Some((n, token)) = &self.cancel {
            if self.calls == *n {
                token.cancel("test says stop");
            }
        }
        if self.fails {
            return Err("kernel exploded".into());
        }
        Ok(())
    }

    fn synchronize(&mut self) -> Result<(), String> {
        self.log.borrow_mut().push("sync");
        Ok(())
    }
}

impl Engine for FakeEngine {
    fn framework(&self) -> Framework {
        Framework::Numpy
    }

    fn device(&self) -> DeviceKind {
        DeviceKind::Cpu
    }

    fn info(&self) -> EngineInfo {
        EngineInfo::default()
    }

    fn banner(&self) -> String {
        "fake engine".into()
    }

    fn check_support(&self, _op: Operation, precision: Precision) -> Result<(), String> {
        if self.script.unsupported.contains(&precision) {
            Err("fake does not do this".into())
        } else {
            Ok(())
        }
    }

    fn prepare(
        &mut self,
        op: Operation,
        precision: Precision,
        size: u64,
    ) -> Result<Box<dyn Kernel>, String> {
        self.prepared.push((op, precision, size));
        if self.script.prepare_fails.contains(&size) {
            return Err(format!("out of memory at {size}"));
        }
        Ok(Box::new(FakeKernel {
            log: self.log.clone(),
            sleep: self.script.sleeps.get(&size).copied(),
            fails: self.script.run_fails.contains(&size),
            cancel: self
                .script
                .cancel_at
                .as_ref()
                .filter(|(at, _, _)| *at == size)
                .map(|(_, n, token)| (*n, token.clone())),
            calls: 0,
        }))
    }
}

fn plan(ops: &[Operation], precisions: &[Precision], sizes: &[u64]) -> BenchPlan {
    BenchPlan {
        operations: ops.to_vec(),
        precisions: precisions.to_vec(),
        stream_precision: Precision::Fp32,
        sizes: SizeSweep {
            blas1: sizes.to_vec(),
            blas23: sizes.to_vec(),
            stream_mib: vec![1.0, 2.0],
        },
        warmup_runs: 2,
        measurement_runs: 3,
        max_trials: 3,
        ci_target: None,
        max_duration: None,
        deadline: None,
        min_gflops: 0.0,
        timeout: Duration::from_secs(3600),
        noisy_cv: 0.05,
        above_theoretical: 1.10,
        peaks: BTreeMap::from([(Precision::Fp32, 1e6)]),
        bandwidth_gbps: Some(1e6),
        llc_bytes: None,
    }
}

fn statuses(records: &[Record]) -> Vec<Status> {
    records.iter().map(|r| r.status).collect()
}

#[test]
fn one_record_per_figure_in_plan_order_with_sizes_ascending() {
    let mut engine = FakeEngine::new(Script::default());
    let p = plan(
        &[Operation::Dot, Operation::StreamAdd],
        &[Precision::Fp64, Precision::Fp32],
        &[30, 10, 20],
    );
    let records = run(&mut engine, &p, &mut NullObserver);
    // dot: 2 precisions × 3 sizes; stream: the stream precision only × 2 sizes
    assert_eq!(records.len(), 8);
    let keys: Vec<_> = records
        .iter()
        .map(|r| (r.operation, r.precision, r.size))
        .collect();
    assert_eq!(
        keys[..3],
        [
            (Operation::Dot, Precision::Fp64, 10),
            (Operation::Dot, Precision::Fp64, 20),
            (Operation::Dot, Precision::Fp64, 30),
        ]
    );
    assert_eq!(keys[6], (Operation::StreamAdd, Precision::Fp32, 262_144));
    assert!(records.iter().all(|r| r.status == Status::Measured));
    for r in &records {
        r.validate().unwrap();
        assert_eq!(r.trials, 3);
    }
    let stream = &records[7];
    assert_eq!(stream.array_mib, Some(2.0));
    assert_eq!(stream.bytes, 3.0 * 524_288.0 * 4.0);
    assert_eq!(records[0].bytes, 2.0 * 10.0 * 8.0);
    assert_eq!(records[0].flops, 20.0);
    assert!((records[0].arithmetic_intensity - 0.125).abs() < 1e-12);
}

#[test]
fn synchronize_brackets_every_timed_run() {
    let mut engine = FakeEngine::new(Script::default());
    let p = plan(&[Operation::Gemm], &[Precision::Fp32], &[4]);
    run(&mut engine, &p, &mut NullObserver);
    let log = engine.log.borrow().clone();
    let mut expected = vec!["run", "sync", "run", "sync"]; // two warm-ups
    for _ in 0..3 {
        expected.extend(["sync", "run", "sync"]);
    }
    assert_eq!(log, expected);
}

#[test]
fn unsupported_precision_gets_a_record_per_size_and_is_never_prepared() {
    let mut engine = FakeEngine::new(Script {
        unsupported: vec![Precision::Bf16],
        ..Script::default()
    });
    let p = plan(
        &[Operation::Gemm],
        &[Precision::Fp32, Precision::Bf16],
        &[8, 16],
    );
    let records = run(&mut engine, &p, &mut NullObserver);
    assert_eq!(
        statuses(&records),
        [
            Status::Measured,
            Status::Measured,
            Status::Unsupported,
            Status::Unsupported
        ]
    );
    assert_eq!(records[2].reason.as_deref(), Some("fake does not do this"));
    assert!(engine
        .prepared
        .iter()
        .all(|&(_, p, _)| p != Precision::Bf16));
    records.iter().for_each(|r| r.validate().unwrap());
}

#[test]
fn failures_are_recorded_and_larger_sizes_still_run() {
    let mut engine = FakeEngine::new(Script {
        prepare_fails: vec![8],
        run_fails: vec![16],
        ..Script::default()
    });
    let p = plan(&[Operation::Axpy], &[Precision::Fp32], &[8, 16, 32]);
    let records = run(&mut engine, &p, &mut NullObserver);
    assert_eq!(
        statuses(&records),
        [Status::Failed, Status::Failed, Status::Measured]
    );
    assert_eq!(records[0].reason.as_deref(), Some("out of memory at 8"));
    assert_eq!(records[1].reason.as_deref(), Some("kernel exploded"));
    records.iter().for_each(|r| r.validate().unwrap());
}

#[test]
fn gemm_under_min_gflops_skips_larger_sizes_of_that_precision_only() {
    let mut engine = FakeEngine::new(Script::default());
    let mut p = plan(
        &[Operation::Dot, Operation::Gemm],
        &[Precision::Fp32, Precision::Int8],
        &[2, 4, 8],
    );
    // no fake kernel can reach 1e15 GFLOPS: every GEMM is "poor" at its first size
    p.min_gflops = 1e15;
    let records = run(&mut engine, &p, &mut NullObserver);
    let dot: Vec<_> = records
        .iter()
        .filter(|r| r.operation == Operation::Dot)
        .collect();
    assert!(
        dot.iter().all(|r| r.status == Status::Measured),
        "rule is GEMM-only"
    );
    let gemm: Vec<_> = records
        .iter()
        .filter(|r| r.operation == Operation::Gemm)
        .collect();
    assert_eq!(gemm.len(), 6);
    for chunk in gemm.chunks(3) {
        assert_eq!(chunk[0].status, Status::Measured);
        assert_eq!(chunk[1].status, Status::Skipped);
        assert_eq!(chunk[2].status, Status::Skipped);
        let reason = chunk[1].reason.as_deref().unwrap();
        let unit = chunk[0].precision.rate_unit();
        assert!(
            reason.starts_with("Skipped (poor performance at size 2: ")
                && reason.ends_with(&format!(" {unit} < 1000000000000000.0 {unit})")),
            "{reason}"
        );
    }
    let prepared_gemm = engine
        .prepared
        .iter()
        .filter(|(op, _, _)| *op == Operation::Gemm)
        .count();
    assert_eq!(prepared_gemm, 2, "skipped sizes are never prepared");
}

#[test]
fn timeout_keeps_the_slow_figure_and_skips_larger_sizes() {
    let mut engine = FakeEngine::new(Script {
        sleeps: BTreeMap::from([(16, Duration::from_millis(25))]),
        ..Script::default()
    });
    let mut p = plan(&[Operation::Gemv], &[Precision::Fp64], &[8, 16, 32, 64]);
    // three trials of ≥ 25 ms each are ≥ 75 ms in total, over the 50 ms limit
    p.timeout = Duration::from_millis(50);
    let records = run(&mut engine, &p, &mut NullObserver);
    assert_eq!(
        statuses(&records),
        [
            Status::Measured,
            Status::Measured,
            Status::Skipped,
            Status::Skipped
        ]
    );
    let reason = records[2].reason.as_deref().unwrap();
    assert!(
        reason.starts_with("Skipped (timeout at size 16: "),
        "{reason}"
    );
    assert!(reason.ends_with(" s > 0.1 s)"), "{reason}");
    assert!(records[1].latency_ms.unwrap().best >= 25.0);
}

#[test]
fn slow_figures_get_fewer_warmups_and_trials_but_at_least_the_minimum() {
    let mut engine = FakeEngine::new(Script {
        sleeps: BTreeMap::from([(8, Duration::from_millis(30))]),
        ..Script::default()
    });
    let mut p = plan(&[Operation::Gemm], &[Precision::Fp32], &[8]);
    p.warmup_runs = 3;
    p.measurement_runs = 10;
    // warm-up budget 10 ms: one 30 ms warm-up is enough; trials pass 50 ms after two, but
    // three is the minimum
    p.timeout = Duration::from_millis(50);
    let records = run(&mut engine, &p, &mut NullObserver);
    assert_eq!(records[0].status, Status::Measured);
    assert_eq!(records[0].trials, super::MIN_TRIALS);
    let runs = engine.log.borrow().iter().filter(|e| **e == "run").count();
    assert_eq!(runs, 1 + 3, "one warm-up, three trials");
}

#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    done: Vec<Record>,
}

impl Observer for Recorder {
    fn section(&mut self, op: Operation, banner: &str) {
        self.events.push(format!("section {op} {banner}"));
    }
    fn figure_started(&mut self, op: Operation, precision: Precision, size: u64) {
        self.events.push(format!("start {op} {precision} {size}"));
    }
    fn figure_done(&mut self, record: &Record) {
        self.events.push(format!("done {:?}", record.status));
        self.done.push(record.clone());
    }
}

#[test]
fn observer_sees_sections_and_every_record() {
    let mut engine = FakeEngine::new(Script {
        unsupported: vec![Precision::Fp16],
        ..Script::default()
    });
    let p = plan(&[Operation::Dot], &[Precision::Fp32, Precision::Fp16], &[5]);
    let mut rec = Recorder::default();
    run(&mut engine, &p, &mut rec);
    assert_eq!(
        rec.events,
        [
            "section dot fake engine",
            "start dot fp32 5",
            "done Measured",
            "done Unsupported",
        ]
    );
}

#[test]
fn efficiency_and_flags_come_from_the_plan() {
    let mut engine = FakeEngine::new(Script::default());
    let mut p = plan(
        &[Operation::Gemm],
        &[Precision::Fp32, Precision::Fp64],
        &[4],
    );
    // a peak of 1e-12 GFLOPS: any real rate is far above theoretical
    p.peaks = BTreeMap::from([(Precision::Fp32, 1e-12)]);
    let records = run(&mut engine, &p, &mut NullObserver);
    assert!(records[0].efficiency.unwrap() > 1.10);
    assert!(records[0].flags.above_theoretical);
    assert_eq!(records[1].efficiency, None, "fp64 has no peak in this plan");
    assert!(!records[1].flags.above_theoretical);
}

#[test]
fn a_size_projected_past_the_timeout_is_skipped_before_it_runs() {
    // 20 ms per call at n=2 projects to 20 ms × (8/2)³ = 1.28 s per call at n=8, and one
    // warm-up plus three trials to 5.1 s > 1 s: skipped without being prepared.
    let mut engine = FakeEngine::new(Script {
        sleeps: BTreeMap::from([(2, Duration::from_millis(20))]),
        ..Script::default()
    });
    let mut p = plan(&[Operation::Gemm], &[Precision::Fp32], &[2, 8, 16]);
    p.timeout = Duration::from_secs(1);
    let records = run(&mut engine, &p, &mut NullObserver);
    assert_eq!(
        statuses(&records),
        vec![Status::Measured, Status::Skipped, Status::Skipped]
    );
    let reason = records[1].reason.as_deref().unwrap();
    assert!(reason.starts_with("Skipped (projected "), "{reason}");
    assert!(
        reason.contains("at size 8 > 1.0 s") && reason.ends_with("per call at size 2)"),
        "{reason}"
    );
    assert_eq!(
        engine.prepared.len(),
        1,
        "the projected size is never prepared"
    );

    // Linear growth for a vector operation: 20 ms at n=2 is 80 ms at n=8, well inside 1 s.
    let mut engine = FakeEngine::new(Script {
        sleeps: BTreeMap::from([(2, Duration::from_millis(20))]),
        ..Script::default()
    });
    let p2 = BenchPlan {
        operations: vec![Operation::Dot],
        ..p
    };
    let records = run(&mut engine, &p2, &mut NullObserver);
    assert!(records.iter().all(|r| r.status == Status::Measured));
}

/// One figure's calls with two warm-ups and three trials.
fn figure_calls() -> Vec<&'static str> {
    let mut calls = vec!["run", "sync", "run", "sync"];
    for _ in 0..3 {
        calls.extend(["sync", "run", "sync"]);
    }
    calls
}

#[test]
fn a_token_cancelled_before_the_run_stops_it_before_any_call() {
    let mut engine = FakeEngine::new(Script::default());
    let p = plan(&[Operation::Dot], &[Precision::Fp32], &[4, 8]);
    let token = CancelToken::new();
    token.cancel("the coordinator withdrew the run");
    let mut rec = Recorder::default();
    let got = run_cancellable(&mut engine, &p, &mut rec, &token);
    assert_eq!(
        got.unwrap_err(),
        Cancelled {
            reason: "the coordinator withdrew the run".into()
        }
    );
    assert!(engine.prepared.is_empty());
    assert!(engine.log.borrow().is_empty());
    assert_eq!(rec.events, ["section dot fake engine"]);
}

#[test]
fn a_token_cancelled_while_running_stops_between_trials_and_keeps_finished_timings() {
    let token = CancelToken::new();
    let mut engine = FakeEngine::new(Script {
        sleeps: BTreeMap::from([(4, Duration::from_millis(3))]),
        // size 8: cancelled during its third call, its first timed trial
        cancel_at: Some((8, 3, token.clone())),
        ..Script::default()
    });
    let p = plan(&[Operation::Dot], &[Precision::Fp32], &[4, 8, 16]);
    let mut rec = Recorder::default();
    let err = run_cancellable(&mut engine, &p, &mut rec, &token).unwrap_err();
    assert_eq!(err.to_string(), "cancelled: test says stop");
    // Size 4 ran in full; size 8 stopped right after the trial under way; 16 never started.
    let mut expected = figure_calls();
    expected.extend(["run", "sync", "run", "sync", "sync", "run", "sync"]);
    assert_eq!(*engine.log.borrow(), expected);
    assert_eq!(
        engine.prepared,
        [
            (Operation::Dot, Precision::Fp32, 4),
            (Operation::Dot, Precision::Fp32, 8)
        ]
    );
    assert_eq!(
        rec.events,
        [
            "section dot fake engine",
            "start dot fp32 4",
            "done Measured",
            "start dot fp32 8",
        ]
    );
    // The finished figure is measured as without cancellation: three trials of >= 3 ms.
    let done = &rec.done[0];
    assert_eq!((done.status, done.trials), (Status::Measured, 3));
    assert!(done.latency_ms.unwrap().best >= 3.0, "{done:?}");
}

#[test]
fn a_token_cancelled_during_warmups_stops_before_the_next_call() {
    let token = CancelToken::new();
    let mut engine = FakeEngine::new(Script {
        cancel_at: Some((4, 1, token.clone())),
        ..Script::default()
    });
    let p = plan(&[Operation::Gemm], &[Precision::Fp32], &[4]);
    assert!(run_cancellable(&mut engine, &p, &mut NullObserver, &token).is_err());
    assert_eq!(*engine.log.borrow(), ["run", "sync"]);
}

#[test]
fn a_token_never_cancelled_changes_nothing() {
    let p = plan(
        &[Operation::Dot, Operation::Gemm, Operation::StreamTriad],
        &[Precision::Fp32, Precision::Fp16],
        &[4, 8],
    );
    let script = || Script {
        unsupported: vec![Precision::Fp16],
        run_fails: vec![8],
        ..Script::default()
    };
    let mut plain = FakeEngine::new(script());
    let a = run(&mut plain, &p, &mut NullObserver);
    let mut cancellable = FakeEngine::new(script());
    let b = run_cancellable(&mut cancellable, &p, &mut NullObserver, &CancelToken::new()).unwrap();
    assert_eq!(statuses(&a), statuses(&b));
    let shape = |r: &[Record]| {
        r.iter()
            .map(|r| (r.operation, r.precision, r.size, r.trials, r.reason.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&a), shape(&b));
    assert_eq!(plain.prepared, cancellable.prepared);
    assert_eq!(*plain.log.borrow(), *cancellable.log.borrow());
}

mod adaptive {
    use std::time::{Duration, Instant};

    use fleetcal_proto::result::{Status, StopReason};
    use fleetcal_proto::{Operation, Precision};

    use super::super::{run, TrialRule};
    use super::{plan, FakeEngine, Script};
    use crate::bench::NullObserver;

    fn rule(trials: u32, max_trials: u32, ci_target: Option<f64>) -> TrialRule {
        TrialRule {
            warmup_runs: 0,
            warmup_budget: Duration::ZERO,
            trials,
            max_trials,
            ci_target,
            time_budget: Duration::from_secs(3600),
            adaptive_budget: Duration::from_secs(3600),
            min_trials: 3,
            deadline: None,
        }
    }

    /// Feeds `latencies` one at a time and returns how many were taken and why it stopped.
    fn stops_after(rule: &TrialRule, latencies: &[f64]) -> (usize, Option<StopReason>) {
        let mut seen = Vec::new();
        let mut total = Duration::ZERO;
        for &ms in latencies {
            seen.push(ms);
            total += Duration::from_secs_f64(ms / 1e3);
            if let Some(reason) = rule.stop(&seen, total) {
                return (seen.len(), Some(reason));
            }
        }
        (seen.len(), None)
    }

    #[test]
    fn without_a_target_exactly_the_asked_trials_run() {
        assert_eq!(
            stops_after(&rule(3, 40, None), &[1.0; 10]),
            (3, Some(StopReason::Trials))
        );
    }

    #[test]
    fn a_quiet_figure_stops_as_soon_as_an_interval_exists() {
        // 1.000, 1.001, ... ms: the interval is far within 3 % once there are 6 samples.
        let quiet: Vec<f64> = (0..40).map(|i| 1.0 + f64::from(i % 3) * 0.001).collect();
        assert_eq!(
            stops_after(&rule(1, 40, Some(0.03)), &quiet),
            (6, Some(StopReason::CiTarget)),
            "no 95 % interval below 6 samples"
        );
        // Never before the asked minimum.
        assert_eq!(
            stops_after(&rule(10, 40, Some(0.03)), &quiet),
            (10, Some(StopReason::CiTarget))
        );
    }

    #[test]
    fn a_noisy_figure_runs_to_its_cap_and_a_settling_one_stops_when_settled() {
        let noisy: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 1.0 } else { 2.0 })
            .collect();
        assert_eq!(
            stops_after(&rule(6, 20, Some(0.03)), &noisy),
            (20, Some(StopReason::MaxTrials))
        );
        // Three slow outliers, then quiet: the interval [x(j), x(n+1-j)] excludes all three
        // once j ≥ 4, which the 95 % ranks first allow at n = 15.
        let mut settling = vec![3.0, 2.5, 2.0];
        settling.extend(std::iter::repeat_n(1.0, 40));
        assert_eq!(
            stops_after(&rule(6, 40, Some(0.03)), &settling),
            (15, Some(StopReason::CiTarget))
        );
    }

    #[test]
    fn adaptive_repeats_stop_at_their_time_budget_but_not_before_the_minimum() {
        let mut r = rule(6, 40, Some(0.03));
        r.adaptive_budget = Duration::from_millis(100);
        let noisy: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 10.0 } else { 20.0 })
            .collect();
        // 6 trials take 90 ms, 7 take 100 ms (not past it); the eighth passes it.
        assert_eq!(stops_after(&r, &noisy), (8, Some(StopReason::TimeBudget)));
        let slow = [50.0, 100.0, 50.0, 100.0, 50.0, 100.0, 50.0, 100.0];
        assert_eq!(
            stops_after(&r, &slow),
            (6, Some(StopReason::TimeBudget)),
            "the asked minimum runs whatever the budget"
        );
    }

    #[test]
    fn the_time_budget_wins_once_the_minimum_ran() {
        let mut r = rule(6, 40, Some(0.03));
        r.time_budget = Duration::from_millis(25);
        // 10 ms each: past 25 ms at the third trial, which is the minimum.
        assert_eq!(
            stops_after(&r, &[10.0, 20.0, 10.0, 20.0, 10.0]),
            (3, Some(StopReason::Timeout))
        );
    }

    #[test]
    fn raw_samples_are_kept_and_agree_with_the_statistics() {
        let mut engine = FakeEngine::new(Script {
            sleeps: [(8, Duration::from_millis(1))].into(),
            ..Script::default()
        });
        let mut p = plan(&[Operation::Dot], &[Precision::Fp32], &[8, 16]);
        p.measurement_runs = 4;
        p.max_trials = 12;
        p.ci_target = Some(0.03);
        let records = run(&mut engine, &p, &mut NullObserver);
        for r in &records {
            r.validate().unwrap();
            let s = r.sampling.as_ref().expect("samples");
            assert_eq!(s.samples_ns.len(), r.trials as usize);
            assert!(r.trials >= 6 && r.trials <= 12, "{}", r.trials);
            let lat = r.latency_ms.unwrap();
            let min_ms = *s.samples_ns.iter().min().unwrap() as f64 / 1e6;
            let max_ms = *s.samples_ns.iter().max().unwrap() as f64 / 1e6;
            assert!((min_ms - lat.best).abs() < 1e-6 && (max_ms - lat.max).abs() < 1e-6);
            assert_eq!(s.ci_target_pct, Some(3.0));
            match s.stopped_by {
                StopReason::CiTarget => assert!(s.ci_pct.unwrap() <= 3.0),
                StopReason::MaxTrials => assert_eq!(r.trials, 12),
                other => panic!("{other:?}"),
            }
        }
        // 1 ms sleeps: at least 1 ms each.
        assert!(records[0].latency_ms.unwrap().best >= 1.0);
    }

    #[test]
    fn the_wall_time_cap_cuts_what_is_left_and_says_so() {
        let mut engine = FakeEngine::new(Script {
            sleeps: [(16, Duration::from_millis(30))].into(),
            ..Script::default()
        });
        let mut p = plan(&[Operation::Gemv], &[Precision::Fp32], &[8, 16, 32]);
        p.warmup_runs = 0;
        p.measurement_runs = 20;
        p.max_trials = 20;
        p.max_duration = Some(Duration::from_secs(60));
        // The cap runs out during size 16 (30 ms per call, 50 ms from now).
        p.deadline = Some(Instant::now() + Duration::from_millis(50));
        let records = run(&mut engine, &p, &mut NullObserver);
        let cut = |i: usize| records[i].sampling.as_ref().map(|s| s.stopped_by);
        assert_eq!(records[0].status, Status::Measured);
        assert_eq!(cut(0), Some(StopReason::Trials));
        assert_eq!(
            records[1].status,
            Status::Measured,
            "keeps the trials it had"
        );
        assert_eq!(cut(1), Some(StopReason::MaxDuration));
        assert!(
            (1..20).contains(&records[1].trials),
            "{}",
            records[1].trials
        );
        assert_eq!(records[2].status, Status::Skipped);
        assert_eq!(
            records[2].reason.as_deref(),
            Some("Skipped (max duration 60.0 s reached)")
        );
        // A cap already passed: nothing is called.
        let mut engine = FakeEngine::new(Script::default());
        p.deadline = Some(Instant::now());
        let records = run(&mut engine, &p, &mut NullObserver);
        assert!(records.iter().all(|r| r.status == Status::Skipped));
        assert!(engine.log.borrow().is_empty());
    }
}

mod telemetry {
    use std::cell::RefCell;
    use std::rc::Rc;

    use fleetcal_proto::result::{FigureTelemetry, MinMax};
    use fleetcal_proto::{Operation, Precision};

    use super::super::run_with_telemetry;
    use super::{plan, FakeEngine, Script};
    use crate::bench::telemetry::Telemetry;
    use crate::bench::{CancelToken, NullObserver};

    /// Logs its readings into the kernels' log and reports what it was told to.
    struct FakeTelemetry {
        log: Rc<RefCell<Vec<&'static str>>>,
        report: FigureTelemetry,
    }

    impl Telemetry for FakeTelemetry {
        fn begin(&mut self) {
            self.log.borrow_mut().push("read");
        }
        fn between_trials(&mut self) {
            self.log.borrow_mut().push("read");
        }
        fn finish(&mut self) -> Option<FigureTelemetry> {
            self.log.borrow_mut().push("read");
            Some(self.report.clone())
        }
    }

    fn report(throttled: Option<bool>, running: (f64, f64)) -> FigureTelemetry {
        FigureTelemetry {
            readings: 5,
            cpu_clock_source: "cpufreq".into(),
            cpu_mhz: Some(MinMax {
                min: 800.0,
                max: running.1,
            }),
            running_mhz: Some(MinMax {
                min: running.0,
                max: running.1,
            }),
            temperature_c: None,
            hottest_sensor: None,
            gpu_mhz: None,
            throttled,
            missing: vec!["temperature: none here".into()],
            ..Default::default()
        }
    }

    #[test]
    fn readings_are_taken_between_trials_never_inside_one() {
        let mut engine = FakeEngine::new(Script::default());
        let mut p = plan(&[Operation::Dot], &[Precision::Fp32], &[8]);
        p.warmup_runs = 0;
        let mut t = FakeTelemetry {
            log: engine.log.clone(),
            report: report(Some(false), (3000.0, 3000.0)),
        };
        let records = run_with_telemetry(
            &mut engine,
            &p,
            &mut NullObserver,
            &CancelToken::new(),
            &mut t,
        )
        .unwrap();
        let log = engine.log.borrow().clone();
        let mut expected = vec!["read"];
        for _ in 0..3 {
            expected.extend(["sync", "run", "sync", "read"]);
        }
        expected.push("read");
        assert_eq!(log, expected);
        let r = &records[0];
        assert_eq!(r.telemetry.as_ref().unwrap().readings, 5);
        assert!(!r.flags.throttled && !r.flags.clock_spread);
        r.validate().unwrap();
    }

    #[test]
    fn a_throttled_or_unsteady_figure_is_flagged_and_unknown_is_not_flagged() {
        for (throttled, running, flags) in [
            (Some(true), (3000.0, 3000.0), (true, false)),
            (Some(false), (2000.0, 3000.0), (false, true)),
            (None, (2950.0, 3000.0), (false, false)),
        ] {
            let mut engine = FakeEngine::new(Script::default());
            let p = plan(&[Operation::Gemm], &[Precision::Fp32], &[8]);
            let mut t = FakeTelemetry {
                log: engine.log.clone(),
                report: report(throttled, running),
            };
            let records = run_with_telemetry(
                &mut engine,
                &p,
                &mut NullObserver,
                &CancelToken::new(),
                &mut t,
            )
            .unwrap();
            let r = &records[0];
            assert_eq!(
                (r.flags.throttled, r.flags.clock_spread),
                flags,
                "{throttled:?}"
            );
            assert_eq!(r.telemetry.as_ref().unwrap().throttled, throttled);
        }
    }
}
