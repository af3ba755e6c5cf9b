//! TLS and mutual TLS end to end: certificates made at test time by `fleetctl pki init` and
//! `fleetctl pki issue` (rcgen), the real coordinator serving TLS with a client CA on 127.0.0.1:0, real fleetctl
//! and a real `fleetcal-agent run`.
//!
//! - fleetctl and an agent with certificates of the coordinator's CA are admitted; the agent
//!   registers and is listed online;
//! - a client without a certificate, with a certificate of another CA, or trusting another CA
//!   is refused with an error that says so (fleetctl exits 7);
//! - plain http against the TLS coordinator fails with a hint to use https (not a hang); the
//!   agent logs the same hint and never registers;
//! - TLS alone (no client CA) admits a client without a certificate;
//! - a server-name override is what the server's certificate is checked against: through the
//!   library, fleetctl's `--tls-server-name` (accepted and refused) and an agent's `[tls]
//!   server_name`, against a coordinator whose certificate names only `coordinator.lab`;
//! - unreadable or invalid PEM files and a key that does not fit its certificate are errors
//!   naming the file, before anything listens or dials.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::agent::Agent;
use crate::fleet::common::wait_for;
use crate::support::{CoordinatorProcess, COORDINATOR, FLEETCTL};

/// One `fleetctl pki init` directory: a fleet CA, `server.{pem,key}`, `admin.{pem,key}`, and
/// client certificates issued with `fleetctl pki issue`.
pub(crate) struct Pki {
    dir: PathBuf,
}

