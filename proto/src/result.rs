//! fleetcal's own result schema (`schema_version` 1), documented by
//! `proto/schema/result.schema.json` and `docs/result-format.md`.
//!
//! One [`CalibrationResult`] is one board × framework × device run: its [`Metadata`] and one
//! [`Record`] per operation, precision and size. The coordinator ingests exactly this document.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::quote::{number as num, quoted};
use crate::{ContractError, DeviceKind, Framework, Operation, Precision, Preset};

/// The result format version this build writes and reads.
pub const RESULT_SCHEMA_VERSION: u32 = 1;

/// A whole calibration run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalibrationResult {
    /// Must be [`RESULT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Who, what, where and how.
    pub metadata: Metadata,
    /// One record per operation × precision × size, in run order.
    pub records: Vec<Record>,
    /// Headline figures derived from the records.
    pub summary: Summary,
}

/// Facts about the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique id of this run (a fleet run id, or a fresh UUID for a one-board run).
    pub run_id: String,
    /// The preset's display name.
    pub hardware_name: String,
    /// The framework measured.
    pub framework: Framework,
    /// The device the benchmarks actually ran on (the origin's `device_type`).
    pub device_type: DeviceKind,
    /// The device the preset asked for.
    pub requested_device: DeviceKind,
    /// The device as the EXECUTION DEVICE block names it (`CPU`, `GPU (NVIDIA H100)`, `CPU (fallback)`).
    pub actual_device: String,
    /// Present when the run fell back from the requested device, with the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Start, RFC 3339 with the local offset.
    pub started_at: String,
    /// End, RFC 3339 with the local offset.
    pub finished_at: String,
    /// The fleetcal version that wrote this file.
    pub tool_version: String,
    /// The host as detected.
    pub host: Host,
    /// The engine and the libraries under it.
    pub engine: EngineInfo,
    /// The preset compared against: peaks, bandwidth, and their derivation when auto-derived.
    pub preset: Preset,
    /// What was asked for.
    pub settings: Settings,
    /// Platform validation: skipped or not, and its warnings.
    pub platform_check: PlatformCheck,
    /// The measurement environment and its fingerprint keys; absent in results written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
}

/// A device fallback that the user accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// The device the preset asked for.
    pub requested: DeviceKind,
    /// The device used instead.
    pub actual: DeviceKind,
    /// Why (e.g. `CUDA requested but not available`).
    pub reason: String,
    /// How it was accepted: `prompt` or `--allow-fallback`.
    pub accepted_by: String,
}

/// The host as detected at run time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Host name.
    pub hostname: String,
    /// Operating system (`Debian GNU/Linux 12 (bookworm)`).
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU architecture (`x86_64`, `aarch64`).
    pub architecture: String,
    /// CPU vendor id (`AuthenticAMD`), empty when unknown.
    pub cpu_vendor: String,
    /// CPU model name as reported by the OS.
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cpu_count: u32,
    /// Total memory in GB (1e9 bytes).
    pub total_memory_gb: f64,
    /// Last-level cache size in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llc_bytes: Option<u64>,
    /// SIMD features found (`avx2`, `avx512f`, `neon`, ...).
    #[serde(default)]
    pub simd: Vec<String>,
    /// Jetson module and power mode, when on a Jetson.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jetson: Option<String>,
}

/// The engine that ran and the libraries under it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineInfo {
    /// Engine name (`numpy` or `pytorch`).
    pub name: String,
    /// The array library and its version (`ndarray 0.17.2`, `libtorch 2.13.0`).
    pub library: String,
    /// Worker threads the engine used.
    pub threads: u32,
    /// The BLAS under the engine, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blas: Option<BlasInfo>,
    /// CUDA device name, when on CUDA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// CUDA compute capability (`9.0`), when on CUDA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
    /// CUDA runtime version, when on CUDA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
    /// Whether Tensor Cores were eligible for the half/int8 GEMMs, when on CUDA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_cores_eligible: Option<bool>,
    /// Anything else the engine wants on record (back-ends, environment knobs).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

/// A BLAS library as used by a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlasInfo {
    /// Library name (`OpenBLAS`, `MKL`).
    pub library: String,
    /// Library version, when known.
    pub version: String,
    /// The kernel (core type) it ran (`Haswell`, `SkylakeX`, `Zen`).
    pub kernel: String,
    /// Its thread count.
    pub threads: u32,
}

