//! Whole-body integrity checks for small XML requests (DeleteObjects): AWS requires a
//! `Content-MD5` or an `x-amz-checksum-*` header there, and current SDKs send only the latter.

use base64::Engine as _;
use http::HeaderMap;
use md5::{Digest, Md5};
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};

use crate::checksum::ChecksumAlgorithm;

/// True when the request carries a `Content-MD5` or an `x-amz-checksum-*` value.
pub fn has_integrity_header(headers: &HeaderMap) -> bool {
    headers.contains_key("content-md5") || ChecksumAlgorithm::ALL.iter().any(|a| headers.contains_key(a.header_name()))
}

/// `MissingContentMD5` is an AWS code that s3s's generated list lacks.
fn missing_content_md5() -> S3Error {
    let code = S3ErrorCode::from_bytes(b"MissingContentMD5").unwrap_or(S3ErrorCode::InvalidRequest);
    let mut e = S3Error::with_message(
        code,
        "Missing required header for this request: Content-MD5 or an x-amz-checksum-* header.",
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

/// Refuses a body that lacks an integrity header or does not match it.
pub fn verify_whole_body(headers: &HeaderMap, body: &[u8]) -> S3Result<()> {
    if !has_integrity_header(headers) {
        return Err(missing_content_md5());
    }
    if let Some(value) = headers.get("content-md5") {
        let expected = value
            .to_str()
            .ok()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.trim()).ok())
            .filter(|raw| raw.len() == 16)
            .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."))?;
        if Md5::digest(body).as_slice() != expected.as_slice() {
            return Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."));
        }
    }
    for algorithm in ChecksumAlgorithm::ALL {
        if let Some(value) = headers.get(algorithm.header_name()).and_then(|v| v.to_str().ok()) {
            let mut hasher = algorithm.hasher();
            hasher.update(body);
            algorithm.verify(&algorithm.finish(hasher), value).map_err(crate::error::body_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), http::HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn md5_or_checksum_is_required_and_checked() {
        let body = b"hello world";
        let e = verify_whole_body(&HeaderMap::new(), body).unwrap_err();
        assert_eq!(e.code().as_str(), "MissingContentMD5");
        assert_eq!(e.status_code(), Some(http::StatusCode::BAD_REQUEST));
        verify_whole_body(&headers(&[("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==")]), body).unwrap();
        let e = verify_whole_body(&headers(&[("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")]), body).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::BadDigest);
        let e = verify_whole_body(&headers(&[("content-md5", "nope")]), body).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::InvalidDigest);
        verify_whole_body(&headers(&[("x-amz-checksum-crc32", "DUoRhQ==")]), body).unwrap();
        let e = verify_whole_body(&headers(&[("x-amz-checksum-crc32", "AAAAAA==")]), body).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::BadDigest);
    }
}
