//! The agent's config file: versioned TOML (`version = 1`), unknown keys rejected.
//!
//! ```toml
//! version = 1
//! coordinator = "http://coordinator.lab:7700"
//! # or several coordinators of one fleet (one database): the link starts at one and moves on
//! # coordinators = ["http://coord-a.lab:7700", "http://coord-b.lab:7700"]
//! state_dir = "/var/lib/fleetcal"
//! preset = "jetson-orin-nano-gpu"
//! presets_dir = "/etc/fleetcal/presets"
//! threads = 4
//! skip_platform_check = false
//!
//! [labels]
//! site = "lab"
//! rack = "3"
//!
//! [tls]
//! ca_cert = "/etc/fleetcal/tls/ca.pem"
//! cert = "/etc/fleetcal/tls/agent.pem"
//! key = "/etc/fleetcal/tls/agent.key"
//! server_name = "coordinator.lab"
//!
//! [link]
//! backoff_initial_s = 0.5
//! backoff_max_s = 30
//! keepalive_s = 20
//! rpc_timeout_s = 30
//! ```
//!
//! Every key is optional except `version`; command-line flags (and their `FLEETCAL_*`
//! environment variables) override the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::limits;
use crate::AgentError;

/// The config format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Must be [`CONFIG_VERSION`].
    pub version: u32,
    /// The coordinator URL (`http://HOST:PORT` or `https://…`), or several as a comma list.
    pub coordinator: Option<String>,
    /// Several coordinators of one fleet (on one database), as a list; not with `coordinator`.
    pub coordinators: Option<Vec<String>>,
    /// Where the agent id and the result spool live.
    pub state_dir: Option<PathBuf>,
    /// The preset id this board is (`auto` to derive one from the host).
    pub preset: Option<String>,
    /// A directory of preset files; absent uses the presets built into the binary.
    pub presets_dir: Option<PathBuf>,
    /// Engine worker threads; absent leaves the engine default.
    pub threads: Option<usize>,
    /// Skip the platform check of every run (architecture mismatch becomes a warning).
    pub skip_platform_check: Option<bool>,
    /// Operator labels (`site = "lab"`), used by campaign selectors.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Link tuning.
    #[serde(default)]
    pub link: LinkConfig,
    /// TLS files for an `https://` coordinator.
    #[serde(default)]
    pub tls: TlsConfig,
}

/// The `[tls]` table: used only with an `https://` coordinator.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The CA certificate (PEM) that signed the coordinator's certificate.
    pub ca_cert: Option<PathBuf>,
    /// This agent's certificate (PEM), for a coordinator that requires client certificates.
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of `cert`.
    pub key: Option<PathBuf>,
    /// The name the coordinator's certificate is checked against instead of the URL's host
    /// (a coordinator dialled by IP address or through a load balancer).
    pub server_name: Option<String>,
    /// A join token to enroll with on first start (`--join-token`).
    pub join_token: Option<String>,
    /// Without a join token, ask to be enrolled and wait for an operator's approval
    /// (`--request-approval`).
    pub request_approval: Option<bool>,
}

/// The `[link]` table: reconnect backoff, keepalive and RPC timeouts (their accepted ranges
/// are in [`crate::limits`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// First reconnect delay in seconds (0.5).
    pub backoff_initial_s: Option<f64>,
    /// Longest reconnect delay in seconds (30).
    pub backoff_max_s: Option<f64>,
    /// HTTP/2 keepalive ping interval in seconds (20): how fast a vanished coordinator is noticed.
    pub keepalive_s: Option<f64>,
    /// Timeout of each unary call (register, progress, upload) in seconds (30).
    pub rpc_timeout_s: Option<f64>,
}

