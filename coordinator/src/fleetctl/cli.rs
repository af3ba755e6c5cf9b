//! fleetctl's flags and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use fleetcal_proto::dial::ClientTlsFiles;
use fleetcal_proto::pb;

use super::duration::{parse_duration, parse_max_duration};
use super::{agents, alerts, campaign, client, export, report, runs, schedule};
use crate::fleet::AlertState;
use crate::Error;

/// Admin CLI of the fleetcal coordinator. Exit codes follow the coordinator's error table
/// (see `docs/coordinator.md`).
#[derive(Debug, Parser)]
#[command(name = "fleetctl", version)]
pub struct FleetCtl {
    /// The coordinator's URL; several coordinators of one fleet as a comma list (the first
    /// that answers is used, in the order given).
    #[arg(
        long,
        global = true,
        env = "FLEETCAL_COORDINATOR",
        value_name = "URL[,URL...]",
        default_value = "http://127.0.0.1:50051"
    )]
    pub coordinator: String,
    /// The CA certificate (PEM) that signed the coordinator's certificate; needed for an
    /// https:// coordinator.
    #[arg(long, global = true, env = "FLEETCAL_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// This client's certificate (PEM), for a coordinator that requires one (mutual TLS);
    /// needs --key.
    #[arg(long, global = true, env = "FLEETCAL_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, global = true, env = "FLEETCAL_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The name the coordinator's certificate is checked against, when the URL's host is not
    /// one of its names (an IP address, a load balancer) [default: the URL's host]; https://
    /// only.
    #[arg(
        long,
        global = true,
        env = "FLEETCAL_TLS_SERVER_NAME",
        value_name = "NAME"
    )]
    pub tls_server_name: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// fleetctl's commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Check the coordinator's gRPC health (over TLS too): prints SERVING and exits 0, else
    /// exits 7. For container health checks and probes.
    Health,
    /// List registered agents (every page, by host name) with when their certificates
    /// expire, or remove one. A certificate expiring within 7 days (or --expiring-within) is
    /// marked "soon", one past its expiry "expired".
    Agents {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// List only agents whose certificate expires within this duration (`12h`, `7d`;
        /// already expired ones too), and mark those "soon" [default: all agents; 7d for the
        /// mark].
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expiring_within: Option<std::time::Duration>,
        /// What to do instead of listing.
        #[command(subcommand)]
        action: Option<AgentsCmd>,
    },
    /// Start or follow campaigns.
    #[command(subcommand)]
    Campaign(CampaignCmd),
    /// List campaigns, newest first, with the schedule and firing that made them and their
    /// run counts.
    Campaigns {
        /// Only the campaigns of this schedule.
        #[arg(long, value_name = "NAME")]
        schedule: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Cron schedules that start campaigns by themselves (nightly recalibration).
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// List runs.
    Runs {
        /// Only this campaign's runs.
        #[arg(long)]
        campaign: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Work with stored results.
    #[command(subcommand)]
    Results(ResultsCmd),
    /// Fleet reports over the stored results: NumPy vs PyTorch (compare), boards vs their
    /// siblings (boards), each board over nights (drift), what went wrong (anomalies), compute
    /// and bandwidth roofs (roofline). The coordinator computes the report; fleetctl draws it
    /// with the same renderers as the coordinator's web pages.
    #[command(after_help = "Examples:\n  \
        fleetctl report compare --nights 7\n  \
        fleetctl report boards --select site=lab --format csv --output boards.csv\n  \
        fleetctl report drift --since 2026-11-01 --format html --output drift.html")]
    Report(Box<ReportArgs>),
    /// Drift alerts: a board's headline figure dropped against its own baseline and a
    /// one-board confirmation run reproduced the drop. List them, acknowledge one, or mark one
    /// a false alarm.
    #[command(subcommand)]
    Alerts(AlertsCmd),
    /// Make the fleet's certificates in Rust (no coordinator is dialled): a fleet CA, the
    /// coordinator's certificate and client certificates naming their role. Keys are written
    /// mode 0600; nothing is overwritten.
    #[command(subcommand)]
    Pki(PkiCmd),
    /// Join tokens new agents enroll with (`fleetcal-agent run --join-token TOKEN`).
    #[command(subcommand)]
    Token(TokenCmd),
}

/// `fleetctl token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Make a join token and print it (only its hash is stored: it is shown this once).
    Create {
        /// How long it works: `90s`, `30m`, `1h`, `7d` (1 minute to 365 days).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: Duration,
        /// Labels every agent enrolled with it gets: `k=v,k2=v2`.
        #[arg(long, value_name = "K=V,...")]
        labels: Option<String>,
        /// How many agents may enroll with it (1 to 100000).
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
    },
}

