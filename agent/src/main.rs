//! `fleetcal-agent`: see `fleetcal-agent --help`.

fn main() -> std::process::ExitCode {
    fleetcal_agent::cli::run()
}
