//! Result files: fleetcal's schema or the origin's profile, and where `--output` puts them.
//!
//! `--output` is one of:
//! - `-`: the document goes to stdout (the console then writes to stderr);
//! - a directory: the default name `<hardware_slug>_<framework>.json` inside it;
//! - a missing path or a regular file: written atomically ([`crate::atomic`]: a temporary
//!   file beside it, fsync, rename, directory fsync), so a crash leaves the old file or the
//!   new one;
//! - a symlink: followed to its final target, which these same rules then apply to (a
//!   regular file is replaced atomically at the target, so the link stays a link); a link to
//!   nothing is refused;
//! - a FIFO or a character device (`/dev/null`, `/dev/stdout`, a named pipe): written in
//!   place, never replaced;
//! - anything else (a socket, a block device): refused, nothing written.
//!
//! [`check_output`] applies the rules before a calibration starts, so a bad `--output` is
//! refused before minutes of measuring; [`write_result`] applies them again when writing.

use std::io::Write;
use std::path::{Path, PathBuf};

use fleetcal_proto::{origin, CalibrationResult};

use crate::atomic;
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

/// What an output path is, after following symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Nothing there yet, or a regular file: written atomically at this path.
    Atomic(PathBuf),
    /// A FIFO or character device: written in place at this path.
    InPlace(PathBuf),
    /// A directory: the default file name goes inside.
    Directory,
}

fn refuse(path: &Path, what: &str) -> AgentError {
    AgentError::Usage(format!(
        "--output {}: {what}; a result goes to a regular file (replaced atomically), a \
         directory, a FIFO or character device (written in place) or - (stdout)",
        path.display()
    ))
}

/// Classifies `path` by the rules of the module doc.
fn classify(path: &Path) -> Result<Kind, AgentError> {
    use std::os::unix::fs::FileTypeExt;
    let io = |source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) => m.file_type().is_symlink(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            return if dir.is_dir() {
                Ok(Kind::Atomic(path.to_path_buf()))
            } else {
                Err(refuse(
                    path,
                    &format!("its directory {} does not exist", dir.display()),
                ))
            };
        }
        Err(e) => return Err(io(e)),
    };
    let target = if link {
        match std::fs::canonicalize(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(refuse(path, "is a symlink to nothing"))
            }
            Err(e) => return Err(io(e)),
        }
    } else {
        path.to_path_buf()
    };
    let kind = std::fs::metadata(&target).map_err(io)?.file_type();
    if kind.is_file() {
        Ok(Kind::Atomic(target))
    } else if kind.is_dir() {
        Ok(Kind::Directory)
    } else if kind.is_fifo() || kind.is_char_device() {
        Ok(Kind::InPlace(target))
    } else if kind.is_socket() {
        Err(refuse(path, "is a socket"))
    } else if kind.is_block_device() {
        Err(refuse(path, "is a block device"))
    } else {
        Err(refuse(path, "is not a regular file"))
    }
}

/// Checks `--output` before a calibration starts: `-`, a directory, or a path
/// [`write_result`] will accept (its directory exists; not a socket, block device or
/// dangling symlink).
pub fn check_output(output: Option<&Path>) -> Result<(), AgentError> {
    match output {
        Some(p) if !is_stdout(output) => classify(p).map(|_| ()),
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
    match classify(path)? {
        Kind::Atomic(target) => {
            atomic::write(&target, doc.as_bytes(), atomic::Mode::Replace)?;
            Ok(target)
        }
        Kind::InPlace(target) => {
            let io = |source| AgentError::Io {
                path: target.clone(),
                source,
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(io)?;
            f.write_all(doc.as_bytes())
                .and_then(|()| f.flush())
                .map_err(io)?;
            Ok(target)
        }
        Kind::Directory => Err(refuse(path, "is a directory")),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

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
        assert!(e.to_string().contains("symlink to nothing"), "{e}");
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn character_devices_are_written_in_place() {
        // A null device of our own where we may create one (root), so that a regression
        // replaces that one and not the machine's /dev/null; without root, /dev/null itself
        // (which a non-root process could not replace anyway).
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("null");
        let made = std::process::Command::new("mknod")
            .arg(&own)
            .args(["c", "1", "3"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let null = if made {
            own
        } else {
            PathBuf::from("/dev/null")
        };
        let written = write_result(&dest(&null), "{}").unwrap();
        assert_eq!(written, null);
        assert!(std::fs::metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            usize::from(made)
        );
    }

    #[test]
    fn a_fifo_is_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_result(&dest(&fifo), "{\"x\":1}").unwrap();
        assert_eq!(reader.join().unwrap(), "{\"x\":1}\n");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
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
