//! Command-line arguments (clap). Every flag is documented here and in the README.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fleetcal_proto::FrameworkChoice;

use crate::limits;
use crate::output::Format;

/// fleetcal-agent: calibrates this board (BLAS and STREAM per precision and framework, against
/// the board's theoretical peaks), alone or for a fleetcal coordinator.
#[derive(Debug, Parser)]
#[command(name = "fleetcal-agent", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); FLEETCAL_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Read the host's /proc, /sys and /etc under DIR instead of / (an agent in a container
    /// with the host's trees mounted at DIR/proc, DIR/sys; a fixture tree under an emulator).
    /// Changes what is detected (CPU, clock, memory, Jetson, environment), not what runs.
    #[arg(long, global = true, value_name = "DIR", env = "FLEETCAL_HOST_ROOT")]
    pub host_root: Option<PathBuf>,
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
    /// Framework to measure: numpy (CPU only) or pytorch (CPU or CUDA), or compare: both on
    /// this board's CPU, interleaved, two result files and a side-by-side table (needs the
    /// pytorch engine). Default: the preset's default_framework.
    #[arg(long, value_parser = parse_framework)]
    pub framework: Option<FrameworkChoice>,
    /// Quick calibration: fewer sizes (gemm up to 1024, STREAM up to 64 MiB) and 5 trials.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated operations: blas, blas1, blas2, blas3, dot, axpy, gemv, gemm, stream,
    /// stream_copy, stream_scale, stream_add, stream_triad (legacy: matmul, memory). All listed run.
    #[arg(long, default_value = "blas,stream")]
    pub operations: String,
    /// GEMM early stop: a precision below this many GFLOPS/GIOPS at one size is skipped at
    /// larger sizes (0..=1e9; 0 never stops; default 1).
    #[arg(long, value_parser = limits::MIN_GFLOPS)]
    pub min_gflops: Option<f64>,
    /// Seconds the trials of one size may take before larger sizes are skipped (the origin's 5;
    /// 2 with --quick, so that sizes projected to take longer are skipped in quick mode);
    /// 0.01..=3600.
    #[arg(long, value_parser = limits::TIMEOUT_S)]
    pub timeout: Option<f64>,
    /// Where the result goes: a file (replaced atomically; a symlink is followed and its
    /// target replaced), a directory for the default name `<hardware_slug>_<framework>.json`,
    /// a FIFO or character device (written in place, never replaced), or - for stdout (the
    /// console then writes to stderr). A socket, block device or dangling symlink is refused
    /// before anything runs.
    #[arg(long, short, value_name = "FILE|DIR|-")]
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
    /// Comma-separated BLAS sizes for every BLAS operation (vector length / matrix order,
    /// each 1..=2147483647), overriding the sweep.
    #[arg(long)]
    pub sizes: Option<String>,
    /// Comma-separated STREAM array sizes in MiB (each 0.001..=1048576), overriding the sweep.
    #[arg(long)]
    pub stream_mib: Option<String>,
    /// The fewest timed trials per figure, 1..=1000 (default 6); more run until the median's
    /// 95 % confidence interval is within --ci-target, up to --max-trials.
    #[arg(long, value_parser = limits::TRIALS)]
    pub trials: Option<u32>,
    /// The most timed trials per figure, 1..=1000 (default 40, 20 with --quick; never fewer
    /// than --trials).
    #[arg(long, value_parser = limits::TRIALS)]
    pub max_trials: Option<u32>,
    /// Adaptive repeats: a figure stops once its median's 95 % confidence interval is within
    /// ± this many percent, 0..=100 (default 3; 0 = exactly --trials trials).
    #[arg(long, value_parser = limits::CI_TARGET_PCT, value_name = "PERCENT")]
    pub ci_target: Option<f64>,
    /// Wall-time cap of the whole run in seconds, 1..=604800: figures not started by then are
    /// skipped and a figure under way keeps the trials it has; the result records what was cut.
    #[arg(long, value_parser = limits::MAX_DURATION_S, value_name = "SECONDS")]
    pub max_duration: Option<f64>,
    /// Warm-up calls per figure before timing, 0..=100 (default 3).
    #[arg(long, value_parser = limits::WARMUP)]
    pub warmup: Option<u32>,
    /// Engine worker threads (BLAS / libtorch), 1..=4096; default: the library's own choice.
    #[arg(long, value_parser = limits::THREADS)]
    pub threads: Option<usize>,
    /// Do not read the sensors (CPU clock, temperatures, throttling) between trials; the
    /// records then carry no telemetry and no throttled/clock-spread flags.
    #[arg(long)]
    pub no_telemetry: bool,
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

