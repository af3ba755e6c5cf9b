//! Result files: fleetcal's schema or the origin's profile, and where `--output` puts them.
//!
//! `--output` is one of:
//! - `-`: the document goes to stdout (the console then writes to stderr);
//! - a directory: the default name `<hardware_slug>_<framework>.json` inside it;
//! - any other path: by the rule `fleetctl report --output` follows too
//!   ([`fleetcal_files::output`]): a missing path or a regular file is written atomically, a
//!   symlink followed to its target, a FIFO or character device written in place, a socket,
//!   a block device or a link to nothing refused, nothing written.
//!
//! [`check_output`] applies the rules before a calibration starts, so a bad `--output` is
//! refused before minutes of measuring; [`write_result`] applies them again when writing.

use std::io::Write;
use std::path::{Path, PathBuf};

use fleetcal_proto::{origin, CalibrationResult};

use fleetcal_files::{output, FileError};

use crate::AgentError;

/// The two result file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// fleetcal's versioned schema (`proto/schema/result.schema.json`).
    #[default]
    Fleetcal,
    /// The origin tool's profile file, loadable by tools built on the origin.
    Origin,
}

/// Renders a result in a format.
pub fn render(result: &CalibrationResult, format: Format) -> String {
    match format {
        Format::Fleetcal => result.to_json(),
        Format::Origin => origin::to_origin(result).to_json(),
    }
}

/// Where a result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `--output -`.
    Stdout,
    /// A path (see the module doc for what kinds of file it may name).
    Path(PathBuf),
}

/// Whether `--output` asks for stdout.
pub fn is_stdout(output: Option<&Path>) -> bool {
    output == Some(Path::new("-"))
}

/// Where a result goes: `--output -` is stdout; `--output DIR` puts the default name
/// `<hardware_slug>_<framework>.json` in it; `--output FILE` is that file; no `--output`
/// is the default name in the current directory.
pub fn destination(result: &CalibrationResult, output: Option<&Path>) -> Destination {
    let name = origin::file_name(result);
    match output {
        _ if is_stdout(output) => Destination::Stdout,
        Some(p) if p.is_dir() => Destination::Path(p.join(name)),
        Some(p) => Destination::Path(p.to_path_buf()),
        None => Destination::Path(PathBuf::from(name)),
    }
}

/// The agent's usage error for a path the rule refuses, saying what `--output` may be.
fn usage(e: FileError) -> AgentError {
    match e {
        FileError::Refused { path, what } => AgentError::Usage(format!(
            "--output {}: {what}; a result goes to a regular file (replaced atomically), a \
             directory, a FIFO or character device (written in place) or - (stdout)",
            path.display()
        )),
        io => AgentError::from(io),
    }
}

/// Checks `--output` before a calibration starts: `-`, a directory, or a path
/// [`write_result`] will accept (its directory exists; not a socket, block device or
/// dangling symlink).
pub fn check_output(output: Option<&Path>) -> Result<(), AgentError> {
    match output {
        Some(p) if !is_stdout(output) => output::classify(p).map(|_| ()).map_err(usage),
        _ => Ok(()),
    }
}

/// Writes a rendered result to a destination, with a final newline; returns the file that
/// was written (a symlink's target), or `-` for stdout.
pub fn write_result(dest: &Destination, text: &str) -> Result<PathBuf, AgentError> {
    let mut doc = String::with_capacity(text.len() + 1);
    doc.push_str(text);
    doc.push('\n');
    let path = match dest {
        Destination::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(doc.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|source| AgentError::Io {
                    path: "-".into(),
                    source,
                })?;
            return Ok("-".into());
        }
        Destination::Path(p) => p,
    };
    output::write_to(path, doc.as_bytes()).map_err(usage)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    // The rule's own cases (a device or FIFO written in place, a block device refused) are
    // tested in `fleetcal-files`; these check the agent's messages and exit codes.

    fn dest(p: &Path) -> Destination {
        Destination::Path(p.to_path_buf())
    }

    #[test]
    fn regular_files_are_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_result(&dest(&p), "{}").unwrap();
        write_result(&dest(&p), "{\"a\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\":1}\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = check_output(Some(&dir.path().join("missing/x.json"))).unwrap_err();
        assert!(
            err.to_string().contains("missing") && err.to_string().contains("does not exist"),
            "{err}"
        );
        assert!(check_output(Some(Path::new("-"))).is_ok());
        assert!(check_output(None).is_ok());
    }

    #[test]
    fn a_symlink_stays_a_link_and_its_target_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.json");
        std::fs::write(&target, "old\n").unwrap();
        let link = dir.path().join("latest.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let written = write_result(&dest(&link), "{}").unwrap();
        assert_eq!(written, std::fs::canonicalize(&target).unwrap());
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}\n");
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let e = write_result(&dest(&dangling), "{}").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("symbolic link to nothing"), "{e}");
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn a_full_disk_is_an_io_error_and_leaves_nothing() {
        let Some(disk) = crate::testing::FullDisk::mount("result file on a full disk") else {
            return;
        };
        let p = disk.path().join("r1.json");
        let e = write_result(&dest(&p), &"x".repeat(8192)).unwrap_err();
        assert_eq!(e.exit_code(), 6);
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert!(disk.names().is_empty(), "{:?}", disk.names());
        let e = crate::atomic::write(
            &disk.path().join("id"),
            b"x\n",
            crate::atomic::Mode::CreateNew,
        )
        .map_err(AgentError::from)
        .unwrap_err();
        assert_eq!(e.exit_code(), 6);
        assert!(e.to_string().contains("No space left"), "{e}");
        assert!(disk.names().is_empty(), "{:?}", disk.names());
        disk.free();
        write_result(&dest(&p), "{}").unwrap();
        assert_eq!(disk.names(), ["r1.json"]);
    }

    #[test]
    fn a_socket_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for e in [
            check_output(Some(&sock)).unwrap_err(),
            write_result(&dest(&sock), "{}").unwrap_err(),
        ] {
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("is a socket"), "{e}");
        }
        assert!(std::fs::symlink_metadata(&sock)
            .unwrap()
            .file_type()
            .is_socket());
    }
}
