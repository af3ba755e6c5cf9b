//! Certificate renewal and expiry: an enrolled agent renews its certificate before it expires
//! (`AgentService.Renew`, authenticated by the certificate it holds, [`super::auth`]), and the
//! coordinator records when each agent's certificate expires — the one it presented on
//! Register, or the one it was just issued — so that `fleetctl agents` shows it.

use super::core::{AgentStatus, Coordinator};
use super::enroll::check_csr_size;
use crate::model::Millis;
use crate::pki::Authority;
use crate::store::{Page, Store};
use crate::{validate, Error};

impl<S: Store> Coordinator<S> {
    /// Signs a new certificate for agent `agent_id` over the key of `csr_pem`, valid for the
    /// configured agent certificate lifetime from `now`, and records its expiry. The service
    /// has admitted the caller first ([`super::auth::Caller::admit_renewal`]: the agent's own
    /// certificate, not revoked). Refused (nothing signed) for a bad request. Returns the
    /// certificate (PEM) and its expiry.
    pub async fn renew(
        &self,
        authority: &Authority,
        agent_id: &str,
        csr_pem: &str,
        now: Millis,
    ) -> Result<(String, Millis), Error> {
        validate::agent_id(agent_id)?;
        check_csr_size(csr_pem)?;
        let lifetime_s = i64::from(self.settings.agent_cert_lifetime_s);
        let cert = authority.sign_agent_csr(agent_id, csr_pem, now.div_euclid(1000), lifetime_s)?;
        let not_after = fleetcal_proto::role::of_pem(cert.as_bytes())
            .map(|c| c.not_after.saturating_mul(1000))
            .unwrap_or_else(|_| now.saturating_add(lifetime_s.saturating_mul(1000)));
        self.store
            .record_certificate(agent_id, not_after, now)
            .await?;
        tracing::info!(
            agent = %agent_id,
            not_after = %crate::model::rfc3339(not_after),
            "agent certificate renewed"
        );
        Ok((cert, not_after))
    }

    /// Records that agent `agent_id` presented a certificate expiring at `not_after` (Unix
    /// milliseconds) at `now`.
    pub async fn saw_certificate(
        &self,
        agent_id: &str,
        not_after: Millis,
        now: Millis,
    ) -> Result<(), Error> {
        self.store
            .record_certificate(agent_id, not_after, now)
            .await
    }

    /// Fills in the recorded certificate expiry of each agent of `page`.
    pub(super) async fn with_certificate_expiries(
        &self,
        mut page: Page<String, AgentStatus>,
    ) -> Result<Page<String, AgentStatus>, Error> {
        // A page is in agent id order: its first and last ids bound it.
        let id = |item: Option<&(String, AgentStatus)>| item.map(|(_, s)| s.agent.agent_id.clone());
        let (Some(first), Some(last)) = (id(page.items.first()), id(page.items.last())) else {
            return Ok(page);
        };
        let expiries: std::collections::HashMap<String, Millis> = self
            .store
            .certificate_expiries(&first, &last)
            .await?
            .into_iter()
            .collect();
        for (_, status) in &mut page.items {
            status.cert_not_after = expiries.get(&status.agent.agent_id).copied();
        }
        Ok(page)
    }
}