fn parse_framework(s: &str) -> Result<FrameworkChoice, String> {
    s.parse()
        .map_err(|e: fleetcal_proto::ContractError| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use proptest::prelude::*;

    use super::*;

    /// Numbers as people (and fuzzers) type them: floats in both notations, integers of any
    /// width, specials, and junk made of number characters.
    fn numeric() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>().prop_map(|v| format!("{v:?}")),
            any::<f64>().prop_map(|v| v.to_string()),
            any::<i64>().prop_map(|v| v.to_string()),
            any::<u64>().prop_map(|v| v.to_string()),
            any::<u128>().prop_map(|v| v.to_string()),
            "[-+0-9.eE,]{0,24}",
            prop::sample::select(vec![
                "NaN", "nan", "inf", "-inf", "1e20", "1e308", "1e-9", "-0", "0", "1e400",
            ])
            .prop_map(str::to_string),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every numeric flag of `calibrate`: a clap error or a request whose numbers are in
        /// range and turn into a bench plan, never a panic.
        #[test]
        fn calibrate_numeric_flags_never_panic(
            flag in prop::sample::select(vec![
                "timeout", "min-gflops", "trials", "warmup", "threads", "sizes", "stream-mib",
                "max-trials", "ci-target", "max-duration",
            ]),
            v in numeric(),
        ) {
            let arg = format!("--{flag}={v}");
            let Ok(cli) = Cli::try_parse_from(["fleetcal-agent", "calibrate", &arg]) else {
                return Ok(());
            };
            let Command::Calibrate(args) = cli.command else {
                panic!("parsed as another command");
            };
            let Ok(req) = crate::cli::calibrate::request(&args) else {
                return Ok(());
            };
            let preset = crate::presets::find(None, "i7-12700k").unwrap();
            let plan = crate::calibrate::build_plan(&req, &preset, None);
            prop_assert!(plan.is_ok(), "{arg}: accepted by the parser, refused by the plan: {:?}", plan.err());
        }

        /// Every numeric flag of `run`: a clap error or resolved options, never a panic.
        #[test]
        fn run_numeric_flags_never_panic(
            flag in prop::sample::select(vec!["max-backoff", "threads"]),
            v in numeric(),
        ) {
            let arg = format!("--{flag}={v}");
            let parsed = Cli::try_parse_from([
                "fleetcal-agent", "run", "--coordinator", "http://c:1", "--state-dir", "/s", &arg,
            ]);
            if let Ok(Cli { command: Command::Run(args), .. }) = parsed {
                let opts = args.resolve(None, &crate::daemon::args::HostEnv::default());
                prop_assert!(opts.is_ok(), "{arg}: {:?}", opts.err());
                let opts = opts.unwrap();
                prop_assert!(opts.backoff.max >= std::time::Duration::from_millis(50));
            }
        }
    }

    #[test]
    fn out_of_range_flags_are_clap_errors_naming_the_flag_and_range() {
        for (args, needle) in [
            (vec!["calibrate", "--timeout", "1e20"], "--timeout: '1e20' is out of range (accepted: 0.01..=3600 seconds)"),
            (vec!["calibrate", "--timeout", "NaN"], "--timeout: 'NaN' is out of range"),
            (vec!["calibrate", "--timeout=-1"], "--timeout: '-1' is out of range"),
            (vec!["calibrate", "--timeout", "inf"], "--timeout: 'inf' is out of range"),
            (vec!["calibrate", "--trials", "0"], "--trials: '0' is out of range (accepted: 1..=1000 trials)"),
            (vec!["calibrate", "--warmup", "101"], "--warmup: '101' is out of range (accepted: 0..=100 calls)"),
            (vec!["calibrate", "--ci-target", "101"], "--ci-target: '101' is out of range (accepted: 0..=100 percent)"),
            (vec!["calibrate", "--max-duration", "0"], "--max-duration: '0' is out of range (accepted: 1..=604800 seconds)"),
            (vec!["calibrate", "--max-trials", "1001"], "--max-trials: '1001' is out of range"),
            (vec!["calibrate", "--threads", "0"], "--threads: '0' is out of range"),
            (vec!["calibrate", "--min-gflops", "1e300"], "--min-gflops: '1e300' is out of range"),
            (vec!["run", "--max-backoff", "1e-9"], "--max-backoff (FLEETCAL_MAX_BACKOFF): '1e-9' is out of range (accepted: 0.05..=3600 seconds)"),
            (vec!["run", "--max-backoff", "1e20"], "--max-backoff (FLEETCAL_MAX_BACKOFF): '1e20'"),
        ] {
            let mut argv = vec!["fleetcal-agent"];
            argv.extend(&args);
            let e = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let e = e.to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }
}