/// What the run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Quick mode (fewer sizes and trials).
    pub quick: bool,
    /// The operations run.
    pub operations: Vec<Operation>,
    /// Warm-up runs before timing, per figure.
    pub warmup_runs: u32,
    /// Timed trials per figure.
    pub measurement_runs: u32,
    /// GEMM early-stop threshold in GFLOPS/GIOPS.
    pub min_gflops: f64,
    /// Per-size timeout in seconds after which larger sizes are skipped.
    pub timeout_s: f64,
    /// Coefficient of variation above which a figure is flagged noisy.
    pub noisy_cv: f64,
    /// Efficiency above which a figure is flagged ABOVE THEORETICAL (1.10 = 110 %).
    pub above_theoretical: f64,
    /// Adaptive repeats: the most timed trials per figure (`measurement_runs` is the fewest).
    /// Absent in results written before adaptive repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_trials: Option<u32>,
    /// Adaptive repeats: a figure stops once the 95 % confidence interval of its median is
    /// within ± this many percent of the median; absent when repeats were not adaptive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_target_pct: Option<f64>,
    /// The run's wall-time cap in seconds (`--max-duration`, a plan's `max_duration_s`), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<f64>,
    /// Telemetry: a figure whose running CPU clock moved by more than this share of its
    /// highest reading is flagged `clock_spread` (0.10). Absent when telemetry was off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_spread_limit: Option<f64>,
}

/// Platform validation of the preset against the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformCheck {
    /// `--skip-platform-check` was given.
    pub skipped: bool,
    /// Differences found (CPU vendor or model unlike the preset's, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// What became of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Timed; the statistics are present.
    Measured,
    /// Not run: an early-stop rule fired at a smaller size (see `reason`).
    Skipped,
    /// The framework cannot do this precision on this device (see `reason`).
    Unsupported,
    /// It ran and failed (see `reason`).
    Failed,
}

/// Latency statistics over the timed trials, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyStats {
    /// Fastest trial.
    pub best: f64,
    /// Median trial.
    pub median: f64,
    /// Mean of the trials.
    pub mean: f64,
    /// Sample standard deviation (n − 1).
    pub std: f64,
    /// Slowest trial.
    pub max: f64,
    /// Coefficient of variation, std ÷ mean.
    pub cv: f64,
}

/// A rate derived from latencies: best (from the fastest trial), median and mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// From the fastest trial.
    pub best: f64,
    /// From the median trial.
    pub median: f64,
    /// From the mean latency (the origin's convention).
    pub mean: f64,
}

/// Anomaly flags of one figure.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Flags {
    /// Best rate above the `above_theoretical` share of the theoretical peak.
    pub above_theoretical: bool,
    /// Coefficient of variation above `noisy_cv`.
    pub noisy: bool,
    /// STREAM: the working set fits in the last-level cache (not a memory figure).
    pub in_cache: bool,
    /// STREAM: every array is at least 4× the last-level cache, so it counts as memory bandwidth.
    pub bandwidth_eligible: bool,
    /// Telemetry saw throttling during the figure (a throttle counter rose, a CPU/GPU
    /// cooling device was active, or NVML reported a throttle reason other than idle or the
    /// application-clock setting). False also when throttling could not be told: see the
    /// record's `telemetry.throttled`.
    #[serde(default)]
    pub throttled: bool,
    /// The running CPU clock moved by more than `settings.clock_spread_limit` during the figure.
    #[serde(default)]
    pub clock_spread: bool,
}

/// One operation × precision × size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The operation.
    pub operation: Operation,
    /// The element precision.
    pub precision: Precision,
    /// Problem size: vector length, matrix order, or STREAM elements per array.
    pub size: u64,
    /// STREAM: MiB per array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_mib: Option<f64>,
    /// Measured, skipped, unsupported or failed.
    pub status: Status,
    /// Why it was skipped, unsupported or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// FLOPs (or integer ops) per call.
    pub flops: f64,
    /// Bytes moved per call, by the operation's counting rule and the precision's real item size.
    pub bytes: f64,
    /// FLOPs per byte.
    pub arithmetic_intensity: f64,
    /// Timed trials.
    pub trials: u32,
    /// Latency statistics (measured records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencyStats>,
    /// GFLOPS or GIOPS (measured records with FLOPs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gops: Option<Rate>,
    /// GB/s (1e9 bytes/s) (measured records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_gbps: Option<Rate>,
    /// Best rate ÷ theoretical peak: BLAS against the precision's peak, STREAM against the
    /// preset's bandwidth. Absent when there is no peak to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<f64>,
    /// Anomaly flags.
    pub flags: Flags,
    /// Every trial's latency and why the trials stopped (measured records; absent in results
    /// written before raw samples were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// What the sensors read while the figure ran (measured records; absent when telemetry
    /// was off, and in results written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<FigureTelemetry>,
}

