//! `fleetctl campaign start` and `fleetctl campaign status [--wait]`.

use std::io::IsTerminal;
use std::time::Duration;

use fleetcal_proto::pb;
use serde_json::json;

use super::cli::StartArgs;
use super::client::Admin;
use crate::model::RunState;
use crate::Error;

/// Parses `k=v,k2=v2`; an item without `=` is an error naming it.
pub fn parse_labels(text: &str) -> Result<pb::Labels, Error> {
    let mut labels = std::collections::HashMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            Error::InvalidRequest(format!("--select item '{item}' is not key=value"))
        })?;
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    if labels.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "--select '{text}' names no key=value"
        )));
    }
    Ok(pb::Labels { labels })
}

/// Starts a campaign and prints its id.
pub async fn start(admin: &mut Admin, a: StartArgs) -> Result<(), Error> {
    use pb::selector::Kind;
    let kind = match (a.all, a.select, a.preset) {
        (_, Some(text), _) => Kind::Labels(parse_labels(&text)?),
        (_, _, Some(id)) => Kind::Preset(id),
        _ => Kind::All(true),
    };
    let campaign = admin
        .start_campaign(pb::StartCampaignRequest {
            selector: Some(pb::Selector { kind: Some(kind) }),
            quick: a.quick,
            warmup: a.warmup,
            trials: a.trials.unwrap_or(0),
            framework: a.framework.unwrap_or_default(),
            run_timeout_s: a.timeout.unwrap_or(0),
            deadline_s: a.deadline.unwrap_or(0),
            concurrency: a.concurrency.unwrap_or(0),
            operations: a.operations,
            precisions: a.precisions,
            blas_sizes: a.sizes,
            stream_mib: a.stream_mib,
            min_gflops: a.min_gflops.unwrap_or(0.0),
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

fn campaign_json(c: &pb::Campaign) -> serde_json::Value {
    json!({
        "id": c.id,
        "created_at": c.created_at,
        "framework": c.framework,
        "quick": c.quick,
        "warmup": c.warmup,
        "trials": (c.trials > 0).then_some(c.trials),
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
    let parts: Vec<String> = RunState::ALL
        .iter()
        .filter_map(|s| {
            let n = c.run_counts.get(s.as_str()).copied().unwrap_or(0);
            (n > 0).then(|| format!("{s} {n}"))
        })
        .collect();
    parts.join(", ")
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

/// Shows a campaign; with `wait`, follows it to the end (a progress bar on a terminal, a line
/// per change otherwise) and fails if any run did not succeed.
pub async fn status(
    admin: &mut Admin,
    id: &str,
    wait: bool,
    as_json: bool,
    poll_ms: u64,
) -> Result<(), Error> {
    let get = |admin: &mut Admin| {
        let mut admin = admin.clone();
        let id = id.to_string();
        async move {
            Ok::<_, Error>(
                admin
                    .get_campaign(pb::GetCampaignRequest { id })
                    .await?
                    .into_inner(),
            )
        }
    };
    let mut c = get(admin).await?;
    if wait {
        let bar = (std::io::stderr().is_terminal() && !as_json).then(|| {
            let bar = indicatif::ProgressBar::new(u64::from(c.total_runs));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}")
                    .expect("valid template"),
            );
            bar
        });
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
            tokio::time::sleep(Duration::from_millis(poll_ms.max(10))).await;
            c = get(admin).await?;
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
    fn labels_parse_and_bad_items_are_named() {
        let l = parse_labels("site=lab, rack=3").unwrap();
        assert_eq!(l.labels.get("rack").map(String::as_str), Some("3"));
        let err = parse_labels("site=lab,oops").unwrap_err().to_string();
        assert!(err.contains("'oops'"), "{err}");
    }
}
