//! What the fleet tests share: the real coordinator on a chosen port and database, fleetctl
//! with JSON output, and waiting for a condition.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{fleetctl, CoordinatorProcess};

/// The repository's preset files (the agents use the same set, built into their binary).
pub fn presets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../presets")
}

/// A free 127.0.0.1 port: bound to port 0, then released, so that a restarted coordinator
/// can listen on the same address again.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Serves `dir/coordinator.db` on `listen` with the repository presets and a 100 ms tick.
pub fn serve(dir: &Path, listen: &str) -> CoordinatorProcess {
    serve_with(dir, listen, &[])
}

/// [`serve`] with more `serve` flags.
pub fn serve_with(dir: &Path, listen: &str, extra: &[&str]) -> CoordinatorProcess {
    let db = format!("sqlite://{}", dir.join("coordinator.db").display());
    let presets = presets_dir().display().to_string();
    let mut args = vec![
        "serve",
        "--listen",
        listen,
        "--tick-ms",
        "100",
        "--db",
        &db,
        "--presets",
        &presets,
    ];
    args.extend(extra);
    CoordinatorProcess::spawn(dir, &args)
}

/// Runs fleetctl, which must succeed and print JSON.
pub fn ctl_json(url: &str, args: &[&str]) -> serde_json::Value {
    let out = fleetctl(url, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fleetctl {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("fleetctl {args:?}: {e}: {stdout}"))
}

/// Polls `check` until it yields a value. The limit only keeps a broken build from hanging
/// the suite; `context` is printed when it is reached.
pub fn wait_for<T>(
    what: &str,
    context: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > Duration::from_secs(180) {
            panic!("gave up waiting for {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until exactly `n` agents are online; their ids.
pub fn wait_online(url: &str, n: usize, context: impl Fn() -> String) -> Vec<String> {
    wait_for(&format!("{n} agent(s) online"), context, || {
        Some(online_agents(url)).filter(|ids| ids.len() == n)
    })
}

/// Agent ids fleetctl lists as online.
pub fn online_agents(url: &str) -> Vec<String> {
    let agents = ctl_json(url, &["agents", "--json"]);
    let mut ids: Vec<String> = agents
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["online"] == true)
        .map(|a| a["agent_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}
