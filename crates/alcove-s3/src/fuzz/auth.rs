//! The SIMPLE-mode header reader ([`crate::auth`]): the user taken from an `Authorization`
//! header or a presigned query, the signing parameters stripped from the query, and the body
//! headers the pre-layer reads (`x-amz-content-sha256`, `x-amz-decoded-content-length`,
//! `x-amz-trailer`, `Content-Encoding`).

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request};
use proptest::prelude::*;
use s3s::S3ErrorCode;

use crate::auth::{claimed_access_key, query_param, simple_prelayer, AuthSettings};

const SIGNING: &[&str] = crate::auth::SIGNING_QUERY_PARAMS;

const OTHER_PARAMS: &[&str] =
    &["versionId", "uploadId", "partNumber", "tagging", "list-type", "prefix", "delete", "x-id", "acl", ""];

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A query component: a name from the signing or the other set (sometimes percent-encoded,
/// sometimes without `=`), and a value of arbitrary text made safe for a URI.
fn pair() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        proptest::sample::select(SIGNING).prop_map(str::to_owned),
        proptest::sample::select(OTHER_PARAMS).prop_map(str::to_owned),
        Just("X%2DAmz-Credential".to_owned()),
        "[a-zA-Z%0-9-]{0,8}",
    ];
    let value = proptest::option::of(
        any::<String>()
            .prop_map(|v| percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC).to_string()),
    );
    (name, value).prop_map(|(n, v)| match v {
        Some(v) => format!("{n}={v}"),
        None => n,
    })
}

/// An access key as clients have them: anything but the separators of the header forms.
fn access_key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.@+=-]{1,40}"
}

/// `Authorization` values: well-formed V4 and V2 headers around a key, and arbitrary bytes.
fn authorization() -> impl Strategy<Value = (Vec<u8>, Option<String>)> {
    prop_oneof![
        (access_key(), any::<bool>()).prop_map(|(key, spaced)| {
            let sep = if spaced { ", " } else { "," };
            let v = format!(
                "AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/s3/aws4_request{sep}SignedHeaders=host{sep}Signature=00"
            );
            (v.into_bytes(), Some(key))
        }),
        access_key().prop_map(|key| (format!("AWS {key}:c2lnbmF0dXJl").into_bytes(), Some(key))),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| (b, None)),
        super::words(&["AWS4-HMAC-SHA256", "AWS ", "Credential=", "/", ":", ",", " ", "Bearer ", "SignedHeaders="])
            .prop_map(|s| (s.into_bytes(), None)),
    ]
}

fn request(path_and_query: &str, authorization: Option<&[u8]>) -> Option<Request<s3s::Body>> {
    let mut req = Request::builder().uri(path_and_query).body(s3s::Body::empty()).ok()?;
    if let Some(value) = authorization {
        req.headers_mut().insert(AUTHORIZATION, HeaderValue::from_bytes(value).ok()?);
    }
    Some(req)
}

fn settings() -> AuthSettings {
    AuthSettings { allow_anonymous: true, anonymous_user: "worker".into(), ..Default::default() }
}

