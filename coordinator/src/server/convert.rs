//! Conversions between `fleetcal.v1` messages and the domain types. Requests are validated
//! here: a bad field is an `InvalidRequest` naming the field and the input.

use fleetcal_proto::{pb, Operation, Precision};

use super::core::AgentStatus;
use super::schedules::{ScheduleStatus, MAX_CATCH_UP_MS, MAX_JITTER_MS};
use crate::aggregate::RunCounts;
use crate::cron::Overlap;
use crate::domain::DomainError;
use crate::fleet::{AlertRecord, FleetQuery, ReportKind, ReportQuery};
use crate::model::{
    rfc3339, AgentRecord, CampaignRecord, CampaignSpec, Capabilities, FiringRecord,
    FrameworkChoice, Millis, Overrides, RunRecord, ScheduleSpec, Selector,
};
use crate::store::{CampaignKey, Page, RunKey};
use crate::{validate, Error};

/// Capabilities from the wire.
pub fn caps_from_pb(c: pb::Capabilities) -> Capabilities {
    Capabilities {
        arch: c.arch,
        cpu_vendor: c.cpu_vendor,
        cpu_model: c.cpu_model,
        cpu_count: c.cpu_count,
        memory_gb: c.memory_gb,
        simd: c.simd,
        os: c.os,
        kernel: c.kernel,
        engines: c.engines,
        cuda_available: c.cuda_available,
        gpu_name: c.gpu_name,
        cuda_version: c.cuda_version,
        jetson_model: c.jetson_model,
        power_mode: c.power_mode,
        environment_key: c.environment_key,
        environment_json: c.environment_json,
    }
}

/// Capabilities to the wire.
pub fn caps_to_pb(c: &Capabilities) -> pb::Capabilities {
    pb::Capabilities {
        arch: c.arch.clone(),
        cpu_vendor: c.cpu_vendor.clone(),
        cpu_model: c.cpu_model.clone(),
        cpu_count: c.cpu_count,
        memory_gb: c.memory_gb,
        simd: c.simd.clone(),
        os: c.os.clone(),
        kernel: c.kernel.clone(),
        engines: c.engines.clone(),
        cuda_available: c.cuda_available,
        gpu_name: c.gpu_name.clone(),
        cuda_version: c.cuda_version.clone(),
        jetson_model: c.jetson_model.clone(),
        power_mode: c.power_mode.clone(),
        environment_key: c.environment_key.clone(),
        environment_json: c.environment_json.clone(),
    }
}

/// The page size of a list call that asks for none (`page_size` 0).
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// The largest page size; a larger request gets this many.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The most encoded bytes of the items of one page (a quarter of the 16 MiB message limit):
/// a page ends early rather than grow past it, always with at least one item.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// The longest page token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 256;

/// The page size to use for a request's `page_size`.
pub fn page_size(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

fn bad_token(token: &str) -> Error {
    Error::from(DomainError::InvalidRequest(format!(
        "field 'page_token': {} is not a page token of this listing",
        fleetcal_proto::quote::quoted(token)
    )))
}

/// A ListAgents `page_token` ("" = the first page): the agent id to continue after.
pub fn agent_token(token: &str) -> Result<Option<String>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    match token.strip_prefix("a1.") {
        Some(id) if token.len() <= MAX_TOKEN_LEN && !id.is_empty() => Ok(Some(id.to_string())),
        _ => Err(bad_token(token)),
    }
}

/// A ListRuns `page_token` ("" = the first page): the run key to continue after.
pub fn run_token(token: &str) -> Result<Option<RunKey>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let parse = || {
        let rest = token.strip_prefix("r1.")?;
        let (created_at, rest) = rest.split_once('.')?;
        let (seq, campaign_id) = rest.split_once('.')?;
        Some(RunKey {
            created_at: created_at.parse().ok()?,
            campaign_id: campaign_id.to_string(),
            seq: seq.parse().ok()?,
        })
    };
    match parse() {
        Some(key) if token.len() <= MAX_TOKEN_LEN && !key.campaign_id.is_empty() => Ok(Some(key)),
        _ => Err(bad_token(token)),
    }
}

