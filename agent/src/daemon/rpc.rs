//! The agent's calls to the coordinator, each bounded by the RPC timeout.
//!
//! tonic's lazy channel reconnects by itself, so one [`Rpc`] serves the whole life of the
//! daemon; a call that cannot reach the coordinator fails with UNAVAILABLE (or
//! DEADLINE_EXCEEDED when the peer stops answering) and the link state machine backs off.
//! After a certificate renewal [`Rpc::redial`] replaces the channels (every clone's) with
//! ones that present the new certificate.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fleetcal_proto::dial;
use fleetcal_proto::pb::agent_service_client::AgentServiceClient;
use fleetcal_proto::pb::{
    Directive, HeartbeatRequest, Progress, RegisterRequest, RegisterResponse, RenewRequest,
    RenewResponse, RunState, SubscribeRequest, UploadRequest, UploadResponse, MAX_MESSAGE_BYTES,
};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use super::link;
use super::options::RunOptions;
use crate::AgentError;

/// A client of the fleet's coordinators for one agent id: one lazy channel per coordinator
/// URL, calls going to the current one (shared by every clone: the link, the worker and the
/// uploader talk to the same coordinator), which [`Rpc::move_on`] advances after a failure.
#[derive(Debug, Clone)]
pub struct Rpc {
    /// The clients, replaced as a whole by [`Rpc::redial`].
    channels: Arc<RwLock<Channels>>,
    urls: Arc<[String]>,
    current: Arc<AtomicUsize>,
    agent_id: String,
    /// This process's nonce (random per start): the coordinator tells two processes claiming
    /// one agent id (a cloned state directory) apart by it.
    instance: String,
    timeout: Duration,
    /// What [`Rpc::describe`] adds to a failure to talk at all: the likely TLS mismatch.
    hint: &'static str,
    /// Per coordinator (as `urls`), whether its last registration said it takes results in
    /// the packed form (`RegisterResponse.accepts_packed_results`).
    packed: Arc<[AtomicBool]>,
}

/// One lazy client per coordinator URL.
#[derive(Debug)]
struct Channels {
    /// The client of `opts.coordinator` (also in `clients`).
    primary: AgentServiceClient<Channel>,
    clients: Vec<AgentServiceClient<Channel>>,
}

/// The coordinator URLs of `opts`: `opts.coordinators`, or `opts.coordinator` alone.
fn urls_of(opts: &RunOptions) -> Vec<String> {
    if opts.coordinators.is_empty() {
        vec![opts.coordinator.clone()]
    } else {
        opts.coordinators.clone()
    }
}

impl Channels {
    /// Lazy clients of `urls` with the TLS files of `opts` (read now).
    fn dial(opts: &RunOptions, urls: &[String]) -> Result<Channels, AgentError> {
        let make = |url: &str| -> Result<AgentServiceClient<Channel>, AgentError> {
            let endpoint = super::clock::endpoint(url, opts.tls.as_ref())?
                .connect_timeout(opts.rpc_timeout)
                .http2_keep_alive_interval(opts.keepalive)
                .keep_alive_timeout(opts.rpc_timeout)
                .keep_alive_while_idle(true);
            Ok(AgentServiceClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES))
        };
        let primary = make(&opts.coordinator)?;
        let mut clients = Vec::with_capacity(urls.len());
        for url in urls {
            clients.push(if *url == opts.coordinator {
                primary.clone()
            } else {
                make(url)?
            });
        }
        Ok(Channels { primary, clients })
    }
}

