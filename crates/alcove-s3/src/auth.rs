//! The auth modes.
//!
//! * `simple` (the default, as in the seed system): the access key of a SigV4 or V2
//!   `Authorization` header (or presigned query) names the user and the signature is not checked.
//!   s3s always verifies what it sees, so [`simple_prelayer`] takes the user from the request,
//!   removes the signature, decodes aws-chunked framing itself, and hands s3s an unsigned request.
//! * `sigv4`: s3s verifies header, presigned and chunk signatures against [`CredentialStore`].
//! * `oidc`: sigv4 mode's credentials, plus `Authorization: Bearer <JWT>` tokens of an OIDC
//!   provider ([`crate::oidc`]; the front end verifies them and then treats the request like
//!   simple mode, unsigned) and the temporary credentials STS hands out for them
//!   ([`crate::sts`]), which s3s verifies like any SigV4 credential.
//!
//! In every mode a request without credentials runs as the worker's own user (the user
//! `anonymous` for the policies), unless `auth.allow_anonymous = false`, in which case it gets
//! `AccessDenied`. What each user may do is [`crate::policy`]'s business.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH};
use http::Uri;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};

use crate::checksum::{ChecksumAlgorithm, Expected, VerifyingStream};
use crate::chunked::AwsChunkedDecoder;
use crate::oidc::OidcSettings;
use crate::policy::{Identity, KeyIdentities, Policies};
use crate::sts::{session_token, StsKeys};
use crate::BodyError;
use futures::StreamExt as _;
use s3s::stream::ByteStream as _;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    #[default]
    Simple,
    Sigv4,
    Oidc,
}

impl AuthMode {
    /// Whether s3s verifies SigV4 signatures (every mode but simple).
    pub fn verifies_signatures(self) -> bool {
        self != Self::Simple
    }
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "simple" => Ok(Self::Simple),
            "sigv4" => Ok(Self::Sigv4),
            "oidc" => Ok(Self::Oidc),
            other => Err(format!("unknown auth mode '{other}': expected 'simple', 'sigv4' or 'oidc'")),
        }
    }
}

/// Everything the auth layer needs to know.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub mode: AuthMode,
    pub allow_anonymous: bool,
    /// Access key → secret key, for sigv4 mode.
    pub credentials: BTreeMap<String, String>,
    /// The user unauthenticated requests run as (the worker's process user), for the access log.
    pub anonymous_user: String,
    /// `[[auth.policies]]`; empty: everyone may do everything.
    pub policies: Arc<Policies>,
    /// oidc mode: the identity provider.
    pub oidc: Option<OidcSettings>,
    /// oidc mode: what the STS key is derived from (`auth.sts_key` or the cluster secret);
    /// `None`: a random key of this process.
    pub sts_secret: Option<String>,
}

/// Set on a request whose aws-chunked trailer checksum simple mode's decoder already verified,
/// so the gateway stores it without checking twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedTrailer(pub ChecksumAlgorithm);

/// Set on a request that carries no credentials (it runs as the anonymous user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anonymous;

/// The user a request runs as, for the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUser(pub String);

pub(crate) const SIGNING_QUERY_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

/// The access key a request claims, from its `Authorization` header or presigned query.
/// Says nothing about whether the signature is right.
pub fn claimed_access_key<B>(req: &http::Request<B>) -> S3Result<Option<String>> {
    if let Some(value) = req.headers().get(AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| s3_error!(AuthorizationHeaderMalformed, "The Authorization header is not ASCII."))?;
        return access_key_of_header(value).map(Some).ok_or_else(|| {
            s3_error!(
                AuthorizationHeaderMalformed,
                "The Authorization header is malformed; expected 'AWS4-HMAC-SHA256 Credential=KEY/…' or 'AWS KEY:SIGNATURE'."
            )
        });
    }
    let query = req.uri().query().unwrap_or_default();
    for (name, value) in form_pairs(query) {
        match name.as_str() {
            "X-Amz-Credential" => return Ok(value.split('/').next().map(str::to_owned)),
            "AWSAccessKeyId" => return Ok(Some(value)),
            _ => {}
        }
    }
    Ok(None)
}

fn access_key_of_header(value: &str) -> Option<String> {
    if let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256") {
        let credential = rest.split([',', ' ']).find_map(|part| part.trim().strip_prefix("Credential="))?;
        let key = credential.split('/').next()?;
        return (!key.is_empty()).then(|| key.to_owned());
    }
    let (key, _signature) = value.strip_prefix("AWS ")?.split_once(':')?;
    (!key.is_empty()).then(|| key.to_owned())
}

/// The first value of the query parameter `name`, decoded.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    form_pairs(query).find(|(n, _)| n == name).map(|(_, v)| v)
}

fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_component(name), decode_component(value))
    })
}

