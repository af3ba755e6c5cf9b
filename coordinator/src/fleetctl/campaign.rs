//! `fleetctl campaign start`, `fleetctl campaign status [--wait]` and `fleetctl campaigns`.

use std::io::IsTerminal;
use std::time::Duration;

use fleetcal_proto::pb;
use serde_json::json;

use super::cli::{RunArgs, SelectorArgs, StartArgs};
use super::client::{all_campaigns, Admin};
use super::table::render;
use crate::domain::DomainError;
use crate::model::RunState;
use crate::Error;

/// Parses `k=v,k2=v2`; an item without `=` is an error naming it.
pub fn parse_labels(text: &str) -> Result<pb::Labels, Error> {
    parse_labels_for("--select", text)
}

/// [`parse_labels`] for the flag `flag`, which its errors name.
pub fn parse_labels_for(flag: &str, text: &str) -> Result<pb::Labels, Error> {
    let mut labels = std::collections::HashMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            Error::from(DomainError::InvalidRequest(format!(
                "{flag} item '{}' is not key=value",
                fleetcal_proto::quote::bounded(item)
            )))
        })?;
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    if labels.is_empty() {
        return Err(Error::from(DomainError::InvalidRequest(format!(
            "{flag} '{}' names no key=value",
            fleetcal_proto::quote::bounded(text)
        ))));
    }
    Ok(pb::Labels { labels })
}

/// The campaign request of a selector and run settings (`campaign start`, `schedule add`);
/// timeouts, deadline and concurrency are left at 0 (the defaults).
pub fn request(selector: SelectorArgs, run: RunArgs) -> Result<pb::StartCampaignRequest, Error> {
    use pb::selector::Kind;
    let kind = match (selector.all, selector.select, selector.preset) {
        (_, Some(text), _) => Kind::Labels(parse_labels(&text)?),
        (_, _, Some(id)) => Kind::Preset(id),
        _ => Kind::All(true),
    };
    Ok(pb::StartCampaignRequest {
        selector: Some(pb::Selector { kind: Some(kind) }),
        quick: run.quick,
        warmup: run.warmup,
        trials: run.trials.unwrap_or(0),
        max_duration_s: run.max_duration.unwrap_or(0),
        framework: run.framework.unwrap_or_default(),
        run_timeout_s: 0,
        deadline_s: 0,
        concurrency: 0,
        operations: run.operations,
        precisions: run.precisions,
        blas_sizes: run.sizes,
        stream_mib: run.stream_mib,
        min_gflops: run.min_gflops.unwrap_or(0.0),
    })
}

/// Starts a campaign and prints its id.
pub async fn start(admin: &mut Admin, a: StartArgs) -> Result<(), Error> {
    let campaign = admin
        .start_campaign(pb::StartCampaignRequest {
            run_timeout_s: a.timeout.unwrap_or(0),
            deadline_s: a.deadline.unwrap_or(0),
            concurrency: a.concurrency.unwrap_or(0),
            ..request(a.selector, a.run)?
        })
        .await?
        .into_inner();
    if a.json {
        println!("{}", campaign_json(&campaign));
    } else {
        println!("{}", campaign.id);
    }
    Ok(())
}

/// A campaign as `--json` prints it.
pub fn campaign_json(c: &pb::Campaign) -> serde_json::Value {
    json!({
        "id": c.id,
        "created_at": c.created_at,
        "schedule": c.schedule,
        "scheduled_at": (!c.scheduled_at.is_empty()).then_some(&c.scheduled_at),
        "framework": c.framework,
        "quick": c.quick,
        "warmup": c.warmup,
        "trials": (c.trials > 0).then_some(c.trials),
        "max_duration_s": (c.max_duration_s > 0).then_some(c.max_duration_s),
        "concurrency": c.concurrency,
        "run_timeout_s": c.run_timeout_s,
        "deadline": c.deadline,
        "total_runs": c.total_runs,
        "run_counts": c.run_counts,
        "finished": c.finished,
    })
}

/// `queued 1, running 2, ...` in life-cycle order, zero counts left out.
pub fn counts_line(c: &pb::Campaign) -> String {
    counts_text(&c.run_counts)
}

/// Run counts by state name as `queued 1, running 2, ...`, in life-cycle order, zero counts
/// left out.
pub fn counts_text(counts: &std::collections::HashMap<String, u32>) -> String {
    let parts: Vec<String> = RunState::ALL
        .iter()
        .filter_map(|s| {
            let n = counts.get(s.as_str()).copied().unwrap_or(0);
            (n > 0).then(|| format!("{s} {n}"))
        })
        .collect();
    parts.join(", ")
}

