//! What one engine run measures: operations, precisions, sizes, trials and the rules.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fleetcal_proto::{DeviceKind, Operation, OperationKind, Precision};

/// The sizes swept for each operation family.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeSweep {
    /// Vector lengths for dot and axpy.
    pub blas1: Vec<u64>,
    /// Matrix orders for gemv and gemm.
    pub blas23: Vec<u64>,
    /// STREAM MiB per array.
    pub stream_mib: Vec<f64>,
}

impl SizeSweep {
    /// The origin's quick sweep: n = 1e3…1e6; 64…1024; 8…64 MiB.
    pub fn quick() -> SizeSweep {
        SizeSweep {
            blas1: vec![1_000, 10_000, 100_000, 1_000_000],
            blas23: vec![64, 128, 256, 512, 1024],
            stream_mib: vec![8.0, 16.0, 32.0, 64.0],
        }
    }

    /// The origin's full sweep: adds 1e7; 32…2048; up to 512 MiB.
    pub fn full() -> SizeSweep {
        SizeSweep {
            blas1: vec![1_000, 10_000, 100_000, 1_000_000, 10_000_000],
            blas23: vec![32, 64, 128, 256, 512, 1024, 2048],
            stream_mib: vec![8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
        }
    }

    /// The full sweep on a CUDA device: the origin's, plus the sizes a GPU reaches its rates at
    /// (n = 1e8; 4096 and 8192; 1 and 2 GiB per array). Measured on an H200 (docs/gpu.md): with
    /// the origin's sweep the headline GEMM stopped at 2048, where bf16 ran at 39 % of its peak
    /// and fp32 at 68 %, against 79 % and 80 % at 8192; BLAS-1 at 1e7 read 3–5 µs calls, launch
    /// bound. Sizes projected past the per-size timeout are still skipped (a Jetson's fp64).
    pub fn full_cuda() -> SizeSweep {
        let mut s = SizeSweep::full();
        s.blas1.push(100_000_000);
        s.blas23.extend([4096, 8192]);
        s.stream_mib.extend([1024.0, 2048.0]);
        s
    }

    /// Adds the smallest power-of-two MiB size whose arrays are at least 4× the last-level
    /// cache, when no swept size is, so that a memory bandwidth can always be reported.
    pub fn with_bandwidth_size(mut self, llc_bytes: Option<u64>) -> SizeSweep {
        if let Some(llc) = llc_bytes {
            let need_mib = (4 * llc) as f64 / (1024.0 * 1024.0);
            if !self.stream_mib.iter().any(|&m| m >= need_mib) {
                let mut mib = 1.0;
                while mib < need_mib {
                    mib *= 2.0;
                }
                self.stream_mib.push(mib);
            }
        }
        self
    }

    /// The problem sizes for an operation at a precision: `n` for BLAS, elements per array for STREAM.
    pub fn sizes(&self, op: Operation, precision: Precision) -> Vec<u64> {
        match op.kind() {
            OperationKind::Blas(1) => self.blas1.clone(),
            OperationKind::Blas(_) => self.blas23.clone(),
            OperationKind::Stream => self
                .stream_mib
                .iter()
                .map(|mib| (mib * 1024.0 * 1024.0) as u64 / precision.item_size() as u64)
                .collect(),
        }
    }
}

/// What quick mode (`calibrate --quick`, a campaign's `--quick`) or its absence means for
/// every setting a calibration does not ask for: the one home of these defaults. The command
/// line and a fleet plan both leave unset what they were not asked, and the request's bench
/// plan (`calibrate::build_plan`) fills it in from here.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeDefaults {
    /// The size sweep: [`SizeSweep::quick`], or [`SizeSweep::full`] ([`SizeSweep::full_cuda`]
    /// on a CUDA device).
    pub sizes: SizeSweep,
    /// Warm-up calls before timing: 3 in both modes.
    pub warmup_runs: u32,
    /// The fewest timed trials: 6 in both modes (the fewest for which the median has a 95 %
    /// confidence interval).
    pub measurement_runs: u32,
    /// The most timed trials (adaptive repeats): 20 in quick mode, 40 otherwise.
    pub max_trials: u32,
    /// Adaptive repeats' target: the median's 95 % confidence interval within ± 3 % of it.
    pub ci_target_pct: f64,
    /// Per-size timeout in seconds: 2 in quick mode (sizes projected to take longer are
    /// skipped), the origin's 5 otherwise.
    pub timeout_s: f64,
    /// GEMM early-stop threshold in GFLOPS/GIOPS: 1 in both modes.
    pub min_gflops: f64,
}