/// Headers the pre-layer reads from a body-carrying request.
fn body_headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let sha = prop_oneof![
        proptest::sample::select(
            &[
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                "UNSIGNED-PAYLOAD",
                "STREAMING-",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        "[0-9a-fA-F]{64}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..80),
    ];
    let number = prop_oneof![
        "[0-9]{1,25}".prop_map(String::into_bytes),
        Just(b"-1".to_vec()),
        Just(b" 5 ".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..10)
    ];
    let trailer = prop_oneof![
        proptest::sample::select(&["x-amz-checksum-crc32", "X-Amz-Checksum-SHA256", "x-amz-checksum-md5", ""][..])
            .prop_map(|s| s.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..30),
    ];
    let encoding = prop_oneof![
        proptest::sample::select(&["aws-chunked", "aws-chunked, gzip", "gzip,aws-chunked", " , ", "AWS-CHUNKED"][..])
            .prop_map(|s| s.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..30),
    ];
    (
        proptest::option::of(sha),
        proptest::option::of(number),
        proptest::option::of(trailer),
        proptest::option::of(encoding),
    )
        .prop_map(|(sha, len, trailer, encoding)| {
            let mut headers = Vec::new();
            for (name, value) in [
                ("x-amz-content-sha256", sha),
                ("x-amz-decoded-content-length", len),
                ("x-amz-trailer", trailer),
                ("content-encoding", encoding),
            ] {
                if let Some(v) = value {
                    headers.push((name, v));
                }
            }
            headers
        })
}

/// The codes the pre-layer may answer with: all client errors.
const PRELAYER_CODES: &[S3ErrorCode] = &[
    S3ErrorCode::AuthorizationHeaderMalformed,
    S3ErrorCode::AccessDenied,
    S3ErrorCode::InvalidURI,
    S3ErrorCode::MissingContentLength,
    S3ErrorCode::InvalidRequest,
];

proptest! {
    #![proptest_config(super::config(4096))]

    /// The claimed access key is the one a well-formed header names, and never empty; anything
    /// else is `AuthorizationHeaderMalformed`, never a panic.
    #[test]
    fn claimed_access_key_from_headers((value, key) in authorization()) {
        let Some(req) = request("/b/k", Some(&value)) else { return Ok(()) };
        match claimed_access_key(&req) {
            Ok(Some(claimed)) => {
                prop_assert!(!claimed.is_empty());
                if let Some(key) = key {
                    prop_assert_eq!(claimed, key);
                }
            }
            Ok(None) => prop_assert!(false, "a request with Authorization has a claimed key or an error"),
            Err(e) => {
                prop_assert!(key.is_none(), "a well-formed header was refused: {e}");
                prop_assert_eq!(e.code(), &S3ErrorCode::AuthorizationHeaderMalformed);
            }
        }
    }

    /// Simple mode strips exactly the signing parameters: none is left, every other parameter
    /// stays in its order, the path is untouched, and the user is the presigned key.
    #[test]
    fn signing_parameters_are_stripped(
        path in "/[a-z0-9]{3,8}(/[a-zA-Z0-9._%~-]{0,12}){0,3}",
        pairs in proptest::collection::vec(pair(), 0..10),
    ) {
        let query = pairs.join("&");
        let target = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
        let Some(mut req) = request(&target, None) else { return Ok(()) };
        let claimed = claimed_access_key(&req);
        let user = match simple_prelayer(&mut req, &settings()) {
            Ok(user) => user,
            Err(e) => {
                prop_assert!(PRELAYER_CODES.contains(e.code()), "{e}");
                return Ok(());
            }
        };
        prop_assert_eq!(req.uri().path(), path.as_str());
        let name = |p: &str| decode(p.split_once('=').map_or(p, |(n, _)| n));
        let left: Vec<&str> = req.uri().query().map(|q| q.split('&').collect()).unwrap_or_default();
        for p in &left {
            prop_assert!(!SIGNING.contains(&name(p).as_str()), "{p} was kept");
        }
        let others: Vec<&str> = pairs.iter().map(String::as_str).filter(|p| !SIGNING.contains(&name(p).as_str())).collect();
        if others.iter().all(|p| p.is_empty()) {
            prop_assert!(left.iter().all(|p| p.is_empty()));
        } else {
            prop_assert_eq!(left, others);
        }
        match claimed {
            Ok(Some(key)) => prop_assert_eq!(user.0, key),
            _ => prop_assert_eq!(user.0, "worker"),
        }
    }

    /// Arbitrary query text and body headers: the pre-layer answers a client error or hands on
    /// a request, and whatever it hands on has an unsigned payload and no `Authorization`.
    #[test]
    fn arbitrary_requests(
        query in super::words(&["X-Amz-Credential", "AWSAccessKeyId", "X-Amz-Date", "=", "&", "a%2Fb", "%ZZ", "%FF"]),
        auth in proptest::option::of(authorization()),
        headers in body_headers(),
    ) {
        let safe = percent_encoding::utf8_percent_encode(&query, percent_encoding::CONTROLS).to_string().replace([' ', '#'], "+");
        let Some(mut req) = request(&format!("/b/k?{safe}"), auth.as_ref().map(|(v, _)| v.as_slice())) else { return Ok(()) };
        for (name, value) in &headers {
            let Ok(v) = HeaderValue::from_bytes(value) else { return Ok(()) };
            req.headers_mut().insert(*name, v);
        }
        let _ = query_param(&query, "X-Amz-Credential");
        match simple_prelayer(&mut req, &settings()) {
            Ok(_) => {
                prop_assert!(req.headers().get(AUTHORIZATION).is_none());
                let sha = req.headers().get("x-amz-content-sha256").map(|v| v.as_bytes().to_vec());
                prop_assert!(!sha.is_some_and(|s| s.starts_with(b"STREAMING-")), "a streaming body was handed on");
            }
            Err(e) => prop_assert!(PRELAYER_CODES.contains(e.code()), "{e}"),
        }
    }
}
