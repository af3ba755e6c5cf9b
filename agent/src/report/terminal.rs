//! The console of `fleetcal-agent calibrate`: origin-style blocks and lines on stdout (on
//! stderr when stdout carries the result, `--output -`), and a spinner on stderr while a
//! figure runs when stderr is a terminal.

use std::io::{BufRead, IsTerminal, Write};

use fleetcal_proto::result::{CalibrationResult, Host, Record};
use fleetcal_proto::{Operation, Precision, Preset};
use indicatif::{ProgressBar, ProgressStyle};

use super::console::{execution_device_lines, platform_lines};
use super::{figure_line, size_label, summary_tables, Console, ExecutionDevice};
use crate::bench::runner::Observer;

/// Prints to stdout (or stderr); interactive features only when attached to a terminal.
pub struct TerminalConsole {
    interactive: bool,
    to_stderr: bool,
    spinner: Option<ProgressBar>,
    sections: u32,
}

impl TerminalConsole {
    /// A console on stdout that shows a spinner and can ask questions only if stdin/stderr
    /// are terminals.
    pub fn new() -> TerminalConsole {
        TerminalConsole {
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            to_stderr: false,
            spinner: None,
            sections: 0,
        }
    }

    /// The same console writing everything (questions included) to stderr, for when stdout
    /// carries the result document (`--output -`).
    pub fn on_stderr() -> TerminalConsole {
        TerminalConsole {
            to_stderr: true,
            ..TerminalConsole::new()
        }
    }

    fn write(&self, text: std::fmt::Arguments<'_>) {
        if self.to_stderr {
            let mut out = std::io::stderr().lock();
            let _ = out.write_fmt(text);
            let _ = out.flush();
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_fmt(text);
            let _ = out.flush();
        }
    }

    fn print(&self, lines: &[String]) {
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        self.write(format_args!("{text}"));
    }
}

impl Default for TerminalConsole {
    fn default() -> Self {
        TerminalConsole::new()
    }
}

impl Console for TerminalConsole {
    fn platform(
        &mut self,
        preset: &Preset,
        host: &Host,
        e: Option<&str>,
        w: &[String],
        skipped: bool,
    ) {
        self.print(&platform_lines(preset, host, e, w, skipped));
    }

    fn execution_device(&mut self, block: &ExecutionDevice) {
        self.print(&execution_device_lines(block));
    }

    fn confirm(&mut self, question: &str) -> bool {
        if !self.interactive {
            return false;
        }
        self.write(format_args!("  {question}"));
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y")
    }

    fn observer(&mut self) -> &mut dyn Observer {
        self
    }

    fn finished(&mut self, result: &CalibrationResult) {
        self.print(&summary_tables(result));
    }
}

impl Observer for TerminalConsole {
    fn section(&mut self, op: Operation, banner: &str) {
        self.sections += 1;
        self.print(&[
            String::new(),
            format!("{}. {}", self.sections, section_title(op)),
            "-".repeat(80),
            format!("Framework: {banner}"),
        ]);
    }

    fn figure_started(&mut self, op: Operation, precision: Precision, size: u64) {
        if !self.interactive {
            return;
        }
        let mib = op
            .is_stream()
            .then(|| size as f64 * precision.item_size() as f64 / (1024.0 * 1024.0));
        let pb = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg} {elapsed}") {
            pb.set_style(style);
        }
        pb.set_message(format!("{precision} {} ...", size_label(op, size, mib)));
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        self.spinner = Some(pb);
    }

    fn figure_done(&mut self, record: &Record) {
        if let Some(pb) = self.spinner.take() {
            pb.finish_and_clear();
        }
        let mut lines = vec![figure_line(record)];
        if record.flags.above_theoretical {
            lines.push(
                "    ℹ Likely caused by: Turbo Boost, optimized BLAS, or conservative theoretical peak"
                    .into(),
            );
        }
        self.print(&lines);
    }
}

/// The header of an operation's section.
pub(crate) fn section_title(op: Operation) -> String {
    match op {
        Operation::Dot => "BLAS Level 1: dot (dot(x, y))".into(),
        Operation::Axpy => "BLAS Level 1: axpy (y = a*x + y)".into(),
        Operation::Gemv => "BLAS Level 2: gemv (y = a*(A@x) + b*y)".into(),
        Operation::Gemm => "BLAS Level 3: gemm (C = a*(A@B) + b*C), multi-precision".into(),
        other => format!(
            "Memory Bandwidth: STREAM {}",
            other.stream_kernel().unwrap_or_default()
        ),
    }
}
