//! What an `--output` path may be, and how a document is written there: the one rule behind
//! `fleetcal-agent calibrate --output` (a result) and `fleetctl report --output` (a report).
//!
//! - a missing path (its directory exists) or a regular file: written atomically
//!   ([`crate::atomic`]: a temporary file beside it, fsync, rename, directory fsync), so a
//!   crash leaves the old file or the new one;
//! - a symbolic link: followed to its final target, which these same rules then apply to (a
//!   regular file is replaced at the target, so the link stays a link); a link to nothing is
//!   refused;
//! - a FIFO or a character device (`/dev/null`, `/dev/stdout`, a named pipe): written in
//!   place, never replaced (a rename would put a regular file where the device was: run as
//!   root, `--output /dev/null` once replaced the machine's `/dev/null`);
//! - a directory: [`Target::Directory`], which the caller takes or refuses (the agent writes
//!   its default file name inside);
//! - anything else (a socket, a block device): refused, nothing written.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::atomic::{self, Mode};
use crate::FileError;

/// Where a document given an `--output` path goes ([`classify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing there yet, or a regular file: written atomically at this path (a symbolic
    /// link's final target).
    Atomic(PathBuf),
    /// A FIFO or character device: written in place at this path.
    InPlace(PathBuf),
    /// A directory.
    Directory,
}

fn refused(path: &Path, what: impl Into<String>) -> FileError {
    FileError::Refused {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Classifies `path` by the rules of the module doc; an error for a path no document is
/// written to (nothing is written or changed).
pub fn classify(path: &Path) -> Result<Target, FileError> {
    use std::os::unix::fs::FileTypeExt;
    let io = |source| FileError::Io {
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
                Ok(Target::Atomic(path.to_path_buf()))
            } else {
                Err(refused(
                    path,
                    format!("its directory {} does not exist", dir.display()),
                ))
            };
        }
        Err(e) => return Err(io(e)),
    };
    let target = if link {
        match std::fs::canonicalize(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(refused(path, "is a symbolic link to nothing"))
            }
            Err(e) => return Err(io(e)),
        }
    } else {
        path.to_path_buf()
    };
    let kind = std::fs::metadata(&target).map_err(io)?.file_type();
    if kind.is_file() {
        Ok(Target::Atomic(target))
    } else if kind.is_dir() {
        Ok(Target::Directory)
    } else if kind.is_fifo() || kind.is_char_device() {
        Ok(Target::InPlace(target))
    } else if kind.is_socket() {
        Err(refused(path, "is a socket"))
    } else if kind.is_block_device() {
        Err(refused(path, "is a block device"))
    } else {
        Err(refused(path, "is not a regular file"))
    }
}

/// Writes `bytes` to the file `path` names, by [`classify`]'s rule; returns the file written
/// (a symbolic link's target). A directory is refused, naming `path`.
pub fn write_to(path: &Path, bytes: &[u8]) -> Result<PathBuf, FileError> {
    match classify(path)? {
        Target::Atomic(file) => {
            atomic::write(&file, bytes, Mode::Replace)?;
            Ok(file)
        }
        Target::InPlace(file) => {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()))
                .map_err(|source| FileError::Io {
                    path: file.clone(),
                    source,
                })?;
            Ok(file)
        }
        Target::Directory => Err(refused(path, "is a directory")),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn a_file_is_replaced_whole_and_a_link_keeps_pointing_at_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.json");
        write_to(&file, b"one").unwrap();
        write_to(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let link = dir.path().join("latest.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let written = write_to(&link, b"three").unwrap();
        assert_eq!(written, std::fs::canonicalize(&file).unwrap());
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&file).unwrap(), b"three");
        assert_eq!(entries(dir.path()), 2, "no temporary file left beside them");
    }

    #[test]
    fn character_devices_are_written_in_place() {
        // A null device of our own where we may make one (root), so that a regression
        // replaces that one and not the machine's /dev/null; without root, /dev/null itself
        // (which a process without root could not replace anyway).
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
        assert_eq!(classify(&null).unwrap(), Target::InPlace(null.clone()));
        assert_eq!(write_to(&null, b"{}").unwrap(), null);
        let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
        assert!(kind.is_char_device());
        assert_eq!(entries(dir.path()), usize::from(made));
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
        write_to(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
    }

    #[test]
    fn a_directory_is_classified_and_refused_as_a_file_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(classify(dir.path()).unwrap(), Target::Directory);
        let e = write_to(dir.path(), b"x").unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn sockets_links_to_nothing_and_missing_directories_are_refused_and_left_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let e = write_to(&socket, b"x").unwrap_err().to_string();
        assert!(e.contains("is a socket"), "{e}");
        assert!(std::fs::symlink_metadata(&socket)
            .unwrap()
            .file_type()
            .is_socket());
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let e = write_to(&dangling, b"x").unwrap_err().to_string();
        assert!(e.contains("symbolic link to nothing"), "{e}");
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!dir.path().join("nowhere").exists());
        let e = write_to(&dir.path().join("no/such/dir/r.json"), b"x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert_eq!(entries(dir.path()), 2);
    }

    #[test]
    fn block_devices_are_refused() {
        let Some(block) = ["/dev/vda", "/dev/sda", "/dev/loop0", "/dev/nvme0n1"]
            .into_iter()
            .map(Path::new)
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device()))
        else {
            eprintln!("skipped: no block device here");
            return;
        };
        let e = classify(block).unwrap_err().to_string();
        assert!(e.contains("is a block device"), "{e}");
    }
}
