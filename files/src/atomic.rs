//! The one way fleetcal writes a file that must never be seen half-written: result files
//! (`fleetcal-agent calibrate --output`), the agent daemon's spool, its agent id, and its
//! enrolled key and certificate when it renews them ([`write_private`]: readable by the owner
//! only), and `fleetctl report --output`.
//!
//! A temporary file is created beside the target (`.<name>.<pid>.<n>.fleetcal-tmp`, created
//! new, never through an existing name), written and fsynced, then renamed over the target
//! ([`Mode::Replace`]) or hard-linked to it only if the name is free ([`Mode::CreateNew`]), and
//! the directory is fsynced so that the new name survives a crash. On any failure (a full
//! disk, a missing directory) the temporary file is removed at once, so a failed write leaves
//! nothing behind. A crash can still leave a temporary file: [`is_temp_name`] recognises one
//! (the spool removes them when it opens).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::FileError;

/// What to do when the target name exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replace it (rename over it): readers see the old contents or the new, never a mix.
    Replace,
    /// Keep it: the write happens only if the name is free (two writers agree on one file).
    CreateNew,
}

/// The suffix of every temporary file this module creates.
pub const TEMP_SUFFIX: &str = ".fleetcal-tmp";

/// Whether a file name is one of this module's temporary files (a crash's leftover when no
/// write is under way).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The temporary file for `path`: beside it, unique in this process and among processes.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    parent(path).join(format!(".{name}.{}.{n}{TEMP_SUFFIX}", std::process::id()))
}

/// The directory a path's name lives in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `contents` to `path` atomically (see the module doc). Returns `false` only in
/// [`Mode::CreateNew`] when the name already existed (its file is left as it was).
pub fn write(path: &Path, contents: &[u8], mode: Mode) -> Result<bool, FileError> {
    write_as(path, contents, mode, false)
}

/// [`write()`] for a secret (a private key): the file is created mode 0600, so it is never
/// readable by others, not even while it is written.
pub fn write_private(path: &Path, contents: &[u8], mode: Mode) -> Result<bool, FileError> {
    write_as(path, contents, mode, true)
}

fn write_as(path: &Path, contents: &[u8], mode: Mode, private: bool) -> Result<bool, FileError> {
    let tmp = temp_path(path);
    let written = write_temp(&tmp, contents, private).and_then(|()| match mode {
        Mode::Replace => std::fs::rename(&tmp, path).map(|()| true).map_err(io(path)),
        Mode::CreateNew => match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(path)(e)),
        },
    });
    // After a rename the temporary name is gone; after a link or a failure it is removed.
    if mode == Mode::CreateNew || written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    if written.is_ok() {
        sync_dir(parent(path));
    }
    written
}

fn write_temp(tmp: &Path, contents: &[u8], private: bool) -> Result<(), FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = options.open(tmp).map_err(io(tmp))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(io(tmp))
}

/// Makes a rename, link or removal in `dir` durable (best effort: not every filesystem
/// allows a directory to be synced).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replace_writes_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        assert!(write(&p, b"{}", Mode::Replace).unwrap());
        assert!(write(&p, b"{\"a\":1}", Mode::Replace).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\":1}");
        assert_eq!(names(dir.path()), ["x.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.key");
        assert!(write_private(&p, b"secret", Mode::Replace).unwrap());
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "secret");
        assert_eq!(names(dir.path()), ["k.key"]);
    }

    #[test]
    fn create_new_keeps_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("id");
        assert!(write(&p, b"first", Mode::CreateNew).unwrap());
        assert!(!write(&p, b"second", Mode::CreateNew).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "first");
        assert_eq!(names(dir.path()), ["id"]);
    }

    #[test]
    fn a_failed_write_names_the_file_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let e = write(&dir.path().join("missing/x.json"), b"{}", Mode::Replace).unwrap_err();
        assert!(e.to_string().contains("missing/"), "{e}");
        // A rename onto a directory fails after the temp file was written: it is removed.
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/inside"), "x").unwrap();
        let e = write(&dir.path().join("d"), b"{}", Mode::Replace).unwrap_err();
        assert!(matches!(e, FileError::Io { .. }), "{e}");
        assert_eq!(names(dir.path()), ["d"]);
    }

    #[test]
    fn temp_names_are_recognised() {
        let t = temp_path(Path::new("/s/spool/r1.json"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert!(is_temp_name(name), "{name}");
        assert!(name.starts_with(".r1.json."), "{name}");
        assert_eq!(t.parent().unwrap(), Path::new("/s/spool"));
        assert_ne!(
            t,
            temp_path(Path::new("/s/spool/r1.json")),
            "unique per call"
        );
        assert!(!is_temp_name("r1.json") && !is_temp_name(".hidden"));
        assert_eq!(parent(Path::new("x.json")), Path::new("."));
    }
}
