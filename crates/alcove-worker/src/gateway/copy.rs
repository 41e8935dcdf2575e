//! CopyObject (and the source side of UploadPartCopy): `x-amz-copy-source`, its conditions and
//! range, and the metadata and tagging directives.

use alcove_cache::BucketObjects;
use alcove_ufs::{ObjectInfo, ObjectKey, ObjectMeta, OpenObject, PutChecks};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, StdError};

use super::get::Conditions;
use super::object_meta::{report_checksum, write_headers, Body};
use super::{check_version, etag, object_key, timestamp, ufs, Gateway};

/// An opened copy source: its description and a body over the requested bytes.
pub(super) struct Source {
    pub bucket: String,
    pub key: ObjectKey,
    pub info: ObjectInfo,
    objects: BucketObjects,
    opened: OpenObject,
}

/// The `x-amz-copy-source-if-*` headers of CopyObject and UploadPartCopy.
macro_rules! copy_conditions {
    ($input:expr) => {
        Conditions {
            if_match: $input.copy_source_if_match.as_ref(),
            if_none_match: $input.copy_source_if_none_match.as_ref(),
            if_modified_since: $input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: $input.copy_source_if_unmodified_since.as_ref(),
        }
    };
}
pub(super) use copy_conditions;

impl Source {
    /// Opens `x-amz-copy-source` and checks its conditions; every failed copy condition is a
    /// 412, as AWS answers (never a 304).
    pub async fn open(gw: &Gateway, source: &CopySource, conditions: Conditions<'_>) -> S3Result<Self> {
        let CopySource::Bucket { bucket, key, version_id } = source else {
            return Err(s3_error!(NotImplemented, "Copying from an access point is not supported."));
        };
        check_version(version_id.as_deref())?;
        let objects = gw.bucket(bucket)?;
        let key = object_key(key)?;
        let opened = ufs(objects.open(&key).await)?;
        conditions.check(&opened.info).map_err(|e| {
            if *e.code() == s3s::S3ErrorCode::NotModified {
                s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold.")
            } else {
                e
            }
        })?;
        Ok(Self { bucket: bucket.to_string(), key, info: opened.info.clone(), objects, opened })
    }

    /// A body over `span` of the source (all of it when `None`).
    pub async fn body(self, span: Option<std::ops::Range<u64>>) -> S3Result<Body> {
        let stream = ufs(self.opened.into_stream(span).await)?;
        Ok(stream.map(|r| r.map_err(|e| Box::new(e) as StdError)).boxed())
    }

    /// Parses `x-amz-copy-source-range` against this source (see [`copy_source_range`]).
    pub fn range(&self, header: Option<&str>) -> S3Result<Option<std::ops::Range<u64>>> {
        copy_source_range(header, self.info.size)
    }
}

/// Parses `x-amz-copy-source-range` (`bytes=first-last`, both inside a source of `size` bytes).
pub(super) fn copy_source_range(header: Option<&str>, size: u64) -> S3Result<Option<std::ops::Range<u64>>> {
    let Some(header) = header else { return Ok(None) };
    let bad = || s3_error!(InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last.");
    let (first, last) = header.trim().strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(bad)?;
    // Digits only: `u64::from_str` would also take a sign ("+5").
    let number = |s: &str| s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse::<u64>().ok()).flatten();
    let first = number(first).ok_or_else(bad)?;
    let last = number(last).ok_or_else(bad)?;
    if first > last || last >= size {
        return Err(s3_error!(InvalidArgument, "Range specified is not valid for source object of size: {size}"));
    }
    Ok(Some(first..last + 1))
}

fn is_replace(directive: Option<&str>, name: &str) -> S3Result<bool> {
    match directive {
        None | Some("COPY") => Ok(false),
        Some("REPLACE") => Ok(true),
        Some(other) => Err(s3_error!(InvalidArgument, "Unknown {name} directive: {other}.")),
    }
}

pub async fn copy_object(gw: &Gateway, mut req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
    let dest_key = object_key(&req.input.key)?;
    let dest = gw.bucket(&req.input.bucket)?;
    let source = Source::open(gw, &req.input.copy_source, copy_conditions!(req.input)).await?;
    let input = &mut req.input;
    let replace_meta = is_replace(input.metadata_directive.as_ref().map(MetadataDirective::as_str), "metadata")?;
    let replace_tags = is_replace(input.tagging_directive.as_ref().map(TaggingDirective::as_str), "tagging")?;
    let requested = write_headers!(input).into_meta(&gw.limits)?;
    let mut meta = source.info.meta.clone();
    if replace_meta {
        // The request's headers and user metadata; what describes the bytes stays.
        meta = ObjectMeta {
            checksum: meta.checksum,
            parts: meta.parts,
            part_checksums: meta.part_checksums,
            tags: meta.tags,
            ..requested.clone()
        };
    }
    if replace_tags {
        meta.tags = requested.tags;
    }
    let same_object = source.bucket == input.bucket && source.key == dest_key;
    let info = if same_object {
        if !replace_meta && !replace_tags {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        ufs(dest.update_meta(&dest_key, move |m| *m = meta).await)?
    } else {
        // A copy is one new object: part boundaries and composite checksums do not carry over.
        meta.clear_parts();
        if meta.checksum.as_ref().is_some_and(|c| c.kind != "FULL_OBJECT") {
            meta.checksum = None;
        }
        let unchanged = !replace_meta && !replace_tags && meta == source.info.meta;
        let server_side =
            if unchanged { dest.copy_within(&source.objects, &source.key, &dest_key).await } else { None };
        match server_side {
            Some(copied) => ufs(copied)?,
            None => {
                let body = source.body(None).await?;
                ufs(dest.put(&dest_key, body, move || meta, PutChecks::default()).await)?
            }
        }
    };
    let mut result = CopyObjectResult {
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified)),
        ..Default::default()
    };
    report_checksum!(result, info.meta.checksum.as_ref());
    Ok(S3Response::new(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() }))
}
