//! TLS for the coordinator (`serve --tls-cert --tls-key [--client-ca]`) and fleetctl
//! (`--ca-cert [--cert --key]`), on rustls through tonic. Every PEM file is read and parsed
//! here first, so a missing or malformed file is an error that names it (and its role) before
//! anything listens or dials.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

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

/// A client's TLS files (fleetctl, agents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// The CA that signed the coordinator's certificate (PEM).
    pub ca_cert: PathBuf,
    /// The client certificate and key (PEM), for a coordinator that requires them.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTlsFiles {
    /// Combines `--ca-cert`, `--cert` and `--key` for a coordinator URL: `https://` needs a CA,
    /// `http://` takes none of them, and a certificate needs its key (and the reverse).
    pub fn for_url(
        url: &str,
        ca_cert: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<ClientTlsFiles>, Error> {
        let https = url.trim_start().starts_with("https://");
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(c), None) => {
                return Err(Error::InvalidRequest(format!(
                    "client certificate {} needs its key (--key FILE)",
                    c.display()
                )))
            }
            (None, Some(k)) => {
                return Err(Error::InvalidRequest(format!(
                    "client key {} needs its certificate (--cert FILE)",
                    k.display()
                )))
            }
        };
        match (https, ca_cert) {
            (true, Some(ca_cert)) => Ok(Some(ClientTlsFiles { ca_cert, identity })),
            (true, None) => Err(Error::InvalidRequest(format!(
                "coordinator '{url}' is https: pass --ca-cert FILE (the CA that signed its \
                 certificate; env FLEETCAL_CA_CERT)"
            ))),
            (false, None) if identity.is_none() => Ok(None),
            (false, _) => Err(Error::InvalidRequest(format!(
                "coordinator '{url}' is plain http: --ca-cert, --cert and --key are only used \
                 with an https:// url"
            ))),
        }
    }
}

/// Reads a PEM file holding at least one certificate; `role` names it in errors.
pub fn read_certificates(path: &Path, role: &str) -> Result<Certificate, Error> {
    let pem = read(path, role)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, role, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(
            path,
            role,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(Certificate::from_pem(pem))
}

/// Reads a certificate and its private key into an identity.
pub fn read_identity(cert: &Path, key: &Path, role: &str) -> Result<Identity, Error> {
    let cert_pem = read_certificates(cert, &format!("{role} certificate"))?;
    let key_role = format!("{role} key");
    let key_pem = read(key, &key_role)?;
    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let why = match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".to_string()
            }
            other => format!("invalid PEM: {other}"),
        };
        tls_error(key, &key_role, why)
    })?;
    Ok(Identity::from_pem(cert_pem.into_inner(), key_pem))
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
        .map_err(|e| {
            tls_error(
                &files.key,
                "server key",
                format!(
                    "does not fit certificate {}: {}",
                    files.cert.display(),
                    error_chain(&e)
                ),
            )
        })?;
    Ok(config)
}

/// A client's TLS configuration from its files.
pub fn client_config(files: &ClientTlsFiles) -> Result<ClientTlsConfig, Error> {
    let mut config =
        ClientTlsConfig::new().ca_certificate(read_certificates(&files.ca_cert, "ca certificate")?);
    if let Some((cert, key)) = &files.identity {
        config = config.identity(read_identity(cert, key, "client")?);
    }
    Ok(config)
}

/// An error and all its sources, joined by `: ` (tonic's transport errors say little at the
/// top level: the cause, such as a TLS alert, is in the chain).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// What to add to a failure to reach a coordinator with these TLS settings (`None`: plain
/// http): the likely TLS mismatch.
pub fn connect_hint(tls: Option<&ClientTlsFiles>) -> &'static str {
    match tls {
        None => " (if the coordinator serves TLS, use an https:// url with --ca-cert FILE)",
        Some(ClientTlsFiles { identity: None, .. }) => {
            " (is the coordinator serving TLS, does --ca-cert sign its certificate, and does it \
             require a client certificate (--cert FILE --key FILE)?)"
        }
        Some(_) => {
            " (is the coordinator serving TLS, does --ca-cert sign its certificate, and does \
             its client CA sign --cert?)"
        }
    }
}

fn read(path: &Path, role: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| tls_error(path, role, format!("cannot read it: {e}")))
}

fn tls_error(path: &Path, role: &str, message: String) -> Error {
    Error::Tls {
        role: role.to_string(),
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_files_must_agree() {
        let p = |s: &str| Some(PathBuf::from(s));
        let f = ClientTlsFiles::for_url("https://c:1", p("ca.pem"), p("a.pem"), p("a.key"))
            .unwrap()
            .unwrap();
        assert_eq!(f.ca_cert, PathBuf::from("ca.pem"));
        assert_eq!(
            f.identity,
            Some((PathBuf::from("a.pem"), PathBuf::from("a.key")))
        );
        assert_eq!(
            ClientTlsFiles::for_url("http://c:1", None, None, None).unwrap(),
            None
        );
        let e = ClientTlsFiles::for_url("https://c:1", None, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ca-cert") && e.contains("https://c:1"), "{e}");
        let e = ClientTlsFiles::for_url("http://c:1", p("ca.pem"), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain http"), "{e}");
        let e = ClientTlsFiles::for_url("https://c:1", p("ca.pem"), p("a.pem"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.pem") && e.contains("--key"), "{e}");
    }

    #[test]
    fn bad_pem_files_are_named_with_their_role() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = read_certificates(&missing, "ca certificate")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ca certificate") && e.contains("missing.pem") && e.contains("cannot read"),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = read_certificates(&junk, "client ca")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("junk.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\n!!!!\n").unwrap();
        let e = read_certificates(&broken, "client ca")
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.pem") && e.contains("invalid PEM"), "{e}");
        let e = read_certificates(&junk, "x").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