/// `fleetctl pki ...`.
#[derive(Debug, Subcommand)]
pub enum PkiCmd {
    /// A new fleet CA (`ca.pem`, `ca.key`), the coordinator's certificate (`server.pem`,
    /// `server.key`) and an admin client certificate (`admin.pem`, `admin.key`) in DIR
    /// (created if missing; refused if it holds any of them).
    #[command(after_help = "Example:\n  \
        fleetctl pki init /etc/fleetcal/tls --server-names coordinator.lab,10.0.0.5")]
    Init {
        /// The directory to write.
        dir: PathBuf,
        /// The coordinator's DNS names and IP addresses (clients check its certificate
        /// against the host of the URL they dial, or --tls-server-name).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "localhost,127.0.0.1",
            value_name = "NAME,..."
        )]
        server_names: Vec<String>,
        /// The admin certificate's name (its role `urn:fleetcal:admin:NAME`).
        #[arg(long, default_value = "admin", value_name = "NAME")]
        admin: String,
        /// Lifetime of the CA and the certificates, 1 to 3650 days.
        #[arg(long, default_value_t = 365, value_name = "N")]
        days: u32,
    },
    /// Another client certificate signed by the CA in DIR: an admin (`--admin NAME`) or an
    /// agent whose id is fixed by hand (`--agent ID`; enrolled agents get theirs from the
    /// coordinator instead).
    #[command(group(ArgGroup::new("role").required(true).args(["agent", "admin"])))]
    Issue {
        /// The directory of `pki init` (its `ca.pem` and `ca.key`); the files are written here.
        dir: PathBuf,
        /// An agent certificate for this agent id (`urn:fleetcal:agent:ID`).
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// An admin certificate with this name (`urn:fleetcal:admin:NAME`).
        #[arg(long, value_name = "NAME")]
        admin: Option<String>,
        /// File name stem [default: agent-ID or admin-NAME].
        #[arg(long, value_name = "STEM")]
        name: Option<String>,
        /// Lifetime, 1 to 3650 days.
        #[arg(long, default_value_t = 365, value_name = "N")]
        days: u32,
    },
}

/// Which fleet report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportKindArg {
    /// Per board group, operation, precision and size: NumPy's and PyTorch's best and median
    /// from `compare` runs of one campaign on one board, the PyTorch/NumPy ratio per board,
    /// the group's median ratio and spread, and a headline per group and precision.
    Compare,
    /// Each board's headline figures (peak per precision, bandwidth, efficiency) against its
    /// group's median and the theoretical peak; outliers named by the median absolute
    /// deviation.
    Boards,
    /// Each board's headline figures over nights against its own baseline: environment
    /// changes as period markers, steps and creeps the statistical test finds, and the
    /// alerts.
    Drift,
    /// Device fallbacks, above-theoretical figures, skipped precisions and sizes, failed,
    /// timed-out and offline runs, noisy figures, boards not calibrated for days.
    Anomalies,
    /// Per board group: the compute roof per precision and the bandwidth roof, with each
    /// board's points.
    Roofline,
}

/// How a report is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned text tables that fit a 100-column terminal.
    Table,
    /// The report model: every number the table shows, plus the run ids it came from.
    Json,
    /// Comma-separated rows: every number the table shows, plus the run ids.
    Csv,
    /// A self-contained web page with inline CSS and SVG plots (no script, no remote fonts).
    Html,
}