/// `fleetctl campaigns`: every campaign (all pages), newest first, as a table or JSON.
pub async fn list(admin: &mut Admin, schedule: Option<String>, as_json: bool) -> Result<(), Error> {
    let campaigns = all_campaigns(admin, schedule).await?;
    if as_json {
        let items: Vec<_> = campaigns.iter().map(campaign_json).collect();
        println!("{}", serde_json::to_string_pretty(&items).expect("json"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = campaigns
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.created_at.clone(),
                c.schedule.clone().unwrap_or_else(|| "-".into()),
                if c.scheduled_at.is_empty() {
                    "-".into()
                } else {
                    c.scheduled_at.clone()
                },
                c.total_runs.to_string(),
                counts_line(c),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "CAMPAIGN",
                "CREATED",
                "SCHEDULE",
                "SCHEDULED AT",
                "RUNS",
                "STATES"
            ],
            &rows
        )
    );
    Ok(())
}

fn done(c: &pb::Campaign) -> u32 {
    RunState::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| c.run_counts.get(s.as_str()).copied().unwrap_or(0))
        .sum()
}

fn unsuccessful(c: &pb::Campaign) -> u32 {
    RunState::ALL
        .iter()
        .filter(|s| s.is_unsuccessful())
        .map(|s| c.run_counts.get(s.as_str()).copied().unwrap_or(0))
        .sum()
}

/// A capped exponential backoff with a budget: how `--wait` rides out an unreachable
/// coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// How long failures may go on (from the first of a streak) before giving up.
    pub budget: Duration,
}

impl Backoff {
    /// `--wait`'s reconnection: 0.5 s doubling to 10 s, for `budget`.
    pub fn reconnect(budget: Duration) -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            budget,
        }
    }

    /// The delay before the next try after `failures` consecutive failures (1 = the first),
    /// given `elapsed` since the first; `None` once the budget is spent.
    pub fn delay(&self, failures: u32, elapsed: Duration) -> Option<Duration> {
        let left = self.budget.checked_sub(elapsed).filter(|d| !d.is_zero())?;
        let doubled = self
            .initial
            .checked_mul(
                1u32.checked_shl(failures.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .unwrap_or(self.max);
        Some(doubled.min(self.max).min(left))
    }
}

/// What `campaign status` does after its first answer.
#[derive(Debug, Clone)]
pub struct Follow {
    /// Follow the campaign to its end.
    pub wait: bool,
    /// The poll period.
    pub poll: Duration,
    /// How to ride out an unreachable coordinator.
    pub reconnect: Backoff,
    /// The fleet's other coordinators (URL and a lazily connecting client), in order: a poll
    /// that finds the current one unreachable moves to the next of them before it backs off.
    pub others: Vec<(String, Admin)>,
}

/// Whether a failed poll is worth retrying: the coordinator is unreachable (restarting, a
/// network cut), not refusing the request.
fn unreachable(e: &Error) -> bool {
    match e {
        // A connection that broke under a call in flight (the coordinator killed, a reset)
        // is an UNKNOWN or CANCELLED status with the transport error as its source.
        Error::Remote(status) => {
            status.code() == tonic::Code::Unavailable
                || (matches!(status.code(), tonic::Code::Unknown | tonic::Code::Cancelled)
                    && std::error::Error::source(status).is_some())
        }
        other => other.code() == tonic::Code::Unavailable,
    }
}

/// How `--wait` keeps polling: the other coordinators to move to and the current streak of
/// failed polls.
struct Poller<'a> {
    follow: &'a Follow,
    others: Vec<(String, Admin)>,
    next_other: usize,
    failing: Option<(std::time::Instant, u32)>,
}

impl Poller<'_> {
    /// One poll of campaign `id`; an unreachable coordinator is ridden out (the next of the
    /// others tried at once, a backoff after each full round, each said through `say`) until
    /// `--reconnect-timeout` runs out.
    async fn get(
        &mut self,
        admin: &mut Admin,
        id: &str,
        say: &dyn Fn(String),
    ) -> Result<pb::Campaign, Error> {
        loop {
            let answer = admin
                .clone()
                .get_campaign(pb::GetCampaignRequest { id: id.to_string() })
                .await
                .map(tonic::Response::into_inner)
                .map_err(Error::from);
            let e = match answer {
                Ok(c) => {
                    if self.failing.take().is_some() {
                        say(format!(
                            "fleetctl: the coordinator answers again; following campaign {id}"
                        ));
                    }
                    return Ok(c);
                }
                Err(e) if unreachable(&e) => e,
                Err(e) => return Err(e),
            };
            let (since, failures) = self.failing.get_or_insert((std::time::Instant::now(), 0));
            *failures = failures.saturating_add(1);
            let Some(delay) = self.follow.reconnect.delay(*failures, since.elapsed()) else {
                say(format!(
                    "fleetctl: giving up after {} s without an answer (--reconnect-timeout)",
                    self.follow.reconnect.budget.as_secs()
                ));
                return Err(e);
            };
            let count = self.others.len();
            if let Some((url, other)) = self.others.get_mut(self.next_other) {
                // Several coordinators: the next one is tried at once, the one that failed
                // takes its place in the rotation; a backoff after each full round.
                say(format!(
                    "fleetctl: cannot reach the coordinator ({e}); trying {url}"
                ));
                std::mem::swap(admin, other);
                self.next_other = (self.next_other + 1) % count;
                if self.next_other != 0 {
                    continue;
                }
            }
            say(format!(
                "fleetctl: cannot reach the coordinator ({e}); retrying in {:.1} s \
                 (gives up {} s after the first failure, --reconnect-timeout)",
                delay.as_secs_f64(),
                self.follow.reconnect.budget.as_secs()
            ));
            tokio::time::sleep(delay).await;
        }
    }
}

