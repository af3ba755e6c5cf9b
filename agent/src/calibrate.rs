//! One calibration, from request to result: the library entry point behind
//! `fleetcal-agent calibrate` and the daemon's worker.

use std::path::PathBuf;
use std::time::Instant;

use fleetcal_proto::environment::Environment;
use fleetcal_proto::quote::bounded;
use fleetcal_proto::result::{
    CalibrationResult, Fallback, Metadata, PlatformCheck, Record, Settings, RESULT_SCHEMA_VERSION,
};
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision, Preset};

use crate::bench::telemetry::{self, NoTelemetry, SensorTelemetry, Telemetry};
use crate::bench::{blas_kernel, noise, BenchPlan, CancelToken, ModeDefaults, SizeSweep};
use crate::report::{Console, ExecutionDevice};
use crate::select::{self, Availability, FallbackPolicy};
use crate::{limits, presets, AgentError};

/// Everything a calibration run can be asked to do.
#[derive(Debug, Clone)]
pub struct CalibrationRequest {
    /// A preset id, or `auto` to derive one from the detected host.
    pub preset: String,
    /// Where preset files live; `None` uses the presets built into the binary.
    pub presets_dir: Option<PathBuf>,
    /// Framework override; `None` follows the preset's device.
    pub framework: Option<Framework>,
    /// Quick mode: what every setting left unset defaults to ([`ModeDefaults`]: the origin's
    /// quick sweep, fewer trials, a shorter per-size timeout).
    pub quick: bool,
    /// Operations to run.
    pub operations: Vec<Operation>,
    /// BLAS precisions; `None` uses the preset's peak entries.
    pub precisions: Option<Vec<Precision>>,
    /// BLAS sizes for every BLAS operation, overriding the sweep.
    pub blas_sizes: Option<Vec<u64>>,
    /// STREAM MiB per array, overriding the sweep.
    pub stream_mib: Option<Vec<f64>>,
    /// Warm-up runs; `None`: the mode's default ([`ModeDefaults`]).
    pub warmup_runs: Option<u32>,
    /// The fewest timed trials; `None`: the mode's default ([`ModeDefaults`]).
    pub measurement_runs: Option<u32>,
    /// The most timed trials; `None`: the mode's default, never below `measurement_runs`.
    pub max_trials: Option<u32>,
    /// Adaptive repeats' target in percent (0 turns them off: exactly `measurement_runs`);
    /// `None`: the mode's default ([`ModeDefaults`]).
    pub ci_target_pct: Option<f64>,
    /// The run's wall-time cap in seconds; `None`: no cap.
    pub max_duration_s: Option<f64>,
    /// Read the sensors between trials ([`crate::bench::telemetry`]); off with `--no-telemetry`.
    pub telemetry: bool,
    /// GEMM early-stop threshold, GFLOPS/GIOPS; `None`: the mode's default ([`ModeDefaults`]).
    pub min_gflops: Option<f64>,
    /// Per-size timeout in seconds; `None`: the mode's default ([`ModeDefaults`]).
    pub timeout_s: Option<f64>,
    /// Engine worker threads; `None` leaves the library default.
    pub threads: Option<usize>,
    /// Skip the platform check (architecture mismatch becomes a warning).
    pub skip_platform_check: bool,
    /// What to do when the requested device is not available.
    pub fallback: FallbackPolicy,
    /// Run id recorded in the result; `None` makes a fresh UUID.
    pub run_id: Option<String>,
}

