//! The coordinator's TLS (`serve --tls-cert --tls-key [--client-ca]`), on rustls through
//! tonic. Its PEM files are read and parsed with [`fleetcal_proto::dial`]'s readers first, so
//! a missing or malformed file is an error that names it (and its role) before anything
//! listens. fleetctl dials through [`fleetcal_proto::dial`] like the agents do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| tls_err("client ca", ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_err("server key", &files.key, e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

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
