//! A stand-in coordinator for the daemon's unit tests: a real gRPC AgentService on
//! 127.0.0.1 that records uploads and progress reports, can refuse uploads, and renews
//! certificates (signed by a throw-away CA) unless told to refuse.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fleetcal_proto::pb::agent_service_server::{AgentService, AgentServiceServer};
use fleetcal_proto::pb::{
    Directive, HeartbeatRequest, HeartbeatResponse, Progress, ProgressResponse, RegisterRequest,
    RegisterResponse, SubscribeRequest, UploadRequest, UploadResponse,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// What the fake saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// (run id, result json) of every upload it stored.
    pub uploads: Vec<(String, String)>,
    /// (run id, state, message) of every progress report.
    pub reports: Vec<(String, i32, String)>,
}

#[derive(Clone, Default)]
struct Svc {
    seen: Arc<Mutex<Seen>>,
    refuse_uploads: Arc<AtomicBool>,
    refuse_renewals: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl AgentService for Svc {
    async fn register(
        &self,
        _r: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        Ok(Response::new(RegisterResponse::default()))
    }

    type SubscribeStream = tonic::codegen::tokio_stream::Empty<Result<Directive, Status>>;

    async fn subscribe(
        &self,
        _r: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Ok(Response::new(tonic::codegen::tokio_stream::empty()))
    }

    async fn report_progress(
        &self,
        r: Request<Progress>,
    ) -> Result<Response<ProgressResponse>, Status> {
        let p = r.into_inner();
        if let Ok(mut s) = self.seen.lock() {
            s.reports.push((p.run_id, p.state, p.message));
        }
        Ok(Response::new(ProgressResponse { still_wanted: true }))
    }

    async fn upload_result(
        &self,
        r: Request<UploadRequest>,
    ) -> Result<Response<UploadResponse>, Status> {
        if self.refuse_uploads.load(Ordering::SeqCst) {
            return Err(Status::invalid_argument(
                "field 'records': refused by the test",
            ));
        }
        let u = r.into_inner();
        let json = String::from_utf8_lossy(&u.result_json).into_owned();
        if let Ok(mut s) = self.seen.lock() {
            s.uploads.push((u.run_id, json));
        }
        Ok(Response::new(UploadResponse { stored: true }))
    }

    async fn heartbeat(
        &self,
        _r: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(HeartbeatResponse {}))
    }

    async fn enroll(
        &self,
        _r: Request<fleetcal_proto::pb::EnrollRequest>,
    ) -> Result<Response<fleetcal_proto::pb::EnrollResponse>, Status> {
        Err(Status::unimplemented("the fake coordinator enrolls nobody"))
    }

    async fn renew(
        &self,
        r: Request<fleetcal_proto::pb::RenewRequest>,
    ) -> Result<Response<fleetcal_proto::pb::RenewResponse>, Status> {
        if self.refuse_renewals.load(Ordering::SeqCst) {
            return Err(Status::unavailable("renewal refused by the test"));
        }
        let r = r.into_inner();
        let sign = || -> Result<String, rcgen::Error> {
            let csr = rcgen::CertificateSigningRequestParams::from_pem(&r.csr_pem)?;
            let mut ca = rcgen::CertificateParams::default();
            ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let issuer = rcgen::Issuer::new(ca, rcgen::KeyPair::generate()?);
            let mut params = rcgen::CertificateParams::default();
            let uri = format!("{}{}", fleetcal_proto::role::AGENT_URI_PREFIX, r.agent_id);
            params.subject_alt_names = vec![rcgen::SanType::URI(uri.as_str().try_into()?)];
            Ok(params.signed_by(&csr.public_key, &issuer)?.pem())
        };
        let certificate_pem = sign().map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(fleetcal_proto::pb::RenewResponse {
            certificate_pem,
            not_after: "4096-01-01T00:00:00Z".into(),
        }))
    }
}

/// A running fake coordinator; stopped on [`FakeCoordinator::stop`] or drop.
pub struct FakeCoordinator {
    addr: SocketAddr,
    svc: Svc,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// A free 127.0.0.1 port (bound, then released) for a coordinator that starts later.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl FakeCoordinator {
    /// Serves on 127.0.0.1:`port` (0: any free port).
    pub fn start(port: u16) -> FakeCoordinator {
        let incoming = TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
        let addr = incoming.local_addr().unwrap();
        let svc = Svc::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(AgentServiceServer::new(svc.clone()))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        FakeCoordinator {
            addr,
            svc,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Refuse (INVALID_ARGUMENT) or accept uploads from now on.
    pub fn refuse_uploads(&self, refuse: bool) {
        self.svc.refuse_uploads.store(refuse, Ordering::SeqCst);
    }

    /// Refuse (UNAVAILABLE) or sign renewals from now on.
    pub fn refuse_renewals(&self, refuse: bool) {
        self.svc.refuse_renewals.store(refuse, Ordering::SeqCst);
    }

    /// Run ids of the stored uploads, in order.
    pub fn uploads(&self) -> Vec<String> {
        self.svc
            .seen
            .lock()
            .unwrap()
            .uploads
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// (run id, message) of the FAILED reports, in order.
    pub fn failures(&self) -> Vec<(String, String)> {
        let failed = fleetcal_proto::pb::RunState::Failed as i32;
        self.svc
            .seen
            .lock()
            .unwrap()
            .reports
            .iter()
            .filter(|(_, state, _)| *state == failed)
            .map(|(id, _, m)| (id.clone(), m.clone()))
            .collect()
    }

    /// Stops serving and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeCoordinator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