impl Default for CalibrationRequest {
    fn default() -> Self {
        CalibrationRequest {
            preset: "auto".into(),
            presets_dir: None,
            framework: None,
            quick: false,
            operations: Operation::ALL.to_vec(),
            precisions: None,
            blas_sizes: None,
            stream_mib: None,
            warmup_runs: None,
            measurement_runs: None,
            max_trials: None,
            ci_target_pct: None,
            max_duration_s: None,
            telemetry: true,
            min_gflops: None,
            timeout_s: None,
            threads: None,
            skip_platform_check: false,
            fallback: FallbackPolicy::Refuse,
            run_id: None,
        }
    }
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// Resolves the preset a request names (`auto` derives one from the host).
pub fn resolve_preset(req: &CalibrationRequest) -> Result<Preset, AgentError> {
    if req.preset == "auto" {
        return Ok(crate::detect::auto_preset());
    }
    presets::find(req.presets_dir.as_deref(), &req.preset)
}

/// An upper bound of a GPU's L2 cache (H100/H200 50–60 MB, A100 40 MB, a Jetson Orin 4 MB):
/// a STREAM array of 4× this is out of any GPU's cache.
const GPU_L2_BOUND_BYTES: u64 = 64 << 20;

/// The [`BenchPlan`] of a request: what it asks for, and for everything it leaves unset the
/// defaults of its mode ([`ModeDefaults`]: sizes, warm-ups, trials (at least 1), the most
/// trials (at least the fewest), the confidence target, per-size timeout, early-stop
/// threshold). The wall-time cap's deadline is set when the run starts. `calibrate`'s flags and the daemon's plans both reach the
/// runner through here.
pub(crate) fn build_plan(
    req: &CalibrationRequest,
    preset: &Preset,
    llc: Option<u64>,
) -> Result<BenchPlan, AgentError> {
    let precisions = match &req.precisions {
        Some(list) => list.clone(),
        None => Precision::ALL
            .into_iter()
            .filter(|p| preset.peaks.contains_key(p))
            .collect(),
    };
    if precisions.is_empty() {
        return Err(AgentError::Usage("no precisions to run".into()));
    }
    let defaults = ModeDefaults::of(req.quick, preset.device);
    // `llc` is the host CPU's last-level cache. On a CUDA device the arrays live in the GPU's
    // memory, whose L2 libtorch does not report: nothing is claimed to be in cache there, and
    // the out-of-cache STREAM size is sized against an upper bound of GPU L2s instead.
    let (llc, sweep_llc) = match preset.device {
        DeviceKind::Cpu => (llc, llc),
        DeviceKind::Cuda => (None, Some(GPU_L2_BOUND_BYTES)),
    };
    let mut sizes = defaults.sizes;
    if let Some(b) = &req.blas_sizes {
        sizes.blas1 = b.clone();
        sizes.blas23 = b.clone();
    }
    sizes = match &req.stream_mib {
        Some(s) => SizeSweep {
            stream_mib: s.clone(),
            ..sizes
        },
        None => sizes.with_bandwidth_size(sweep_llc),
    };
    let timeout = limits::TIMEOUT_S.duration(
        "calibration timeout_s",
        req.timeout_s.unwrap_or(defaults.timeout_s),
    )?;
    let min_gflops = limits::MIN_GFLOPS.check(
        "calibration min_gflops",
        req.min_gflops.unwrap_or(defaults.min_gflops),
    )?;
    limits::WARMUP.check_opt("calibration warmup_runs", req.warmup_runs)?;
    limits::TRIALS.check_opt("calibration measurement_runs", req.measurement_runs)?;
    limits::TRIALS.check_opt("calibration max_trials", req.max_trials)?;
    let ci_target_pct = limits::CI_TARGET_PCT.check(
        "calibration ci_target_pct",
        req.ci_target_pct.unwrap_or(defaults.ci_target_pct),
    )?;
    let max_duration = req
        .max_duration_s
        .map(|s| limits::MAX_DURATION_S.duration("calibration max_duration_s", s))
        .transpose()?;
    limits::THREADS.check_opt("calibration threads", req.threads)?;
    for &size in sizes.blas1.iter().chain(&sizes.blas23) {
        limits::BLAS_SIZE.check("calibration blas_sizes", size)?;
    }
    for &mib in &sizes.stream_mib {
        limits::STREAM_MIB.check("calibration stream_mib", mib)?;
    }
    let measurement_runs = req
        .measurement_runs
        .unwrap_or(defaults.measurement_runs)
        .max(1);
    Ok(BenchPlan {
        operations: req.operations.clone(),
        precisions,
        stream_precision: Precision::Fp32,
        sizes,
        warmup_runs: req.warmup_runs.unwrap_or(defaults.warmup_runs),
        measurement_runs,
        max_trials: req
            .max_trials
            .unwrap_or(defaults.max_trials)
            .max(measurement_runs),
        ci_target: (ci_target_pct > 0.0).then_some(ci_target_pct / 100.0),
        max_duration,
        deadline: None,
        min_gflops,
        timeout,
        noisy_cv: 0.05,
        above_theoretical: 1.10,
        peaks: preset.peaks.clone(),
        bandwidth_gbps: preset.bandwidth_gbps,
        llc_bytes: llc,
    })
}

/// Runs one calibration and returns its result; nothing is written to disk here.
///
/// Errors before any measurement: bad preset, framework rules, platform check, a refused
/// device fallback. Once `cancel` is cancelled the runner stops at its next check (between
/// figures and trials) and this returns [`AgentError::Cancelled`] (`cancelled: <reason>`)
/// with no result; `calibrate` passes a token nobody cancels, the daemon's worker its own.
/// A run in which no figure was measured returns [`AgentError::NothingMeasured`] with no
/// result: a result must hold at least one measured figure.
pub fn calibrate(
    req: &CalibrationRequest,
    console: &mut dyn Console,
    cancel: &CancelToken,
) -> Result<CalibrationResult, AgentError> {
    let mut results = interleaved(req, &[req.framework], console, cancel)?;
    results
        .pop()
        .ok_or_else(|| AgentError::Engine("the run produced no result".into()))
}

/// The one-board compare (`calibrate --framework compare`): numpy and pytorch on this board's
/// CPU, interleaved operation by operation (which engine goes first alternates), one result
/// each (numpy first). Both engines live in this process, so they never run at once: each
/// pool is set to `--threads` (default: the CPUs this process may use), and after every
/// switch the agent waits [`SWITCH_PAUSE`] for the other pool's spinning workers to sleep.
pub fn compare(
    req: &CalibrationRequest,
    console: &mut dyn Console,
    cancel: &CancelToken,
) -> Result<Vec<CalibrationResult>, AgentError> {
    let preset = resolve_preset(req)?;
    if preset.device != DeviceKind::Cpu {
        return Err(AgentError::Framework(format!(
            "--framework compare runs numpy and pytorch on this board's CPU; preset '{}' is a {} preset (numpy cannot run there)",
            bounded(&preset.id),
            preset.device
        )));
    }
    let req = CalibrationRequest {
        threads: Some(
            req.threads
                .unwrap_or_else(|| crate::detect::host::available_cpus() as usize),
        ),
        ..req.clone()
    };
    interleaved(
        &req,
        &[Some(Framework::Numpy), Some(Framework::Pytorch)],
        console,
        cancel,
    )
}

/// How long a compare run waits after switching engines: OpenBLAS's and OpenMP's workers
/// spin for up to about 0.1–0.2 s after a call before they sleep.
pub const SWITCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Which engine of an interleaved run last computed, so that every switch to another one —
/// an operation's figures *and* the A/A noise probes at the start and the end — first waits
/// [`SWITCH_PAUSE`] for the last one's spinning workers to sleep. (The probes once ran back
/// to back: on a 16-vCPU host PyTorch's end probe ran beside OpenBLAS's 16 spinning threads,
/// read `stream_triad` 4 MiB 350× slower than its start probe, and its 35,166 % noise floor
/// made every compare verdict "within noise".)
struct EngineSwitch {
    last: Option<usize>,
    pause: std::time::Duration,
    /// How many switches waited.
    paused: u32,
}

impl EngineSwitch {
    fn new(pause: std::time::Duration) -> EngineSwitch {
        EngineSwitch {
            last: None,
            pause,
            paused: 0,
        }
    }

