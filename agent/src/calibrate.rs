//! One calibration, from request to result: the library entry point behind
//! `fleetcal-agent calibrate` and the daemon's worker.

use std::path::PathBuf;

use fleetcal_proto::result::{
    CalibrationResult, Fallback, Metadata, PlatformCheck, Settings, RESULT_SCHEMA_VERSION,
};
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision, Preset};

use crate::bench::{BenchPlan, CancelToken, ModeDefaults, SizeSweep};
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
    /// Timed trials; `None`: the mode's default ([`ModeDefaults`]).
    pub measurement_runs: Option<u32>,
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

/// The [`BenchPlan`] of a request: what it asks for, and for everything it leaves unset the
/// defaults of its mode ([`ModeDefaults`]: sizes, warm-ups, trials (at least 1), per-size
/// timeout, early-stop threshold). `calibrate`'s flags and the daemon's plans both reach the
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
    let defaults = ModeDefaults::of(req.quick);
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
        None => sizes.with_bandwidth_size(llc),
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
    limits::THREADS.check_opt("calibration threads", req.threads)?;
    for &size in sizes.blas1.iter().chain(&sizes.blas23) {
        limits::BLAS_SIZE.check("calibration blas_sizes", size)?;
    }
    for &mib in &sizes.stream_mib {
        limits::STREAM_MIB.check("calibration stream_mib", mib)?;
    }
    Ok(BenchPlan {
        operations: req.operations.clone(),
        precisions,
        stream_precision: Precision::Fp32,
        sizes,
        warmup_runs: req.warmup_runs.unwrap_or(defaults.warmup_runs),
        measurement_runs: req
            .measurement_runs
            .unwrap_or(defaults.measurement_runs)
            .max(1),
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
    if req.operations.is_empty() {
        return Err(AgentError::Usage("no operations to run".into()));
    }
    let preset = resolve_preset(req)?;
    let host = crate::detect::host();
    // Every number of the request is checked here, before anything runs.
    let plan = build_plan(req, &preset, host.llc_bytes)?;
    let avail = Availability::detect();
    let decision = select::decide(&preset, req.framework, avail)?;

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

    let mut engine = crate::engines::create(decision.framework, decision.actual, req.threads)?;
    let info = engine.info();
    if fallback.is_none() {
        device_block.actual_name = match (decision.actual, &info.device_name) {
            (DeviceKind::Cuda, Some(name)) => format!("GPU ({name})"),
            (DeviceKind::Cuda, None) => "GPU".into(),
            (DeviceKind::Cpu, _) => "CPU".into(),
        };
        console.execution_device(&device_block);
    }

    let started_at = now();
    let records =
        crate::bench::runner::run_cancellable(engine.as_mut(), &plan, console.observer(), cancel)?;
    if let Some(why) = fleetcal_proto::result::nothing_measured(&records) {
        return Err(AgentError::NothingMeasured(why));
    }
    let summary = crate::bench::summary::summarize(&records, &preset, fallback.is_some());
    let result = CalibrationResult {
        schema_version: RESULT_SCHEMA_VERSION,
        metadata: Metadata {
            run_id: req
                .run_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            hardware_name: preset.hardware_name.clone(),
            framework: decision.framework,
            device_type: decision.actual,
            requested_device: decision.requested,
            actual_device: device_block.actual_name.clone(),
            fallback,
            started_at,
            finished_at: now(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host,
            engine: engine.info(),
            preset,
            settings: Settings {
                quick: req.quick,
                operations: plan.operations.clone(),
                warmup_runs: plan.warmup_runs,
                measurement_runs: plan.measurement_runs,
                min_gflops: plan.min_gflops,
                timeout_s: plan.timeout.as_secs_f64(),
                noisy_cv: plan.noisy_cv,
                above_theoretical: plan.above_theoretical,
            },
            platform_check: PlatformCheck {
                skipped: req.skip_platform_check,
                warnings,
            },
        },
        records,
        summary,
    };
    result
        .validate()
        .map_err(|m| AgentError::Engine(format!("produced an invalid result: {m}")))?;
    console.finished(&result);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::QuietConsole;

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
        calibrate(req, &mut QuietConsole::default(), &CancelToken::new())
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
}
