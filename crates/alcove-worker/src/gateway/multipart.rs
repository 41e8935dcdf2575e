//! Multipart upload: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts and
//! ListMultipartUploads. Staging and assembly live in alcove-ufs; here are the S3 shapes, the
//! part-number and pagination rules, and the upload's checksum (composite or full-object).

use std::sync::{Arc, Mutex};

use alcove_cache::BucketObjects;
use alcove_s3::checksum::ChecksumAlgorithm;
use alcove_s3::s3_error_from;
use alcove_s3::urlencode;
use alcove_ufs::multipart::{ContentTap, MAX_PART_NUMBER};
use alcove_ufs::{parts_digest, CompletePart, PartInfo, PutChecks, StoredChecksum, UfsError, UploadInfo};
use base64::Engine as _;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::copy::{copy_conditions, Source};
use super::get::Conditions;
use super::object_meta::{
    algorithm_named, checksum_values, report_checksum, set_checksum, write_headers, ChecksumRequest, Checksummed,
};
use super::put::{body_of, content_md5, write_precondition};
use super::{etag, object_key, owner, timestamp, ufs, Gateway};

const DEFAULT_MAX: i32 = 1000;

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive."))
}

fn upload_algorithm(upload: &UploadInfo) -> Option<ChecksumAlgorithm> {
    upload.checksum_algorithm.as_deref().and_then(ChecksumAlgorithm::from_name)
}

fn is_composite(upload: &UploadInfo) -> bool {
    upload.checksum_type.as_deref() == Some(ChecksumType::COMPOSITE)
}

pub async fn create_multipart_upload(
    gw: &Gateway,
    mut req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let key = object_key(&req.input.key)?;
    let bucket = gw.bucket(&req.input.bucket)?;
    let input = &mut req.input;
    let meta = write_headers!(input).into_meta(&gw.limits)?;
    let algorithm = input.checksum_algorithm.as_ref().map(|a| algorithm_named(a.as_str())).transpose()?;
    let checksum_type = match (algorithm, input.checksum_type.as_ref().map(ChecksumType::as_str)) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(s3_error!(InvalidRequest, "x-amz-checksum-type needs x-amz-checksum-algorithm."));
        }
        (Some(ChecksumAlgorithm::Crc64Nvme), None | Some(ChecksumType::FULL_OBJECT)) => Some(ChecksumType::FULL_OBJECT),
        (Some(ChecksumAlgorithm::Crc64Nvme), Some(_)) => {
            return Err(s3_error!(InvalidRequest, "CRC64NVME supports only the FULL_OBJECT checksum type."));
        }
        (Some(ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256), Some(ChecksumType::FULL_OBJECT)) => {
            return Err(s3_error!(InvalidRequest, "SHA1 and SHA256 support only the COMPOSITE checksum type."));
        }
        (Some(_), None | Some(ChecksumType::COMPOSITE)) => Some(ChecksumType::COMPOSITE),
        (Some(_), Some(ChecksumType::FULL_OBJECT)) => Some(ChecksumType::FULL_OBJECT),
        (Some(_), Some(other)) => return Err(s3_error!(InvalidRequest, "Unknown checksum type {other}.")),
    };
    let upload = UploadInfo {
        upload_id: String::new(),
        key: input.key.clone(),
        initiated: time::OffsetDateTime::now_utc(),
        meta,
        checksum_algorithm: algorithm.map(|a| a.display_name().to_owned()),
        checksum_type: checksum_type.map(str::to_owned),
    };
    let upload = ufs(bucket.create_upload(&key, upload).await)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        upload_id: Some(upload.upload_id),
        checksum_algorithm: upload.checksum_algorithm.map(ChecksumAlgorithmDto::from),
        checksum_type: upload.checksum_type.map(ChecksumType::from),
        ..Default::default()
    }))
}

type ChecksumAlgorithmDto = s3s::dto::ChecksumAlgorithm;

