//! `fleetcal.v1.AdminService` over [`Coordinator`]: every call goes through the core's use
//! cases (no direct store access here), with the clock read at this edge.

use std::sync::Arc;

use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use super::alerts::{parse_states, AlertAction};
use super::auth;
use super::convert::{
    agent_token, agents_page_to_pb, alert_to_pb, campaign_to_pb, campaign_token,
    campaigns_page_to_pb, page_size, report_from_pb, run_token, runs_page_to_pb, schedule_from_pb,
    schedule_to_pb, spec_from_pb,
};
use super::core::Coordinator;
use crate::aggregate::counts_by_state;
use crate::model::{now_ms, rfc3339};
use crate::store::Store;
use crate::validate;

/// The operator-facing service.
pub struct AdminSvc<S> {
    /// The coordinator.
    pub core: Arc<Coordinator<S>>,
}

/// The stream of `ExportResults`.
pub type ResultStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::ResultFile, Status>>>;

#[tonic::async_trait]
impl<S: Store> AdminService for AdminSvc<S> {
    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        self.admit(&request, "ListAgents")?;
        let r = request.into_inner();
        let after = agent_token(&r.page_token)?;
        let page = self
            .core
            .agents_page(after.as_deref(), page_size(r.page_size), now_ms())
            .await?;
        Ok(Response::new(agents_page_to_pb(page)))
    }

    async fn remove_agent(
        &self,
        request: Request<pb::RemoveAgentRequest>,
    ) -> Result<Response<pb::RemoveAgentResponse>, Status> {
        self.admit(&request, "RemoveAgent")?;
        let id = request.into_inner().agent_id;
        validate::id("agent_id", &id)?;
        let failed = self.core.remove_agent(&id, now_ms()).await?;
        Ok(Response::new(pb::RemoveAgentResponse {
            failed_runs: u32::try_from(failed).unwrap_or(u32::MAX),
        }))
    }

    async fn start_campaign(
        &self,
        request: Request<pb::StartCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.admit(&request, "StartCampaign")?;
        let spec = spec_from_pb(request.into_inner())?;
        let (campaign, runs) = self.core.start_campaign(spec, now_ms()).await?;
        Ok(Response::new(campaign_to_pb(
            &campaign,
            &counts_by_state(&runs),
        )))
    }

    async fn get_campaign(
        &self,
        request: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.admit(&request, "GetCampaign")?;
        let id = request.into_inner().id;
        validate::id("id", &id)?;
        let (campaign, runs) = self.core.campaign(&id).await?;
        Ok(Response::new(campaign_to_pb(
            &campaign,
            &counts_by_state(&runs),
        )))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        self.admit(&request, "ListRuns")?;
        let r = request.into_inner();
        if let Some(id) = &r.campaign_id {
            validate::id("campaign_id", id)?;
        }
        let after = run_token(&r.page_token)?;
        let page = self
            .core
            .runs_page(
                r.campaign_id.as_deref(),
                after.as_ref(),
                page_size(r.page_size),
            )
            .await?;
        Ok(Response::new(runs_page_to_pb(page)))
    }

    async fn list_campaigns(
        &self,
        request: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        self.admit(&request, "ListCampaigns")?;
        let r = request.into_inner();
        if let Some(name) = &r.schedule {
            validate::schedule_name("schedule", name)?;
        }
        let after = campaign_token(&r.page_token)?;
        let page = self
            .core
            .campaigns_page(
                r.schedule.as_deref(),
                after.as_ref(),
                page_size(r.page_size),
            )
            .await?;
        Ok(Response::new(campaigns_page_to_pb(page)))
    }

    async fn add_schedule(
        &self,
        request: Request<pb::AddScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        self.admit(&request, "AddSchedule")?;
        let (name, spec) = schedule_from_pb(request.into_inner())?;
        let added = self.core.add_schedule(&name, spec, now_ms()).await?;
        Ok(Response::new(schedule_to_pb(added)))
    }

    async fn list_schedules(
        &self,
        _request: Request<pb::ListSchedulesRequest>,
    ) -> Result<Response<pb::ListSchedulesResponse>, Status> {
        self.admit(&_request, "ListSchedules")?;
        let schedules = self.core.schedules(now_ms()).await?;
        Ok(Response::new(pb::ListSchedulesResponse {
            schedules: schedules.into_iter().map(schedule_to_pb).collect(),
        }))
    }

    async fn remove_schedule(
        &self,
        request: Request<pb::RemoveScheduleRequest>,
    ) -> Result<Response<pb::RemoveScheduleResponse>, Status> {
        self.admit(&request, "RemoveSchedule")?;
        let name = request.into_inner().name;
        validate::schedule_name("name", &name)?;
        self.core.remove_schedule(&name).await?;
        Ok(Response::new(pb::RemoveScheduleResponse {}))
    }

    async fn set_schedule_paused(
        &self,
        request: Request<pb::SetSchedulePausedRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        self.admit(&request, "SetSchedulePaused")?;
        let r = request.into_inner();
        validate::schedule_name("name", &r.name)?;
        let schedule = self
            .core
            .set_schedule_paused(&r.name, r.paused, now_ms())
            .await?;
        Ok(Response::new(schedule_to_pb(schedule)))
    }

    async fn run_schedule_now(
        &self,
        request: Request<pb::RunScheduleNowRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.admit(&request, "RunScheduleNow")?;
        let name = request.into_inner().name;
        validate::schedule_name("name", &name)?;
        let (campaign, runs) = self.core.run_schedule_now(&name, now_ms()).await?;
        Ok(Response::new(campaign_to_pb(
            &campaign,
            &counts_by_state(&runs),
        )))
    }

    type ExportResultsStream = ResultStream;

    async fn export_results(
        &self,
        request: Request<pb::ExportResultsRequest>,
    ) -> Result<Response<Self::ExportResultsStream>, Status> {
        self.admit(&request, "ExportResults")?;
        let id = request.into_inner().campaign_id;
        validate::id("campaign_id", &id)?;
        let files: Vec<Result<pb::ResultFile, Status>> = self
            .core
            .results(&id)
            .await
            .map_err(Status::from)
            .map(|rows| {
                rows.into_iter()
                    .map(|(run, json)| {
                        Ok(pb::ResultFile {
                            agent_id: run.agent_id,
                            hostname: run.hostname,
                            framework: run.framework.as_str().into(),
                            device: run.device.as_str().into(),
                            result_json: json.into_bytes(),
                            run_id: run.run_id,
                        })
                    })
                    .collect()
            })?;
        Ok(Response::new(tokio_stream::iter(files)))
    }

    async fn report(
        &self,
        request: Request<pb::ReportRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        self.admit(&request, "Report")?;
        let (kind, query) = report_from_pb(request.into_inner())?;
        let now = now_ms();
        let report = self.core.report(kind, &query, now).await?;
        let started = std::time::Instant::now();
        let model_json = serde_json::to_vec(&report)
            .map_err(|e| Status::internal(format!("the {kind} report cannot be encoded: {e}")))?;
        tracing::debug!(
            report = kind.as_str(),
            bytes = model_json.len(),
            encode_ms = started.elapsed().as_millis(),
            "report encoded"
        );
        Ok(Response::new(pb::ReportResponse {
            kind: kind.as_str().to_string(),
            model_json,
            generated_at: rfc3339(report.generated_at()),
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        self.admit(&request, "ListAlerts")?;
        let states = parse_states("states", &request.into_inner().states)?;
        let alerts = self.core.alerts(&states).await?;
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: alerts.into_iter().map(alert_to_pb).collect(),
        }))
    }

    async fn ack_alert(
        &self,
        request: Request<pb::AlertActionRequest>,
    ) -> Result<Response<pb::Alert>, Status> {
        self.admit(&request, "AckAlert")?;
        self.act(request.into_inner(), AlertAction::Ack).await
    }

    async fn dismiss_alert(
        &self,
        request: Request<pb::AlertActionRequest>,
    ) -> Result<Response<pb::Alert>, Status> {
        self.admit(&request, "DismissAlert")?;
        self.act(request.into_inner(), AlertAction::Dismiss).await
    }

    async fn create_join_token(
        &self,
        request: Request<pb::CreateJoinTokenRequest>,
    ) -> Result<Response<pb::CreateJoinTokenResponse>, Status> {
        self.admit(&request, "CreateJoinToken")?;
        Ok(Response::new(
            self.create_token(request.into_inner()).await?,
        ))
    }

    async fn revoke_agent(
        &self,
        request: Request<pb::RevokeAgentRequest>,
    ) -> Result<Response<pb::RevokeAgentResponse>, Status> {
        self.admit(&request, "RevokeAgent")?;
        let id = request.into_inner().agent_id;
        let known = self.core.revoke_agent(&id, now_ms()).await?;
        Ok(Response::new(pb::RevokeAgentResponse { known }))
    }

    async fn release_agent(
        &self,
        request: Request<pb::ReleaseAgentRequest>,
    ) -> Result<Response<pb::ReleaseAgentResponse>, Status> {
        self.admit(&request, "ReleaseAgent")?;
        let id = request.into_inner().agent_id;
        let was_quarantined = self.core.release_agent(&id).await?;
        Ok(Response::new(pb::ReleaseAgentResponse { was_quarantined }))
    }

    async fn list_pending_agents(
        &self,
        request: Request<pb::ListPendingAgentsRequest>,
    ) -> Result<Response<pb::ListPendingAgentsResponse>, Status> {
        self.admit(&request, "ListPendingAgents")?;
        let pending = self.core.pending_enrollments().await?;
        Ok(Response::new(pb::ListPendingAgentsResponse {
            pending: pending.iter().map(pending_to_pb).collect(),
        }))
    }

    async fn approve_agent(
        &self,
        request: Request<pb::DecideAgentRequest>,
    ) -> Result<Response<pb::DecideAgentResponse>, Status> {
        self.admit(&request, "ApproveAgent")?;
        self.decide(request.into_inner(), true).await
    }

    async fn deny_agent(
        &self,
        request: Request<pb::DecideAgentRequest>,
    ) -> Result<Response<pb::DecideAgentResponse>, Status> {
        self.admit(&request, "DenyAgent")?;
        self.decide(request.into_inner(), false).await
    }
}

