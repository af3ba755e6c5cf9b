//! A server-certificate check with a clock floor, for boards without a real-time clock.
//!
//! A board that boots without a real-time clock reads 1970 until NTP sets its clock, and a
//! certificate check at 1970 refuses every certificate (not yet valid). [`ClockFloor`] wraps
//! rustls' WebPKI verifier and checks the certificate as of `max(now, floor)`, where the floor
//! is a time the caller knows has passed (the agent's build time, as systemd-timesyncd does).
//! Everything else (chain, names, signatures, expiry at a correct clock) is the WebPKI
//! verifier's, unchanged. A clock below the floor is reported once through the caller's
//! callback.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What is called (once per verifier) when the clock is below the floor: `(now, floor)` in
/// seconds since the Unix epoch.
pub type BelowFloor = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The WebPKI server-certificate verifier of `roots`, checking as of `max(now, floor)`.
pub struct ClockFloor {
    inner: Arc<WebPkiServerVerifier>,
    floor: UnixTime,
    warned: AtomicBool,
    below: BelowFloor,
}

impl fmt::Debug for ClockFloor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClockFloor")
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

impl ClockFloor {
    /// The verifier for the trust anchors `roots` with the floor `floor_s` (seconds since the
    /// Unix epoch); `below` is told once when the clock reads less than the floor.
    pub fn new(
        roots: RootCertStore,
        floor_s: u64,
        below: BelowFloor,
    ) -> Result<ClockFloor, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ClockFloor {
            inner,
            floor: UnixTime::since_unix_epoch(std::time::Duration::from_secs(floor_s)),
            warned: AtomicBool::new(false),
            below,
        })
    }

    /// The time certificates are checked at: `now`, or the floor when `now` is below it.
    pub fn effective(&self, now: UnixTime) -> UnixTime {
        if now.as_secs() >= self.floor.as_secs() {
            return now;
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            (self.below)(now.as_secs(), self.floor.as_secs());
        }
        self.floor
    }
}

impl ServerCertVerifier for ClockFloor {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            self.effective(now),
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    const DAY: u64 = 86_400;

    /// A CA and a server certificate for `localhost` valid from `from` for a year (Unix s).
    fn chain(from: u64) -> (RootCertStore, CertificateDer<'static>) {
        let at = |s: u64| rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(s);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.not_before = at(from);
        ca.not_after = at(from + 365 * DAY);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.not_before = at(from);
        leaf.not_after = at(from + 365 * DAY);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        (roots, leaf.der().clone())
    }

    fn at(s: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(s))
    }

    #[test]
    fn a_clock_below_the_floor_checks_as_of_the_floor_and_warns_once() {
        let issued = 1_700_000_000;
        let (roots, leaf) = chain(issued);
        let warned = Arc::new(AtomicU32::new(0));
        let seen = warned.clone();
        let verifier = ClockFloor::new(
            roots,
            issued + DAY,
            Arc::new(move |now, floor| {
                assert!(now < floor);
                seen.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let check = |now| verifier.verify_server_cert(&leaf, &[], &name, &[], now);
        // A board at 1970: checked as of the floor, accepted; told once.
        assert!(check(at(0)).is_ok());
        assert!(check(at(3600)).is_ok());
        assert_eq!(warned.load(Ordering::Relaxed), 1);
        // A correct clock is used as it is: valid now, expired a year on (the floor does not
        // hide expiry), and the wrong name is still refused.
        assert!(check(at(issued + 2 * DAY)).is_ok());
        let e = check(at(issued + 400 * DAY)).unwrap_err().to_string();
        assert!(e.contains("expired"), "{e}");
        let other = ServerName::try_from("elsewhere").unwrap();
        assert!(verifier
            .verify_server_cert(&leaf, &[], &other, &[], at(issued + 2 * DAY))
            .is_err());
        assert_eq!(warned.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn without_the_floor_a_board_at_1970_is_refused() {
        let (roots, leaf) = chain(1_700_000_000);
        let verifier = ClockFloor::new(roots, 0, Arc::new(|_, _| panic!("not below"))).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let e = verifier
            .verify_server_cert(&leaf, &[], &name, &[], at(0))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not valid yet") || e.contains("NotValidYet"),
            "{e}"
        );
        assert_eq!(verifier.effective(at(5)).as_secs(), 5);
    }
}
