//! Outcomes not yet acknowledged by the coordinator, in `<state-dir>/spool/`:
//! `<run_id>.json` for a result, `<run_id>.failed` for a failure report.
//!
//! An outcome is stored here ([`crate::atomic::write`]: temp file, fsync, rename, directory
//! fsync; the temp file removed at once if that fails) before it is first
//! sent and removed only once the coordinator acknowledged it (a result stored or a duplicate,
//! a failure recorded), so a crash or an outage loses nothing and the coordinator's
//! de-duplication by run id keeps a result from being stored twice. An outcome the coordinator
//! refuses for good is moved to `spool/rejected/` for the operator; a file that cannot be sent
//! at all (not UTF-8, too large) is renamed `<name>.corrupt` once. Temp files a crash left
//! (`.*.fleetcal-tmp`) are never read and are removed when the spool is opened.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fleetcal_proto::pb::MAX_MESSAGE_BYTES;

use crate::atomic::{self, sync_dir};
use crate::AgentError;

/// The spool directory of one agent (clones share the set of settled run ids).
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    /// Run ids whose outcome left the spool in this process (acknowledged or set aside): a
    /// plan for one of them, re-sent from a desired state that predates the acknowledgement,
    /// must not run again.
    settled: Arc<Mutex<HashSet<String>>>,
}

/// What a spooled file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A result document (JSON), for UploadResult.
    Result,
    /// A failure message, for ReportProgress(FAILED).
    Failure,
}

impl Kind {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Result => "json",
            Kind::Failure => "failed",
        }
    }
}

/// One stored outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The run id (the file stem).
    pub run_id: String,
    /// Result or failure.
    pub kind: Kind,
    /// The file.
    pub path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`Spool::set_aside`] appends to the name of a file that cannot be sent.
pub const CORRUPT_SUFFIX: &str = ".corrupt";

