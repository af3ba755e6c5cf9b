//! The bad-input suite, against the real binaries: each input gets a clear error naming it,
//! and nothing is stored (the store's rows are compared before and after, or the files a
//! start would create are checked absent). Each case prints one row of the table
//! `bad input | input | outcome` (`scripts/test` gathers the rows under a header).
//!
//! - uploads: a result over the 16 MiB message limit, not UTF-8, not JSON, truncated, empty,
//!   NaN / infinite / negative figures, a wrong `schema_version`, an unknown field, a result
//!   for another agent's run, a result naming another run; a campaign for an unknown preset;
//! - files: malformed coordinator and agent configs (TOML syntax, wrong types, unknown keys,
//!   another version) and malformed presets (syntax, unknown field, negative peak, another
//!   schema version) on both sides, and an unknown preset asked of the agent;
//! - certificates (made here with rcgen): an agent's certificate that expired, one from a CA
//!   that is not the fleet's (each refused handshake also logged by the coordinator, naming
//!   the reason), and a coordinator certificate that expired.
//!
//! Covered elsewhere and not repeated here: negative and absurd figures field by field, empty
//! and duplicated records, bad registrations and ids (`edges`); a client without a
//! certificate, or trusting another CA (`tls`); unreadable spooled files (the agent's spool
//! tests).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleetcal_proto::pb;
use fleetcal_proto::{DeviceKind, Framework};
use tonic::Code;

use crate::fleet::agent::{agent_exe, Agent};
use crate::fleet::common::wait_for;
use crate::support::*;

/// A refusal must stay short whatever the input's size.
const SHORT: usize = 600;

/// Prints one row of the bad-input table.
fn row(input: &str, outcome: &str) {
    let outcome: String = outcome.replace('\n', " ");
    let cut: String = outcome.chars().take(160).collect();
    let more = if cut.len() < outcome.len() { "…" } else { "" };
    println!("bad input | {input:<46} | {cut}{more}");
}

/// Everything the store holds that a bad input could change, as text.
async fn store_rows(db: &Path) -> String {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mut out = String::new();
    for q in [
        "SELECT COUNT(*) || '' FROM results",
        "SELECT COUNT(*) || '' FROM fleet_runs",
        "SELECT COUNT(*) || '' FROM campaigns",
        "SELECT COALESCE(group_concat(run_id || ' ' || state || ' ' || message, '; '), '') \
         FROM (SELECT * FROM runs ORDER BY run_id)",
        "SELECT COALESCE(group_concat(agent_id || ' ' || hostname || ' ' || capabilities, '; '), '') \
         FROM (SELECT * FROM agents ORDER BY agent_id)",
    ] {
        let v: String = sqlx::query_scalar(q).fetch_one(&pool).await.unwrap();
        out.push_str(&v);
        out.push('\n');
    }
    pool.close().await;
    out
}

