//! TLS towards an `https://` coordinator: the CA that signed its certificate and, for a
//! coordinator that requires client certificates (mutual TLS), this agent's certificate and
//! key. The PEM files are read and parsed at start-up so that a bad one is an error naming it.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::AgentError;

/// The agent's TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate (PEM) that signed the coordinator's certificate.
    pub ca_cert: PathBuf,
    /// This agent's certificate and private key (PEM), when the coordinator requires one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl TlsFiles {
    /// Combines the CA, certificate and key settings for a coordinator URL: `https://` needs
    /// a CA, `http://` takes none of them, and a certificate needs its key (and the reverse).
    pub fn for_url(
        url: &str,
        ca_cert: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<TlsFiles>, AgentError> {
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(c), None) => {
                return Err(AgentError::Usage(format!(
                    "client certificate {} needs its key (--key FILE or [tls] key)",
                    c.display()
                )))
            }
            (None, Some(k)) => {
                return Err(AgentError::Usage(format!(
                    "client key {} needs its certificate (--cert FILE or [tls] cert)",
                    k.display()
                )))
            }
        };
        match (url.starts_with("https://"), ca_cert) {
            (true, Some(ca_cert)) => Ok(Some(TlsFiles { ca_cert, identity })),
            (true, None) => Err(AgentError::Usage(format!(
                "coordinator '{url}' is https: pass --ca-cert FILE (the CA that signed its \
                 certificate; FLEETCAL_CA_CERT or [tls] ca_cert)"
            ))),
            (false, None) if identity.is_none() => Ok(None),
            (false, _) => Err(AgentError::Usage(format!(
                "coordinator '{url}' is plain http: the CA certificate, certificate and key are \
                 only used with an https:// url"
            ))),
        }
    }

    /// Reads and checks the files into tonic's client TLS configuration.
    pub fn client_config(&self) -> Result<ClientTlsConfig, AgentError> {
        let mut config =
            ClientTlsConfig::new().ca_certificate(certificates(&self.ca_cert, "ca certificate")?);
        if let Some((cert, key)) = &self.identity {
            let cert_pem = certificates(cert, "client certificate")?;
            let key_pem = read(key, "client key")?;
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                let why = match e {
                    rustls_pki_types::pem::Error::NoItemsFound => {
                        "no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".to_string()
                    }
                    other => format!("invalid PEM: {other}"),
                };
                tls_error(key, "client key", why)
            })?;
            config = config.identity(Identity::from_pem(cert_pem.into_inner(), key_pem));
        }
        Ok(config)
    }
}

fn certificates(path: &Path, role: &str) -> Result<Certificate, AgentError> {
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

fn read(path: &Path, role: &str) -> Result<Vec<u8>, AgentError> {
    std::fs::read(path).map_err(|e| tls_error(path, role, format!("cannot read it: {e}")))
}

fn tls_error(path: &Path, role: &str, message: String) -> AgentError {
    AgentError::Tls {
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
        let f = TlsFiles::for_url("https://c:1", p("ca.pem"), p("a.pem"), p("a.key"))
            .unwrap()
            .unwrap();
        assert_eq!(f.ca_cert, PathBuf::from("ca.pem"));
        assert!(f.identity.is_some());
        assert_eq!(
            TlsFiles::for_url("http://c:1", None, None, None).unwrap(),
            None
        );
        let e = TlsFiles::for_url("https://c:1", None, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ca-cert") && e.contains("https://c:1"), "{e}");
        let e = TlsFiles::for_url("http://c:1", p("ca.pem"), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain http"), "{e}");
        let e = TlsFiles::for_url("https://c:1", p("ca.pem"), None, p("a.key"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.key") && e.contains("--cert"), "{e}");
    }

    #[test]
    fn bad_pem_files_are_named_with_their_role() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            ca_cert: dir.path().join("missing-ca.pem"),
            identity: None,
        };
        let e = files.client_config().unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("ca certificate")
                && e.contains("missing-ca.pem")
                && e.contains("cannot read"),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();
        let files = TlsFiles {
            ca_cert: junk,
            identity: None,
        };
        let e = files.client_config().unwrap_err().to_string();
        assert!(
            e.contains("junk.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
