//! What the coordinator checks at its edges, once, before anything is stored: registrations
//! (agent id, host name, labels, preset, capabilities), the ids of other calls, campaign
//! selectors, and whether an uploaded result's times agree with the coordinator's clock. The
//! result's own rules live in [`fleetcal_proto::result`]; this module adds only what needs
//! `now` (a parameter: nothing here reads a clock) or the run.
//!
//! A refusal is an [`DomainError::InvalidRequest`] (gRPC `INVALID_ARGUMENT`) that names the field
//! and quotes at most a bounded prefix of the value ([`fleetcal_proto::quote`]). The limits are
//! the constants below and are listed in `docs/coordinator.md`.

use std::collections::BTreeMap;

use fleetcal_proto::quote::{number, quoted};
use fleetcal_proto::result::{MAX_CPU_COUNT, MAX_MEMORY_GB};
use fleetcal_proto::CalibrationResult;

use crate::domain::DomainError;
use crate::model::{Capabilities, Millis};

/// The longest id (agent, run, campaign) a request may carry, in bytes; ids the coordinator
/// hands out are 36-character UUIDs.
pub const MAX_ID_LEN: usize = 64;
/// The longest schedule name, in bytes.
pub const MAX_SCHEDULE_NAME_LEN: usize = 64;
/// The longest host name, in bytes.
pub const MAX_HOSTNAME_LEN: usize = 255;
/// The most labels an agent may carry.
pub const MAX_LABELS: usize = 64;
/// The longest label key, in bytes (letters, digits, `.`, `_`, `-`, `/`).
pub const MAX_LABEL_KEY_LEN: usize = 63;
/// The longest label value, in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 255;
/// The longest capability text (`arch`, `cpu_model`, `os`, `gpu_name`, ...) and
/// `agent_version`, in bytes.
pub const MAX_TEXT_LEN: usize = 256;
/// The longest `capabilities.environment_json`, in bytes (a host environment is about 2 KiB).
pub const MAX_ENVIRONMENT_LEN: usize = 64 * 1024;
/// The most entries of a capability list (`simd`, `engines`).
pub const MAX_LIST_LEN: usize = 256;
/// The longest entry of a capability list, in bytes.
pub const MAX_LIST_ITEM_LEN: usize = 64;
/// The most entries of each campaign override list (operations, precisions, sizes).
pub const MAX_OVERRIDES: usize = 64;
/// The longest progress or failure message kept with a run, in bytes.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// How far an uploaded result's times may be ahead of the coordinator's clock, and how long
/// before the run was sent its `started_at` may be, before the board's clock counts as off:
/// agents' clocks are not the coordinator's.
pub const MAX_CLOCK_SKEW_MS: Millis = 10 * 60 * 1000;

fn invalid(message: String) -> DomainError {
    DomainError::InvalidRequest(message)
}

/// Text at most `max` bytes long without control characters; `what` names the field.
fn text(what: &str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.len() > max {
        return Err(invalid(format!(
            "field '{what}': {} is {} bytes, longer than {max}",
            quoted(value),
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "field '{what}': {} contains control characters",
            quoted(value)
        )));
    }
    Ok(())
}

/// An id a request carries (to look up an agent, run or campaign): at most [`MAX_ID_LEN`]
/// bytes, so that a refusal that names it (unknown run, ...) stays short.
pub fn id(field: &str, value: &str) -> Result<(), DomainError> {
    if value.len() > MAX_ID_LEN {
        return Err(invalid(format!(
            "field '{field}': {} is {} bytes, longer than {MAX_ID_LEN}",
            quoted(value),
            value.len()
        )));
    }
    Ok(())
}

