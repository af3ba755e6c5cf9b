//! The allocator's one setting: how long freed memory is kept before it goes back to the OS.
//!
//! A report hands back tens of MB of JSON and an upload brings a 266 KB document: each is
//! built in fresh buffers, freed, and built again by the next request. mimalloc returns freed
//! memory to the OS after 1 s by default; the next request's buffers then fault in new pages
//! that the kernel zeroes first (2 MB at a time with transparent huge pages), which was ~20 %
//! of a compare report's profile. Kept for [`PURGE_DELAY_MS`], a burst of reports or a
//! night's uploads reuse it; an idle coordinator still gives it back.
//! `MIMALLOC_PURGE_DELAY` in the environment (mimalloc's own variable) still wins.

/// How long freed memory is kept, in milliseconds (mimalloc's default is 1,000).
pub const PURGE_DELAY_MS: i64 = 10_000;

/// mimalloc's `mi_option_purge_delay` (its option enum's index, stable since mimalloc 2.1;
/// the test below pins it to the option's default in the linked mimalloc).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the purge delay to [`PURGE_DELAY_MS`] unless `MIMALLOC_PURGE_DELAY` is set. Called
/// first in `main`, before any other thread exists (mimalloc's option setter is not
/// thread-safe).
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: a plain store into mimalloc's option table (an index it defines, a value in its
    // range), made while the process has one thread.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as _);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_the_purge_delay() {
        // mimalloc's own default for `purge_delay` is 1,000 ms, for no option next to it:
        // a wrong index reads another option's value.
        #[allow(unsafe_code)]
        // SAFETY: reading an option; the test harness has not set any.
        let (delay, neighbours) = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                [
                    libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY - 1),
                    libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY + 1),
                ],
            )
        };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(delay, 1_000);
        }
        assert!(neighbours.iter().all(|&v| v != 1_000), "{neighbours:?}");
    }
}
