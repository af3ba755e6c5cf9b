//! Enrollment: an agent started with a join token (`--join-token`) and no client certificate
//! makes its own key in its state dir (it never leaves the board), sends a certificate signing
//! request with the token over server-authenticated TLS (`AgentService.Enroll`) and keeps the
//! certificate the coordinator signs for its agent id. From then on that key and certificate
//! are its identity: later starts use them and need no token.
//!
//! Without a token, `--request-approval` asks for a certificate the same way and waits: the
//! coordinator files the request as pending (listed by `fleetctl agents` with the host name and
//! the key's fingerprint, which the agent logs too) and answers pending until an operator runs
//! `fleetctl agents approve ID`; the agent asks again with capped backoff, and once approved
//! keeps the certificate and carries on as a token-enrolled agent, in the same process. A
//! denied request ends it (exit 2) with the coordinator's reason.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetcal_proto::dial;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use fleetcal_proto::pb::EnrollRequest;
use tonic::Code;

use super::options::RunOptions;
use crate::atomic::{self, Mode};
use crate::AgentError;

/// The agent's own key, made on the board (mode 0600).
pub const KEY_FILE: &str = "agent.key";
/// Its certificate, signed by the coordinator.
pub const CERT_FILE: &str = "agent.pem";
/// The labels of the join token it enrolled with (JSON object).
pub const LABELS_FILE: &str = "enrolled-labels.json";

/// The enrolled key and certificate in `state_dir`, when both are there.
pub fn enrolled(state_dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE));
    (cert.is_file() && key.is_file()).then_some((cert, key))
}

/// The labels of the token the agent enrolled with (none before enrollment).
pub fn enrolled_labels(
    state_dir: &Path,
) -> Result<std::collections::BTreeMap<String, String>, AgentError> {
    let path = state_dir.join(LABELS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            AgentError::Usage(format!(
                "{}: not a JSON object of labels: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(source) => Err(AgentError::Io { path, source }),
    }
}

/// Completes `opts` with the agent's enrolled identity: the state dir's key and certificate
/// when it has them (and no certificate was configured), else — with a join token — enrolls
/// now. Without either, `opts` is unchanged.
/// `agent_id` gives the agent's id (from its state dir) when it enrolls.
pub async fn prepare(
    mut opts: RunOptions,
    agent_id: impl FnOnce() -> Result<String, AgentError>,
) -> Result<RunOptions, AgentError> {
    let Some(tls) = opts.tls.as_mut() else {
        if opts.join_token.is_some() || opts.request_approval {
            let flag = if opts.join_token.is_some() {
                "--join-token"
            } else {
                "--request-approval"
            };
            return Err(AgentError::Usage(format!(
                "{flag} needs an https:// coordinator with --ca-cert (got '{}')",
                fleetcal_proto::quote::bounded(&opts.coordinator)
            )));
        }
        return Ok(opts);
    };
    if tls.identity.is_some() {
        return Ok(opts);
    }
    let ask = opts.join_token.is_some() || opts.request_approval;
    if let Some(found) = enrolled(&opts.state_dir) {
        tls.identity = Some(found);
        return Ok(opts);
    }
    if !ask {
        return Ok(opts);
    }
    let files = enroll(&opts, &agent_id()?, opts.join_token.as_deref()).await?;
    if let Some(tls) = opts.tls.as_mut() {
        tls.identity = Some(files);
    }
    Ok(opts)
}

/// A signing request (PEM) for the key in the state dir (made now, 0600, if there is none
/// yet), and the key's fingerprint ([`fleetcal_proto::role::key_fingerprint`]).
fn key_and_request(state_dir: &Path, agent_id: &str) -> Result<(String, String), AgentError> {
    let path = state_dir.join(KEY_FILE);
    let fail = |e: rcgen::Error| AgentError::Usage(format!("{}: {e}", path.display()));
    let key = match std::fs::read_to_string(&path) {
        Ok(pem) => rcgen::KeyPair::from_pem(&pem).map_err(fail)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = rcgen::KeyPair::generate().map_err(fail)?;
            write_private(&path, key.serialize_pem().as_bytes())?;
            key
        }
        Err(source) => return Err(AgentError::Io { path, source }),
    };
    let fingerprint =
        fleetcal_proto::role::key_fingerprint(&rcgen::PublicKeyData::subject_public_key_info(&key));
    Ok((signing_request(&key, agent_id).map_err(fail)?, fingerprint))
}

/// A certificate signing request (PEM) for `key` as agent `agent_id` (enrollment and
/// renewal alike).
pub fn signing_request(key: &rcgen::KeyPair, agent_id: &str) -> Result<String, rcgen::Error> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("fleetcal agent {agent_id}"),
    );
    params.serialize_request(key)?.pem()
}

