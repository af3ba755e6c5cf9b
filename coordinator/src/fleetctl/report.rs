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

/// Writes `bytes` to `--output PATH`, by the agent's `--output` rules
/// (`agent/src/output.rs`): a regular file (or a new one) is replaced whole
/// ([`write_atomically`]); through a symbolic link, the file it points to is, and the link
/// stays; a FIFO or character device (`/dev/null`, `/dev/stdout`, a named pipe) is written in
/// place, since a rename would put a regular file where the device was (as root,
/// `--output /dev/null` once replaced the machine's `/dev/null`); a directory, a socket, a
/// block device or a symbolic link to nothing is refused, nothing written.
fn write_output(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |what: &str| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{what}; a report goes to a regular file (replaced atomically), a FIFO or a \
                 character device (written in place)"
            ),
        ))
    };
    let kind = match std::fs::metadata(path) {
        Ok(m) => m.file_type(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match std::fs::symlink_metadata(path) {
                Ok(_) => Err(refuse("is a symbolic link to nothing")),
                Err(_) => write_atomically(path, bytes),
            };
        }
        Err(e) => return Err(io(e)),
    };
    if kind.is_file() {
        write_atomically(&std::fs::canonicalize(path).map_err(io)?, bytes)
    } else if kind.is_fifo() || kind.is_char_device() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()))
            .map_err(io)
    } else if kind.is_dir() {
        Err(refuse("is a directory"))
    } else if kind.is_socket() {
        Err(refuse("is a socket"))
    } else if kind.is_block_device() {
        Err(refuse("is a block device"))
    } else {
        Err(refuse("is not a regular file"))
    }
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so a reader never
/// sees half a report.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_a_link_keeps_pointing_at_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.json");
        write_output(&file, b"one").unwrap();
        write_output(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let link = dir.path().join("latest.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        write_output(&link, b"three").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&file).unwrap(), b"three");
        // No temporary file is left beside them.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_fifo_is_written_in_place_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_output(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(
            &std::fs::symlink_metadata(&fifo).unwrap().file_type()
        ));
    }

    #[test]
    fn a_directory_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_output(dir.path(), b"x").unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn a_socket_and_a_link_to_nothing_are_refused_and_left_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let e = write_output(&socket, b"x").unwrap_err().to_string();
        assert!(e.contains("is a socket"), "{e}");
        assert!(std::os::unix::fs::FileTypeExt::is_socket(
            &std::fs::symlink_metadata(&socket).unwrap().file_type()
        ));
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let e = write_output(&dangling, b"x").unwrap_err().to_string();
        assert!(e.contains("symbolic link to nothing"), "{e}");
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!dir.path().join("nowhere").exists());
    }
}
