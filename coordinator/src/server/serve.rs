//! Assembles and runs the coordinator's listeners — the gRPC server (AgentService,
//! AdminService, health, reflection v1 and v1alpha) with explicit message-size limits and
//! HTTP/2 keepalive, and (with `--http`) the web pages and `/metrics` — and the dispatch
//! driver, under one graceful shutdown with an enforced grace. TLS connections are accepted
//! here ([`crate::tls::accept`], on both listeners), so refused handshakes are logged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_server::AdminServiceServer;
use fleetcal_proto::pb::agent_service_server::AgentServiceServer;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic_health::ServingStatus;

use super::admin_svc::AdminSvc;
use super::agent_svc::AgentSvc;
use super::core::Coordinator;
use super::driver::drive;
use super::registry::Registry;
use crate::config::Settings;
use crate::domain::DomainError;
use crate::store::{DbUrl, PgStore, SqliteStore, Store};
use crate::Error;

/// How long in-flight calls get to finish after SIGTERM/SIGINT before they are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Opens the configured database and serves gRPC on `listener` (and the web side on `http`,
/// when given) until `shutdown` completes. The TLS files and the presets are read first: a
/// start they refuse creates no database.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    http: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let checked = Checked::read(&settings, http.is_some())?;
    match DbUrl::parse(&settings.db)? {
        DbUrl::Sqlite(path) => {
            let store = SqliteStore::open(&path).await?;
            run(store, settings, checked, listener, http, shutdown).await
        }
        DbUrl::Postgres(url) => {
            let store = PgStore::open(&url).await?;
            run(store, settings, checked, listener, http, shutdown).await
        }
    }
}

/// What a start reads from files before it serves: the TLS configurations and the presets.
struct Checked {
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    authority: Option<Arc<crate::pki::Authority>>,
    http_tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    presets: Vec<fleetcal_proto::Preset>,
}

impl Checked {
    fn read(settings: &Settings, http: bool) -> Result<Checked, Error> {
        // With a CA key, agents enroll: a connection without a client certificate is let in,
        // and the roles (`auth`) allow it the enrollment call only.
        let enrolling = settings.ca_key.is_some();
        let tls = settings
            .tls
            .as_ref()
            .map(|files| crate::tls::grpc_server_config(files, enrolling))
            .transpose()?;
        let authority = match (
            &settings.ca_key,
            settings.tls.as_ref().and_then(|t| t.client_ca.as_ref()),
        ) {
            (Some(key), Some(ca)) => Some(Arc::new(crate::pki::Authority::load(ca, key)?)),
            _ => None,
        };
        if settings.insecure_plaintext {
            tracing::warn!(
                "serving plain text (--insecure-plaintext): no caller is authenticated; any \
                 client may call the admin service and act as any agent"
            );
        } else if !super::auth::roles_enforced(settings) {
            tracing::warn!(
                "serving TLS without --client-ca: no caller is authenticated; any client may \
                 call the admin service and act as any agent"
            );
        }
        let http_tls = match (http, &settings.tls) {
            (true, Some(files)) => Some(crate::tls::http_server_config(files)?),
            _ => None,
        };
        let presets = match &settings.presets {
            Some(dir) => fleetcal_proto::preset::load_dir(dir)?,
            None => Vec::new(),
        };
        Ok(Checked {
            tls,
            authority,
            http_tls,
            presets,
        })
    }
}

/// Serves over an opened store.
///
/// One shutdown serves every listener (the gRPC port and, when given, the `http` port of the
/// web pages and `/metrics`: both under the same `stopping` watch and `with_grace`) and the
/// dispatch driver. When `shutdown` completes: health turns NOT_SERVING for `""` and every
/// service, directive streams are closed, each listener stops accepting and lets in-flight
/// calls finish for [`SHUTDOWN_GRACE`] — then drops what is left — and the driver stops.
pub async fn serve_with<S: Store>(
    store: S,
    settings: Settings,
    listener: TcpListener,
    http: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let checked = Checked::read(&settings, http.is_some())?;
    run(store, settings, checked, listener, http, shutdown).await
}

