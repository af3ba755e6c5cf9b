//! NumPy's transparent-huge-page hint: on Linux, NumPy calls `madvise(MADV_HUGEPAGE)` on
//! every array buffer of at least 4 MiB (`numpy._core.multiarray._set_madvise_hugepage`, on
//! by default), from the first page boundary inside the buffer to its end, before the memory
//! is touched. Under the common THP mode `madvise`, that is what backs large NumPy arrays
//! with 2 MiB pages; without it, BLAS-1/2 calls streaming from L3 run up to 3× slower here
//! (TLB misses). The engine gives its large inputs the same hint.

#![allow(unsafe_code)]

/// Buffers from this size (bytes) get the hint, as in NumPy.
pub(crate) const THRESHOLD: usize = 1 << 22;

/// What [`advise`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// The buffer is under [`THRESHOLD`] (or holds no whole page): no hint, as in NumPy.
    TooSmall,
    /// The kernel took the hint for the page-aligned part of the buffer.
    Given,
    /// The kernel refused it (this errno: THP not built in, another OS); nothing else changes.
    Refused(i32),
}

/// Asks the kernel to back `buf`'s allocation with huge pages; call it before filling.
/// Best effort, like NumPy: a refusal (another OS, THP off) changes nothing else.
pub(crate) fn advise<T>(buf: &mut Vec<T>) -> Hint {
    let bytes = buf.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < THRESHOLD {
        return Hint::TooSmall;
    }
    match hint_range(buf.as_mut_ptr() as usize, bytes) {
        Some((addr, len)) => madvise_hugepage(addr, len),
        None => Hint::TooSmall,
    }
}

/// NumPy's range: from the first page boundary inside `[start, start + bytes)` to its end;
/// `None` when no page boundary lies inside.
fn hint_range(start: usize, bytes: usize) -> Option<(usize, usize)> {
    let page = 4096;
    let aligned = start.checked_next_multiple_of(page)?;
    let end = start.checked_add(bytes)?;
    (aligned < end).then(|| (aligned, end - aligned))
}

#[cfg(target_os = "linux")]
fn madvise_hugepage(addr: usize, len: usize) -> Hint {
    use std::ffi::{c_int, c_void};
    const MADV_HUGEPAGE: c_int = 14;
    extern "C" {
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    // SAFETY: [addr, addr + len) lies inside one live allocation owned by the caller's Vec
    // and addr is page-aligned, as madvise requires; MADV_HUGEPAGE only changes how the
    // kernel backs those pages, never their contents or validity.
    if unsafe { madvise(addr as *mut c_void, len, MADV_HUGEPAGE) } == 0 {
        Hint::Given
    } else {
        Hint::Refused(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

#[cfg(not(target_os = "linux"))]
fn madvise_hugepage(_addr: usize, _len: usize) -> Hint {
    Hint::Refused(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_starts_at_the_first_page_boundary_inside_the_buffer() {
        assert_eq!(hint_range(8192, 1 << 22), Some((8192, 1 << 22)));
        assert_eq!(hint_range(4097, 1 << 22), Some((8192, (1 << 22) - 4095)));
        assert_eq!(hint_range(4097, 100), None, "no boundary inside");
        assert_eq!(hint_range(usize::MAX - 10, 1 << 22), None, "no overflow");
    }

    /// The VmFlags of the mapping holding `addr` in /proc/self/smaps.
    fn vm_flags(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line
                .split_whitespace()
                .next()
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| {
                    Some((
                        usize::from_str_radix(a, 16).ok()?,
                        usize::from_str_radix(b, 16).ok()?,
                    ))
                });
            // A mapping's header line starts with its address range; its fields follow.
            if let Some((start, end)) = range {
                inside = (start..end).contains(&addr);
                continue;
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return Some(flags.trim().to_string());
                }
            }
        }
        None
    }

    #[test]
    fn large_buffers_get_the_hint_and_keep_their_contents_small_ones_do_not() {
        let mut small: Vec<u8> = vec![7; 10];
        assert_eq!(advise(&mut small), Hint::TooSmall);
        assert_eq!(small, vec![7; 10]);

        let mut big: Vec<u64> = Vec::with_capacity(THRESHOLD);
        let hint = advise(&mut big);
        big.extend(0..THRESHOLD as u64);
        assert_eq!(big[12345], 12345);
        if !cfg!(target_os = "linux") {
            return;
        }
        let thp = std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists();
        if !thp {
            // A kernel without transparent huge pages refuses the advice (EINVAL).
            assert!(matches!(hint, Hint::Refused(_)), "{hint:?}");
            return;
        }
        assert_eq!(hint, Hint::Given);
        let (addr, _) = hint_range(big.as_ptr() as usize, THRESHOLD * 8).unwrap();
        let flags = vm_flags(addr).expect("the buffer's mapping in /proc/self/smaps");
        assert!(
            flags.split_whitespace().any(|f| f == "hg"),
            "MADV_HUGEPAGE shows as 'hg' in the mapping's VmFlags: {flags}"
        );
    }
}