/// Whether a run id is safe as a file name: `[A-Za-z0-9._-]`, not starting with a dot.
pub fn valid_run_id(run_id: &str) -> bool {
    !run_id.is_empty()
        && run_id.len() <= 200
        && !run_id.starts_with('.')
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The run id and kind of a spool file name, if it is one.
fn parse_name(name: &str) -> Option<(String, Kind)> {
    [Kind::Result, Kind::Failure].into_iter().find_map(|kind| {
        name.strip_suffix(kind.extension())
            .and_then(|n| n.strip_suffix('.'))
            .filter(|id| valid_run_id(id))
            .map(|id| (id.to_string(), kind))
    })
}

impl Spool {
    /// Opens (creating) the spool in `dir`, removing temp files a crash left behind.
    pub fn open(dir: &Path) -> Result<Spool, AgentError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if atomic::is_temp_name(name) {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            settled: Arc::default(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a run's outcome of `kind` is stored in.
    pub fn path_of(&self, run_id: &str, kind: Kind) -> PathBuf {
        self.dir.join(format!("{run_id}.{}", kind.extension()))
    }

    /// Stores a result durably; replaces an older copy of the same run.
    pub fn store(&self, run_id: &str, json: &str) -> Result<PathBuf, AgentError> {
        self.store_as(run_id, Kind::Result, json)
    }

    /// Stores a failure report durably.
    pub fn store_failure(&self, run_id: &str, message: &str) -> Result<PathBuf, AgentError> {
        self.store_as(run_id, Kind::Failure, message)
    }

    /// Stores an outcome of `kind` durably; replaces an older copy of the same run's.
    pub fn store_as(&self, run_id: &str, kind: Kind, text: &str) -> Result<PathBuf, AgentError> {
        if !valid_run_id(run_id) {
            return Err(AgentError::Link(format!(
                "run id '{}' is not usable as a spool file name",
                fleetcal_proto::quote::bounded(run_id)
            )));
        }
        let path = self.path_of(run_id, kind);
        atomic::write(&path, text.as_bytes(), atomic::Mode::Replace)?;
        Ok(path)
    }

    /// Every stored outcome, oldest first (by modification time, then name).
    pub fn pending(&self) -> Result<Vec<Entry>, AgentError> {
        let mut found: Vec<(SystemTime, Entry)> = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let path = entry.path();
            let Some((run_id, kind)) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_name)
            else {
                continue;
            };
            if !entry.file_type().map_err(io(&path))?.is_file() {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((modified, Entry { run_id, kind, path }));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.path.cmp(&b.1.path)));
        Ok(found.into_iter().map(|(_, e)| e).collect())
    }

    /// Whether an outcome of this run is waiting here.
    pub fn contains(&self, run_id: &str) -> bool {
        valid_run_id(run_id)
            && [Kind::Result, Kind::Failure]
                .into_iter()
                .any(|k| self.path_of(run_id, k).is_file())
    }

    /// Whether this run's outcome is waiting here or left the spool since the process started.
    pub fn knows(&self, run_id: &str) -> bool {
        self.contains(run_id) || self.settled.lock().is_ok_and(|s| s.contains(run_id))
    }

    fn settle(&self, run_id: &str) {
        if let Ok(mut s) = self.settled.lock() {
            s.insert(run_id.to_string());
        }
    }

    /// Reads a stored outcome. A file that cannot be an outcome — not UTF-8, or larger than
    /// the largest message the coordinator takes — is an error of kind `InvalidData` (see
    /// [`Spool::set_aside`]).
    pub fn read(&self, entry: &Entry) -> Result<String, AgentError> {
        let len = std::fs::metadata(&entry.path)
            .map_err(io(&entry.path))?
            .len();
        if usize::try_from(len).map_or(true, |n| n > MAX_MESSAGE_BYTES) {
            return Err(io(&entry.path)(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{len} bytes is more than a message may carry ({MAX_MESSAGE_BYTES})"),
            )));
        }
        std::fs::read_to_string(&entry.path).map_err(io(&entry.path))
    }

    /// Moves a file that cannot be sent (see [`Spool::read`]) out of the way, once: it is
    /// renamed `<name>.corrupt` in the spool (no longer pending, so later drains neither read
    /// nor log it again) and the run counts as settled.
    pub fn set_aside(&self, entry: &Entry) -> Result<PathBuf, AgentError> {
        self.settle(&entry.run_id);
        let mut name = entry.path.file_name().unwrap_or_default().to_os_string();
        name.push(CORRUPT_SUFFIX);
        let to = entry.path.with_file_name(name);
        std::fs::rename(&entry.path, &to).map_err(io(&to))?;
        sync_dir(&self.dir);
        Ok(to)
    }

    /// Forgets an acknowledged outcome (a missing file is fine); the run stays known.
    pub fn remove(&self, entry: &Entry) -> Result<(), AgentError> {
        self.settle(&entry.run_id);
        match std::fs::remove_file(&entry.path) {
            Ok(()) => {
                sync_dir(&self.dir);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&entry.path)(e)),
        }
    }

    /// Moves an outcome the coordinator refused for good to `rejected/`, with the reason
    /// beside it in `<file>.reason.txt`.
    pub fn reject(&self, entry: &Entry, reason: &str) -> Result<PathBuf, AgentError> {
        self.settle(&entry.run_id);
        let dir = self.dir.join("rejected");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let name = entry.path.file_name().unwrap_or_default().to_string_lossy();
        let to = dir.join(&*name);
        let why = dir.join(format!("{name}.reason.txt"));
        atomic::write(
            &why,
            format!("{reason}\n").as_bytes(),
            atomic::Mode::Replace,
        )?;
        std::fs::rename(&entry.path, &to).map_err(io(&to))?;
        sync_dir(&self.dir);
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &Spool) -> Vec<String> {
        s.pending().unwrap().into_iter().map(|e| e.run_id).collect()
    }

    #[test]
    fn store_list_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(&dir.path().join("spool")).unwrap();
        let t0 = SystemTime::now();
        for (id, age_s) in [("run-b", 2), ("run-a", 1)] {
            let path = s.store(id, &format!("{{\"{id}\":1}}")).unwrap();
            let f = std::fs::File::options().write(true).open(path).unwrap();
            f.set_modified(t0 - std::time::Duration::from_secs(age_s))
                .unwrap();
        }
        assert_eq!(names(&s), ["run-b", "run-a"], "oldest first, not by name");
        let first = s.pending().unwrap().remove(0);
        assert_eq!(first.kind, Kind::Result);
        assert_eq!(s.read(&first).unwrap(), "{\"run-b\":1}");
        assert!(s.contains("run-b"));
        s.remove(&first).unwrap();
        s.remove(&first).unwrap();
        assert_eq!(names(&s), ["run-a"]);
        assert!(!s.contains("run-b"));
        assert!(s.clone().knows("run-b"), "acknowledged runs stay known");
        assert!(s.knows("run-a") && !s.knows("run-c"));
        let reopened = Spool::open(&dir.path().join("spool")).unwrap();
        assert!(!reopened.knows("run-b") && reopened.knows("run-a"));
    }

    #[test]
    fn failures_are_spooled_beside_results() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path()).unwrap();
        s.store_failure("r.1", "preset 'x' unknown").unwrap();
        s.store("r.failed", "{}").unwrap();
        let all = s.pending().unwrap();
        let kinds: Vec<_> = all.iter().map(|e| (e.run_id.as_str(), e.kind)).collect();
        assert!(kinds.contains(&("r.1", Kind::Failure)), "{kinds:?}");
        assert!(kinds.contains(&("r.failed", Kind::Result)), "{kinds:?}");
        let failure = all.iter().find(|e| e.kind == Kind::Failure).unwrap();
        assert_eq!(s.read(failure).unwrap(), "preset 'x' unknown");
        assert!(s.contains("r.1"));
    }

    #[test]
    fn a_half_written_temp_file_is_ignored_and_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let s = Spool::open(&spool_dir).unwrap();
        s.store("done", "{}").unwrap();
        std::fs::write(spool_dir.join(".crashed.json.1.0.fleetcal-tmp"), "{\"trunc").unwrap();
        assert_eq!(names(&s), ["done"]);
        let s = Spool::open(&spool_dir).unwrap();
        assert!(!spool_dir.join(".crashed.json.1.0.fleetcal-tmp").exists());
        assert_eq!(names(&s), ["done"]);
    }

    #[test]
    fn storing_twice_keeps_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path()).unwrap();
        s.store("r1", "old").unwrap();
        s.store("r1", "new").unwrap();
        let all = s.pending().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(s.read(&all[0]).unwrap(), "new");
    }

    #[test]
    fn unsafe_run_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path()).unwrap();
        for bad in ["", "../etc/passwd", ".hidden", "a/b", "a b"] {
            let e = s.store(bad, "{}").unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
        assert!(names(&s).is_empty());
    }

    #[test]
    fn unreadable_files_are_invalid_data_and_set_aside_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("bad.failed"), [0xff, 0xfe, 0x00]).unwrap();
        let entry = s.pending().unwrap().remove(0);
        let e = s.read(&entry).unwrap_err();
        let AgentError::Io { source, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
        let to = s.set_aside(&entry).unwrap();
        assert_eq!(to, dir.path().join("bad.failed.corrupt"));
        assert!(to.is_file() && names(&s).is_empty());
        assert!(s.knows("bad") && !s.contains("bad"));
        // Too large to be a message.
        let big = std::fs::File::create(dir.path().join("big.json")).unwrap();
        big.set_len(MAX_MESSAGE_BYTES as u64 + 1).unwrap();
        let entry = s.pending().unwrap().remove(0);
        let e = s.read(&entry).unwrap_err().to_string();
        assert!(e.contains("more than a message may carry"), "{e}");
    }

    #[test]
    fn rejected_outcomes_move_aside_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path()).unwrap();
        s.store("bad", "{}").unwrap();
        let entry = s.pending().unwrap().remove(0);
        let to = s.reject(&entry, "invalid argument: schema").unwrap();
        assert!(to.is_file());
        assert!(names(&s).is_empty());
        let why = std::fs::read_to_string(dir.path().join("rejected/bad.json.reason.txt")).unwrap();
        assert!(why.contains("schema"));
    }
}
