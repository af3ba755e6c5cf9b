//! How a client dials a `fleetcal.v1` endpoint: the URL scheme and the mutual-TLS files it
//! presents. Both clients of the coordinator (the agent daemon and fleetctl) dial through here.
//!
//! An `https://` URL needs the CA that signed the server's certificate and, for a server that
//! requires client certificates, a certificate and its key; it may name the server its
//! certificate is checked against (a TLS server name) when the URL's host is not one of the
//! certificate's names (an IP address, a load balancer). An `http://` URL takes none of
//! them. Every PEM file is read and parsed before anything dials, so a missing or malformed
//! file is a [`DialError`] naming it and its role. The coordinator's own TLS (its server
//! certificate, the client CA it checks) reads its PEM files with [`read_identity`] and
//! [`read_certificates`] too.
//!
//! A client may be given several coordinators of one fleet (several coordinators on one
//! database): [`check_urls`] checks the list, [`ClientTlsFiles::for_urls`] the TLS files for
//! all of it; which one is dialled when is the client's policy (the agent starts at one picked
//! by its id and moves to the next when its link fails; fleetctl takes the first that
//! answers). One name that resolves to several addresses works as one URL: each new
//! connection tries the addresses in turn.
//!
//! Where each setting comes from (flags, environment, a config file) is the caller's business:
//! the errors here name the offending file or URL, and each client adds its own spelling.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// What can be wrong with how a client is told to dial: a URL and TLS settings that do not
/// agree, a TLS file that cannot be read or parsed, a URL tonic does not take.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// A client certificate was given without its private key.
    #[error("client certificate {} needs its key", .cert.display())]
    CertWithoutKey {
        /// The certificate.
        cert: PathBuf,
    },
    /// A client private key was given without its certificate.
    #[error("client key {} needs its certificate", .key.display())]
    KeyWithoutCert {
        /// The key.
        key: PathBuf,
    },
    /// An `https://` URL without the CA certificate to check the server against.
    #[error(
        "coordinator '{url}' is https: it needs the CA certificate that signed its \
         certificate"
    )]
    HttpsWithoutCa {
        /// The URL.
        url: String,
    },
    /// TLS files given for a plain `http://` URL.
    #[error(
        "coordinator '{url}' is plain http: the CA certificate, certificate and key are only \
         used with an https:// url"
    )]
    TlsOnPlainHttp {
        /// The URL.
        url: String,
    },
    /// A TLS server name given for a plain `http://` URL.
    #[error(
        "coordinator '{url}' is plain http: the tls server name '{name}' is only used with an \
         https:// url"
    )]
    ServerNameOnPlainHttp {
        /// The URL.
        url: String,
        /// The server name.
        name: String,
    },
    /// A TLS server name that is neither a DNS name nor an IP address.
    #[error("tls server name '{name}' is not a dns name or an ip address")]
    InvalidServerName {
        /// The server name.
        name: String,
    },
    /// A TLS file (CA certificate, certificate, key) that cannot be read or parsed.
    #[error("tls {role} {}: {message}", .path.display())]
    File {
        /// What the file is for ("ca certificate", "client key", "server certificate", ...).
        role: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A URL that cannot be dialled: not `http://` or `https://`, no host, a port outside
    /// 1..=65535, or one tonic refuses.
    #[error("coordinator url '{url}' is not a valid url: {message}")]
    Url {
        /// The URL, as a bounded prefix ([`crate::quote::bounded`]).
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// tonic refused the TLS configuration for this URL (a certificate or key its TLS library
    /// does not accept beyond the PEM framing, a URL without a host name).
    #[error("tls for '{url}': {}", error_chain(.source))]
    TlsConfig {
        /// The URL.
        url: String,
        /// tonic's error.
        source: tonic::transport::Error,
    },
    /// A list of coordinator URLs that is empty or longer than [`MAX_URLS`].
    #[error("coordinator urls: {count} given, accepted 1..={MAX_URLS}")]
    UrlCount {
        /// How many were given.
        count: usize,
    },
}

/// The most coordinator URLs a client takes (several coordinators on one database).
pub const MAX_URLS: usize = 16;

/// Checks a list of coordinator URLs (each item may itself be a comma-separated list: a
/// repeated flag, a `FLEETCAL_COORDINATOR=URL,URL` variable or a config list), each with
/// [`check_url`]; returns them trimmed, in order, duplicates dropped. Between 1 and
/// [`MAX_URLS`] of them.
pub fn check_urls<S: AsRef<str>>(items: &[S]) -> Result<Vec<String>, DialError> {
    let mut urls: Vec<String> = Vec::new();
    for item in items {
        for url in item.as_ref().split(',').filter(|u| !u.trim().is_empty()) {
            let url = check_url(url)?;
            if !urls.iter().any(|u| u == url) {
                urls.push(url.to_string());
            }
            if urls.len() > MAX_URLS {
                return Err(DialError::UrlCount { count: urls.len() });
            }
        }
    }
    if urls.is_empty() {
        return Err(DialError::UrlCount { count: 0 });
    }
    Ok(urls)
}

/// The TLS files a client presents to an `https://` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca_cert: PathBuf,
    /// The client certificate and its private key (PEM), for a server that requires one
    /// (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The name the server's certificate is checked against; `None` uses the URL's host.
    pub server_name: Option<String>,
}

