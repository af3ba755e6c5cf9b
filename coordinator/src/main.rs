//! `fleetcal-coordinator`: see [`fleetcal_coordinator::app::run`].

mod alloc;

/// The coordinator allocates and frees millions of small values per fleet report (rows,
/// figures, report models) and per upload (the parsed result): mimalloc does that in about
/// half the time of the system allocator (`docs/coordinator.md`, "Fleet reports"). With the
/// crate's `override` feature SQLite and zstd allocate from it too ([`alloc`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    alloc::keep_freed_memory();
    fleetcal_coordinator::app::run()
}
