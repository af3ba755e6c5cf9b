//! `fleetctl results export`: one file per board and framework.
//!
//! File names are `<hardware_slug>_<framework>.json` (the origin's convention, both formats).
//! When two boards of the campaign share a hardware slug, every file of that name gets the
//! board's host name slug as a prefix (`<hostname>_<hardware_slug>_<framework>.json`), and
//! the first 8 characters of the agent id as well if the host names collide too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fleetcal_proto::{origin, pb, preset::slug, CalibrationResult};
use tokio_stream::StreamExt;

use super::cli::Format;
use super::client::Admin;
use crate::domain::DomainError;
use crate::Error;

/// One result to write.
#[derive(Debug, Clone)]
pub struct Export {
    /// The agent.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// The parsed result.
    pub result: CalibrationResult,
    /// The text as uploaded.
    pub text: String,
}

/// File names for a set of results, following the module's rules.
pub fn file_names(exports: &[Export]) -> Vec<String> {
    let base: Vec<String> = exports
        .iter()
        .map(|e| origin::file_name(&e.result))
        .collect();
    let mut by_base: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, b) in base.iter().enumerate() {
        by_base.entry(b).or_default().push(i);
    }
    let mut names = base.clone();
    for group in by_base.values().filter(|g| g.len() > 1) {
        let mut host_count: HashMap<String, usize> = HashMap::new();
        for &i in group {
            *host_count.entry(slug(&exports[i].hostname)).or_default() += 1;
        }
        for &i in group {
            let host = slug(&exports[i].hostname);
            names[i] = if host_count[&host] > 1 {
                let short: String = exports[i].agent_id.chars().take(8).collect();
                format!("{host}_{short}_{}", base[i])
            } else {
                format!("{host}_{}", base[i])
            };
        }
    }
    names
}

/// Downloads a campaign's results and writes them into `dir`.
pub async fn export(
    admin: &mut Admin,
    campaign: &str,
    dir: &Path,
    format: Format,
) -> Result<(), Error> {
    let mut stream = admin
        .export_results(pb::ExportResultsRequest {
            campaign_id: campaign.to_string(),
        })
        .await?
        .into_inner();
    let mut exports = Vec::new();
    let mut unreadable: Vec<(String, String)> = Vec::new();
    while let Some(file) = stream.next().await {
        let file = file?;
        let text = String::from_utf8_lossy(&file.result_json).into_owned();
        // A result stored before today's rules may fail them: it is left out and named, the
        // others are still written.
        let result = match CalibrationResult::from_json(&text, &format!("run {}", file.run_id)) {
            Ok(result) => result,
            Err(e) => {
                eprintln!(
                    "fleetctl: skipping the stored result of run {} (host {}): {e}",
                    file.run_id,
                    fleetcal_proto::quote::quoted(&file.hostname)
                );
                unreadable.push((file.run_id, e.to_string()));
                continue;
            }
        };
        exports.push(Export {
            agent_id: file.agent_id,
            hostname: file.hostname,
            result,
            text,
        });
    }
    let skipped = || match unreadable.first() {
        None => Ok(()),
        Some((run, message)) => Err(Error::from(DomainError::InvalidResult {
            run: run.clone(),
            message: format!(
                "{message} ({} stored result(s) of campaign '{campaign}' could not be read \
                 and were not written)",
                unreadable.len()
            ),
        })),
    };
    if exports.is_empty() {
        if unreadable.is_empty() {
            eprintln!("fleetctl: campaign '{campaign}' has no stored results yet");
        }
        return skipped();
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for (e, name) in exports.iter().zip(file_names(&exports)) {
        let path: PathBuf = dir.join(name);
        let body = match format {
            Format::Fleetcal => e.text.clone(),
            Format::Origin => origin::to_origin(&e.result).to_json(),
        };
        std::fs::write(&path, body).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        println!("{}", path.display());
    }
    skipped()
}