impl ClientTlsFiles {
    /// Combines the CA certificate, client certificate, key and server name settings for a
    /// URL: `https://` needs a CA, `http://` takes none of them (`Ok(None)`), a certificate
    /// needs its key (and the reverse), and a server name must be a DNS name or an IP address.
    pub fn for_url(
        url: &str,
        ca_cert: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        server_name: Option<String>,
    ) -> Result<Option<ClientTlsFiles>, DialError> {
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(cert), None) => return Err(DialError::CertWithoutKey { cert }),
            (None, Some(key)) => return Err(DialError::KeyWithoutCert { key }),
        };
        let url = check_url(url)?;
        let files = match (url.starts_with("https://"), ca_cert) {
            (true, Some(ca_cert)) => ClientTlsFiles {
                ca_cert,
                identity,
                server_name: None,
            },
            (true, None) => {
                return Err(DialError::HttpsWithoutCa {
                    url: crate::quote::bounded(url),
                })
            }
            (false, None) if identity.is_none() => {
                return match server_name {
                    None => Ok(None),
                    Some(name) => Err(DialError::ServerNameOnPlainHttp {
                        url: crate::quote::bounded(url),
                        name: crate::quote::bounded(&name),
                    }),
                };
            }
            (false, _) => {
                return Err(DialError::TlsOnPlainHttp {
                    url: crate::quote::bounded(url),
                })
            }
        };
        match server_name {
            None => Ok(Some(files)),
            Some(name) => {
                check_server_name(&name)?;
                Ok(Some(files.with_server_name(name)))
            }
        }
    }

    /// [`ClientTlsFiles::for_url`] for several URLs of one fleet (several coordinators): the
    /// same files for each, so they must all be `https://` (with a CA) or all `http://`.
    pub fn for_urls(
        urls: &[String],
        ca_cert: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        server_name: Option<String>,
    ) -> Result<Option<ClientTlsFiles>, DialError> {
        let mut first = None;
        for (i, url) in urls.iter().enumerate() {
            let files = ClientTlsFiles::for_url(
                url,
                ca_cert.clone(),
                cert.clone(),
                key.clone(),
                server_name.clone(),
            )?;
            if i == 0 {
                first = files;
            }
        }
        Ok(first)
    }

    /// Checks the server's certificate against `name` instead of the URL's host (dialling an
    /// address that the certificate does not name, such as a node IP behind a service name).
    /// The name is checked when the files are read ([`ClientTlsFiles::client_config`]).
    pub fn with_server_name(mut self, name: impl Into<String>) -> ClientTlsFiles {
        self.server_name = Some(name.into());
        self
    }

    /// Reads and checks the files into tonic's client TLS configuration.
    pub fn client_config(&self) -> Result<ClientTlsConfig, DialError> {
        Ok(self
            .identity_config()?
            .ca_certificate(read_certificates(&self.ca_cert, "ca certificate")?))
    }

    /// The CA certificate's certificates as rustls trust anchors.
    fn roots(&self) -> Result<tokio_rustls::rustls::RootCertStore, DialError> {
        let role = "ca certificate";
        let pem = read_certificates(&self.ca_cert, role)?;
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(pem.as_ref()) {
            let der =
                der.map_err(|e| file_error(&self.ca_cert, role, format!("invalid PEM: {e}")))?;
            roots
                .add(der)
                .map_err(|e| file_error(&self.ca_cert, role, e.to_string()))?;
        }
        Ok(roots)
    }

    /// tonic's client TLS configuration without the CA (the client identity and the server
    /// name): what a custom server-certificate verifier goes with.
    fn identity_config(&self) -> Result<ClientTlsConfig, DialError> {
        let mut config = ClientTlsConfig::new();
        if let Some((cert, key)) = &self.identity {
            config = config.identity(read_identity(cert, key, "client")?);
        }
        if let Some(name) = &self.server_name {
            check_server_name(name)?;
            config = config.domain_name(name.clone());
        }
        Ok(config)
    }
}

