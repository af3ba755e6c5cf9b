//! The version of the libtorch this process runs.
//!
//! libtorch has no run-time version call that tch exposes, so the version is read next to the
//! `libtorch_cpu` shared object this process actually loaded (found in `/proc/self/maps`):
//! a libtorch distribution's `build-version` file, or a PyTorch wheel's `torch/version.py`.
//! When neither is found, it is the version torch-sys 0.26 checked at build time (it refuses to
//! build against any other unless `LIBTORCH_BYPASS_VERSION_CHECK` is set).

use std::path::{Path, PathBuf};

/// The libtorch version torch-sys 0.26 builds against.
pub const BUILD_TIME_VERSION: &str = "2.13.0";

/// The running libtorch's version (`2.13.0+cpu`) and where it was read from.
pub fn libtorch_version() -> (String, String) {
    let found = loaded_libtorch_dir().and_then(|lib| {
        let root = lib.parent()?;
        version_near(root).map(|(v, file)| (v, file.display().to_string()))
    });
    found.unwrap_or_else(|| {
        (
            BUILD_TIME_VERSION.to_string(),
            "torch-sys 0.26 build-time check".to_string(),
        )
    })
}

/// The directory of the loaded `libtorch_cpu` shared object.
fn loaded_libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps_libtorch_dir(&maps)
}

/// The directory of `libtorch_cpu.so` in the text of a `/proc/<pid>/maps` file.
pub fn maps_libtorch_dir(maps: &str) -> Option<PathBuf> {
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("libtorch_cpu."))
        })
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
}

/// The version recorded in `root/build-version` or `root/version.py`, with the file read.
pub fn version_near(root: &Path) -> Option<(String, PathBuf)> {
    let build_version = root.join("build-version");
    if let Ok(text) = std::fs::read_to_string(&build_version) {
        let v = text.trim();
        if !v.is_empty() {
            return Some((v.to_string(), build_version));
        }
    }
    let version_py = root.join("version.py");
    let text = std::fs::read_to_string(&version_py).ok()?;
    parse_version_py(&text).map(|v| (v, version_py))
}

/// `__version__` of a PyTorch wheel's `torch/version.py`.
pub fn parse_version_py(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("__version__")?;
        let value = rest.trim_start().strip_prefix('=')?.trim();
        let v = value.trim_matches(|c| c == '\'' || c == '"');
        (!v.is_empty()).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_loaded_library_and_its_version_file() {
        let maps = "7f0-7f1 r-xp 00000000 08:01 42 /opt/x/libc.so.6\n\
                    7f2-7f3 r-xp 00000000 08:01 43 /w/.libtorch/lib/libtorch_cpu.so\n";
        assert_eq!(
            maps_libtorch_dir(maps),
            Some(PathBuf::from("/w/.libtorch/lib"))
        );
        assert_eq!(maps_libtorch_dir("7f0-7f1 r-xp 0 0 0 [heap]\n"), None);

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("version.py"),
            "from typing import Optional\n__version__ = '2.13.0+cpu'\ngit_version = 'abc'\n",
        )
        .unwrap();
        assert_eq!(version_near(dir.path()).unwrap().0, "2.13.0+cpu");
        std::fs::write(dir.path().join("build-version"), "2.13.0+cu129\n").unwrap();
        assert_eq!(version_near(dir.path()).unwrap().0, "2.13.0+cu129");
    }

    #[test]
    fn the_running_version_is_the_one_torch_sys_accepts() {
        let (version, source) = libtorch_version();
        assert!(
            version.starts_with(BUILD_TIME_VERSION),
            "{version} from {source}"
        );
    }
}
