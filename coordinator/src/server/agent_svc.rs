//! `fleetcal.v1.AgentService` over [`Coordinator`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fleetcal_proto::pb;
use fleetcal_proto::pb::agent_service_server::AgentService;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::auth;
use super::convert::caps_from_pb;
use super::core::{Coordinator, Registration, UploadBody};
use super::drift_checks::DriftChecks;
use super::enroll::Approval;
use super::registry::{DirectiveItem, SessionGuard};
use crate::model::{now_ms, StoreOutcome};
use crate::store::Store;
use crate::validate;

/// The agent-facing service.
pub struct AgentSvc<S> {
    /// The coordinator.
    pub core: Arc<Coordinator<S>>,
    /// The fleet CA with its key (`--ca-key`), which signs enrolled agents' certificates;
    /// `None`: no enrollment.
    pub authority: Option<Arc<crate::pki::Authority>>,
    /// The drift checks' turns after uploads ([`DriftChecks`]).
    pub drift_checks: Arc<DriftChecks>,
}

/// A directive stream that ends the agent's session when dropped.
pub struct SessionStream {
    rx: ReceiverStream<DirectiveItem>,
    _guard: SessionGuard,
}

impl Stream for SessionStream {
    type Item = DirectiveItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

#[tonic::async_trait]
impl<S: Store> AgentService for AgentSvc<S> {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let caller = self.caller(&request);
        let cert_not_after = auth::peer_not_after(&request);
        let r = request.into_inner();
        self.admit(&caller, &r.agent_id, "Register")?;
        validate::id("instance", &r.instance)?;
        let agent_id = r.agent_id.clone();
        let matched = self
            .core
            .register(
                Registration {
                    agent_id: r.agent_id,
                    hostname: r.hostname,
                    labels: r.labels.into_iter().collect(),
                    preset: r.preset,
                    capabilities: caps_from_pb(r.capabilities.unwrap_or_default()),
                    agent_version: r.agent_version,
                },
                now_ms(),
            )
            .await?;
        if let Some(not_after) = cert_not_after {
            self.core
                .saw_certificate(&agent_id, not_after, now_ms())
                .await?;
        }
        Ok(Response::new(pb::RegisterResponse {
            heartbeat_interval_s: self.core.settings.heartbeat_interval_s,
            matched_preset: matched,
            coordinator_version: env!("CARGO_PKG_VERSION").into(),
            accepts_packed_results: true,
        }))
    }