impl ConfigFile {
    /// Parses config text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, AgentError> {
        let err = |msg: String| AgentError::Usage(format!("config {}: {msg}", path.display()));
        let config: ConfigFile = toml::from_str(text)
            .map_err(|e| err(fleetcal_proto::preset::toml_message(&e, text)))?;
        if config.version != CONFIG_VERSION {
            return Err(err(format!(
                "key 'version': {} is not supported (this build reads {CONFIG_VERSION})",
                config.version
            )));
        }
        let key = |k: &str| format!("config {}: key '{k}'", path.display());
        let link = &config.link;
        for (k, limit, value) in [
            (
                "link.backoff_initial_s",
                limits::BACKOFF_S,
                link.backoff_initial_s,
            ),
            ("link.backoff_max_s", limits::BACKOFF_S, link.backoff_max_s),
            ("link.keepalive_s", limits::KEEPALIVE_S, link.keepalive_s),
            (
                "link.rpc_timeout_s",
                limits::RPC_TIMEOUT_S,
                link.rpc_timeout_s,
            ),
        ] {
            limit.check_opt(&key(k), value)?;
        }
        limits::THREADS.check_opt(&key("threads"), config.threads)?;
        if config.coordinator.is_some() && config.coordinators.is_some() {
            return Err(err(
                "keys 'coordinator' and 'coordinators' both set: give one (a list goes in \
                 'coordinators')"
                    .into(),
            ));
        }
        Ok(config)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<ConfigFile, AgentError> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, String> {
        ConfigFile::parse(text, Path::new("/etc/fleetcal/agent.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn full_file_parses() {
        let c = parse(
            r#"
version = 1
coordinator = "http://c:7700"
state_dir = "/tmp/s"
preset = "auto"
threads = 2
[labels]
site = "lab"
[link]
backoff_max_s = 1
[tls]
ca_cert = "/t/ca.pem"
"#,
        )
        .unwrap();
        assert_eq!(c.coordinator.as_deref(), Some("http://c:7700"));
        assert_eq!(c.labels["site"], "lab");
        assert_eq!(c.link.backoff_max_s, Some(1.0));
        assert_eq!(c.threads, Some(2));
        assert_eq!(c.presets_dir, None);
        assert_eq!(c.tls.ca_cert, Some(PathBuf::from("/t/ca.pem")));
        assert_eq!(c.tls.key, None);
        assert_eq!(c.tls.server_name, None);
    }

    #[test]
    fn the_tls_server_name_is_read_and_its_neighbours_still_checked() {
        let c = parse(
            "version = 1\n[tls]\nca_cert = \"/t/ca.pem\"\nserver_name = \"coordinator.lab\"\n",
        )
        .unwrap();
        assert_eq!(c.tls.server_name.as_deref(), Some("coordinator.lab"));
        assert_eq!(c.tls.ca_cert, Some(PathBuf::from("/t/ca.pem")));
        // A misspelt key in [tls] is still an error naming it, its line and the file.
        let e = parse("version = 1\n[tls]\nservername = \"coordinator.lab\"\n").unwrap_err();
        assert!(
            e.contains("servername") && e.contains("line 3") && e.contains("agent.toml"),
            "{e}"
        );
        // The server name belongs in [tls], not at the top level.
        let e = parse("version = 1\nserver_name = \"coordinator.lab\"\n").unwrap_err();
        assert!(e.contains("server_name") && e.contains("line 2"), "{e}");
        let e = parse("version = 1\n[tls]\nserver_name = 3\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn the_deploy_example_is_valid() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/agent.example.toml"
        ));
        let c = ConfigFile::load(path).unwrap();
        assert_eq!(c.version, CONFIG_VERSION);
        assert_eq!(c.labels["rack"], "3");
        assert_eq!(c.link.backoff_max_s, Some(30.0));
    }

    #[test]
    fn unknown_keys_are_named_with_the_file() {
        let e = parse("version = 1\ncoordinater = \"http://c:1\"\n").unwrap_err();
        assert!(
            e.contains("coordinater") && e.contains("/etc/fleetcal/agent.toml"),
            "{e}"
        );
        let e = parse("version = 1\n[link]\nbackoff = 3\n").unwrap_err();
        assert!(e.contains("backoff") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn version_is_required_and_checked() {
        let e = parse("coordinator = \"http://c:1\"\n").unwrap_err();
        assert!(e.contains("version"), "{e}");
        let e = parse("version = 2\n").unwrap_err();
        assert!(e.contains("'version': 2"), "{e}");
    }

    #[test]
    fn out_of_range_numbers_are_named_with_the_file_key_and_range() {
        for (text, needle) in [
            (
                "[link]\nbackoff_max_s = 0\n",
                "key 'link.backoff_max_s': 0.0 is out of range (accepted: 0.05..=3600 seconds)",
            ),
            (
                "[link]\nbackoff_initial_s = 1e308\n",
                "key 'link.backoff_initial_s': 1e308 is out of range",
            ),
            ("[link]\nbackoff_max_s = 1e-9\n", "key 'link.backoff_max_s'"),
            (
                "[link]\nkeepalive_s = 1e308\n",
                "key 'link.keepalive_s': 1e308 is out of range (accepted: 1..=3600 seconds)",
            ),
            (
                "[link]\nrpc_timeout_s = 1e308\n",
                "key 'link.rpc_timeout_s'",
            ),
            (
                "[link]\nrpc_timeout_s = nan\n",
                "key 'link.rpc_timeout_s': NaN is out of range",
            ),
            (
                "[link]\nkeepalive_s = inf\n",
                "key 'link.keepalive_s': inf is out of range",
            ),
            ("[link]\nkeepalive_s = -5\n", "key 'link.keepalive_s': -5.0"),
            (
                "threads = 0\n",
                "key 'threads': 0 is out of range (accepted: 1..=4096 threads)",
            ),
        ] {
            let e = parse(&format!("version = 1\n{text}")).unwrap_err();
            assert!(
                e.contains(needle) && e.contains("/etc/fleetcal/agent.toml"),
                "{text}: {e}"
            );
        }
        let c = parse("version = 1\nthreads = 4096\n[link]\nbackoff_initial_s = 0.05\nbackoff_max_s = 3600\nkeepalive_s = 1\nrpc_timeout_s = 0.1\n").unwrap();
        assert_eq!(c.link.backoff_max_s, Some(3600.0));
    }

    mod props {
        use proptest::prelude::*;

        use super::parse;

        /// Any TOML number (and a few other values) for each numeric key: an error or a
        /// config, never a panic; an accepted value is one in range.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<f64>().prop_map(|v| format!("{v:?}")),
                any::<i64>().prop_map(|v| v.to_string()),
                Just("nan".to_string()),
                Just("inf".to_string()),
                Just("-inf".to_string()),
                Just("1e308".to_string()),
                Just("\"5\"".to_string()),
                Just("true".to_string()),
                Just("[1]".to_string()),
            ]
        }

        /// The agent's config parser on text, and the options resolved from what it
        /// accepts: errors naming the file, never a panic.
        fn judged(text: &str) -> Result<(), TestCaseError> {
            match parse(text) {
                Ok(c) => {
                    let _ = crate::daemon::RunArgs::default()
                        .resolve(Some(c), &crate::daemon::args::HostEnv::default());
                }
                Err(e) => prop_assert!(e.contains("/etc/fleetcal/agent.toml"), "{e}"),
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// The example config with a few edits.
            #[test]
            fn mutated_configs_never_panic(
                text in crate::fuzz_tests::mutated(include_str!("../../../deploy/agent.example.toml").to_string())
            ) {
                judged(&text)?;
            }

            /// Arbitrary text.
            #[test]
            fn arbitrary_text_is_no_config(text in crate::fuzz_tests::arbitrary_text()) {
                judged(&text)?;
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn numeric_keys_never_panic(
                key in prop::sample::select(vec![
                    "backoff_initial_s", "backoff_max_s", "keepalive_s", "rpc_timeout_s",
                ]),
                v in value(),
                threads in value(),
            ) {
                let text = format!("version = 1\nthreads = {threads}\n[link]\n{key} = {v}\n");
                if let Ok(c) = parse(&text) {
                    let n = c.threads.unwrap();
                    prop_assert!((1..=4096).contains(&n));
                    for s in [c.link.backoff_initial_s, c.link.backoff_max_s, c.link.keepalive_s, c.link.rpc_timeout_s].into_iter().flatten() {
                        prop_assert!((0.05..=3600.0).contains(&s));
                    }
                }
                // The resolved options convert them to durations without panicking.
                if let Ok(c) = parse(&text.replace("version = 1", "version = 1\ncoordinator = \"http://c:1\"\nstate_dir = \"/s\"")) {
                    let _ = crate::daemon::RunArgs::default().resolve(Some(c), &crate::daemon::args::HostEnv::default());
                }
            }
        }
    }
}
