//! Result files: fleetcal's schema or the origin's profile, written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use fleetcal_proto::{origin, CalibrationResult};

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

/// Where a result goes: `--output` (a file, or a directory to put the default name in), else
/// `<hardware_slug>_<framework>.json` in the current directory.
pub fn destination(result: &CalibrationResult, output: Option<&Path>) -> PathBuf {
    let name = origin::file_name(result);
    match output {
        Some(p) if p.is_dir() => p.join(name),
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(name),
    }
}

/// Writes `text` to `path` atomically: a temporary file beside it, fsync, rename.
/// A crash leaves either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), AgentError> {
    let io = |source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.fleetcal-tmp",
        path.file_name()
            .map_or("result".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_atomic(&p, "{}").unwrap();
        write_atomic(&p, "{\"a\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\":1}\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = write_atomic(&dir.path().join("missing/x.json"), "{}").unwrap_err();
        assert!(err.to_string().contains("missing/x.json"), "{err}");
    }
}