/// The lowest and the highest of a series of readings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MinMax {
    /// The lowest reading.
    pub min: f64,
    /// The highest reading.
    pub max: f64,
}

/// Telemetry of one figure: readings before its warm-ups, between its trials (at most every
/// 250 ms, never inside a timed region) and after its last trial.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FigureTelemetry {
    /// Readings taken.
    pub readings: u32,
    /// How the CPU clock was read: `cpufreq` (`scaling_cur_freq` of every CPU the process may
    /// use) or `measured` (a 0.5 ms dependent-operation loop, best of 3, where there is no cpufreq).
    pub cpu_clock_source: String,
    /// CPU clock in MHz over every reading and CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_mhz: Option<MinMax>,
    /// The running clock in MHz: the highest clock of the allowed CPUs at each reading (what
    /// the busy cores ran at), over the readings. Its spread decides `flags.clock_spread`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_mhz: Option<MinMax>,
    /// The hottest sensor's temperature in °C over the readings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<MinMax>,
    /// The sensor that was hottest at the last reading (`tj-thermal`, `coretemp Package id 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hottest_sensor: Option<String>,
    /// The GPU clock in MHz: a Jetson's devfreq `cur_freq`, a discrete NVIDIA GPU's SM clock
    /// (NVML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_mhz: Option<MinMax>,
    /// The discrete GPU read through NVML (`NVML 0: NVIDIA H200`): CUDA device 0, the one
    /// the run's figures ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_device: Option<String>,
    /// A discrete GPU's memory clock in MHz (NVML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_mhz: Option<MinMax>,
    /// A discrete GPU's temperature in °C (NVML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_temperature_c: Option<MinMax>,
    /// A discrete GPU's power draw in W (NVML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_power_w: Option<MinMax>,
    /// Every clock throttle reason NVML reported at any reading (`gpu_idle`, `sw_power_cap`,
    /// `hw_thermal_slowdown`, ...; an unnamed bit as `0x...`). Any but `gpu_idle` and
    /// `applications_clocks_setting` makes the figure `throttled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_throttle_reasons: Vec<String>,
    /// Throttling during the figure (of the CPU, or of a discrete GPU by its NVML throttle
    /// reasons); absent when no source could tell (`missing` says which could not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<bool>,
    /// Every source that gave nothing, with why (`temperature: no readable thermal zone ...`,
    /// `gpu: ...`). Missing telemetry is listed here, never taken as fine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

