//! The `fleetcal-coordinator` process: parse flags, bind, print the address, serve until a
//! signal, and exit through the error table.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Command};
use crate::server::{serve, signal};
use crate::Error;

/// Runs the coordinator binary; the first stdout line is `listening on ADDR` (gRPC), and with
/// `--http` the second is `http listening on ADDR` (the web pages and `/metrics`).
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,h2=warn".into()),
        )
        .init();
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetcal-coordinator: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn start(cli: Cli) -> Result<(), Error> {
    let Command::Serve(args) = cli.command;
    let settings = args.resolve()?;
    // Bad TLS files fail before anything listens (serve reads them again to build the server).
    if let Some(tls) = &settings.tls {
        crate::tls::server_config(tls)?;
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        path: "tokio runtime".into(),
        source,
    })?;
    runtime.block_on(async move {
        let (listener, addr) = bind(settings.listen).await?;
        let http = match settings.http {
            Some(at) => Some(bind(at).await?),
            None => None,
        };
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on {addr}");
        if let Some((_, addr)) = &http {
            let _ = writeln!(out, "http listening on {addr}");
        }
        let _ = out.flush();
        serve(settings, listener, http.map(|(l, _)| l), signal()).await
    })
}

/// Binds `at`; returns the listener and the address it got (the port when `at` asked for 0).
async fn bind(
    at: std::net::SocketAddr,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), Error> {
    let bind_err = |source| Error::Bind {
        addr: at.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(at).await.map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    Ok((listener, addr))
}
