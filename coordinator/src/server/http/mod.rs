//! The web edge (`serve --http ADDR`): read-only pages with plots ([`routes`], drawn by
//! [`crate::render::html`]), the same reports as JSON and CSV, and `/metrics` in the Prometheus
//! text format ([`metrics`]). axum routes on hyper connections, plain or TLS (rustls, the
//! gRPC side's certificate and client CA; with a client CA only admin certificates are
//! served, as on the admin service), under the coordinator's one shutdown.

pub mod metrics;
pub mod pages;
pub mod routes;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::core::Coordinator;
use crate::store::Store;

/// How long a client gets to send a request's headers (HTTP/1.1), so an idle connection does
/// not hold a task for ever.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the web side on `listener` (TLS with `tls`, when given) until `stopping` turns
/// true: then it stops accepting, asks open connections to close after their request, and
/// completes once they did (the caller bounds that wait by the shutdown grace).
pub async fn serve<S: Store>(
    core: Arc<Coordinator<S>>,
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    refusals: Arc<crate::tls::RefusalLog>,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), Infallible> {
    let enforced = super::auth::roles_enforced(&core.settings);
    let app = routes::router(core);
    let tls = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: say so, and do not spin.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopping.wait_for(|s| *s) => break,
        };
        let app = app.clone();
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let service = TowerToHyperService::new(app);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    match crate::tls::accept(&acceptor, stream, peer, &refusals, "http").await {
                        Some(stream) => {
                            // The same rule as the admin service: the pages and `/metrics`
                            // are for admin certificates.
                            let certs = stream.get_ref().1.peer_certificates();
                            let caller = super::auth::caller_of(certs, enforced);
                            let app = match caller.admit_web() {
                                Ok(()) => app,
                                Err(refusal) => {
                                    tracing::info!(%peer, %refusal, "http caller refused");
                                    routes::refused(refusal)
                                }
                            };
                            let service = TowerToHyperService::new(app);
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        None => Ok(()),
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("http listener closed; waiting for open connections");
    graceful.shutdown().await;
    Ok(())
}
