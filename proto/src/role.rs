//! Who a certificate is in the fleet: its role, written as a URI subject alternative name.
//!
//! An agent's certificate names its agent id (`urn:fleetcal:agent:<id>`), an operator's (or
//! a tool's, such as fleetctl or a metrics scraper) an admin name (`urn:fleetcal:admin:<name>`).
//! The coordinator reads the role of the certificate a caller presents and decides what the
//! caller may call; `fleetctl pki` and enrollment write it; the agent reads its own id from its
//! certificate. The spelling lives here once.

use std::fmt;

use crate::quote;

/// The URI prefix of an agent certificate's id.
pub const AGENT_URI_PREFIX: &str = "urn:fleetcal:agent:";
/// The URI prefix of an admin certificate's name.
pub const ADMIN_URI_PREFIX: &str = "urn:fleetcal:admin:";

/// The fingerprint of a public key as operators compare it: `sha256:` and the lowercase hex
/// SHA-256 of its DER SubjectPublicKeyInfo. The agent logs its key's while it waits for
/// approval; the coordinator shows the one its enrollment request carried.
pub fn key_fingerprint(spki_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The role a certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// A board: the agent id it may act as.
    Agent(String),
    /// An operator or tool: it may call the admin service.
    Admin(String),
}

impl Role {
    /// The URI subject alternative name that carries this role.
    pub fn uri(&self) -> String {
        match self {
            Role::Agent(id) => format!("{AGENT_URI_PREFIX}{id}"),
            Role::Admin(name) => format!("{ADMIN_URI_PREFIX}{name}"),
        }
    }

    /// The role a URI names; `None` for a URI of no fleetcal role (or an empty name).
    pub fn from_uri(uri: &str) -> Option<Role> {
        if let Some(id) = uri.strip_prefix(AGENT_URI_PREFIX) {
            return (!id.is_empty()).then(|| Role::Agent(id.to_string()));
        }
        if let Some(name) = uri.strip_prefix(ADMIN_URI_PREFIX) {
            return (!name.is_empty()).then(|| Role::Admin(name.to_string()));
        }
        None
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Agent(id) => write!(f, "agent certificate {}", quote::quoted(id)),
            Role::Admin(name) => write!(f, "admin certificate {}", quote::quoted(name)),
        }
    }
}

/// What a certificate (DER) says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRoles {
    /// The fleetcal roles among its URI names (normally exactly one).
    pub roles: Vec<Role>,
    /// Its subject, for messages (`CN=...`).
    pub subject: String,
    /// The start of its validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// The end of its validity, seconds since the Unix epoch.
    pub not_after: i64,
}

impl CertificateRoles {
    /// The one role of the certificate; `None` when it names none or several.
    pub fn single(&self) -> Option<&Role> {
        match self.roles.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// Reads the roles of a DER certificate. An error says why it cannot be parsed.
pub fn of_certificate(der: &[u8]) -> Result<CertificateRoles, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    let mut roles = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name {
                if let Some(role) = Role::from_uri(uri) {
                    roles.push(role);
                }
            }
        }
    }
    Ok(CertificateRoles {
        roles,
        subject: quote::bounded(&cert.subject().to_string()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Reads the roles of the first certificate of a PEM text.
pub fn of_pem(pem: &[u8]) -> Result<CertificateRoles, String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem)
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    of_certificate(der.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_fingerprint_is_sha256_hex() {
        assert_eq!(
            key_fingerprint(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(key_fingerprint(b"abd"), key_fingerprint(b"abc"));
    }

    #[test]
    fn a_role_round_trips_through_its_uri() {
        for role in [Role::Agent("a-1".into()), Role::Admin("ops".into())] {
            assert_eq!(Role::from_uri(&role.uri()), Some(role));
        }
        assert_eq!(Role::from_uri("urn:fleetcal:agent:"), None);
        assert_eq!(Role::from_uri("https://example.org/"), None);
        assert_eq!(Role::Agent("b".into()).to_string(), "agent certificate 'b'");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let e = of_certificate(b"not der").unwrap_err();
        assert!(e.contains("not a certificate"), "{e}");
    }
}