/// Checks a URL before anything dials it and returns it without surrounding whitespace:
/// the scheme is `http://` or `https://`, a host follows (a DNS name, an IPv4 address or a
/// bracketed IPv6 address), and a port, when given, is a number in 1..=65535. Both clients
/// (the agent daemon and fleetctl) check their `--coordinator` here, at start.
pub fn check_url(url: &str) -> Result<&str, DialError> {
    let url = url.trim();
    let bad = |message: String| DialError::Url {
        url: crate::quote::bounded(url),
        message,
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad("the scheme must be http:// or https://".into()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("user information (user@) is not supported".into()));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ']'".into()))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    bad(format!(
                        "'{}' after the IPv6 address is not a port",
                        crate::quote::bounded(p)
                    ))
                })?),
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(format!(
                    "'{}' is not an IPv6 address",
                    crate::quote::bounded(host)
                )));
            }
            (host, port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(bad("it has no host".into()));
    }
    if !authority.starts_with('[') && rustls_pki_types::ServerName::try_from(host).is_err() {
        return Err(bad(format!(
            "host '{}' is not a dns name or an ip address",
            crate::quote::bounded(host)
        )));
    }
    if let Some(port) = port {
        let valid = port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(bad(format!(
                "port '{}' is not a number in 1..=65535",
                crate::quote::bounded(port)
            )));
        }
    }
    Ok(url)
}

/// The endpoint for `url` (`http://HOST:PORT`, or `https://HOST:PORT` with `tls`), its TLS
/// files read and checked; nothing is dialled yet. Timeouts and keepalive are the caller's.
pub fn endpoint(url: &str, tls: Option<&ClientTlsFiles>) -> Result<Endpoint, DialError> {
    let url = check_url(url)?;
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| DialError::Url {
        url: crate::quote::bounded(url),
        message: e.to_string(),
    })?;
    match tls {
        None => Ok(endpoint),
        Some(files) => endpoint
            .tls_config(files.client_config()?)
            .map_err(|source| DialError::TlsConfig {
                url: crate::quote::bounded(url),
                source,
            }),
    }
}

/// [`endpoint`], with the coordinator's certificate checked as of `max(now, floor_s)`
/// ([`crate::clock_floor::ClockFloor`]; seconds since the Unix epoch): for a board whose clock
/// may read 1970. `below` is told once when the clock is below the floor.
pub fn endpoint_with_clock_floor(
    url: &str,
    tls: Option<&ClientTlsFiles>,
    floor_s: u64,
    below: crate::clock_floor::BelowFloor,
) -> Result<Endpoint, DialError> {
    let Some(files) = tls else {
        return endpoint(url, None);
    };
    let plain = endpoint(url, None)?;
    let url = check_url(url)?;
    let verifier = crate::clock_floor::ClockFloor::new(files.roots()?, floor_s, below)
        .map_err(|message| file_error(&files.ca_cert, "ca certificate", message))?;
    plain
        .tls_config_with_verifier(files.identity_config()?, std::sync::Arc::new(verifier))
        .map_err(|source| DialError::TlsConfig {
            url: crate::quote::bounded(url),
            source,
        })
}

