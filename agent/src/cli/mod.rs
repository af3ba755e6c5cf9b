//! The command line.

/// Parses the command line, runs it, and maps errors to exit codes.
pub fn run() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
