//! The flags of `fleetcal-agent run` and their merge with the config file.
//!
//! Precedence: a flag, else its `FLEETCAL_*` environment variable, else the config file, else
//! the default. Labels merge key by key (flag labels win).

use std::path::PathBuf;

use fleetcal_proto::dial::ClientTlsFiles;

use super::config::ConfigFile;
use super::options::{
    check_coordinator_urls, default_state_dir, parse_labels, running_as_root, RunOptions,
};
use crate::limits;
use crate::AgentError;

/// `fleetcal-agent run`: join a fleet and run the calibrations its coordinator assigns.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct RunArgs {
    /// The coordinator to dial, as http://HOST:PORT (or https://HOST:PORT with --ca-cert);
    /// several coordinators of one fleet as a comma list (the agent starts at one picked by
    /// its id and moves to the next when the link fails).
    #[arg(long, env = "FLEETCAL_COORDINATOR", value_name = "URL[,URL...]")]
    pub coordinator: Option<String>,
    /// Where the agent id and unsent results are kept [default: /var/lib/fleetcal as root,
    /// else $XDG_STATE_HOME/fleetcal or ~/.local/state/fleetcal].
    #[arg(long, env = "FLEETCAL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Labels for campaign selectors, as k=v,k=v (merged over the config file's labels table).
    #[arg(long, env = "FLEETCAL_LABELS", value_name = "K=V,...")]
    pub labels: Option<String>,
    /// The preset this board is ("auto" derives one from the host) [default: let the
    /// coordinator match one].
    #[arg(long, env = "FLEETCAL_PRESET", value_name = "ID")]
    pub preset: Option<String>,
    /// A directory of preset files [default: the presets built into the binary].
    #[arg(long, env = "FLEETCAL_PRESETS", value_name = "DIR")]
    pub presets: Option<PathBuf>,
    /// A config file (TOML, version = 1); flags and environment override it.
    #[arg(long, env = "FLEETCAL_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Engine worker threads, 1..=4096 [default: the engine's].
    #[arg(long, env = "FLEETCAL_THREADS", value_name = "N", value_parser = limits::THREADS)]
    pub threads: Option<usize>,
    /// Skip the platform check of every run (an architecture mismatch becomes a warning).
    #[arg(long, env = "FLEETCAL_SKIP_PLATFORM_CHECK")]
    pub skip_platform_check: bool,
    /// Longest reconnect delay in seconds, 0.05..=3600 [default: 30].
    #[arg(long, env = "FLEETCAL_MAX_BACKOFF", value_name = "SECONDS", value_parser = limits::BACKOFF_S)]
    pub max_backoff: Option<f64>,
    /// The CA certificate (PEM) that signed the coordinator's certificate; needed for an
    /// https:// coordinator.
    #[arg(long, env = "FLEETCAL_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// This agent's certificate (PEM), for a coordinator that requires client certificates
    /// (mutual TLS); needs --key.
    #[arg(long, env = "FLEETCAL_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, env = "FLEETCAL_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The name the coordinator's certificate is checked against, when the URL's host is not
    /// one of its names (an IP address, a load balancer) [default: the URL's host]; https://
    /// only.
    #[arg(long, env = "FLEETCAL_TLS_SERVER_NAME", value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Enroll with this join token (`fleetctl token create`) on first start: the agent makes
    /// its own key in the state dir and gets its client certificate from the coordinator
    /// (https:// with --ca-cert; ignored once the state dir holds a certificate).
    #[arg(long, env = "FLEETCAL_JOIN_TOKEN", value_name = "TOKEN")]
    pub join_token: Option<String>,
    /// Without a join token: on first start make the key in the state dir, ask the
    /// coordinator for a certificate and wait (polling) until an operator runs `fleetctl
    /// agents approve ID` (https:// with --ca-cert; ignored once the state dir holds a
    /// certificate).
    #[arg(long, env = "FLEETCAL_REQUEST_APPROVAL")]
    pub request_approval: bool,
}

/// What the environment says about the default state dir (read by [`RunArgs::into_options`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostEnv {
    /// The process runs as root.
    pub is_root: bool,
    /// `$XDG_STATE_HOME`.
    pub xdg_state_home: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
}