async fn run<S: Store>(
    store: S,
    settings: Settings,
    checked: Checked,
    listener: TcpListener,
    http: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let Checked {
        tls,
        http_tls,
        presets,
        authority,
    } = checked;
    let target = listener
        .local_addr()
        .map_or_else(|_| "listener".into(), |a| a.to_string());
    let registry = Arc::new(Registry::default());
    let instance = super::core::new_instance_id();
    tracing::info!(instance = %instance, "coordinator instance (the owner of its run leases)");
    registry.revoke(store.revoked_agents().await?);
    let core = Arc::new(Coordinator {
        store,
        presets,
        registry: registry.clone(),
        settings,
        wake: Arc::new(Notify::new()),
        ingested: Arc::default(),
        ingested_packed: Arc::default(),
        instance,
        histories: Arc::default(),
        schedules_of: Arc::default(),
    });
    let (stop_tx, stopping) = watch::channel(false);
    let driver = tokio::spawn(drive(core.clone(), stopping.clone()));

    let agent = AgentServiceServer::new(AgentSvc {
        core: core.clone(),
        authority,
        drift_checks: Arc::default(),
    })
    .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
    .max_encoding_message_size(pb::MAX_MESSAGE_BYTES);
    let admin = AdminServiceServer::new(AdminSvc { core: core.clone() })
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(pb::MAX_ADMIN_ANSWER_BYTES);
    let (health, health_svc) = tonic_health::server::health_reporter();
    for service in SERVICES {
        health
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
    };
    let descriptor = |e| DomainError::InvalidRequest(format!("reflection descriptor: {e}"));
    let reflection_v1 = reflection().build_v1().map_err(descriptor)?;
    // v1alpha as well: stock clients that predate v1 (Python's grpcio-reflection, older
    // grpcurl, Evans, Postman) speak only it.
    let reflection_v1alpha = reflection().build_v1alpha().map_err(descriptor)?;

    // The one shutdown: health first (so probes see NOT_SERVING), then the directive streams,
    // then every listener and the driver through `stopping`.
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        for service in SERVICES {
            health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
        registry.close_all();
        tracing::info!("health NOT_SERVING; directive streams closed");
        let _ = stop_tx.send(true);
    });

    // HTTP/2 keepalive on the server's side too: a connection whose peer stops answering
    // pings (a silent partition) is closed instead of holding a session open.
    let heartbeat = Duration::from_secs(core.settings.heartbeat_interval_s.into());
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(heartbeat))
        .http2_keepalive_timeout(Some(heartbeat.min(KEEPALIVE_TIMEOUT_CAP)))
        .add_service(health_svc)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(agent)
        .add_service(admin);
    // One refused-handshake log for both listeners (its rate limit is per peer address).
    let refusals = Arc::new(crate::tls::RefusalLog::default());
    let grpc = async {
        match tls {
            Some(tls) => {
                let mutual = core
                    .settings
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.client_ca.is_some());
                tracing::info!(client_certificates = mutual, "serving TLS");
                let incoming = tls_incoming(listener, tls, refusals.clone(), stopping.clone());
                router
                    .serve_with_incoming_shutdown(incoming, stopped(stopping.clone()))
                    .await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(
                        TcpListenerStream::new(listener),
                        stopped(stopping.clone()),
                    )
                    .await
            }
        }
    };
    let web = async {
        if let Some(listener) = http {
            let web = super::http::serve(
                core.clone(),
                listener,
                http_tls,
                refusals.clone(),
                stopping.clone(),
            );
            let Ok(()) = with_grace("http", web, stopping.clone(), SHUTDOWN_GRACE).await;
            tracing::info!("http listener stopped");
        }
    };
    let grpc = with_grace("grpc", grpc, stopping.clone(), SHUTDOWN_GRACE);
    let (served, ()) = tokio::join!(grpc, web);
    let served = served.map_err(|source| Error::Transport {
        target,
        source,
        hint: "",
    });
    tracing::info!("server stopped");
    let _ = driver.await;
    tracing::info!("driver stopped");
    served
}

/// The gRPC side's TLS connections: TCP connections of `listener` whose handshake (each on a
/// task of its own, so a slow client holds up no other) succeeded; refused ones are logged
/// by `refusals`. Accepting stops when `stopping` turns true.
fn tls_incoming(
    listener: TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    refusals: Arc<crate::tls::RefusalLog>,
    stopping: watch::Receiver<bool>,
) -> ReceiverStream<Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, std::io::Error>>
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: say so, and do not spin.
                        tracing::warn!(error = %e, "grpc accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = stopped(stopping.clone()) => break,
            };
            let (acceptor, refusals, tx) = (acceptor.clone(), refusals.clone(), tx.clone());
            tokio::spawn(async move {
                if let Some(tls) =
                    crate::tls::accept(&acceptor, stream, peer, &refusals, "grpc").await
                {
                    let _ = tx.send(Ok(tls)).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Handshaken connections waiting for the gRPC server to take them.
const ACCEPT_QUEUE: usize = 64;

/// The health service names set SERVING at start and NOT_SERVING at shutdown: the whole
/// server (`""`) and each service.
const SERVICES: [&str; 3] = ["", "fleetcal.v1.AgentService", "fleetcal.v1.AdminService"];

/// The longest wait for a keepalive ping's answer.
const KEEPALIVE_TIMEOUT_CAP: Duration = Duration::from_secs(20);

/// Completes once `stopping` turns true (or its sender is gone).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// Runs a server future that stops gracefully when `stopping` turns true, and enforces the
/// grace: calls still in flight `grace` after the stop are dropped with the server.
async fn with_grace<E>(
    name: &str,
    server: impl Future<Output = Result<(), E>>,
    stopping: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), E> {
    tokio::pin!(server);
    tokio::select! {
        done = &mut server => return done,
        () = stopped(stopping) => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(done) => done,
        Err(_) => {
            tracing::warn!(
                listener = name,
                "calls still in flight after the {}s shutdown grace; dropping them",
                grace.as_secs()
            );
            Ok(())
        }
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