impl FigureTelemetry {
    /// Every range finite with min <= max.
    pub fn validate(&self) -> Result<(), String> {
        for (name, r) in [
            ("cpu_mhz", self.cpu_mhz),
            ("running_mhz", self.running_mhz),
            ("temperature_c", self.temperature_c),
            ("gpu_mhz", self.gpu_mhz),
            ("gpu_memory_mhz", self.gpu_memory_mhz),
            ("gpu_temperature_c", self.gpu_temperature_c),
            ("gpu_power_w", self.gpu_power_w),
        ] {
            if let Some(r) = r {
                if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
                    return Err(format!(
                        "'telemetry.{name}' must be finite with min <= max ({} .. {})",
                        num(r.min),
                        num(r.max)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Why a figure's timed trials stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The asked number of trials ran (adaptive repeats off).
    Trials,
    /// The median's confidence interval came within the target.
    CiTarget,
    /// The most trials ran without the interval coming within the target.
    MaxTrials,
    /// Adaptive repeats ran out of their time budget (a quarter of the per-size timeout)
    /// before the interval came within the target.
    TimeBudget,
    /// The trials' total passed the per-size timeout (at least 3 ran).
    Timeout,
    /// The run's wall-time cap (`--max-duration`) cut the figure short.
    MaxDuration,
}

/// A measured figure's raw trials and how they ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    /// Every timed trial's latency in nanoseconds, in the order they ran (`trials` of them):
    /// `latency_ms` and the rates can be recomputed from these.
    pub samples_ns: Vec<u64>,
    /// Why the trials stopped.
    pub stopped_by: StopReason,
    /// The target: ± percent of the median for its 95 % confidence interval; absent when
    /// repeats were not adaptive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_target_pct: Option<f64>,
    /// What was reached: the interval's half-width in percent of the median; absent with
    /// fewer than 6 trials (no 95 % interval exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_pct: Option<f64>,
}

/// The best figure reached at one precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeakFigure {
    /// Best GFLOPS/GIOPS over all BLAS records at this precision.
    pub gops: f64,
    /// The operation that reached it.
    pub operation: Operation,
    /// At which size.
    pub size: u64,
    /// Against the precision's theoretical peak, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<f64>,
}

/// Headline figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Best BLAS throughput per precision.
    pub peak_by_precision: BTreeMap<Precision, PeakFigure>,
    /// Best STREAM bandwidth over bandwidth-eligible arrays (≥ 4× LLC), GB/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bandwidth_gbps: Option<f64>,
    /// That bandwidth ÷ the preset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_efficiency: Option<f64>,
    /// Which record gave the bandwidth (`stream_triad 512 MiB`), or why there is none.
    pub bandwidth_source: String,
    /// Precisions with at least one measured record.
    pub supported_precisions: Vec<Precision>,
    /// Precisions the framework could not run here.
    pub unsupported_precisions: Vec<Precision>,
    /// Human-readable anomaly lines (above theoretical, noisy, fallback, skipped).
    pub anomalies: Vec<String>,
    /// The run's noise floor in percent, from the A/A probe (see [`NoiseProbe`]): the
    /// largest noise of any probe kernel. Two figures closer than this cannot be told apart.
    /// Absent in results written before it existed, and when no probe kernel ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_floor_pct: Option<f64>,
    /// The A/A probe: each probe kernel timed at the start and at the end of the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noise_probes: Vec<NoiseProbe>,
}

/// One kernel of the A/A noise probe, timed the same way at the start and at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoiseProbe {
    /// The probe kernel.
    pub operation: Operation,
    /// Its precision.
    pub precision: Precision,
    /// Its size (matrix order, or STREAM elements per array).
    pub size: u64,
    /// Trials timed at the start and at the end.
    pub trials: [u32; 2],
    /// Median latency at the start, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_median_ms: Option<f64>,
    /// Median latency at the end, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_median_ms: Option<f64>,
    /// |end − start| ÷ the smaller median, in percent: the A/A difference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference_pct: Option<f64>,
    /// Relative half-width of the start median's 95 % confidence interval, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ci_pct: Option<f64>,
    /// Relative half-width of the end median's 95 % confidence interval, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ci_pct: Option<f64>,
    /// This kernel's noise: the largest of the three above, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_pct: Option<f64>,
    /// Why it has no noise figure (the kernel could not run in one pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Sampling {
    /// One sample per trial, and the statistics agree with the samples: the fastest is
    /// `best`, the slowest `max`, the middle one (mean of the two middle ones) `median`, each
    /// to within a nanosecond; percentages finite and non-negative.
    pub fn validate(&self, trials: u32, lat: &LatencyStats) -> Result<(), String> {
        let n = self.samples_ns.len();
        if n == 0 || u32::try_from(n).ok() != Some(trials) {
            return Err(format!(
                "'sampling.samples_ns' has {n} samples for {trials} trials"
            ));
        }
        let mut ms: Vec<f64> = self.samples_ns.iter().map(|&ns| ns as f64 / 1e6).collect();
        ms.sort_by(f64::total_cmp);
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        for (name, from_samples, stated) in [
            ("best", ms[0], lat.best),
            ("median", median, lat.median),
            ("max", ms[n - 1], lat.max),
        ] {
            if (from_samples - stated).abs() > 1e-6 + 1e-9 * stated.abs() {
                return Err(format!(
                    "'latency_ms.{name}' = {} disagrees with the samples ({})",
                    num(stated),
                    num(from_samples)
                ));
            }
        }
        for (name, v) in [
            ("ci_target_pct", self.ci_target_pct),
            ("ci_pct", self.ci_pct),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(format!(
                    "'sampling.{name}' = {} must be a finite non-negative number",
                    num(v)
                ));
            }
        }
        Ok(())
    }
}

