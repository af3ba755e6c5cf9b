//! Where host detection reads the host's `/proc`, `/sys` and `/etc`: `/` unless
//! `--host-root DIR` (`FLEETCAL_HOST_ROOT`) names another directory, set once at start.
//!
//! Two uses: an agent in a container that sees the host's trees mounted elsewhere
//! (`-v /proc:/host/proc:ro -v /sys:/host/sys:ro` with `--host-root /host`), and checking a
//! build for another board under an emulator against a fixture tree (CI runs the aarch64
//! agent under qemu-user with a Jetson Orin's `/proc/cpuinfo`). What the root changes: the
//! CPU model and microarchitecture (so the derived peaks), the clock from cpufreq, memory,
//! caches, the kernel, the Jetson module and every fact of `metadata.environment`. What it
//! never changes: the CPUs the engines' threads run on (scheduler affinity), the code paths
//! they take (decided from the running CPU), and the telemetry read while figures run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static HOST_ROOT: OnceLock<PathBuf> = OnceLock::new();

/// Sets the host root for this process; call once, before any detection. Refused (with
/// the reason) when `dir` is not a directory or a root was set already.
pub fn set_host_root(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!(
            "--host-root {}: not a directory",
            fleetcal_proto::quote::quoted(&dir.display().to_string())
        ));
    }
    HOST_ROOT
        .set(dir.to_path_buf())
        .map_err(|_| "--host-root was set twice".to_string())
}

/// The host root: `/` unless [`set_host_root`] set another.
pub fn host_root() -> &'static Path {
    HOST_ROOT.get().map_or(Path::new("/"), PathBuf::as_path)
}

/// An absolute host path (`/proc/cpuinfo`) under the host root.
pub fn host_path(abs: &str) -> PathBuf {
    host_root().join(abs.trim_start_matches('/'))
}

/// Reads a host file under the host root; empty when it cannot be read.
pub fn read_host(abs: &str) -> String {
    std::fs::read_to_string(host_path(abs)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_under_the_root() {
        // No root set in unit tests: `/`.
        assert_eq!(host_path("/proc/cpuinfo"), Path::new("/proc/cpuinfo"));
        assert!(set_host_root(Path::new("/definitely/not/here")).is_err());
    }
}