/// A ListCampaigns `page_token` ("" = the first page): the campaign key to continue after.
pub fn campaign_token(token: &str) -> Result<Option<CampaignKey>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let parse = || {
        let rest = token.strip_prefix("c1.")?;
        let (created_at, id) = rest.split_once('.')?;
        Some(CampaignKey {
            created_at: created_at.parse().ok()?,
            id: id.to_string(),
        })
    };
    match parse() {
        Some(key) if token.len() <= MAX_TOKEN_LEN && !key.id.is_empty() => Ok(Some(key)),
        _ => Err(bad_token(token)),
    }
}

fn campaign_token_of(k: &CampaignKey) -> String {
    format!("c1.{}.{}", k.created_at, k.id)
}

fn agent_token_of(id: &String) -> String {
    format!("a1.{id}")
}

fn run_token_of(k: &RunKey) -> String {
    format!("r1.{}.{}.{}", k.created_at, k.seq, k.campaign_id)
}

/// A page's items on the wire, at most [`MAX_PAGE_BYTES`] of them (at least one), and the
/// token of the next page ("" when the listing ended).
fn wire_page<K, T, P: prost::Message>(
    page: Page<K, T>,
    to_pb: impl Fn(T) -> P,
    token: impl Fn(&K) -> String,
) -> (Vec<P>, String) {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut included: Option<K> = None;
    for (key, item) in page.items {
        let message = to_pb(item);
        // The item, its field tag and its length prefix.
        let len = message.encoded_len().saturating_add(16);
        if let Some(last) = included
            .as_ref()
            .filter(|_| bytes.saturating_add(len) > MAX_PAGE_BYTES)
        {
            return (out, token(last));
        }
        bytes = bytes.saturating_add(len);
        out.push(message);
        included = Some(key);
    }
    (out, page.last.as_ref().map(token).unwrap_or_default())
}

/// A page of agents on the wire.
pub fn agents_page_to_pb(page: Page<String, AgentStatus>) -> pb::ListAgentsResponse {
    let (agents, next_page_token) = wire_page(
        page,
        |s| pb::Agent {
            quarantine: s.quarantine.unwrap_or_default(),
            revoked: s.revoked,
            cert_not_after: s.cert_not_after.map(rfc3339).unwrap_or_default(),
            ..agent_to_pb(&s.agent, s.preset, s.online)
        },
        agent_token_of,
    );
    pb::ListAgentsResponse {
        agents,
        next_page_token,
    }
}

/// A page of runs on the wire.
pub fn runs_page_to_pb(page: Page<RunKey, RunRecord>) -> pb::ListRunsResponse {
    let (runs, next_page_token) = wire_page(page, |r| run_to_pb(&r), run_token_of);
    pb::ListRunsResponse {
        runs,
        next_page_token,
    }
}

/// A page of campaigns on the wire.
pub fn campaigns_page_to_pb(
    page: Page<CampaignKey, (CampaignRecord, RunCounts)>,
) -> pb::ListCampaignsResponse {
    let (campaigns, next_page_token) = wire_page(
        page,
        |(c, counts)| campaign_to_pb(&c, &counts),
        campaign_token_of,
    );
    pb::ListCampaignsResponse {
        campaigns,
        next_page_token,
    }
}

/// An agent to the wire.
pub fn agent_to_pb(a: &AgentRecord, matched_preset: String, online: bool) -> pb::Agent {
    pb::Agent {
        agent_id: a.agent_id.clone(),
        hostname: a.hostname.clone(),
        labels: a.labels.clone().into_iter().collect(),
        preset: a.preset.clone(),
        matched_preset,
        capabilities: Some(caps_to_pb(&a.capabilities)),
        agent_version: a.agent_version.clone(),
        online,
        last_seen: rfc3339(a.last_seen),
        quarantine: String::new(),
        revoked: false,
        cert_not_after: String::new(),
    }
}