/// Shows a campaign; with `follow.wait`, follows it to the end (a progress bar on a terminal,
/// a line per change otherwise), riding out an unreachable coordinator for
/// `follow.reconnect.budget` (each retry said on stderr; with several coordinators, moving to
/// the next), and fails if any run did not succeed.
pub async fn status(
    admin: &mut Admin,
    id: &str,
    follow: &Follow,
    as_json: bool,
) -> Result<(), Error> {
    let mut poller = Poller {
        follow,
        others: follow.others.clone(),
        next_other: 0,
        failing: None,
    };
    let wait = follow.wait;
    let mut c = if wait {
        poller.get(admin, id, &|line| eprintln!("{line}")).await?
    } else {
        admin
            .get_campaign(pb::GetCampaignRequest { id: id.to_string() })
            .await?
            .into_inner()
    };
    if wait {
        let bar = (std::io::stderr().is_terminal() && !as_json).then(|| {
            let bar = indicatif::ProgressBar::new(u64::from(c.total_runs));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}")
                    .expect("valid template"),
            );
            bar
        });
        let say = |line: String| match &bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        };
        let mut last = String::new();
        loop {
            let line = counts_line(&c);
            match &bar {
                Some(bar) => {
                    bar.set_position(u64::from(done(&c)));
                    bar.set_message(line.clone());
                }
                None if line != last && !as_json => {
                    println!("{}/{} done: {line}", done(&c), c.total_runs)
                }
                None => {}
            }
            last = line;
            if c.finished {
                break;
            }
            tokio::time::sleep(follow.poll).await;
            c = poller.get(admin, id, &say).await?;
        }
        if let Some(bar) = bar {
            bar.finish();
        }
    }
    if as_json {
        println!("{}", campaign_json(&c));
    } else {
        println!(
            "campaign {}: {} runs, {}{}",
            c.id,
            c.total_runs,
            counts_line(&c),
            if c.finished { " (finished)" } else { "" }
        );
    }
    let bad = unsuccessful(&c);
    if wait && bad > 0 {
        return Err(Error::CampaignUnsuccessful {
            id: c.id,
            unsuccessful: bad,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_is_unreachable_and_a_refusal_is_not() {
        let broken = tonic::Status::from_error(Box::new(std::io::Error::other("broken pipe")));
        assert_eq!(broken.code(), tonic::Code::Unknown);
        assert!(unreachable(&Error::Remote(broken)));
        assert!(unreachable(&Error::Remote(tonic::Status::unavailable(
            "down"
        ))));
        assert!(!unreachable(&Error::Remote(tonic::Status::unknown(
            "no source"
        ))));
        assert!(!unreachable(&Error::Remote(tonic::Status::not_found(
            "campaign"
        ))));
    }

    #[test]
    fn backoff_doubles_caps_and_stops_at_the_budget() {
        let b = Backoff::reconnect(Duration::from_secs(30));
        let ms = |failures, elapsed_ms| {
            b.delay(failures, Duration::from_millis(elapsed_ms))
                .map(|d| d.as_millis())
        };
        assert_eq!(ms(1, 0), Some(500));
        assert_eq!(ms(2, 500), Some(1000));
        assert_eq!(ms(5, 7_500), Some(8000));
        assert_eq!(ms(6, 15_500), Some(10_000), "capped");
        assert_eq!(ms(u32::MAX, 0), Some(10_000), "no overflow");
        assert_eq!(ms(9, 25_000), Some(5000), "never past the budget");
        assert_eq!(ms(10, 30_000), None);
        assert_eq!(ms(1, 31_000), None);
        let none = Backoff::reconnect(Duration::ZERO);
        assert_eq!(none.delay(1, Duration::ZERO), None, "0 gives up at once");
    }

    #[test]
    fn labels_parse_and_bad_items_are_named() {
        let l = parse_labels("site=lab, rack=3").unwrap();
        assert_eq!(l.labels.get("rack").map(String::as_str), Some("3"));
        let err = parse_labels("site=lab,oops").unwrap_err().to_string();
        assert!(err.contains("'oops'"), "{err}");
    }
}