impl Rpc {
    /// A lazily connecting client (nothing is dialled until the first call) of every
    /// coordinator in `opts.coordinators`, starting at [`link::first_target`] of the agent id.
    pub fn new(opts: &RunOptions, agent_id: &str) -> Result<Rpc, AgentError> {
        let urls = urls_of(opts);
        let urls_len = urls.len();
        let channels = Channels::dial(opts, &urls)?;
        let first = link::first_target(agent_id, urls.len());
        Ok(Rpc {
            channels: Arc::new(RwLock::new(channels)),
            urls: urls.into(),
            current: Arc::new(AtomicUsize::new(first)),
            agent_id: agent_id.to_string(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            timeout: opts.rpc_timeout,
            hint: dial::connect_hint(opts.tls.as_ref()),
            packed: (0..urls_len).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    /// A failed call as the log shows it: the code, the message and its cause chain (a TLS
    /// alert, an HTTP/2 error), and for a failure to talk at all a hint about TLS settings.
    pub fn describe(&self, status: &Status) -> String {
        let transport = matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
        ) && std::error::Error::source(status).is_some();
        let hint = if transport { self.hint } else { "" };
        format!("{:?}: {}{hint}", status.code(), dial::status_chain(status))
    }

    /// The agent id the calls carry.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The URL of the coordinator the calls go to now.
    pub fn target(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed);
        self.urls
            .get(i)
            .or(self.urls.first())
            .map_or("", String::as_str)
    }

    /// After a failure of the link: the calls go to the next coordinator
    /// ([`link::next_target`]); returns its URL. With one coordinator nothing changes.
    pub fn move_on(&self) -> &str {
        let count = self.urls.len();
        let _ = self
            .current
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
                Some(link::next_target(i, count))
            });
        self.target()
    }

    fn client(&self) -> AgentServiceClient<Channel> {
        let i = self.current.load(Ordering::Relaxed);
        let channels = self
            .channels
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        channels.clients.get(i).unwrap_or(&channels.primary).clone()
    }

    /// Replaces the channels of every clone with new ones dialled with `opts`' TLS files,
    /// read again now (after a renewal wrote a new key and certificate): later calls present
    /// the new certificate. Calls and streams already open finish on the old connections.
    pub fn redial(&self, opts: &RunOptions) -> Result<(), AgentError> {
        let fresh = Channels::dial(opts, &self.urls)?;
        *self
            .channels
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// This process's nonce, sent with Register and Subscribe.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Register (or re-register) this agent.
    pub async fn register(&self, req: RegisterRequest) -> Result<RegisterResponse, Status> {
        let index = self.current.load(Ordering::SeqCst);
        let mut c = self.client();
        let answer = self.bounded(c.register(req)).await?;
        if let Some(flag) = self.packed.get(index) {
            flag.store(answer.accepts_packed_results, Ordering::SeqCst);
        }
        Ok(answer)
    }

    /// Open the directive stream.
    pub async fn subscribe(&self) -> Result<Streaming<Directive>, Status> {
        let mut c = self.client();
        let req = SubscribeRequest {
            agent_id: self.agent_id.clone(),
            instance: self.instance.clone(),
        };
        self.bounded(c.subscribe(req)).await
    }

    /// Tell the coordinator this agent is alive (while the directive stream is open: an open
    /// stream alone may be a half-open connection).
    pub async fn heartbeat(&self) -> Result<(), Status> {
        let mut c = self.client();
        let req = HeartbeatRequest {
            agent_id: self.agent_id.clone(),
        };
        self.bounded(c.heartbeat(req)).await.map(|_| ())
    }

    /// Report a run's state; returns whether the run is still wanted.
    pub async fn report(
        &self,
        run_id: &str,
        state: RunState,
        message: &str,
    ) -> Result<bool, Status> {
        let mut c = self.client();
        let req = Progress {
            agent_id: self.agent_id.clone(),
            run_id: run_id.to_string(),
            state: state as i32,
            fraction: 0.0,
            message: message.to_string(),
        };
        self.bounded(c.report_progress(req))
            .await
            .map(|r| r.still_wanted)
    }

    /// Ask for a new certificate for the key of `csr_pem` (the current one authenticates).
    pub async fn renew(&self, csr_pem: String) -> Result<RenewResponse, Status> {
        let mut c = self.client();
        let req = RenewRequest {
            agent_id: self.agent_id.clone(),
            csr_pem,
        };
        self.bounded(c.renew(req)).await
    }

    /// Upload a result document: in the packed form when the coordinator takes it
    /// ([`fleetcal_proto::document::encode_upload`]: ~9 KB for a quick result's ~270 KB of
    /// JSON, and the coordinator stores it as it comes), else as JSON. A packed upload the
    /// coordinator refuses as invalid is sent again as JSON, so that a coordinator that
    /// changed since the registration loses nothing; the JSON's answer is the answer.
    pub async fn upload(&self, run_id: &str, json: String) -> Result<Uploaded, Status> {
        let index = self.current.load(Ordering::SeqCst);
        let takes_packed = self
            .packed
            .get(index)
            .is_some_and(|f| f.load(Ordering::SeqCst));
        if let Some(packed) = takes_packed
            .then(|| fleetcal_proto::document::encode_upload(&json))
            .flatten()
        {
            let mut c = self.client();
            let bytes = packed.len();
            let req = UploadRequest {
                agent_id: self.agent_id.clone(),
                run_id: run_id.to_string(),
                result_json: Default::default(),
                result_packed: packed.into(),
            };
            match self.bounded(c.upload_result(req)).await {
                Err(e) if e.code() == Code::InvalidArgument => tracing::warn!(
                    run = %run_id, error = %e.message(),
                    "the coordinator refused the packed result; sending its JSON"
                ),
                answer => {
                    return answer.map(|answer| Uploaded {
                        answer,
                        form: "packed",
                        bytes,
                    })
                }
            }
        }
        let mut c = self.client();
        let bytes = json.len();
        let req = UploadRequest {
            agent_id: self.agent_id.clone(),
            run_id: run_id.to_string(),
            result_json: json.into_bytes().into(),
            result_packed: Default::default(),
        };
        self.bounded(c.upload_result(req))
            .await
            .map(|answer| Uploaded {
                answer,
                form: "json",
                bytes,
            })
    }
}

/// A result the coordinator answered ([`Rpc::upload`]).
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// Its answer.
    pub answer: UploadResponse,
    /// How it went: `packed` or `json`.
    pub form: &'static str,
    /// The bytes sent.
    pub bytes: usize,
}

