//! Join tokens (`fleetctl token create`): a secret an operator hands to new boards so they can
//! enroll. Only its SHA-256 is stored ([`crate::store::JoinToken`]); the token is shown once.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use super::core::Coordinator;
use crate::domain::DomainError;
use crate::model::Millis;
use crate::pki::Authority;
use crate::store::{JoinToken, Redeemed, Store};
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
        if self.registry.is_revoked(agent_id) || self.store.agent(agent_id).await?.is_some() {
            return Err(Error::Denied {
                caller: format!("enrollment of agent '{agent_id}'"),
                attempt: "take the id of a known agent (remove it first, or enroll a fresh \
                          state directory)"
                    .into(),
            });
        }
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
