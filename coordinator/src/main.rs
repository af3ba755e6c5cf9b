//! `fleetcal-coordinator`: see [`fleetcal_coordinator::app::run`].

fn main() -> std::process::ExitCode {
    fleetcal_coordinator::app::run()
}
