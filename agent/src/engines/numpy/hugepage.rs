//! NumPy's transparent-huge-page hint: on Linux, NumPy calls `madvise(MADV_HUGEPAGE)` on
//! every array buffer of at least 4 MiB (`numpy._core.multiarray._set_madvise_hugepage`, on
//! by default), from the first page boundary inside the buffer to its end, before the memory
//! is touched. Under the common THP mode `madvise`, that is what backs large NumPy arrays
//! with 2 MiB pages; without it, BLAS-1/2 calls streaming from L3 run up to 3× slower here
//! (TLB misses). The engine gives its large inputs the same hint.

#![allow(unsafe_code)]

/// Buffers from this size (bytes) get the hint, as in NumPy.
pub(crate) const THRESHOLD: usize = 1 << 22;

/// Asks the kernel to back `buf`'s allocation with huge pages; call it before filling.
/// Best effort, like NumPy: a refusal (another OS, THP off) changes nothing else.
pub(crate) fn advise<T>(buf: &mut Vec<T>) {
    let bytes = buf.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < THRESHOLD {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let page = 4096;
    let aligned = start.div_ceil(page) * page;
    let end = start + bytes;
    if aligned < end {
        madvise_hugepage(aligned, end - aligned);
    }
}

#[cfg(target_os = "linux")]
fn madvise_hugepage(addr: usize, len: usize) {
    use std::ffi::{c_int, c_void};
    const MADV_HUGEPAGE: c_int = 14;
    extern "C" {
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    // SAFETY: [addr, addr + len) lies inside one live allocation owned by the caller's Vec
    // and addr is page-aligned, as madvise requires; MADV_HUGEPAGE only changes how the
    // kernel backs those pages, never their contents or validity. Errors are ignored.
    let _ = unsafe { madvise(addr as *mut c_void, len, MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn madvise_hugepage(_addr: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_buffers_keep_their_contents() {
        let mut big: Vec<u64> = Vec::with_capacity(THRESHOLD);
        advise(&mut big);
        big.extend(0..THRESHOLD as u64);
        assert_eq!(big[12345], 12345);
        let mut small: Vec<u8> = vec![7; 10];
        advise(&mut small);
        assert_eq!(small, vec![7; 10]);
    }
}
