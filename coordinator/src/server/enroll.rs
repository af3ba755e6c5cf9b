//! Join tokens (`fleetctl token create`): a secret an operator hands to new boards so they can
//! enroll. Only its SHA-256 is stored ([`crate::store::JoinToken`]); the token is shown once.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use super::core::Coordinator;
use crate::domain::DomainError;
use crate::model::Millis;
use crate::pki::Authority;
use crate::store::{EnrollmentRequest, EnrollmentState, JoinToken, Redeemed, Store};
use crate::{validate, Error};

/// How every join token starts.
pub const TOKEN_PREFIX: &str = "fleetcal-join-";
/// The accepted lifetimes of a join token, seconds (a minute to a year).
pub const TTL_S: RangeInclusive<u32> = 60..=31_536_000;
/// The accepted numbers of uses of a join token.
pub const USES: RangeInclusive<u32> = 1..=100_000;

/// How long an agent's certificate is valid by default, seconds (30 days;
/// `serve --agent-cert-lifetime-s`).
pub const AGENT_CERT_LIFETIME_S: u32 = 30 * 86_400;

/// A join token's SHA-256, hex: what the store keeps and looks it up by.
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A new join token: the prefix and 244 random bits (two UUID v4s).
pub fn new_token() -> String {
    format!(
        "{TOKEN_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn in_range(field: &str, v: u32, range: &RangeInclusive<u32>) -> Result<(), DomainError> {
    if range.contains(&v) {
        return Ok(());
    }
    Err(DomainError::InvalidRequest(format!(
        "field '{field}': {v} is not between {} and {}",
        range.start(),
        range.end()
    )))
}

impl<S: Store> Coordinator<S> {
    /// Makes and stores a join token working `ttl_s` seconds from `now` for `uses` enrollments,
    /// giving `labels`; returns the token (shown once) and what was stored.
    pub async fn create_join_token(
        &self,
        ttl_s: u32,
        uses: u32,
        labels: BTreeMap<String, String>,
        now: Millis,
    ) -> Result<(String, JoinToken), Error> {
        in_range("ttl_s", ttl_s, &TTL_S)?;
        in_range("uses", uses, &USES)?;
        validate::labels("labels", &labels)?;
        let token = new_token();
        let stored = JoinToken {
            token_hash: token_hash(&token),
            labels,
            uses_left: uses,
            expires_at: now.saturating_add(i64::from(ttl_s).saturating_mul(1000)),
            created_at: now,
        };
        self.store.create_join_token(&stored).await?;
        Ok((token, stored))
    }

    /// Enrolls agent `agent_id` with `token`: takes one use of the token and signs the
    /// request's key into a certificate naming the agent. Refused (nothing changes) for an
    /// agent id the coordinator knows, a bad request, or a token that does not admit.
    /// Returns the certificate (PEM), its expiry and the token's labels.
    pub async fn enroll(
        &self,
        authority: &Authority,
        agent_id: &str,
        token: &str,
        csr_pem: &str,
        now: Millis,
    ) -> Result<(String, Millis, BTreeMap<String, String>), Error> {
        validate::agent_id(agent_id)?;
        check_csr_size(csr_pem)?;
        self.refuse_known(agent_id).await?;
        let lifetime_s = i64::from(self.settings.agent_cert_lifetime_s);
        // Signed (so the request is checked) before a use of the token is taken.
        let cert = authority.sign_agent_csr(agent_id, csr_pem, now.div_euclid(1000), lifetime_s)?;
        let labels = match self
            .store
            .redeem_join_token(&token_hash(token), now)
            .await?
        {
            Redeemed::Accepted(labels) => labels,
            refused => {
                let why = match refused {
                    Redeemed::Expired => "has expired",
                    Redeemed::UsedUp => "has no use left",
                    _ => "is not known",
                };
                return Err(Error::Denied {
                    caller: format!("enrollment of agent '{agent_id}'"),
                    attempt: format!("use a join token that {why}"),
                });
            }
        };
        tracing::info!(agent = %agent_id, "agent enrolled");
        Ok((
            cert,
            now.saturating_add(lifetime_s.saturating_mul(1000)),
            labels,
        ))
    }
}

/// The most enrollment requests without a join token that may wait for approval at once.
pub const MAX_PENDING: u32 = 1000;

/// What an enrollment request without a join token got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// It waits for an operator; the requested key's fingerprint.
    Pending(String),
    /// Approved: the certificate (PEM) and its expiry.
    Issued(String, Millis),
}

