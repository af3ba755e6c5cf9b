//! The command line: `calibrate`, `presets`, `run`.

mod args;
mod calibrate;
mod presets;

pub use args::{CalibrateArgs, Cli, Command};

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line, runs it, and maps errors to exit codes (see [`crate::AgentError::exit_code`]).
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    if let Some(dir) = &cli.host_root {
        if let Err(e) = crate::detect::root::set_host_root(dir) {
            eprintln!("error: {e}");
            return ExitCode::from(crate::AgentError::Usage(e).exit_code());
        }
    }
    let outcome = match cli.command {
        Command::Calibrate(args) => calibrate::run(*args),
        Command::Presets(args) => presets::run(args),
        Command::Run(args) => args
            .into_options()
            .and_then(crate::daemon::service::run_blocking),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETCAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