/// The largest GFLOPS/GIOPS figure a result may carry: 1e8 (100 PFLOPS), about twenty times
/// the densest int8 rate of any single device today (a Blackwell GPU, ~4.5e6 dense), so no
/// real measurement comes near it and an absurd one (`1e308`) is refused.
pub const MAX_GOPS: f64 = 1e8;

/// The largest GB/s figure a result may carry: 1e6 (1 PB/s), over a hundred times the fastest
/// HBM and far above any cache-resident STREAM figure.
pub const MAX_GBPS: f64 = 1e6;

/// The largest memory size in GB a host may report (`host.total_memory_gb`, and the
/// coordinator's registration capabilities): 1e6 (1 PB).
pub const MAX_MEMORY_GB: f64 = 1e6;

/// The most logical CPUs a host may report (`host.cpu_count`, and the coordinator's
/// registration capabilities): 2^20.
pub const MAX_CPU_COUNT: u32 = 1 << 20;

/// The longest `metadata.run_id`, in bytes.
pub const MAX_RUN_ID_LEN: usize = 128;

impl CalibrationResult {
    /// Parses and validates a result document; `source_name` names it in errors.
    pub fn from_json(text: &str, source_name: &str) -> Result<CalibrationResult, ContractError> {
        let err = |message: String| ContractError::Result {
            source_name: source_name.to_string(),
            message,
        };
        let result: CalibrationResult =
            serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        result.validate().map_err(err)?;
        Ok(result)
    }

    /// Serialises as 2-space-indented JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("result serialises")
    }

    /// Checks what serde cannot; a message names the offending field. The one home of the
    /// result rules (`docs/result-format.md`, "Validation"): the agent checks a result before
    /// it writes or uploads it, the coordinator before it stores one (and adds only what
    /// needs its clock or the run's plan). Needs no clock: timestamps are checked for form
    /// and order here, for plausibility by the coordinator.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema_version != RESULT_SCHEMA_VERSION {
            return Err(format!(
                "field 'schema_version': {} is not supported (this build reads {RESULT_SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        let m = &self.metadata;
        if m.run_id.trim().is_empty() {
            return Err("field 'metadata.run_id': must not be empty".into());
        }
        if m.run_id.len() > MAX_RUN_ID_LEN {
            return Err(format!(
                "field 'metadata.run_id': {} is {} bytes, longer than {MAX_RUN_ID_LEN}",
                quoted(&m.run_id),
                m.run_id.len()
            ));
        }
        m.times()?;
        m.preset
            .validate()
            .map_err(|m| format!("field 'metadata.preset': {m}"))?;
        crate::framework::check_device(m.framework, m.device_type)
            .map_err(|e| format!("field 'metadata.device_type': {e}"))?;
        if !(1..=MAX_CPU_COUNT).contains(&m.host.cpu_count) {
            return Err(format!(
                "field 'metadata.host.cpu_count': {} must be 1 to {MAX_CPU_COUNT}",
                m.host.cpu_count
            ));
        }
        in_range(
            "metadata.host.total_memory_gb",
            m.host.total_memory_gb,
            MAX_MEMORY_GB,
        )?;
        let st = &m.settings;
        for (name, v) in [
            ("min_gflops", Some(st.min_gflops)),
            ("timeout_s", Some(st.timeout_s)),
            ("noisy_cv", Some(st.noisy_cv)),
            ("above_theoretical", Some(st.above_theoretical)),
            ("ci_target_pct", st.ci_target_pct),
            ("max_duration_s", st.max_duration_s),
            ("clock_spread_limit", st.clock_spread_limit),
        ] {
            if let Some(v) = v {
                in_range(&format!("metadata.settings.{name}"), v, f64::MAX)?;
            }
        }
        if let Some(env) = &m.environment {
            env.validate()?;
        }
        self.validate_records()?;
        self.validate_summary()
    }

    /// At least one record, each valid, no figure twice, at least one measured.
    fn validate_records(&self) -> Result<(), String> {
        if self.records.is_empty() {
            return Err("field 'records': must not be empty".into());
        }
        let mut seen: BTreeMap<(Operation, Precision, u64), usize> = BTreeMap::new();
        for (i, r) in self.records.iter().enumerate() {
            r.validate()
                .map_err(|m| format!("field 'records[{i}]': {m}"))?;
            if let Some(first) = seen.insert((r.operation, r.precision, r.size), i) {
                return Err(format!(
                    "field 'records[{i}]': {} {} size {} duplicates records[{first}]",
                    r.operation.as_str(),
                    r.precision.as_str(),
                    r.size
                ));
            }
        }
        if let Some(why) = nothing_measured(&self.records) {
            return Err(format!("field 'records': no figure was measured: {why}"));
        }
        Ok(())
    }

    /// The headline figures are finite, non-negative and physically plausible.
    fn validate_summary(&self) -> Result<(), String> {
        let s = &self.summary;
        for (p, f) in &s.peak_by_precision {
            in_range(
                &format!("summary.peak_by_precision.{p}.gops"),
                f.gops,
                MAX_GOPS,
            )?;
            if let Some(e) = f.efficiency {
                in_range(
                    &format!("summary.peak_by_precision.{p}.efficiency"),
                    e,
                    f64::MAX,
                )?;
            }
        }
        if let Some(bw) = s.memory_bandwidth_gbps {
            in_range("summary.memory_bandwidth_gbps", bw, MAX_GBPS)?;
        }
        if let Some(e) = s.bandwidth_efficiency {
            in_range("summary.bandwidth_efficiency", e, f64::MAX)?;
        }
        if let Some(n) = s.noise_floor_pct {
            in_range("summary.noise_floor_pct", n, f64::MAX)?;
        }
        for (i, p) in s.noise_probes.iter().enumerate() {
            for (name, v) in [
                ("start_median_ms", p.start_median_ms),
                ("end_median_ms", p.end_median_ms),
                ("difference_pct", p.difference_pct),
                ("start_ci_pct", p.start_ci_pct),
                ("end_ci_pct", p.end_ci_pct),
                ("noise_pct", p.noise_pct),
            ] {
                if let Some(v) = v {
                    in_range(&format!("summary.noise_probes[{i}].{name}"), v, f64::MAX)?;
                }
            }
        }
        Ok(())
    }
}