impl<S: Store> Coordinator<S> {
    /// Refuses an enrollment for an agent id that is revoked or known (registered).
    async fn refuse_known(&self, agent_id: &str) -> Result<(), Error> {
        if self.registry.is_revoked(agent_id) || self.store.agent(agent_id).await?.is_some() {
            return Err(Error::Denied {
                caller: format!("enrollment of agent '{agent_id}'"),
                attempt: "take the id of a known agent (remove it first, or enroll a fresh \
                          state directory)"
                    .into(),
            });
        }
        Ok(())
    }

    /// An enrollment request of agent `agent_id` on host `hostname` without a join token:
    /// filed as pending the first time (at most [`MAX_PENDING`] wait at once), answered
    /// pending until an operator approves it, then with a certificate over the requested key
    /// (asked again with another key, or once denied: refused). A pending request registers
    /// no agent: it gets no plans.
    pub async fn request_approval(
        &self,
        authority: &Authority,
        agent_id: &str,
        hostname: &str,
        csr_pem: &str,
        now: Millis,
    ) -> Result<Approval, Error> {
        validate::agent_id(agent_id)?;
        validate::hostname(hostname)?;
        check_csr_size(csr_pem)?;
        self.refuse_known(agent_id).await?;
        let fingerprint = Authority::csr_key_fingerprint(csr_pem)?;
        let filed = EnrollmentRequest {
            agent_id: agent_id.to_string(),
            hostname: hostname.to_string(),
            key_fingerprint: fingerprint.clone(),
            state: EnrollmentState::Pending,
            requested_at: now,
            decided_at: None,
        };
        let stored = match self.store.enrollment_request(agent_id).await? {
            Some(stored) => stored,
            None => {
                let Some(stored) = self.store.request_enrollment(&filed, MAX_PENDING).await? else {
                    return Err(DomainError::TooManyPending { limit: MAX_PENDING }.into());
                };
                if stored == filed {
                    tracing::info!(
                        agent = %agent_id,
                        hostname = %validate::message(hostname),
                        key = %fingerprint,
                        "enrollment request waits for approval (fleetctl agents approve {agent_id})"
                    );
                }
                stored
            }
        };
        let refused = |attempt: String| Error::Denied {
            caller: format!("enrollment of agent '{agent_id}'"),
            attempt,
        };
        if stored.key_fingerprint != fingerprint {
            return Err(refused(format!(
                "ask with key {fingerprint}: the request waiting for this id is for key {} \
                 (a fresh state directory makes a new id)",
                stored.key_fingerprint
            )));
        }
        match stored.state {
            EnrollmentState::Pending => Ok(Approval::Pending(fingerprint)),
            EnrollmentState::Denied => Err(refused(
                "be enrolled: an operator denied it (fleetctl agents deny)".into(),
            )),
            EnrollmentState::Approved => {
                let lifetime_s = i64::from(self.settings.agent_cert_lifetime_s);
                let cert = authority.sign_agent_csr(
                    agent_id,
                    csr_pem,
                    now.div_euclid(1000),
                    lifetime_s,
                )?;
                tracing::info!(agent = %agent_id, "approved agent enrolled");
                Ok(Approval::Issued(
                    cert,
                    now.saturating_add(lifetime_s.saturating_mul(1000)),
                ))
            }
        }
    }

    /// Approves (`approve`) or denies a pending enrollment request at `now`; returns it as
    /// decided. NOT_FOUND when none was made for the id, FAILED_PRECONDITION when it was
    /// decided already.
    pub async fn decide_enrollment(
        &self,
        agent_id: &str,
        approve: bool,
        now: Millis,
    ) -> Result<EnrollmentRequest, Error> {
        validate::id("agent_id", agent_id)?;
        let want = if approve {
            EnrollmentState::Approved
        } else {
            EnrollmentState::Denied
        };
        let Some(stored) = self.store.enrollment_request(agent_id).await? else {
            return Err(DomainError::NoEnrollmentRequest(agent_id.to_string()).into());
        };
        if stored.state != EnrollmentState::Pending {
            return Err(DomainError::EnrollmentDecided {
                agent: agent_id.to_string(),
                state: stored.state.as_str(),
            }
            .into());
        }
        match self.store.decide_enrollment(agent_id, want, now).await? {
            Some(decided) if decided.state == want && decided.decided_at == Some(now) => {
                tracing::info!(agent = %agent_id, "enrollment request {}", want.as_str());
                Ok(decided)
            }
            // Decided by another operator in between.
            Some(other) => Err(DomainError::EnrollmentDecided {
                agent: agent_id.to_string(),
                state: other.state.as_str(),
            }
            .into()),
            None => Err(DomainError::NoEnrollmentRequest(agent_id.to_string()).into()),
        }
    }

    /// The enrollment requests waiting for approval, by agent id.
    pub async fn pending_enrollments(&self) -> Result<Vec<EnrollmentRequest>, Error> {
        self.store.pending_enrollments().await
    }
}