pub async fn upload_part(gw: &Gateway, mut req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
    let number = part_number(req.input.part_number)?;
    let bucket = gw.bucket(&req.input.bucket)?;
    object_key(&req.input.key)?;
    let upload = ufs(bucket.upload(&req.input.upload_id, &req.input.key).await)?;
    let input = &mut req.input;
    let checks = PutChecks {
        content_md5: content_md5(input.content_md5.as_deref())?,
        expected_len: input.content_length.and_then(|n| u64::try_from(n).ok()),
        precondition: None,
    };
    let checksummed = ChecksumRequest {
        values: checksum_values!(input),
        algorithm: upload_algorithm(&upload),
        headers: &req.headers,
        extensions: &req.extensions,
        trailing_headers: req.trailing_headers.clone(),
    }
    .apply(body_of(req.input.body.take()))?;
    if let (Some(want), Some(got)) = (upload_algorithm(&upload), checksummed.algorithm) {
        if want != got {
            return Err(s3_error!(
                InvalidRequest,
                "The upload was created with checksum algorithm {}.",
                want.display_name()
            ));
        }
    }
    let (algorithm, slot) = (checksummed.algorithm, checksummed.slot());
    let part_slot = slot.clone();
    let part = ufs(bucket
        .upload_part(&upload, number, checksummed.body, checks, move || Checksummed::value(&part_slot))
        .await)?;
    let mut output = UploadPartOutput { e_tag: Some(etag(&part.etag)), ..Default::default() };
    if let Some(a) = algorithm {
        set_checksum!(output, a, part.checksum.clone());
    }
    Ok(S3Response::new(output))
}

pub async fn upload_part_copy(
    gw: &Gateway,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = &req.input;
    let number = part_number(input.part_number)?;
    let bucket = gw.bucket(&input.bucket)?;
    object_key(&input.key)?;
    let upload = ufs(bucket.upload(&input.upload_id, &input.key).await)?;
    let source = Source::open(gw, &input.copy_source, copy_conditions!(input)).await?;
    let span = source.range(input.copy_source_range.as_deref())?;
    let body = source.body(span).await?;
    let algorithm = upload_algorithm(&upload);
    let checksummed = ChecksumRequest {
        values: ChecksumAlgorithm::ALL.map(|a| (a, None)),
        algorithm,
        headers: &http::HeaderMap::new(),
        extensions: &http::Extensions::new(),
        trailing_headers: None,
    }
    .apply(body)?;
    let slot = checksummed.slot();
    let part = ufs(bucket
        .upload_part(&upload, number, checksummed.body, PutChecks::default(), move || Checksummed::value(&slot))
        .await)?;
    let mut result = CopyPartResult {
        e_tag: Some(etag(&part.etag)),
        last_modified: Some(timestamp(part.last_modified)),
        ..Default::default()
    };
    if let Some(a) = algorithm {
        set_checksum!(result, a, part.checksum.clone());
    }
    Ok(S3Response::new(UploadPartCopyOutput { copy_part_result: Some(result), ..Default::default() }))
}

/// The composite checksum: the checksum of the parts' checksums, then `-N`.
fn composite(algorithm: ChecksumAlgorithm, parts: &[PartInfo]) -> Result<String, UfsError> {
    let mut hasher = algorithm.hasher();
    for part in parts {
        let raw = part
            .checksum
            .as_deref()
            .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
            .ok_or_else(|| {
                UfsError::InvalidPart(format!("part {} has no {} checksum", part.number, algorithm.display_name()))
            })?;
        hasher.update(&raw);
    }
    Ok(format!("{}-{}", algorithm.finish(hasher), parts.len()))
}