/// `field 'NAME': V must be a finite number from 0 to MAX` unless `0 <= v <= max`.
fn in_range(name: &str, v: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(())
    } else if max == f64::MAX {
        Err(format!(
            "field '{name}': {} must be a finite non-negative number",
            num(v)
        ))
    } else {
        Err(format!(
            "field '{name}': {} must be a finite number from 0 to {max:e}",
            num(v)
        ))
    }
}

impl Metadata {
    /// `started_at` and `finished_at`, parsed as RFC 3339; an error names the field and
    /// quotes a bounded prefix of the value. `finished_at` must not be before `started_at`.
    pub fn times(&self) -> Result<(DateTime<FixedOffset>, DateTime<FixedOffset>), String> {
        let parse = |name: &str, v: &str| {
            DateTime::parse_from_rfc3339(v).map_err(|e| {
                format!(
                    "field 'metadata.{name}': {} is not an RFC 3339 time ({e})",
                    quoted(v)
                )
            })
        };
        let started = parse("started_at", &self.started_at)?;
        let finished = parse("finished_at", &self.finished_at)?;
        if finished < started {
            return Err(format!(
                "field 'metadata.finished_at': {} is before started_at {}",
                quoted(&self.finished_at),
                quoted(&self.started_at)
            ));
        }
        Ok((started, finished))
    }
}