/// `fleetctl report` flags.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("window").args(["since", "nights"])))]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: ReportKindArg,
    /// Only boards carrying all these labels: `k=v,k2=v2`.
    #[arg(long, value_name = "K=V,...")]
    pub select: Option<String>,
    /// Only this board group (the key every report prints beside its members).
    #[arg(long, value_name = "KEY")]
    pub group: Option<String>,
    /// Only results measured on or after this day (YYYY-MM-DD, UTC) or time (RFC 3339).
    /// Without --since or --nights: the last 30 nights (365 with --board).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only results of the last N nights (N × 24 h before now), 1 to 3660 (default 30;
    /// 365 with --board).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=3660)
    )]
    pub nights: Option<u32>,
    /// Only this board (its agent id).
    #[arg(long, value_name = "AGENT_ID")]
    pub board: Option<String>,
    /// Only results of the campaigns this schedule made.
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,
    /// Only results of this framework.
    #[arg(long, value_parser = ["numpy", "pytorch"])]
    pub framework: Option<String>,
    /// How to draw it.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write it to this file instead of standard output: a regular file is replaced atomically
    /// (through a symbolic link, its target); a FIFO or character device is written in place.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `fleetctl alerts ...`.
#[derive(Debug, Subcommand)]
pub enum AlertsCmd {
    /// List alerts, newest first: by default the standing ones (open and acknowledged).
    List {
        /// Only alerts in these states: suspected (a confirmation run is on its way), open,
        /// acknowledged, dismissed, unconfirmed (the confirmation run did not reproduce the
        /// drop), resolved.
        #[arg(
            long,
            value_delimiter = ',',
            value_name = "STATE,...",
            value_parser = alert_state,
            conflicts_with = "all"
        )]
        state: Vec<String>,
        /// Every alert, in any state.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an open alert: someone is on it (it stays listed until the figure
    /// recovers). An alert that is not open is refused (exit 4); an unknown id exits 3.
    Ack {
        /// The alert's id, or a unique prefix of at least 8 characters (`alerts list` prints
        /// the first 8).
        id: String,
        /// A note kept with it (who, why), at most 1024 bytes.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// Print the alert as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark an open or acknowledged alert a false alarm. Refused (exit 4) in any other state;
    /// an unknown id exits 3.
    Dismiss {
        /// The alert's id, or a unique prefix of at least 8 characters (`alerts list` prints
        /// the first 8).
        id: String,
        /// A note kept with it (who, why), at most 1024 bytes.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// Print the alert as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `fleetctl agents ...`.
#[derive(Debug, Subcommand)]
pub enum AgentsCmd {
    /// Remove an agent: it is no longer listed or selected (its runs and results stay) and
    /// its queued runs fail. Refused (exit 4) while it is running a run. An agent that
    /// registers again is back: stop it first to keep it removed. Also clears an agent row
    /// the coordinator cannot read (logged as "skipping row 'ID' of table agents").
    Remove {
        /// The agent's id.
        id: String,
    },
    /// Revoke an agent: every later call of it is refused (PERMISSION_DENIED), its directive
    /// stream is cut at once, and its id never enrolls again (a fresh state dir enrolls as a
    /// new agent, with a new token).
    Revoke {
        /// The agent's id.
        id: String,
    },
    /// Lift an agent id's clone quarantine (two boards claiming it). First stop one of the
    /// boards, delete agent-id (and agent.key, agent.pem if enrolled) from its state
    /// directory and start it again so it takes a new id; then release the old id.
    Release {
        /// The agent's id.
        id: String,
    },
    /// Approve an agent's enrollment request (made without a join token, listed `pending`):
    /// it gets its certificate on its next request and joins the fleet. Check first that the
    /// host name and key fingerprint listed are the board's (the agent logs its fingerprint).
    Approve {
        /// The agent's id.
        id: String,
    },
    /// Deny an agent's enrollment request: the agent is refused from then on, and stops.
    Deny {
        /// The agent's id.
        id: String,
    },
}

/// `fleetctl campaign ...`.
#[derive(Debug, Subcommand)]
pub enum CampaignCmd {
    /// Start a campaign; prints its id (`--json`: an object with `id`).
    Start(Box<StartArgs>),
    /// Show a campaign's run counts.
    Status {
        /// The campaign id.
        id: String,
        /// Follow until every run ended; exit non-zero if any run did not succeed. Rides out
        /// a coordinator restart (see --reconnect-timeout).
        #[arg(long)]
        wait: bool,
        /// With --wait: how long, in seconds (0 to 86400), to keep polling an unreachable
        /// coordinator (UNAVAILABLE) before giving up with exit 7; retries back off from
        /// 0.5 s to 10 s and each is announced on stderr. 0 gives up at the first failed poll.
        #[arg(
            long,
            value_name = "S",
            default_value_t = 300,
            value_parser = clap::value_parser!(u32).range(0..=86_400)
        )]
        reconnect_timeout: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Poll period while waiting, milliseconds.
        #[arg(long, default_value_t = 500, hide = true)]
        poll_ms: u64,
    },
}