fn decode_component(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Simple mode: identifies the user and turns the request into an unsigned one s3s accepts.
pub fn simple_prelayer(req: &mut http::Request<s3s::Body>, settings: &AuthSettings) -> S3Result<RequestUser> {
    let user = match claimed_access_key(req)? {
        Some(key) => RequestUser(key),
        None if settings.allow_anonymous => RequestUser(settings.anonymous_user.clone()),
        None => return Err(anonymous_denied()),
    };
    make_unsigned(req)?;
    Ok(user)
}

/// Turns a request whose sender is known into an unsigned one s3s accepts: no `Authorization`,
/// no signing parameters, aws-chunked framing decoded (its trailer checksum checked), a hex
/// payload hash checked.
pub fn make_unsigned(req: &mut http::Request<s3s::Body>) -> S3Result<()> {
    req.headers_mut().remove(AUTHORIZATION);
    strip_signing_query(req)?;
    decode_streaming_body(req)?;
    verify_payload_hash(req);
    Ok(())
}

/// A SigV2 presigned URL carries the `x-amz-*` headers it signed as query parameters, which AWS
/// reads as headers; s3s signs over headers only, so the one that matters here, the session
/// token of temporary credentials, is put back into its header.
pub fn hoist_presigned_v2_token(req: &mut http::Request<s3s::Body>) {
    let Some(query) = req.uri().query() else { return };
    let presigned_v2 = query_param(query, "AWSAccessKeyId").is_some() && query_param(query, "Signature").is_some();
    if !presigned_v2 || req.headers().contains_key("x-amz-security-token") {
        return;
    }
    if let Some(value) = query_param(query, "x-amz-security-token").and_then(|t| HeaderValue::from_str(&t).ok()) {
        req.headers_mut().insert("x-amz-security-token", value);
    }
}

/// A hex `x-amz-content-sha256` promises the body's SHA-256; s3s checks it only while verifying
/// a signature, so simple mode checks it here (`XAmzContentSHA256Mismatch`).
fn verify_payload_hash(req: &mut http::Request<s3s::Body>) {
    let Some(digest) = req
        .headers()
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() == 64)
        .and_then(|v| hex::decode(v).ok())
    else {
        return;
    };
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(digest);
    let length = req.body().remaining_length();
    let body = std::mem::take(req.body_mut());
    let verified = VerifyingStream::new(body, ChecksumAlgorithm::Sha256, Expected::Known(expected)).map(|r| {
        r.map_err(|e| match e {
            BodyError::ChecksumMismatch { .. } => BodyError::ContentSha256Mismatch,
            other => other,
        })
    });
    let remaining = length.exact().map_or(u64::MAX, |n| n as u64);
    *req.body_mut() =
        s3s::Body::from(Box::pin(LengthHinted { inner: verified, remaining, exact: length.exact().is_some() })
            as s3s::stream::DynByteStream);
}

pub(crate) fn anonymous_denied() -> S3Error {
    s3_error!(
        AccessDenied,
        "Anonymous access is disabled on this worker (auth.allow_anonymous = false); sign the request."
    )
}

fn strip_signing_query(req: &mut http::Request<s3s::Body>) -> S3Result<()> {
    let Some(query) = req.uri().query() else { return Ok(()) };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
            !SIGNING_QUERY_PARAMS.contains(&decode_component(name).as_str())
        })
        .collect();
    if kept.len() == query.split('&').count() {
        return Ok(());
    }
    let path_and_query =
        if kept.is_empty() { req.uri().path().to_owned() } else { format!("{}?{}", req.uri().path(), kept.join("&")) };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().map_err(|_| s3_error!(InvalidURI))?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| s3_error!(InvalidURI))?;
    Ok(())
}

/// Replaces an aws-chunked body by its decoded payload.
fn decode_streaming_body(req: &mut http::Request<s3s::Body>) -> S3Result<()> {
    let headers = req.headers();
    let streaming =
        headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("STREAMING-"));
    if !streaming {
        return Ok(());
    }
    let decoded_len: u64 = headers
        .get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            s3_error!(MissingContentLength, "An aws-chunked body needs a valid x-amz-decoded-content-length header.")
        })?;
    let trailer = match headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(name) => Some(ChecksumAlgorithm::from_header_name(name).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("The trailer '{name}' is not a supported checksum."),
            )
        })?),
    };
    if let Some(algorithm) = trailer {
        req.extensions_mut().insert(VerifiedTrailer(algorithm));
    }
    let body = std::mem::take(req.body_mut());
    let decoder = AwsChunkedDecoder::new(body, Some(decoded_len), trailer);
    *req.body_mut() =
        s3s::Body::from(Box::pin(LengthHinted { inner: decoder, remaining: decoded_len, exact: true })
            as s3s::stream::DynByteStream);
    let headers = req.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(decoded_len));
    headers.insert("x-amz-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
    headers.remove("x-amz-decoded-content-length");
    headers.remove("x-amz-trailer");
    let other_encodings: Vec<String> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .map(str::to_owned)
        .collect();
    headers.remove(CONTENT_ENCODING);
    if !other_encodings.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&other_encodings.join(", ")) {
            headers.insert(CONTENT_ENCODING, v);
        }
    }
    Ok(())
}

/// Tells s3s the exact length of the decoded body (it rejects PUTs of unknown length).
struct LengthHinted<S> {
    inner: S,
    remaining: u64,
    exact: bool,
}

