//! The time rules of cron schedules, pure: when a schedule fires next, what a coordinator that
//! was down missed, the per-board jitter of a firing, and the overlap policy. Time is an input
//! (`now`, the last firing); nothing here reads a clock or touches storage.
//!
//! Rules:
//! - an expression has 5 fields (minute granularity) or 6 with a leading seconds field (for
//!   short test periods), evaluated in an IANA time zone (UTC by default);
//! - daylight saving: a local time that does not exist fires once, at the first valid instant
//!   after the gap; a local time that occurs twice fires once, at its first occurrence
//!   (fixed-time expressions such as `30 2 * * *`; croner's rule, pinned by tests here);
//! - missed firings: of the firings due since the last one, the latest fires (one catch-up) if
//!   it is no older than the catch-up window (by default one period: until the firing after
//!   it comes); every other one is recorded as missed — a coordinator down for a week does
//!   not fire seven times;
//! - jitter: each board's run of a firing starts after a delay in `[0, jitter)` derived from the
//!   schedule, the firing and the board, so it is stable across restarts and coordinators;
//! - overlap: a board still busy with an earlier run (running, of any campaign, or queued from
//!   an earlier firing of the same schedule) is skipped (with the reason) or queued.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

use fleetcal_proto::quote::{bounded, quoted};

use crate::domain::DomainError;
use crate::model::{CampaignRecord, Millis, RunRecord, RunState};

/// The longest cron expression accepted, in bytes.
pub const MAX_CRON_LEN: usize = 256;

/// At most this many missed firings are listed one by one; more are counted as `missed_more`.
pub const MAX_MISSED_LISTED: usize = 100;

/// At most this many firings are stepped through when working out what is due; past it the
/// latest due firing is found directly (a seconds schedule after a long outage).
const SCAN_CAP: usize = 10_000;

/// A parsed cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct CronRule {
    expr: String,
    zone: Tz,
    cron: Cron,
}

impl CronRule {
    /// Parses a 5- or 6-field expression and an IANA zone name.
    pub fn parse(expr: &str, zone: &str) -> Result<CronRule, DomainError> {
        let bad = |message: String| DomainError::Cron {
            expr: bounded(expr),
            message,
        };
        if expr.len() > MAX_CRON_LEN {
            return Err(bad(format!(
                "is {} bytes, longer than {MAX_CRON_LEN}",
                expr.len()
            )));
        }
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) && !expr.trim_start().starts_with('@') {
            return Err(bad(format!(
                "has {fields} fields; expected 5 (minute hour day-of-month month day-of-week) \
                 or 6 with a leading seconds field"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| bad(e.to_string().to_lowercase()))?;
        let zone = zone
            .trim()
            .parse::<Tz>()
            .map_err(|_| DomainError::UnknownZone(bounded(zone)))?;
        Ok(CronRule {
            expr: expr.trim().to_string(),
            zone,
            cron,
        })
    }

    /// The expression as given (trimmed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first firing strictly after `after`; `None` when there is none before year 5000.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let t = Utc
            .timestamp_millis_opt(after)
            .single()?
            .with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&t, false)
            .ok()
            .map(|d| d.timestamp_millis())
    }

    /// The latest firing at or before `at`.
    fn latest_at_or_before(&self, at: Millis) -> Option<Millis> {
        let t = Utc
            .timestamp_millis_opt(at)
            .single()?
            .with_timezone(&self.zone);
        self.cron
            .find_previous_occurrence(&t, true)
            .ok()
            .map(|d| d.timestamp_millis())
    }

    /// The period of the schedule after `at`: the time between its next two firings (the
    /// default catch-up window and campaign deadline).
    pub fn period_after(&self, at: Millis) -> Option<Millis> {
        let first = self.next_after(at)?;
        let second = self.next_after(first)?;
        Some(second - first)
    }

    /// A firing time as local time in the schedule's zone (RFC 3339 with its offset).
    pub fn local(&self, at: Millis) -> String {
        Utc.timestamp_millis_opt(at)
            .single()
            .map(|t| {
                t.with_timezone(&self.zone)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            })
            .unwrap_or_default()
    }
}

/// What is due for a schedule at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Due {
    /// The firing to create a campaign for now: the latest due one, if within the catch-up
    /// window.
    pub fire: Option<Millis>,
    /// Due firings that are not fired, oldest first (at most [`MAX_MISSED_LISTED`]).
    pub missed: Vec<Millis>,
    /// Whether more firings were missed than `missed` lists.
    pub missed_more: bool,
}