impl<S: Store> Coordinator<S> {
    /// Revokes an agent at `now`: every later call of it is refused, its directive stream is
    /// closed at once, and its id never enrolls again. True when the agent was known.
    pub async fn revoke_agent(&self, agent_id: &str, now: Millis) -> Result<bool, Error> {
        validate::id("agent_id", agent_id)?;
        let known = self.store.agent(agent_id).await?.is_some();
        self.store.revoke_agent(agent_id, now).await?;
        self.registry.revoke([agent_id.to_string()]);
        self.wake.notify_one();
        tracing::warn!(agent = %agent_id, "agent revoked");
        Ok(known)
    }
}

/// The largest certificate signing request accepted, bytes.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Refuses a certificate signing request larger than [`MAX_CSR_BYTES`] (enrollment and
/// renewal alike).
pub fn check_csr_size(csr_pem: &str) -> Result<(), DomainError> {
    if csr_pem.len() > MAX_CSR_BYTES {
        return Err(DomainError::InvalidRequest(format!(
            "field 'csr_pem': {} bytes, more than {MAX_CSR_BYTES}",
            csr_pem.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signing request for a new key, and the key's fingerprint.
    fn request() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let fp = fleetcal_proto::role::key_fingerprint(
            &rcgen::PublicKeyData::subject_public_key_info(&key),
        );
        (csr, fp)
    }

    #[tokio::test]
    async fn a_request_without_a_token_waits_until_approved_and_a_denied_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::server::schedules::tests::coordinator(&dir).await;
        let (ca, _) = Authority::create(1_700_000_000, 86_400 * 365).unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        let (csr, fp) = request();
        let ask = |csr: String, now| {
            let (c, ca, id) = (&c, &ca, id.clone());
            async move { c.request_approval(ca, &id, "board-1", &csr, now).await }
        };
        assert_eq!(
            ask(csr.clone(), 1_000).await.unwrap(),
            Approval::Pending(fp.clone())
        );
        assert_eq!(
            ask(csr.clone(), 2_000).await.unwrap(),
            Approval::Pending(fp.clone())
        );
        // Pending registers no agent.
        assert!(c.store.agent(&id).await.unwrap().is_none());
        let listed = c.pending_enrollments().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (
                listed[0].hostname.as_str(),
                listed[0].key_fingerprint.as_str(),
                listed[0].requested_at
            ),
            ("board-1", fp.as_str(), 1_000)
        );
        // Another key for the same id: refused, the first key stands.
        let (other, _) = request();
        let e = ask(other.clone(), 3_000).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.to_string().contains(&fp), "{e}");

        let decided = c.decide_enrollment(&id, true, 4_000).await.unwrap();
        assert_eq!(decided.state, EnrollmentState::Approved);
        let Approval::Issued(cert, not_after) = ask(csr.clone(), 5_000).await.unwrap() else {
            panic!("approved: a certificate");
        };
        assert_eq!(not_after, 5_000 + i64::from(AGENT_CERT_LIFETIME_S) * 1000);
        assert_eq!(
            fleetcal_proto::role::of_pem(cert.as_bytes())
                .unwrap()
                .single(),
            Some(&fleetcal_proto::role::Role::Agent(id.clone()))
        );
        assert!(ask(other, 5_000).await.is_err(), "only the requested key");
        let e = c.decide_enrollment(&id, false, 6_000).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.to_string().contains("approved already"), "{e}");
        assert!(c.pending_enrollments().await.unwrap().is_empty());

        // Denied: refused from then on, saying so; an unknown id is NOT_FOUND.
        let denied = uuid::Uuid::new_v4().to_string();
        let (csr, _) = request();
        c.request_approval(&ca, &denied, "board-2", &csr, 1_000)
            .await
            .unwrap();
        c.decide_enrollment(&denied, false, 2_000).await.unwrap();
        let e = c
            .request_approval(&ca, &denied, "board-2", &csr, 3_000)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("an operator denied it"), "{e}");
        let e = c.decide_enrollment("nobody", true, 1).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        // Bad input is named: a host name that is empty.
        let e = c
            .request_approval(&ca, &uuid::Uuid::new_v4().to_string(), " ", &csr, 1)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("'hostname'"), "{e}");
        assert!(DomainError::TooManyPending { limit: MAX_PENDING }
            .to_string()
            .starts_with("1000 enrollment requests wait for approval already"));
    }

    #[test]
    fn tokens_are_fresh_and_their_hash_is_sha256_hex() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(in_range("uses", 0, &USES).is_err());
        assert!(in_range("ttl_s", 59, &TTL_S)
            .unwrap_err()
            .to_string()
            .contains("'ttl_s': 59 is not between 60 and 31536000"));
    }
}