impl<S> futures::Stream for LengthHinted<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, crate::BodyError>> + Unpin,
{
    type Item = Result<bytes::Bytes, s3s::StdError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        std::pin::Pin::new(&mut this.inner).poll_next(cx).map(|item| {
            item.map(|r| match r {
                Ok(b) => {
                    this.remaining = this.remaining.saturating_sub(b.len() as u64);
                    Ok(b)
                }
                Err(e) => Err(Box::new(e) as s3s::StdError),
            })
        })
    }
}

impl<S> s3s::stream::ByteStream for LengthHinted<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, crate::BodyError>> + Unpin,
{
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        if self.exact {
            s3s::stream::RemainingLength::new_exact(self.remaining as usize)
        } else {
            s3s::stream::RemainingLength::unknown()
        }
    }
}

/// The secrets s3s verifies signatures with: the config file's, and (oidc mode) those of the
/// temporary credentials STS hands out. A configured key wins over a temporary one.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    pub keys: BTreeMap<String, String>,
    pub sts: Option<Arc<StsKeys>>,
}

impl CredentialStore {
    fn temporary(&self, access_key: &str) -> Option<&StsKeys> {
        self.sts.as_deref().filter(|_| !self.keys.contains_key(access_key) && StsKeys::is_temporary(access_key))
    }
}

fn unknown_key() -> S3Error {
    s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")
}

#[async_trait::async_trait]
impl S3Auth for CredentialStore {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some(secret) = self.keys.get(access_key) {
            return Ok(SecretKey::from(secret.as_str()));
        }
        match self.temporary(access_key) {
            Some(sts) => Ok(SecretKey::from(sts.secret_of(access_key))),
            None => Err(unknown_key()),
        }
    }
}

impl KeyIdentities for CredentialStore {
    fn identity(&self, access_key: &str, headers: &http::HeaderMap, uri: &Uri) -> S3Result<Identity> {
        if self.keys.contains_key(access_key) {
            return Ok(Identity::user(access_key));
        }
        match self.temporary(access_key) {
            Some(sts) => {
                sts.identity(access_key, session_token(headers, uri).as_deref(), time::OffsetDateTime::now_utc())
            }
            None => Err(unknown_key()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, auth: Option<&str>) -> http::Request<s3s::Body> {
        let mut b = http::Request::builder().uri(uri);
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(s3s::Body::empty()).unwrap()
    }

    fn settings(allow_anonymous: bool) -> AuthSettings {
        AuthSettings { allow_anonymous, anonymous_user: "worker".into(), ..Default::default() }
    }

    #[test]
    fn user_comes_from_v4_v2_and_presigned_forms() {
        let v4 =
            "AWS4-HMAC-SHA256 Credential=alice/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
        let mut r = request("/b/k", Some(v4));
        assert_eq!(simple_prelayer(&mut r, &settings(false)).unwrap(), RequestUser("alice".into()));
        assert!(r.headers().get(AUTHORIZATION).is_none());

        let mut r = request("/b/k", Some("AWS bob:c2ln"));
        assert_eq!(simple_prelayer(&mut r, &settings(false)).unwrap(), RequestUser("bob".into()));

        let mut r = request(
            "/b/k?versionId=null&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=carol%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ff",
            None,
        );
        assert_eq!(simple_prelayer(&mut r, &settings(false)).unwrap(), RequestUser("carol".into()));
        assert_eq!(r.uri().query(), Some("versionId=null"));
    }

    #[test]
    fn anonymous_requests_follow_the_setting() {
        let mut r = request("/b/k", None);
        assert_eq!(simple_prelayer(&mut r, &settings(true)).unwrap(), RequestUser("worker".into()));
        let mut r = request("/b/k", None);
        assert_eq!(*simple_prelayer(&mut r, &settings(false)).unwrap_err().code(), S3ErrorCode::AccessDenied);
    }

    #[test]
    fn malformed_authorization_is_refused() {
        let mut r = request("/b/k", Some("Bearer xyz"));
        let e = simple_prelayer(&mut r, &settings(true)).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::AuthorizationHeaderMalformed);
    }

    #[tokio::test]
    async fn payload_hash_is_verified_in_simple_mode() {
        use futures::StreamExt as _;
        let read = |digest: &'static str| async move {
            let mut r = http::Request::builder().uri("/b/k").body(s3s::Body::from(String::from("hello"))).unwrap();
            r.headers_mut().insert("x-amz-content-sha256", HeaderValue::from_static(digest));
            simple_prelayer(&mut r, &settings(true)).unwrap();
            let mut body = std::mem::take(r.body_mut());
            let mut out = Vec::new();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) => out.extend_from_slice(&c),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(out)
        };
        let good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(read(good).await.unwrap(), b"hello");
        let bad = "0000000000000000000000000000000000000000000000000000000000000000";
        assert!(read(bad).await.unwrap_err().contains("x-amz-content-sha256"));
    }

    #[test]
    fn streaming_bodies_need_a_decoded_length() {
        let mut r = request("/b/k", None);
        r.headers_mut().insert("x-amz-content-sha256", HeaderValue::from_static("STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
        let e = simple_prelayer(&mut r, &settings(true)).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::MissingContentLength);
    }
}
