//! The `x-amz-checksum-*` algorithms, computed with s3s's hashers, and their verification.
//! Both body paths use this: the aws-chunked decoder (trailer checksums in simple mode) and the
//! gateway (header checksums, and trailers that s3s verified the signature of in sigv4 mode).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};

use crate::BodyError;

/// One of the checksum algorithms S3 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [Self; 5] = [Self::Crc32, Self::Crc32c, Self::Crc64Nvme, Self::Sha1, Self::Sha256];

    /// From a header or trailer name such as `x-amz-checksum-crc32` (any case).
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// From an S3 algorithm name such as `CRC32` (any case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.display_name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The name AWS uses in error messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    pub fn hasher(self) -> ChecksumHasher {
        let mut h = ChecksumHasher::default();
        match self {
            Self::Crc32 => h.crc32 = Some(Crc32::new()),
            Self::Crc32c => h.crc32c = Some(Crc32c::new()),
            Self::Crc64Nvme => h.crc64nvme = Some(Crc64Nvme::new()),
            Self::Sha1 => h.sha1 = Some(Sha1::new()),
            Self::Sha256 => h.sha256 = Some(Sha256::new()),
        }
        h
    }

    /// Finishes `hasher` and returns the base64 value of this algorithm.
    pub fn finish(self, hasher: ChecksumHasher) -> String {
        let sum = hasher.finalize();
        let value = match self {
            Self::Crc32 => sum.checksum_crc32,
            Self::Crc32c => sum.checksum_crc32c,
            Self::Crc64Nvme => sum.checksum_crc64nvme,
            Self::Sha1 => sum.checksum_sha1,
            Self::Sha256 => sum.checksum_sha256,
        };
        value.unwrap_or_default()
    }

    /// Finishes `hasher` and compares it with what the client sent (`None`: it sent nothing,
    /// though it announced a value).
    pub fn verify_hasher(self, hasher: ChecksumHasher, expected: Option<&str>) -> Result<(), BodyError> {
        let expected = expected.ok_or_else(|| BodyError::MissingTrailer(self.header_name().to_owned()))?;
        self.verify(&self.finish(hasher), expected)
    }

    /// Compares a computed value with the one the client sent.
    pub fn verify(self, computed: &str, expected: &str) -> Result<(), BodyError> {
        if computed == expected.trim() {
            Ok(())
        } else {
            Err(BodyError::ChecksumMismatch { algorithm: self.display_name() })
        }
    }
}

/// Where the expected value comes from: a request header (known up front), a trailer that is
/// only readable once the body has been consumed, or nowhere (compute and store only: the client
/// named the algorithm without a value, or simple mode's decoder already verified the trailer).
pub enum Expected {
    Known(String),
    Later(Box<dyn FnOnce() -> Option<String> + Send + Sync>),
    Unchecked,
}

/// Where a [`VerifyingStream`] leaves the value it computed, once the body has ended cleanly.
pub type ChecksumSlot = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// Passes a body through, computing a checksum; at its end, a mismatch turns into an error
/// instead of the end of the stream, so a writer never commits a body that failed its checksum.
pub struct VerifyingStream<S> {
    inner: S,
    state: Option<(ChecksumAlgorithm, ChecksumHasher, Expected)>,
    slot: ChecksumSlot,
}

impl<S> VerifyingStream<S> {
    pub fn new(inner: S, algorithm: ChecksumAlgorithm, expected: Expected) -> Self {
        Self { inner, state: Some((algorithm, algorithm.hasher(), expected)), slot: ChecksumSlot::default() }
    }

    /// The computed (and, unless unchecked, verified) value, available after the stream ended.
    pub fn slot(&self) -> ChecksumSlot {
        self.slot.clone()
    }
}

impl<S, E> Stream for VerifyingStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some((_, hasher, _)) = &mut this.state {
                    hasher.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::from_transport(e.into())))),
            Poll::Ready(None) => {
                let Some((algorithm, hasher, expected)) = this.state.take() else { return Poll::Ready(None) };
                let computed = algorithm.finish(hasher);
                let expected = match expected {
                    Expected::Known(v) => Some(v),
                    Expected::Later(read) => read(),
                    Expected::Unchecked => Some(computed.clone()),
                };
                let result = match expected {
                    Some(want) => algorithm.verify(&computed, &want),
                    None => Err(BodyError::MissingTrailer(algorithm.header_name().to_owned())),
                };
                if result.is_ok() {
                    *this.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(computed);
                }
                Poll::Ready(result.err().map(Err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{stream, StreamExt};

    #[test]
    fn known_values() {
        let mut h = ChecksumAlgorithm::Crc32.hasher();
        h.update(b"hello world");
        assert_eq!(ChecksumAlgorithm::Crc32.finish(h), "DUoRhQ==");
        let mut h = ChecksumAlgorithm::Sha256.hasher();
        h.update(b"");
        assert_eq!(ChecksumAlgorithm::Sha256.finish(h), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(ChecksumAlgorithm::from_header_name("X-Amz-Checksum-CRC32C"), Some(ChecksumAlgorithm::Crc32c));
        assert_eq!(ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"), None);
    }

    async fn drain(
        s: VerifyingStream<impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin>,
    ) -> Result<Vec<u8>, BodyError> {
        let mut s = s;
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    fn body() -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        stream::iter(vec![Ok(Bytes::from_static(b"hello ")), Ok(Bytes::from_static(b"world"))])
    }

    #[tokio::test]
    async fn verifying_stream_passes_good_and_fails_bad() {
        let good = VerifyingStream::new(body(), ChecksumAlgorithm::Crc32, Expected::Known("DUoRhQ==".into()));
        let slot = good.slot();
        assert_eq!(drain(good).await.unwrap(), b"hello world");
        assert_eq!(slot.lock().unwrap().as_deref(), Some("DUoRhQ=="));
        let unchecked = VerifyingStream::new(body(), ChecksumAlgorithm::Crc32, Expected::Unchecked);
        let slot = unchecked.slot();
        drain(unchecked).await.unwrap();
        assert_eq!(slot.lock().unwrap().as_deref(), Some("DUoRhQ=="));
        let bad = VerifyingStream::new(body(), ChecksumAlgorithm::Crc32, Expected::Known("AAAAAA==".into()));
        assert!(matches!(drain(bad).await, Err(BodyError::ChecksumMismatch { algorithm: "CRC32" })));
        let missing = VerifyingStream::new(body(), ChecksumAlgorithm::Crc32, Expected::Later(Box::new(|| None)));
        assert!(matches!(drain(missing).await, Err(BodyError::MissingTrailer(_))));
    }
}