impl ModeDefaults {
    /// The defaults of quick mode (`quick`) or of a full calibration on `device`. Quick mode
    /// is the same on every device (a campaign's `--quick` means one thing fleet-wide); a full
    /// calibration on a CUDA device sweeps larger sizes ([`SizeSweep::full_cuda`]).
    pub fn of(quick: bool, device: DeviceKind) -> ModeDefaults {
        if quick {
            ModeDefaults {
                sizes: SizeSweep::quick(),
                warmup_runs: 3,
                measurement_runs: 6,
                max_trials: 20,
                ci_target_pct: 3.0,
                timeout_s: 2.0,
                min_gflops: 1.0,
            }
        } else {
            ModeDefaults {
                sizes: match device {
                    DeviceKind::Cuda => SizeSweep::full_cuda(),
                    DeviceKind::Cpu => SizeSweep::full(),
                },
                warmup_runs: 3,
                measurement_runs: 6,
                max_trials: 40,
                ci_target_pct: 3.0,
                timeout_s: 5.0,
                min_gflops: 1.0,
            }
        }
    }
}

/// Everything the runner needs to measure one engine.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Operations, in report order.
    pub operations: Vec<Operation>,
    /// BLAS precisions (the preset's peak entries, in [`Precision::ALL`] order).
    pub precisions: Vec<Precision>,
    /// The element type of the STREAM arrays (the origin uses fp32).
    pub stream_precision: Precision,
    /// Size sweeps.
    pub sizes: SizeSweep,
    /// Warm-up calls before timing (default: [`ModeDefaults::warmup_runs`]).
    pub warmup_runs: u32,
    /// The fewest timed trials (default: [`ModeDefaults::measurement_runs`]).
    pub measurement_runs: u32,
    /// The most timed trials, at least `measurement_runs` (default: [`ModeDefaults::max_trials`]).
    pub max_trials: u32,
    /// Adaptive repeats: a figure stops once its median's 95 % confidence interval is within
    /// ± this fraction of the median (0.03 = 3 %); `None` times exactly `measurement_runs`.
    pub ci_target: Option<f64>,
    /// The run's wall-time cap (`--max-duration`), when set.
    pub max_duration: Option<Duration>,
    /// When the cap runs out: set when the run starts (`calibrate`), `None` without a cap.
    /// No figure or call starts after it.
    pub deadline: Option<Instant>,
    /// GEMM early stop: a precision under this GFLOPS/GIOPS is skipped at larger sizes.
    pub min_gflops: f64,
    /// A figure whose trials take longer than this in total is skipped at larger sizes.
    pub timeout: Duration,
    /// CV above which a figure is flagged noisy (0.05).
    pub noisy_cv: f64,
    /// Efficiency above which a figure is flagged ABOVE THEORETICAL (1.10).
    pub above_theoretical: f64,
    /// Theoretical peak per precision (GFLOPS/GIOPS).
    pub peaks: BTreeMap<Precision, f64>,
    /// Theoretical memory bandwidth (GB/s), when known.
    pub bandwidth_gbps: Option<f64>,
    /// Last-level cache in bytes, when known (for in-cache and bandwidth-eligible STREAM marks).
    pub llc_bytes: Option<u64>,
}
