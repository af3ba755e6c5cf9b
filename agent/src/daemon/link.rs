//! The link to the coordinator as an explicit state machine.
//!
//! ```text
//! Disconnected --Start--> Connecting --Registered--> Registered --Subscribed--> Streaming
//!                             ^                          |                          |
//!                             |                        Failed                     Failed
//!                       BackoffElapsed                   v                          v
//!                             +------------------ Backoff{attempt} <---------------+
//! Streaming --Renewed--> Connecting (a renewed certificate: connect again, presenting it)
//! any state --Shutdown--> Stopped
//! ```
//!
//! [`next`] is pure: the driver (`service.rs`) performs the returned [`Action`] and feeds what
//! happened back as an [`Event`]. The failure count survives Connecting and Registered and is
//! reset only once a stream is open, so a coordinator that accepts and drops calls keeps
//! backing off.
//!
//! Several coordinators (one fleet on one database): the link starts at the one
//! [`first_target`] picks from the agent id (a stable hash, so a fleet spreads evenly over the
//! coordinators and an agent returns to the same one after a restart), and each
//! [`Event::Failed`] moves it to [`next_target`] (the next in the given order, wrapping
//! round) before the backoff delay: an agent whose coordinator dies is on the next one after
//! one short delay, and one that finds none up tries each in turn with the same capped
//! backoff.

use std::time::Duration;

/// Where the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started.
    Disconnected,
    /// Registering; `failures` consecutive failures so far.
    Connecting {
        /// Consecutive failed attempts before this one.
        failures: u32,
    },
    /// Registered, opening the directive stream.
    Registered {
        /// Consecutive failed attempts before this one.
        failures: u32,
    },
    /// The directive stream is open.
    Streaming,
    /// Waiting before the next attempt.
    Backoff {
        /// Consecutive failed attempts (1 after the first failure).
        attempt: u32,
    },
    /// Shut down; nothing more happens.
    Stopped,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// The daemon started.
    Start,
    /// Register succeeded.
    Registered,
    /// The directive stream opened.
    Subscribed,
    /// A call failed or the stream ended; `jitter` is a uniform sample in `[0, 1)`.
    Failed {
        /// The random sample that spreads the backoff delay.
        jitter: f64,
    },
    /// The backoff delay is over.
    BackoffElapsed,
    /// The agent's certificate was renewed: the open stream still runs on a connection made
    /// with the old one, so the link connects again with the new (not a failure: no backoff).
    /// In any other state the next attempt dials with the new certificate anyway.
    Renewed,
    /// SIGTERM or SIGINT.
    Shutdown,
}

/// What the driver must do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Call Register.
    Register,
    /// Call Subscribe.
    Subscribe,
    /// Drain the spool, then serve directives until the stream ends.
    Serve,
    /// Sleep this long, then report [`Event::BackoffElapsed`].
    Wait(Duration),
    /// Leave the loop.
    Stop,
    /// The event does not apply in this state; keep doing what was being done.
    Ignore,
}

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// The delay after the first failure.
    pub initial: Duration,
    /// No delay exceeds this.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl BackoffPolicy {
    /// The delay before retry number `attempt` (1-based): `initial × 2^(attempt-1)` capped at
    /// `max`, then "equal jitter": half fixed, half scaled by `jitter` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << exp).min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base / 2 + base.mul_f64(0.5 * jitter)
    }
}

/// The transition function: the new state and what to do.
pub fn next(state: State, event: Event, policy: &BackoffPolicy) -> (State, Action) {
    use Event as E;
    use State as S;
    match (state, event) {
        (S::Stopped, _) => (S::Stopped, Action::Stop),
        (_, E::Shutdown) => (S::Stopped, Action::Stop),
        (S::Disconnected, E::Start) => (S::Connecting { failures: 0 }, Action::Register),
        (S::Connecting { failures }, E::Registered) => {
            (S::Registered { failures }, Action::Subscribe)
        }
        (S::Registered { .. }, E::Subscribed) => (S::Streaming, Action::Serve),
        (S::Connecting { failures } | S::Registered { failures }, E::Failed { jitter }) => {
            let attempt = failures.saturating_add(1);
            (
                S::Backoff { attempt },
                Action::Wait(policy.delay(attempt, jitter)),
            )
        }
        (S::Streaming, E::Renewed) => (S::Connecting { failures: 0 }, Action::Register),
        (S::Streaming, E::Failed { jitter }) => (
            S::Backoff { attempt: 1 },
            Action::Wait(policy.delay(1, jitter)),
        ),
        (S::Backoff { attempt }, E::BackoffElapsed) => {
            (S::Connecting { failures: attempt }, Action::Register)
        }
        (state, _) => (state, Action::Ignore),
    }
}

/// The coordinator (an index into `count` URLs) an agent starts at: FNV-1a of its id modulo
/// `count` (0 when `count` is 0 or 1).
pub fn first_target(agent_id: &str, count: usize) -> usize {
    let hash = agent_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    match u64::try_from(count) {
        Ok(n) if n > 1 => usize::try_from(hash % n).unwrap_or(0),
        _ => 0,
    }
}

/// The coordinator to try after a failure at `current`: the next of `count`, wrapping round.
pub fn next_target(current: usize, count: usize) -> usize {
    if count <= 1 {
        0
    } else {
        current.saturating_add(1) % count
    }
}

