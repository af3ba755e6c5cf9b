//! CPU work spread over the cores, for the reports of many boards (decoding stored
//! documents and summaries, testing thousands of drift series). Plain threads, no runtime:
//! callers on the async side run it off the async threads (`spawn_blocking`).

/// The fewest items [`par_map`] gives a thread: fewer are done on the caller's thread (a
/// drift check after an upload unpacks ~120 summaries).
pub const MIN_PER_THREAD: usize = 256;

/// `f` of each item, in order, spread over the cores (up to 8).
pub fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        .clamp(1, 8);
    let per = items.len().div_ceil(threads).max(MIN_PER_THREAD);
    if items.len() <= per {
        return items.into_iter().map(f).collect();
    }
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        parts.push(items.by_ref().take(per).collect());
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<U>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_mapped_once_in_order() {
        for n in [0, 1, MIN_PER_THREAD, MIN_PER_THREAD * 3 + 7] {
            let items: Vec<usize> = (0..n).collect();
            let out = par_map(items, |i| i * 2);
            assert_eq!(out, (0..n).map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