/// A schedule name: 1 to [`MAX_SCHEDULE_NAME_LEN`] ASCII letters, digits, `.`, `_` and `-`,
/// starting with a letter or digit (so it is safe in a shell, a file name and a log line).
pub fn schedule_name(field: &str, value: &str) -> Result<(), DomainError> {
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let charset = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if value.len() > MAX_SCHEDULE_NAME_LEN || !first_ok || !charset {
        return Err(invalid(format!(
            "field '{field}': {} must be 1 to {MAX_SCHEDULE_NAME_LEN} ASCII letters, digits, \
             '.', '_' or '-', starting with a letter or digit",
            quoted(value)
        )));
    }
    Ok(())
}

/// A registering agent's id: a UUID.
pub fn agent_id(value: &str) -> Result<(), DomainError> {
    id("agent_id", value)?;
    if uuid::Uuid::parse_str(value).is_err() {
        return Err(invalid(format!(
            "field 'agent_id': {} is not a UUID",
            quoted(value)
        )));
    }
    Ok(())
}

/// A host name: not blank, at most [`MAX_HOSTNAME_LEN`] bytes, no control characters.
pub fn hostname(value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(invalid("field 'hostname': must not be empty".into()));
    }
    text("hostname", value, MAX_HOSTNAME_LEN)
}

/// Labels: at most [`MAX_LABELS`]; keys 1 to [`MAX_LABEL_KEY_LEN`] bytes of ASCII letters,
/// digits, `.`, `_`, `-` and `/` (so `k=v,k2=v2` selectors can name them); values at most
/// [`MAX_LABEL_VALUE_LEN`] bytes without control characters. `field` names the map.
pub fn labels(field: &str, labels: &BTreeMap<String, String>) -> Result<(), DomainError> {
    if labels.len() > MAX_LABELS {
        return Err(invalid(format!(
            "field '{field}': {} labels, at most {MAX_LABELS} are allowed",
            labels.len()
        )));
    }
    for (k, v) in labels {
        let charset = k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
        if k.is_empty() || k.len() > MAX_LABEL_KEY_LEN || !charset {
            return Err(invalid(format!(
                "field '{field}': key {} must be 1 to {MAX_LABEL_KEY_LEN} ASCII letters, digits, \
                 '.', '_', '-' or '/'",
                quoted(k)
            )));
        }
        text(&format!("{field}.{k}"), v, MAX_LABEL_VALUE_LEN)?;
    }
    Ok(())
}

/// A preset id (an agent's configured preset, a campaign's `selector.preset`): the preset
/// file format's id rule.
pub fn preset_id(field: &str, value: &str) -> Result<(), DomainError> {
    fleetcal_proto::preset::validate_id(value).map_err(|m| invalid(format!("field '{field}': {m}")))
}

/// Capabilities: `cpu_count` at most 2^20 (0 = not reported), `memory_gb` finite, 0 to 1e6
/// (the result format's host bounds); every text at most [`MAX_TEXT_LEN`] bytes (`environment_json` at most
/// [`MAX_ENVIRONMENT_LEN`]); `simd` and
/// `engines` at most [`MAX_LIST_LEN`] entries of at most [`MAX_LIST_ITEM_LEN`] bytes.
pub fn capabilities(c: &Capabilities) -> Result<(), DomainError> {
    if c.cpu_count > MAX_CPU_COUNT {
        return Err(invalid(format!(
            "field 'capabilities.cpu_count': {} must be 0 to {MAX_CPU_COUNT}",
            c.cpu_count
        )));
    }
    if !(c.memory_gb.is_finite() && (0.0..=MAX_MEMORY_GB).contains(&c.memory_gb)) {
        return Err(invalid(format!(
            "field 'capabilities.memory_gb': {} must be a finite number from 0 to {MAX_MEMORY_GB:e}",
            number(c.memory_gb)
        )));
    }
    for (name, value) in [
        ("arch", &c.arch),
        ("cpu_vendor", &c.cpu_vendor),
        ("cpu_model", &c.cpu_model),
        ("os", &c.os),
        ("kernel", &c.kernel),
        ("gpu_name", &c.gpu_name),
        ("cuda_version", &c.cuda_version),
        ("jetson_model", &c.jetson_model),
        ("power_mode", &c.power_mode),
        ("environment_key", &c.environment_key),
    ] {
        text(&format!("capabilities.{name}"), value, MAX_TEXT_LEN)?;
    }
    text(
        "capabilities.environment_json",
        &c.environment_json,
        MAX_ENVIRONMENT_LEN,
    )?;
    for (name, list) in [("simd", &c.simd), ("engines", &c.engines)] {
        if list.len() > MAX_LIST_LEN {
            return Err(invalid(format!(
                "field 'capabilities.{name}': {} entries, at most {MAX_LIST_LEN} are allowed",
                list.len()
            )));
        }
        for (i, item) in list.iter().enumerate() {
            text(
                &format!("capabilities.{name}[{i}]"),
                item,
                MAX_LIST_ITEM_LEN,
            )?;
        }
    }
    Ok(())
}

