//! Command-line arguments (clap). Every flag is documented here and in the README.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fleetcal_proto::Framework;

use crate::output::Format;

/// fleetcal-agent: calibrates this board (BLAS and STREAM per precision and framework, against
/// the board's theoretical peaks), alone or for a fleetcal coordinator.
#[derive(Debug, Parser)]
#[command(name = "fleetcal-agent", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); FLEETCAL_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Calibrate this board with one framework and write a result file (or --load one).
    Calibrate(Box<CalibrateArgs>),
    /// List the hardware presets (built in, or from --presets DIR).
    Presets(PresetsArgs),
    /// Serve a fleetcal coordinator: register, run the plans it sends, upload the results.
    Run(Box<crate::daemon::RunArgs>),
}

/// `fleetcal-agent calibrate`.
#[derive(Debug, Args)]
#[command(
    after_help = "Framework selection: the preset's default_framework (numpy for cpu presets, \
pytorch for cuda presets); --framework overrides (numpy on a cuda preset is an error). If the preset's device is not \
available, the device-fallback warning is shown: on a terminal you are asked to confirm; \
without one the run is refused (exit 3) and nothing is written, unless --allow-fallback.\n\n\
Exit codes: 0 ok, 2 bad input, 3 framework/device/platform refused, 4 engine failure, 6 file error."
)]
pub struct CalibrateArgs {
    /// Hardware preset id (see `fleetcal-agent presets`), or `auto` to derive peaks from this host.
    #[arg(long, default_value = "auto")]
    pub preset: String,
    /// Framework to measure: numpy (CPU only) or pytorch (CPU or CUDA). Default: the preset's default_framework.
    #[arg(long, value_parser = parse_framework)]
    pub framework: Option<Framework>,
    /// Quick calibration: fewer sizes (gemm up to 1024, STREAM up to 64 MiB) and 5 trials.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated operations: blas, blas1, blas2, blas3, dot, axpy, gemv, gemm, stream,
    /// stream_copy, stream_scale, stream_add, stream_triad (legacy: matmul, memory). All listed run.
    #[arg(long, default_value = "blas,stream")]
    pub operations: String,
    /// GEMM early stop: a precision below this many GFLOPS/GIOPS at one size is skipped at larger
    /// sizes (default 1).
    #[arg(long)]
    pub min_gflops: Option<f64>,
    /// Seconds the trials of one size may take before larger sizes are skipped (the origin's 5;
    /// 2 with --quick, so that sizes projected to take longer are skipped in quick mode).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Output file, or a directory for the default name `<hardware_slug>_<framework>.json`.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Result file format: fleetcal (versioned schema) or origin (the origin tool's profile).
    #[arg(long, value_enum, default_value_t = Format::Fleetcal)]
    pub format: Format,
    /// Run even if the host's architecture differs from the preset's (USE WITH CAUTION).
    #[arg(long)]
    pub skip_platform_check: bool,
    /// Accept a device fallback (e.g. CUDA preset, no CUDA) without asking; recorded in the result.
    #[arg(long)]
    pub allow_fallback: bool,
    /// Print the summary of a saved result file (either format) and exit.
    #[arg(long, value_name = "FILE")]
    pub load: Option<PathBuf>,
    /// Read presets from this directory instead of the built-in set.
    #[arg(long, env = "FLEETCAL_PRESETS", value_name = "DIR")]
    pub presets: Option<PathBuf>,
    /// Comma-separated BLAS precisions (fp64, fp32, fp16, bf16, int64, int32, int16, int8). Default: the preset's.
    #[arg(long)]
    pub precisions: Option<String>,
    /// Comma-separated BLAS sizes for every BLAS operation (vector length / matrix order), overriding the sweep.
    #[arg(long)]
    pub sizes: Option<String>,
    /// Comma-separated STREAM array sizes in MiB, overriding the sweep.
    #[arg(long)]
    pub stream_mib: Option<String>,
    /// Timed trials per figure (default 10, 5 with --quick).
    #[arg(long)]
    pub trials: Option<u32>,
    /// Warm-up calls per figure before timing (default 3).
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Engine worker threads (BLAS / libtorch); default: the library's own choice.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `fleetcal-agent presets`.
#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Read presets from this directory instead of the built-in set.
    #[arg(long, env = "FLEETCAL_PRESETS", value_name = "DIR")]
    pub presets: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_framework(s: &str) -> Result<Framework, String> {
    s.parse()
        .map_err(|e: fleetcal_proto::ContractError| e.to_string())
}