/// `value-N` → `value` (base64 has no `-`, so the suffix is unambiguous).
pub(super) fn without_part_count(value: &str) -> &str {
    match value.rsplit_once('-') {
        Some((v, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => v,
        _ => value,
    }
}

pub async fn complete_multipart_upload(
    gw: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let key = object_key(&input.key)?;
    let bucket = gw.bucket(&input.bucket)?;
    let listed = input.multipart_upload.as_ref().and_then(|m| m.parts.clone()).unwrap_or_default();
    let upload = match bucket.upload(&input.upload_id, &input.key).await {
        Err(UfsError::NoSuchUpload) => return repeated_completion(&bucket, &input, &listed).await,
        other => ufs(other)?,
    };
    if listed.is_empty() {
        return Err(s3_error!(MalformedXML, "You must specify at least one part."));
    }
    let algorithm = upload_algorithm(&upload);
    let mut chosen = Vec::with_capacity(listed.len());
    for part in &listed {
        let (Some(number), Some(tag)) = (part.part_number, part.e_tag.as_ref()) else {
            return Err(s3_error!(MalformedXML, "Each part needs a PartNumber and an ETag."));
        };
        let checksum = algorithm
            .and_then(|a| checksum_values!(part).into_iter().find(|(given, _)| *given == a).and_then(|(_, v)| v));
        if checksum.is_none() && is_composite(&upload) {
            let a = algorithm.map_or("", ChecksumAlgorithm::display_name);
            return Err(s3_error!(
                InvalidRequest,
                "The upload was created using a {a} checksum. The complete request must include the checksum for each part. It was missing for part {number} in the request."
            ));
        }
        chosen.push(CompletePart { number: part_number(number)?, etag: tag.value().to_owned(), checksum });
    }
    let precondition = write_precondition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let sent = checksum_values!(input).into_iter().find_map(|(a, v)| v.map(|v| (a, v)));
    let composite_type = is_composite(&upload);
    let full_hasher = algorithm.filter(|_| !composite_type).map(|a| Arc::new(Mutex::new(a.hasher())));
    let tap: Option<ContentTap> = full_hasher
        .clone()
        .map(|h| Box::new(move |data: &[u8]| h.lock().unwrap_or_else(|p| p.into_inner()).update(data)) as ContentTap);
    let mut meta = upload.meta.clone();
    let finish = move |parts: &[PartInfo]| {
        if let Some(a) = algorithm {
            let (value, kind) = match full_hasher {
                Some(h) => {
                    let hasher = std::mem::take(&mut *h.lock().unwrap_or_else(|p| p.into_inner()));
                    (a.finish(hasher), ChecksumType::FULL_OBJECT)
                }
                None => (composite(a, parts)?, ChecksumType::COMPOSITE),
            };
            if let Some((sent_algorithm, sent_value)) = &sent {
                if *sent_algorithm != a || without_part_count(&value) != without_part_count(sent_value) {
                    return Err(UfsError::Body(Box::new(alcove_s3::BodyError::ChecksumMismatch {
                        algorithm: a.display_name(),
                    })));
                }
            }
            meta.checksum =
                Some(StoredChecksum { algorithm: a.display_name().to_owned(), value, kind: kind.to_owned() });
            // Kept for GetObjectAttributes; every part of an upload with an algorithm has one.
            meta.part_checksums = parts.iter().filter_map(|p| p.checksum.clone()).collect();
        }
        Ok(meta)
    };
    let info = ufs(bucket.complete_upload(&key, &upload, chosen, precondition, tap, finish).await)?;
    Ok(S3Response::new(completion_output(&input, &info.etag, info.meta.checksum.as_ref())))
}

fn completion_output(
    input: &CompleteMultipartUploadInput,
    object_etag: &str,
    checksum: Option<&StoredChecksum>,
) -> CompleteMultipartUploadOutput {
    let mut output = CompleteMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        e_tag: Some(etag(object_etag)),
        ..Default::default()
    };
    report_checksum!(output, checksum);
    output
}

/// A Complete for an upload that no longer exists: SDKs repeat Complete when its answer was
/// lost, so an upload completed recently with the same parts answers as it did then.
async fn repeated_completion(
    bucket: &BucketObjects,
    input: &CompleteMultipartUploadInput,
    listed: &[CompletedPart],
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    if listed.is_empty() {
        return Err(s3_error_from(UfsError::NoSuchUpload));
    }
    let mut parts = Vec::with_capacity(listed.len());
    for part in listed {
        match (part.part_number.and_then(|n| u32::try_from(n).ok()), part.e_tag.as_ref()) {
            (Some(number), Some(tag)) => parts.push((number, tag.value())),
            _ => return Err(s3_error_from(UfsError::NoSuchUpload)),
        }
    }
    match ufs(bucket.completed_upload(&input.upload_id, &input.key).await)? {
        Some(done) if done.parts == parts_digest(parts) => {
            Ok(S3Response::new(completion_output(input, &done.etag, done.checksum.as_ref())))
        }
        _ => Err(s3_error_from(UfsError::NoSuchUpload)),
    }
}

pub async fn abort_multipart_upload(
    gw: &Gateway,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let bucket = gw.bucket(&req.input.bucket)?;
    let upload = ufs(bucket.upload(&req.input.upload_id, &req.input.key).await)?;
    ufs(bucket.abort_upload(&upload).await)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(gw: &Gateway, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let input = &req.input;
    let bucket = gw.bucket(&input.bucket)?;
    let upload = ufs(bucket.upload(&input.upload_id, &input.key).await)?;
    let max = input.max_parts.unwrap_or(DEFAULT_MAX).clamp(0, DEFAULT_MAX) as usize;
    let marker = input.part_number_marker.unwrap_or(0);
    let all = ufs(bucket.list_parts(&upload).await)?;
    let mut after: Vec<PartInfo> = all.into_iter().filter(|p| i64::from(p.number) > i64::from(marker)).collect();
    let truncated = after.len() > max;
    after.truncate(max);
    let algorithm = upload_algorithm(&upload);
    let parts = after
        .iter()
        .map(|p| {
            let mut part = Part {
                part_number: Some(p.number as i32),
                e_tag: Some(etag(&p.etag)),
                size: Some(p.size as i64),
                last_modified: Some(timestamp(p.last_modified)),
                ..Default::default()
            };
            if let Some(a) = algorithm {
                set_checksum!(part, a, p.checksum.clone());
            }
            part
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        upload_id: Some(upload.upload_id.clone()),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: truncated.then(|| after.last().map_or(marker, |p| p.number as i32)),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(parts),
        initiator: Some(Initiator { display_name: Some("alcove".into()), id: Some("alcove".into()) }),
        owner: Some(owner()),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        checksum_algorithm: upload.checksum_algorithm.clone().map(ChecksumAlgorithmDto::from),
        checksum_type: upload.checksum_type.clone().map(ChecksumType::from),
        ..Default::default()
    }))
}

pub async fn list_multipart_uploads(
    gw: &Gateway,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = &req.input;
    let bucket = gw.bucket(&input.bucket)?;
    let url = match input.encoding_type.as_ref().map(EncodingType::as_str) {
        None => false,
        Some(EncodingType::URL) => true,
        Some(_) => return Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request")),
    };
    let enc = |name: &str| if url { urlencode::encode(name) } else { name.to_owned() };
    let max = input.max_uploads.unwrap_or(DEFAULT_MAX).clamp(0, DEFAULT_MAX) as usize;
    let prefix = input.prefix.as_deref().unwrap_or_default();
    let delimiter = input.delimiter.as_deref().filter(|d| !d.is_empty());
    let key_marker = input.key_marker.as_deref().unwrap_or_default();
    let id_marker = input.upload_id_marker.as_deref().filter(|_| !key_marker.is_empty());
    let mut uploads = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut last: Option<(String, Option<String>)> = None;
    let mut passed_id_marker = id_marker.is_none();
    for upload in gw.uploads_of(&bucket).await? {
        if !upload.key.starts_with(prefix) {
            continue;
        }
        // After the key marker; at the marker's own key, after the upload-id marker.
        if upload.key.as_str() < key_marker || (upload.key == key_marker && id_marker.is_none()) {
            continue;
        }
        if upload.key == key_marker && !passed_id_marker {
            passed_id_marker = Some(upload.upload_id.as_str()) == id_marker;
            continue;
        }
        let rolled = delimiter.and_then(|d| {
            upload.key[prefix.len()..].find(d).map(|i| upload.key[..prefix.len() + i + d.len()].to_owned())
        });
        if let Some(p) = &rolled {
            if prefixes.last() == Some(p) || key_marker.starts_with(p.as_str()) {
                continue;
            }
        }
        if uploads.len() + prefixes.len() >= max {
            truncated = true;
            break;
        }
        match rolled {
            Some(p) => {
                last = Some((p.clone(), None));
                prefixes.push(p);
            }
            None => {
                last = Some((upload.key.clone(), Some(upload.upload_id.clone())));
                uploads.push(MultipartUpload {
                    key: Some(enc(&upload.key)),
                    upload_id: Some(upload.upload_id.clone()),
                    initiated: Some(timestamp(upload.initiated)),
                    initiator: Some(Initiator { display_name: Some("alcove".into()), id: Some("alcove".into()) }),
                    owner: Some(owner()),
                    storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                    checksum_algorithm: upload.checksum_algorithm.clone().map(ChecksumAlgorithmDto::from),
                    checksum_type: upload.checksum_type.clone().map(ChecksumType::from),
                });
            }
        }
    }
    let (next_key, next_id) = if truncated { last.map_or((None, None), |(k, id)| (Some(k), id)) } else { (None, None) };
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket.clone()),
        prefix: input.prefix.as_deref().map(enc),
        delimiter: input.delimiter.as_deref().map(enc),
        key_marker: input.key_marker.as_deref().map(enc),
        upload_id_marker: input.upload_id_marker.clone(),
        next_key_marker: next_key.as_deref().map(enc),
        encoding_type: url.then(|| EncodingType::from_static(EncodingType::URL)),
        next_upload_id_marker: next_id,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        uploads: Some(uploads),
        common_prefixes: (!prefixes.is_empty())
            .then(|| prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
        ..Default::default()
    }))
}
