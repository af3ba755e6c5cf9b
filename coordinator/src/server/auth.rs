//! Who a caller is and what it may call: the one home of the coordinator's access rules.
//!
//! With mutual TLS (`--client-ca`) a caller is the role its certificate names
//! ([`fleetcal_proto::role`]): an agent certificate may make agent-service calls for its own
//! agent id only, an admin certificate may call the admin service and read the web side; a
//! certificate of the CA that names no role may do neither. Without client authentication
//! (`--insecure-plaintext`, or TLS without a client CA) every caller is [`Caller::Open`]
//! and may call everything: the coordinator warns about it at start. A refused call is
//! PERMISSION_DENIED naming the caller and what it tried, before any use case runs (so it
//! changes nothing).

use fleetcal_proto::quote;
use fleetcal_proto::role::{self, Role};
use rustls_pki_types::CertificateDer;

use crate::config::Settings;
use crate::Error;

/// A caller, as far as the access rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No client authentication is configured: everything is allowed.
    Open,
    /// Mutual TLS, but no certificate was presented.
    Anonymous,
    /// A certificate naming one role.
    Role(Role),
    /// A certificate naming no role (or several), by its subject.
    NoRole(String),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Open => f.write_str("an unauthenticated caller"),
            Caller::Anonymous => f.write_str("a caller without a certificate"),
            Caller::Role(role) => role.fmt(f),
            Caller::NoRole(subject) => write!(
                f,
                "certificate '{subject}' (it names no fleetcal role: no {}<id> or {}<name> uri)",
                role::AGENT_URI_PREFIX,
                role::ADMIN_URI_PREFIX
            ),
        }
    }
}

/// Whether the coordinator checks callers' roles: it does when client certificates are
/// asked for (`--client-ca`).
pub fn roles_enforced(settings: &Settings) -> bool {
    settings.tls.as_ref().is_some_and(|t| t.client_ca.is_some())
}

/// The caller of a request, from the certificate chain its TLS connection presented.
pub fn caller<T>(request: &tonic::Request<T>, enforced: bool) -> Caller {
    caller_of(request.peer_certs().as_deref().map(Vec::as_slice), enforced)
}

