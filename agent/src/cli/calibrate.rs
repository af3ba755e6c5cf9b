//! `fleetcal-agent calibrate`: one board, one framework, one result file.

use std::io::IsTerminal;
use std::str::FromStr;

use fleetcal_proto::quote::bounded;
use fleetcal_proto::{parse_operations, Precision};

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
        framework: args.framework,
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
        min_gflops: args.min_gflops,
        timeout_s: args.timeout.unwrap_or(if args.quick { 2.0 } else { 5.0 }),
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