/// The outcome of a refused call: the code and message, checked to be `code`, to name
/// `names` and to be short.
fn refused(
    input: &str,
    result: Result<impl std::fmt::Debug, tonic::Status>,
    code: Code,
    names: &[&str],
) {
    let status = match result {
        Ok(v) => {
            row(input, &format!("FAILED: accepted ({v:?})"));
            panic!("{input}: accepted: {v:?}");
        }
        Err(s) => s,
    };
    let message = status.message().to_string();
    row(input, &format!("{:?}: {message}", status.code()));
    assert_eq!(status.code(), code, "{input}: {message}");
    for n in names {
        assert!(
            message.contains(n),
            "{input}: {message:?} does not name {n:?}"
        );
    }
    assert!(message.len() < SHORT, "{input}: {} bytes", message.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_and_requests_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let coord = CoordinatorProcess::start(dir.path(), &[]);
    let url = coord.url();
    let db = dir.path().join("coordinator.db");
    let (mut client, a) = register_new(&url, "a", &[], cpu_caps(&["numpy"])).await;
    let (mut client_b, b) = register_new(&url, "b", &[], cpu_caps(&["numpy"])).await;
    let out = fleetctl(&url, &["campaign", "start", "--all"]);
    assert!(out.status.success());
    let (_sa, plan_a) = subscribe_plan(&mut client, &a).await;
    let (_sb, plan_b) = subscribe_plan(&mut client_b, &b).await;
    let run = plan_a.run_id.clone();
    let good = sample_result(&run, Framework::Numpy, DeviceKind::Cpu);
    let good_json = good.to_json();
    let before = store_rows(&db).await;

    let upload = |agent: &str, run: &str, bytes: Vec<u8>| pb::UploadRequest {
        agent_id: agent.into(),
        run_id: run.into(),
        result_packed: Default::default(),
        result_json: bytes.into(),
    };
    let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&good_json).unwrap();
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let first_best = "\"best\": 42.0";
    assert!(good_json.contains(first_best), "{good_json}");
    let bad: Vec<(&str, Vec<u8>, Code, Vec<&str>)> = vec![
        (
            "result over the 16 MiB message limit",
            vec![b' '; pb::MAX_MESSAGE_BYTES + 1],
            Code::OutOfRange,
            vec![],
        ),
        (
            "result not UTF-8",
            vec![0xff, 0xfe, b'{'],
            Code::InvalidArgument,
            vec![&run, "result_json", "UTF-8"],
        ),
        (
            "result not JSON",
            b"not json".to_vec(),
            Code::InvalidArgument,
            vec![&run],
        ),
        (
            "result truncated (first half of a valid one)",
            good_json.as_bytes()[..good_json.len() / 2].to_vec(),
            Code::InvalidArgument,
            vec![&run],
        ),
        (
            "result empty",
            Vec::new(),
            Code::InvalidArgument,
            vec![&run],
        ),
        (
            "a NaN figure (token NaN)",
            good_json
                .replacen(first_best, "\"best\": NaN", 1)
                .into_bytes(),
            Code::InvalidArgument,
            vec![&run],
        ),
        (
            "an infinite figure (1e999)",
            good_json
                .replacen(first_best, "\"best\": 1e999", 1)
                .into_bytes(),
            Code::InvalidArgument,
            vec![&run],
        ),
        (
            "a negative latency",
            edited(&|v| v["records"][0]["latency_ms"]["best"] = (-1.0).into()),
            Code::InvalidArgument,
            vec![&run, "records[0]"],
        ),
        (
            "a negative efficiency",
            edited(&|v| v["records"][0]["efficiency"] = (-0.5).into()),
            Code::InvalidArgument,
            vec![&run, "records[0]"],
        ),
        (
            "schema_version 2",
            edited(&|v| v["schema_version"] = 2.into()),
            Code::InvalidArgument,
            vec![&run, "schema_version"],
        ),
        (
            "schema_version 0",
            edited(&|v| v["schema_version"] = 0.into()),
            Code::InvalidArgument,
            vec![&run, "schema_version"],
        ),
        (
            "an unknown field",
            edited(&|v| v["metadata"]["smuggled"] = "x".into()),
            Code::InvalidArgument,
            vec![&run, "smuggled"],
        ),
        (
            "a result naming another run",
            edited(&|v| v["metadata"]["run_id"] = plan_b.run_id.clone().into()),
            Code::InvalidArgument,
            vec![&run, "metadata.run_id"],
        ),
    ];
    for (input, bytes, code, names) in bad {
        let r = client.upload_result(upload(&a, &run, bytes)).await;
        refused(input, r.map(|r| r.into_inner()), code, &names);
    }
    // The same checks of a result in the packed form (`result_packed`), and its own: the
    // packed form of a result as an agent makes it, of JSON it is given unchecked.
    let packed = |agent: &str, run: &str, bytes: Vec<u8>| pb::UploadRequest {
        agent_id: agent.into(),
        run_id: run.into(),
        result_json: Default::default(),
        result_packed: bytes.into(),
    };
    let pack = |json: &[u8]| {
        let r: fleetcal_proto::CalibrationResult = serde_json::from_slice(json).unwrap();
        fleetcal_proto::document::encode_upload(&r.to_json()).expect("packs")
    };
    let good_packed = pack(good_json.as_bytes());
    let bad_packed: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "packed: zstd of the JSON, not the packed form",
            zstd::bulk::compress(good_json.as_bytes(), 3).unwrap(),
            vec![&run, "result_packed", "packed form"],
        ),
        (
            "packed: truncated (first half)",
            good_packed[..good_packed.len() / 2].to_vec(),
            vec![&run, "result_packed"],
        ),
        (
            "packed: its magic, then noise",
            b"FCR2\x01\x05noise and more noise".to_vec(),
            vec![&run, "result_packed"],
        ),
        (
            "packed: a negative efficiency",
            pack(&edited(&|v| v["records"][0]["efficiency"] = (-0.5).into())),
            vec![&run, "records[0]"],
        ),
        (
            "packed: a result naming another run",
            pack(&edited(&|v| {
                v["metadata"]["run_id"] = plan_b.run_id.clone().into();
            })),
            vec![&run, "metadata.run_id"],
        ),
    ];
    for (input, bytes, names) in bad_packed {
        let r = client.upload_result(packed(&a, &run, bytes)).await;
        refused(
            input,
            r.map(|r| r.into_inner()),
            Code::InvalidArgument,
            &names,
        );
    }
    let both = pb::UploadRequest {
        result_json: good_json.clone().into_bytes().into(),
        ..packed(&a, &run, good_packed.clone())
    };
    let r = client.upload_result(both).await;
    refused(
        "both result_json and result_packed",
        r.map(|r| r.into_inner()),
        Code::InvalidArgument,
        &["result_json", "result_packed"],
    );
    // Another agent's run, with a result that is valid for it (sent with a's own certificate
    // and id, so the use case refuses it, not the role check).
    let theirs = sample_result(&plan_b.run_id, Framework::Numpy, DeviceKind::Cpu).to_json();
    let r = client
        .upload_result(upload(&a, &plan_b.run_id, theirs.into_bytes()))
        .await;
    refused(
        "a result for another agent's run",
        r.map(|r| r.into_inner()),
        Code::PermissionDenied,
        &[&plan_b.run_id, &a],
    );
    // A campaign for a preset the coordinator does not know.
    let out = fleetctl(&url, &["campaign", "start", "--preset", "no-such-preset"]);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    row(
        "campaign for an unknown preset",
        &format!("exit {:?}: {err}", out.status.code()),
    );
    assert!(
        !out.status.success() && err.contains("no-such-preset"),
        "{err}"
    );

    assert_eq!(
        store_rows(&db).await,
        before,
        "a bad input changed the store"
    );
    // The good result is still taken: packed, stored as it came, exported as its JSON.
    let ok = client
        .upload_result(packed(&a, &run, good_packed))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.stored);
    let again = client
        .upload_result(upload(&a, &run, good_json.clone().into_bytes()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !again.stored,
        "the same run's JSON after its packed result: a duplicate"
    );
    let export = dir.path().join("export");
    let out = fleetctl(
        &url,
        &[
            "results",
            "export",
            "--campaign",
            &plan_a.campaign_id,
            "--dir",
            &export.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<String> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(files, vec![good_json]);
}

/// Runs a command to its end (a hang fails the test).
fn bounded(cmd: &mut Command) -> Output {
    let mut child = cmd
        .env_remove("FLEETCAL_CONFIG")
        .env_remove("FLEETCAL_AGENT_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    let start = Instant::now();
    while child.try_wait().expect("waiting").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{cmd:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A start that must fail with exit 2, naming `names` on stderr, having created nothing at
/// `absent`.
fn refused_start(input: &str, out: Output, names: &[&str], absent: &Path) {
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let last = err.lines().last().unwrap_or_default().to_string();
    row(input, &format!("exit {:?}: {last}", out.status.code()));
    assert_eq!(out.status.code(), Some(2), "{input}: {err}");
    for n in names {
        assert!(err.contains(n), "{input}: {err:?} does not name {n:?}");
    }
    assert!(err.len() < 2 * SHORT, "{input}: {} bytes", err.len());
    assert!(
        !absent.exists(),
        "{input}: {} was created",
        absent.display()
    );
}

const PRESET: &str = "schema_version = 1\nid = \"bad-one\"\nhardware_name = \"Bad\"\n\
    device = \"cpu\"\narchitecture = \"x86_64\"\nplatform = \"desktop\"\n\
    default_framework = \"numpy\"\nbandwidth_gbps = 50.0\nnotes = \"t\"\n[peaks]\nfp32 = 100.0\n";

/// The malformed preset files: (input, file text, what the error must name besides the file).
fn bad_presets() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "preset: TOML syntax error",
            PRESET.replace("fp32 = 100.0", "fp32 = "),
            "",
        ),
        (
            "preset: unknown field",
            PRESET.replace("notes = \"t\"", "notes = \"t\"\npeak_gflops = 1"),
            "peak_gflops",
        ),
        (
            "preset: negative peak",
            PRESET.replace("fp32 = 100.0", "fp32 = -100.0"),
            "fp32",
        ),
        (
            "preset: schema_version 2",
            PRESET.replace("schema_version = 1", "schema_version = 2"),
            "schema_version",
        ),
    ]
}

#[test]
fn malformed_configs_and_presets_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let db_line = format!("db = \"sqlite://{}\"\n", db.display());

    // The coordinator's config file.
    for (input, body, names) in [
        (
            "coordinator config: TOML syntax error",
            "listen = \"127.0.0.1:0\n",
            vec![],
        ),
        (
            "coordinator config: wrong type",
            "tick_ms = \"fast\"\n",
            vec![],
        ),
        (
            "coordinator config: unknown key",
            "tick = 100\n",
            vec!["tick"],
        ),
        ("coordinator config: version 2", "", vec!["version"]),
        (
            "coordinator config: heartbeat_interval_s = 0",
            "insecure_plaintext = true\nheartbeat_interval_s = 0\n",
            vec!["heartbeat_interval_s"],
        ),
    ] {
        let version = if input.ends_with("version 2") { 2 } else { 1 };
        let path = dir.path().join("coordinator.toml");
        std::fs::write(&path, format!("version = {version}\n{db_line}{body}")).unwrap();
        let out = bounded(
            Command::new(COORDINATOR)
                .args(["serve", "--config"])
                .arg(&path),
        );
        let mut names = names;
        names.push("coordinator.toml");
        refused_start(input, out, &names, &db);
    }

    // The coordinator's presets.
    for (input, text, name) in bad_presets() {
        let presets = dir.path().join("coordinator-presets");
        std::fs::create_dir_all(&presets).unwrap();
        std::fs::write(presets.join("bad-one.toml"), text).unwrap();
        let db_url = format!("sqlite://{}", db.display());
        let out = bounded(Command::new(COORDINATOR).args([
            "serve",
            "--insecure-plaintext",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db_url,
            "--presets",
            presets.to_str().unwrap(),
        ]));
        refused_start(
            &format!("coordinator {input}"),
            out,
            &["bad-one.toml", name],
            &db,
        );
    }

    // The agent's config file: nothing is dialled and no state dir is made.
    let state = dir.path().join("agent-state");
    for (input, body, names) in [
        (
            "agent config: TOML syntax error",
            "preset = \"auto\n",
            vec![],
        ),
        (
            "agent config: wrong type",
            "threads = \"many\"\n",
            vec!["threads"],
        ),
        (
            "agent config: unknown key",
            "coordinatr = \"http://c:1\"\n",
            vec!["coordinatr"],
        ),
        ("agent config: version 2", "", vec!["version"]),
        (
            "agent config: rpc_timeout_s = nan",
            "[link]\nrpc_timeout_s = nan\n",
            vec!["link.rpc_timeout_s"],
        ),
    ] {
        let version = if input.ends_with("version 2") { 2 } else { 1 };
        let path = dir.path().join("agent.toml");
        let text = format!(
            "version = {version}\nstate_dir = \"{}\"\n{body}",
            state.display()
        );
        std::fs::write(&path, text).unwrap();
        let out = bounded(Command::new(agent_exe()).args([
            "run",
            "--coordinator",
            "http://127.0.0.1:9",
            "--config",
            path.to_str().unwrap(),
        ]));
        let mut names = names;
        names.push("agent.toml");
        refused_start(input, out, &names, &state);
    }

    // The agent's presets, and a preset it does not know.
    for (input, text, name) in bad_presets() {
        let presets = dir.path().join("agent-presets");
        std::fs::create_dir_all(&presets).unwrap();
        std::fs::write(presets.join("bad-one.toml"), text).unwrap();
        let out = bounded(Command::new(agent_exe()).args([
            "run",
            "--coordinator",
            "http://127.0.0.1:9",
            "--state-dir",
            state.to_str().unwrap(),
            "--presets",
            presets.to_str().unwrap(),
        ]));
        refused_start(
            &format!("agent {input}"),
            out,
            &["bad-one.toml", name],
            &state,
        );
    }
    let out = bounded(Command::new(agent_exe()).args([
        "calibrate",
        "--preset",
        "no-such-preset",
        "--sizes",
        "16",
        "--operations",
        "gemm",
        "--precisions",
        "fp32",
        "--output",
        dir.path().join("result.json").to_str().unwrap(),
    ]));
    refused_start(
        "agent calibrate --preset no-such-preset",
        out,
        &["no-such-preset"],
        &dir.path().join("result.json"),
    );
}

/// A fleet CA made with rcgen, and certificates it (or a stranger) signs.
struct Pki {
    dir: PathBuf,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca: rcgen::Issuer::new(params, key),
        }
    }

    /// Writes `name.pem` and `name.key`: a certificate for `names`, for a server or a client,
    /// valid from `from` to `until`.
    fn issue(
        &self,
        name: &str,
        names: &[&str],
        server: bool,
        from: (i32, u8, u8),
        until: (i32, u8, u8),
    ) -> (String, String) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        if name == "admin" {
            // The admin role, as `fleetctl pki` writes it (docs/coordinator.md, "Roles").
            params.subject_alt_names.push(rcgen::SanType::URI(
                "urn:fleetcal:admin:admin".try_into().unwrap(),
            ));
        }
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        params.extended_key_usages = vec![if server {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let (c, k) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    }
}

