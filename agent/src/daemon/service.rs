//! `fleetcal-agent run`: drives the link state machine, feeds directives to the worker, and
//! shuts down on SIGTERM/SIGINT.

use std::time::Duration;

use fleetcal_proto::pb::{directive, Directive, RegisterRequest};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::Streaming;

use super::capabilities;
use super::identity;
use super::link::{self, Action, Event, State};
use super::options::RunOptions;
use super::plan::LocalSettings;
use super::rpc::Rpc;
use super::shutdown::Signals;
use super::spool::Spool;
use super::uploader::{Drained, Uploader};
use super::worker::{Order, RunContext, Worker};
use crate::AgentError;

/// Runs the daemon until SIGTERM or SIGINT.
///
/// Start-up errors (a malformed presets directory, state dir, agent id, spool, bad URL) are
/// returned at once; a coordinator
/// that cannot be reached is not an error: the link backs off and retries forever.
pub async fn run(opts: RunOptions) -> Result<(), AgentError> {
    // A presets directory with a malformed file is refused before anything is created or
    // dialled, naming the file (as the coordinator refuses it); otherwise every plan would
    // fail on it. A configured preset the directory lacks is not refused here: the run the
    // coordinator plans with it ends failed with the reason.
    crate::presets::list(opts.presets_dir.as_deref())?;
    let state_dir = opts.state_dir.clone();
    super::renew::recover(&state_dir)?;
    let mut opts = super::enroll::prepare(opts, || identity::load_or_create(&state_dir)).await?;
    let mut labels = super::enroll::enrolled_labels(&opts.state_dir)?;
    labels.extend(std::mem::take(&mut opts.labels));
    opts.labels = labels;
    let agent_id = match opts.tls.as_ref().and_then(|t| t.identity.as_ref()) {
        Some((cert, _)) => identity::for_certificate(&opts.state_dir, cert)?,
        None => identity::load_or_create(&opts.state_dir)?,
    };
    let spool = Spool::open(&opts.spool_dir())?;
    let rpc = Rpc::new(&opts, &agent_id)?;
    let mut signals = Signals::install()?;
    let (host, caps) = tokio::task::spawn_blocking(capabilities::detect)
        .await
        .map_err(|e| AgentError::Engine(format!("host detection failed: {e}")))?;
    tracing::info!(
        agent_id = %agent_id,
        coordinator = %rpc.target(),
        coordinators = opts.coordinators.len(),
        state_dir = %opts.state_dir.display(),
        "fleetcal agent starting"
    );
    let register = RegisterRequest {
        agent_id: agent_id.clone(),
        hostname: host.hostname.clone(),
        labels: opts.labels.clone().into_iter().collect(),
        preset: opts.preset.clone(),
        capabilities: Some(caps),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        instance: rpc.instance().to_string(),
    };

    let uploader = Uploader::new(rpc.clone(), spool.clone());
    uploader.wake();
    let upload_task = tokio::spawn(uploader.clone().run(opts.backoff.max));
    let (orders, order_rx) = mpsc::channel(16);
    let worker = Worker::new(RunContext {
        rpc: rpc.clone(),
        spool,
        uploader: uploader.clone(),
        local: LocalSettings {
            preset: opts.preset.clone(),
            presets_dir: opts.presets_dir.clone(),
            threads: opts.threads,
            skip_platform_check: opts.skip_platform_check,
        },
    });
    let worker_task = tokio::spawn(worker.run(order_rx));
    // An enrolled identity (the state dir's key and certificate) is renewed in place; one
    // given by --cert/--key is the operator's to renew.
    let (renewed_tx, mut renewed) = watch::channel(0u64);
    let enrolled = super::enroll::enrolled(&opts.state_dir);
    let renew_task = (enrolled.is_some()
        && opts.tls.as_ref().and_then(|t| t.identity.as_ref()) == enrolled.as_ref())
    .then(|| {
        tokio::spawn(
            super::renew::Renewer {
                opts: opts.clone(),
                rpc: rpc.clone(),
                renewed: renewed_tx,
            }
            .run(),
        )
    });

    let policy = opts.backoff;
    let (mut state, mut action) = link::next(State::Disconnected, Event::Start, &policy);
    let mut stream: Option<Streaming<Directive>> = None;
    // The coordinator says how often it wants to hear from us (RegisterResponse).
    let mut heartbeat = DEFAULT_HEARTBEAT;
    loop {
        let event = match action {
            Action::Stop => break,
            Action::Ignore => unreachable!("the driver never keeps an ignored action"),
            Action::Register => tokio::select! {
                r = {
                    // This attempt dials with the current certificate.
                    renewed.borrow_and_update();
                    rpc.register(register.clone())
                } => match r {
                    Ok(resp) => {
                        heartbeat = heartbeat_interval(resp.heartbeat_interval_s);
                        tracing::info!(
                            matched_preset = %resp.matched_preset,
                            heartbeat_s = heartbeat.as_secs(),
                            "registered"
                        );
                        Event::Registered
                    }
                    Err(s) => failed("register", &rpc.describe(&s)),
                },
                name = signals.recv() => shutdown(name),
            },
            Action::Subscribe => tokio::select! {
                r = rpc.subscribe() => match r {
                    Ok(s) => {
                        stream = Some(s);
                        Event::Subscribed
                    }
                    Err(s) => failed("subscribe", &rpc.describe(&s)),
                },
                name = signals.recv() => shutdown(name),
            },
            Action::Serve => match stream.take() {
                Some(s) => {
                    tracing::info!("connected; waiting for directives");
                    uploader.wake();
                    serve(s, &rpc, heartbeat, &orders, &mut signals, &mut renewed).await
                }
                None => Event::Failed {
                    jitter: link::jitter_sample(),
                },
            },
            Action::Wait(d) => tokio::select! {
                () = tokio::time::sleep(d) => Event::BackoffElapsed,
                name = signals.recv() => shutdown(name),
            },
        };
        if matches!(event, Event::Failed { .. }) && opts.coordinators.len() > 1 {
            let to = rpc.move_on();
            tracing::info!(coordinator = %to, "moving to the next coordinator");
        }
        let (next_state, next_action) = link::next(state, event, &policy);
        tracing::debug!(from = ?state, ?event, to = ?next_state, action = ?next_action, "link");
        if let State::Backoff { attempt } = next_state {
            if let Action::Wait(d) = next_action {
                tracing::info!(attempt, "coordinator unreachable; retrying in {d:.1?}");
            }
        }
        state = next_state;
        if next_action != Action::Ignore {
            action = next_action;
        }
    }

    drop(orders);
    if let Some(task) = renew_task {
        task.abort();
    }
    stop(
        worker_task,
        upload_task,
        &uploader,
        &mut signals,
        opts.rpc_timeout,
    )
    .await;
    tracing::info!("fleetcal agent stopped");
    Ok(())
}

