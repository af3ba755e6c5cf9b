//! Certificate renewal: an enrolled agent (its key and certificate in its state dir,
//! [`super::enroll`]) renews its certificate when two thirds of its lifetime have passed,
//! without restarting.
//!
//! It makes a new key on the board, sends a signing request for it authenticated by its
//! current certificate (`AgentService.Renew`), and installs the new pair crash-safely: the new
//! key and certificate are first written atomically as [`RENEW_KEY`] and [`RENEW_CERT`] (the
//! certificate last: once it is there the renewal is committed), then renamed over
//! [`super::enroll::KEY_FILE`] and [`super::enroll::CERT_FILE`]; [`recover`] finishes a
//! renewal a crash interrupted, or drops one that was not committed. Then the calls are
//! redialled with the new identity ([`Rpc::redial`]) and the link reconnects
//! ([`super::link::Event::Renewed`]). A failed renewal is logged and retried with the link's
//! capped backoff; the current certificate keeps working until it expires.
//!
//! When to renew is [`renewal_delay`], a pure function of the certificate's validity and the
//! board's clock, bounded so that a wrong clock (a board without a real-time clock at 1970, or
//! one far ahead) neither postpones a renewal beyond two thirds of the lifetime nor renews in
//! a loop.

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use super::enroll::{self, CERT_FILE, KEY_FILE};
use super::link;
use super::options::RunOptions;
use super::rpc::Rpc;
use crate::atomic::{self, Mode};
use crate::AgentError;

/// The new key of a renewal under way.
pub const RENEW_KEY: &str = "renew.key";
/// The new certificate of a committed renewal, until it is installed.
pub const RENEW_CERT: &str = "renew.pem";

/// A certificate's validity, Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The start of its validity.
    pub not_before: i64,
    /// Its expiry.
    pub not_after: i64,
}

impl Validity {
    /// The validity of the first certificate of `pem`.
    pub fn of_pem(pem: &[u8]) -> Result<Validity, String> {
        let c = fleetcal_proto::role::of_pem(pem)?;
        Ok(Validity {
            not_before: c.not_before.saturating_mul(1000),
            not_after: c.not_after.saturating_mul(1000),
        })
    }

    /// Its lifetime, milliseconds (0 for a certificate that ends before it starts).
    pub fn lifetime(&self) -> i64 {
        self.not_after.saturating_sub(self.not_before).max(0)
    }
}

