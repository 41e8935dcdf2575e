//! Steps through the aws-sdk-s3 client: error inspection, whole-object
//! reads and writes, listings and multipart uploads.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use md5::{Digest as _, Md5};

use crate::etag_of;

// ---------------------------------------------------------------------------
// SDK error helpers
// ---------------------------------------------------------------------------

/// (HTTP status, S3 error code) of an SDK error. Status 0 when there was no response.
pub fn err_status_code<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> (u16, String)
where
    E: ProvideErrorMetadata,
{
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = e.code().unwrap_or("").to_owned();
    (status, code)
}

/// Human readable description of an SDK error, for panics.
pub fn err_text<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (status, code) = err_status_code(e);
    format!("status={status} code={code:?} message={:?} ({})", e.message(), aws_sdk_s3::error::DisplayErrorContext(e))
}

/// Asserts that an SDK call failed with the given status and error code.
#[track_caller]
pub fn assert_sdk_err<T: std::fmt::Debug, E>(
    r: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    status: u16,
    code: &str,
) where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(v) => panic!("expected {status} {code}, got success: {v:?}"),
        Err(e) => {
            let (s, c) = err_status_code(&e);
            assert_eq!((s, c.as_str()), (status, code), "unexpected error: {}", err_text(&e));
        }
    }
}

/// Asserts that an SDK call failed with the given HTTP status (code not checked,
/// e.g. for HEAD requests which carry no body).
#[track_caller]
pub fn assert_sdk_status<T: std::fmt::Debug, E>(
    r: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    status: u16,
) where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(v) => panic!("expected HTTP {status}, got success: {v:?}"),
        Err(e) => {
            let (s, _) = err_status_code(&e);
            assert_eq!(s, status, "unexpected error: {}", err_text(&e));
        }
    }
}

/// Reads an object fully through the SDK.
pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {}", err_text(&e)));
    out.body.collect().await.expect("read object body").into_bytes().to_vec()
}

/// Puts an object through the SDK and returns its ETag.
pub async fn put_bytes(client: &Client, bucket: &str, key: &str, data: &[u8]) -> String {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(data.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {}", err_text(&e)));
    out.e_tag().expect("PUT response has an ETag").to_owned()
}

/// Whether HEAD finds the object (404 → false, other errors panic).
pub async fn object_exists(client: &Client, bucket: &str, key: &str) -> bool {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) => {
            let (s, _) = err_status_code(&e);
            assert_eq!(s, 404, "HEAD {bucket}/{key}: {}", err_text(&e));
            false
        }
    }
}

/// All keys of a bucket (recursive ListObjectsV2, following continuation tokens).
pub async fn list_all_keys(client: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100_000 {
        let out = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("list {bucket}: {}", err_text(&e)));
        keys.extend(out.contents().iter().map(|o| o.key().unwrap_or("").to_owned()));
        if out.is_truncated() == Some(true) {
            token = Some(out.next_continuation_token().expect("truncated listing has a continuation token").to_owned());
        } else {
            return keys;
        }
    }
    panic!("listing never ended");
}

// ---------------------------------------------------------------------------
// Multipart helpers
// ---------------------------------------------------------------------------

/// AWS's minimum size of every part but the last.
pub const MIB5: usize = 5 * 1024 * 1024;

/// Expected ETag of a multipart object: quoted hex MD5 of the concatenated
/// binary part MD5s, then `-N`.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Md5::new();
    for p in parts {
        all.update(Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(all.finalize()), parts.len())
}

/// A CompleteMultipartUpload body from (part number, ETag) pairs.
pub fn completed_upload(parts: &[(i32, String)]) -> aws_sdk_s3::types::CompletedMultipartUpload {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts.iter().map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(e.clone()).build()).collect(),
        ))
        .build()
}

/// Creates an upload for `key`, uploads `parts` (numbered from 1) and returns
/// (upload id, [(part number, ETag)]) without completing.
pub async fn upload_parts(client: &Client, bucket: &str, key: &str, parts: &[&[u8]]) -> (String, Vec<(i32, String)>) {
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create upload {bucket}/{key}: {}", err_text(&e)));
    let id = created.upload_id().expect("upload id").to_owned();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(p.to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload part {n} of {bucket}/{key}: {}", err_text(&e)));
        let etag = out.e_tag().expect("part ETag").to_owned();
        assert_eq!(etag, etag_of(p), "part {n} ETag is the quoted MD5 of the part");
        done.push((n, etag));
    }
    (id, done)
}

/// Uploads `parts` as a multipart object and completes it; returns the ETag.
pub async fn multipart_put(client: &Client, bucket: &str, key: &str, parts: &[&[u8]]) -> String {
    let (id, done) = upload_parts(client, bucket, key, parts).await;
    let out = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(completed_upload(&done))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete {bucket}/{key}: {}", err_text(&e)));
    out.e_tag().expect("complete ETag").to_owned()
}
