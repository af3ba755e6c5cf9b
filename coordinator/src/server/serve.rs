//! Assembles and runs the gRPC server: AgentService, AdminService, health and reflection,
//! with explicit message-size limits, the scheduler driver, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_server::AdminServiceServer;
use fleetcal_proto::pb::agent_service_server::AgentServiceServer;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_stream::wrappers::TcpListenerStream;

use super::admin_svc::AdminSvc;
use super::agent_svc::AgentSvc;
use super::core::Coordinator;
use super::driver::drive;
use super::registry::Registry;
use crate::config::Settings;
use crate::store::{DbUrl, PgStore, SqliteStore, Store};
use crate::Error;

/// How long open connections get to close after SIGTERM/SIGINT before they are dropped.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the configured database and serves on `listener` until `shutdown` completes.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    match DbUrl::parse(&settings.db)? {
        DbUrl::Sqlite(path) => {
            let store = SqliteStore::open(&path).await?;
            serve_with(store, settings, listener, shutdown).await
        }
        DbUrl::Postgres(url) => {
            let store = PgStore::open(&url).await?;
            serve_with(store, settings, listener, shutdown).await
        }
    }
}

/// Serves over an opened store.
pub async fn serve_with<S: Store>(
    store: S,
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let tls = settings
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    let presets = match &settings.presets {
        Some(dir) => fleetcal_proto::preset::load_dir(dir)?,
        None => Vec::new(),
    };
    let target = listener
        .local_addr()
        .map_or_else(|_| "listener".into(), |a| a.to_string());
    let registry = Arc::new(Registry::default());
    let core = Arc::new(Coordinator {
        store,
        presets,
        registry: registry.clone(),
        settings,
        wake: Arc::new(Notify::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = tokio::spawn(drive(core.clone(), stop_rx));

    let agent = AgentServiceServer::new(AgentSvc { core: core.clone() })
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(pb::MAX_MESSAGE_BYTES);
    let admin = AdminServiceServer::new(AdminSvc { core: core.clone() })
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(pb::MAX_MESSAGE_BYTES);
    let (health, health_svc) = tonic_health::server::health_reporter();
    health
        .set_serving::<AgentServiceServer<AgentSvc<S>>>()
        .await;
    health
        .set_serving::<AdminServiceServer<AdminSvc<S>>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::InvalidRequest(format!("reflection descriptor: {e}")))?;

    let on_shutdown = {
        let health = health.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down");
            health
                .set_not_serving::<AgentServiceServer<AgentSvc<S>>>()
                .await;
            registry.close_all();
            tracing::info!("directive streams closed");
        }
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(|e| Error::Tls {
            role: "server certificate and key".into(),
            path: core
                .settings
                .tls
                .as_ref()
                .map(|t| t.cert.clone())
                .unwrap_or_default(),
            message: fleetcal_proto::dial::error_chain(&e),
        })?;
        let mutual = core
            .settings
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca.is_some());
        tracing::info!(client_certificates = mutual, "serving TLS");
    }
    let served = builder
        .add_service(health_svc)
        .add_service(reflection)
        .add_service(agent)
        .add_service(admin)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), on_shutdown)
        .await
        .map_err(|source| Error::Transport {
            target,
            source,
            hint: "",
        });
    tracing::info!("server stopped");
    let _ = stop_tx.send(true);
    let _ = driver.await;
    tracing::info!("driver stopped");
    served
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
