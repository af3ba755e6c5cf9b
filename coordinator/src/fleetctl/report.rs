//! `fleetctl report`: asks the coordinator for a report model (`Report`) and draws it here with
//! the same renderers the coordinator's web pages use (`crate::render`), so the terminal, the
//! files and the pages cannot disagree.

use std::io::Write;
use std::path::Path;

use fleetcal_proto::pb;

use super::campaign::parse_labels;
use super::cli::{ReportArgs, ReportFormat, ReportKindArg};
use super::client::Admin;
use crate::fleet::Report;
use crate::render;
use crate::server::convert::report_from_pb;
use crate::Error;

/// The report name of a kind, as the coordinator takes it.
fn kind_name(kind: ReportKindArg) -> &'static str {
    match kind {
        ReportKindArg::Compare => "compare",
        ReportKindArg::Boards => "boards",
        ReportKindArg::Drift => "drift",
        ReportKindArg::Anomalies => "anomalies",
        ReportKindArg::Roofline => "roofline",
    }
}

/// The `Report` request of the flags.
pub fn request(a: &ReportArgs) -> Result<pb::ReportRequest, Error> {
    let select = match &a.select {
        Some(text) => parse_labels(text)?.labels,
        None => Default::default(),
    };
    Ok(pb::ReportRequest {
        kind: kind_name(a.kind).to_string(),
        select,
        group: a.group.clone().unwrap_or_default(),
        since: a.since.clone().unwrap_or_default(),
        nights: a.nights.unwrap_or(0),
        agent_id: a.board.clone().unwrap_or_default(),
        schedule: a.schedule.clone().unwrap_or_default(),
        framework: a.framework.clone().unwrap_or_default(),
    })
}

/// `fleetctl report KIND ...`: fetches the model, draws it, prints or writes it.
pub async fn run(admin: &mut Admin, a: ReportArgs) -> Result<(), Error> {
    let req = request(&a)?;
    let response = admin.report(req.clone()).await?.into_inner();
    let report: Report = serde_json::from_slice(&response.model_json).map_err(|e| {
        Error::Remote(tonic::Status::internal(format!(
            "the coordinator's {} report is not a report model this fleetctl reads: {e}",
            response.kind
        )))
    })?;
    let text = draw(&report, &req, a.format)?;
    match &a.output {
        Some(path) => write_output(path, text.as_bytes()),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|source| Error::Io {
                    path: "<stdout>".into(),
                    source,
                })
        }
    }
}

/// Draws a report in a format with the renderers the web pages use; `req` is what was asked
/// (the HTML page shows it).
pub fn draw(
    report: &Report,
    req: &pb::ReportRequest,
    format: ReportFormat,
) -> Result<String, Error> {
    Ok(match format {
        ReportFormat::Table => render::table::report(report),
        ReportFormat::Csv => render::csv::report(report),
        ReportFormat::Json => render::json::report(report)
            .map_err(|e| Error::Remote(tonic::Status::internal(format!("report json: {e}"))))?,
        ReportFormat::Html => {
            let (_, query) = report_from_pb(req.clone())?;
            render::html::report_page(report, &query, report.generated_at())
        }
    })
}

/// Writes `bytes` to `--output PATH` by the rule `fleetcal-agent calibrate --output` follows
/// too ([`fleetcal_files::output`]): a regular file (or a new one) replaced whole, through a
/// symbolic link the file it points to, a FIFO or character device written in place; a
/// directory, a socket, a block device or a symbolic link to nothing refused, nothing written.
fn write_output(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fleetcal_files::output::write_to(path, bytes)
        .map(|_| ())
        .map_err(|e| match e {
            fleetcal_files::FileError::Io { path, source } => Error::Io { path, source },
            fleetcal_files::FileError::Refused { path, what } => Error::Io {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{what}; a report goes to a regular file (replaced atomically), a \
                         FIFO or a character device (written in place)"
                    ),
                ),
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The rule's cases are tested in `fleetcal-files`; this checks fleetctl's message.
    #[test]
    fn a_refused_path_is_named_with_what_a_report_may_go_to() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.json");
        write_output(&file, b"one").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"one");
        let e = write_output(dir.path(), b"x").unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        assert!(
            e.contains("is a directory; a report goes to a regular file"),
            "{e}"
        );
    }
}
