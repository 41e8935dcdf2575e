//! PutObject: Content-MD5, checksums (header or trailer), metadata and tags, conditional writes
//! (`If-None-Match: *`, `If-Match`), streamed into the UFS.

use alcove_ufs::{Precondition, PutChecks};
use base64::Engine as _;
use futures::stream::{self, StreamExt};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::object_meta::{
    checksum_values, full_object, set_checksum, write_headers, Body, ChecksumRequest, Checksummed,
};
use super::{etag, object_key, ufs, Gateway};

/// Decodes `Content-MD5`: it must be the base64 of 16 bytes.
pub(super) fn content_md5(value: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(value) = value else { return Ok(None) };
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
        .map(Some)
        .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."))
}

/// The conditional-write headers of PutObject and CompleteMultipartUpload.
pub(super) fn write_precondition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Option<Precondition>> {
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => {
            Err(s3_error!(InvalidRequest, "If-Match and If-None-Match cannot be combined on a write."))
        }
        (Some(ETagCondition::ETag(tag)), None) => Ok(Some(Precondition::IfMatch(tag.value().to_owned()))),
        (None, Some(ETagCondition::Any)) => Ok(Some(Precondition::IfNoneMatchAny)),
        (Some(ETagCondition::Any), None) | (None, Some(ETagCondition::ETag(_))) => {
            Err(s3_error!(NotImplemented, "A write supports only If-None-Match: * and If-Match: <etag>."))
        }
        (None, None) => Ok(None),
    }
}

/// The request body, or an empty one.
pub(super) fn body_of(blob: Option<StreamingBlob>) -> Body {
    match blob {
        Some(blob) => blob.boxed(),
        None => stream::empty().boxed(),
    }
}

pub async fn put_object(gw: &Gateway, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let key = object_key(&req.input.key)?;
    let bucket = gw.bucket(&req.input.bucket)?;
    let input = &mut req.input;
    let checks = PutChecks {
        content_md5: content_md5(input.content_md5.as_deref())?,
        expected_len: input.content_length.and_then(|n| u64::try_from(n).ok()),
        precondition: write_precondition(input.if_match.as_ref(), input.if_none_match.as_ref())?,
    };
    let mut meta = write_headers!(input).into_meta(&gw.limits)?;
    let sdk_algorithm =
        input.checksum_algorithm.as_ref().map(|a| super::object_meta::algorithm_named(a.as_str())).transpose()?;
    let checksummed: Checksummed = ChecksumRequest {
        values: checksum_values!(input),
        algorithm: sdk_algorithm,
        headers: &req.headers,
        extensions: &req.extensions,
        trailing_headers: req.trailing_headers.clone(),
    }
    .apply(body_of(req.input.body.take()))?;
    let (algorithm, slot) = (checksummed.algorithm, checksummed.slot());
    let finish_slot = slot.clone();
    let announced = checksummed.announced.clone();
    // Called when the body is complete, or (large bodies on remote mounts) when the first part
    // leaves: then only a value announced in a header is known.
    let finish = move || {
        if let (Some(a), Some(v)) = (algorithm, Checksummed::value(&finish_slot).or(announced)) {
            meta.checksum = Some(full_object(a, v));
        }
        meta
    };
    let info = ufs(bucket.put(&key, checksummed.body, finish, checks).await)?;
    let mut output = PutObjectOutput { e_tag: Some(etag(&info.etag)), ..Default::default() };
    if let Some(a) = algorithm {
        set_checksum!(output, a, Checksummed::value(&slot));
        output.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
    }
    Ok(S3Response::new(output))
}
