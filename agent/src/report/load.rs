//! `--load FILE`: recognise either result format and summarise it.

use std::path::Path;

use fleetcal_proto::origin::OriginProfile;
use fleetcal_proto::CalibrationResult;

use super::summary_tables;
use crate::AgentError;

/// A result file in one of the two formats.
#[derive(Debug, Clone)]
pub enum LoadedResult {
    /// fleetcal's own schema.
    Fleetcal(Box<CalibrationResult>),
    /// The origin's profile format.
    Origin(Box<OriginProfile>),
}

impl LoadedResult {
    /// Reads a file and decides its format: a `schema_version` key means fleetcal's.
    pub fn read(path: &Path) -> Result<LoadedResult, AgentError> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.display().to_string();
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            AgentError::Contract(fleetcal_proto::ContractError::Result {
                source_name: name.clone(),
                message: format!("not JSON: {e}"),
            })
        })?;
        if value.get("schema_version").is_some() {
            Ok(LoadedResult::Fleetcal(Box::new(
                CalibrationResult::from_json(&text, &name)?,
            )))
        } else {
            Ok(LoadedResult::Origin(Box::new(OriginProfile::from_json(
                &text, &name,
            )?)))
        }
    }
}

fn origin_lines(p: &OriginProfile) -> Vec<String> {
    let md = &p.metadata;
    let mut out = vec![
        "=".repeat(96),
        format!(
            "CALIBRATION PROFILE (origin format): {} — {} on {} ({})",
            md.hardware_name,
            md.framework.to_uppercase(),
            md.device_type,
            md.calibration_date
        ),
        "=".repeat(96),
        format!("  CPU: {} ({} threads, {:.1} GB)", md.cpu_model, md.cpu_count, md.total_memory_gb),
        format!(
            "  Theoretical: {:.1} GFLOPS fp32, {:.1} GB/s",
            p.theoretical_peak_gflops, p.theoretical_bandwidth_gbps
        ),
        format!(
            "  Measured: best {:.1} / avg {:.1} / worst {:.1} GFLOPS; bandwidth {:.1} GB/s ({:.1}%)",
            p.best_measured_gflops,
            p.avg_measured_gflops,
            p.worst_measured_gflops,
            p.measured_bandwidth_gbps,
            p.bandwidth_efficiency * 100.0
        ),
        String::new(),
        format!("  {:<60} {:>10} {:>10} {:>10}", "Operation profile", "GFLOPS", "GB/s", "Eff"),
    ];
    for (key, r) in &p.operation_profiles {
        out.push(format!(
            "  {:<60} {:>10.1} {:>10.1} {:>9.1}%",
            key.chars().take(60).collect::<String>(),
            r.measured_gflops,
            r.achieved_bandwidth_gbps,
            r.efficiency * 100.0
        ));
    }
    out.push(String::new());
    out.push("  Peak by precision:".into());
    for (prec, g) in &p.precision_matrix.peak_gflops_by_precision {
        out.push(format!("    {prec:<6} {g:>10.1}"));
    }
    if !p.precision_matrix.unsupported_precisions.is_empty() {
        out.push(format!(
            "  Unsupported: {}",
            p.precision_matrix.unsupported_precisions.join(", ")
        ));
    }
    out
}

/// The summary lines of a saved result, in either format.
pub fn load_summary(path: &Path) -> Result<Vec<String>, AgentError> {
    Ok(match LoadedResult::read(path)? {
        LoadedResult::Fleetcal(r) => summary_tables(&r),
        LoadedResult::Origin(p) => origin_lines(&p),
    })
}
