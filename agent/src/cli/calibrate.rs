//! `fleetcal-agent calibrate`: one board, one framework, one result file.

use std::io::IsTerminal;
use std::str::FromStr;

use fleetcal_proto::quote::bounded;
use fleetcal_proto::{parse_operations, FrameworkChoice, Precision};

use super::args::CalibrateArgs;
use crate::bench::CancelToken;
use crate::calibrate::{calibrate, CalibrationRequest};
use crate::limits;
use crate::output;
use crate::report::{load_summary, TerminalConsole};
use crate::select::FallbackPolicy;
use crate::AgentError;

fn list<T: FromStr>(flag: &str, raw: &str) -> Result<Vec<T>, AgentError>
where
    T::Err: std::fmt::Display,
{
    raw.split(',')
        .map(|s| {
            s.trim().parse::<T>().map_err(|e| {
                AgentError::Usage(format!(
                    "--{flag}: '{}' is not valid: {e}",
                    bounded(s.trim())
                ))
            })
        })
        .collect()
}

/// Builds the library request from the flags.
pub fn request(args: &CalibrateArgs) -> Result<CalibrationRequest, AgentError> {
    let fallback = if args.allow_fallback {
        FallbackPolicy::Allow
    } else if std::io::stdin().is_terminal() {
        FallbackPolicy::Ask
    } else {
        FallbackPolicy::Refuse
    };
    let sizes = args
        .sizes
        .as_deref()
        .map(|s| limits::parse_list(&limits::BLAS_SIZE, "--sizes", s))
        .transpose()?;
    let stream_mib = args
        .stream_mib
        .as_deref()
        .map(|s| limits::parse_list(&limits::STREAM_MIB, "--stream-mib", s))
        .transpose()?;
    Ok(CalibrationRequest {
        preset: args.preset.clone(),
        presets_dir: args.presets.clone(),
        framework: match args.framework {
            Some(FrameworkChoice::Only(f)) => Some(f),
            Some(FrameworkChoice::Default | FrameworkChoice::Compare) | None => None,
        },
        quick: args.quick,
        operations: parse_operations(&args.operations)?,
        precisions: args
            .precisions
            .as_deref()
            .map(|s| list::<Precision>("precisions", s))
            .transpose()?,
        blas_sizes: sizes,
        stream_mib,
        warmup_runs: args.warmup,
        measurement_runs: args.trials,
        max_trials: args.max_trials,
        ci_target_pct: args.ci_target,
        max_duration_s: args.max_duration,
        telemetry: !args.no_telemetry,
        min_gflops: args.min_gflops,
        timeout_s: args.timeout,
        threads: args.threads,
        skip_platform_check: args.skip_platform_check,
        fallback,
        run_id: None,
    })
}

/// Runs the command.
pub fn run(args: CalibrateArgs) -> Result<(), AgentError> {
    if let Some(path) = &args.load {
        for line in load_summary(path)? {
            println!("{line}");
        }
        return Ok(());
    }
    let req = request(&args)?;
    if args.framework == Some(FrameworkChoice::Compare) {
        return run_compare(&args, &req);
    }
    output::check_output(args.output.as_deref())?;
    // With `--output -` stdout carries the result document and nothing else.
    let to_stdout = output::is_stdout(args.output.as_deref());
    let mut console = if to_stdout {
        TerminalConsole::on_stderr()
    } else {
        TerminalConsole::new()
    };
    // Nothing cancels a calibration started by hand (Ctrl-C ends the process).
    let result = calibrate(&req, &mut console, &CancelToken::new())?;
    let dest = output::destination(&result, args.output.as_deref());
    let written = output::write_result(&dest, &output::render(&result, args.format))?;
    let format = clap::ValueEnum::to_possible_value(&args.format)
        .map_or_else(String::new, |v| v.get_name().to_string());
    if to_stdout {
        eprintln!("\nCalibration written to stdout ({format} format)");
    } else {
        println!(
            "\nCalibration written to {} ({format} format)",
            written.display()
        );
    }
    Ok(())
}

