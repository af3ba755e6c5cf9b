//! The schedules' use cases of the [`Coordinator`]: add, list, pause, resume, remove, run now,
//! and firing what is due (called by the driver on every tick). The time rules are
//! [`crate::cron`]'s pure functions; storage answers questions and makes the one claim per
//! firing ([`Store::claim_firings`]). Time is an input here too: every method takes `now`.
//!
//! A firing (schedule, scheduled time) is claimed once, in one transaction with its campaign
//! and runs, so two coordinators on one database create one campaign for it. Every board the
//! selector covers gets a run with a state and a reason: queued (after its jitter; behind a
//! busy run with overlap `queue`), skipped (`skipped: busy with run ...`, overlap `skip`),
//! failed (the board cannot do it), and later `agent_offline` when its agent stays away until
//! the deadline (by default the next firing). A firing whose selector matches no agent is
//! recorded missed with that reason rather than refused over and over.

use std::collections::HashMap;

use super::core::{new_runs, Coordinator};
use crate::aggregate::RunCounts;
use crate::cron::{admit, busy_boards, due, jitter_delay, Admission, CronRule, Due};
use crate::domain::DomainError;
use crate::model::{
    rfc3339, CampaignRecord, FiringRecord, FiringTag, Millis, RunRecord, RunState, ScheduleRecord,
    ScheduleSpec,
};
use crate::plan::plan_campaign;
use crate::store::{Claim, ClaimOutcome, Store};
use crate::Error;

/// The most schedules a coordinator keeps.
pub const MAX_SCHEDULES: usize = 1000;
/// The longest jitter, in milliseconds (one day).
pub const MAX_JITTER_MS: Millis = 24 * 60 * 60 * 1000;
/// The longest catch-up window, in milliseconds (366 days).
pub const MAX_CATCH_UP_MS: Millis = 366 * 24 * 60 * 60 * 1000;
/// How many recent firings a schedule listing shows.
pub const RECENT_FIRINGS: u32 = 10;
/// A firing created more than this after its time, or after missed ones, is a catch-up.
const LATE_MS: Millis = 10_000;
/// How many of the next periods [`Coordinator::add_schedule`] checks the jitter against.
const PERIODS_CHECKED: usize = 8;

/// A schedule as listed: its record, its next firing and its recent firings.
#[derive(Debug, Clone)]
pub struct ScheduleStatus {
    /// The stored schedule.
    pub schedule: ScheduleRecord,
    /// Its rule; `None` when the stored expression or zone no longer parses (the error is in
    /// `problem`).
    pub rule: Option<CronRule>,
    /// Why it cannot fire, when its rule does not parse.
    pub problem: Option<String>,
    /// Its next firing; `None` while paused (or when there is none).
    pub next: Option<Millis>,
    /// Up to [`RECENT_FIRINGS`] firings, newest first, each with its campaign's run counts
    /// when it made one that is still among the schedule's latest campaigns.
    pub recent: Vec<(FiringRecord, Option<RunCounts>)>,
    /// How many of its firings are recorded missed.
    pub missed: u64,
}

impl<S: Store> Coordinator<S> {
    /// Adds a schedule at `now`. Refused: an expression or zone that does not parse, a jitter
    /// not shorter than the schedule's period, a name that is taken (`ScheduleExists`), more
    /// than [`MAX_SCHEDULES`].
    pub async fn add_schedule(
        &self,
        name: &str,
        spec: ScheduleSpec,
        now: Millis,
    ) -> Result<ScheduleStatus, Error> {
        let rule = CronRule::parse(&spec.cron, &spec.zone)?;
        if spec.jitter_ms > 0 {
            let mut at = now;
            for _ in 0..PERIODS_CHECKED {
                let Some(next) = rule.next_after(at) else {
                    break;
                };
                if let Some(period) = rule.period_after(at).filter(|&p| spec.jitter_ms >= p) {
                    return Err(Error::from(DomainError::InvalidRequest(format!(
                        "field 'jitter_ms': {} ms is not shorter than the schedule's period of \
                         {period} ms (a board's run would start after the next firing)",
                        spec.jitter_ms
                    ))));
                }
                at = next;
            }
        }
        if self.store.schedules().await?.len() >= MAX_SCHEDULES {
            return Err(Error::from(DomainError::InvalidRequest(format!(
                "field 'name': at most {MAX_SCHEDULES} schedules are kept; remove one first"
            ))));
        }
        let record = ScheduleRecord {
            name: name.to_string(),
            spec: ScheduleSpec {
                cron: rule.expr().to_string(),
                zone: rule.zone().name().to_string(),
                ..spec
            },
            paused: false,
            created_at: now,
            handled_until: now,
        };
        if !self.store.add_schedule(&record).await? {
            return Err(Error::from(DomainError::ScheduleExists(name.to_string())));
        }
        tracing::info!(schedule = %name, cron = %record.spec.cron, zone = %record.spec.zone, "schedule added");
        self.status_of(record, now).await
    }

