//! `fleetctl alerts`: the drift alerts, and a person acknowledging or dismissing one.

use fleetcal_proto::pb;
use serde_json::json;

use super::client::Admin;
use super::table::render;
use crate::server::alerts::MIN_ID_PREFIX;
use crate::Error;

/// `fleetctl alerts list`: the alerts in `states` (open and acknowledged when empty), newest
/// first, as a table (ids cut to their first [`MIN_ID_PREFIX`] characters, which `ack` and
/// `dismiss` accept) or JSON (full ids).
pub async fn list(admin: &mut Admin, states: Vec<String>, as_json: bool) -> Result<(), Error> {
    let alerts = admin
        .list_alerts(pb::ListAlertsRequest { states })
        .await?
        .into_inner()
        .alerts;
    if as_json {
        let items: Vec<_> = alerts.iter().map(alert_json).collect();
        println!("{}", pretty(&serde_json::Value::Array(items)));
        return Ok(());
    }
    if alerts.is_empty() {
        println!("no alerts");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                a.id.chars().take(MIN_ID_PREFIX).collect(),
                a.state.clone(),
                a.hostname.clone(),
                format!("{} {}", a.framework, a.figure),
                format!("{} → {}", figure(a.baseline), figure(a.current)),
                format!("{:+.1}%", a.change_pct),
                a.kind.clone(),
                a.began_at.get(..10).unwrap_or(&a.began_at).to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "ALERT",
                "STATE",
                "HOST",
                "FIGURE",
                "BASELINE → NOW",
                "CHANGE",
                "KIND",
                "BEGAN"
            ],
            &rows
        )
    );
    Ok(())
}

/// `fleetctl alerts ack|dismiss ID`: prints the alert's new state.
pub async fn act(
    admin: &mut Admin,
    id: &str,
    note: Option<String>,
    dismiss: bool,
    as_json: bool,
) -> Result<(), Error> {
    let req = pb::AlertActionRequest {
        id: id.to_string(),
        note: note.unwrap_or_default(),
    };
    let alert = if dismiss {
        admin.dismiss_alert(req).await?
    } else {
        admin.ack_alert(req).await?
    }
    .into_inner();
    if as_json {
        println!("{}", pretty(&alert_json(&alert)));
    } else {
        println!(
            "alert {} ({} {} on {}) is {}",
            alert.id, alert.framework, alert.figure, alert.hostname, alert.state
        );
    }
    Ok(())
}

/// A figure with 3 significant digits or one decimal, whichever is longer.
fn figure(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// An alert as `--json` prints it.
pub fn alert_json(a: &pb::Alert) -> serde_json::Value {
    let some = |t: &String| (!t.is_empty()).then(|| t.clone());
    json!({
        "id": a.id,
        "state": a.state,
        "agent_id": a.agent_id,
        "hostname": a.hostname,
        "group_key": a.group_key,
        "framework": a.framework,
        "figure": a.figure,
        "baseline": a.baseline,
        "current": a.current,
        "change_pct": a.change_pct,
        "kind": a.kind,
        "began_at": a.began_at,
        "run_id": a.run_id,
        "confirm_campaign_id": some(&a.confirm_campaign_id),
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "message": a.message,
    })
}
