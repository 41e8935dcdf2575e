//! PutObject: Content-MD5, checksums (header or trailer), metadata, streamed into the UFS.

use alcove_s3::checksum::{ChecksumAlgorithm, Expected, VerifyingStream};
use alcove_ufs::{PutChecks, WriteMeta};
use base64::Engine as _;
use futures::stream::{self, BoxStream, StreamExt};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, StdError};

use super::{etag, object_key, ufs, Gateway};

type Body = BoxStream<'static, Result<bytes::Bytes, StdError>>;

/// Decodes `Content-MD5`: it must be the base64 of 16 bytes.
fn content_md5(value: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(value) = value else { return Ok(None) };
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
        .map(Some)
        .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."))
}

/// The checksum the client asked us to verify: a header value, or a trailer s3s collected
/// (sigv4 mode; simple mode's decoder verifies trailers itself).
fn requested_checksum(req: &S3Request<PutObjectInput>) -> S3Result<Option<(ChecksumAlgorithm, Expected)>> {
    let input = &req.input;
    let headers = [
        (ChecksumAlgorithm::Crc32, &input.checksum_crc32),
        (ChecksumAlgorithm::Crc32c, &input.checksum_crc32c),
        (ChecksumAlgorithm::Crc64Nvme, &input.checksum_crc64nvme),
        (ChecksumAlgorithm::Sha1, &input.checksum_sha1),
        (ChecksumAlgorithm::Sha256, &input.checksum_sha256),
    ];
    let mut given = headers.into_iter().filter_map(|(a, v)| v.clone().map(|v| (a, v)));
    if let Some((algorithm, value)) = given.next() {
        if given.next().is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            ));
        }
        return Ok(Some((algorithm, Expected::Known(value))));
    }
    let trailer = req.headers.get("x-amz-trailer").and_then(|v| v.to_str().ok());
    match (trailer, req.trailing_headers.clone()) {
        (Some(name), Some(trailers)) => {
            let algorithm = ChecksumAlgorithm::from_header_name(name)
                .ok_or_else(|| s3_error!(InvalidRequest, "The trailer x-amz-trailer names no supported checksum."))?;
            let header = algorithm.header_name();
            let read =
                move || trailers.read(|h| h.get(header).and_then(|v| v.to_str().ok()).map(str::to_owned)).flatten();
            Ok(Some((algorithm, Expected::Later(Box::new(read)))))
        }
        _ => Ok(None),
    }
}

pub async fn put_object(gw: &Gateway, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let key = object_key(&req.input.key)?;
    let bucket = gw.bucket(&req.input.bucket)?;
    let checks = PutChecks {
        content_md5: content_md5(req.input.content_md5.as_deref())?,
        expected_len: req.input.content_length.and_then(|n| u64::try_from(n).ok()),
    };
    let checksum = requested_checksum(&req)?;
    let input = &mut req.input;
    let meta = WriteMeta {
        content_type: input.content_type.take(),
        user: input.metadata.take().unwrap_or_default().into_iter().collect(),
    };
    let raw: Body = match input.body.take() {
        Some(blob) => blob.boxed(),
        None => stream::empty().boxed(),
    };
    let mut output = PutObjectOutput::default();
    let body: Body = match checksum {
        Some((algorithm, expected)) => {
            if let Expected::Known(v) = &expected {
                set_checksum(&mut output, algorithm, v.clone());
            }
            VerifyingStream::new(raw, algorithm, expected).map(|r| r.map_err(|e| Box::new(e) as StdError)).boxed()
        }
        None => raw,
    };
    let info = ufs(bucket.store.put(&key, body, meta, checks).await)?;
    output.e_tag = Some(etag(&info.etag));
    Ok(S3Response::new(output))
}

fn set_checksum(output: &mut PutObjectOutput, algorithm: ChecksumAlgorithm, value: String) {
    let slot = match algorithm {
        ChecksumAlgorithm::Crc32 => &mut output.checksum_crc32,
        ChecksumAlgorithm::Crc32c => &mut output.checksum_crc32c,
        ChecksumAlgorithm::Crc64Nvme => &mut output.checksum_crc64nvme,
        ChecksumAlgorithm::Sha1 => &mut output.checksum_sha1,
        ChecksumAlgorithm::Sha256 => &mut output.checksum_sha256,
    };
    *slot = Some(value);
}
