//! GetObject and HeadObject: ranges and part numbers, conditional requests, metadata, tags
//! count, stored checksums, and streamed bodies.

use std::ops::Range as Span;

use alcove_s3::auth::Anonymous;
use alcove_s3::error::with_detail;
use alcove_ufs::ObjectInfo;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::object_meta::{fill_read_headers, report_checksum};
use super::{etag, object_key, timestamp, ufs, Gateway};

/// The conditional headers of a GET, HEAD or copy source.
pub(super) struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

impl Conditions<'_> {
    /// RFC 9110 §13.2.2 order: If-Match, else If-Unmodified-Since (412); then If-None-Match,
    /// else If-Modified-Since (304). A failed 412 check wins over a 304.
    pub fn check(&self, info: &ObjectInfo) -> S3Result<()> {
        let current = etag(&info.etag);
        let modified = time::OffsetDateTime::from(timestamp(info.last_modified));
        match (self.if_match, self.if_unmodified_since) {
            (Some(cond), _) if !matches_etag(cond, &current) => return Err(s3_error!(PreconditionFailed)),
            (None, Some(since)) if modified > time::OffsetDateTime::from(since.clone()) => {
                return Err(s3_error!(PreconditionFailed))
            }
            _ => {}
        }
        match (self.if_none_match, self.if_modified_since) {
            (Some(cond), _) if matches_etag(cond, &current) => Err(not_modified(info)),
            (None, Some(since)) if modified <= time::OffsetDateTime::from(since.clone()) => Err(not_modified(info)),
            _ => Ok(()),
        }
    }
}

/// A 304 still names the representation (RFC 9110 §15.4.5): ETag and Last-Modified.
fn not_modified(info: &ObjectInfo) -> S3Error {
    let mut e = s3_error!(NotModified);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", info.etag)) {
        headers.insert(http::header::ETAG, v);
    }
    let mut date = Vec::new();
    if timestamp(info.last_modified).format(TimestampFormat::HttpDate, &mut date).is_ok() {
        if let Ok(v) = http::HeaderValue::from_bytes(&date) {
            headers.insert(http::header::LAST_MODIFIED, v);
        }
    }
    e.set_headers(headers);
    e
}

/// Both GetObjectInput and HeadObjectInput carry the four conditional headers.
macro_rules! conditions_of {
    ($input:expr) => {
        Conditions {
            if_match: $input.if_match.as_ref(),
            if_none_match: $input.if_none_match.as_ref(),
            if_modified_since: $input.if_modified_since.as_ref(),
            if_unmodified_since: $input.if_unmodified_since.as_ref(),
        }
    };
}

fn matches_etag(cond: &ETagCondition, current: &ETag) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == current.value(),
    }
}

/// `InvalidRange` with the elements AWS adds; CRT-based clients read `ActualObjectSize` (it is
/// how they learn that an object is empty).
pub(super) fn invalid_range(size: u64, requested: Option<String>) -> S3Error {
    let mut e = s3_error!(InvalidRange, "The requested range is not satisfiable for an object of {size} bytes.");
    e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
    if let Some(r) = requested {
        e = with_detail(e, "RangeRequested", &r);
    }
    with_detail(e, "ActualObjectSize", &size.to_string())
}

/// The bytes a read asks for: a Range, a part of a multipart object, or (None) everything.
pub(super) fn requested_span(
    range: Option<&Range>,
    part_number: Option<i32>,
    info: &ObjectInfo,
) -> S3Result<Option<Span<u64>>> {
    match (range, part_number) {
        (Some(_), Some(_)) => Err(s3_error!(InvalidRequest, "Cannot specify both Range header and partNumber.")),
        // s3s calls a suffix of an empty object satisfiable (an empty span); RFC 9110 does not.
        (Some(r), None) => match r.check(info.size) {
            Ok(span) if !span.is_empty() => Ok(Some(span)),
            _ => Err(invalid_range(info.size, Some(r.to_header_string()))),
        },
        (None, Some(n)) => part_span(n, info).map(Some),
        (None, None) => Ok(None),
    }
}

fn part_span(number: i32, info: &ObjectInfo) -> S3Result<Span<u64>> {
    let parts: &[u64] = if info.meta.parts.is_empty() { &[info.size] } else { &info.meta.parts };
    let index = usize::try_from(number).ok().filter(|&n| n >= 1 && n <= parts.len()).ok_or_else(|| {
        let code = S3ErrorCode::from_bytes(b"InvalidPartNumber").unwrap_or(S3ErrorCode::InvalidArgument);
        let mut e = S3Error::with_message(code, "The requested partnumber is not satisfiable");
        e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
        e
    })?;
    let start: u64 = parts[..index - 1].iter().sum();
    Ok(start..start + parts[index - 1])
}

