//! When the drift check after an upload runs ([`DriftChecks`]). The check is analysis, the
//! upload is the durable part an agent waits for: a burst of uploads (a fleet's night ends
//! at about the same time on every board) is stored first, and its checks run once the burst
//! is over, one at a time, each at most [`MAX_DEFER_MS`] after its upload. Their alerts come
//! seconds later; the uploads keep both cores while they arrive.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::model::Millis;

/// How many boards' drift is checked at once after their uploads. A check reads the board's
/// kept history and the one new run (`fleet/drift/history.rs`), and tests its series; one
/// at a time, the checks of a burst trail it and the uploads go first.
pub const DRIFT_CHECKS: usize = 1;

/// The uploads are over when none came for this long.
pub const QUIET_MS: Millis = 250;

/// A check waits for a quiet moment at most this long after its upload: in a stream of
/// uploads that never pauses, checks still run (then beside the uploads).
pub const MAX_DEFER_MS: Millis = 30_000;

/// Whether a check queued at `queued_at` may run at `now`, the latest upload having come at
/// `last_upload`: the uploads are quiet, or it has waited long enough.
pub fn ready(now: Millis, last_upload: Millis, queued_at: Millis) -> bool {
    now.saturating_sub(last_upload) >= QUIET_MS || now.saturating_sub(queued_at) >= MAX_DEFER_MS
}

/// The drift checks' turns: [`DRIFT_CHECKS`] at once, each when [`ready`].
#[derive(Debug)]
pub struct DriftChecks {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    last_upload: AtomicI64,
}

impl Default for DriftChecks {
    fn default() -> Self {
        DriftChecks {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(DRIFT_CHECKS)),
            last_upload: AtomicI64::new(0),
        }
    }
}

impl DriftChecks {
    /// An upload came at `now`.
    pub fn uploaded(&self, now: Millis) {
        self.last_upload.fetch_max(now, Ordering::Relaxed);
    }

    /// Waits for the turn of a check queued at `queued_at` (`clock` reads the time): a slot,
    /// then [`ready`]. The slot is the check's until the permit is dropped; `None` only if
    /// the slots were closed (they never are).
    pub async fn turn(
        &self,
        queued_at: Millis,
        clock: impl Fn() -> Millis,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slot = std::sync::Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .ok()?;
        loop {
            let now = clock();
            let last = self.last_upload.load(Ordering::Relaxed);
            if ready(now, last, queued_at) {
                return Some(slot);
            }
            // Until the uploads would be quiet, or the check's time is up.
            let quiet_at = last.saturating_add(QUIET_MS);
            let due_at = queued_at.saturating_add(MAX_DEFER_MS);
            let wait = quiet_at.min(due_at).saturating_sub(now).clamp(1, QUIET_MS);
            tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(1))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_waits_for_a_quiet_moment_but_not_longer_than_its_limit() {
        let queued = 1_000_000;
        // Uploads still coming: it waits.
        assert!(!ready(queued + 100, queued + 90, queued));
        // None for QUIET_MS: it runs.
        assert!(ready(queued + 400, queued + 150, queued));
        assert!(ready(queued + QUIET_MS, queued, queued));
        // A stream that never pauses: it runs once it has waited MAX_DEFER_MS.
        let stream = queued + MAX_DEFER_MS - 10;
        assert!(!ready(stream, stream - 5, queued));
        assert!(ready(
            queued + MAX_DEFER_MS,
            queued + MAX_DEFER_MS - 5,
            queued
        ));
        // A clock set back runs nothing early and panics at nothing.
        assert!(!ready(0, 10, queued));
    }

    #[tokio::test]
    async fn the_turn_comes_when_the_uploads_pause_one_at_a_time() {
        let checks = DriftChecks::default();
        let start = std::time::Instant::now();
        let clock = move || i64::try_from(start.elapsed().as_millis()).unwrap() + 1_000_000;
        checks.uploaded(clock());
        let slot = checks.turn(clock(), clock).await.unwrap();
        // Not before the uploads were quiet for QUIET_MS (a lower bound: sleeps only last
        // longer).
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        // One at a time: a second cannot have its turn while the first holds the slot.
        let second =
            tokio::time::timeout(Duration::from_millis(300), checks.turn(clock(), clock)).await;
        assert!(second.is_err(), "the slot is taken");
        drop(slot);
        assert!(checks.turn(clock(), clock).await.is_some());
    }
}
