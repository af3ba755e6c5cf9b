//! The real coordinator binary as a benchmark starts it: on loopback with an ephemeral port,
//! killed when dropped. Shared by the `fleet_load` and `fleet_reports` benches.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running coordinator process.
pub struct Coordinator {
    /// The process.
    pub child: Child,
    /// Its gRPC URL (`http://127.0.0.1:PORT`).
    pub url: String,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `fleetcal-coordinator serve` on `db` with a driver tick of `tick_ms`, and waits for
/// its `listening on ADDR` line.
pub fn start(db: &str, tick_ms: u32) -> Coordinator {
    start_at(db, tick_ms, "127.0.0.1:0")
}

/// [`start`] listening on `listen` (a restart on the address of the coordinator it replaces).
/// `FLEETCAL_BENCH_COORDINATOR` names another binary than the one cargo built (a copy, so that
/// a build during a long bench does not replace the binary it measures).
pub fn start_at(db: &str, tick_ms: u32, listen: &str) -> Coordinator {
    let bin = std::env::var("FLEETCAL_BENCH_COORDINATOR")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_fleetcal-coordinator").to_string());
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--insecure-plaintext",
            "--listen",
            listen,
            "--db",
            db,
            "--tick-ms",
        ])
        .arg(tick_ms.to_string())
        // `FLEETCAL_BENCH_LOG` sets the coordinator's log filter (e.g. `sqlx::query=debug`
        // to see each statement and its time); warnings only otherwise.
        .env(
            "RUST_LOG",
            std::env::var("FLEETCAL_BENCH_LOG").unwrap_or_else(|_| "warn".to_string()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning the coordinator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_string();
    Coordinator {
        url: format!("http://{addr}"),
        child,
    }
}