/// A campaign request from the wire; `0` timeouts are left for the caller's defaults.
pub fn spec_from_pb(req: pb::StartCampaignRequest) -> Result<CampaignSpec, Error> {
    use pb::selector::Kind;
    let selector = match req.selector.and_then(|s| s.kind) {
        None => {
            return Err(Error::from(DomainError::InvalidRequest(
                "field 'selector': one of all, labels, preset, agent_id is required".into(),
            )))
        }
        Some(Kind::All(_)) => Selector::All,
        Some(Kind::Labels(l)) if l.labels.is_empty() => {
            return Err(Error::from(DomainError::InvalidRequest(
                "field 'selector.labels': at least one key=value is required".into(),
            )))
        }
        Some(Kind::Labels(l)) => {
            let labels = l.labels.into_iter().collect();
            validate::labels("selector.labels", &labels)?;
            Selector::Labels(labels)
        }
        Some(Kind::Preset(p)) if p.trim().is_empty() => {
            return Err(Error::from(DomainError::InvalidRequest(
                "field 'selector.preset': must not be empty".into(),
            )))
        }
        Some(Kind::Preset(p)) => {
            validate::preset_id("selector.preset", &p)?;
            Selector::Preset(p)
        }
        Some(Kind::AgentId(id)) => {
            validate::id("selector.agent_id", &id)?;
            Selector::Agent(id)
        }
    };
    for (field, len) in [
        ("operations", req.operations.len()),
        ("precisions", req.precisions.len()),
        ("blas_sizes", req.blas_sizes.len()),
        ("stream_mib", req.stream_mib.len()),
    ] {
        validate::overrides(field, len)?;
    }
    let framework: FrameworkChoice = req.framework.parse()?;
    let operations = req
        .operations
        .iter()
        .map(|o| o.parse::<Operation>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::from(DomainError::InvalidRequest(format!(
                "field 'operations': {e}"
            )))
        })?;
    let precisions = req
        .precisions
        .iter()
        .map(|p| p.parse::<Precision>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::from(DomainError::InvalidRequest(format!(
                "field 'precisions': {e}"
            )))
        })?;
    for (field, values) in [
        ("blas_sizes", &req.blas_sizes),
        ("stream_mib", &req.stream_mib),
    ] {
        if values.contains(&0) {
            return Err(Error::from(DomainError::InvalidRequest(format!(
                "field '{field}': sizes must be at least 1"
            ))));
        }
    }
    if !(req.min_gflops.is_finite() && req.min_gflops >= 0.0) {
        return Err(Error::from(DomainError::InvalidRequest(format!(
            "field 'min_gflops': {} must be a non-negative number",
            fleetcal_proto::quote::number(req.min_gflops)
        ))));
    }
    if let Some(w) = req.warmup.filter(|&w| w > pb::MAX_WARMUP) {
        return Err(Error::from(DomainError::InvalidRequest(format!(
            "field 'warmup': {w} must be 0..={}",
            pb::MAX_WARMUP
        ))));
    }
    if req.trials > pb::MAX_TRIALS {
        return Err(Error::from(DomainError::InvalidRequest(format!(
            "field 'trials': {} must be 1..={} (0 = the default)",
            req.trials,
            pb::MAX_TRIALS
        ))));
    }
    if req.max_duration_s > pb::MAX_DURATION_S {
        return Err(Error::from(DomainError::InvalidRequest(format!(
            "field 'max_duration_s': {} must be 1..={} seconds (0 = none)",
            req.max_duration_s,
            pb::MAX_DURATION_S
        ))));
    }
    Ok(CampaignSpec {
        selector,
        framework,
        quick: req.quick,
        warmup: req.warmup,
        trials: (req.trials > 0).then_some(req.trials),
        max_duration_s: (req.max_duration_s > 0).then_some(req.max_duration_s),
        run_timeout_s: req.run_timeout_s,
        deadline_s: req.deadline_s,
        concurrency: req.concurrency,
        overrides: Overrides {
            operations,
            precisions,
            blas_sizes: req.blas_sizes,
            stream_mib: req.stream_mib,
            min_gflops: req.min_gflops,
        },
    })
}