    /// Engine `k` is about to compute: waits first when another one computed last.
    fn to(&mut self, k: usize) {
        if self.last.is_some_and(|l| l != k) {
            std::thread::sleep(self.pause);
            self.paused += 1;
        }
        self.last = Some(k);
    }
}

/// One engine's run within [`interleaved`].
struct EngineRun {
    decision: select::Decision,
    device_block: ExecutionDevice,
    fallback: Option<Fallback>,
    engine: Box<dyn crate::bench::Engine>,
    environment: Environment,
    records: Vec<Record>,
    started_at: String,
    probe_start: Option<noise::ProbePass>,
}

/// Runs `frameworks` (each `None` = the preset's default) on this board, interleaved by
/// operation, and returns one result per framework in that order.
fn interleaved(
    req: &CalibrationRequest,
    frameworks: &[Option<Framework>],
    console: &mut dyn Console,
    cancel: &CancelToken,
) -> Result<Vec<CalibrationResult>, AgentError> {
    if req.operations.is_empty() {
        return Err(AgentError::Usage("no operations to run".into()));
    }
    let preset = resolve_preset(req)?;
    let host = crate::detect::host();
    // Every number of the request is checked here, before anything runs.
    let mut plan = build_plan(req, &preset, host.llc_bytes)?;
    let avail = Availability::detect();
    let decisions = frameworks
        .iter()
        .map(|f| select::decide(&preset, *f, avail))
        .collect::<Result<Vec<_>, _>>()?;

    let (arch_error, mut warnings) = select::platform_check(&preset, &host);
    console.platform(
        &preset,
        &host,
        arch_error.as_deref(),
        &warnings,
        req.skip_platform_check,
    );
    if let Some(e) = arch_error {
        if !req.skip_platform_check {
            return Err(AgentError::Platform(format!(
                "{e} (use --skip-platform-check to run anyway)"
            )));
        }
        warnings.insert(0, e);
    }

    let host_environment = crate::detect::environment::detect_host();
    let mut runs = Vec::with_capacity(decisions.len());
    for decision in decisions {
        runs.push(start_engine(
            req,
            decision,
            avail,
            console,
            &host_environment,
        )?);
    }

    let started = Instant::now();
    // The A/A noise probe brackets the figures: the same kernels at the start and at the end.
    let mut switch = EngineSwitch::new(SWITCH_PAUSE);
    for (k, run) in runs.iter_mut().enumerate() {
        switch.to(k);
        run.started_at = now();
        run.probe_start = Some(noise::probe(run.engine.as_mut(), cancel)?);
    }
    // The wall-time cap counts from here and keeps back what the closing probes will take
    // (about what the opening ones took), so that the run ends within it.
    plan.deadline = plan
        .max_duration
        .map(|cap| started + cap.saturating_sub(started.elapsed()));
    let on_cuda = runs.iter().any(|r| r.decision.actual == DeviceKind::Cuda);
    let mut sensors: Box<dyn Telemetry> = if req.telemetry {
        Box::new(SensorTelemetry::detect(on_cuda))
    } else {
        Box::new(NoTelemetry)
    };
    for (i, &op) in plan.operations.iter().enumerate() {
        let one = BenchPlan {
            operations: vec![op],
            ..plan.clone()
        };
        // ABBA: the engine that ran first for one operation runs last for the next.
        let order: Vec<usize> = if i % 2 == 0 {
            (0..runs.len()).collect()
        } else {
            (0..runs.len()).rev().collect()
        };
        for k in order {
            switch.to(k);
            let run = &mut runs[k];
            let records = crate::bench::runner::run_with_telemetry(
                run.engine.as_mut(),
                &one,
                console.observer(),
                cancel,
                sensors.as_mut(),
            )?;
            run.records.extend(records);
        }
    }
    for run in &runs {
        if let Some(why) = fleetcal_proto::result::nothing_measured(&run.records) {
            return Err(AgentError::NothingMeasured(why));
        }
    }
    let mut results = Vec::with_capacity(runs.len());
    for (k, mut run) in runs.into_iter().enumerate() {
        switch.to(k);
        let probe_end = noise::probe(run.engine.as_mut(), cancel)?;
        let probe_start = run.probe_start.take().unwrap_or(noise::ProbePass {
            kernels: Vec::new(),
        });
        let fallback = run.fallback.is_some();
        let mut summary = crate::bench::summary::summarize(&run.records, &preset, fallback);
        let (floor, probes) = noise::noise_floor(&probe_start, &probe_end);
        summary.anomalies.extend(noise::anomaly(floor));
        let engine = run.engine.info();
        summary
            .anomalies
            .extend(blas_kernel::anomaly(engine.blas.as_ref(), &host.simd));
        summary.noise_floor_pct = floor;
        summary.noise_probes = probes;
        let result = CalibrationResult {
            schema_version: RESULT_SCHEMA_VERSION,
            metadata: Metadata {
                run_id: match (&req.run_id, frameworks.len()) {
                    (Some(id), 1) => id.clone(),
                    (Some(id), _) => format!("{id}-{}", run.decision.framework),
                    (None, _) => uuid::Uuid::new_v4().to_string(),
                },
                hardware_name: preset.hardware_name.clone(),
                framework: run.decision.framework,
                device_type: run.decision.actual,
                requested_device: run.decision.requested,
                actual_device: run.device_block.actual_name.clone(),
                fallback: run.fallback,
                started_at: run.started_at,
                finished_at: now(),
                tool_version: env!("CARGO_PKG_VERSION").into(),
                host: host.clone(),
                engine,
                preset: preset.clone(),
                settings: Settings {
                    quick: req.quick,
                    operations: plan.operations.clone(),
                    warmup_runs: plan.warmup_runs,
                    measurement_runs: plan.measurement_runs,
                    min_gflops: plan.min_gflops,
                    timeout_s: plan.timeout.as_secs_f64(),
                    noisy_cv: plan.noisy_cv,
                    above_theoretical: plan.above_theoretical,
                    max_trials: Some(plan.max_trials),
                    ci_target_pct: plan.ci_target.map(|t| t * 100.0),
                    max_duration_s: plan.max_duration.map(|d| d.as_secs_f64()),
                    clock_spread_limit: req.telemetry.then_some(telemetry::CLOCK_SPREAD_LIMIT),
                },
                platform_check: PlatformCheck {
                    skipped: req.skip_platform_check,
                    warnings: warnings.clone(),
                },
                environment: Some(run.environment),
            },
            records: run.records,
            summary,
        };
        result
            .validate()
            .map_err(|m| AgentError::Engine(format!("produced an invalid result: {m}")))?;
        console.finished(&result);
        results.push(result);
    }
    Ok(results)
}

/// Shows the EXECUTION DEVICE block of one decision (asking about a device fallback as the
/// request says) and creates its engine.
fn start_engine(
    req: &CalibrationRequest,
    decision: select::Decision,
    avail: Availability,
    console: &mut dyn Console,
    host_environment: &fleetcal_proto::environment::HostEnvironment,
) -> Result<EngineRun, AgentError> {
    let mut device_block = ExecutionDevice {
        requested: decision.requested,
        actual: decision.actual,
        actual_name: String::new(),
        framework: decision.framework,
        fallback_reason: decision.fallback_reason.clone(),
    };
    let fallback = match &decision.fallback_reason {
        None => None,
        Some(reason) => {
            device_block.actual_name = "CPU (fallback)".into();
            console.execution_device(&device_block);
            let accepted_by = match req.fallback {
                FallbackPolicy::Allow => "--allow-fallback",
                FallbackPolicy::Ask if console.confirm("Continue anyway? (yes/no): ") => "prompt",
                FallbackPolicy::Ask => {
                    return Err(AgentError::FallbackRefused(format!(
                        "{reason}; the user declined, nothing was written"
                    )))
                }
                FallbackPolicy::Refuse => {
                    return Err(AgentError::FallbackRefused(format!(
                        "{reason}; no terminal to confirm, nothing was written (pass --allow-fallback to calibrate the CPU instead)"
                    )))
                }
            };
            select::check_runnable(&decision, avail)?;
            Some(Fallback {
                requested: decision.requested,
                actual: decision.actual,
                reason: reason.clone(),
                accepted_by: accepted_by.into(),
            })
        }
    };

    let engine = crate::engines::create(decision.framework, decision.actual, req.threads)?;
    let info = engine.info();
    if fallback.is_none() {
        device_block.actual_name = match (decision.actual, &info.device_name) {
            (DeviceKind::Cuda, Some(name)) => format!("GPU ({name})"),
            (DeviceKind::Cuda, None) => "GPU".into(),
            (DeviceKind::Cpu, _) => "CPU".into(),
        };
        console.execution_device(&device_block);
    }
    // The conditions at the start of the run: host facts and the engine's software stack.
    let environment = Environment::new(host_environment.clone(), engine.software());
    Ok(EngineRun {
        decision,
        device_block,
        fallback,
        engine,
        environment,
        records: Vec::new(),
        started_at: String::new(),
        probe_start: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::QuietConsole;

    #[test]
    fn every_switch_between_engines_waits_and_staying_does_not() {
        let mut s = EngineSwitch::new(std::time::Duration::ZERO);
        // A compare run's order: start probes, three operations ABBA, end probes.
        for k in [0, 1, 0, 1, 1, 0, 0, 1, 0, 1] {
            s.to(k);
        }
        // 0→1 (probes), 1→0, 0→1, 1→0, 0→1 (operations), 1→0, 0→1 (end probes).
        assert_eq!(s.paused, 7);
        let mut one = EngineSwitch::new(std::time::Duration::ZERO);
        for _ in 0..5 {
            one.to(0);
        }
        assert_eq!(one.paused, 0, "a run of one engine never waits");
    }

    fn tiny(
        operations: Vec<Operation>,
        precisions: Vec<Precision>,
        sizes: Vec<u64>,
    ) -> CalibrationRequest {
        CalibrationRequest {
            preset: "i7-12700k".into(),
            operations,
            precisions: Some(precisions),
            blas_sizes: Some(sizes),
            stream_mib: Some(vec![0.01]),
            warmup_runs: Some(0),
            measurement_runs: Some(1),
            threads: Some(1),
            skip_platform_check: true,
            ..CalibrationRequest::default()
        }
    }

    fn run(req: &CalibrationRequest) -> Result<CalibrationResult, AgentError> {
        let _threads = crate::testing::thread_counts_shared();
        calibrate(req, &mut QuietConsole::default(), &CancelToken::new())
    }

    #[test]
    fn a_full_calibration_on_a_cuda_preset_sweeps_gpu_sizes_and_claims_no_cache() {
        let llc = Some(32 << 20);
        let plan = |preset: &str, quick: bool| {
            let req = CalibrationRequest {
                preset: preset.into(),
                quick,
                ..CalibrationRequest::default()
            };
            build_plan(&req, &presets::find(None, preset).unwrap(), llc).unwrap()
        };
        let gpu = plan("h200-sxm", false);
        assert_eq!(gpu.sizes, SizeSweep::full_cuda());
        assert_eq!(gpu.sizes.blas23.last(), Some(&8192));
        assert_eq!(gpu.llc_bytes, None, "the host CPU's cache is not the GPU's");
        let cpu = plan("i7-12700k", false);
        assert_eq!(cpu.sizes.blas23.last(), Some(&2048));
        assert_eq!(cpu.llc_bytes, llc);
        // Quick mode means the same BLAS sizes on every board; the out-of-cache STREAM size
        // is each board's: 4x the CPU's LLC, or 4x a bound of GPU L2s.
        let (gq, cq) = (plan("h200-sxm", true).sizes, plan("i7-12700k", true).sizes);
        assert_eq!((&gq.blas1, &gq.blas23), (&cq.blas1, &cq.blas23));
        assert_eq!(gq.stream_mib.last(), Some(&256.0));
        assert_eq!(cq.stream_mib.last(), Some(&128.0));
    }

    #[test]
    fn a_run_that_measured_nothing_has_no_result() {
        // Every figure unsupported (numpy has no bf16).
        let e = run(&tiny(
            vec![Operation::Gemm, Operation::Dot],
            vec![Precision::Bf16],
            vec![16],
        ))
        .unwrap_err();
        assert!(matches!(e, AgentError::NothingMeasured(_)), "{e:?}");
        assert_eq!(e.exit_code(), 4);
        let e = e.to_string();
        assert!(
            e.starts_with("no figure was measured: 2 unsupported (first: gemm bf16 size 16: NumPy does not support"),
            "{e}"
        );
        // Every figure failed: a matrix that cannot be allocated.
        let e = run(&tiny(
            vec![Operation::Gemm],
            vec![Precision::Fp32],
            vec![2_147_483_647],
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("1 failed (first: gemm fp32 size 2147483647: ")
                && (e.contains("cannot allocate") || e.contains("does not fit")),
            "{e}"
        );
        // One measured figure is enough.
        let r = run(&tiny(
            vec![Operation::Gemm],
            vec![Precision::Fp32, Precision::Bf16],
            vec![16],
        ))
        .unwrap();
        assert!(r
            .records
            .iter()
            .any(|r| r.status == fleetcal_proto::result::Status::Measured));
    }

    #[cfg(feature = "torch")]
    #[test]
    fn compare_runs_both_engines_interleaved_with_the_same_threads() {
        // Every other test sets the pools to 1 thread; this one sets them to all CPUs.
        let _threads = crate::testing::thread_counts_exclusive();
        let req = CalibrationRequest {
            run_id: Some("cmp".into()),
            threads: None,
            ..tiny(
                vec![Operation::Gemm, Operation::StreamCopy],
                vec![Precision::Fp32],
                vec![16],
            )
        };
        let results = compare(&req, &mut QuietConsole::default(), &CancelToken::new()).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].metadata.framework, Framework::Numpy);
        assert_eq!(results[1].metadata.framework, Framework::Pytorch);
        assert_eq!(results[0].metadata.run_id, "cmp-numpy");
        let threads = crate::detect::host::available_cpus();
        for r in &results {
            assert!(r
                .records
                .iter()
                .any(|x| x.status == fleetcal_proto::result::Status::Measured));
            let pools = &r
                .metadata
                .environment
                .as_ref()
                .unwrap()
                .software
                .thread_pools;
            assert_eq!(pools[0].threads.known(), Some(&threads), "{pools:?}");
            assert_eq!(pools[0].set_by, "--threads");
        }
        let table = crate::report::compare_table(&results[0], &results[1]).join("\n");
        assert!(
            table.contains("gemm") && table.contains("stream_copy"),
            "{table}"
        );
        // A cuda preset cannot be compared: numpy cannot run there.
        let e = compare(
            &CalibrationRequest {
                preset: "h100-sxm5".into(),
                ..req.clone()
            },
            &mut QuietConsole::default(),
            &CancelToken::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("is a cuda preset"), "{e}");
    }
}