/// Which agents a campaign covers: exactly one of `--all`, `--select`, `--preset`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("selector").required(true).args(["all", "select", "preset"])))]
pub struct SelectorArgs {
    /// Every registered agent.
    #[arg(long)]
    pub all: bool,
    /// Agents carrying all these labels: `k=v,k2=v2`.
    #[arg(long, value_name = "K=V,...")]
    pub select: Option<String>,
    /// Agents whose effective preset is this id.
    #[arg(long, value_name = "ID")]
    pub preset: Option<String>,
}

/// What every board of a campaign runs (`campaign start` and `schedule add` alike).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Quick mode (fewer sizes and trials).
    #[arg(long)]
    pub quick: bool,
    /// Warm-up calls per figure before timing, 0 to 100, on every board [default: the
    /// engine's, 3].
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(0..=i64::from(pb::MAX_WARMUP))
    )]
    pub warmup: Option<u32>,
    /// Timed trials per figure, 1 to 1000, on every board [default: the engine's, 10, or 5
    /// with --quick].
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(pb::MAX_TRIALS))
    )]
    pub trials: Option<u32>,
    /// Wall-time cap of each board's measurements, 1s to 7d (`90s`, `10m`, `2h`): the agent
    /// stops starting figures at it and uploads what it measured, each cut figure recorded
    /// [default: none].
    #[arg(long, value_name = "DURATION", value_parser = parse_max_duration)]
    pub max_duration: Option<u32>,
    /// Framework override: numpy, pytorch, or compare (numpy and pytorch on CPU boards with
    /// the pytorch engine) [default: numpy on CPU boards, pytorch on CUDA boards].
    #[arg(long, value_parser = ["numpy", "pytorch", "compare"])]
    pub framework: Option<String>,
    /// Test override (hidden): BLAS sizes, e.g. `16,32`.
    #[arg(long, value_delimiter = ',', hide = true)]
    pub sizes: Vec<u64>,
    /// Test override (hidden): STREAM array sizes in MiB, e.g. `1`.
    #[arg(long, value_delimiter = ',', hide = true)]
    pub stream_mib: Vec<u64>,
    /// Test override (hidden): precisions, e.g. `fp32,fp64`.
    #[arg(long, value_delimiter = ',', hide = true)]
    pub precisions: Vec<String>,
    /// Test override (hidden): operations, e.g. `gemm,stream_triad`.
    #[arg(long, value_delimiter = ',', hide = true)]
    pub operations: Vec<String>,
    /// Test override (hidden): GEMM early-stop threshold in GFLOPS.
    #[arg(long, hide = true)]
    pub min_gflops: Option<f64>,
}

/// `fleetctl campaign start` flags.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Which agents.
    #[command(flatten)]
    pub selector: SelectorArgs,
    /// What every board runs.
    #[command(flatten)]
    pub run: RunArgs,
    /// Per-run timeout in seconds [default: the coordinator's].
    #[arg(long, value_name = "S")]
    pub timeout: Option<u32>,
    /// Seconds after which queued runs of offline agents become agent_offline
    /// [default: the coordinator's].
    #[arg(long, value_name = "S")]
    pub deadline: Option<u32>,
    /// Most runs running at once [default: unlimited].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// Print JSON (`{"id": ...}`) instead of the bare id.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl schedule ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Add a cron schedule: the coordinator starts a campaign at each firing by itself. A
    /// firing missed while the coordinator was down is caught up once (the latest only; the
    /// others are recorded missed); a board still busy with an earlier run is recorded
    /// skipped (or queued, --overlap queue); an offline board's run waits until the next
    /// firing, then is recorded agent_offline. A taken name is refused (exit 10).
    #[command(after_help = "Examples:\n  \
        fleetctl schedule add nightly --cron '0 2 * * *' --tz Europe/Berlin --all --quick --jitter 10m\n  \
        fleetctl schedule add lab --cron '30 1 * * 1-5' --select site=lab --framework compare \\\n      \
        --overlap queue --catch-up 6h --deadline 4h")]
    Add(Box<ScheduleAddArgs>),
    /// List schedules: cron, zone, paused, next firing (local and UTC), last firing with its
    /// campaign and run counts, missed firings.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a schedule and its firing records (its campaigns stay).
    Remove {
        /// The schedule's name.
        name: String,
    },
    /// Pause a schedule: it does not fire until resumed.
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Resume a paused schedule: it fires from now on (what fell due while it was paused
    /// does not fire later).
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Fire a schedule now (paused or not) with its settings; prints the campaign id.
    RunNow {
        /// The schedule's name.
        name: String,
        /// Print JSON (`{"id": ...}`) instead of the bare id.
        #[arg(long)]
        json: bool,
    },
}