/// The firings due at `now` for a schedule whose last firing (or creation) was at `since`:
/// every firing time `t` with `since < t <= now`. The latest fires when `now - t <= catch_up`
/// (`None`: one period, the time from it to the firing after it — so the latest is always
/// caught up, as that firing is still to come); every other one is missed.
pub fn due(rule: &CronRule, since: Millis, now: Millis, catch_up: Option<Millis>) -> Due {
    let mut out = Due::default();
    if now <= since {
        return out;
    }
    let mut times = Vec::new();
    let mut at = since;
    let mut capped = true;
    for _ in 0..SCAN_CAP {
        match rule.next_after(at) {
            Some(t) if t <= now => {
                times.push(t);
                at = t;
            }
            _ => {
                capped = false;
                break;
            }
        }
    }
    if capped {
        // More firings than are worth stepping through: the latest one is found directly.
        if let Some(latest) = rule.latest_at_or_before(now).filter(|&t| t > at) {
            times.push(latest);
        }
        out.missed_more = true;
    }
    let Some(latest) = times.pop() else {
        return out;
    };
    let window = catch_up.or_else(|| rule.next_after(latest).map(|next| next - latest));
    if window.is_none_or(|w| now - latest <= w) {
        out.fire = Some(latest);
    } else {
        times.push(latest);
    }
    out.missed_more |= times.len() > MAX_MISSED_LISTED;
    times.truncate(MAX_MISSED_LISTED);
    out.missed = times;
    out
}

/// The delay of one board's run of a firing: in `[0, jitter)`, the same for the same schedule,
/// firing and board on every coordinator and after restarts (an FNV-1a hash, not the
/// process-seeded std hasher).
pub fn jitter_delay(
    schedule: &str,
    scheduled_at: Millis,
    agent_id: &str,
    jitter: Millis,
) -> Millis {
    let Ok(span) = u64::try_from(jitter) else {
        return 0;
    };
    if span == 0 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(schedule.as_bytes());
    eat(&[0]);
    eat(&scheduled_at.to_le_bytes());
    eat(agent_id.as_bytes());
    // h % span < span <= i64::MAX, so the conversion cannot fail.
    Millis::try_from(h % span).unwrap_or(0)
}

/// What to do with a board that is still running an earlier run when a firing comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record the board's run of this firing as skipped, naming the busy run.
    #[default]
    Skip,
    /// Queue it: it starts when the earlier run ends (until the campaign's deadline).
    Queue,
}

impl Overlap {
    /// The name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
        }
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Overlap {
    type Err = String;

    fn from_str(s: &str) -> Result<Overlap, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            _ => Err(format!(
                "unknown overlap policy {} (expected skip or queue)",
                quoted(s)
            )),
        }
    }
}

/// What a firing does with one board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Plan its run (after its jitter).
    Start,
    /// Plan its run queued behind the busy one.
    Queue,
    /// Record its run as skipped with this reason.
    Skip(String),
}

/// The overlap rule: a board busy with `busy_run` (if any) under `policy`.
pub fn admit(policy: Overlap, busy_run: Option<&str>) -> Admission {
    match (busy_run, policy) {
        (None, _) => Admission::Start,
        (Some(_), Overlap::Queue) => Admission::Queue,
        (Some(run), Overlap::Skip) => Admission::Skip(format!("skipped: busy with run {run}")),
    }
}

/// The earlier run each board is busy with when a firing of `schedule` comes, by agent id: a
/// running run (of any campaign), else a run queued by an earlier firing of the same
/// schedule. `active` are the queued and running runs, `campaigns` (at least) theirs.
pub fn busy_boards(
    schedule: &str,
    campaigns: &[CampaignRecord],
    active: &[RunRecord],
) -> HashMap<String, String> {
    let ours: std::collections::HashSet<&str> = campaigns
        .iter()
        .filter(|c| c.firing.as_ref().is_some_and(|f| f.schedule == schedule))
        .map(|c| c.id.as_str())
        .collect();
    let mut busy = HashMap::new();
    for r in active.iter().filter(|r| r.state == RunState::Running) {
        busy.entry(r.agent_id.clone())
            .or_insert_with(|| r.run_id.clone());
    }
    for r in active
        .iter()
        .filter(|r| r.state == RunState::Queued && ours.contains(r.campaign_id.as_str()))
    {
        busy.entry(r.agent_id.clone())
            .or_insert_with(|| r.run_id.clone());
    }
    busy
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