fn content_range(r: &Span<u64>, size: u64) -> Option<String> {
    (r.end > r.start).then(|| format!("bytes {}-{}/{}", r.start, r.end - 1, size))
}

/// Everything GET and HEAD answer with besides the body.
macro_rules! fill_object_headers {
    ($output:expr, $info:expr, $span:expr, $part_number:expr, $checksum_mode:expr) => {{
        let info: &ObjectInfo = $info;
        let span: &Option<Span<u64>> = $span;
        let len = span.as_ref().map_or(info.size, |r| r.end - r.start);
        $output.accept_ranges = Some("bytes".into());
        $output.content_length = Some(len as i64);
        $output.content_range = span.as_ref().and_then(|r| content_range(r, info.size));
        $output.e_tag = Some(etag(&info.etag));
        $output.last_modified = Some(timestamp(info.last_modified));
        fill_read_headers!($output, &info.meta);
        if $part_number.is_some() && !info.meta.parts.is_empty() {
            $output.parts_count = Some(info.meta.parts.len() as i32);
        }
        let whole = span.is_none() || ($part_number.is_some() && info.meta.parts.len() <= 1);
        if $checksum_mode.is_some_and(|m: &ChecksumMode| m.as_str() == ChecksumMode::ENABLED) && whole {
            report_checksum!($output, info.meta.checksum.as_ref());
        }
    }};
}

/// AWS refuses `response-*` overrides on anonymous reads.
macro_rules! refuse_anonymous_overrides {
    ($req:expr) => {{
        let input = &$req.input;
        let overriding = input.response_content_type.is_some()
            || input.response_content_disposition.is_some()
            || input.response_content_encoding.is_some()
            || input.response_content_language.is_some()
            || input.response_cache_control.is_some()
            || input.response_expires.is_some();
        if overriding && $req.extensions.get::<Anonymous>().is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Request specific response headers cannot be used for anonymous GET requests."
            ));
        }
    }};
}

pub async fn get_object(gw: &Gateway, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    refuse_anonymous_overrides!(req);
    let input = &req.input;
    let key = object_key(&input.key)?;
    let bucket = gw.bucket(&input.bucket)?;
    // A GET racing a replacement of its object (described as one version, its first bytes
    // already another) starts over once, as the new version: S3 serves some whole version of an
    // object being replaced, not an error.
    let mut retried = false;
    let (info, span, stream) = loop {
        let opened = ufs(bucket.open(&key).await)?;
        let info = opened.info.clone();
        conditions_of!(input).check(&info)?;
        let span = requested_span(input.range.as_ref(), input.part_number, &info)?;
        match opened.into_stream(span.clone()).await {
            Ok(stream) => break (info, span, stream),
            Err(alcove_ufs::UfsError::Changed) if !retried => retried = true,
            Err(e) => return ufs(Err(e)),
        }
    };
    let body = StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream));
    let mut output = GetObjectOutput { body: Some(body), ..Default::default() };
    fill_object_headers!(output, &info, &span, input.part_number, input.checksum_mode.as_ref());
    output.tag_count = (!info.meta.tags.is_empty()).then_some(info.meta.tags.len() as i32);
    Ok(S3Response::new(output))
}

pub async fn head_object(gw: &Gateway, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    refuse_anonymous_overrides!(req);
    let input = &req.input;
    let key = object_key(&input.key)?;
    let bucket = gw.bucket(&input.bucket)?;
    let info = ufs(bucket.stat(&key).await)?;
    conditions_of!(input).check(&info)?;
    let span = requested_span(input.range.as_ref(), input.part_number, &info)?;
    let mut output = HeadObjectOutput::default();
    fill_object_headers!(output, &info, &span, input.part_number, input.checksum_mode.as_ref());
    // s3s applies the response-* overrides to GetObject only.
    let overrides = [
        (&input.response_content_type, &mut output.content_type),
        (&input.response_content_disposition, &mut output.content_disposition),
        (&input.response_content_encoding, &mut output.content_encoding),
        (&input.response_content_language, &mut output.content_language),
        (&input.response_cache_control, &mut output.cache_control),
    ];
    for (given, field) in overrides {
        if given.is_some() {
            field.clone_from(given);
        }
    }
    if input.response_expires.is_some() {
        output.expires.clone_from(&input.response_expires);
    }
    let mut resp = S3Response::new(output);
    if span.is_some() {
        resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(resp)
}