/// Runs `fleetctl ARGS` (no coordinator is dialled by `pki`), which must succeed.
pub(crate) fn fleetctl_pki(args: &[&str]) {
    let out = bounded(Command::new(FLEETCTL).arg("pki").args(args));
    assert!(
        out.status.success(),
        "fleetctl pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// `fleetctl pki init DIR` (server names: localhost,127.0.0.1), then an admin client
    /// certificate `NAME.{pem,key}` for each of `admins`.
    pub(crate) fn generate(dir: &Path, admins: &[&str]) -> Pki {
        Pki::generate_for(dir, "localhost,127.0.0.1", admins)
    }

    /// `fleetctl pki init DIR --server-names NAMES`, then an admin certificate per name.
    pub(crate) fn generate_for(dir: &Path, server_names: &str, admins: &[&str]) -> Pki {
        let d = dir.display().to_string();
        fleetctl_pki(&["init", &d, "--server-names", server_names]);
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        for name in admins {
            fleetctl_pki(&["issue", &d, "--admin", name, "--name", name]);
        }
        pki
    }

    /// Issues an agent certificate `NAME.{pem,key}` for a new agent id; returns the id.
    pub(crate) fn agent(&self, name: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let d = self.dir.display().to_string();
        fleetctl_pki(&["issue", &d, "--agent", &id, "--name", name]);
        id
    }

    pub(crate) fn file(&self, name: &str) -> String {
        let p = self.dir.join(name);
        assert!(p.is_file(), "fleetctl pki did not write {}", p.display());
        p.display().to_string()
    }

    /// A gRPC channel to `url` presenting the client certificate `name` (what
    /// `client_flags` gives fleetctl).
    pub(crate) async fn channel(&self, url: &str, name: &str) -> tonic::transport::Channel {
        let files = fleetcal_proto::dial::ClientTlsFiles::for_url(
            url,
            Some(self.file("ca.pem").into()),
            Some(self.file(&format!("{name}.pem")).into()),
            Some(self.file(&format!("{name}.key")).into()),
            None,
        )
        .unwrap()
        .unwrap();
        fleetcal_coordinator::fleetctl::client::connect(url, Some(&files))
            .await
            .expect("connect")
    }

    /// `--ca-cert CA --cert C.pem --key C.key` for client `name`.
    pub(crate) fn client_flags(&self, name: &str) -> Vec<String> {
        vec![
            "--ca-cert".into(),
            self.file("ca.pem"),
            "--cert".into(),
            self.file(&format!("{name}.pem")),
            "--key".into(),
            self.file(&format!("{name}.key")),
        ]
    }

    /// The coordinator's TLS flags; with `mutual`, client certificates of this CA are required.
    pub(crate) fn server_flags(&self, mutual: bool) -> Vec<String> {
        let mut flags = vec![
            "--tls-cert".into(),
            self.file("server.pem"),
            "--tls-key".into(),
            self.file("server.key"),
        ];
        if mutual {
            flags.extend(["--client-ca".into(), self.file("ca.pem")]);
        }
        flags
    }

    /// The coordinator serving TLS with this CA's server certificate (see [`Pki::server_flags`])
    /// on 127.0.0.1, and its `https://` URL.
    pub(crate) fn serve(&self, dir: &Path, mutual: bool) -> (CoordinatorProcess, String) {
        let flags = self.server_flags(mutual);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let coordinator = CoordinatorProcess::start(dir, &flags);
        let url = format!("https://{}", coordinator.addr);
        (coordinator, url)
    }
}

/// Runs a command to its end. The limit only turns a hang into a failure that says so. The
/// TLS and config variables of the test's own environment are not passed on (those the
/// command sets itself are).
pub(crate) fn bounded(cmd: &mut Command) -> Output {
    for var in [
        "FLEETCAL_CA_CERT",
        "FLEETCAL_CERT",
        "FLEETCAL_KEY",
        "FLEETCAL_TLS_SERVER_NAME",
        "FLEETCAL_CONFIG",
    ] {
        if !cmd.get_envs().any(|(key, _)| key == var) {
            cmd.env_remove(var);
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    let start = Instant::now();
    while child.try_wait().expect("waiting").is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{cmd:?} hung\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// fleetctl against `url` with `flags` (TLS flags) and `args`.
pub(crate) fn ctl(url: &str, flags: &[String], args: &[&str]) -> Output {
    bounded(
        Command::new(FLEETCTL)
            .arg("--coordinator")
            .arg(url)
            .args(flags)
            .args(args),
    )
}

pub(crate) fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// fleetctl failed with exit 7 (unreachable) and its stderr contains every one of `needles`.
fn assert_refused(out: &Output, needles: &[&str]) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(7),
        "expected exit 7\nstdout: {stdout}\nstderr: {stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}: {stderr}");
    }
}

#[test]
fn mutual_tls_admits_certificates_of_its_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &["fleetctl"]);
    let agent_1 = pki.agent("agent-1");
    let other = Pki::generate(&dir.path().join("other"), &["intruder"]);
    let (coordinator, url) = pki.serve(dir.path(), true);
    let admin = pki.client_flags("fleetctl");

    // Admitted: fleetctl with a certificate of the coordinator's CA, over https.
    let out = ctl(&url, &admin, &["health"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{}", coordinator.log_text());
    assert_eq!(stdout.trim(), "SERVING");
    let out = ctl(&url, &admin, &["agents", "--json"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0.trim(), "[]");

    // Admitted: a real agent with its own certificate registers and is listed online.
    let agent_flags = pki.client_flags("agent-1");
    let agent_flags: Vec<&str> = agent_flags.iter().map(String::as_str).collect();
    let agent = Agent::start(&url, &agent_flags);
    let listed = |flags: &[String]| -> Vec<String> {
        let out = ctl(&url, flags, &["agents", "--json"]);
        assert!(out.status.success(), "{}", text(&out).1);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|a| a["online"] == true)
            .map(|a| a["agent_id"].as_str().unwrap().to_string())
            .collect()
    };
    let id = wait_for(
        "the TLS agent to be listed online",
        || format!("{}\n{}", agent.log(), coordinator.log_text()),
        || {
            let id = agent.agent_id()?;
            listed(&admin).contains(&id).then_some(id)
        },
    );
    assert_eq!(id, agent_1, "the agent is the id its certificate names");

    // Refused: no client certificate.
    let ca_only = vec!["--ca-cert".to_string(), pki.file("ca.pem")];
    let out = ctl(&url, &ca_only, &["agents"]);
    assert_refused(&out, &["did not answer", "--cert FILE --key FILE"]);

    // Refused: a certificate of another CA.
    let mut intruder = other.client_flags("intruder");
    intruder[1] = pki.file("ca.pem"); // it trusts the right server, but its own CA is foreign
    let out = ctl(&url, &intruder, &["agents"]);
    assert_refused(&out, &["did not answer", "client CA sign --cert"]);

    // Refused by the client: the coordinator's certificate is not signed by the CA it trusts.
    let wrong_trust = vec![
        "--ca-cert".to_string(),
        other.file("ca.pem"),
        "--cert".into(),
        pki.file("fleetctl.pem"),
        "--key".into(),
        pki.file("fleetctl.key"),
    ];
    let out = ctl(&url, &wrong_trust, &["agents"]);
    assert_refused(&out, &["invalid peer certificate"]);

    // Plain http against TLS: a clear error, not a hang.
    let plain_url = format!("http://{}", coordinator.addr);
    let out = ctl(&plain_url, &[], &["agents"]);
    assert_refused(
        &out,
        &["did not answer", "use an https:// url with --ca-cert"],
    );

    // Agents refused: a foreign certificate, and plain http. Each logs why; once it has, it
    // is still not registered.
    let foreign: Vec<&str> = intruder.iter().map(String::as_str).collect();
    let refused = [Agent::start(&url, &foreign), Agent::start(&plain_url, &[])];
    for (agent, hint) in refused.iter().zip(["client CA sign --cert", "https://"]) {
        wait_for(
            "the refused agent to log its failure",
            || agent.log(),
            || {
                let log = agent.log();
                (log.contains("register failed") && log.contains(hint)).then_some(())
            },
        );
    }
    let registered = registered_agents(&url, &admin);
    assert_eq!(
        registered,
        vec![id],
        "only the admitted agent is registered"
    );
    for agent in &refused {
        let refused_id = agent
            .agent_id()
            .expect("the agent id is made before dialling");
        assert!(!registered.contains(&refused_id));
    }
}

/// Agent ids listed at all (online or not), over TLS.
fn registered_agents(url: &str, flags: &[String]) -> Vec<String> {
    let out = ctl(url, flags, &["agents", "--json"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tls_without_a_client_ca_admits_clients_without_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &["fleetctl"]);
    let (coordinator, url) = pki.serve(dir.path(), false);
    let ca_only = vec!["--ca-cert".to_string(), pki.file("ca.pem")];
    let out = ctl(&url, &ca_only, &["health"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0.trim(), "SERVING");
    // The https:// scheme needs a CA to trust, and http takes no TLS files.
    let out = ctl(&url, &[], &["agents"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--ca-cert"), "{}", text(&out).1);
    let out = ctl(
        &format!("http://{}", coordinator.addr),
        &ca_only,
        &["agents"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("plain http"), "{}", text(&out).1);
}

#[tokio::test]
async fn a_server_name_override_is_what_the_certificate_is_checked_against() {
    use fleetcal_coordinator::fleetctl::client;
    use fleetcal_proto::dial::ClientTlsFiles;

    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &["fleetctl"]);
    // Dialled by IP; the certificate names localhost and 127.0.0.1.
    let (_coordinator, url) = pki.serve(dir.path(), false);
    let files = ClientTlsFiles::for_url(&url, Some(pki.file("ca.pem").into()), None, None, None)
        .unwrap()
        .unwrap();
    client::connect(&url, Some(&files.clone().with_server_name("localhost")))
        .await
        .expect("localhost is named by the certificate");
    let e = client::connect(&url, Some(&files.with_server_name("elsewhere.invalid")))
        .await
        .expect_err("elsewhere.invalid is not named by the certificate")
        .to_string();
    assert!(e.contains("invalid peer certificate"), "{e}");
}

/// The load-balancer case: the coordinator's certificate names only `coordinator.lab` and it is
/// dialled by IP. fleetctl and an agent get through with that name as the TLS server name
/// (flag, environment, config file), and are refused without it or with a name the
/// certificate does not carry.
#[test]
fn tls_server_name_lets_fleetctl_and_agents_dial_by_ip() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate_for(&dir.path().join("pki"), "coordinator.lab", &["fleetctl"]);
    let (coordinator, url) = pki.serve(dir.path(), false);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca_only = vec!["--ca-cert".to_string(), pki.file("ca.pem")];
    let named = |name: &str| {
        let mut flags = ca_only.clone();
        flags.extend(["--tls-server-name".to_string(), name.to_string()]);
        flags
    };

    // Refused: the URL's host (127.0.0.1) is not a name of the certificate.
    let out = ctl(&url, &ca_only, &["health"]);
    assert_refused(
        &out,
        &["invalid peer certificate", "--tls-server-name NAME"],
    );

    // Accepted: checked against the name the certificate carries.
    let out = ctl(&url, &named("coordinator.lab"), &["health"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{}", coordinator.log_text());
    assert_eq!(stdout.trim(), "SERVING");
    // The flag is global: after the subcommand too.
    let mut args = vec!["agents", "--json", "--tls-server-name", "coordinator.lab"];
    args.extend(ca_only.iter().map(String::as_str));
    let out = ctl(&url, &[], &args);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0.trim(), "[]");
    // And from the environment.
    let out = bounded(
        Command::new(FLEETCTL)
            .args(["--coordinator", &url])
            .args(&ca_only)
            .arg("health")
            .env("FLEETCAL_TLS_SERVER_NAME", "coordinator.lab"),
    );
    assert!(out.status.success(), "{}", text(&out).1);

    // Refused: a name the certificate does not carry.
    let out = ctl(&url, &named("elsewhere.invalid"), &["health"]);
    assert_refused(&out, &["invalid peer certificate"]);

    // Bad input, before anything dials: not a name, or plain http.
    let out = ctl(&url, &named("not a name"), &["health"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'not a name'") && stderr.contains("--tls-server-name"),
        "{stderr}"
    );
    let plain_url = format!("http://{}", coordinator.addr);
    let out = ctl(
        &plain_url,
        &[
            "--tls-server-name".to_string(),
            "coordinator.lab".to_string(),
        ],
        &["health"],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("plain http") && stderr.contains("--tls-server-name"),
        "{stderr}"
    );

    // A real agent, its server name from its config file's [tls] table, registers.
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[tls]\nca_cert = {:?}\nserver_name = \"coordinator.lab\"\n",
            pki.file("ca.pem")
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let agent = Agent::start(&url, &["--config", &config]);
    let id = wait_for(
        "the agent dialling by IP to register",
        || format!("{}\n{}", agent.log(), coordinator.log_text()),
        || {
            let id = agent.agent_id()?;
            registered_agents(&url, &named("coordinator.lab"))
                .contains(&id)
                .then_some(id)
        },
    );
    // One without the name is refused, logs why, and never registers.
    let ca_flags: Vec<&str> = ca_only.iter().map(String::as_str).collect();
    let refused = Agent::start(&url, &ca_flags);
    wait_for(
        "the agent without a server name to log its failure",
        || refused.log(),
        || {
            let log = refused.log();
            (log.contains("register failed") && log.contains("invalid peer certificate"))
                .then_some(())
        },
    );
    assert_eq!(registered_agents(&url, &named("coordinator.lab")), vec![id]);
}

#[test]
fn bad_tls_files_are_named_before_anything_listens_or_dials() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"), &["fleetctl"]);
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let serve = |cert: &str, key: &str| {
        bounded(Command::new(COORDINATOR).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ]))
    };
    // A certificate given as the key.
    let out = serve(&pki.file("server.pem"), &pki.file("server.pem"));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(
        stderr.contains("server key") && stderr.contains("server.pem"),
        "{stderr}"
    );
    // A key of another certificate.
    let out = serve(&pki.file("server.pem"), &pki.file("fleetctl.key"));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(
        stderr.contains("fleetctl.key") && stderr.contains("does not fit"),
        "{stderr}"
    );
    // A missing client CA.
    let missing = dir.path().join("nope.pem").display().to_string();
    let out = bounded(Command::new(COORDINATOR).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        &db,
        "--tls-cert",
        &pki.file("server.pem"),
        "--tls-key",
        &pki.file("server.key"),
        "--client-ca",
        &missing,
    ]));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("client ca")
            && stderr.contains("nope.pem")
            && stderr.contains("cannot read"),
        "{stderr}"
    );

    // fleetctl: a CA file that is no certificate.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not pem\n").unwrap();
    let flags = vec!["--ca-cert".to_string(), junk.display().to_string()];
    let out = ctl("https://127.0.0.1:9", &flags, &["agents"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ca certificate") && stderr.contains("junk.pem"),
        "{stderr}"
    );

    // The agent: the same file, refused at start-up with the agent's exit code 2.
    let state = dir.path().join("state").display().to_string();
    let out = bounded(Command::new(crate::fleet::agent::agent_exe()).args([
        "run",
        "--coordinator",
        "https://127.0.0.1:9",
        "--state-dir",
        &state,
        "--ca-cert",
        &junk.display().to_string(),
    ]));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("junk.pem"),
        "{stdout}\n{stderr}"
    );
}
