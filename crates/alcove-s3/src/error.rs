//! Error mapping: the one place where storage and body errors become AWS error codes, and where
//! every error document gets its `Resource` and `RequestId`.

use alcove_ufs::UfsError;
use s3s::{S3Error, S3ErrorCode};

use crate::BodyError;

/// Maps an under-storage error to the S3 error AWS would send.
pub fn s3_error_from(e: UfsError) -> S3Error {
    use S3ErrorCode as C;
    let (code, message): (C, String) = match e {
        UfsError::NoSuchKey => (C::NoSuchKey, "The specified key does not exist.".into()),
        UfsError::NoSuchBucket(b) => (
            C::NoSuchBucket,
            format!("The specified bucket does not exist: '{b}' is neither a mount nor a folder of the local root."),
        ),
        UfsError::BucketExists(b) => (
            C::BucketAlreadyOwnedByYou,
            format!("Your previous request to create the bucket '{b}' succeeded and you already own it."),
        ),
        UfsError::BucketNotEmpty(b) => {
            (C::BucketNotEmpty, format!("The bucket '{b}' you tried to delete is not empty."))
        }
        UfsError::InvalidBucketName(m) => (C::InvalidBucketName, m),
        UfsError::InvalidKey(m) => (C::InvalidArgument, m),
        UfsError::KeyTooLong(m) => (C::KeyTooLongError, format!("Your key is too long: {m}.")),
        UfsError::Conflict(m) | UfsError::InvalidRequest(m) => (C::InvalidRequest, m),
        UfsError::NoSuchUpload => (
            C::NoSuchUpload,
            "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.".into(),
        ),
        UfsError::InvalidPart(m) => (C::InvalidPart, format!("One or more of the specified parts could not be found: {m}.")),
        UfsError::InvalidPartOrder => {
            (C::InvalidPartOrder, "The list of parts was not in ascending order. Parts must be ordered by part number.".into())
        }
        UfsError::EntityTooSmall(m) => (C::EntityTooSmall, format!("Your proposed upload is smaller than the minimum allowed object size: {m}.")),
        UfsError::PreconditionFailed => {
            (C::PreconditionFailed, "At least one of the pre-conditions you specified did not hold.".into())
        }
        UfsError::BadDigest => (C::BadDigest, "The Content-MD5 you specified did not match what we received.".into()),
        e @ UfsError::IncompleteBody { .. } => (
            C::IncompleteBody,
            format!("You did not provide the number of bytes specified by the Content-Length HTTP header: {e}."),
        ),
        e @ UfsError::BodyTooLong { .. } => (C::InvalidRequest, e.to_string()),
        UfsError::Body(inner) => return body_error(BodyError::from_transport(inner)),
        UfsError::Unsupported(m) => (C::NotImplemented, m),
        UfsError::Unavailable { mount, retry_after } => {
            let message = format!("The under-storage of {mount} did not answer in time or could not be reached; please retry.");
            return retry_later(S3ErrorCode::ServiceUnavailable, message, retry_after.as_secs().max(1));
        }
        UfsError::Changed => {
            let message = "The object changed while it was being read; please retry.".to_owned();
            return retry_later(S3ErrorCode::ServiceUnavailable, message, 1);
        }
        UfsError::SlowDown { mount } => {
            let message = format!("The under-storage of {mount} is throttling requests; please reduce your request rate.");
            return retry_later(S3ErrorCode::SlowDown, message, 1);
        }
        UfsError::MetadataTooLarge(m) => (C::MetadataTooLarge, m),
        UfsError::RemoteBucketMissing { mount } => (
            C::NoSuchBucket,
            format!("The bucket {mount} is mounted on a remote bucket that does not exist (see `alcove mount list`)."),
        ),
        UfsError::RemoteRefused { mount, message } => {
            (C::InvalidRequest, format!("The under-storage of {mount} refused the request: {message}"))
        }
        UfsError::RemoteDenied { mount } => (
            C::AccessDenied,
            format!("The under-storage of {mount} refused the worker's credentials for it; the worker log says more."),
        ),
        UfsError::FsRefused { context, source } => {
            tracing::warn!(error = %source, context = %context, "the file system refused a request");
            (C::AccessDenied, format!("The under-storage refused the worker ({context}): {}.", os_reason(&source)))
        }
        UfsError::NoSpace { context, source } => {
            tracing::error!(error = %source, context = %context, "the under-storage is full");
            return insufficient_storage(format!(
                "The under-storage has no space left for this request ({context}); nothing was stored."
            ));
        }
        e @ UfsError::Io { .. } => {
            tracing::error!(error = %e, "storage failure");
            (C::InternalError, "We encountered an internal error; the worker log has the details.".into())
        }
    };
    S3Error::with_message(code, message)
}

