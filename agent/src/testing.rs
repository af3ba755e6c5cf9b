//! Helpers shared by the unit tests (compiled for tests only).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that lets a machine without root skip the tests that mount a
/// filesystem (they fail otherwise: CI runs them as root).
pub const SKIP_ROOT_TESTS: &str = "FLEETCAL_SKIP_ROOT_TESTS";

/// A 64 KiB tmpfs mounted in a temporary directory and filled until a write fails with
/// "No space left on device"; unmounted on drop.
pub struct FullDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl FullDisk {
    /// Mounts and fills one. Without the right to mount, the test fails with a message saying
    /// why, unless `FLEETCAL_SKIP_ROOT_TESTS=1`: then `None`, after a loud SKIP on stderr.
    pub fn mount(test: &str) -> Option<FullDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("full");
        std::fs::create_dir(&mount).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&mount)
            .output();
        let failed = match &out {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            if std::env::var(SKIP_ROOT_TESTS).is_ok_and(|v| v == "1") {
                eprintln!(
                    "SKIP {test}: cannot mount a tmpfs ({}) and {SKIP_ROOT_TESTS}=1",
                    why.trim()
                );
                return None;
            }
            panic!(
                "{test} mounts a small tmpfs to fill it and needs root: mount failed: {} \
                 (run as root, or set {SKIP_ROOT_TESTS}=1 to skip it)",
                why.trim()
            );
        }
        let disk = FullDisk { mount, _dir: dir };
        disk.fill();
        Some(disk)
    }

    /// The mounted, full directory.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }

    /// Writes the filler until the disk is full.
    pub fn fill(&self) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .unwrap();
        let chunk = [0u8; 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = f.flush();
        let _ = f.sync_all();
        assert!(
            std::fs::write(self.mount.join(".probe"), b"x").is_err(),
            "the tmpfs should be full"
        );
        let _ = std::fs::remove_file(self.mount.join(".probe"));
    }

    /// Frees the space the filler took.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    /// The names in the mounted directory, sorted (the filler left out).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.mount)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "filler")
            .collect();
        v.sort();
        v
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// OpenBLAS's and libtorch's thread counts are process-wide and the unit tests share one
/// process: a test that reads a count back, or sets one other than the others' 1, holds this
/// lock — shared by those that use 1 or only read, exclusive by one that sets another count.
static THREAD_COUNTS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Holds the thread counts for a test that sets them to 1 or only reads them.
pub fn thread_counts_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    THREAD_COUNTS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Holds the thread counts for a test that sets another count and reads it back (the
/// compare test: both engines, so only with feature `torch`).
#[cfg(feature = "torch")]
pub fn thread_counts_exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    THREAD_COUNTS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
