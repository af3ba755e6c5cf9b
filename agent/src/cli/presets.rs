//! `fleetcal-agent presets`: the preset table.

use super::args::PresetsArgs;
use crate::AgentError;

/// Prints the presets as a table or JSON.
pub fn run(args: PresetsArgs) -> Result<(), AgentError> {
    let presets = crate::presets::list(args.presets.as_deref())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&presets).expect("presets serialise")
        );
        return Ok(());
    }
    println!(
        "{:<24} {:<5} {:<8} {:<10} {:>12} {:>10}  HARDWARE",
        "ID", "DEV", "ARCH", "FRAMEWORK", "FP32 GFLOPS", "BW GB/s"
    );
    for p in &presets {
        println!(
            "{:<24} {:<5} {:<8} {:<10} {:>12.1} {:>10}  {}",
            p.id,
            p.device.as_str(),
            p.architecture,
            p.default_framework.as_str(),
            p.peak(fleetcal_proto::Precision::Fp32).unwrap_or(0.0),
            p.bandwidth_gbps
                .map_or("unknown".into(), |b| format!("{b:.1}")),
            p.hardware_name
        );
    }
    println!(
        "{:<24} {:<5} {:<8} {:<10} {:>12} {:>10}  derived from this host at run time",
        "auto",
        "cpu",
        std::env::consts::ARCH,
        "numpy",
        "-",
        "-"
    );
    Ok(())
}
