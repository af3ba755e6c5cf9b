//! The fleet's certificates, made in Rust (rcgen; no openssl): the fleet CA, the
//! coordinator's server certificate, and client certificates that carry their role
//! ([`fleetcal_proto::role`]: an admin name or an agent id, as a URI name). Keys are ECDSA
//! P-256 and written mode 0600; nothing is ever overwritten.
//!
//! `fleetctl pki init DIR` writes [`CA_CERT`], [`CA_KEY`], [`SERVER_CERT`], [`SERVER_KEY`],
//! [`ADMIN_CERT`] and [`ADMIN_KEY`]; `fleetctl pki issue DIR --admin NAME | --agent ID`
//! adds client certificates signed by the CA in DIR.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use fleetcal_proto::quote;
use fleetcal_proto::role::Role;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::Error;

/// The CA certificate's file name.
pub const CA_CERT: &str = "ca.pem";
/// The CA key's file name (the coordinator's `--ca-key` for enrollment).
pub const CA_KEY: &str = "ca.key";
/// The coordinator's certificate.
pub const SERVER_CERT: &str = "server.pem";
/// The coordinator's key.
pub const SERVER_KEY: &str = "server.key";
/// The admin client certificate `pki init` makes.
pub const ADMIN_CERT: &str = "admin.pem";
/// Its key.
pub const ADMIN_KEY: &str = "admin.key";

/// How far back a new certificate's validity starts, for clocks a little behind: at most
/// this, and at most a tenth of the certificate's lifetime (so a short-lived agent
/// certificate's renewal point, two thirds into its validity, stays after its issue).
const BACKDATE_S: i64 = 300;

/// The accepted lifetimes of `pki` certificates, days.
pub const DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

fn pki_err(message: String) -> Error {
    Error::Pki(message)
}

/// A validity window from `now` (Unix seconds, backdated: [`BACKDATE_S`]) for `lifetime_s`
/// seconds.
fn validity(params: &mut CertificateParams, now: i64, lifetime_s: i64) -> Result<(), Error> {
    let at = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .map_err(|e| pki_err(format!("time {t} is out of range: {e}")))
    };
    params.not_before = at(now.saturating_sub(BACKDATE_S.min(lifetime_s / 10).max(0)))?;
    params.not_after = at(now.saturating_add(lifetime_s))?;
    Ok(())
}

/// Seconds in `days` days, range-checked against [`DAYS`] (naming `flag`).
pub fn days_s(flag: &str, days: u32) -> Result<i64, Error> {
    if !DAYS.contains(&days) {
        return Err(pki_err(format!(
            "{flag} {days} is not between {} and {}",
            DAYS.start(),
            DAYS.end()
        )));
    }
    Ok(i64::from(days) * 86_400)
}

/// The fleet CA: its certificate (PEM) and its signing key.
pub struct Authority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    /// A new self-signed CA valid for `lifetime_s` from `now`; returns it with its key (PEM).
    pub fn create(now: i64, lifetime_s: i64) -> Result<(Authority, String), Error> {
        let key = KeyPair::generate().map_err(|e| pki_err(format!("making the ca key: {e}")))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "fleetcal fleet CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, now, lifetime_s)?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| pki_err(format!("signing the ca certificate: {e}")))?;
        let key_pem = key.serialize_pem();
        Ok((
            Authority {
                cert_pem: cert.pem(),
                issuer: Issuer::new(params, key),
            },
            key_pem,
        ))
    }

    /// The CA of `cert` (PEM) with its key `key` (PEM), read from files; errors name them.
    pub fn load(cert: &Path, key: &Path) -> Result<Authority, Error> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(cert)?;
        let key = KeyPair::from_pem(&read(key)?)
            .map_err(|e| pki_err(format!("ca key {}: not a private key: {e}", key.display())))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| {
            pki_err(format!(
                "ca certificate {}: not a certificate: {e}",
                cert.display()
            ))
        })?;
        Ok(Authority { cert_pem, issuer })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for `names` (DNS names and IP addresses) and its new key (PEM).
    pub fn server(
        &self,
        names: &[String],
        now: i64,
        lifetime_s: i64,
    ) -> Result<(String, String), Error> {
        let mut sans = Vec::new();
        for name in names {
            sans.push(match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => {
                    let bad = || {
                        pki_err(format!(
                            "server name {} is not a dns name or an ip address",
                            quote::quoted(name)
                        ))
                    };
                    rustls_pki_types::DnsName::try_from(name.as_str()).map_err(|_| bad())?;
                    SanType::DnsName(name.as_str().try_into().map_err(|_| bad())?)
                }
            });
        }
        let Some(first) = names.first() else {
            return Err(pki_err(
                "the server certificate needs at least one name".into(),
            ));
        };
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign_new_key(params, now, lifetime_s)
    }

    /// A client certificate naming `role` and its new key (PEM).
    pub fn client(
        &self,
        role: &Role,
        now: i64,
        lifetime_s: i64,
    ) -> Result<(String, String), Error> {
        self.sign_new_key(client_params(role)?, now, lifetime_s)
    }

    /// An agent's certificate for `agent_id` over the public key of the certificate signing
    /// request `csr_pem` (its signature is checked: the requester holds the key). Only the
    /// key is taken from the request; names, usages and validity are this CA's.
    pub fn sign_agent_csr(
        &self,
        agent_id: &str,
        csr_pem: &str,
        now: i64,
        lifetime_s: i64,
    ) -> Result<String, Error> {
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| pki_err(format!("the certificate signing request is not valid: {e}")))?;
        let mut params = client_params(&Role::Agent(agent_id.to_string()))?;
        validity(&mut params, now, lifetime_s)?;
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(|e| pki_err(format!("signing a certificate: {e}")))?;
        Ok(cert.pem())
    }

    /// The fingerprint ([`fleetcal_proto::role::key_fingerprint`]) of the key the certificate
    /// signing request `csr_pem` asks a certificate for; its signature is checked.
    pub fn csr_key_fingerprint(csr_pem: &str) -> Result<String, Error> {
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| pki_err(format!("the certificate signing request is not valid: {e}")))?;
        Ok(fleetcal_proto::role::key_fingerprint(
            &rcgen::PublicKeyData::subject_public_key_info(&csr.public_key),
        ))
    }

    fn sign_new_key(
        &self,
        mut params: CertificateParams,
        now: i64,
        lifetime_s: i64,
    ) -> Result<(String, String), Error> {
        validity(&mut params, now, lifetime_s)?;
        let key = KeyPair::generate().map_err(|e| pki_err(format!("making a key: {e}")))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| pki_err(format!("signing a certificate: {e}")))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The parameters of a client certificate for `role`: its name as the common name, its role
