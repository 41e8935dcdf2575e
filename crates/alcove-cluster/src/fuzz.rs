//! Fuzz target for the one parser of this crate that reads bytes from the network before it
//! trusts them: the peer header a forwarded request carries ([`crate::peer_auth`]). Property
//! tests (proptest) on the stable toolchain; see `alcove-s3`'s `fuzz` module for how they run.

use proptest::prelude::*;

use crate::peer_auth::{ClusterSecret, PeerAuthError};

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// Clocks and header times, the extremes included.
fn time() -> impl Strategy<Value = i64> {
    prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), 1_700_000_000i64..1_900_000_000, any::<i64>()]
}

proptest! {
    #![proptest_config(config(16384))]

    /// A header signed for a request verifies for that request within a minute, and for no
    /// other method, path or secret.
    #[test]
    fn signatures_verify_for_their_request_only(
        secret in "[ -~]{8,40}",
        now in 1_700_000_000i64..1_900_000_000,
        skew in -60i64..=60,
        method in "(GET|PUT|POST|DELETE|HEAD)",
        path in "/[ -~]{0,60}",
        other_path in "/[ -~]{0,60}",
    ) {
        let secret = ClusterSecret::new(secret);
        let header = secret.sign(now, &method, &path);
        prop_assert_eq!(secret.verify(Some(&header), now + skew, &method, &path), Ok(()));
        if other_path != path {
            prop_assert_eq!(secret.verify(Some(&header), now, &method, &other_path), Err(PeerAuthError::BadSignature));
        }
        prop_assert_eq!(ClusterSecret::new("another secret").verify(Some(&header), now, &method, &path), Err(PeerAuthError::BadSignature));
    }

    /// Any header text at any clock: refused with a reason (or, by chance, verified), never a panic.
    #[test]
    fn arbitrary_headers(
        header in prop_oneof![
            any::<String>(),
            (time(), "[0-9a-fA-F]{0,70}").prop_map(|(t, sig)| format!("{t}:{sig}")),
            "[-+0-9:]{0,30}",
        ],
        now in time(),
    ) {
        let secret = ClusterSecret::new("cluster secret");
        match secret.verify(Some(&header), now, "GET", "/b/k") {
            Ok(()) | Err(PeerAuthError::Malformed) | Err(PeerAuthError::Stale(_)) | Err(PeerAuthError::BadSignature) => {}
            Err(PeerAuthError::Missing) => prop_assert!(false, "a header was given"),
        }
    }
}