/// Writes a new private file (mode 0600 from its creation).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    let io = |source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Enrolls, with `token` or (without one) by waiting for approval: retries while the
/// coordinator cannot be reached (backing off up to the link's maximum), asks again while the
/// request is pending (the same backoff), fails at once when it refuses (a bad, expired or
/// used-up token; a known id; a denied request).
async fn enroll(
    opts: &RunOptions,
    agent_id: &str,
    token: Option<&str>,
) -> Result<(PathBuf, PathBuf), AgentError> {
    std::fs::create_dir_all(&opts.state_dir).map_err(|source| AgentError::Io {
        path: opts.state_dir.clone(),
        source,
    })?;
    let (csr_pem, fingerprint) = key_and_request(&opts.state_dir, agent_id)?;
    let endpoint = super::clock::endpoint(&opts.coordinator, opts.tls.as_ref())?
        .connect_timeout(opts.rpc_timeout)
        .timeout(opts.rpc_timeout);
    let mut client = AgentServiceClient::new(endpoint.connect_lazy());
    let request = EnrollRequest {
        agent_id: agent_id.to_string(),
        join_token: token.unwrap_or_default().to_string(),
        csr_pem,
        hostname: Some(crate::detect::host::hostname())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into()),
    };
    let mut poll = opts.backoff.initial;
    let mut polls: u32 = 0;
    let answer = loop {
        let answer = ask(&mut client, &request, opts).await?;
        if !answer.pending {
            break answer;
        }
        if polls % PENDING_LOG_EVERY == 0 {
            tracing::warn!(
                agent_id,
                key = %fingerprint,
                hostname = %request.hostname,
                "waiting for approval: run `fleetctl agents approve {agent_id}` (check that \
                 the key fingerprint listed is {fingerprint}); asking again in {poll:.1?}"
            );
        }
        polls = polls.wrapping_add(1);
        tokio::time::sleep(poll).await;
        poll = poll.saturating_mul(2).min(opts.backoff.max);
    };
    if answer.certificate_pem.is_empty() {
        return Err(AgentError::Usage(
            "enrollment: the coordinator answered without a certificate".into(),
        ));
    }
    let labels = serde_json::to_vec(&answer.labels).unwrap_or_else(|_| b"{}".to_vec());
    atomic::write(&opts.state_dir.join(LABELS_FILE), &labels, Mode::Replace)?;
    let cert = opts.state_dir.join(CERT_FILE);
    atomic::write(&cert, answer.certificate_pem.as_bytes(), Mode::Replace)?;
    tracing::info!(agent_id, not_after = %answer.not_after, "enrolled");
    Ok((cert, opts.state_dir.join(KEY_FILE)))
}

/// How often (in polls) a pending agent repeats that it waits for approval.
const PENDING_LOG_EVERY: u32 = 10;

/// One Enroll call, retried while the coordinator cannot be reached.
async fn ask(
    client: &mut AgentServiceClient<tonic::transport::Channel>,
    request: &EnrollRequest,
    opts: &RunOptions,
) -> Result<fleetcal_proto::pb::EnrollResponse, AgentError> {
    let mut wait = Duration::from_millis(200);
    loop {
        match client.enroll(request.clone()).await {
            Ok(answer) => return Ok(answer.into_inner()),
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
                ) =>
            {
                tracing::warn!(
                    error = %dial::status_chain(&status),
                    retry_in = ?wait,
                    "enrollment: coordinator not reachable{}",
                    dial::connect_hint(opts.tls.as_ref())
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(opts.backoff.max);
            }
            Err(status) => {
                return Err(AgentError::Usage(format!(
                    "enrollment refused: {:?}: {}",
                    status.code(),
                    status.message()
                )))
            }
        }
    }
}