/// The caller presenting `certs` (its chain, leaf first), when roles are `enforced`.
pub fn caller_of(certs: Option<&[CertificateDer<'_>]>, enforced: bool) -> Caller {
    if !enforced {
        return Caller::Open;
    }
    let Some(leaf) = certs.and_then(<[_]>::first) else {
        return Caller::Anonymous;
    };
    match role::of_certificate(leaf.as_ref()) {
        Ok(found) => match found.single() {
            Some(role) => Caller::Role(role.clone()),
            None => Caller::NoRole(found.subject),
        },
        Err(e) => Caller::NoRole(quote::bounded(&e)),
    }
}

/// When the leaf certificate `request`'s TLS connection presented expires, Unix milliseconds;
/// `None` without one (plain text, no client certificate) or when it cannot be parsed.
pub fn peer_not_after<T>(request: &tonic::Request<T>) -> Option<crate::model::Millis> {
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    let found = role::of_certificate(leaf.as_ref()).ok()?;
    Some(found.not_after.saturating_mul(1000))
}

impl Caller {
    /// An agent-service call `call` made as agent `agent_id`: allowed for that agent's
    /// certificate (and when callers are not authenticated).
    pub fn admit_agent(&self, agent_id: &str, call: &str) -> Result<(), Error> {
        match self {
            Caller::Open => Ok(()),
            Caller::Role(Role::Agent(id)) if id == agent_id => Ok(()),
            Caller::Role(Role::Agent(_)) => {
                Err(self.denied(format!("act as agent {} ({call})", quote::quoted(agent_id))))
            }
            _ => Err(self.denied(format!("call the agent service ({call})"))),
        }
    }

    /// A certificate renewal (`Renew`) for agent `agent_id`: allowed only for that agent's
    /// own certificate. Never for an unauthenticated caller, even where everything else is
    /// open: a certificate is signed only for a caller that proves it holds the agent's.
    pub fn admit_renewal(&self, agent_id: &str) -> Result<(), Error> {
        match self {
            Caller::Open => Err(self.denied(format!(
                "renew the certificate of agent {} (renewal needs mutual TLS: the \
                 coordinator serves without --client-ca)",
                quote::quoted(agent_id)
            ))),
            _ => self.admit_agent(agent_id, "Renew"),
        }
    }

    /// An admin-service call `call`: allowed for an admin certificate (and when callers are
    /// not authenticated).
    pub fn admit_admin(&self, call: &str) -> Result<(), Error> {
        self.admit_admin_to(|| format!("call the admin service ({call})"))
    }

    /// A request to the web side (pages, JSON, CSV, `/metrics`): the admin service's rule.
    pub fn admit_web(&self) -> Result<(), Error> {
        self.admit_admin_to(|| "read the web pages and /metrics".into())
    }

    fn admit_admin_to(&self, attempt: impl FnOnce() -> String) -> Result<(), Error> {
        match self {
            Caller::Open | Caller::Role(Role::Admin(_)) => Ok(()),
            _ => Err(self.denied(attempt())),
        }
    }

    fn denied(&self, attempt: String) -> Error {
        Error::Denied {
            caller: self.to_string(),
            attempt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_acts_only_as_itself_and_never_as_admin() {
        let a = Caller::Role(Role::Agent("a".into()));
        assert!(a.admit_agent("a", "Register").is_ok());
        let e = a.admit_agent("b", "UploadResult").unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "permission denied: agent certificate 'a' may not act as agent 'b' (UploadResult)"
        );
        let e = a.admit_admin("StartCampaign").unwrap_err().to_string();
        assert!(
            e.contains("agent certificate 'a'") && e.contains("admin service (StartCampaign)"),
            "{e}"
        );
    }

    #[test]
    fn an_admin_calls_the_admin_service_only() {
        let ops = Caller::Role(Role::Admin("ops".into()));
        assert!(ops.admit_admin("ListAgents").is_ok());
        assert!(ops.admit_web().is_ok());
        let e = Caller::Role(Role::Agent("a".into()))
            .admit_web()
            .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("may not read the web pages and /metrics"),
            "{e}"
        );
        let e = ops.admit_agent("a", "Register").unwrap_err().to_string();
        assert!(e.contains("admin certificate 'ops'"), "{e}");
        for nobody in [Caller::Anonymous, Caller::NoRole("CN=x".into())] {
            assert!(nobody.admit_admin("ListAgents").is_err());
            assert!(nobody.admit_agent("a", "Register").is_err());
        }
        assert!(Caller::Open.admit_admin("ListAgents").is_ok());
        assert!(Caller::Open.admit_agent("a", "Register").is_ok());
    }

    #[test]
    fn only_an_agents_own_certificate_renews_it() {
        let a = Caller::Role(Role::Agent("a".into()));
        assert!(a.admit_renewal("a").is_ok());
        let e = a.admit_renewal("b").unwrap_err().to_string();
        assert!(e.contains("may not act as agent 'b' (Renew)"), "{e}");
        let e = Caller::Open.admit_renewal("a").unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.to_string().contains("renewal needs mutual TLS"), "{e}");
        for nobody in [
            Caller::Anonymous,
            Caller::NoRole("CN=x".into()),
            Caller::Role(Role::Admin("ops".into())),
        ] {
            assert!(nobody.admit_renewal("a").is_err(), "{nobody}");
        }
    }

    #[test]
    fn without_enforcement_everyone_is_open_and_without_a_certificate_anonymous() {
        assert_eq!(caller_of(None, false), Caller::Open);
        assert_eq!(caller_of(None, true), Caller::Anonymous);
        let junk = CertificateDer::from(vec![1u8, 2, 3]);
        assert!(matches!(caller_of(Some(&[junk]), true), Caller::NoRole(_)));
    }
}
