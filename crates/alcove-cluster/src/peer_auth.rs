//! How workers prove to each other that a request comes from the cluster: the sender signs the
//! request's method, path and query and the time with the cluster secret (HMAC-SHA256) in one
//! header; the receiver checks the signature and that the time is recent. The secret itself never
//! travels, and a captured header is useless a minute later or on another request.
//!
//! It knows nothing of S3; it signs and checks a request line.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header a forwarded request carries: `<unix seconds>:<hex signature>`.
pub const PEER_HEADER: &str = "x-alcove-peer";
/// How far the sender's clock may be from the receiver's.
const MAX_SKEW_SECS: i64 = 60;

/// The cluster secret, shared by every worker.
#[derive(Clone)]
pub struct ClusterSecret(Vec<u8>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

/// Why a peer request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAuthError {
    #[error("the request carries no {PEER_HEADER} header")]
    Missing,
    #[error("the {PEER_HEADER} header is malformed")]
    Malformed,
    #[error("the {PEER_HEADER} header is {0} s away from this worker's clock")]
    Stale(i64),
    #[error("the {PEER_HEADER} signature is wrong (another cluster secret?)")]
    BadSignature,
}

impl ClusterSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    fn mac(&self, now: i64, method: &str, path_and_query: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(format!("{now}\n{method}\n{path_and_query}").as_bytes());
        mac
    }

    /// The header value that signs `method path_and_query` at `now` (unix seconds).
    pub fn sign(&self, now: i64, method: &str, path_and_query: &str) -> String {
        let signature = self.mac(now, method, path_and_query).finalize().into_bytes();
        format!("{now}:{}", hex::encode(signature))
    }

    /// Checks a received header value against the request it came with.
    pub fn verify(
        &self,
        header: Option<&str>,
        now: i64,
        method: &str,
        path_and_query: &str,
    ) -> Result<(), PeerAuthError> {
        let header = header.ok_or(PeerAuthError::Missing)?;
        let (when, signature) = header.split_once(':').ok_or(PeerAuthError::Malformed)?;
        let when: i64 = when.parse().map_err(|_| PeerAuthError::Malformed)?;
        let signature = hex::decode(signature).map_err(|_| PeerAuthError::Malformed)?;
        // Saturating: a header time near i64::MIN or MAX is merely stale, not an overflow.
        let skew = now.saturating_sub(when);
        if skew.saturating_abs() > MAX_SKEW_SECS {
            return Err(PeerAuthError::Stale(skew));
        }
        self.mac(when, method, path_and_query).verify_slice(&signature).map_err(|_| PeerAuthError::BadSignature)
    }
}

impl ClusterSecret {
    /// Checks the peer header of a received request, now.
    pub fn verify_request<B>(&self, req: &http::Request<B>) -> Result<(), PeerAuthError> {
        let header = req.headers().get(PEER_HEADER).map(|v| v.to_str().unwrap_or_default());
        let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
        self.verify(header, unix_now(), req.method().as_str(), path_and_query)
    }
}

/// The current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_accepted_once_and_nowhere_else() {
        let secret = ClusterSecret::new("s3cret");
        let header = secret.sign(1000, "GET", "/b/k?x=1");
        assert_eq!(secret.verify(Some(&header), 1010, "GET", "/b/k?x=1"), Ok(()));
        assert_eq!(secret.verify(Some(&header), 1010, "PUT", "/b/k?x=1"), Err(PeerAuthError::BadSignature));
        assert_eq!(secret.verify(Some(&header), 1010, "GET", "/b/other"), Err(PeerAuthError::BadSignature));
        assert_eq!(secret.verify(Some(&header), 1100, "GET", "/b/k?x=1"), Err(PeerAuthError::Stale(100)));
        let other = ClusterSecret::new("another");
        assert_eq!(other.verify(Some(&header), 1000, "GET", "/b/k?x=1"), Err(PeerAuthError::BadSignature));
        assert_eq!(secret.verify(None, 1000, "GET", "/"), Err(PeerAuthError::Missing));
        assert_eq!(secret.verify(Some("nonsense"), 1000, "GET", "/"), Err(PeerAuthError::Malformed));
        assert!(!format!("{secret:?}").contains("s3cret"));
    }

    /// Found by `fuzz::arbitrary_headers`: a header time far from the clock overflowed the skew
    /// arithmetic (a panic in builds with overflow checks).
    #[test]
    fn extreme_header_times_are_stale() {
        let secret = ClusterSecret::new("s3cret");
        for header in [format!("{}:00", i64::MIN), format!("{}:00", i64::MAX)] {
            assert!(matches!(secret.verify(Some(&header), 1000, "GET", "/"), Err(PeerAuthError::Stale(_))), "{header}");
        }
        let header = format!("{}:00", i64::MAX);
        assert!(matches!(secret.verify(Some(&header), i64::MIN, "GET", "/"), Err(PeerAuthError::Stale(_))));
    }
}