/// Reads a PEM file holding at least one certificate; `role` names it in errors.
pub fn read_certificates(path: &Path, role: &str) -> Result<Certificate, DialError> {
    let pem = read(path, role)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, role, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            path,
            role,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(Certificate::from_pem(pem))
}

/// Reads a certificate and its private key (PKCS#8, PKCS#1 or SEC1) into an identity; `role`
/// ("client", "server") names both files in errors.
pub fn read_identity(cert: &Path, key: &Path, role: &str) -> Result<Identity, DialError> {
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
        file_error(key, &key_role, why)
    })?;
    Ok(Identity::from_pem(cert_pem.into_inner(), key_pem))
}

/// What to add to a failure to reach a server with these TLS settings (`None`: plain http):
/// the likely TLS mismatch, in the flags both clients share.
pub fn connect_hint(tls: Option<&ClientTlsFiles>) -> &'static str {
    match tls {
        None => " (if the coordinator serves TLS, use an https:// url with --ca-cert FILE)",
        Some(ClientTlsFiles { identity: None, .. }) => {
            " (is the coordinator serving TLS, does --ca-cert sign its certificate, does that \
             name the url's host (else --tls-server-name NAME), and does it require a client \
             certificate (--cert FILE --key FILE)?)"
        }
        Some(_) => {
            " (is the coordinator serving TLS, does --ca-cert sign its certificate, does that \
             name the url's host (else --tls-server-name NAME), and does its client CA sign \
             --cert?)"
        }
    }
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

/// A status's message and the cause chain behind it (the TLS alert, the HTTP/2 error).
pub fn status_chain(status: &tonic::Status) -> String {
    let text = status.message().to_string();
    match std::error::Error::source(status).map(error_chain) {
        Some(chain) if chain.starts_with(&text) => chain,
        Some(chain) => format!("{text}: {chain}"),
        None => text,
    }
}

/// Accepts what rustls checks a certificate against: a DNS name or an IP address.
fn check_server_name(name: &str) -> Result<(), DialError> {
    rustls_pki_types::ServerName::try_from(name)
        .map(|_| ())
        .map_err(|_| DialError::InvalidServerName {
            name: crate::quote::bounded(name),
        })
}

fn read(path: &Path, role: &str) -> Result<Vec<u8>, DialError> {
    std::fs::read(path).map_err(|e| file_error(path, role, format!("cannot read it: {e}")))
}

