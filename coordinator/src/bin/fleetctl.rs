//! `fleetctl`: see [`fleetcal_coordinator::fleetctl::run`].

fn main() -> std::process::ExitCode {
    fleetcal_coordinator::fleetctl::run()
}