impl HostEnv {
    /// Reads this process's environment.
    pub fn current() -> HostEnv {
        HostEnv {
            is_root: running_as_root(),
            xdg_state_home: std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

impl RunArgs {
    /// Resolves the options: reads `--config` if given and applies the precedence rules.
    pub fn into_options(self) -> Result<RunOptions, AgentError> {
        let file = match &self.config {
            Some(path) => Some(ConfigFile::load(path)?),
            None => None,
        };
        self.resolve(file, &HostEnv::current())
    }

    /// The pure part of [`RunArgs::into_options`]: merges flags over an already-read file.
    pub fn resolve(
        self,
        file: Option<ConfigFile>,
        env: &HostEnv,
    ) -> Result<RunOptions, AgentError> {
        let file = file.unwrap_or_default();
        let listed = file.coordinators.map(|list| list.join(","));
        let coordinator = self
            .coordinator
            .or(file.coordinator)
            .or(listed)
            .ok_or_else(|| {
                AgentError::Usage(
                    "no coordinator: pass --coordinator URL, set FLEETCAL_COORDINATOR, or set \
                 'coordinator' in the config file"
                        .into(),
                )
            })?;
        let state_dir = match self.state_dir.or(file.state_dir) {
            Some(dir) => dir,
            None => default_state_dir(
                env.is_root,
                env.xdg_state_home.as_deref(),
                env.home.as_deref(),
            )?,
        };
        let mut labels = file.labels;
        labels.extend(parse_labels(self.labels.as_deref().unwrap_or(""))?);
        let coordinators = check_coordinator_urls(&[coordinator])?;
        let tls = ClientTlsFiles::for_urls(
            &coordinators,
            self.ca_cert.or(file.tls.ca_cert),
            self.cert.or(file.tls.cert),
            self.key.or(file.tls.key),
            self.tls_server_name.or(file.tls.server_name),
        )?;
        let mut opts = RunOptions::new(coordinators[0].clone(), state_dir);
        opts.coordinators = coordinators;
        opts.tls = tls;
        opts.join_token = self
            .join_token
            .or(file.tls.join_token)
            .filter(|t| !t.trim().is_empty());
        opts.request_approval = self.request_approval || file.tls.request_approval.unwrap_or(false);
        opts.labels = labels;
        opts.preset = self.preset.or(file.preset).filter(|p| !p.trim().is_empty());
        opts.presets_dir = self.presets.or(file.presets_dir);
        opts.config_file = self.config;
        opts.threads = match self.threads {
            Some(n) => Some(limits::THREADS.check("--threads", n)?),
            None => limits::THREADS.check_opt("config key 'threads'", file.threads)?,
        };
        opts.skip_platform_check =
            self.skip_platform_check || file.skip_platform_check.unwrap_or(false);
        if let Some(v) = self.max_backoff {
            opts.backoff.max = limits::BACKOFF_S.duration("--max-backoff", v)?;
        } else if let Some(v) = file.link.backoff_max_s {
            opts.backoff.max = limits::BACKOFF_S.duration("config key 'link.backoff_max_s'", v)?;
        }
        if let Some(v) = file.link.backoff_initial_s {
            opts.backoff.initial =
                limits::BACKOFF_S.duration("config key 'link.backoff_initial_s'", v)?;
        }
        opts.backoff.initial = opts.backoff.initial.min(opts.backoff.max);
        if let Some(v) = file.link.keepalive_s {
            opts.keepalive = limits::KEEPALIVE_S.duration("config key 'link.keepalive_s'", v)?;
        }
        if let Some(v) = file.link.rpc_timeout_s {
            opts.rpc_timeout =
                limits::RPC_TIMEOUT_S.duration("config key 'link.rpc_timeout_s'", v)?;
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(text, Path::new("agent.toml")).unwrap()
    }

    const ENV: HostEnv = HostEnv {
        is_root: false,
        xdg_state_home: None,
        home: None,
    };

    #[test]
    fn flags_override_the_file_and_labels_merge() {
        let f = file(
            "version = 1\ncoordinator = \"http://file:1\"\nstate_dir = \"/s\"\npreset = \"p\"\n\
             [labels]\nsite = \"lab\"\nrack = \"1\"\n[link]\nbackoff_max_s = 5\n",
        );
        let args = RunArgs {
            coordinator: Some("http://flag:2".into()),
            labels: Some("rack=9".into()),
            max_backoff: Some(1.0),
            ..RunArgs::default()
        };
        let o = args.resolve(Some(f), &ENV).unwrap();
        assert_eq!(o.coordinator, "http://flag:2");
        assert_eq!(o.state_dir, Path::new("/s"));
        assert_eq!(o.preset.as_deref(), Some("p"));
        assert_eq!(o.labels["site"], "lab");
        assert_eq!(o.labels["rack"], "9");
        assert_eq!(o.backoff.max, Duration::from_secs(1));
    }

    #[test]
    fn tls_files_merge_flags_over_the_file() {
        let f = file(
            "version = 1\ncoordinator = \"https://c:1\"\nstate_dir = \"/s\"\n\
             [tls]\nca_cert = \"/f/ca.pem\"\ncert = \"/f/a.pem\"\nkey = \"/f/a.key\"\n",
        );
        let args = RunArgs {
            cert: Some("/flag/b.pem".into()),
            key: Some("/flag/b.key".into()),
            ..RunArgs::default()
        };
        let o = args.resolve(Some(f), &ENV).unwrap();
        assert_eq!(o.join_token, None);
        let joined = file(
            "version = 1\ncoordinator = \"https://c:1\"\nstate_dir = \"/s\"\n\
             [tls]\nca_cert = \"/f/ca.pem\"\njoin_token = \"from-file\"\n",
        );
        let flag = RunArgs {
            join_token: Some("from-flag".into()),
            ..RunArgs::default()
        };
        let from = |args: RunArgs| args.resolve(Some(joined.clone()), &ENV).unwrap().join_token;
        assert_eq!(from(RunArgs::default()).as_deref(), Some("from-file"));
        let asking = file(
            "version = 1\ncoordinator = \"https://c:1\"\nstate_dir = \"/s\"\n\
             [tls]\nca_cert = \"/f/ca.pem\"\nrequest_approval = true\n",
        );
        assert!(
            RunArgs::default()
                .resolve(Some(asking), &ENV)
                .unwrap()
                .request_approval
        );
        assert!(!o.request_approval);
        assert_eq!(from(flag).as_deref(), Some("from-flag"));
        let tls = o.tls.unwrap();
        assert_eq!(tls.ca_cert, Path::new("/f/ca.pem"));
        assert_eq!(
            tls.identity,
            Some(("/flag/b.pem".into(), "/flag/b.key".into()))
        );
        let e = RunArgs {
            coordinator: Some("https://c:1".into()),
            state_dir: Some("/s".into()),
            ..RunArgs::default()
        }
        .resolve(None, &ENV)
        .unwrap_err()
        .to_string();
        assert!(e.contains("--ca-cert"), "{e}");
    }

    #[test]
    fn the_tls_server_name_merges_like_the_tls_files() {
        let f = |name: &str| {
            file(&format!(
                "version = 1\ncoordinator = \"https://10.0.0.7:1\"\nstate_dir = \"/s\"\n\
                 [tls]\nca_cert = \"/f/ca.pem\"\nserver_name = \"{name}\"\n"
            ))
        };
        let o = RunArgs::default()
            .resolve(Some(f("file.lab")), &ENV)
            .unwrap();
        assert_eq!(o.tls.unwrap().server_name.as_deref(), Some("file.lab"));
        let o = RunArgs {
            tls_server_name: Some("flag.lab".into()),
            ..RunArgs::default()
        }
        .resolve(Some(f("file.lab")), &ENV)
        .unwrap();
        assert_eq!(o.tls.unwrap().server_name.as_deref(), Some("flag.lab"));
        let o = RunArgs {
            coordinator: Some("https://10.0.0.7:1".into()),
            ca_cert: Some("/f/ca.pem".into()),
            state_dir: Some("/s".into()),
            ..RunArgs::default()
        }
        .resolve(None, &ENV)
        .unwrap();
        assert_eq!(o.tls.unwrap().server_name, None, "default: the url's host");
        // Plain http takes no server name: the error says where it was set.
        let e = RunArgs {
            coordinator: Some("http://c:1".into()),
            state_dir: Some("/s".into()),
            tls_server_name: Some("c.lab".into()),
            ..RunArgs::default()
        }
        .resolve(None, &ENV)
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("plain http")
                && e.contains("'c.lab'")
                && e.contains("--tls-server-name")
                && e.contains("[tls] server_name"),
            "{e}"
        );
        let e = RunArgs::default()
            .resolve(Some(f("not a name")), &ENV)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'not a name'") && e.contains("--tls-server-name"),
            "{e}"
        );
    }

    #[test]
    fn several_coordinators_come_as_a_comma_list_or_a_config_list() {
        let o = RunArgs {
            coordinator: Some("http://a:1, http://b:2".into()),
            state_dir: Some("/s".into()),
            ..RunArgs::default()
        }
        .resolve(None, &ENV)
        .unwrap();
        assert_eq!(o.coordinators, ["http://a:1", "http://b:2"]);
        assert_eq!(o.coordinator, "http://a:1");
        let f = file("version = 1\ncoordinators = [\"http://c:1\", \"http://d:1\"]\n");
        let o = RunArgs {
            state_dir: Some("/s".into()),
            ..RunArgs::default()
        }
        .resolve(Some(f.clone()), &ENV)
        .unwrap();
        assert_eq!(o.coordinators, ["http://c:1", "http://d:1"]);
        // The flag wins over the file's list.
        let o = RunArgs {
            coordinator: Some("http://e:1".into()),
            state_dir: Some("/s".into()),
            ..RunArgs::default()
        }
        .resolve(Some(f), &ENV)
        .unwrap();
        assert_eq!(o.coordinators, ["http://e:1"]);
        let e = RunArgs {
            coordinator: Some("http://a:1,a:2".into()),
            state_dir: Some("/s".into()),
            ..RunArgs::default()
        }
        .resolve(None, &ENV)
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(e.contains("'a:2'") && e.contains("--coordinator"), "{e}");
        let e = ConfigFile::parse(
            "version = 1\ncoordinator = \"http://a:1\"\ncoordinators = [\"http://b:1\"]\n",
            Path::new("agent.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'coordinators'") && e.contains("agent.toml"),
            "{e}"
        );
    }

    #[test]
    fn the_file_alone_is_enough() {
        let f = file("version = 1\ncoordinator = \"http://c:1\"\n[link]\nbackoff_initial_s = 9\nbackoff_max_s = 2\n");
        let env = HostEnv {
            home: Some("/home/u".into()),
            ..ENV
        };
        let o = RunArgs::default().resolve(Some(f), &env).unwrap();
        assert_eq!(o.state_dir, Path::new("/home/u/.local/state/fleetcal"));
        assert_eq!(
            o.backoff.initial,
            Duration::from_secs(2),
            "initial capped by max"
        );
    }

    #[test]
    fn a_missing_coordinator_says_how_to_give_one() {
        let e = RunArgs::default()
            .resolve(None, &ENV)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--coordinator") && e.contains("FLEETCAL_COORDINATOR"),
            "{e}"
        );
    }

    #[test]
    fn bad_flag_values_are_named() {
        let base = RunArgs {
            coordinator: Some("http://c:1".into()),
            state_dir: Some("/s".into()),
            ..RunArgs::default()
        };
        let e = RunArgs {
            max_backoff: Some(-1.0),
            ..base.clone()
        }
        .resolve(None, &ENV)
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--max-backoff: -1.0 is out of range (accepted: 0.05..=3600 seconds)"),
            "{e}"
        );
        let e = RunArgs {
            threads: Some(0),
            ..base
        }
        .resolve(None, &ENV)
        .unwrap_err()
        .to_string();
        assert!(e.contains("--threads: 0 is out of range"), "{e}");
    }

    #[test]
    fn clap_reads_flags() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            run: RunArgs,
        }
        let t = T::try_parse_from([
            "x",
            "--coordinator",
            "http://h:1",
            "--labels",
            "a=b",
            "--max-backoff",
            "0.5",
            "--tls-server-name",
            "coordinator.lab",
        ])
        .unwrap();
        assert_eq!(t.run.coordinator.as_deref(), Some("http://h:1"));
        assert_eq!(t.run.max_backoff, Some(0.5));
        assert_eq!(t.run.tls_server_name.as_deref(), Some("coordinator.lab"));
    }
}