/// How long to wait, at `now` (Unix milliseconds, the board's clock), before renewing a
/// certificate of validity `v`: until two thirds of its lifetime have passed, at once when
/// they have. Never more than two thirds of the lifetime (a clock behind, at 1970, does not
/// postpone the renewal past the certificate's expiry) and, `just_renewed`, never less than
/// a third of it (a clock far ahead sees a fresh certificate as almost expired: it renews
/// every third of the lifetime instead of in a loop).
pub fn renewal_delay(v: Validity, now: i64, just_renewed: bool) -> Duration {
    let lifetime = v.lifetime();
    let two_thirds = lifetime.saturating_mul(2) / 3;
    let floor = if just_renewed { lifetime / 3 } else { 0 };
    let due = v.not_before.saturating_add(two_thirds);
    let wait = due
        .saturating_sub(now)
        .max(floor)
        .min(two_thirds.max(floor));
    Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

/// Finishes a renewal a crash interrupted in `state_dir`: a committed one ([`RENEW_CERT`]
/// there) is installed, one not committed ([`RENEW_KEY`] alone) is dropped, so the key and
/// the certificate always belong together. Nothing to do is the usual case.
pub fn recover(state_dir: &Path) -> Result<(), AgentError> {
    let (key, cert) = (state_dir.join(RENEW_KEY), state_dir.join(RENEW_CERT));
    if cert.is_file() {
        install(state_dir)?;
        tracing::info!("finished a certificate renewal interrupted by a restart");
    } else if key.is_file() {
        std::fs::remove_file(&key).map_err(|source| AgentError::Io { path: key, source })?;
    }
    Ok(())
}

/// Renames the renewal's key (when not yet moved) and certificate over the enrolled ones.
fn install(state_dir: &Path) -> Result<(), AgentError> {
    let rename = |from: &str, to: &str| {
        let (from, to) = (state_dir.join(from), state_dir.join(to));
        std::fs::rename(&from, &to).map_err(|source| AgentError::Io { path: to, source })
    };
    if state_dir.join(RENEW_KEY).is_file() {
        rename(RENEW_KEY, KEY_FILE)?;
    }
    rename(RENEW_CERT, CERT_FILE)?;
    atomic::sync_dir(state_dir);
    Ok(())
}

/// The board's clock, Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Renews the enrolled certificate of `opts.state_dir` for as long as the daemon runs: waits
/// for [`renewal_delay`], renews (retrying with backoff), redials `rpc`, and counts each
/// renewal on `renewed` so that the link reconnects.
pub struct Renewer {
    /// The daemon's options (state dir, TLS files, backoff).
    pub opts: RunOptions,
    /// The calls to the coordinator.
    pub rpc: Rpc,
    /// Bumped after each renewal.
    pub renewed: watch::Sender<u64>,
}

impl Renewer {
    /// Runs until the daemon stops (the task is aborted) or the certificate cannot be read.
    pub async fn run(self) {
        let path = self.opts.state_dir.join(CERT_FILE);
        let mut just_renewed = false;
        loop {
            let validity = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|pem| Validity::of_pem(&pem))
            {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(
                        "certificate renewal stopped: {}: {e}; the agent runs on until its \
                         certificate expires",
                        path.display()
                    );
                    return;
                }
            };
            let now = now_ms();
            let wait = renewal_delay(validity, now, just_renewed);
            if now >= validity.not_after || now < validity.not_before {
                tracing::warn!(
                    "this board's clock is outside its certificate's validity (check the \
                     clock); renewal is due in {wait:.0?}"
                );
            } else {
                tracing::info!("certificate renewal due in {wait:.0?}");
            }
            tokio::time::sleep(wait).await;
            let mut attempt = 0u32;
            loop {
                attempt = attempt.saturating_add(1);
                match self.renew_once().await {
                    Ok(not_after) => {
                        tracing::info!(not_after = %not_after, "certificate renewed");
                        break;
                    }
                    Err(e) => {
                        let retry = self.opts.backoff.delay(attempt, link::jitter_sample());
                        tracing::warn!(
                            attempt,
                            "certificate renewal failed: {e}; retrying in {retry:.1?} (the \
                             current certificate is used until it expires)"
                        );
                        tokio::time::sleep(retry).await;
                    }
                }
            }
            self.renewed.send_modify(|n| *n = n.wrapping_add(1));
            just_renewed = true;
        }
    }

    /// One renewal: a new key, its certificate from the coordinator, both installed, the calls
    /// redialled. Returns the new certificate's expiry as the coordinator gave it.
    async fn renew_once(&self) -> Result<String, AgentError> {
        let dir = &self.opts.state_dir;
        let agent_id = self.rpc.agent_id();
        let fail = |e: rcgen::Error| AgentError::Link(format!("certificate renewal: {e}"));
        let key = rcgen::KeyPair::generate().map_err(fail)?;
        let csr = enroll::signing_request(&key, agent_id).map_err(fail)?;
        let answer = self
            .rpc
            .renew(csr)
            .await
            .map_err(|s| AgentError::Link(format!("renew: {}", self.rpc.describe(&s))))?;
        let pem = answer.certificate_pem;
        let roles = fleetcal_proto::role::of_pem(pem.as_bytes())
            .map_err(|e| AgentError::Link(format!("the renewed certificate: {e}")))?;
        let own = fleetcal_proto::role::Role::Agent(agent_id.to_string());
        if roles.single() != Some(&own) {
            return Err(AgentError::Link(format!(
                "the renewed certificate does not name this agent only ({})",
                roles.subject
            )));
        }
        atomic::write_private(
            &dir.join(RENEW_KEY),
            key.serialize_pem().as_bytes(),
            Mode::Replace,
        )?;
        // The commit point: from here a restart installs the new pair (`recover`).
        atomic::write(&dir.join(RENEW_CERT), pem.as_bytes(), Mode::Replace)?;
        install(dir)?;
        self.rpc.redial(&self.opts)?;
        Ok(answer.not_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    /// A 30-day certificate issued at day 100 (milliseconds).
    const V: Validity = Validity {
        not_before: 100 * 86_400 * S,
        not_after: 130 * 86_400 * S,
    };

    fn days(d: Duration) -> f64 {
        d.as_secs_f64() / 86_400.0
    }

    #[test]
    fn renewal_is_due_two_thirds_into_the_lifetime() {
        let day = 86_400 * S;
        // On a simulated clock: just issued, 20 days to wait; counting down as days pass.
        assert_eq!(days(renewal_delay(V, V.not_before, false)), 20.0);
        assert_eq!(days(renewal_delay(V, V.not_before + 5 * day, false)), 15.0);
        assert_eq!(
            renewal_delay(V, V.not_before + 20 * day - 1, false),
            Duration::from_millis(1)
        );
        // Due, and overdue (an agent that was off): at once.
        assert_eq!(
            renewal_delay(V, V.not_before + 20 * day, false),
            Duration::ZERO
        );
        assert_eq!(renewal_delay(V, V.not_after + day, false), Duration::ZERO);
        // A short test lifetime: 33 s from not_before, renewed 22 s in.
        let short = Validity {
            not_before: 0,
            not_after: 33 * S,
        };
        assert_eq!(renewal_delay(short, 3 * S, false), Duration::from_secs(19));
    }

    #[test]
    fn a_wrong_clock_neither_postpones_nor_loops() {
        // A board at 1970: no later than two thirds of the lifetime from now.
        assert_eq!(days(renewal_delay(V, 0, false)), 20.0);
        // A board 25 days ahead sees its fresh certificate as overdue: after a renewal it
        // still waits a third of the lifetime.
        let ahead = V.not_before + 25 * 86_400 * S;
        assert_eq!(renewal_delay(V, ahead, false), Duration::ZERO);
        assert_eq!(days(renewal_delay(V, ahead, true)), 10.0);
        // Just renewed on a right clock: the floor changes nothing.
        assert_eq!(days(renewal_delay(V, V.not_before, true)), 20.0);
        // A certificate that ends before it starts: renew at once.
        let bad = Validity {
            not_before: 10,
            not_after: 5,
        };
        assert_eq!(renewal_delay(bad, 0, true), Duration::ZERO);
        assert_eq!(
            renewal_delay(V, i64::MIN, false),
            renewal_delay(V, 0, false)
        );
    }

    #[tokio::test]
    async fn a_renewal_installs_a_new_pair_and_a_failed_one_keeps_the_old() {
        use crate::daemon::fake_coordinator::{free_port, FakeCoordinator};
        let fake = FakeCoordinator::start(free_port());
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(KEY_FILE), "old key").unwrap();
        std::fs::write(d.join(CERT_FILE), "old cert").unwrap();
        let mut opts = RunOptions::new(fake.url(), d);
        opts.rpc_timeout = Duration::from_secs(20);
        let id = "6f1c2a4e-0b7d-4c1e-9a53-2f0e8d1b7c90";
        let (renewed, _rx) = watch::channel(0);
        let renewer = Renewer {
            rpc: Rpc::new(&opts, id).unwrap(),
            opts,
            renewed,
        };
        let names = || {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };

        // Refused: logged by the caller and retried; the old pair stays, nothing else.
        fake.refuse_renewals(true);
        let e = renewer.renew_once().await.unwrap_err().to_string();
        assert!(e.contains("renewal refused by the test"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.join(KEY_FILE)).unwrap(),
            "old key"
        );
        assert_eq!(names(), [KEY_FILE, CERT_FILE]);

        // Signed: a new key and its certificate naming the agent replace the old pair.
        fake.refuse_renewals(false);
        renewer.renew_once().await.unwrap();
        assert_eq!(names(), [KEY_FILE, CERT_FILE]);
        let cert = std::fs::read(d.join(CERT_FILE)).unwrap();
        let roles = fleetcal_proto::role::of_pem(&cert).unwrap();
        let own = fleetcal_proto::role::Role::Agent(id.into());
        assert_eq!(roles.single(), Some(&own));
        let key = std::fs::read_to_string(d.join(KEY_FILE)).unwrap();
        assert!(rcgen::KeyPair::from_pem(&key).is_ok(), "{key}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The calls go on after the redial.
        renewer.rpc.upload("r", "{}".into()).await.unwrap();
        assert_eq!(fake.uploads(), ["r"]);
        fake.stop().await;
    }

    #[test]
    fn recovery_installs_a_committed_renewal_and_drops_an_uncommitted_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let put = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
        let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
        put(KEY_FILE, "old key");
        put(CERT_FILE, "old cert");
        recover(d).unwrap();
        assert_eq!(
            (read(KEY_FILE), read(CERT_FILE)),
            ("old key".into(), "old cert".into())
        );
        // Not committed (no certificate yet): the old pair stands.
        put(RENEW_KEY, "new key");
        recover(d).unwrap();
        assert!(!d.join(RENEW_KEY).exists());
        assert_eq!(read(KEY_FILE), "old key");
        // Committed: both installed.
        put(RENEW_KEY, "new key");
        put(RENEW_CERT, "new cert");
        recover(d).unwrap();
        assert_eq!(
            (read(KEY_FILE), read(CERT_FILE)),
            ("new key".into(), "new cert".into())
        );
        // Committed, the key already moved when the crash came: the certificate follows.
        put(RENEW_CERT, "newer cert");
        recover(d).unwrap();
        assert_eq!(
            (read(KEY_FILE), read(CERT_FILE)),
            ("new key".into(), "newer cert".into())
        );
        assert!(!d.join(RENEW_CERT).exists());
    }
}
