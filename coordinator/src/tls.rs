//! The coordinator's TLS (`serve --tls-cert --tls-key [--client-ca]`), on rustls. Its PEM
//! files are read and parsed with [`fleetcal_proto::dial`]'s readers first, so a missing or
//! malformed file is an error that names it (and its role) before anything listens. fleetctl
//! dials through [`fleetcal_proto::dial`] like the agents do.
//!
//! The coordinator accepts TLS connections itself (both listeners, [`accept`]) rather than
//! through tonic's built-in TLS, so that a refused handshake — a client certificate of
//! another CA, expired or not yet valid, a client refusing the coordinator's certificate —
//! is logged with the peer's address and the reason, at most one line per peer address and
//! reason per [`REFUSAL_LOG_WINDOW`] with a count of those suppressed ([`RefusalLog`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetcal_proto::dial::{error_chain, read_certificates, read_identity};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tonic::transport::ServerTlsConfig;

use crate::Error;

/// The coordinator's TLS files, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server private key (PEM).
    pub key: PathBuf,
    /// The CA that signs client certificates; when set, clients must present one (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// The server's TLS configuration from its files, checked the way the server will use it (a
/// key that does not belong to the certificate is an error here).
pub fn server_config(files: &ServerTlsFiles) -> Result<ServerTlsConfig, Error> {
    let mut config =
        ServerTlsConfig::new().identity(read_identity(&files.cert, &files.key, "server")?);
    if let Some(ca) = &files.client_ca {
        config = config.client_ca_root(read_certificates(ca, "client ca")?);
    }
    tonic::transport::Server::builder()
        .tls_config(config.clone())
        .map_err(|e| Error::Tls {
            role: "server key".into(),
            path: files.key.clone(),
            message: format!(
                "does not fit certificate {}: {}",
                files.cert.display(),
                error_chain(&e)
            ),
        })?;
    Ok(config)
}

/// The web side's TLS configuration from the same files: the same certificate and key, the
/// same client CA (so mutual TLS covers the pages and `/metrics` too), ALPN for HTTP/2 and
/// HTTP/1.1. The files are checked by [`server_config`] first (errors naming them).
pub fn http_server_config(files: &ServerTlsFiles) -> Result<Arc<rustls::ServerConfig>, Error> {
    rustls_config(files, false, &[b"h2", b"http/1.1"])
}

/// The gRPC side's TLS configuration: the server's certificate, client certificates of the
/// client CA (required; optional when `enrolling`, as an enrolling agent has none yet and
/// the access rules let it make the enrollment call only), ALPN `h2`.
pub fn grpc_server_config(
    files: &ServerTlsFiles,
    enrolling: bool,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    rustls_config(files, enrolling, &[b"h2"])
}

