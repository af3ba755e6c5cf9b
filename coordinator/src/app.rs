//! The `fleetcal-coordinator` process: parse flags, bind, print the address, serve until a
//! signal, and exit through the error table.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Command};
use crate::server::{serve, signal};
use crate::Error;

/// Runs the coordinator binary; the first stdout line is `listening on ADDR`.
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
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: settings.listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: settings.listen.to_string(),
            source,
        })?;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on {addr}");
        let _ = out.flush();
        serve(settings, listener, signal()).await
    })
}
