//! OpenBLAS's waiting, as NumPy's wheels have it.
//!
//! OpenBLAS before 0.3.27 waits on x86_64 — the caller for its workers, the workers for work —
//! by calling `sched_yield()` in a loop (OpenMathLib/OpenBLAS#4496). 0.3.27 replaced that with
//! a short busy spin (#4549), and NumPy's wheels ship 0.3.27 or later. With the old loop, the
//! scheduler can stack the caller and the worker on one CPU of a small VM, and a threaded
//! `ddot`/`dgemv` then runs at one core's speed for the whole process: measured here with
//! Debian's OpenBLAS 0.3.21, fp64 dot at n = 1e6 reached 10 GFLOPS in most processes
//! against NumPy's 23.5, and 24 in every process with this module in force.
//!
//! So the agent's executables define `sched_yield` themselves (`agent/build.rs` exports the
//! symbol, so the dynamic linker binds OpenBLAS's calls to it). While a [`Guard`] is alive it
//! spins briefly and returns, as OpenBLAS 0.3.27+ does; otherwise it makes the real system
//! call. The numpy engine holds a guard only for an OpenBLAS older than 0.3.27, and records
//! that it did (see [`Guard::acquire`]).

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// Live guards; `sched_yield` spins while this is non-zero.
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// The first OpenBLAS version whose x86_64 threads wait without `sched_yield`.
pub(crate) const FIXED_IN: (u32, u32, u32) = (0, 3, 27);

/// Whether OpenBLAS `version` (`0.3.21`, `0.3.21.dev`) waits with `sched_yield` on this
/// platform; an unparsable version counts as not affected.
pub(crate) fn affected(version: &str) -> bool {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return false;
    }
    let mut parts = version.split('.').map(|p| {
        p.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
    });
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c) < FIXED_IN,
        _ => false,
    }
}

/// Spinning in force while alive (nested guards count).
#[derive(Debug)]
pub(crate) struct Guard(());

impl Guard {
    /// Starts spinning; `None` where the executable's `sched_yield` is not the one the
    /// dynamic linker hands out (another platform, or a binary linked without the export),
    /// since spinning could then change nothing.
    pub(crate) fn acquire() -> Option<Guard> {
        if !interposed() {
            return None;
        }
        SPINNING.fetch_add(1, Ordering::SeqCst);
        Some(Guard(()))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether calls to `sched_yield` from shared libraries reach this module's definition.
pub(crate) fn interposed() -> bool {
    imp::interposed()
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use std::ffi::{c_char, c_int, c_long, c_void};
    use std::sync::atomic::Ordering;

    extern "C" {
        fn syscall(number: c_long, ...) -> c_long;
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    }

    /// `SYS_sched_yield` on x86_64 Linux.
    const SYS_SCHED_YIELD: c_long = 24;

    /// OpenBLAS's (and everyone else's) `sched_yield`: a short spin while a guard is alive,
    /// as OpenBLAS 0.3.27+ waits on x86_64; the system call otherwise.
    #[no_mangle]
    pub extern "C" fn sched_yield() -> c_int {
        if super::SPINNING.load(Ordering::Relaxed) > 0 {
            for _ in 0..8 {
                std::hint::spin_loop();
            }
            return 0;
        }
        // SAFETY: sched_yield takes no arguments and only gives up the CPU; the kernel
        // returns 0 (it cannot fail on Linux).
        unsafe { syscall(SYS_SCHED_YIELD) as c_int }
    }

    pub(super) fn interposed() -> bool {
        // SAFETY: RTLD_DEFAULT (a null handle on glibc) searches the global scope in load
        // order; the name is a NUL-terminated literal. The result is only compared.
        let found = unsafe { dlsym(std::ptr::null_mut(), c"sched_yield".as_ptr()) };
        std::ptr::eq(found as *const (), sched_yield as *const ())
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    pub(super) fn interposed() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_openblas_before_0_3_27_is_affected_on_x86_64_linux() {
        let here = cfg!(all(target_os = "linux", target_arch = "x86_64"));
        assert_eq!(affected("0.3.21"), here);
        assert_eq!(affected("0.3.26.dev"), here);
        assert_eq!(affected("0.2.20"), here);
        assert!(!affected("0.3.27"));
        assert!(!affected("0.3.31.188.0"));
        assert!(!affected("1.0.0"));
        assert!(!affected(""));
        assert!(!affected("unknown"));
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn the_test_binary_interposes_and_guards_nest() {
        // agent/build.rs exports the symbol for every target of this package, tests included.
        assert!(interposed(), "sched_yield is not this executable's");
        let a = Guard::acquire().expect("guard");
        let b = Guard::acquire().expect("guard");
        assert!(SPINNING.load(Ordering::SeqCst) >= 2);
        drop(a);
        drop(b);
        // With no guard of this test alive, the real call still yields and returns 0.
        std::thread::yield_now();
        assert_eq!(imp::sched_yield(), 0);
    }
}