    type SubscribeStream = SessionStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = self.caller(&request);
        let r = request.into_inner();
        let agent_id = r.agent_id;
        validate::id("agent_id", &agent_id)?;
        validate::id("instance", &r.instance)?;
        self.admit(&caller, &agent_id, "Subscribe")?;
        let (conn, rx) = self
            .core
            .subscribe(&agent_id, &r.instance, now_ms())
            .await?;
        let wake = self.core.wake.clone();
        let guard = SessionGuard {
            registry: self.core.registry.clone(),
            agent_id,
            conn,
            on_close: Box::new(move || wake.notify_one()),
        };
        Ok(Response::new(SessionStream {
            rx: ReceiverStream::new(rx),
            _guard: guard,
        }))
    }

    async fn report_progress(
        &self,
        request: Request<pb::Progress>,
    ) -> Result<Response<pb::ProgressResponse>, Status> {
        let caller = self.caller(&request);
        let p = request.into_inner();
        validate::id("agent_id", &p.agent_id)?;
        validate::id("run_id", &p.run_id)?;
        self.admit(&caller, &p.agent_id, "ReportProgress")?;
        let failed = match pb::RunState::try_from(p.state) {
            Ok(pb::RunState::Running) => false,
            Ok(pb::RunState::Failed) => true,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "field 'state': {} is not RUNNING or FAILED",
                    p.state
                )))
            }
        };
        let still_wanted = self
            .core
            .progress(
                &p.agent_id,
                &p.run_id,
                failed,
                p.fraction,
                &validate::message(&p.message),
                now_ms(),
            )
            .await?;
        Ok(Response::new(pb::ProgressResponse { still_wanted }))
    }

    async fn upload_result(
        &self,
        request: Request<pb::UploadRequest>,
    ) -> Result<Response<pb::UploadResponse>, Status> {
        let caller = self.caller(&request);
        let u = request.into_inner();
        validate::id("agent_id", &u.agent_id)?;
        validate::id("run_id", &u.run_id)?;
        self.admit(&caller, &u.agent_id, "UploadResult")?;
        let body = match (u.result_json.is_empty(), u.result_packed.is_empty()) {
            (_, true) => UploadBody::Json(&u.result_json),
            (true, false) => UploadBody::Packed(&u.result_packed),
            (false, false) => {
                return Err(Status::invalid_argument(
                    "fields 'result_json' and 'result_packed': set one, not both",
                ))
            }
        };
        let (outcome, run) = self
            .core
            .upload(&u.agent_id, &u.run_id, body, now_ms())
            .await?;
        let stored_at = now_ms();
        self.drift_checks.uploaded(stored_at);
        if outcome == StoreOutcome::Stored {
            // The drift of the board is evaluated after the answer, once the uploads pause
            // ([`DriftChecks`]), so an upload's latency (and the agent's spool) does not wait
            // for it.
            let core = Arc::clone(&self.core);
            let checks = Arc::clone(&self.drift_checks);
            tokio::spawn(async move {
                // The slots are never closed: `None` cannot happen, and would skip nothing
                // but this check (the board's next result is checked again).
                let Some(_slot) = checks.turn(stored_at, now_ms).await else {
                    return;
                };
                if let Err(e) = core.after_result(&run, now_ms()).await {
                    tracing::warn!(run = %run.run_id, error = %e, "drift evaluation failed");
                }
            });
        }
        Ok(Response::new(pb::UploadResponse {
            stored: outcome == StoreOutcome::Stored,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let caller = self.caller(&request);
        let agent_id = request.into_inner().agent_id;
        validate::id("agent_id", &agent_id)?;
        self.admit(&caller, &agent_id, "Heartbeat")?;
        self.core.heartbeat(&agent_id, now_ms()).await?;
        Ok(Response::new(pb::HeartbeatResponse {}))
    }

    async fn enroll(
        &self,
        request: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        // Anyone may ask: the join token is what admits the caller.
        let r = request.into_inner();
        let Some(authority) = &self.authority else {
            return Err(Status::failed_precondition(
                "this coordinator enrolls no agents (it was started without --ca-key)",
            ));
        };
        if r.join_token.is_empty() {
            // No token: the request waits for an operator (`fleetctl agents approve`).
            let answer = self
                .core
                .request_approval(authority, &r.agent_id, &r.hostname, &r.csr_pem, now_ms())
                .await?;
            return Ok(Response::new(match answer {
                Approval::Pending(key_fingerprint) => pb::EnrollResponse {
                    pending: true,
                    key_fingerprint,
                    ..Default::default()
                },
                Approval::Issued(certificate_pem, not_after) => pb::EnrollResponse {
                    certificate_pem,
                    not_after: crate::model::rfc3339(not_after),
                    ..Default::default()
                },
            }));
        }
        let (certificate_pem, not_after, labels) = self
            .core
            .enroll(authority, &r.agent_id, &r.join_token, &r.csr_pem, now_ms())
            .await?;
        Ok(Response::new(pb::EnrollResponse {
            certificate_pem,
            not_after: crate::model::rfc3339(not_after),
            labels: labels.into_iter().collect(),
            ..Default::default()
        }))
    }

    async fn renew(
        &self,
        request: Request<pb::RenewRequest>,
    ) -> Result<Response<pb::RenewResponse>, Status> {
        let caller = self.caller(&request);
        let r = request.into_inner();
        validate::id("agent_id", &r.agent_id)?;
        caller.admit_renewal(&r.agent_id)?;
        self.admit(&caller, &r.agent_id, "Renew")?;
        let Some(authority) = &self.authority else {
            return Err(Status::failed_precondition(
                "this coordinator renews no certificates (it was started without --ca-key)",
            ));
        };
        let (certificate_pem, not_after) = self
            .core
            .renew(authority, &r.agent_id, &r.csr_pem, now_ms())
            .await?;
        Ok(Response::new(pb::RenewResponse {
            certificate_pem,
            not_after: crate::model::rfc3339(not_after),
        }))
    }
}

impl<S> AgentSvc<S> {
    /// Refuses `call` as `agent_id` unless `caller` may act as that agent ([`auth`]) and the
    /// agent is not revoked.
    fn admit(&self, caller: &auth::Caller, agent_id: &str, call: &str) -> Result<(), Status> {
        caller.admit_agent(agent_id, call)?;
        if self.core.registry.is_revoked(agent_id) {
            return Err(crate::Error::Denied {
                caller: format!("agent {}", fleetcal_proto::quote::quoted(agent_id)),
                attempt: format!("call {call}: it is revoked (fleetctl agents revoke)"),
            }
            .into());
        }
        Ok(())
    }

    /// Who made `request` ([`auth`]).
    fn caller<T>(&self, request: &Request<T>) -> auth::Caller {
        auth::caller(request, auth::roles_enforced(&self.core.settings))
    }
}