/// as the one URI name, client authentication only.
fn client_params(role: &Role) -> Result<CertificateParams, Error> {
    let (kind, name) = match role {
        Role::Agent(id) => ("agent", id),
        Role::Admin(name) => ("admin", name),
    };
    crate::validate::schedule_name(kind, name)?;
    let uri = role.uri();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("fleetcal {kind} {name}"));
    params.subject_alt_names =
        vec![SanType::URI(uri.as_str().try_into().map_err(|_| {
            pki_err(format!("{} is not a valid uri", quote::quoted(&uri)))
        })?)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

/// Writes `text` to a new file `path` (never over an existing one) with `mode`.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Writes a certificate (0644) and its key (0600) as `dir/NAME.pem`, `dir/NAME.key`, and
/// returns their paths. Neither may exist yet.
fn write_pair(dir: &Path, cert: (&str, &str), key: (&str, &str)) -> Result<Vec<PathBuf>, Error> {
    let (cert_path, key_path) = (dir.join(cert.0), dir.join(key.0));
    for path in [&cert_path, &key_path] {
        if path.exists() {
            return Err(pki_err(format!(
                "{} exists: nothing is overwritten (move it away first)",
                path.display()
            )));
        }
    }
    write_new(&key_path, key.1, 0o600)?;
    write_new(&cert_path, cert.1, 0o644)?;
    Ok(vec![cert_path, key_path])
}

/// What `pki init` makes.
#[derive(Debug, Clone)]
pub struct InitSpec {
    /// The coordinator certificate's DNS names and IP addresses.
    pub server_names: Vec<String>,
    /// The admin client certificate's name.
    pub admin: String,
    /// Lifetime of everything made, seconds.
    pub lifetime_s: i64,
}

/// `fleetctl pki init DIR`: a new CA, the coordinator's certificate and an admin client
/// certificate in `dir` (created if missing). Refuses to touch a directory that already holds
/// any of its files. Returns the files written.
pub fn init(dir: &Path, spec: &InitSpec, now: i64) -> Result<Vec<PathBuf>, Error> {
    for name in [
        CA_CERT,
        CA_KEY,
        SERVER_CERT,
        SERVER_KEY,
        ADMIN_CERT,
        ADMIN_KEY,
    ] {
        let path = dir.join(name);
        if path.exists() {
            return Err(pki_err(format!(
                "{} exists: pki init makes a new fleet CA and overwrites nothing (use \
                 `fleetctl pki issue` to add certificates to an existing one)",
                path.display()
            )));
        }
    }
    let admin = Role::Admin(spec.admin.clone());
    let (ca, ca_key) = Authority::create(now, spec.lifetime_s)?;
    let server = ca.server(&spec.server_names, now, spec.lifetime_s)?;
    let client = ca.client(&admin, now, spec.lifetime_s)?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = write_pair(dir, (CA_CERT, ca.cert_pem()), (CA_KEY, &ca_key))?;
    written.extend(write_pair(
        dir,
        (SERVER_CERT, &server.0),
        (SERVER_KEY, &server.1),
    )?);
    written.extend(write_pair(
        dir,
        (ADMIN_CERT, &client.0),
        (ADMIN_KEY, &client.1),
    )?);
    Ok(written)
}

/// `fleetctl pki issue DIR`: a client certificate for `role`, signed by the CA in `dir`,
/// written as `dir/NAME.pem` and `dir/NAME.key` (`admin-NAME` or `agent-ID` by default).
pub fn issue(
    dir: &Path,
    role: &Role,
    name: Option<&str>,
    now: i64,
    lifetime_s: i64,
) -> Result<Vec<PathBuf>, Error> {
    if let Role::Agent(id) = role {
        uuid::Uuid::parse_str(id).map_err(|e| {
            pki_err(format!(
                "--agent {}: agent ids are UUIDs ({e})",
                quote::quoted(id)
            ))
        })?;
    }
    let ca = Authority::load(&dir.join(CA_CERT), &dir.join(CA_KEY))?;
    let (cert, key) = ca.client(role, now, lifetime_s)?;
    let stem = match (name, role) {
        (Some(n), _) => {
            crate::validate::schedule_name("--name", n)?;
            n.to_string()
        }
        (None, Role::Admin(n)) => format!("admin-{n}"),
        (None, Role::Agent(id)) => format!("agent-{id}"),
    };
    write_pair(
        dir,
        (&format!("{stem}.pem"), &cert),
        (&format!("{stem}.key"), &key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetcal_proto::role;

    fn der(pem: &str) -> Vec<u8> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn init_writes_a_ca_a_server_and_an_admin_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pki");
        let spec = InitSpec {
            server_names: vec!["coordinator.lab".into(), "127.0.0.1".into()],
            admin: "ops".into(),
            lifetime_s: 86_400,
        };
        let written = init(&out, &spec, 1_800_000_000).unwrap();
        assert_eq!(written.len(), 6);
        #[cfg(unix)]
        for path in &written {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            let want = if path.extension().unwrap() == "key" {
                0o600
            } else {
                0o644
            };
            assert_eq!(mode, want, "{}", path.display());
        }
        let admin = std::fs::read_to_string(out.join(ADMIN_CERT)).unwrap();
        let roles = role::of_certificate(&der(&admin)).unwrap();
        assert_eq!(roles.single(), Some(&Role::Admin("ops".into())));
        assert_eq!(roles.not_after, 1_800_000_000 + 86_400);
        // The server's key fits its certificate, as the coordinator checks it.
        let files = crate::tls::ServerTlsFiles {
            cert: out.join(SERVER_CERT),
            key: out.join(SERVER_KEY),
            client_ca: Some(out.join(CA_CERT)),
        };
        crate::tls::server_config(&files).unwrap();
        // Run again: refused, nothing overwritten.
        let e = init(&out, &spec, 0).unwrap_err().to_string();
        assert!(e.contains("ca.pem exists"), "{e}");
        assert_eq!(
            std::fs::read_to_string(out.join(ADMIN_CERT)).unwrap(),
            admin
        );
        // An agent certificate from the same CA names its id.
        let id = "6f1c2a4e-0b7d-4c1e-9a53-2f0e8d1b7c90";
        let files = issue(&out, &Role::Agent(id.into()), None, 1_800_000_000, 60).unwrap();
        assert!(files[0].ends_with(format!("agent-{id}.pem")));
        let pem = std::fs::read_to_string(&files[0]).unwrap();
        let roles = role::of_certificate(&der(&pem)).unwrap();
        assert_eq!(roles.single(), Some(&Role::Agent(id.into())));
        let e = issue(&out, &Role::Agent("board-1".into()), None, 0, 60).unwrap_err();
        assert!(e.to_string().contains("agent ids are UUIDs"), "{e}");
    }

    #[test]
    fn a_short_lived_agent_certificate_is_backdated_by_a_tenth_of_its_lifetime() {
        let (ca, _) = Authority::create(1_800_000_000, 86_400).unwrap();
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let id = "6f1c2a4e-0b7d-4c1e-9a53-2f0e8d1b7c90";
        let v = |lifetime_s| {
            let pem = ca
                .sign_agent_csr(id, &csr, 1_800_000_000, lifetime_s)
                .unwrap();
            let c = role::of_certificate(&der(&pem)).unwrap();
            assert_eq!(c.single(), Some(&Role::Agent(id.into())));
            (c.not_before, c.not_after)
        };
        assert_eq!(v(30), (1_800_000_000 - 3, 1_800_000_030));
        assert_eq!(
            v(30 * 86_400),
            (1_800_000_000 - 300, 1_800_000_000 + 30 * 86_400)
        );
    }

    #[test]
    fn bad_names_and_lifetimes_are_refused_by_name() {
        let (ca, _) = Authority::create(0, 60).unwrap();
        let e = ca
            .server(&["not a name".into()], 0, 60)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'not a name'"), "{e}");
        assert!(ca.client(&Role::Agent("a b".into()), 0, 60).is_err());
        let e = days_s("--days", 0).unwrap_err().to_string();
        assert!(e.contains("--days 0 is not between 1 and 3650"), "{e}");
        assert_eq!(days_s("--days", 2).unwrap(), 172_800);
    }
}
