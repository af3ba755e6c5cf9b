//! What a calibration tells its user, independent of where it goes.

use fleetcal_proto::result::{CalibrationResult, Host};
use fleetcal_proto::{DeviceKind, Framework, Preset};

use crate::bench::runner::Observer;

/// The EXECUTION DEVICE block's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionDevice {
    /// What the preset asked for.
    pub requested: DeviceKind,
    /// What runs.
    pub actual: DeviceKind,
    /// How the actual device is named (`CPU`, `GPU (NVIDIA H100)`, `CPU (fallback)`).
    pub actual_name: String,
    /// The framework.
    pub framework: Framework,
    /// Set on a device fallback.
    pub fallback_reason: Option<String>,
}

/// The user-facing side of a calibration: a terminal, a log, or nothing.
pub trait Console {
    /// The platform validation block.
    fn platform(
        &mut self,
        preset: &Preset,
        host: &Host,
        arch_error: Option<&str>,
        warnings: &[String],
        skipped: bool,
    );
    /// The EXECUTION DEVICE block (with the fallback warning when there is one).
    fn execution_device(&mut self, block: &ExecutionDevice);
    /// Asks a yes/no question; `false` when nobody can answer.
    fn confirm(&mut self, question: &str) -> bool;
    /// Per-figure progress.
    fn observer(&mut self) -> &mut dyn Observer;
    /// The run is over: summary tables.
    fn finished(&mut self, result: &CalibrationResult);
}

/// The lines of the EXECUTION DEVICE block, shared by every console.
pub(crate) fn execution_device_lines(block: &ExecutionDevice) -> Vec<String> {
    let rule = "=".repeat(80);
    let mut lines = vec![
        rule.clone(),
        "EXECUTION DEVICE".into(),
        rule,
        format!(
            "  Requested device: {}",
            block.requested.as_str().to_uppercase()
        ),
        format!("  Actual device:    {}", block.actual_name),
    ];
    if let Some(reason) = &block.fallback_reason {
        lines.extend([
            String::new(),
            "  ⚠ WARNING: Device Fallback Occurred!".into(),
            format!("  Reason: {reason}"),
            String::new(),
            "  This will produce INCORRECT calibration data for the requested hardware!".into(),
            "  The calibration will reflect CPU performance, not GPU performance.".into(),
        ]);
    }
    lines.extend([
        String::new(),
        "Execution Device:".into(),
        format!("  Running on: {}", block.actual_name),
        format!("  Framework:  {}", block.framework.as_str().to_uppercase()),
        format!("              ({})", block.framework.describe()),
        String::new(),
    ]);
    lines
}

/// The lines of the platform validation block.
pub(crate) fn platform_lines(
    preset: &Preset,
    host: &Host,
    arch_error: Option<&str>,
    warnings: &[String],
    skipped: bool,
) -> Vec<String> {
    let mut lines = vec![
        "Platform validation:".into(),
        format!(
            "  Preset:               {} ({})",
            preset.id, preset.hardware_name
        ),
        format!("  Expected architecture: {}", preset.architecture),
        format!("  Current architecture:  {}", host.architecture),
        format!(
            "  CPU:                   {} {}",
            host.cpu_vendor, host.cpu_model
        ),
    ];
    match (arch_error, skipped) {
        (Some(e), true) => lines.push(format!("  ⚠ {e} (check skipped: --skip-platform-check)")),
        (Some(e), false) => lines.push(format!("  ✗ {e}")),
        (None, _) => lines.push("  ✓ Platform check passed".into()),
    }
    lines.extend(warnings.iter().map(|w| format!("  ⚠ {w}")));
    if let Some(d) = &preset.derivation {
        lines.push(format!("  Peaks derived: {}", d.formula));
        lines.push(format!("  Bandwidth:     {}", d.bandwidth));
    }
    lines.push(String::new());
    lines
}