fn rustls_config(
    files: &ServerTlsFiles,
    client_auth_optional: bool,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, Error> {
    server_config(files)?;
    let tls_err = |role: &str, path: &Path, message: String| Error::Tls {
        role: role.into(),
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_err("server certificate", &files.cert, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_err("server key", &files.key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("server certificate and key", &files.cert, e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_err("client ca", ca, e.to_string()))?
            {
                roots
                    .add(cert)
                    .map_err(|e| tls_err("client ca", ca, e.to_string()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
            let verifier = if client_auth_optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| tls_err("client ca", ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_err("server key", &files.key, e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// How long a client gets to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// At most one refused-handshake line per peer address and reason in this window.
pub const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(10);

/// The most (peer address, reason) pairs [`RefusalLog`] remembers; beyond, refusals of new
/// ones share one line per window (a storm from many addresses cannot grow the map or flood
/// the log).
const REFUSAL_LOG_PEERS: usize = 4096;

/// The TLS handshake of `stream` from `peer` under [`HANDSHAKE_TIMEOUT`]; `None` when it
/// failed, after `log` has been told why (`listener` names the side: "grpc" or "http").
pub async fn accept(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    log: &RefusalLog,
    listener: &str,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(refusal) => log.refused(peer, listener, &refusal_reason(refusal)),
                // The peer went away mid-handshake (a port probe, a reset): nothing refused.
                None => tracing::debug!(%peer, listener, error = %e, "tls handshake ended"),
            }
            None
        }
        Err(_) => {
            tracing::debug!(%peer, listener, "tls handshake timed out");
            None
        }
    }
}

/// Why rustls refused a handshake, in words an operator acts on.
pub fn refusal_reason(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "client certificate of an unknown CA (not signed by --client-ca)".into()
            }
            C::Expired | C::ExpiredContext { .. } => "client certificate expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "client certificate not yet valid (check the clocks)".into()
            }
            C::Revoked => "client certificate revoked".into(),
            C::BadSignature | C::BadEncoding => "bad client certificate".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "client certificate not for client authentication".into()
            }
            other => format!("bad client certificate ({other:?})"),
        },
        rustls::Error::NoCertificatesPresented => "no client certificate presented".into(),
        rustls::Error::AlertReceived(alert) => {
            format!("the client refused the handshake (alert {alert:?}: does it trust the coordinator's CA?)")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("not a TLS client hello (plain text to a TLS port?): {e}")
        }
        rustls::Error::PeerIncompatible(_) => format!("incompatible client: {e}"),
        other => other.to_string(),
    }
}

/// Logs refused TLS handshakes as warnings, rate-limited: at most one line per peer address
/// (its IP: a client's port changes with each connection) and reason per
/// [`REFUSAL_LOG_WINDOW`]; the next line says how many were suppressed meanwhile.
#[derive(Debug, Default)]
pub struct RefusalLog {
    peers: Mutex<HashMap<Option<(IpAddr, String)>, Seen>>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    logged: Instant,
    suppressed: u64,
}

impl RefusalLog {
    /// Records a refused handshake from `peer`; logs it unless rate-limited.
    pub fn refused(&self, peer: SocketAddr, listener: &str, reason: &str) {
        if let Some(suppressed) = self.admit(peer.ip(), reason, Instant::now()) {
            tracing::warn!(
                %peer,
                listener,
                suppressed,
                "tls handshake refused: {reason}"
            );
        }
    }

    /// Whether a refusal from `ip` for `reason` at `now` is logged: `Some(suppressed since
    /// the last line)`, or `None` when it is counted instead.
    fn admit(&self, ip: IpAddr, reason: &str, now: Instant) -> Option<u64> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let key = Some((ip, reason.to_string()));
        if peers.len() >= REFUSAL_LOG_PEERS && !peers.contains_key(&key) {
            peers.retain(|_, s| now.saturating_duration_since(s.logged) < REFUSAL_LOG_WINDOW);
        }
        // Still full: new ones share one entry.
        let key = if peers.len() >= REFUSAL_LOG_PEERS && !peers.contains_key(&key) {
            None
        } else {
            key
        };
        match peers.get_mut(&key) {
            Some(seen) if now.saturating_duration_since(seen.logged) < REFUSAL_LOG_WINDOW => {
                seen.suppressed = seen.suppressed.saturating_add(1);
                None
            }
            Some(seen) => {
                let suppressed = seen.suppressed;
                *seen = Seen {
                    logged: now,
                    suppressed: 0,
                };
                Some(suppressed)
            }
            None => {
                peers.insert(
                    key,
                    Seen {
                        logged: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_per_peer_per_window_with_the_suppressed_count() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let (x, y) = ("expired", "unknown CA");
        assert_eq!(log.admit(a, x, t0), Some(0));
        for _ in 0..5 {
            assert_eq!(log.admit(a, x, t0 + Duration::from_secs(1)), None);
        }
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            log.admit(b, x, t1),
            Some(0),
            "another address: its own window"
        );
        assert_eq!(
            log.admit(a, y, t1),
            Some(0),
            "another reason: its own window"
        );
        assert_eq!(log.admit(a, x, t0 + REFUSAL_LOG_WINDOW), Some(5));
        assert_eq!(log.admit(a, x, t0 + REFUSAL_LOG_WINDOW), None);
    }

    #[test]
    fn a_storm_from_many_addresses_stays_bounded() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        let mut logged = 0;
        for i in 0..(REFUSAL_LOG_PEERS as u32 + 1000) {
            if log
                .admit(IpAddr::from(i.to_be_bytes()), "expired", t0)
                .is_some()
            {
                logged += 1;
            }
        }
        // Every remembered address once, then one shared line for the rest.
        assert_eq!(logged, REFUSAL_LOG_PEERS + 1);
        assert!(log.peers.lock().unwrap().len() <= REFUSAL_LOG_PEERS + 1);
    }

    #[test]
    fn refusal_reasons_name_the_cause() {
        use rustls::CertificateError as C;
        let bad = |c| refusal_reason(&rustls::Error::InvalidCertificate(c));
        assert!(bad(C::UnknownIssuer).contains("unknown CA"));
        assert!(bad(C::Expired).contains("expired"));
        assert!(bad(C::NotValidYet).contains("not yet valid"));
        assert!(bad(C::Revoked).contains("revoked"));
        assert!(refusal_reason(&rustls::Error::AlertReceived(
            rustls::AlertDescription::UnknownCA
        ))
        .contains("refused the handshake"));
    }

    #[test]
    fn bad_server_files_are_named_with_their_role_and_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let files = ServerTlsFiles {
            cert: junk.clone(),
            key: junk,
            client_ca: None,
        };
        let e = server_config(&files).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("server certificate") && e.contains("junk.pem"),
            "{e}"
        );
    }
}
