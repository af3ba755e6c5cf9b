//! `fleetcal-coordinator` settings: command-line flags, their environment variables, and a
//! versioned TOML file (`--config`, unknown keys rejected). A flag (or its variable) wins over
//! the file, the file over the default. See `docs/coordinator.md` and
//! `deploy/coordinator.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Deserialize;

use crate::fleet::drift::DriftParams;
use crate::tls::ServerTlsFiles;
use crate::Error;

/// The config file format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// The fleetcal coordinator: agents dial in, campaigns fan out, results come back.
#[derive(Debug, Parser)]
#[command(name = "fleetcal-coordinator", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve AgentService, AdminService, health and reflection until SIGTERM/SIGINT.
    Serve(ServeArgs),
}

/// `serve` flags; each has an environment variable and a config-file key of the same name.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML config file (`version = 1`; keys as the long flags, with `_`).
    #[arg(long, env = "FLEETCAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port. The first stdout line is
    /// `listening on ADDR` [default: 127.0.0.1:50051].
    #[arg(long, env = "FLEETCAL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Database: `sqlite://PATH` or `postgres://USER@HOST/DB` [default: sqlite://fleetcal.db].
    #[arg(long, env = "FLEETCAL_DB")]
    pub db: Option<String>,
    /// Directory of preset TOML files used to match agents and pick devices [default: none:
    /// agents without a configured preset calibrate `auto`].
    #[arg(long, env = "FLEETCAL_PRESETS")]
    pub presets: Option<PathBuf>,
    /// Seconds between heartbeats an agent is asked for [default: 10].
    #[arg(long, env = "FLEETCAL_HEARTBEAT_INTERVAL_S")]
    pub heartbeat_interval_s: Option<u32>,
    /// Seconds without contact (a heartbeat, any call) after which an agent counts as offline,
    /// its directive stream open or not: a half-open connection goes offline once its
    /// heartbeats stop; also how long a coordinator's lease on a running run lasts (several
    /// coordinators on one database) [default: 30; more than --heartbeat-interval-s].
    #[arg(long, env = "FLEETCAL_OFFLINE_AFTER_S")]
    pub offline_after_s: Option<u32>,
    /// Run timeout for campaigns that give none, seconds [default: 3600].
    #[arg(long, env = "FLEETCAL_DEFAULT_RUN_TIMEOUT_S")]
    pub default_run_timeout_s: Option<u32>,
    /// Campaign deadline for campaigns that give none, seconds [default: 86400].
    #[arg(long, env = "FLEETCAL_DEFAULT_DEADLINE_S")]
    pub default_deadline_s: Option<u32>,
    /// Scheduler period in milliseconds (it also runs on every event) [default: 1000].
    #[arg(long, env = "FLEETCAL_TICK_MS")]
    pub tick_ms: Option<u64>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key [default: plain http].
    #[arg(long, env = "FLEETCAL_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "FLEETCAL_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS. Needs --tls-cert.
    #[arg(long, env = "FLEETCAL_CLIENT_CA", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Nights of a board's own baseline the drift test needs before it can call a drop, 3 to
    /// 365 (fewer nights: no drift is evaluated yet) [default: 7].
    #[arg(long, env = "FLEETCAL_DRIFT_MIN_BASELINE", value_name = "N")]
    pub drift_min_baseline: Option<u32>,
    /// Also serve the read-only web pages and `/metrics` on this address: `PORT` or `:PORT`
    /// (loopback, 127.0.0.1), or `IP:PORT`; port 0 picks a free port, printed as the second
    /// stdout line `http listening on ADDR`. HTTPS with the same certificate when TLS is
    /// configured [default: off].
    #[arg(long, env = "FLEETCAL_HTTP", value_name = "ADDR", value_parser = parse_http_addr)]
    pub http: Option<SocketAddr>,
    /// Serve plain text (no TLS): no caller is authenticated, so any client may call the
    /// admin service and act as any agent; logged as a warning at start. Without TLS files
    /// the coordinator refuses to start unless this is given; with them it is an error.
    #[arg(long, env = "FLEETCAL_INSECURE_PLAINTEXT")]
    pub insecure_plaintext: bool,
    /// The private key (PEM) of --client-ca: agents may then enroll with a join token
    /// (`fleetctl token create`) and get a client certificate signed with it; the port then
    /// also takes connections without a client certificate, for the enrollment call only
    /// [default: no enrollment].
    #[arg(long, env = "FLEETCAL_CA_KEY", value_name = "FILE")]
    pub ca_key: Option<PathBuf>,
    /// How long the certificates this coordinator signs for agents (enrollment and renewal)
    /// are valid, seconds, 10 to 31622400 (366 days); agents renew theirs when two thirds of
    /// it have passed [default: 2592000, 30 days].
    #[arg(long, env = "FLEETCAL_AGENT_CERT_LIFETIME_S", value_name = "SECONDS")]
    pub agent_cert_lifetime_s: Option<u32>,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    version: u32,
    listen: Option<SocketAddr>,
    db: Option<String>,
    presets: Option<PathBuf>,
    heartbeat_interval_s: Option<u32>,
    offline_after_s: Option<u32>,
    default_run_timeout_s: Option<u32>,
    default_deadline_s: Option<u32>,
    tick_ms: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    drift_min_baseline: Option<u32>,
    http: Option<String>,
    insecure_plaintext: Option<bool>,
    ca_key: Option<PathBuf>,
    agent_cert_lifetime_s: Option<u32>,
}

