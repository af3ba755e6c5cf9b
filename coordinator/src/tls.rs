//! The coordinator's TLS (`serve --tls-cert --tls-key [--client-ca]`), on rustls through
//! tonic. Its PEM files are read and parsed with [`fleetcal_proto::dial`]'s readers first, so
//! a missing or malformed file is an error that names it (and its role) before anything
//! listens. fleetctl dials through [`fleetcal_proto::dial`] like the agents do.

use std::path::PathBuf;

use fleetcal_proto::dial::{error_chain, read_certificates, read_identity};
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
