//! Cooperative cancellation of a run.
//!
//! A [`CancelToken`] is shared between whoever may cancel a run (the daemon's worker, when the
//! coordinator withdraws the run or its time limit passes) and the runner, which checks it
//! between figures, between warm-up calls and between timed trials — never inside a timed
//! region, so cancellation cannot change a timing. A call already under way finishes first;
//! a cancelled run then stops at once and yields [`Cancelled`] instead of records. Plain std
//! (an atomic flag and the first reason given), so `bench` stays free of any async runtime.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// A cancellation flag with a reason; clones share it. A fresh token is never cancelled
/// until someone calls [`CancelToken::cancel`].
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    reason: OnceLock<String>,
}

impl CancelToken {
    /// A token nobody has cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels the run, saying why; returns false if it was already cancelled (the first
    /// reason is kept).
    pub fn cancel(&self, reason: impl Into<String>) -> bool {
        let first = self.inner.reason.set(reason.into()).is_ok();
        self.inner.cancelled.store(true, Ordering::Release);
        first
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// `Err` with the reason once cancelled: the runner's check point.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled {
                reason: self.inner.reason.get().cloned().unwrap_or_default(),
            })
        } else {
            Ok(())
        }
    }
}

/// A run stopped because its token was cancelled; shown as `cancelled: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// Why, as given to [`CancelToken::cancel`].
    pub reason: String,
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cancelled: {}", self.reason)
    }
}

impl std::error::Error for Cancelled {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag_and_the_first_reason_wins() {
        let token = CancelToken::new();
        let other = token.clone();
        assert!(!token.is_cancelled());
        assert_eq!(token.check(), Ok(()));
        assert!(other.cancel("the coordinator withdrew the run"));
        assert!(!other.cancel("timeout of 3 s passed"));
        assert!(token.is_cancelled());
        let c = token.check().unwrap_err();
        assert_eq!(c.reason, "the coordinator withdrew the run");
        assert_eq!(c.to_string(), "cancelled: the coordinator withdrew the run");
    }
}