/// Everything a Register call carries.
pub fn registration(
    agent_id_value: &str,
    hostname_value: &str,
    labels_value: &BTreeMap<String, String>,
    preset: Option<&str>,
    caps: &Capabilities,
    agent_version: &str,
) -> Result<(), DomainError> {
    agent_id(agent_id_value)?;
    hostname(hostname_value)?;
    labels("labels", labels_value)?;
    if let Some(p) = preset.filter(|p| !p.trim().is_empty()) {
        preset_id("preset", p)?;
    }
    capabilities(caps)?;
    text("agent_version", agent_version, MAX_TEXT_LEN)
}

/// A list of campaign overrides: at most [`MAX_OVERRIDES`] entries.
pub fn overrides(field: &str, len: usize) -> Result<(), DomainError> {
    if len > MAX_OVERRIDES {
        return Err(invalid(format!(
            "field '{field}': {len} entries, at most {MAX_OVERRIDES} are allowed"
        )));
    }
    Ok(())
}

/// A progress or failure message as stored: cut at a character boundary to at most
/// [`MAX_MESSAGE_LEN`] bytes, then `…`, rather than refused (a failure report must not be
/// lost for being long).
pub fn message(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= MAX_MESSAGE_LEN {
        return value.into();
    }
    let mut end = MAX_MESSAGE_LEN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end]).into()
}

/// Whether an uploaded result's times agree with the coordinator's clock: neither time more
/// than [`MAX_CLOCK_SKEW_MS`] after `now`, and `started_at` not more than that before
/// `sent_at` (when the coordinator sent the run). The result itself has passed
/// [`CalibrationResult::validate`]. An error says how the board's clock is off, naming the
/// field; it is not a refusal: the upload stores the result and places it by the
/// coordinator's clock (a board without a real-time clock starts at 1970).
pub fn result_times(
    result: &CalibrationResult,
    now: Millis,
    sent_at: Option<Millis>,
) -> Result<(), String> {
    let m = &result.metadata;
    let (started, finished) = m.times()?;
    let show = |ms: Millis| crate::model::rfc3339(ms);
    let latest = now.saturating_add(MAX_CLOCK_SKEW_MS);
    for (name, value, at) in [
        ("started_at", &m.started_at, started.timestamp_millis()),
        ("finished_at", &m.finished_at, finished.timestamp_millis()),
    ] {
        if at > latest {
            return Err(format!(
                "field 'metadata.{name}': {} is in the future (the coordinator's clock says {}; \
                 {} min of clock skew are allowed)",
                quoted(value),
                show(now),
                MAX_CLOCK_SKEW_MS / 60_000
            ));
        }
    }
    if let Some(sent) = sent_at {
        if started.timestamp_millis() < sent.saturating_sub(MAX_CLOCK_SKEW_MS) {
            return Err(format!(
                "field 'metadata.started_at': {} is before the coordinator sent the run at {} \
                 ({} min of clock skew are allowed; is the agent's clock set?)",
                quoted(&m.started_at),
                show(sent),
                MAX_CLOCK_SKEW_MS / 60_000
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