    /// Every schedule as listed at `now`, by name.
    pub async fn schedules(&self, now: Millis) -> Result<Vec<ScheduleStatus>, Error> {
        let mut out = Vec::new();
        for schedule in self.store.schedules().await? {
            out.push(self.status_of(schedule, now).await?);
        }
        Ok(out)
    }

    /// A schedule as listed at `now`: its next firing, its recent firings with their
    /// campaigns' run counts, how many were missed.
    async fn status_of(
        &self,
        schedule: ScheduleRecord,
        now: Millis,
    ) -> Result<ScheduleStatus, Error> {
        let (rule, problem) = match CronRule::parse(&schedule.spec.cron, &schedule.spec.zone) {
            Ok(rule) => (Some(rule), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let next = rule
            .as_ref()
            .filter(|_| !schedule.paused)
            .and_then(|r| r.next_after(now.max(schedule.handled_until)));
        let campaigns = self
            .store
            .campaigns_page(Some(&schedule.name), None, RECENT_FIRINGS)
            .await?;
        let mut counts: HashMap<String, RunCounts> = campaigns
            .items
            .into_iter()
            .map(|(_, (c, n))| (c.id, n))
            .collect();
        let recent = self
            .store
            .firings(&schedule.name, RECENT_FIRINGS)
            .await?
            .into_iter()
            .map(|f| {
                let n = f.campaign_id.as_ref().and_then(|id| counts.remove(id));
                (f, n)
            })
            .collect();
        let missed = self.store.missed_firings(&schedule.name).await?;
        Ok(ScheduleStatus {
            schedule,
            rule,
            problem,
            next,
            recent,
            missed,
        })
    }

    /// One schedule, or `UnknownSchedule`.
    async fn require_schedule(&self, name: &str) -> Result<ScheduleRecord, Error> {
        self.store
            .schedule(name)
            .await?
            .ok_or_else(|| Error::from(DomainError::UnknownSchedule(name.to_string())))
    }

    /// Removes a schedule and its firing records; its campaigns stay (and still name it).
    pub async fn remove_schedule(&self, name: &str) -> Result<(), Error> {
        if !self.store.remove_schedule(name).await? {
            return Err(Error::from(DomainError::UnknownSchedule(name.to_string())));
        }
        tracing::info!(schedule = %name, "schedule removed");
        Ok(())
    }

    /// Pauses or resumes a schedule at `now`; a resumed schedule fires from `now` on (what
    /// fell due while it was paused does not fire later).
    pub async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        now: Millis,
    ) -> Result<ScheduleStatus, Error> {
        if !self.store.set_schedule_paused(name, paused, now).await? {
            return Err(Error::from(DomainError::UnknownSchedule(name.to_string())));
        }
        tracing::info!(schedule = %name, paused, "schedule paused or resumed");
        self.wake.notify_one();
        let schedule = self.require_schedule(name).await?;
        self.status_of(schedule, now).await
    }

    /// Fires a schedule now, as a firing at `now` (paused or not; its regular firings are not
    /// changed): its campaign with the schedule's settings, jitter and overlap policy.
    /// `NoAgentsMatch` when the selector covers nobody.
    pub async fn run_schedule_now(
        &self,
        name: &str,
        now: Millis,
    ) -> Result<(CampaignRecord, Vec<RunRecord>), Error> {
        let schedule = self.require_schedule(name).await?;
        let rule = CronRule::parse(&schedule.spec.cron, &schedule.spec.zone)?;
        let (campaign, runs) = self.plan_firing(&schedule, &rule, now, now).await?;
        let claim = Claim {
            schedule: name,
            missed: &[],
            fired: Some((&campaign, &runs, "run now")),
            handled_until: None,
            even_paused: true,
            at: now,
        };
        match self.store.claim_firings(claim).await? {
            ClaimOutcome::Claimed => {
                tracing::info!(schedule = %name, campaign = %campaign.id, runs = runs.len(), "schedule run now");
                self.wake.notify_one();
                Ok((campaign, runs))
            }
            // The same millisecond as a firing already made: that firing is the answer.
            ClaimOutcome::Taken {
                campaign_id: Some(id),
            } => self.campaign(&id).await,
            ClaimOutcome::Taken { campaign_id: None } => {
                Err(Error::from(DomainError::InvalidRequest(format!(
                    "schedule '{name}' has a firing recorded at {} already; try again",
                    rfc3339(now)
                ))))
            }
            ClaimOutcome::NoSchedule => {
                Err(Error::from(DomainError::UnknownSchedule(name.to_string())))
            }
        }
    }

    /// Fires what is due at `now` for every active schedule: records the missed firings and
    /// claims the one that fires (see [`crate::cron::due`]). A schedule that fails is logged
    /// and tried again on the next tick; the others go on.
    pub async fn fire_due_schedules(&self, now: Millis) -> Result<(), Error> {
        for schedule in self.store.schedules().await? {
            if schedule.paused {
                continue;
            }
            let rule = match CronRule::parse(&schedule.spec.cron, &schedule.spec.zone) {
                Ok(rule) => rule,
                Err(e) => {
                    tracing::warn!(schedule = %schedule.name, "schedule cannot fire: {e}");
                    continue;
                }
            };
            let d = due(
                &rule,
                schedule.handled_until,
                now,
                schedule.spec.catch_up_ms,
            );
            if d.fire.is_none() && d.missed.is_empty() {
                continue;
            }
            if let Err(e) = self.handle_due(&schedule, &rule, &d, now).await {
                tracing::warn!(schedule = %schedule.name, "firing failed (tried again on the next tick): {e}");
            }
        }
        Ok(())
    }

    /// Records and claims what `d` says is due for one schedule.
    async fn handle_due(
        &self,
        schedule: &ScheduleRecord,
        rule: &CronRule,
        d: &Due,
        now: Millis,
    ) -> Result<(), Error> {
        let name = schedule.name.as_str();
        let mut planned = None;
        let mut no_match = None;
        if let Some(at) = d.fire {
            match self.plan_firing(schedule, rule, at, now).await {
                Ok(p) => planned = Some(p),
                Err(Error::Domain(DomainError::NoAgentsMatch(selector))) => {
                    no_match = Some(format!(
                        "not fired: selector {selector} matches no registered agent"
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        let reason = match (d.fire, &no_match) {
            (Some(at), None) => format!(
                "not fired at its time (the coordinator was down or behind); only the latest \
                 due firing ({}) was caught up",
                rfc3339(at)
            ),
            (Some(at), Some(_)) => format!(
                "not fired at its time (the coordinator was down or behind); only the latest \
                 due firing ({}) was to be caught up, and its selector matched no agent",
                rfc3339(at)
            ),
            (None, _) => format!(
                "not fired at its time (the coordinator was down or behind), and older than \
                 the catch-up window of {} ms when it came back",
                schedule.spec.catch_up_ms.unwrap_or(0)
            ),
        };
        let mut missed: Vec<(Millis, String)> =
            d.missed.iter().map(|&t| (t, reason.clone())).collect();
        if let (Some(at), Some(why)) = (d.fire, no_match) {
            missed.push((at, why));
        }
        if d.missed_more {
            tracing::warn!(
                schedule = %name,
                "more than {} firings were missed: the oldest {} and the latest are recorded",
                crate::cron::MAX_MISSED_LISTED,
                d.missed.len()
            );
        }
        let late = d.fire.is_some_and(|at| now - at > LATE_MS) || !d.missed.is_empty();
        let message = if late { "catch-up" } else { "on time" };
        let claim = Claim {
            schedule: name,
            missed: &missed,
            fired: planned
                .as_ref()
                .map(|(c, runs)| (c, runs.as_slice(), message)),
            handled_until: Some(now),
            even_paused: false,
            at: now,
        };
        match self.store.claim_firings(claim).await? {
            ClaimOutcome::Claimed => {
                for (at, why) in &missed {
                    tracing::warn!(schedule = %name, scheduled_at = %rfc3339(*at), "firing missed: {why}");
                }
                if let Some((c, runs)) = &planned {
                    tracing::info!(
                        schedule = %name,
                        scheduled_at = %rfc3339(d.fire.unwrap_or(now)),
                        campaign = %c.id,
                        runs = runs.len(),
                        "schedule fired ({message})"
                    );
                    self.wake.notify_one();
                }
            }
            ClaimOutcome::Taken { campaign_id } => {
                tracing::debug!(schedule = %name, campaign = ?campaign_id, "firing claimed by another coordinator");
            }
            ClaimOutcome::NoSchedule => {
                tracing::debug!(schedule = %name, "schedule removed or paused meanwhile");
            }
        }
        Ok(())
    }

    /// The campaign and runs of a firing of `schedule` at `scheduled_at`, created at `now`
    /// (not stored): the schedule's campaign settings (the coordinator's run timeout when it
    /// sets none; the deadline by default the next firing), each queued run after its jitter,
    /// each board busy with an earlier run skipped or queued by the overlap policy.
    async fn plan_firing(
        &self,
        schedule: &ScheduleRecord,
        rule: &CronRule,
        scheduled_at: Millis,
        now: Millis,
    ) -> Result<(CampaignRecord, Vec<RunRecord>), Error> {
        let mut spec = schedule.spec.campaign.clone();
        if spec.run_timeout_s == 0 {
            spec.run_timeout_s = self.settings.default_run_timeout_s;
        }
        let deadline = if spec.deadline_s > 0 {
            now + Millis::from(spec.deadline_s) * 1000
        } else {
            rule.next_after(scheduled_at.max(now))
                .unwrap_or(now + Millis::from(self.settings.default_deadline_s) * 1000)
        };
        // What the spec says is the deadline as it was set: seconds from the campaign's start.
        spec.deadline_s = u32::try_from((deadline - now).div_euclid(1000)).unwrap_or(u32::MAX);
        let agents = self.store.agents().await?;
        let planned = plan_campaign(&agents, &self.presets, &spec)?;
        let campaigns = self.store.active_campaigns().await?;
        let active = self.store.active_runs().await?;
        let busy = busy_boards(&schedule.name, &campaigns, &active);
        let campaign = CampaignRecord {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            deadline,
            spec,
            firing: Some(FiringTag {
                schedule: schedule.name.clone(),
                scheduled_at,
            }),
        };
        let mut runs = new_runs(&campaign.id, planned, now);
        let jitter = schedule.spec.jitter_ms;
        for run in runs.iter_mut().filter(|r| r.state == RunState::Queued) {
            let busy_run = busy.get(&run.agent_id).map(String::as_str);
            match admit(schedule.spec.overlap, busy_run) {
                Admission::Start => {}
                Admission::Queue => {
                    run.message = format!("queued: busy with run {}", busy_run.unwrap_or("?"));
                }
                Admission::Skip(reason) => {
                    run.state = RunState::Skipped;
                    run.message = reason;
                    run.finished_at = Some(now);
                    continue;
                }
            }
            if jitter > 0 {
                run.not_before =
                    Some(now + jitter_delay(&schedule.name, scheduled_at, &run.agent_id, jitter));
            }
        }
        Ok((campaign, runs))
    }
}

#[cfg(test)]
#[path = "schedules_tests.rs"]
pub(crate) mod tests;
