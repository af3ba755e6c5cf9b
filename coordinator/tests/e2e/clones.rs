//! Cloned boards: one state directory copied to two real agents. Their directive streams
//! take the id from each other; the coordinator quarantines the id (no plans for either,
//! uploads refused naming the clone), `fleetctl agents` shows it with the remedy, and once
//! one board is stopped `fleetctl agents release` gives the other its runs again. An agent
//! restarted (twice) on its state directory is not a clone.

use serde_json::Value;

use crate::fleet::agent::Agent;
use crate::fleet::common::{ctl_json, serve, wait_for, wait_online};
use crate::fleet::wait_campaign;
use crate::support::{admin_client, agent_client_as, fleetctl, TINY_CAMPAIGN};
use fleetcal_proto::pb;

fn agent_entry(url: &str, id: &str) -> Value {
    ctl_json(url, &["agents", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn start(url: &str, extra: &[&str]) -> String {
    let args: Vec<&str> = ["campaign", "start", "--all"]
        .into_iter()
        .chain(TINY_CAMPAIGN)
        .chain(extra.iter().copied())
        .collect();
    ctl_json(url, &args)["id"]
        .as_str()
        .expect("campaign id")
        .to_string()
}

#[tokio::test]
async fn a_cloned_state_dir_is_quarantined_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let coord = serve(dir.path(), "127.0.0.1:0");
    let url = coord.url();
    let a = Agent::start(&url, &[]);
    let id = wait_online(&url, 1, || a.log()).remove(0);
    let mut b = Agent::start_cloned(&a.state_dir(), &url, &[]);
    let logs = || format!("{}\n{}\n{}", coord.log_text(), a.log(), b.log());
    let entry = wait_for("the cloned id quarantined", logs, || {
        Some(agent_entry(&url, &id)).filter(|e| e["state"] == "quarantined")
    });
    let remedy = entry["quarantine"]["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(&format!("fleetctl agents release {id}")) && remedy.contains("agent-id"),
        "{entry}"
    );
    assert!(
        entry["quarantine"]["reason"]
            .as_str()
            .unwrap()
            .contains("two agent processes claim this id"),
        "{entry}"
    );
    assert_eq!(
        coord
            .log_text()
            .matches("quarantined as a cloned board")
            .count(),
        1,
        "logged once"
    );

    // A campaign on it gives neither board a run: past its deadline the run ends
    // agent_offline, and neither agent was sent its plan.
    let campaign = start(&url, &["--deadline", "2"]);
    let out = fleetctl(&url, &["campaign", "status", &campaign, "--wait", "--json"]);
    let c: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(c["run_counts"]["agent_offline"], 1, "{c}\n{}", logs());
    assert_eq!(c["run_counts"]["succeeded"], 0, "{c}");
    let runs = admin_client(&url)
        .await
        .list_runs(pb::ListRunsRequest {
            campaign_id: Some(campaign.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_id = runs[0].run_id.clone();
    assert!(
        !a.log().contains(&run_id) && !b.log().contains(&run_id),
        "a quarantined board got run {run_id}\n{}",
        logs()
    );
    // Its uploads are refused, naming the clone.
    let refused = agent_client_as(&url, &id)
        .await
        .upload_result(pb::UploadRequest {
            agent_id: id.clone(),
            run_id: run_id.clone(),
            result_packed: Default::default(),
            result_json: b"{}".to_vec().into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("cloned board"),
        "{}",
        refused.message()
    );

    // Stop one board, release the id: the other gets its runs again.
    b.terminate();
    let logs = || format!("{}\n{}", coord.log_text(), a.log());
    let out = fleetctl(&url, &["agents", "release", &id]);
    assert!(out.status.success(), "{out:?}");
    wait_for("the id released", logs, || {
        Some(agent_entry(&url, &id)).filter(|e| e["state"] == "online")
    });
    let campaign = start(&url, &[]);
    wait_campaign(&url, &campaign, 1, &logs);
}

#[tokio::test]
async fn an_agent_restarted_on_its_state_dir_is_not_a_clone() {
    let dir = tempfile::tempdir().unwrap();
    let coord = serve(dir.path(), "127.0.0.1:0");
    let url = coord.url();
    let mut a = Agent::start(&url, &[]);
    let id = wait_online(&url, 1, || a.log()).remove(0);
    for restarts in 0..=2 {
        if restarts > 0 {
            a.terminate();
            a.restart();
        }
        // Each start logs "connected" once its directive stream is open (the log is appended
        // across restarts).
        wait_for(
            "the restarted agent connected",
            || a.log(),
            || Some(()).filter(|_| a.log().matches("connected; waiting").count() > restarts),
        );
    }
    let campaign = start(&url, &[]);
    wait_campaign(&url, &campaign, 1, &|| {
        format!("{}\n{}", coord.log_text(), a.log())
    });
    assert_eq!(agent_entry(&url, &id)["state"], "online");
    assert!(!coord.log_text().contains("quarantined"));
}
