//! GetObject and HeadObject: ranges, conditional requests and streamed bodies.

use std::io::SeekFrom;

use alcove_ufs::ObjectInfo;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{etag, object_key, timestamp, ufs, Gateway};

/// Read size for streamed bodies: large enough to keep syscalls rare, small enough to bound memory.
const READ_CHUNK: usize = 256 * 1024;

/// The conditional headers of a GET or HEAD.
struct Conditions<'a> {
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
}

impl Conditions<'_> {
    /// RFC 9110 §13.2.2 order: If-Match, else If-Unmodified-Since (412); then If-None-Match,
    /// else If-Modified-Since (304). A failed 412 check wins over a 304.
    fn check(&self, info: &ObjectInfo) -> S3Result<()> {
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
            (Some(cond), _) if matches_etag(cond, &current) => Err(s3_error!(NotModified)),
            (None, Some(since)) if modified <= time::OffsetDateTime::from(since.clone()) => Err(s3_error!(NotModified)),
            _ => Ok(()),
        }
    }
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

fn byte_range(range: Option<&Range>, size: u64) -> S3Result<Option<std::ops::Range<u64>>> {
    let Some(range) = range else { return Ok(None) };
    range.check(size).map(Some).map_err(|_| {
        let mut e = s3_error!(InvalidRange, "The requested range is not satisfiable for an object of {size} bytes.");
        e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
        e
    })
}

fn content_range(r: &std::ops::Range<u64>, size: u64) -> String {
    format!("bytes {}-{}/{}", r.start, r.end - 1, size)
}

fn user_metadata(info: &ObjectInfo) -> Option<Metadata> {
    (!info.user.is_empty()).then(|| info.user.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

pub async fn get_object(gw: &Gateway, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    let input = &req.input;
    let key = object_key(&input.key)?;
    let bucket = gw.bucket(&input.bucket)?;
    let opened = ufs(bucket.store.open(&key).await)?;
    let info = opened.info;
    conditions_of!(input).check(&info)?;
    let range = byte_range(input.range.as_ref(), info.size)?;
    let span = range.clone().unwrap_or(0..info.size);
    let len = span.end - span.start;
    let body = match opened.file {
        Some(file) => {
            let mut file = tokio::fs::File::from_std(file);
            if span.start > 0 {
                file.seek(SeekFrom::Start(span.start))
                    .await
                    .map_err(|e| s3_error!(e, InternalError, "seeking in the object failed"))?;
            }
            StreamingBlob::wrap(ReaderStream::with_capacity(file.take(len), READ_CHUNK))
        }
        None => StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>()),
    };
    let output = GetObjectOutput {
        body: Some(body),
        accept_ranges: Some("bytes".into()),
        content_length: Some(len as i64),
        content_range: range.as_ref().map(|r| content_range(r, info.size)),
        content_type: Some(info.content_type.clone().unwrap_or_else(|| "binary/octet-stream".into())),
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified)),
        metadata: user_metadata(&info),
        ..Default::default()
    };
    Ok(S3Response::new(output))
}

pub async fn head_object(gw: &Gateway, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = &req.input;
    let key = object_key(&input.key)?;
    let bucket = gw.bucket(&input.bucket)?;
    let info = ufs(bucket.store.stat(&key).await)?;
    conditions_of!(input).check(&info)?;
    let range = byte_range(input.range.as_ref(), info.size)?;
    let len = range.as_ref().map_or(info.size, |r| r.end - r.start);
    let output = HeadObjectOutput {
        accept_ranges: Some("bytes".into()),
        content_length: Some(len as i64),
        content_range: range.as_ref().map(|r| content_range(r, info.size)),
        content_type: Some(info.content_type.clone().unwrap_or_else(|| "binary/octet-stream".into())),
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified)),
        metadata: user_metadata(&info),
        ..Default::default()
    };
    let mut resp = S3Response::new(output);
    if range.is_some() {
        resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(resp)
}