/// A campaign and its run counts to the wire.
pub fn campaign_to_pb(c: &CampaignRecord, counts: &RunCounts) -> pb::Campaign {
    let total: u32 = counts.values().fold(0, |a, n| a.saturating_add(*n));
    let active: u32 = counts
        .iter()
        .filter(|(s, _)| !s.is_terminal())
        .map(|(_, n)| *n)
        .sum();
    pb::Campaign {
        id: c.id.clone(),
        created_at: rfc3339(c.created_at),
        framework: c.spec.framework.as_str().to_string(),
        quick: c.spec.quick,
        concurrency: c.spec.concurrency,
        run_timeout_s: c.spec.run_timeout_s,
        deadline: rfc3339(c.deadline),
        warmup: c.spec.warmup,
        trials: c.spec.trials.unwrap_or(0),
        max_duration_s: c.spec.max_duration_s.unwrap_or(0),
        run_counts: counts_to_pb(counts),
        total_runs: total,
        finished: active == 0,
        schedule: c.firing.as_ref().map(|f| f.schedule.clone()),
        scheduled_at: c
            .firing
            .as_ref()
            .map(|f| rfc3339(f.scheduled_at))
            .unwrap_or_default(),
    }
}

/// Run counts by state name.
fn counts_to_pb(counts: &RunCounts) -> std::collections::HashMap<String, u32> {
    counts.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The campaign settings of a spec on the wire (as StartCampaign takes them).
pub fn spec_to_pb(spec: &CampaignSpec) -> pb::StartCampaignRequest {
    use pb::selector::Kind;
    let kind = match &spec.selector {
        Selector::All => Kind::All(true),
        Selector::Labels(l) => Kind::Labels(pb::Labels {
            labels: l.clone().into_iter().collect(),
        }),
        Selector::Preset(p) => Kind::Preset(p.clone()),
        Selector::Agent(id) => Kind::AgentId(id.clone()),
    };
    let o = &spec.overrides;
    pb::StartCampaignRequest {
        selector: Some(pb::Selector { kind: Some(kind) }),
        quick: spec.quick,
        framework: spec.framework.as_str().to_string(),
        run_timeout_s: spec.run_timeout_s,
        deadline_s: spec.deadline_s,
        concurrency: spec.concurrency,
        operations: o.operations.iter().map(|x| x.as_str().into()).collect(),
        precisions: o.precisions.iter().map(|x| x.as_str().into()).collect(),
        blas_sizes: o.blas_sizes.clone(),
        stream_mib: o.stream_mib.clone(),
        min_gflops: o.min_gflops,
        warmup: spec.warmup,
        trials: spec.trials.unwrap_or(0),
        max_duration_s: spec.max_duration_s.unwrap_or(0),
    }
}

/// An AddSchedule request from the wire: the name and the spec, each field checked (the
/// expression and zone are parsed by the use case, which names them).
pub fn schedule_from_pb(req: pb::AddScheduleRequest) -> Result<(String, ScheduleSpec), Error> {
    let invalid = |m: String| Error::from(DomainError::InvalidRequest(m));
    validate::schedule_name("name", &req.name)?;
    let campaign = req.campaign.ok_or_else(|| {
        invalid("field 'campaign': the selector and settings are required".into())
    })?;
    let campaign = spec_from_pb(campaign)?;
    let overlap = match req.overlap.trim() {
        "" => Overlap::default(),
        text => text
            .parse::<Overlap>()
            .map_err(|e| invalid(format!("field 'overlap': {e}")))?,
    };
    let jitter_ms = Millis::try_from(req.jitter_ms)
        .ok()
        .filter(|j| *j <= MAX_JITTER_MS)
        .ok_or_else(|| {
            invalid(format!(
                "field 'jitter_ms': {} must be 0 to {MAX_JITTER_MS} (one day)",
                req.jitter_ms
            ))
        })?;
    let catch_up_ms = req
        .catch_up_ms
        .map(|c| {
            Millis::try_from(c)
                .ok()
                .filter(|c| *c <= MAX_CATCH_UP_MS)
                .ok_or_else(|| {
                    invalid(format!(
                        "field 'catch_up_ms': {c} must be 0 to {MAX_CATCH_UP_MS} (366 days)"
                    ))
                })
        })
        .transpose()?;
    let zone = match req.zone.trim() {
        "" => "UTC".to_string(),
        z => z.to_string(),
    };
    Ok((
        req.name,
        ScheduleSpec {
            cron: req.cron,
            zone,
            campaign,
            jitter_ms,
            overlap,
            catch_up_ms,
        },
    ))
}

/// A firing to the wire; `local` shows a time in the schedule's zone.
fn firing_to_pb(
    f: FiringRecord,
    counts: Option<RunCounts>,
    local: &dyn Fn(Millis) -> String,
) -> pb::Firing {
    pb::Firing {
        scheduled_at: rfc3339(f.scheduled_at),
        scheduled_at_local: local(f.scheduled_at),
        outcome: f.outcome.as_str().to_string(),
        campaign_id: f.campaign_id.unwrap_or_default(),
        message: f.message,
        recorded_at: rfc3339(f.recorded_at),
        run_counts: counts.as_ref().map(counts_to_pb).unwrap_or_default(),
    }
}

/// A schedule as listed to the wire.
pub fn schedule_to_pb(st: ScheduleStatus) -> pb::Schedule {
    let rule = st.rule;
    let local = |at: Millis| rule.as_ref().map(|r| r.local(at)).unwrap_or_default();
    let s = st.schedule;
    pb::Schedule {
        next_firing: st.next.map(rfc3339).unwrap_or_default(),
        next_firing_local: st.next.map(&local).unwrap_or_default(),
        campaign: Some(spec_to_pb(&s.spec.campaign)),
        jitter_ms: u64::try_from(s.spec.jitter_ms).unwrap_or(0),
        overlap: s.spec.overlap.as_str().to_string(),
        catch_up_ms: s.spec.catch_up_ms.map(|c| u64::try_from(c).unwrap_or(0)),
        recent_firings: st
            .recent
            .into_iter()
            .map(|(f, n)| firing_to_pb(f, n, &local))
            .collect(),
        missed_firings: st.missed,
        problem: st.problem.unwrap_or_default(),
        name: s.name,
        cron: s.spec.cron,
        zone: s.spec.zone,
        paused: s.paused,
        created_at: rfc3339(s.created_at),
    }
}

/// A run to the wire.
pub fn run_to_pb(r: &RunRecord) -> pb::Run {
    pb::Run {
        run_id: r.run_id.clone(),
        campaign_id: r.campaign_id.clone(),
        agent_id: r.agent_id.clone(),
        hostname: r.hostname.clone(),
        preset_id: r.preset_id.clone(),
        framework: r.framework.as_str().into(),
        device: r.device.as_str().into(),
        state: r.state.as_str().into(),
        fraction: r.fraction,
        message: r.message.clone(),
        started_at: r.started_at.map(rfc3339).unwrap_or_default(),
        finished_at: r.finished_at.map(rfc3339).unwrap_or_default(),
        not_before: r.not_before.map(rfc3339).unwrap_or_default(),
    }
}

/// The directive that tells an agent to run `run`.
pub fn plan_directive(r: &RunRecord, c: &CampaignRecord) -> pb::Directive {
    let o = &c.spec.overrides;
    pb::Directive {
        action: Some(pb::directive::Action::Plan(pb::Plan {
            run_id: r.run_id.clone(),
            campaign_id: r.campaign_id.clone(),
            preset_id: r.preset_id.clone(),
            framework: r.framework.as_str().into(),
            device: r.device.as_str().into(),
            quick: c.spec.quick,
            operations: o.operations.iter().map(|x| x.as_str().into()).collect(),
            precisions: o.precisions.iter().map(|x| x.as_str().into()).collect(),
            blas_sizes: o.blas_sizes.clone(),
            stream_mib: o.stream_mib.clone(),
            min_gflops: o.min_gflops,
            timeout_s: c.spec.run_timeout_s,
            deadline: c.deadline / 1000,
            warmup: c.spec.warmup,
            trials: c.spec.trials.unwrap_or(0),
            max_duration_s: c.spec.max_duration_s.unwrap_or(0),
        })),
    }
}

/// The directive that tells an agent there is nothing to do.
pub fn idle_directive() -> pb::Directive {
    pb::Directive {
        action: Some(pb::directive::Action::Idle(pb::Idle {})),
    }
}

/// An alert to the wire.
pub fn alert_to_pb(a: AlertRecord) -> pb::Alert {
    pb::Alert {
        id: a.id,
        agent_id: a.agent_id,
        hostname: a.hostname,
        group_key: a.group_key,
        framework: a.framework,
        figure: a.figure,
        baseline: a.baseline,
        current: a.current,
        change_pct: a.change_pct,
        kind: a.kind,
        began_at: rfc3339(a.began_at),
        run_id: a.run_id,
        confirm_campaign_id: a.confirm_campaign_id.unwrap_or_default(),
        state: a.state.as_str().to_string(),
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
        message: a.message,
    }
}

/// A `Report` request from the wire: which report, and what it reads.
pub fn report_from_pb(req: pb::ReportRequest) -> Result<(ReportKind, ReportQuery), Error> {
    let kind: ReportKind = req.kind.parse()?;
    let select: std::collections::BTreeMap<String, String> = req.select.into_iter().collect();
    validate::labels("select", &select)?;
    let some = |s: String| (!s.trim().is_empty()).then_some(s);
    let group = some(req.group);
    if let Some(g) = &group {
        validate::id("group", g)?;
    }
    let agent_id = some(req.agent_id);
    if let Some(id) = &agent_id {
        validate::id("agent_id", id)?;
    }
    let schedule = some(req.schedule);
    if let Some(name) = &schedule {
        validate::schedule_name("schedule", name)?;
    }
    let framework = match some(req.framework) {
        None => None,
        Some(f) => Some(
            f.parse::<fleetcal_proto::Framework>()
                .map_err(|e| {
                    Error::from(DomainError::InvalidRequest(format!(
                        "field 'framework': {e}"
                    )))
                })?
                .as_str()
                .to_string(),
        ),
    };
    let since = some(req.since).map(|s| parse_since(&s)).transpose()?;
    let nights = (req.nights != 0).then_some(req.nights);
    if since.is_some() && nights.is_some() {
        return Err(Error::from(DomainError::InvalidRequest(
            "fields 'since' and 'nights': give one or the other".into(),
        )));
    }
    let query = ReportQuery {
        fleet: FleetQuery {
            select: select.into_iter().collect(),
            agent_id,
            since,
            schedule,
            framework,
            ..FleetQuery::default()
        },
        group,
        nights,
        ..ReportQuery::default()
    };
    Ok((kind, query))
}

/// A report's `since`: a day (`YYYY-MM-DD`, from its midnight UTC) or an RFC 3339 time.
pub fn parse_since(text: &str) -> Result<Millis, Error> {
    crate::fleet::parse_since(text)
        .map_err(|why| Error::from(DomainError::InvalidRequest(format!("field 'since': {why}"))))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