fn file_error(path: &Path, role: &str, message: String) -> DialError {
    DialError::File {
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
        let f = ClientTlsFiles::for_url("https://c:1", p("ca.pem"), p("a.pem"), p("a.key"), None)
            .unwrap()
            .unwrap();
        assert_eq!(f.ca_cert, PathBuf::from("ca.pem"));
        assert_eq!(
            f.identity,
            Some((PathBuf::from("a.pem"), PathBuf::from("a.key")))
        );
        assert_eq!(f.server_name, None);
        assert_eq!(
            ClientTlsFiles::for_url("http://c:1", None, None, None, None).unwrap(),
            None
        );
        let e = ClientTlsFiles::for_url("https://c:1", None, None, None, None).unwrap_err();
        assert!(matches!(e, DialError::HttpsWithoutCa { .. }), "{e:?}");
        assert!(e.to_string().contains("'https://c:1' is https"), "{e}");
        let e = ClientTlsFiles::for_url(" https://c:1", None, None, None, None).unwrap_err();
        assert!(matches!(e, DialError::HttpsWithoutCa { .. }), "{e:?}");
        let e = ClientTlsFiles::for_url("http://c:1", p("ca.pem"), None, None, None).unwrap_err();
        assert!(matches!(e, DialError::TlsOnPlainHttp { .. }), "{e:?}");
        assert!(e.to_string().contains("plain http"), "{e}");
        let e =
            ClientTlsFiles::for_url("http://c:1", None, p("a.pem"), p("a.key"), None).unwrap_err();
        assert!(matches!(e, DialError::TlsOnPlainHttp { .. }), "{e:?}");
        let e = ClientTlsFiles::for_url("https://c:1", p("ca.pem"), p("a.pem"), None, None)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "client certificate a.pem needs its key");
        let e = ClientTlsFiles::for_url("https://c:1", p("ca.pem"), None, p("a.key"), None)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "client key a.key needs its certificate");
    }

    #[test]
    fn urls_are_checked_before_anything_dials() {
        for good in [
            "http://127.0.0.1:7700",
            " https://c.lab ",
            "http://c.lab:1",
            "http://c.lab:65535/",
            "http://[::1]:7700",
            "https://[fe80::1]",
            "http://localhost",
        ] {
            assert_eq!(check_url(good).unwrap(), good.trim(), "{good}");
        }
        for (bad, why) in [
            (
                "http://127.0.0.1:99999",
                "port '99999' is not a number in 1..=65535",
            ),
            ("http://c:0", "port '0'"),
            ("http://c:", "port ''"),
            ("http://c:-1", "port '-1'"),
            ("http://c:+80", "port '+80'"),
            ("ftp://c.lab:21", "the scheme must be http:// or https://"),
            ("c.lab:7700", "the scheme"),
            ("HTTP://c.lab:7700", "the scheme"),
            ("", "the scheme"),
            ("http://", "no host"),
            ("http://:7700", "no host"),
            ("http:///x", "no host"),
            ("http://user@c:1", "user information"),
            ("http://bad host:1", "host 'bad host'"),
            ("http://[::1:7700", "closing ']'"),
            ("http://[::1]x", "'x' after the IPv6 address"),
            ("http://[zz]:1", "'zz' is not an IPv6 address"),
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(matches!(e, DialError::Url { .. }), "{bad}: {e:?}");
            let e = e.to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains(&format!("'{}'", bad.trim())), "{bad}: {e}");
        }
        // The check is part of reading the TLS settings (fleetctl and the agent call it at
        // start) and of building the endpoint.
        let e = ClientTlsFiles::for_url("ftp://c:1", None, None, None, None).unwrap_err();
        assert!(matches!(e, DialError::Url { .. }), "{e:?}");
        assert!(endpoint("http://c:99999", None).is_err());
        // A huge URL is quoted as a bounded prefix.
        let huge = format!("ftp://{}", "h".repeat(100_000));
        let e = check_url(&huge).unwrap_err().to_string();
        assert!(e.len() < 300 && e.contains('…'), "{}", e.len());
    }

    #[test]
    fn url_lists_are_split_checked_and_bounded() {
        let urls = check_urls(&["http://a:1, http://b:2", "http://a:1", " http://c:3 "]).unwrap();
        assert_eq!(urls, ["http://a:1", "http://b:2", "http://c:3"]);
        let e = check_urls(&["http://a:1,ftp://b:2"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'ftp://b:2'") && e.contains("scheme"), "{e}");
        let e = check_urls::<&str>(&[]).unwrap_err().to_string();
        assert_eq!(e, "coordinator urls: 0 given, accepted 1..=16");
        assert!(check_urls(&[" , "]).is_err());
        let many: Vec<String> = (1..=17).map(|p| format!("http://c:{p}")).collect();
        let e = check_urls(&many).unwrap_err().to_string();
        assert!(e.contains("17 given"), "{e}");
        // One set of TLS files for the whole list: the schemes must agree.
        let p = |s: &str| Some(PathBuf::from(s));
        let two = vec!["https://a:1".to_string(), "https://b:1".to_string()];
        let f = ClientTlsFiles::for_urls(&two, p("ca.pem"), None, None, None).unwrap();
        assert_eq!(f.unwrap().ca_cert, PathBuf::from("ca.pem"));
        let mixed = vec!["https://a:1".to_string(), "http://b:1".to_string()];
        let e = ClientTlsFiles::for_urls(&mixed, p("ca.pem"), None, None, None).unwrap_err();
        assert!(matches!(e, DialError::TlsOnPlainHttp { .. }), "{e:?}");
        let plain = vec!["http://a:1".to_string(), "http://b:1".to_string()];
        assert_eq!(
            ClientTlsFiles::for_urls(&plain, None, None, None, None).unwrap(),
            None
        );
    }

    #[test]
    fn a_server_name_needs_https_and_must_be_a_name() {
        let p = |s: &str| Some(PathBuf::from(s));
        let n = |s: &str| Some(s.to_string());
        let f = ClientTlsFiles::for_url("https://10.0.0.7:1", p("ca.pem"), None, None, n("c.lab"))
            .unwrap()
            .unwrap();
        assert_eq!(f.server_name.as_deref(), Some("c.lab"));
        let f = ClientTlsFiles::for_url("https://lb:1", p("ca.pem"), None, None, n("10.0.0.7"))
            .unwrap()
            .unwrap();
        assert_eq!(
            f.server_name.as_deref(),
            Some("10.0.0.7"),
            "an ip is a name"
        );
        let e = ClientTlsFiles::for_url("http://c:1", None, None, None, n("c.lab")).unwrap_err();
        assert!(
            matches!(e, DialError::ServerNameOnPlainHttp { .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "coordinator 'http://c:1' is plain http: the tls server name 'c.lab' is only used \
             with an https:// url"
        );
        // With other TLS files on plain http, the general error.
        let e =
            ClientTlsFiles::for_url("http://c:1", p("ca.pem"), None, None, n("c.lab")).unwrap_err();
        assert!(matches!(e, DialError::TlsOnPlainHttp { .. }), "{e:?}");
        for bad in ["", "bad name", "c.lab:50051", "https://c.lab"] {
            let e = ClientTlsFiles::for_url("https://c:1", p("ca.pem"), None, None, n(bad))
                .unwrap_err();
            assert!(matches!(e, DialError::InvalidServerName { .. }), "{e:?}");
            assert_eq!(
                e.to_string(),
                format!("tls server name '{bad}' is not a dns name or an ip address")
            );
        }
    }

    #[test]
    fn bad_pem_files_are_named_with_their_role() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = read_certificates(&missing, "ca certificate")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("tls ca certificate ")
                && e.contains("missing.pem")
                && e.contains("cannot read"),
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
    }

    #[test]
    fn client_files_are_read_before_anything_dials() {
        let dir = tempfile::tempdir().unwrap();
        let files = ClientTlsFiles {
            ca_cert: dir.path().join("missing-ca.pem"),
            identity: None,
            server_name: None,
        };
        let e = endpoint("https://c:1", Some(&files))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ca certificate")
                && e.contains("missing-ca.pem")
                && e.contains("cannot read"),
            "{e}"
        );
        // A key that is not one: named as the client key, whatever the certificate is.
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();
        let e = read_identity(&junk, &junk, "client")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("tls client certificate "), "{e}");
        let e = endpoint("not a url", None).unwrap_err();
        assert!(matches!(e, DialError::Url { .. }), "{e:?}");
        assert!(e.to_string().contains("'not a url'"), "{e}");
        assert!(endpoint("http://c:1", None).is_ok());
    }

    #[test]
    fn hints_follow_the_tls_settings() {
        let ca_only = ClientTlsFiles {
            ca_cert: "ca.pem".into(),
            identity: None,
            server_name: None,
        };
        assert!(connect_hint(None).contains("https://"));
        assert!(connect_hint(Some(&ca_only)).contains("--cert FILE --key FILE"));
        let mutual = ClientTlsFiles {
            identity: Some(("a.pem".into(), "a.key".into())),
            ..ca_only.clone()
        };
        assert!(connect_hint(Some(&mutual)).contains("client CA sign --cert"));
        let named = ca_only.with_server_name("coordinator.lab");
        assert_eq!(named.server_name.as_deref(), Some("coordinator.lab"));
    }

    #[test]
    fn chains_join_causes_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport error")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&e), "transport error: connection refused");
        let status = tonic::Status::from_error(Box::new(e));
        assert!(status_chain(&status).contains("connection refused"));
        assert_eq!(
            status_chain(&tonic::Status::not_found("run 'r'")),
            "run 'r'"
        );
    }
}