const NOW: (i32, u8, u8) = (2020, 1, 1);
const LATER: (i32, u8, u8) = (2099, 1, 1);
const EXPIRED: (i32, u8, u8) = (2021, 1, 1);

#[test]
fn expired_and_foreign_certificates_are_refused_and_register_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Pki::new(dir.path(), "fleet-ca");
    let stranger = Pki::new(dir.path(), "stranger-ca");
    let ca = dir.path().join("fleet-ca.pem").display().to_string();
    let server = fleet.issue("server", &["localhost", "127.0.0.1"], true, NOW, LATER);
    let coordinator = CoordinatorProcess::start(
        dir.path(),
        &[
            "--tls-cert",
            &server.0,
            "--tls-key",
            &server.1,
            "--client-ca",
            &ca,
        ],
    );
    let url = format!("https://{}", coordinator.addr);
    let valid = fleet.issue("admin", &[], false, NOW, LATER);
    let ctl = |cert: &(String, String), args: &[&str]| {
        bounded(
            Command::new(FLEETCTL)
                .args(["--coordinator", &url, "--ca-cert", &ca])
                .args(["--cert", &cert.0, "--key", &cert.1])
                .args(args),
        )
    };
    let registered = || {
        let out = ctl(&valid, &["agents", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(registered(), 0);

    // An agent presenting each bad certificate: its registration never arrives, and its log
    // says why.
    let expired = fleet.issue("expired-agent", &[], false, NOW, EXPIRED);
    let foreign = stranger.issue("foreign-agent", &[], false, NOW, LATER);
    // (With TLS 1.3 the server judges the client's certificate after the client considers
    // the handshake done, so the client sees its connection closed, not the server's alert;
    // its hint names the client certificate.)
    let says = "client CA sign --cert";
    // The coordinator logs each refused handshake with the peer and the reason.
    for (input, cert, reason) in [
        (
            "agent certificate expired",
            &expired,
            "client certificate expired",
        ),
        (
            "agent certificate of a CA not the fleet's",
            &foreign,
            "client certificate of an unknown CA",
        ),
    ] {
        let agent = Agent::start(
            &url,
            &[
                "--ca-cert",
                &ca,
                "--cert",
                &cert.0,
                "--key",
                &cert.1,
                "--preset",
                "auto",
            ],
        );
        let line = wait_for(
            &format!("{input}: a refused registration"),
            || agent.log(),
            || {
                agent
                    .log()
                    .lines()
                    .find(|l| l.contains("register failed"))
                    .map(str::to_string)
            },
        );
        let at = line.find("register failed").unwrap_or(0);
        row(input, &line[at..]);
        assert!(line.contains(says), "{input}: {line}");
        let logged = wait_for(
            &format!("{input}: the coordinator's log of the refused handshake"),
            || coordinator.log_text(),
            || {
                coordinator
                    .log_text()
                    .lines()
                    .find(|l| l.contains("tls handshake refused") && l.contains(reason))
                    .map(str::to_string)
            },
        );
        row(&format!("{input} (coordinator log)"), logged.trim());
        assert!(logged.contains("peer=127.0.0.1:"), "{input}: {logged}");
        assert_eq!(registered(), 0, "{input}: registered");
        // fleetctl with the same certificate: exit 7, the same cause.
        let out = ctl(cert, &["agents"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{input}: {err}");
        assert!(err.contains(says), "{input}: {err}");
    }
    drop(coordinator);

    // A coordinator presenting an expired certificate: the agent refuses it.
    let stale = fleet.issue(
        "stale-server",
        &["localhost", "127.0.0.1"],
        true,
        NOW,
        EXPIRED,
    );
    let coordinator = CoordinatorProcess::start(
        dir.path(),
        &[
            "--tls-cert",
            &stale.0,
            "--tls-key",
            &stale.1,
            "--client-ca",
            &ca,
        ],
    );
    let url = format!("https://{}", coordinator.addr);
    let out = bounded(
        Command::new(FLEETCTL)
            .args(["--coordinator", &url, "--ca-cert", &ca])
            .args(["--cert", &valid.0, "--key", &valid.1, "agents"]),
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    row(
        "coordinator certificate expired",
        &format!(
            "exit {:?}: {}",
            out.status.code(),
            err.lines().last().unwrap_or_default()
        ),
    );
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("certificate expired"), "{err}");
}