/// Lets the current run finish (a second signal abandons it), then tries once to send what
/// the spool holds (a further signal, or the RPC timeout, leaves it for the next start) and
/// what is held in memory (lost if that fails: the log names each such run).
async fn stop(
    mut worker: JoinHandle<()>,
    uploads: JoinHandle<()>,
    uploader: &Uploader,
    signals: &mut Signals,
    rpc_timeout: Duration,
) {
    uploads.abort();
    tokio::select! {
        _ = &mut worker => {}
        name = signals.recv() => {
            tracing::warn!("{name} again: abandoning the current run");
            worker.abort();
            return;
        }
    }
    let last = tokio::time::timeout(rpc_timeout + Duration::from_secs(1), uploader.drain());
    let drained = tokio::select! {
        r = last => matches!(r, Ok(Drained::Empty)),
        _ = signals.recv() => false,
    };
    if !drained {
        tracing::warn!("outcomes remain in the spool; they are sent on the next start");
    }
    for (run_id, kind) in uploader.held() {
        tracing::error!(
            run_id = %run_id,
            "the {kind:?} of this run could neither be spooled nor sent; it is lost (the \
             coordinator ends the run at its timeout)"
        );
    }
}

/// The heartbeat period when the coordinator asks for none (an older coordinator).
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// The heartbeat period the coordinator asked for, within 1 s ..= 1 h (0: the default).
fn heartbeat_interval(asked_s: u32) -> Duration {
    match asked_s {
        0 => DEFAULT_HEARTBEAT,
        s => Duration::from_secs(u64::from(s.min(3600))),
    }
}

/// Forwards directives until the stream ends, a heartbeat fails, a signal arrives, or the
/// certificate is renewed (`renewed` changes: the link reconnects with the new one).
///
/// Heartbeats go out every `heartbeat` while the stream is open: the coordinator counts an
/// agent live only while it hears from it, and a heartbeat that fails tells this side that
/// the connection is gone (the link then reconnects).
async fn serve(
    mut stream: Streaming<Directive>,
    rpc: &Rpc,
    heartbeat: Duration,
    orders: &mpsc::Sender<Order>,
    signals: &mut Signals,
    renewed: &mut watch::Receiver<u64>,
) -> Event {
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            m = stream.message() => m,
            _ = beat.tick() => {
                if let Err(s) = rpc.heartbeat().await {
                    return failed("heartbeat", &rpc.describe(&s));
                }
                continue;
            }
            name = signals.recv() => return shutdown(name),
            Ok(()) = renewed.changed() => {
                tracing::info!("reconnecting with the renewed certificate");
                return Event::Renewed;
            }
        };
        let order = match message {
            Ok(Some(Directive {
                action: Some(directive::Action::Plan(plan)),
            })) => Order::Plan(Box::new(plan)),
            Ok(Some(_)) => Order::Idle,
            Ok(None) => {
                tracing::warn!("coordinator closed the directive stream");
                return Event::Failed {
                    jitter: link::jitter_sample(),
                };
            }
            Err(s) => return failed("directive stream", &rpc.describe(&s)),
        };
        if orders.send(order).await.is_err() {
            return Event::Shutdown;
        }
    }
}

fn failed(what: &str, description: &str) -> Event {
    tracing::warn!("{what} failed: {description}");
    Event::Failed {
        jitter: link::jitter_sample(),
    }
}

fn shutdown(signal: &str) -> Event {
    tracing::info!("{signal}: shutting down (signal again to abandon a running calibration)");
    Event::Shutdown
}

/// Runs the daemon on its own multi-threaded runtime: the entry point for the CLI.
///
/// The runtime is shut down without waiting for an abandoned calibration thread.
pub fn run_blocking(opts: RunOptions) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Usage(format!("cannot start the async runtime: {e}")))?;
    let result = rt.block_on(run(opts));
    rt.shutdown_background();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_period_is_the_coordinators_within_bounds() {
        assert_eq!(heartbeat_interval(0), DEFAULT_HEARTBEAT);
        assert_eq!(heartbeat_interval(3), Duration::from_secs(3));
        assert_eq!(heartbeat_interval(u32::MAX), Duration::from_secs(3600));
    }
}