/// Whether the coordinator refused for good (retrying the same upload cannot succeed).
pub fn is_permanent(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument | Code::NotFound | Code::PermissionDenied | Code::ResourceExhausted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_are_permanent() {
        assert!(is_permanent(&Status::invalid_argument("schema")));
        assert!(is_permanent(&Status::not_found("run")));
        assert!(!is_permanent(&Status::unavailable("down")));
        assert!(!is_permanent(&Status::deadline_exceeded("slow")));
        assert!(!is_permanent(&Status::failed_precondition(
            "register first"
        )));
    }

    #[tokio::test]
    async fn a_failed_coordinator_is_left_for_the_next_one() {
        use crate::daemon::fake_coordinator::{free_port, FakeCoordinator};
        let up = FakeCoordinator::start(free_port());
        let down = format!("http://127.0.0.1:{}", free_port());
        let mut opts = RunOptions::new(down.clone(), "/nonexistent");
        opts.coordinators = vec![down.clone(), up.url()];
        opts.rpc_timeout = Duration::from_secs(20);
        // An agent id whose first target is the coordinator that is down.
        let id = (0..)
            .map(|i| format!("agent-{i}"))
            .find(|id| link::first_target(id, 2) == 0)
            .unwrap();
        let rpc = Rpc::new(&opts, &id).unwrap();
        assert_eq!(rpc.target(), down);
        assert!(rpc.upload("r", "{}".into()).await.is_err());
        // Every clone (the worker's, the uploader's) follows the move.
        let uploader = rpc.clone();
        assert_eq!(rpc.move_on(), up.url());
        assert_eq!(uploader.target(), up.url());
        uploader.upload("r", "{}".into()).await.unwrap();
        assert_eq!(up.uploads(), ["r"]);
        assert_eq!(rpc.move_on(), down, "wraps round");
        up.stop().await;
    }

    #[tokio::test]
    async fn an_unreachable_coordinator_is_a_status_not_a_hang() {
        // Bind then drop: the port is closed, so the call fails fast with a transport error.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut opts = RunOptions::new(format!("http://127.0.0.1:{port}"), "/nonexistent");
        opts.rpc_timeout = Duration::from_secs(20);
        let rpc = Rpc::new(&opts, "a").unwrap();
        let e = rpc.upload("r", "{}".into()).await.unwrap_err();
        assert!(!is_permanent(&e), "{e:?}");
        let text = rpc.describe(&e);
        assert!(
            text.contains("https://"),
            "a plain-http failure hints at TLS: {text}"
        );
        let refusal = rpc.describe(&Status::not_found("run 'r'"));
        assert_eq!(refusal, "NotFound: run 'r'");
        assert_eq!(rpc.agent_id(), "a");
    }
}
