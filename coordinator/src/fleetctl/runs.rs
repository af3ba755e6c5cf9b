//! `fleetctl runs`.

use serde_json::json;

use super::client::{all_runs, Admin};
use super::table::render;
use crate::Error;

/// Lists runs (every page) as a table or JSON.
pub async fn list(admin: &mut Admin, campaign: Option<String>, as_json: bool) -> Result<(), Error> {
    let runs = all_runs(admin, campaign).await?;
    if as_json {
        let items: Vec<_> = runs
            .iter()
            .map(|r| {
                json!({
                    "run_id": r.run_id, "campaign_id": r.campaign_id, "agent_id": r.agent_id,
                    "hostname": r.hostname, "preset_id": r.preset_id, "framework": r.framework,
                    "device": r.device, "state": r.state, "fraction": r.fraction,
                    "message": r.message, "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "not_before": (!r.not_before.is_empty()).then_some(&r.not_before),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items).expect("json"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.campaign_id.chars().take(8).collect(),
                r.hostname.clone(),
                r.preset_id.clone(),
                r.framework.clone(),
                r.device.clone(),
                r.state.clone(),
                format!("{:.0}%", r.fraction * 100.0),
                r.message.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "RUN",
                "CAMPAIGN",
                "HOSTNAME",
                "PRESET",
                "FRAMEWORK",
                "DEVICE",
                "STATE",
                "DONE",
                "MESSAGE"
            ],
            &rows
        )
    );
    Ok(())
}