/// The accepted range of `agent_cert_lifetime_s` (10 s, for tests, to 366 days).
pub const AGENT_CERT_LIFETIME_S: std::ops::RangeInclusive<u32> = 10..=31_622_400;

/// The accepted range of `drift_min_baseline`.
pub const DRIFT_MIN_BASELINE: std::ops::RangeInclusive<u32> = 3..=365;

/// Resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Database URL.
    pub db: String,
    /// Presets directory, if any.
    pub presets: Option<PathBuf>,
    /// Heartbeat interval asked of agents.
    pub heartbeat_interval_s: u32,
    /// Offline threshold without a stream.
    pub offline_after: Duration,
    /// Default run timeout, seconds.
    pub default_run_timeout_s: u32,
    /// Default campaign deadline, seconds.
    pub default_deadline_s: u32,
    /// Scheduler period.
    pub tick: Duration,
    /// TLS files; `None` serves plain http.
    pub tls: Option<ServerTlsFiles>,
    /// The drift test's knobs (reports and alerts alike).
    pub drift: DriftParams,
    /// The web pages' and `/metrics`' address; `None`: not served.
    pub http: Option<SocketAddr>,
    /// Plain text was asked for explicitly (`--insecure-plaintext`); `tls` is then `None`.
    pub insecure_plaintext: bool,
    /// The client CA's key, for enrollment (`--ca-key`); needs `tls.client_ca`.
    pub ca_key: Option<PathBuf>,
    /// The lifetime of the agent certificates it signs, seconds (`--agent-cert-lifetime-s`,
    /// within [`AGENT_CERT_LIFETIME_S`]).
    pub agent_cert_lifetime_s: u32,
}

/// An `--http` address: `PORT` or `:PORT` (on 127.0.0.1), or `IP:PORT` (`[IPv6]:PORT`).
pub fn parse_http_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let port = t.strip_prefix(':').unwrap_or(t);
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .map_err(|_| {
                format!(
                    "port {} is not between 0 and 65535",
                    fleetcal_proto::quote::quoted(port)
                )
            });
    }
    t.parse::<SocketAddr>().map_err(|_| {
        format!(
            "{} is not PORT, :PORT or IP:PORT",
            fleetcal_proto::quote::quoted(t)
        )
    })
}