/// A uniform sample in `[0, 1)` for [`Event::Failed`], from the std hasher's random keys.
pub fn jitter_sample() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BackoffPolicy = BackoffPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };

    fn fail(s: State) -> (State, Action) {
        next(s, Event::Failed { jitter: 0.999_999 }, &P)
    }

    #[test]
    fn happy_path_reaches_streaming() {
        let (s, a) = next(State::Disconnected, Event::Start, &P);
        assert_eq!(
            (s, a),
            (State::Connecting { failures: 0 }, Action::Register)
        );
        let (s, a) = next(s, Event::Registered, &P);
        assert_eq!(
            (s, a),
            (State::Registered { failures: 0 }, Action::Subscribe)
        );
        let (s, a) = next(s, Event::Subscribed, &P);
        assert_eq!((s, a), (State::Streaming, Action::Serve));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let mut s = State::Connecting { failures: 0 };
        let mut delays = Vec::new();
        for _ in 0..8 {
            let (b, a) = fail(s);
            let Action::Wait(d) = a else { panic!("{a:?}") };
            delays.push(d);
            let (c, a) = next(b, Event::BackoffElapsed, &P);
            assert_eq!(a, Action::Register);
            s = c;
        }
        assert_eq!(s, State::Connecting { failures: 8 });
        for w in delays.windows(2) {
            assert!(w[1] >= w[0], "{delays:?}");
        }
        assert!(delays[0] < Duration::from_millis(101), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= P.max), "{delays:?}");
        assert!(delays[7] > Duration::from_millis(999), "{delays:?}");
    }

    #[test]
    fn jitter_keeps_delay_between_half_and_full() {
        assert_eq!(P.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(P.delay(40, 0.0), Duration::from_millis(500));
        assert_eq!(P.delay(40, 7.0), P.max);
        assert_eq!(P.delay(2, f64::NAN), Duration::from_millis(100));
        let j = jitter_sample();
        assert!((0.0..1.0).contains(&j), "{j}");
    }

    #[test]
    fn streaming_resets_the_failure_count() {
        let (s, _) = fail(State::Registered { failures: 6 });
        assert_eq!(s, State::Backoff { attempt: 7 });
        let (s, a) = fail(State::Streaming);
        assert_eq!(s, State::Backoff { attempt: 1 });
        assert!(matches!(a, Action::Wait(d) if d <= P.initial));
    }

    #[test]
    fn failures_while_registered_keep_counting() {
        let (s, _) = next(State::Connecting { failures: 3 }, Event::Registered, &P);
        let (s, _) = fail(s);
        assert_eq!(s, State::Backoff { attempt: 4 });
    }

    #[test]
    fn shutdown_stops_from_anywhere_and_stays_stopped() {
        for s in [
            State::Disconnected,
            State::Connecting { failures: 1 },
            State::Registered { failures: 0 },
            State::Streaming,
            State::Backoff { attempt: 3 },
        ] {
            assert_eq!(next(s, Event::Shutdown, &P), (State::Stopped, Action::Stop));
        }
        assert_eq!(
            next(State::Stopped, Event::Start, &P),
            (State::Stopped, Action::Stop)
        );
    }

    #[test]
    fn targets_start_by_id_and_rotate_through_all() {
        assert_eq!(first_target("anything", 1), 0);
        assert_eq!(first_target("anything", 0), 0);
        let a = first_target("9f3e0c1a-agent", 3);
        assert!(a < 3);
        assert_eq!(a, first_target("9f3e0c1a-agent", 3), "stable");
        // A fleet spreads over the coordinators.
        let mut seen = [0u32; 3];
        for i in 0..300 {
            seen[first_target(&format!("agent-{i}"), 3)] += 1;
        }
        assert!(seen.iter().all(|n| *n > 60), "{seen:?}");
        // From any start, failures visit every coordinator in turn.
        let mut t = a;
        let mut visited = vec![t];
        for _ in 0..2 {
            t = next_target(t, 3);
            visited.push(t);
        }
        visited.sort_unstable();
        assert_eq!(visited, [0, 1, 2]);
        assert_eq!(next_target(2, 3), 0);
        assert_eq!(next_target(5, 1), 0);
    }

    #[test]
    fn a_renewal_reconnects_a_stream_at_once_and_changes_nothing_else() {
        assert_eq!(
            next(State::Streaming, Event::Renewed, &P),
            (State::Connecting { failures: 0 }, Action::Register)
        );
        for s in [
            State::Disconnected,
            State::Connecting { failures: 2 },
            State::Registered { failures: 1 },
            State::Backoff { attempt: 3 },
        ] {
            assert_eq!(next(s, Event::Renewed, &P), (s, Action::Ignore));
        }
    }

    #[test]
    fn out_of_order_events_are_ignored() {
        assert_eq!(
            next(State::Streaming, Event::Registered, &P),
            (State::Streaming, Action::Ignore)
        );
        assert_eq!(
            next(State::Backoff { attempt: 2 }, Event::Subscribed, &P),
            (State::Backoff { attempt: 2 }, Action::Ignore)
        );
        assert_eq!(
            next(State::Disconnected, Event::BackoffElapsed, &P),
            (State::Disconnected, Action::Ignore)
        );
    }
}
