//! fleetctl's connection to the coordinator.

use fleetcal_proto::dial::{self, connect_hint, ClientTlsFiles};
use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::Error;

/// The admin client fleetctl uses.
pub type Admin = AdminServiceClient<Channel>;

/// Connects to the coordinator at `url` (`http://HOST:PORT`, or `https://HOST:PORT` with
/// `tls`) and checks that it answers (see [`check`]).
pub async fn connect(url: &str, tls: Option<&ClientTlsFiles>) -> Result<Channel, Error> {
    let channel = dial::endpoint(url, tls)?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|source| Error::Transport {
            target: url.to_string(),
            source,
            hint: connect_hint(tls),
        })?;
    check(url, tls, channel.clone()).await?;
    Ok(channel)
}

/// Connects to the first of `urls` (several coordinators of one fleet, in the order given)
/// that connects and answers (see [`connect`]); returns its URL and channel. A coordinator
/// passed over is said on stderr; when none answers, the last one's error.
pub async fn connect_any(
    urls: &[String],
    tls: Option<&ClientTlsFiles>,
) -> Result<(String, Channel), Error> {
    let mut last = None;
    for (i, url) in urls.iter().enumerate() {
        match connect(url, tls).await {
            Ok(channel) => return Ok((url.clone(), channel)),
            Err(e) => {
                if let Some(next) = urls.get(i + 1) {
                    eprintln!("fleetctl: {e}; trying {next}");
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::from(fleetcal_proto::dial::DialError::UrlCount { count: 0 })))
}

/// An admin client of `url` that connects at its first call (a coordinator to fall back on).
pub fn lazy_admin(url: &str, tls: Option<&ClientTlsFiles>) -> Result<Admin, Error> {
    let channel = dial::endpoint(url, tls)?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy();
    Ok(admin(channel))
}

/// The admin client over a connected channel.
pub fn admin(channel: Channel) -> Admin {
    AdminServiceClient::new(channel)
        .max_decoding_message_size(pb::MAX_ADMIN_ANSWER_BYTES)
        .max_encoding_message_size(pb::MAX_MESSAGE_BYTES)
}

/// Follows a paged listing to its end: `fetch(token)` returns one page's items and the next
/// token ("" on the last page). A coordinator that hands back the token it was given would
/// loop forever; that is an error instead.
async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, Error>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), Error>>,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = fetch(token.clone()).await?;
        out.extend(items);
        if next.is_empty() {
            return Ok(out);
        }
        if next == token {
            return Err(Error::Remote(tonic::Status::internal(
                "the coordinator returned the same page token twice",
            )));
        }
        token = next;
    }
}

/// Every registered agent, following `ListAgents` pages, sorted by host name then id.
pub async fn all_agents(admin: &mut Admin) -> Result<Vec<pb::Agent>, Error> {
    let mut agents = all_pages(|page_token| {
        let mut admin = admin.clone();
        async move {
            let r = admin
                .list_agents(pb::ListAgentsRequest {
                    page_size: 0,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((r.agents, r.next_page_token))
        }
    })
    .await?;
    agents.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    Ok(agents)
}

/// Every run (of one campaign, or of all), following `ListRuns` pages, in listing order.
pub async fn all_runs(
    admin: &mut Admin,
    campaign_id: Option<String>,
) -> Result<Vec<pb::Run>, Error> {
    all_pages(|page_token| {
        let mut admin = admin.clone();
        let campaign_id = campaign_id.clone();
        async move {
            let r = admin
                .list_runs(pb::ListRunsRequest {
                    campaign_id,
                    page_size: 0,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((r.runs, r.next_page_token))
        }
    })
    .await
}

/// Every campaign (of one schedule, or all), following `ListCampaigns` pages, newest first.
pub async fn all_campaigns(
    admin: &mut Admin,
    schedule: Option<String>,
) -> Result<Vec<pb::Campaign>, Error> {
    all_pages(|page_token| {
        let mut admin = admin.clone();
        let schedule = schedule.clone();
        async move {
            let r = admin
                .list_campaigns(pb::ListCampaignsRequest {
                    schedule,
                    page_size: 0,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((r.campaigns, r.next_page_token))
        }
    })
    .await
}

/// Asks the coordinator's health service for the whole server (`""`); returns its status
/// name (`SERVING`, `NOT_SERVING`, ...).
///
/// With TLS 1.3 a connection whose client certificate the server refuses looks established
/// until the first call, and a plain-http client talking to a TLS server only fails then too:
/// this first call turns both into an [`Error::Unreachable`] that says what happened.
pub async fn check(
    url: &str,
    tls: Option<&ClientTlsFiles>,
    channel: Channel,
) -> Result<String, Error> {
    let mut health = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: String::new(),
    };
    match health.check(request).await {
        Ok(response) => Ok(ServingStatus::try_from(response.into_inner().status)
            .unwrap_or(ServingStatus::Unknown)
            .as_str_name()
            .to_string()),
        // A server without the health service is still a server that answered.
        Err(status) if status.code() == tonic::Code::Unimplemented => Ok("UNKNOWN".into()),
        Err(status) => Err(Error::Unreachable {
            target: url.to_string(),
            message: dial::status_chain(&status),
            hint: connect_hint(tls),
        }),
    }
}