impl ServeArgs {
    /// Merges flags, the config file (if any) and defaults.
    pub fn resolve(&self) -> Result<Settings, Error> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig {
                version: CONFIG_VERSION,
                ..FileConfig::default()
            },
        };
        let mut settings = Settings {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:50051".parse().expect("valid default")),
            db: self
                .db
                .clone()
                .or(file.db)
                .unwrap_or_else(|| "sqlite://fleetcal.db".into()),
            presets: self.presets.clone().or(file.presets),
            heartbeat_interval_s: self
                .heartbeat_interval_s
                .or(file.heartbeat_interval_s)
                .unwrap_or(10),
            offline_after: Duration::from_secs(
                self.offline_after_s
                    .or(file.offline_after_s)
                    .unwrap_or(30)
                    .into(),
            ),
            default_run_timeout_s: self
                .default_run_timeout_s
                .or(file.default_run_timeout_s)
                .unwrap_or(3600),
            default_deadline_s: self
                .default_deadline_s
                .or(file.default_deadline_s)
                .unwrap_or(86_400),
            tick: Duration::from_millis(self.tick_ms.or(file.tick_ms).unwrap_or(1000)),
            tls: None,
            drift: DriftParams::default(),
            http: self.http,
            insecure_plaintext: self.insecure_plaintext || file.insecure_plaintext == Some(true),
            ca_key: self.ca_key.clone().or(file.ca_key),
            agent_cert_lifetime_s: self
                .agent_cert_lifetime_s
                .or(file.agent_cert_lifetime_s)
                .unwrap_or(crate::server::enroll::AGENT_CERT_LIFETIME_S),
        };
        let origin = self.config.clone().unwrap_or_else(|| "<flags>".into());
        let tls_err = |message: &str| Error::Config {
            path: origin.clone(),
            message: message.into(),
        };
        settings.tls = match (
            self.tls_cert.clone().or(file.tls_cert),
            self.tls_key.clone().or(file.tls_key),
            self.client_ca.clone().or(file.client_ca),
        ) {
            (Some(cert), Some(key), client_ca) => Some(ServerTlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            (Some(_), None, _) => return Err(tls_err("'tls_cert' needs 'tls_key' (--tls-key)")),
            (None, Some(_), _) => return Err(tls_err("'tls_key' needs 'tls_cert' (--tls-cert)")),
            (None, None, Some(_)) => {
                return Err(tls_err(
                    "'client_ca' needs 'tls_cert' and 'tls_key' (mutual TLS is TLS)",
                ))
            }
        };
        match (&settings.tls, settings.insecure_plaintext) {
            (None, false) => {
                return Err(tls_err(
                    "no 'tls_cert' and 'tls_key' (--tls-cert, --tls-key): serving plain text, \
                     where any client may call the admin service and act as any agent, needs \
                     --insecure-plaintext ('insecure_plaintext = true')",
                ))
            }
            (Some(_), true) => {
                return Err(tls_err(
                    "'insecure_plaintext' (--insecure-plaintext) contradicts 'tls_cert': \
                     give one or the other",
                ))
            }
            _ => {}
        }
        let has_client_ca = settings.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        if settings.ca_key.is_some() && !has_client_ca {
            return Err(tls_err(
                "'ca_key' (--ca-key) needs 'client_ca' (--client-ca): it signs certificates of \
                 that CA",
            ));
        }
        if settings.http.is_none() {
            if let Some(text) = &file.http {
                settings.http = Some(parse_http_addr(text).map_err(|m| Error::Config {
                    path: origin.clone(),
                    message: format!("'http': {m}"),
                })?);
            }
        }
        for (name, v) in [
            ("heartbeat_interval_s", settings.heartbeat_interval_s),
            ("default_run_timeout_s", settings.default_run_timeout_s),
            ("default_deadline_s", settings.default_deadline_s),
        ] {
            if v == 0 {
                return Err(Error::Config {
                    path: origin,
                    message: format!("'{name}' must be at least 1"),
                });
            }
        }
        if let Some(n) = self.drift_min_baseline.or(file.drift_min_baseline) {
            if !DRIFT_MIN_BASELINE.contains(&n) {
                return Err(Error::Config {
                    path: origin,
                    message: format!(
                        "'drift_min_baseline' {n} is not between {} and {}",
                        DRIFT_MIN_BASELINE.start(),
                        DRIFT_MIN_BASELINE.end()
                    ),
                });
            }
            settings.drift.min_baseline = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if !AGENT_CERT_LIFETIME_S.contains(&settings.agent_cert_lifetime_s) {
            return Err(Error::Config {
                path: origin,
                message: format!(
                    "'agent_cert_lifetime_s' (--agent-cert-lifetime-s) {} is not between {} \
                     and {}",
                    settings.agent_cert_lifetime_s,
                    AGENT_CERT_LIFETIME_S.start(),
                    AGENT_CERT_LIFETIME_S.end()
                ),
            });
        }
        if settings.tick.is_zero() {
            return Err(Error::Config {
                path: origin,
                message: "'tick_ms' must be at least 1".into(),
            });
        }
        let heartbeat = u64::from(settings.heartbeat_interval_s);
        if settings.offline_after.as_secs() <= heartbeat {
            return Err(Error::Config {
                path: origin,
                message: format!(
                    "'offline_after_s' ({}) must be more than 'heartbeat_interval_s' ({heartbeat}): \
                     an agent would count as offline between two heartbeats",
                    settings.offline_after.as_secs()
                ),
            });
        }
        Ok(settings)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let err = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    let file: FileConfig =
        toml::from_str(&text).map_err(|e| err(fleetcal_proto::preset::toml_message(&e, &text)))?;
    if file.version != CONFIG_VERSION {
        return Err(err(format!(
            "'version' {} is not supported (this build reads {CONFIG_VERSION})",
            file.version
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let (_d, path) = write("version = 1\ndb = \"sqlite://f.db\"\ntick_ms = 50\n");
        let args = ServeArgs {
            config: Some(path),
            tick_ms: Some(7),
            insecure_plaintext: true,
            ..ServeArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.db, "sqlite://f.db");
        assert_eq!(s.tick, Duration::from_millis(7));
        assert_eq!(s.listen.port(), 50051);
    }

    #[test]
    fn plain_text_needs_the_explicit_flag_and_contradicts_tls() {
        let e = ServeArgs::default().resolve().unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--insecure-plaintext"), "{e}");
        let (_d, path) = write("version = 1\ninsecure_plaintext = true\n");
        let from_file = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        assert!(from_file.resolve().unwrap().insecure_plaintext);
        let both = ServeArgs {
            insecure_plaintext: true,
            tls_cert: Some("s.pem".into()),
            tls_key: Some("s.key".into()),
            ..ServeArgs::default()
        };
        let e = both.resolve().unwrap_err().to_string();
        assert!(e.contains("contradicts 'tls_cert'"), "{e}");
        let key_without_ca = ServeArgs {
            tls_cert: Some("s.pem".into()),
            tls_key: Some("s.key".into()),
            ca_key: Some("ca.key".into()),
            ..ServeArgs::default()
        };
        let e = key_without_ca.resolve().unwrap_err().to_string();
        assert!(e.contains("'ca_key' (--ca-key) needs 'client_ca'"), "{e}");
    }

    #[test]
    fn the_agent_certificate_lifetime_is_range_checked() {
        let plain = |lifetime: Option<u32>| ServeArgs {
            insecure_plaintext: true,
            agent_cert_lifetime_s: lifetime,
            ..ServeArgs::default()
        };
        assert_eq!(
            plain(None).resolve().unwrap().agent_cert_lifetime_s,
            30 * 86_400
        );
        assert_eq!(plain(Some(20)).resolve().unwrap().agent_cert_lifetime_s, 20);
        for bad in [9, 31_622_401] {
            let e = plain(Some(bad)).resolve().unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(
                e.to_string().contains(&format!(
                    "'agent_cert_lifetime_s' (--agent-cert-lifetime-s) {bad} is not between 10 \
                     and 31622400"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_versions_are_rejected_by_name() {
        let (_d, path) = write("version = 1\nlisten_addr = \"x\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(
            err.contains("listen_addr") && err.contains("c.toml"),
            "{err}"
        );
        let (_d, path) = write("version = 2\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("'version' 2"), "{err}");
    }

    #[test]
    fn the_deployed_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/coordinator.example.toml");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:50051");
        assert_eq!(
            s.presets,
            Some(PathBuf::from("/usr/local/share/fleetcal/presets"))
        );
        assert_eq!(s.offline_after, Duration::from_secs(30));
        let tls = s.tls.expect("the example serves mutual TLS");
        assert_eq!(
            tls.client_ca,
            Some(PathBuf::from("/etc/fleetcal/tls/ca.pem"))
        );
        assert_eq!(s.drift.min_baseline, 7);
    }

    #[test]
    fn the_drift_baseline_is_range_checked_and_the_flag_wins() {
        let (_d, path) = write("version = 1\ndrift_min_baseline = 4\n");
        let resolve = |flag: Option<u32>| {
            ServeArgs {
                config: Some(path.clone()),
                drift_min_baseline: flag,
                insecure_plaintext: true,
                ..ServeArgs::default()
            }
            .resolve()
        };
        assert_eq!(resolve(None).unwrap().drift.min_baseline, 4);
        assert_eq!(resolve(Some(10)).unwrap().drift.min_baseline, 10);
        let plain = ServeArgs {
            insecure_plaintext: true,
            ..ServeArgs::default()
        };
        assert_eq!(plain.resolve().unwrap().drift, DriftParams::default());
        for bad in [0, 2, 366, u32::MAX] {
            let e = resolve(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "'drift_min_baseline' {bad} is not between 3 and 365"
                )),
                "{e}"
            );
        }
    }

    /// The block scalar `KEY: |` of a YAML file, dedented (enough YAML for our ConfigMap).
    fn yaml_block(yaml: &str, key: &str) -> String {
        let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
        let header = lines.next().expect("the key is in the file");
        let outer = header.len() - header.trim_start().len();
        let body: Vec<&str> = lines
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > outer)
            .collect();
        let indent = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .expect("a non-empty block");
        body.iter()
            .map(|l| l.get(indent..).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_kubernetes_configmap_config_is_valid() {
        let yaml = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s/coordinator-config.yaml"),
        )
        .unwrap();
        let (_d, path) = write(&yaml_block(&yaml, "coordinator.toml"));
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:50051");
        assert_eq!(s.db, "sqlite:///var/lib/fleetcal-coordinator/fleetcal.db");
        let tls = s.tls.expect("the ConfigMap serves mutual TLS");
        assert_eq!(tls.cert, PathBuf::from("/etc/fleetcal/tls/tls.crt"));
        assert_eq!(tls.key, PathBuf::from("/etc/fleetcal/tls/tls.key"));
        assert_eq!(
            tls.client_ca,
            Some(PathBuf::from("/etc/fleetcal/tls/ca.crt"))
        );
    }

    #[test]
    fn http_addresses_default_to_loopback_and_bad_ones_are_named() {
        assert_eq!(
            parse_http_addr("8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            parse_http_addr(":8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            parse_http_addr("0.0.0.0:0").unwrap().to_string(),
            "0.0.0.0:0"
        );
        assert_eq!(parse_http_addr("[::1]:9").unwrap().to_string(), "[::1]:9");
        assert!(parse_http_addr("70000").unwrap_err().contains("'70000'"));
        assert!(parse_http_addr("web:80").unwrap_err().contains("'web:80'"));
        let plain = ServeArgs {
            insecure_plaintext: true,
            ..ServeArgs::default()
        };
        assert_eq!(plain.resolve().unwrap().http, None);
        let (_d, path) = write("version = 1\ninsecure_plaintext = true\nhttp = \":9100\"\n");
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        assert_eq!(
            args.resolve().unwrap().http,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        let args = ServeArgs {
            config: Some(path),
            http: Some("127.0.0.1:7".parse().unwrap()),
            ..ServeArgs::default()
        };
        assert_eq!(args.resolve().unwrap().http.unwrap().port(), 7);
        let (_d, path) = write("version = 1\ninsecure_plaintext = true\nhttp = \"nowhere\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let e = args.resolve().unwrap_err().to_string();
        assert!(e.contains("'http'") && e.contains("'nowhere'"), "{e}");
    }

    #[test]
    fn tls_keys_come_in_pairs() {
        let (_d, path) = write(
            "version = 1\ntls_cert = \"/c/server.pem\"\ntls_key = \"/c/server.key\"\n\
             client_ca = \"/c/ca.pem\"\n",
        );
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let tls = args.resolve().unwrap().tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("/c/server.pem"));
        assert_eq!(tls.client_ca, Some(PathBuf::from("/c/ca.pem")));
        let args = ServeArgs {
            tls_key: Some("/flag.key".into()),
            config: Some(path),
            ..ServeArgs::default()
        };
        assert_eq!(
            args.resolve().unwrap().tls.unwrap().key,
            PathBuf::from("/flag.key")
        );
        let e = ServeArgs {
            tls_cert: Some("/c.pem".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("'tls_cert' needs 'tls_key'"), "{e}");
        let e = ServeArgs {
            client_ca: Some("/ca.pem".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("'client_ca' needs"), "{e}");
    }

    /// `serve --config FILE` on text: an error naming the file or settings, never a panic.
    fn judged(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let (_dir, path) = write(text);
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        if let Err(e) = args.resolve() {
            let e = e.to_string();
            proptest::prop_assert!(e.contains(&path.display().to_string()), "{e}");
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// The example config with a few edits.
        #[test]
        fn mutated_configs_never_panic(
            text in crate::fuzz_tests::mutated(include_str!("../../deploy/coordinator.example.toml").to_string())
        ) {
            judged(&text)?;
        }

        /// Arbitrary text.
        #[test]
        fn arbitrary_text_is_no_config(text in crate::fuzz_tests::arbitrary_text()) {
            judged(&text)?;
        }
    }
}
