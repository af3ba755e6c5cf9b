//! `fleetctl schedule add|list|remove|pause|resume|run-now`.

use fleetcal_proto::pb;
use serde_json::json;

use super::campaign::{campaign_json, counts_text, request};
use super::cli::{ScheduleAddArgs, ScheduleCmd};
use super::client::Admin;
use super::duration::millis;
use super::table::render;
use crate::domain::DomainError;
use crate::Error;

/// Runs one `fleetctl schedule` command.
pub async fn run(admin: &mut Admin, cmd: ScheduleCmd) -> Result<(), Error> {
    match cmd {
        ScheduleCmd::Add(a) => add(admin, *a).await,
        ScheduleCmd::List { json } => list(admin, json).await,
        ScheduleCmd::Remove { name } => {
            admin
                .remove_schedule(pb::RemoveScheduleRequest { name: name.clone() })
                .await?;
            println!("removed schedule {name}");
            Ok(())
        }
        ScheduleCmd::Pause { name } => set_paused(admin, name, true).await,
        ScheduleCmd::Resume { name } => set_paused(admin, name, false).await,
        ScheduleCmd::RunNow { name, json } => {
            let c = admin
                .run_schedule_now(pb::RunScheduleNowRequest { name })
                .await?
                .into_inner();
            if json {
                println!("{}", campaign_json(&c));
            } else {
                println!("{}", c.id);
            }
            Ok(())
        }
    }
}

/// `schedule add`: adds it and prints its next firing (or the schedule as JSON).
async fn add(admin: &mut Admin, a: ScheduleAddArgs) -> Result<(), Error> {
    let mut campaign = request(a.selector, a.run)?;
    if let Some(d) = a.deadline {
        campaign.deadline_s = u32::try_from(d.as_secs())
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                Error::from(DomainError::InvalidRequest(
                    "--deadline must be at least 1s".into(),
                ))
            })?;
    }
    let s = admin
        .add_schedule(pb::AddScheduleRequest {
            name: a.name,
            cron: a.cron,
            zone: a.tz.unwrap_or_default(),
            campaign: Some(campaign),
            jitter_ms: a.jitter.map_or(0, millis),
            overlap: a.overlap,
            catch_up_ms: a.catch_up.map(millis),
        })
        .await?
        .into_inner();
    if a.json {
        println!("{}", schedule_json(&s));
    } else {
        println!(
            "added schedule {}: '{}' in {}; next firing {} ({})",
            s.name, s.cron, s.zone, s.next_firing_local, s.next_firing
        );
    }
    Ok(())
}

/// `schedule pause|resume`.
async fn set_paused(admin: &mut Admin, name: String, paused: bool) -> Result<(), Error> {
    let s = admin
        .set_schedule_paused(pb::SetSchedulePausedRequest { name, paused })
        .await?
        .into_inner();
    if paused {
        println!("paused schedule {}", s.name);
    } else {
        println!(
            "resumed schedule {}; next firing {} ({})",
            s.name, s.next_firing_local, s.next_firing
        );
    }
    Ok(())
}

/// `schedule list`: a table, or JSON with every field.
async fn list(admin: &mut Admin, as_json: bool) -> Result<(), Error> {
    let schedules = admin
        .list_schedules(pb::ListSchedulesRequest {})
        .await?
        .into_inner()
        .schedules;
    if as_json {
        let items: Vec<_> = schedules.iter().map(schedule_json).collect();
        println!("{}", serde_json::to_string_pretty(&items).expect("json"));
        return Ok(());
    }
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| {
            let last = s.recent_firings.first();
            vec![
                s.name.clone(),
                s.cron.clone(),
                s.zone.clone(),
                if s.paused { "yes" } else { "no" }.into(),
                dash(&s.next_firing_local),
                dash(&s.next_firing),
                last.map_or("-".into(), |f| {
                    format!("{} {}", f.scheduled_at_local, f.outcome)
                }),
                last.map_or("-".into(), |f| dash(&f.campaign_id)),
                last.map_or("-".into(), |f| dash(&counts_text(&f.run_counts))),
                s.missed_firings.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "NAME",
                "CRON",
                "ZONE",
                "PAUSED",
                "NEXT (LOCAL)",
                "NEXT (UTC)",
                "LAST FIRING",
                "CAMPAIGN",
                "RUNS",
                "MISSED",
            ],
            &rows
        )
    );
    for s in schedules.iter().filter(|s| !s.problem.is_empty()) {
        eprintln!("fleetctl: schedule {} cannot fire: {}", s.name, s.problem);
    }
    Ok(())
}

fn firing_json(f: &pb::Firing) -> serde_json::Value {
    json!({
        "scheduled_at": f.scheduled_at,
        "scheduled_at_local": f.scheduled_at_local,
        "outcome": f.outcome,
        "campaign_id": (!f.campaign_id.is_empty()).then_some(&f.campaign_id),
        "message": f.message,
        "recorded_at": f.recorded_at,
        "run_counts": f.run_counts,
    })
}

fn selector_json(c: &pb::StartCampaignRequest) -> serde_json::Value {
    use pb::selector::Kind;
    match c.selector.as_ref().and_then(|s| s.kind.as_ref()) {
        Some(Kind::All(_)) | None => json!("all"),
        Some(Kind::Labels(l)) => json!({ "labels": l.labels }),
        Some(Kind::Preset(p)) => json!({ "preset": p }),
        Some(Kind::AgentId(id)) => json!({ "agent_id": id }),
    }
}

/// A schedule as `--json` prints it.
pub fn schedule_json(s: &pb::Schedule) -> serde_json::Value {
    let c = s.campaign.clone().unwrap_or_default();
    let some = |t: &String| (!t.is_empty()).then(|| t.clone());
    json!({
        "name": s.name,
        "cron": s.cron,
        "zone": s.zone,
        "paused": s.paused,
        "created_at": s.created_at,
        "next_firing": some(&s.next_firing),
        "next_firing_local": some(&s.next_firing_local),
        "selector": selector_json(&c),
        "framework": c.framework,
        "quick": c.quick,
        "warmup": c.warmup,
        "trials": (c.trials > 0).then_some(c.trials),
        "max_duration_s": (c.max_duration_s > 0).then_some(c.max_duration_s),
        "deadline_s": (c.deadline_s > 0).then_some(c.deadline_s),
        "jitter_ms": s.jitter_ms,
        "overlap": s.overlap,
        "catch_up_ms": s.catch_up_ms,
        "last_firing": s.recent_firings.first().map(firing_json),
        "recent_firings": s.recent_firings.iter().map(firing_json).collect::<Vec<_>>(),
        "missed_firings": s.missed_firings,
        "problem": some(&s.problem),
    })
}
