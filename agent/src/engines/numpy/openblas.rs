//! The few OpenBLAS functions the engine asks about itself: configuration, kernel, threads.
//!
//! The library is the system OpenBLAS linked through `blas-src` / `openblas-src` (features
//! `cblas`, `system`): the same BLAS NumPy runs, following the same `OPENBLAS_*` variables.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CStr};

// Linking the provider is what makes ndarray's cblas calls and the functions below resolve;
// `openblas-src` is named too, for its `system` feature (link the system library, never build
// one), which is why the agent depends on it directly.
use blas_src as _;
use openblas_src as _;

extern "C" {
    fn openblas_get_config() -> *const c_char;
    fn openblas_get_corename() -> *const c_char;
    fn openblas_get_num_threads() -> c_int;
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_parallel() -> c_int;
}

fn owned(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: OpenBLAS returns pointers to NUL-terminated strings in its own static storage,
    // valid for the life of the process; the null case is handled above.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_string()
}

/// The build configuration string, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64`.
pub(crate) fn config() -> String {
    // SAFETY: no arguments; returns a static string (see `owned`).
    owned(unsafe { openblas_get_config() })
}

/// The kernel (core type) OpenBLAS selected at load time, e.g. `Haswell`.
pub(crate) fn corename() -> String {
    // SAFETY: no arguments; returns a static string (see `owned`).
    owned(unsafe { openblas_get_corename() })
}

/// The number of threads OpenBLAS uses.
pub(crate) fn num_threads() -> u32 {
    // SAFETY: no arguments; reads OpenBLAS's thread setting.
    let n = unsafe { openblas_get_num_threads() };
    n.max(1) as u32
}

/// OpenBLAS's threading layer (`openblas_get_parallel`: 0 sequential, 1 pthreads, 2 OpenMP).
pub(crate) fn threading() -> Result<&'static str, String> {
    // SAFETY: no arguments; returns a build constant.
    threading_name(unsafe { openblas_get_parallel() })
}

/// The name of an `openblas_get_parallel` answer.
pub(crate) fn threading_name(code: c_int) -> Result<&'static str, String> {
    match code {
        0 => Ok("sequential"),
        1 => Ok("pthreads"),
        2 => Ok("OpenMP"),
        other => Err(format!(
            "openblas_get_parallel() answered {other}, not 0, 1 or 2"
        )),
    }
}

/// Sets the number of threads OpenBLAS uses (at least 1).
pub(crate) fn set_num_threads(n: usize) {
    let n = c_int::try_from(n.max(1)).unwrap_or(c_int::MAX);
    // SAFETY: a plain integer argument; OpenBLAS resizes its own pool.
    unsafe { openblas_set_num_threads(n) }
}

/// The version from a configuration string (`OpenBLAS 0.3.21 ...` gives `0.3.21`), or empty.
pub(crate) fn version_of(config: &str) -> String {
    let mut words = config.split_whitespace();
    match (words.next(), words.next()) {
        (Some(name), Some(v)) if name.eq_ignore_ascii_case("openblas") => v.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_second_word_of_the_config() {
        assert_eq!(
            version_of("OpenBLAS 0.3.21  DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"),
            "0.3.21"
        );
        assert_eq!(version_of("something else"), "");
        assert_eq!(version_of(""), "");
    }

    #[test]
    fn the_linked_library_answers() {
        assert!(
            config().to_ascii_lowercase().contains("openblas"),
            "{}",
            config()
        );
        assert!(!corename().is_empty());
        assert!(num_threads() >= 1);
        assert!(threading().is_ok(), "{:?}", threading());
        assert_eq!(threading_name(2), Ok("OpenMP"));
        assert!(threading_name(7).unwrap_err().contains("7"));
    }
}