/// An enrollment request as the admin service shows it.
fn pending_to_pb(r: &crate::store::EnrollmentRequest) -> pb::PendingAgent {
    pb::PendingAgent {
        agent_id: r.agent_id.clone(),
        hostname: r.hostname.clone(),
        key_fingerprint: r.key_fingerprint.clone(),
        requested_at: rfc3339(r.requested_at),
    }
}

impl<S: Store> AdminSvc<S> {
    /// `ApproveAgent` (`approve`) or `DenyAgent`.
    async fn decide(
        &self,
        r: pb::DecideAgentRequest,
        approve: bool,
    ) -> Result<Response<pb::DecideAgentResponse>, Status> {
        let decided = self
            .core
            .decide_enrollment(&r.agent_id, approve, now_ms())
            .await?;
        Ok(Response::new(pb::DecideAgentResponse {
            request: Some(pending_to_pb(&decided)),
        }))
    }

    async fn create_token(
        &self,
        r: pb::CreateJoinTokenRequest,
    ) -> Result<pb::CreateJoinTokenResponse, Status> {
        let labels = r.labels.into_iter().collect();
        let (token, stored) = self
            .core
            .create_join_token(r.ttl_s, r.uses, labels, now_ms())
            .await?;
        Ok(pb::CreateJoinTokenResponse {
            token,
            expires_at: rfc3339(stored.expires_at),
            uses: stored.uses_left,
        })
    }

    /// Refuses `call` unless its caller may call the admin service ([`auth`]).
    fn admit<T>(&self, request: &Request<T>, call: &str) -> Result<(), Status> {
        auth::caller(request, auth::roles_enforced(&self.core.settings))
            .admit_admin(call)
            .map_err(Status::from)
    }

    async fn act(
        &self,
        r: pb::AlertActionRequest,
        action: AlertAction,
    ) -> Result<Response<pb::Alert>, Status> {
        validate::id("id", &r.id)?;
        let alert = self
            .core
            .act_on_alert(&r.id, action, &r.note, now_ms())
            .await?;
        Ok(Response::new(alert_to_pb(alert)))
    }
}
