//! End-to-end tests of the `fleetcal-agent` binary: the real executable, tiny sizes, temp dirs.

mod calibrate;
mod errors;
mod fallback;
mod support;