impl Record {
    /// Checks one record's internal consistency and what every reader relies on: a measured
    /// record has its latencies (best <= median <= max), at least one trial, `bandwidth_gbps`,
    /// and, for a BLAS operation, `gops`; every figure is finite and non-negative, rates at
    /// most [`MAX_GOPS`] / [`MAX_GBPS`]; a record that was not measured has a reason and no
    /// latencies, rates or efficiency.
    pub fn validate(&self) -> Result<(), String> {
        let finite = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!(
                    "'{name}' = {} must be a finite non-negative number",
                    num(v)
                ))
            }
        };
        let rate = |name: &str, r: &Rate, max: f64| {
            for (part, v) in [("best", r.best), ("median", r.median), ("mean", r.mean)] {
                if !(v.is_finite() && (0.0..=max).contains(&v)) {
                    return Err(format!(
                        "'{name}.{part}' = {} must be a finite number from 0 to {max:e}",
                        num(v)
                    ));
                }
            }
            Ok(())
        };
        finite("flops", self.flops)?;
        finite("bytes", self.bytes)?;
        finite("arithmetic_intensity", self.arithmetic_intensity)?;
        if let Some(mib) = self.array_mib {
            finite("array_mib", mib)?;
        }
        match self.status {
            Status::Measured => {
                let lat = self
                    .latency_ms
                    .ok_or("a measured record needs 'latency_ms'")?;
                for (n, v) in [
                    ("latency_ms.best", lat.best),
                    ("latency_ms.median", lat.median),
                    ("latency_ms.mean", lat.mean),
                    ("latency_ms.std", lat.std),
                    ("latency_ms.max", lat.max),
                    ("latency_ms.cv", lat.cv),
                ] {
                    finite(n, v)?;
                }
                if lat.best > lat.median || lat.median > lat.max {
                    return Err("'latency_ms' must satisfy best <= median <= max".into());
                }
                if self.trials == 0 {
                    return Err("'trials' must be at least 1 for a measured record".into());
                }
                let bandwidth = self
                    .bandwidth_gbps
                    .ok_or("a measured record needs 'bandwidth_gbps'")?;
                rate("bandwidth_gbps", &bandwidth, MAX_GBPS)?;
                match self.gops {
                    Some(g) => rate("gops", &g, MAX_GOPS)?,
                    None if !self.operation.is_stream() => {
                        return Err("a measured BLAS record needs 'gops'".into())
                    }
                    None => {}
                }
                if let Some(e) = self.efficiency {
                    finite("efficiency", e)?;
                }
                if let Some(sampling) = &self.sampling {
                    sampling.validate(self.trials, &lat)?;
                }
                if let Some(t) = &self.telemetry {
                    t.validate()?;
                }
            }
            Status::Skipped | Status::Unsupported | Status::Failed => {
                if self.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    return Err(
                        format!("a {:?} record needs a 'reason'", self.status).to_lowercase()
                    );
                }
                if self.latency_ms.is_some()
                    || self.gops.is_some()
                    || self.bandwidth_gbps.is_some()
                    || self.efficiency.is_some()
                    || self.sampling.is_some()
                    || self.telemetry.is_some()
                {
                    return Err(
                        "only a measured record carries latencies, samples, rates and an efficiency"
                            .into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// The raw samples in milliseconds, when the record has them.
    pub fn samples_ms(&self) -> Option<Vec<f64>> {
        self.sampling
            .as_ref()
            .map(|s| s.samples_ns.iter().map(|&ns| ns as f64 / 1e6).collect())
    }

    /// The best rate used for the headline: GOPS for BLAS, GB/s for STREAM.
    pub fn headline_rate(&self) -> Option<f64> {
        if self.operation.is_stream() {
            self.bandwidth_gbps.map(|r| r.best)
        } else {
            self.gops.map(|r| r.best)
        }
    }
}

/// The one rule that a result needs a measured figure: `None` when some record was measured,
/// else why not — how many figures ended each way, with the first reason of each (a bounded
/// prefix). The agent refuses to report such a run as a result, and validation refuses it.
pub fn nothing_measured(records: &[Record]) -> Option<String> {
    if records.iter().any(|r| r.status == Status::Measured) {
        return None;
    }
    if records.is_empty() {
        return Some("the plan has no figures".into());
    }
    let mut parts = Vec::new();
    for (status, name) in [
        (Status::Failed, "failed"),
        (Status::Skipped, "skipped"),
        (Status::Unsupported, "unsupported"),
    ] {
        let mut of_kind = records.iter().filter(|r| r.status == status);
        if let Some(first) = of_kind.next() {
            let n = 1 + of_kind.count();
            parts.push(format!(
                "{n} {name} (first: {} {} size {}: {})",
                first.operation,
                first.precision,
                first.size,
                crate::quote::bounded(first.reason.as_deref().unwrap_or("no reason given"))
            ));
        }
    }
    Some(parts.join(", "))
}

#[cfg(test)]
#[path = "result_tests.rs"]
mod tests;