/// The OS's words for an error, without Rust's "(os error N)".
fn os_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// `InsufficientStorage` (507), MinIO's answer for a full disk; AWS has no code for it.
fn insufficient_storage(message: String) -> S3Error {
    let code = S3ErrorCode::from_bytes(b"InsufficientStorage").unwrap_or(S3ErrorCode::InternalError);
    let mut e = S3Error::with_message(code, message);
    e.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
    e
}

/// A 503 with a `Retry-After` hint: the client may send the same request again.
fn retry_later(code: S3ErrorCode, message: String, seconds: u64) -> S3Error {
    let mut e = S3Error::with_message(code, message);
    e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    e.set_headers(headers);
    e
}

/// Maps a body that could not be accepted.
pub fn body_error(e: BodyError) -> S3Error {
    stream_error(&e)
}

/// Maps an error a request body yielded — one of ours ([`BodyError`]) by its kind, one of s3s's
/// or hyper's by its text — to what the client is told. A body is the client's to send, so
/// every failure of it is a 4xx.
pub fn stream_error(e: &(dyn std::error::Error + 'static)) -> S3Error {
    use S3ErrorCode as C;
    let Some(body) = e.downcast_ref::<BodyError>() else {
        return transport_error(&e.to_string());
    };
    let code = match body {
        BodyError::ChecksumMismatch { .. } => C::BadDigest,
        BodyError::ContentSha256Mismatch => return sha256_mismatch(body.to_string()),
        BodyError::Malformed(_) | BodyError::MissingTrailer(_) => C::InvalidRequest,
        BodyError::LengthMismatch => C::IncompleteBody,
        BodyError::IdleTimeout => C::RequestTimeout,
        BodyError::TooLarge { .. } => C::MaxMessageLengthExceeded,
        BodyError::Transport(inner) => return stream_error(inner.as_ref()),
    };
    S3Error::with_message(code, body.to_string())
}

/// s3s reports signed-body failures through the body stream; its error types are private, so
/// they are told apart by their names. Anything else is a body that did not arrive whole
/// (connection lost, broken chunked framing).
fn transport_error(text: &str) -> S3Error {
    use S3ErrorCode as C;
    if text.contains("Sha256Mismatch") {
        return sha256_mismatch(BodyError::ContentSha256Mismatch.to_string());
    }
    let code = if text.contains("SignatureMismatch") {
        C::SignatureDoesNotMatch
    } else if text.contains("AwsChunkedStreamError") {
        C::InvalidRequest
    } else {
        C::IncompleteBody
    };
    S3Error::with_message(code, format!("The body could not be read: {text}"))
}

/// `XAmzContentSHA256Mismatch` is an AWS code that s3s's generated list lacks.
fn sha256_mismatch(message: String) -> S3Error {
    let code = S3ErrorCode::from_bytes(b"XAmzContentSHA256Mismatch").unwrap_or(S3ErrorCode::BadDigest);
    let mut err = S3Error::with_message(code, message);
    err.set_status_code(http::StatusCode::BAD_REQUEST);
    err
}

/// Prefix of the response headers that carry extra error-document elements (such as
/// `ActualObjectSize`) from the gateway to [`decorate_error_body`]; never sent to clients.
pub const DETAIL_HEADER_PREFIX: &str = "x-alcove-detail-";

/// Attaches an extra element (`<name>value</name>`) to an error's document.
pub fn with_detail(mut e: S3Error, name: &str, value: &str) -> S3Error {
    let mut headers = e.headers().cloned().unwrap_or_default();
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(format!("{DETAIL_HEADER_PREFIX}{name}").as_bytes()),
        http::HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"));
    }
    e.set_headers(headers);
    e
}

/// Takes the detail headers out of an error response, as `(element, value)` pairs.
pub fn take_details(headers: &mut http::HeaderMap) -> Vec<(String, String)> {
    let names: Vec<http::HeaderName> =
        headers.keys().filter(|n| n.as_str().starts_with(DETAIL_HEADER_PREFIX)).cloned().collect();
    let mut details = Vec::new();
    for name in names {
        if let Some(v) = headers.remove(&name).and_then(|v| v.to_str().ok().map(str::to_owned)) {
            // Header names are lowercase; S3 element names are CamelCase.
            let element = match &name.as_str()[DETAIL_HEADER_PREFIX.len()..] {
                "actualobjectsize" => "ActualObjectSize",
                "rangerequested" => "RangeRequested",
                "maxsizeallowed" => "MaxSizeAllowed",
                other => other,
            };
            details.push((element.to_owned(), v));
        }
    }
    details.sort();
    details.reverse();
    details
}

