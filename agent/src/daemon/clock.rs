//! The agent's clock floor: a board without a real-time clock boots at 1970, and a TLS check
//! at 1970 refuses the coordinator's certificate (not yet valid). The agent checks it as of
//! `max(now, floor)` ([`fleetcal_proto::clock_floor`]), the floor being the latest of the
//! agent's build time (`SOURCE_DATE_EPOCH`, else the time its build script ran; set in
//! `build.rs`) and the modification time of the `--ca-cert` file (written when the board was
//! provisioned), as systemd-timesyncd starts from its build time and its last saved clock. A
//! clock below the floor is logged once as a warning.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fleetcal_proto::dial::{self, ClientTlsFiles};
use tonic::transport::Endpoint;

use crate::AgentError;

/// When this agent was built, seconds since the Unix epoch (0 when unknown).
pub fn build_time_s() -> u64 {
    option_env!("FLEETCAL_BUILD_EPOCH")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The clock floor for checking the coordinator's certificate: the latest of the build time
/// and the CA certificate file's modification time.
pub fn floor_s(ca_cert: &Path) -> u64 {
    let provisioned = std::fs::metadata(ca_cert)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    build_time_s().max(provisioned)
}

/// Whether the below-the-floor warning was logged (once per process).
static WARNED: AtomicBool = AtomicBool::new(false);

/// The endpoint for `url` through [`dial::endpoint_with_clock_floor`] with the agent's floor.
pub fn endpoint(url: &str, tls: Option<&ClientTlsFiles>) -> Result<Endpoint, AgentError> {
    let floor = tls.map_or(0, |t| floor_s(&t.ca_cert));
    let below = Arc::new(|now: u64, floor: u64| {
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                clock = %stamp(now),
                floor = %stamp(floor),
                "the system clock is before this agent's build (a board without a real-time \
                 clock?): the coordinator's certificate is checked as of the floor; set the \
                 clock (NTP) so that expiry is checked correctly"
            );
        }
    });
    Ok(dial::endpoint_with_clock_floor(url, tls, floor, below)?)
}

/// Seconds since the epoch as RFC 3339 (the number itself when out of range).
fn stamp(s: u64) -> String {
    i64::try_from(s)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(|| s.to_string(), |t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_build_time_or_the_ca_files_time() {
        let built = build_time_s();
        assert!(
            built > 1_700_000_000,
            "build.rs sets the build time: {built}"
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let written = std::fs::metadata(&ca)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(floor_s(&ca), built.max(written));
        assert_eq!(floor_s(&dir.path().join("missing.pem")), built);
        assert_eq!(stamp(0), "1970-01-01T00:00:00+00:00");
    }
}