/// `--framework compare`: numpy and pytorch interleaved on this board, both result files,
/// then the side-by-side table.
fn run_compare(args: &CalibrateArgs, req: &CalibrationRequest) -> Result<(), AgentError> {
    if !cfg!(feature = "torch") {
        return Err(AgentError::Framework(format!(
            "--framework compare runs numpy and pytorch side by side, and this fleetcal-agent has no pytorch engine; {}",
            crate::select::TORCH_BUILD_HINT
        )));
    }
    if let Some(p) = args.output.as_deref() {
        if output::is_stdout(args.output.as_deref()) || !p.is_dir() {
            return Err(AgentError::Usage(format!(
                "--output: '{}' is not a directory; --framework compare writes two result files (<hardware_slug>_numpy.json and _pytorch.json) into a directory",
                bounded(&p.display().to_string())
            )));
        }
    }
    let mut console = TerminalConsole::new();
    let results = crate::calibrate::compare(req, &mut console, &CancelToken::new())?;
    let format = clap::ValueEnum::to_possible_value(&args.format)
        .map_or_else(String::new, |v| v.get_name().to_string());
    for result in &results {
        let dest = output::destination(result, args.output.as_deref());
        let written = output::write_result(&dest, &output::render(result, args.format))?;
        println!(
            "Calibration written to {} ({format} format)",
            written.display()
        );
    }
    if let [numpy, pytorch] = results.as_slice() {
        for line in crate::report::compare_table(numpy, pytorch) {
            println!("{line}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;
    use fleetcal_proto::pb::Plan;
    use fleetcal_proto::Operation;

    use super::*;
    use crate::bench::{BenchPlan, ModeDefaults, SizeSweep};
    use crate::cli::{Cli, Command};
    use crate::daemon::plan::{to_request, LocalSettings};

    const PRESET: &str = "i7-12700k";
    /// A last-level cache, so that the sweeps get their bandwidth-sized STREAM array.
    const LLC: Option<u64> = Some(30 * 1024 * 1024);

    fn from_cli(flags: &[&str]) -> BenchPlan {
        let argv = ["fleetcal-agent", "calibrate", "--preset", PRESET];
        let cli = Cli::try_parse_from(argv.iter().chain(flags)).unwrap();
        let Command::Calibrate(args) = cli.command else {
            panic!("not calibrate: {flags:?}");
        };
        bench(&request(&args).unwrap())
    }

    fn from_plan(plan: Plan) -> BenchPlan {
        let plan = Plan {
            run_id: "r-1".into(),
            preset_id: PRESET.into(),
            framework: "numpy".into(),
            device: "cpu".into(),
            ..plan
        };
        bench(&to_request(&plan, &LocalSettings::default()).unwrap())
    }

    fn bench(req: &CalibrationRequest) -> BenchPlan {
        let preset = crate::presets::find(None, PRESET).unwrap();
        crate::calibrate::build_plan(req, &preset, LLC).unwrap()
    }

    /// What a board runs: operations, precisions, sizes, warm-ups, trials, per-size timeout,
    /// early-stop threshold.
    type Settings = (
        Vec<Operation>,
        Vec<Precision>,
        SizeSweep,
        u32,
        u32,
        Duration,
        f64,
        (u32, Option<f64>, Option<Duration>),
    );

    fn settings(p: BenchPlan) -> Settings {
        (
            p.operations,
            p.precisions,
            p.sizes,
            p.warmup_runs,
            p.measurement_runs,
            p.timeout,
            p.min_gflops,
            (p.max_trials, p.ci_target, p.max_duration),
        )
    }

    #[test]
    fn the_command_line_and_a_fleet_plan_run_the_same_for_the_same_flags() {
        let cases: Vec<(&[&str], Plan)> = vec![
            (
                &["--quick"],
                Plan {
                    quick: true,
                    ..Plan::default()
                },
            ),
            (&[], Plan::default()),
            (
                &["--max-duration", "120"],
                Plan {
                    max_duration_s: 120,
                    ..Plan::default()
                },
            ),
            (
                &["--quick", "--trials", "7", "--warmup", "0"],
                Plan {
                    quick: true,
                    trials: 7,
                    warmup: Some(0),
                    ..Plan::default()
                },
            ),
            (
                &["--trials", "20", "--warmup", "5"],
                Plan {
                    trials: 20,
                    warmup: Some(5),
                    ..Plan::default()
                },
            ),
            (
                &[
                    "--quick",
                    "--min-gflops",
                    "50",
                    "--sizes",
                    "16,32",
                    "--stream-mib",
                    "1",
                    "--operations",
                    "gemm,stream_triad",
                    "--precisions",
                    "fp32",
                ],
                Plan {
                    quick: true,
                    min_gflops: 50.0,
                    blas_sizes: vec![16, 32],
                    stream_mib: vec![1],
                    operations: vec!["gemm".into(), "stream_triad".into()],
                    precisions: vec!["fp32".into()],
                    ..Plan::default()
                },
            ),
        ];
        for (flags, plan) in cases {
            assert_eq!(
                settings(from_cli(flags)),
                settings(from_plan(plan.clone())),
                "flags {flags:?} and {plan:?}"
            );
        }
    }

    #[test]
    fn quick_mode_defaults_come_from_one_place() {
        let quick = ModeDefaults::of(true, fleetcal_proto::DeviceKind::Cpu);
        let got = settings(from_plan(Plan {
            quick: true,
            // The whole run's limit, not the per-size timeout.
            timeout_s: 600,
            ..Plan::default()
        }));
        assert_eq!(
            (got.3, got.4, got.5, got.6),
            (3, 6, Duration::from_secs(2), 1.0),
            "quick: 3 warm-ups, at least 6 trials, 2 s per size, 1 GFLOPS"
        );
        assert_eq!(got.2, quick.sizes.clone().with_bandwidth_size(LLC));
        assert_eq!(got.2.blas23.last(), Some(&1024));
        assert_eq!(
            got.7,
            (20, Some(0.03), None),
            "up to 20 trials, ± 3 %, no cap"
        );
        assert_eq!(settings(from_cli(&[])).7 .0, 40);
        // --trials above the cap raises the cap; --ci-target 0 is exactly --trials.
        assert_eq!(settings(from_cli(&["--quick", "--trials", "30"])).7 .0, 30);
        assert_eq!(settings(from_cli(&["--ci-target", "0"])).7 .1, None);
        let full = settings(from_cli(&[]));
        assert_eq!(
            (full.3, full.4, full.5),
            (3, 6, Duration::from_secs(5)),
            "full: 3 warm-ups, at least 6 trials, 5 s per size"
        );
        assert_eq!(full.2, SizeSweep::full().with_bandwidth_size(LLC));
        // Only the command line sets the per-size timeout; the rest stays quick mode's.
        let timed = settings(from_cli(&["--quick", "--timeout", "9"]));
        assert_eq!((timed.4, timed.5), (6, Duration::from_secs(9)));
        assert_eq!(timed.2, got.2);
        // A zero timeout is refused where it is given, naming the flag and the range.
        let argv = [
            "fleetcal-agent",
            "calibrate",
            "--preset",
            PRESET,
            "--timeout",
            "0",
        ];
        let zero = Cli::try_parse_from(argv)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            zero.contains("--timeout") && zero.contains("3600"),
            "{zero}"
        );
    }
}