/// Adds `<Resource>`, `<RequestId>` (as AWS sends both) and any `details` to an S3 error document.
/// Returns `None` when `body` is not an error document.
pub fn decorate_error_body(
    body: &[u8],
    resource: &str,
    request_id: &str,
    details: &[(String, String)],
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let end = text.rfind("</Error>")?;
    let mut extra = String::new();
    for (name, value) in details {
        if !text.contains(&format!("<{name}>")) {
            extra.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
        }
    }
    if !text.contains("<Message>") {
        let code = text.split("<Code>").nth(1).and_then(|r| r.split("</Code>").next()).unwrap_or_default();
        let message = match code {
            "InvalidBucketName" => bucket_name_problem(resource).unwrap_or_else(|| default_message(code).to_owned()),
            _ => default_message(code).to_owned(),
        };
        extra.push_str(&format!("<Message>{}</Message>", xml_escape(&message)));
    }
    if !text.contains("<Resource>") {
        extra.push_str(&format!("<Resource>{}</Resource>", xml_escape(resource)));
    }
    if !text.contains("<RequestId>") {
        extra.push_str(&format!("<RequestId>{}</RequestId>", xml_escape(request_id)));
    }
    Some(format!("{}{}{}", &text[..end], extra, &text[end..]).into_bytes())
}

/// Why the bucket of a path-style `resource` is not a valid name, when s3s refused it unexplained.
fn bucket_name_problem(resource: &str) -> Option<String> {
    let bucket = resource.strip_prefix('/')?.split('/').next()?;
    match alcove_ufs::mount::validate_bucket_name(bucket) {
        Err(UfsError::InvalidBucketName(why)) => {
            let mut chars = why.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect())
        }
        _ => None,
    }
}

/// AWS's wording for errors that s3s raises without a message.
fn default_message(code: &str) -> &'static str {
    match code {
        "InvalidBucketName" => "The specified bucket is not valid.",
        "NoSuchBucket" => "The specified bucket does not exist.",
        "NoSuchKey" => "The specified key does not exist.",
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        }
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "AccessDenied" => "Access Denied",
        "RequestTimeTooSkewed" => "The difference between the request time and the current time is too large.",
        "MalformedXML" => "The XML you provided was not well-formed or did not validate against our published schema.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "NotImplemented" => "A header or query you provided implies functionality that is not implemented.",
        "InvalidRange" => "The requested range is not satisfiable.",
        "PreconditionFailed" => "At least one of the preconditions you specified did not hold.",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "InvalidArgument" => "Invalid Argument",
        "InvalidRequest" => "Invalid Request",
        "InvalidURI" => "Couldn't parse the specified URI.",
        _ => "The request could not be served.",
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorates_error_documents_once() {
        let body =
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>m</Message></Error>";
        let out = decorate_error_body(body, "/b/a&b", "ID1", &[]).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("<Resource>/b/a&amp;b</Resource><RequestId>ID1</RequestId></Error>"), "{out}");
        let again = String::from_utf8(decorate_error_body(out.as_bytes(), "/x", "ID2", &[]).unwrap()).unwrap();
        assert_eq!(again, out);
        assert!(decorate_error_body(b"<ListBucketResult/>", "/", "x", &[]).is_none());
    }

    #[test]
    fn details_travel_in_headers_and_land_in_the_document() {
        let e = with_detail(
            with_detail(S3Error::new(S3ErrorCode::InvalidRange), "RangeRequested", "bytes=0-9"),
            "ActualObjectSize",
            "0",
        );
        let mut headers = e.headers().cloned().unwrap();
        let details = take_details(&mut headers);
        assert!(headers.keys().all(|k| !k.as_str().starts_with(DETAIL_HEADER_PREFIX)));
        let body = b"<Error><Code>InvalidRange</Code><Message>m</Message></Error>";
        let out = String::from_utf8(decorate_error_body(body, "/b/k", "ID", &details).unwrap()).unwrap();
        assert!(
            out.contains("<RangeRequested>bytes=0-9</RangeRequested><ActualObjectSize>0</ActualObjectSize>"),
            "{out}"
        );
    }

    #[test]
    fn storage_errors_map_to_aws_codes() {
        let cases = [
            (UfsError::NoSuchKey, S3ErrorCode::NoSuchKey),
            (UfsError::NoSuchBucket("b".into()), S3ErrorCode::NoSuchBucket),
            (UfsError::BucketExists("b".into()), S3ErrorCode::BucketAlreadyOwnedByYou),
            (UfsError::InvalidKey("k".into()), S3ErrorCode::InvalidArgument),
            (UfsError::KeyTooLong("k".into()), S3ErrorCode::KeyTooLongError),
            (UfsError::BadDigest, S3ErrorCode::BadDigest),
            (UfsError::Body(Box::new(BodyError::ChecksumMismatch { algorithm: "CRC32" })), S3ErrorCode::BadDigest),
            (UfsError::Body(Box::new(BodyError::IdleTimeout)), S3ErrorCode::RequestTimeout),
        ];
        for (e, code) in cases {
            assert_eq!(*s3_error_from(e).code(), code);
        }
    }
}
