//! The console of daemons: progress goes to the log, questions are answered "no".

use fleetcal_proto::result::{CalibrationResult, Host, Record};
use fleetcal_proto::{Operation, Precision, Preset};

use super::console::execution_device_lines;
use super::{figure_line, Console, ExecutionDevice};
use crate::bench::runner::Observer;

/// Logs through `tracing`; refuses every prompt (a daemon has nobody to ask).
#[derive(Debug, Default)]
pub struct QuietConsole {
    /// Figures finished so far.
    pub figures_done: usize,
}

impl Console for QuietConsole {
    fn platform(&mut self, preset: &Preset, _host: &Host, e: Option<&str>, w: &[String], _s: bool) {
        tracing::info!(preset = %preset.id, error = ?e, warnings = ?w, "platform check");
    }

    fn execution_device(&mut self, block: &ExecutionDevice) {
        for line in execution_device_lines(block) {
            if !line.trim().is_empty() {
                tracing::info!("{line}");
            }
        }
    }

    fn confirm(&mut self, question: &str) -> bool {
        tracing::warn!("{question} no (non-interactive)");
        false
    }

    fn observer(&mut self) -> &mut dyn Observer {
        self
    }

    fn finished(&mut self, result: &CalibrationResult) {
        tracing::info!(
            records = result.records.len(),
            anomalies = result.summary.anomalies.len(),
            "calibration finished"
        );
    }
}

impl Observer for QuietConsole {
    fn section(&mut self, op: Operation, banner: &str) {
        tracing::info!(operation = %op, "{banner}");
    }

    fn figure_started(&mut self, _op: Operation, _precision: Precision, _size: u64) {}

    fn figure_done(&mut self, record: &Record) {
        self.figures_done += 1;
        tracing::debug!("{}", figure_line(record));
    }
}
