//! [`RunOptions`]: everything `fleetcal-agent run` needs, resolved from flags, environment and
//! the config file; plus the default state dir and the `--labels` syntax.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetcal_proto::dial::ClientTlsFiles;

use super::link::BackoffPolicy;
use crate::AgentError;

/// The resolved settings of the daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// The coordinator URL (`http://HOST:PORT` or `https://HOST:PORT`): the first of
    /// `coordinators`.
    pub coordinator: String,
    /// Every coordinator of the fleet (several on one database), the first being
    /// `coordinator`; the link starts at one picked by the agent id and moves to the next
    /// when it fails ([`super::link::first_target`], [`super::link::next_target`]).
    pub coordinators: Vec<String>,
    /// Where the agent id and the spool live.
    pub state_dir: PathBuf,
    /// Operator labels sent with Register.
    pub labels: BTreeMap<String, String>,
    /// The preset id announced at Register; `None` lets the coordinator match one.
    pub preset: Option<String>,
    /// A directory of preset files; `None` uses the presets built into the binary.
    pub presets_dir: Option<PathBuf>,
    /// The config file the settings came from, if any.
    pub config_file: Option<PathBuf>,
    /// Engine worker threads; `None` leaves the engine default.
    pub threads: Option<usize>,
    /// Skip the platform check of every run.
    pub skip_platform_check: bool,
    /// Reconnect backoff.
    pub backoff: BackoffPolicy,
    /// HTTP/2 keepalive ping interval.
    pub keepalive: Duration,
    /// Timeout of each unary call.
    pub rpc_timeout: Duration,
    /// TLS files for an `https://` coordinator; `None` for `http://`.
    pub tls: Option<ClientTlsFiles>,
    /// A join token to enroll with when the state dir holds no certificate yet.
    pub join_token: Option<String>,
    /// Without a join token and a certificate: ask to be enrolled and wait until an operator
    /// approves (`fleetctl agents approve ID`).
    pub request_approval: bool,
}

impl RunOptions {
    /// Options with defaults for everything but the coordinator and the state dir.
    pub fn new(coordinator: impl Into<String>, state_dir: impl Into<PathBuf>) -> RunOptions {
        let coordinator = coordinator.into();
        RunOptions {
            coordinators: vec![coordinator.clone()],
            coordinator,
            state_dir: state_dir.into(),
            labels: BTreeMap::new(),
            preset: None,
            presets_dir: None,
            config_file: None,
            threads: None,
            skip_platform_check: false,
            backoff: BackoffPolicy::default(),
            keepalive: Duration::from_secs(20),
            rpc_timeout: Duration::from_secs(30),
            tls: None,
            join_token: None,
            request_approval: false,
        }
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }
}

/// Checks a coordinator URL at start ([`fleetcal_proto::dial::check_url`]: `http://` or
/// `https://`, a host, a port in 1..=65535) and returns it trimmed.
pub fn check_coordinator_url(url: &str) -> Result<String, AgentError> {
    Ok(fleetcal_proto::dial::check_url(url)?.to_string())
}

/// Checks a list of coordinator URLs at start ([`fleetcal_proto::dial::check_urls`]: each
/// item may be a comma list; 1 to 16 URLs, each as [`check_coordinator_url`] says) and returns
/// them trimmed, duplicates dropped.
pub fn check_coordinator_urls<S: AsRef<str>>(items: &[S]) -> Result<Vec<String>, AgentError> {
    Ok(fleetcal_proto::dial::check_urls(items)?)
}

/// Parses `--labels k=v,k=v`; an empty string is no labels.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, AgentError> {
    let mut labels = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                labels.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => {
                return Err(AgentError::Usage(format!(
                    "label '{}' must be KEY=VALUE (labels are k=v,k=v)",
                    fleetcal_proto::quote::bounded(pair)
                )))
            }
        }
    }
    Ok(labels)
}

/// The state dir when none is configured: `/var/lib/fleetcal` for root, else
/// `$XDG_STATE_HOME/fleetcal`, else `$HOME/.local/state/fleetcal`.
pub fn default_state_dir(
    is_root: bool,
    xdg_state_home: Option<&Path>,
    home: Option<&Path>,
) -> Result<PathBuf, AgentError> {
    if is_root {
        return Ok(PathBuf::from("/var/lib/fleetcal"));
    }
    if let Some(x) = xdg_state_home.filter(|p| p.is_absolute()) {
        return Ok(x.join("fleetcal"));
    }
    if let Some(h) = home.filter(|p| p.is_absolute()) {
        return Ok(h.join(".local/state/fleetcal"));
    }
    Err(AgentError::Usage(
        "no state dir: pass --state-dir DIR, set FLEETCAL_STATE_DIR, or set HOME".into(),
    ))
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_and_errors_name_the_pair() {
        let l = parse_labels("site=lab, rack = 3,,").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l["rack"], "3");
        assert!(parse_labels("").unwrap().is_empty());
        let e = parse_labels("site=lab,oops").unwrap_err().to_string();
        assert!(e.contains("'oops'"), "{e}");
        assert!(parse_labels("=x").is_err());
    }

    #[test]
    fn coordinator_urls_need_a_scheme_a_host_and_a_valid_port() {
        assert_eq!(
            check_coordinator_url(" http://127.0.0.1:7 ").unwrap(),
            "http://127.0.0.1:7"
        );
        assert!(check_coordinator_url("https://c.lab").is_ok());
        for (bad, why) in [
            ("c.lab:7700", "http:// or https://"),
            ("ftp://c.lab:21", "http:// or https://"),
            ("http://", "no host"),
            ("http://127.0.0.1:99999", "1..=65535"),
        ] {
            let e = check_coordinator_url(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            let e = e.to_string();
            assert!(
                e.contains(&format!("'{bad}'")) && e.contains(why) && e.contains("--coordinator"),
                "{e}"
            );
        }
    }

    #[test]
    fn default_state_dir_rules() {
        let x = Path::new("/x");
        let h = Path::new("/home/u");
        assert_eq!(
            default_state_dir(true, Some(x), Some(h)).unwrap(),
            Path::new("/var/lib/fleetcal")
        );
        assert_eq!(
            default_state_dir(false, Some(x), Some(h)).unwrap(),
            Path::new("/x/fleetcal")
        );
        assert_eq!(
            default_state_dir(false, Some(Path::new("rel")), Some(h)).unwrap(),
            Path::new("/home/u/.local/state/fleetcal")
        );
        let e = default_state_dir(false, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--state-dir"), "{e}");
    }
}