/// `fleetctl schedule add` flags.
#[derive(Debug, Args)]
pub struct ScheduleAddArgs {
    /// The schedule's name: 1 to 64 ASCII letters, digits, '.', '_', '-'.
    pub name: String,
    /// When it fires: a cron expression of 5 fields, `MIN HOUR DAY-OF-MONTH MONTH
    /// DAY-OF-WEEK` ('0 2 * * *' = 02:00 every night, '30 1 * * 1-5' = 01:30 on weekdays), or
    /// 6 with a leading seconds field.
    #[arg(long, value_name = "EXPR")]
    pub cron: String,
    /// The IANA time zone the expression is read in, e.g. Europe/Berlin; a local time that
    /// a daylight-saving change skips fires once just after it, one that repeats fires once
    /// [default: UTC].
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Which agents.
    #[command(flatten)]
    pub selector: SelectorArgs,
    /// What every board runs.
    #[command(flatten)]
    pub run: RunArgs,
    /// Spread the boards' starts: each board's run starts after its own delay in [0,
    /// DURATION), the same for a board and firing on every try; shorter than the schedule's
    /// period, at most 1d. DURATION is a number and a unit: 500ms, 30s, 10m, 2h, 1d
    /// [default: 0, all at once].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub jitter: Option<Duration>,
    /// A board still busy with an earlier run when the schedule fires: skip records its run
    /// as skipped ("skipped: busy with run ..."); queue runs it after the earlier one.
    #[arg(long, value_parser = ["skip", "queue"], default_value = "skip")]
    pub overlap: String,
    /// How old the latest firing missed while the coordinator was down may be to be caught
    /// up when it is back, e.g. 6h [default: one period, i.e. until the next firing].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub catch_up: Option<Duration>,
    /// How long a firing's runs wait for offline boards before they are recorded
    /// agent_offline, e.g. 4h [default: until the next firing].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Print the schedule as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl results ...`.
#[derive(Debug, Subcommand)]
pub enum ResultsCmd {
    /// Write a campaign's results, one file per board and framework.
    Export {
        /// The campaign id.
        #[arg(long)]
        campaign: String,
        /// Output directory (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value_t = Format::Fleetcal)]
        format: Format,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// fleetcal's result schema, as uploaded.
    Fleetcal,
    /// The origin tool's profile format.
    Origin,
}

/// An alert state name (`alerts list --state`), checked against the coordinator's states.
fn alert_state(text: &str) -> Result<String, String> {
    match AlertState::parse(text) {
        Some(s) => Ok(s.as_str().to_string()),
        None => Err(format!(
            "not an alert state (expected one of {})",
            AlertState::ALL.map(AlertState::as_str).join(", ")
        )),
    }
}

/// Runs fleetctl.
pub fn run() -> ExitCode {
    let cli = FleetCtl::parse();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: "tokio runtime".into(),
            source,
        })
        .and_then(|rt| rt.block_on(dispatch(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn dispatch(cli: FleetCtl) -> Result<(), Error> {
    if let Cmd::Pki(cmd) = cli.command {
        return pki(cmd);
    }
    let urls = fleetcal_proto::dial::check_urls(&[&cli.coordinator])?;
    let tls = ClientTlsFiles::for_urls(&urls, cli.ca_cert, cli.cert, cli.key, cli.tls_server_name)?;
    let (url, channel) = client::connect_any(&urls, tls.as_ref()).await?;
    let mut admin = client::admin(channel.clone());
    match cli.command {
        Cmd::Health => {
            let status = client::check(&url, tls.as_ref(), channel).await?;
            println!("{status}");
            if status == "SERVING" {
                Ok(())
            } else {
                Err(Error::NotServing {
                    target: url,
                    status,
                })
            }
        }
        Cmd::Agents {
            action: Some(AgentsCmd::Remove { id }),
            ..
        } => agents::remove(&mut admin, &id).await,
        Cmd::Agents {
            action: Some(AgentsCmd::Revoke { id }),
            ..
        } => agents::revoke(&mut admin, &id).await,
        Cmd::Agents {
            action: Some(AgentsCmd::Release { id }),
            ..
        } => agents::release(&mut admin, &id).await,
        Cmd::Agents {
            action: Some(AgentsCmd::Approve { id }),
            ..
        } => agents::decide(&mut admin, &id, true).await,
        Cmd::Agents {
            action: Some(AgentsCmd::Deny { id }),
            ..
        } => agents::decide(&mut admin, &id, false).await,
        Cmd::Agents {
            json,
            expiring_within,
            action: None,
        } => agents::list(&mut admin, json, expiring_within).await,
        Cmd::Campaign(CampaignCmd::Start(args)) => campaign::start(&mut admin, *args).await,
        Cmd::Campaign(CampaignCmd::Status {
            id,
            wait,
            reconnect_timeout,
            json,
            poll_ms,
        }) => {
            let mut others = Vec::new();
            for other in urls.iter().filter(|u| **u != url) {
                others.push((other.clone(), client::lazy_admin(other, tls.as_ref())?));
            }
            let follow = campaign::Follow {
                wait,
                poll: Duration::from_millis(poll_ms.max(10)),
                reconnect: campaign::Backoff::reconnect(Duration::from_secs(u64::from(
                    reconnect_timeout,
                ))),
                others,
            };
            campaign::status(&mut admin, &id, &follow, json).await
        }
        Cmd::Campaigns { schedule, json } => campaign::list(&mut admin, schedule, json).await,
        Cmd::Schedule(cmd) => schedule::run(&mut admin, cmd).await,
        Cmd::Runs { campaign, json } => runs::list(&mut admin, campaign, json).await,
        Cmd::Results(ResultsCmd::Export {
            campaign,
            dir,
            format,
        }) => export::export(&mut admin, &campaign, &dir, format).await,
        Cmd::Report(args) => report::run(&mut admin, *args).await,
        Cmd::Alerts(AlertsCmd::List { state, all, json }) => {
            let states = if all {
                AlertState::ALL
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect()
            } else {
                state
            };
            alerts::list(&mut admin, states, json).await
        }
        Cmd::Alerts(AlertsCmd::Ack { id, note, json }) => {
            alerts::act(&mut admin, &id, note, false, json).await
        }
        Cmd::Alerts(AlertsCmd::Dismiss { id, note, json }) => {
            alerts::act(&mut admin, &id, note, true, json).await
        }
        Cmd::Pki(cmd) => pki(cmd),
        Cmd::Token(TokenCmd::Create { ttl, labels, uses }) => {
            agents::create_token(&mut admin, ttl, labels.as_deref(), uses).await
        }
    }
}

/// `fleetctl pki ...`: writes the files and lists them on standard error.
fn pki(cmd: PkiCmd) -> Result<(), Error> {
    let now = chrono::Utc::now().timestamp();
    let written = match cmd {
        PkiCmd::Init {
            dir,
            server_names,
            admin,
            days,
        } => {
            let spec = crate::pki::InitSpec {
                server_names,
                admin,
                lifetime_s: crate::pki::days_s("--days", days)?,
            };
            crate::pki::init(&dir, &spec, now)?
        }
        PkiCmd::Issue {
            dir,
            agent,
            admin,
            name,
            days,
        } => {
            let role = match (agent, admin) {
                (Some(id), _) => fleetcal_proto::role::Role::Agent(id),
                (None, Some(name)) => fleetcal_proto::role::Role::Admin(name),
                (None, None) => return Err(Error::Pki("--agent or --admin is needed".into())),
            };
            let lifetime = crate::pki::days_s("--days", days)?;
            crate::pki::issue(&dir, &role, name.as_deref(), now, lifetime)?
        }
    };
    for path in written {
        eprintln!("fleetctl: wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
