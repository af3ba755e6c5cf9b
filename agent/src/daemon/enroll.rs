//! Enrollment: an agent started with a join token (`--join-token`) and no client certificate
//! makes its own key in its state dir (it never leaves the board), sends a certificate signing
//! request with the token over server-authenticated TLS (`AgentService.Enroll`) and keeps the
//! certificate the coordinator signs for its agent id. From then on that key and certificate
//! are its identity: later starts use them and need no token.

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
        if opts.join_token.is_some() {
            return Err(AgentError::Usage(format!(
                "--join-token needs an https:// coordinator with --ca-cert (got '{}')",
                fleetcal_proto::quote::bounded(&opts.coordinator)
            )));
        }
        return Ok(opts);
    };
    if tls.identity.is_some() {
        return Ok(opts);
    }
    if let Some(found) = enrolled(&opts.state_dir) {
        tls.identity = Some(found);
        return Ok(opts);
    }
    let Some(token) = opts.join_token.clone() else {
        return Ok(opts);
    };
    let files = enroll(&opts, &agent_id()?, &token).await?;
    if let Some(tls) = opts.tls.as_mut() {
        tls.identity = Some(files);
    }
    Ok(opts)
}

/// The key in the state dir (made now, 0600, if there is none yet) and a signing request for it.
fn key_and_request(state_dir: &Path, agent_id: &str) -> Result<String, AgentError> {
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
    signing_request(&key, agent_id).map_err(fail)
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

/// Enrolls: retries while the coordinator cannot be reached (backing off up to the link's
/// maximum), fails at once when it refuses (a bad, expired or used-up token; a known id).
async fn enroll(
    opts: &RunOptions,
    agent_id: &str,
    token: &str,
) -> Result<(PathBuf, PathBuf), AgentError> {
    std::fs::create_dir_all(&opts.state_dir).map_err(|source| AgentError::Io {
        path: opts.state_dir.clone(),
        source,
    })?;
    let csr_pem = key_and_request(&opts.state_dir, agent_id)?;
    let endpoint = dial::endpoint(&opts.coordinator, opts.tls.as_ref())?
        .connect_timeout(opts.rpc_timeout)
        .timeout(opts.rpc_timeout);
    let mut client = AgentServiceClient::new(endpoint.connect_lazy());
    let mut wait = Duration::from_millis(200);
    let request = EnrollRequest {
        agent_id: agent_id.to_string(),
        join_token: token.to_string(),
        csr_pem,
    };
    let answer = loop {
        match client.enroll(request.clone()).await {
            Ok(answer) => break answer.into_inner(),
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
    };
    let labels = serde_json::to_vec(&answer.labels).unwrap_or_else(|_| b"{}".to_vec());
    atomic::write(&opts.state_dir.join(LABELS_FILE), &labels, Mode::Replace)?;
    let cert = opts.state_dir.join(CERT_FILE);
    atomic::write(&cert, answer.certificate_pem.as_bytes(), Mode::Replace)?;
    tracing::info!(agent_id, not_after = %answer.not_after, "enrolled");
    Ok((cert, opts.state_dir.join(KEY_FILE)))
}
