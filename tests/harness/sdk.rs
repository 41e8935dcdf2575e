//! Steps through the aws-sdk-s3 client: error inspection (`or_panic`,
//! `assert_sdk_err`), objects (whole reads and writes, requests to add
//! headers to, checksum-mode reads, listings), tags, and multipart uploads
//! (the [`Upload`] every step of an upload goes through).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::abort_multipart_upload::builders::AbortMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::complete_multipart_upload::builders::CompleteMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::list_parts::builders::ListPartsFluentBuilder;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::operation::upload_part::builders::UploadPartFluentBuilder;
use aws_sdk_s3::operation::upload_part_copy::builders::UploadPartCopyFluentBuilder;
use aws_sdk_s3::types::{ChecksumMode, CompletedMultipartUpload, CompletedPart, Tag};
use aws_sdk_s3::Client;
use md5::{Digest as _, Md5};

use crate::{aws_uri_encode, etag_of};

// ---------------------------------------------------------------------------
// SDK results and errors
// ---------------------------------------------------------------------------

/// What an SDK call's `send().await` returns.
pub type SdkResult<T, E> = Result<T, SdkError<E, HttpResponse>>;

/// (HTTP status, S3 error code) of an SDK error. Status 0 when there was no response.
pub fn err_status_code<E>(e: &SdkError<E, HttpResponse>) -> (u16, String)
where
    E: ProvideErrorMetadata,
{
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = e.code().unwrap_or("").to_owned();
    (status, code)
}

/// Human readable description of an SDK error, for panics.
pub fn err_text<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (status, code) = err_status_code(e);
    format!("status={status} code={code:?} message={:?} ({})", e.message(), aws_sdk_s3::error::DisplayErrorContext(e))
}

/// `.or_panic("what")` on the result of an SDK call: its output, or a panic
/// naming the step and describing the error (status, code, message).
pub trait OrPanic<T> {
    /// The output of a successful call; panics with `what` and the error otherwise.
    fn or_panic(self, what: &str) -> T;
}

impl<T, E> OrPanic<T> for SdkResult<T, E>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    #[track_caller]
    fn or_panic(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{what}: {}", err_text(&e)),
        }
    }
}

/// The error of a call that was expected to fail with `expected`; panics on success.
#[track_caller]
fn expect_failure<T: std::fmt::Debug, E>(r: SdkResult<T, E>, expected: &str) -> SdkError<E, HttpResponse> {
    match r {
        Ok(v) => panic!("expected {expected}, got success: {v:?}"),
        Err(e) => e,
    }
}

/// Asserts that an SDK call failed with the given status and error code.
#[track_caller]
pub fn assert_sdk_err<T: std::fmt::Debug, E>(r: SdkResult<T, E>, status: u16, code: &str)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let e = expect_failure(r, &format!("{status} {code}"));
    let (s, c) = err_status_code(&e);
    assert_eq!((s, c.as_str()), (status, code), "unexpected error: {}", err_text(&e));
}

/// Asserts that an SDK call failed with the given HTTP status (code not checked,
/// e.g. for HEAD requests which carry no body).
#[track_caller]
pub fn assert_sdk_status<T: std::fmt::Debug, E>(r: SdkResult<T, E>, status: u16)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let e = expect_failure(r, &format!("HTTP {status}"));
    let (s, _) = err_status_code(&e);
    assert_eq!(s, status, "unexpected error: {}", err_text(&e));
}

// ---------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------

/// A PutObject request for `bucket/key` with `data` as its body: add headers,
/// then `.send()`.
pub fn put_request(client: &Client, bucket: &str, key: &str, data: &[u8]) -> PutObjectFluentBuilder {
    client.put_object().bucket(bucket).key(key).body(data.to_vec().into())
}

/// Puts an object through the SDK and returns its ETag.
pub async fn put_bytes(client: &Client, bucket: &str, key: &str, data: &[u8]) -> String {
    let out = put_request(client, bucket, key, data).send().await.or_panic(&format!("put {bucket}/{key}"));
    out.e_tag().expect("PUT response has an ETag").to_owned()
}

/// Reads an object fully through the SDK.
pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client.get_object().bucket(bucket).key(key).send().await.or_panic(&format!("get {bucket}/{key}"));
    out.body.collect().await.expect("read object body").into_bytes().to_vec()
}

/// HeadObject with `x-amz-checksum-mode: ENABLED`, so the stored checksum is returned.
pub async fn head_with_checksums(client: &Client, bucket: &str, key: &str) -> HeadObjectOutput {
    let req = client.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled);
    req.send().await.or_panic(&format!("HEAD {bucket}/{key} with checksum mode"))
}

/// GetObject with `x-amz-checksum-mode: ENABLED`, so the stored checksum is returned
/// (and the SDK checks the body against it).
pub async fn get_with_checksums(client: &Client, bucket: &str, key: &str) -> GetObjectOutput {
    let req = client.get_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled);
    req.send().await.or_panic(&format!("GET {bucket}/{key} with checksum mode"))
}

/// Last-Modified of an object (from HEAD), in unix seconds.
pub async fn last_modified_secs(client: &Client, bucket: &str, key: &str) -> i64 {
    let head = client.head_object().bucket(bucket).key(key).send().await.or_panic(&format!("HEAD {bucket}/{key}"));
    head.last_modified().expect("HEAD response has Last-Modified").secs()
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

/// `bucket/key` with the key URL-encoded, as `x-amz-copy-source` wants it.
pub fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", aws_uri_encode(key, true))
}

/// All keys of a bucket (recursive ListObjectsV2, following continuation tokens).
pub async fn list_all_keys(client: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100_000 {
        let req = client.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token.clone());
        let out = req.send().await.or_panic(&format!("list {bucket}"));
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
// Tags
// ---------------------------------------------------------------------------

/// (key, value) pairs of a tag set, sorted.
fn sorted_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tags.iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    v.sort();
    v
}

/// Owned, sorted (key, value) pairs, to compare with [`object_tags`] and [`bucket_tags`].
pub fn tag_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    v.sort();
    v
}

/// An object's tags (GetObjectTagging), sorted.
pub async fn object_tags(client: &Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let req = client.get_object_tagging().bucket(bucket).key(key);
    sorted_pairs(req.send().await.or_panic(&format!("GetObjectTagging {bucket}/{key}")).tag_set())
}

/// A bucket's tags (GetBucketTagging), sorted.
pub async fn bucket_tags(client: &Client, bucket: &str) -> Vec<(String, String)> {
    let req = client.get_bucket_tagging().bucket(bucket);
    sorted_pairs(req.send().await.or_panic(&format!("GetBucketTagging {bucket}")).tag_set())
}

// ---------------------------------------------------------------------------
// Multipart uploads
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
pub fn completed_upload(parts: &[(i32, String)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts.iter().map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(e.clone()).build()).collect(),
        ))
        .build()
}

/// A CreateMultipartUpload request for `bucket/key`: add headers, send it,
/// then name the upload with [`Upload::new`].
pub fn create_upload_request(client: &Client, bucket: &str, key: &str) -> CreateMultipartUploadFluentBuilder {
    client.create_multipart_upload().bucket(bucket).key(key)
}

/// One multipart upload: the client, bucket, key and upload id that every
/// step of it names.
#[derive(Clone)]
pub struct Upload {
    /// Client the steps are sent with.
    pub client: Client,
    /// Bucket of the upload.
    pub bucket: String,
    /// Key of the upload.
    pub key: String,
    /// Upload id.
    pub id: String,
}

impl Upload {
    /// Starts an upload of `bucket/key` with no extra headers.
    pub async fn create(client: &Client, bucket: &str, key: &str) -> Upload {
        let created =
            create_upload_request(client, bucket, key).send().await.or_panic(&format!("create upload {bucket}/{key}"));
        Upload::new(client, bucket, key, created.upload_id().expect("upload id"))
    }

    /// Upload `id` of `bucket/key`, as named by the caller (it may also be an
    /// unknown id, or the id of an upload of another key).
    pub fn new(client: &Client, bucket: &str, key: &str, id: &str) -> Upload {
        Upload { client: client.clone(), bucket: bucket.to_owned(), key: key.to_owned(), id: id.to_owned() }
    }

    /// An UploadPart request for part `n` with `data` as its body: add
    /// headers, then `.send()`.
    pub fn part_request(&self, n: i32, data: &[u8]) -> UploadPartFluentBuilder {
        let req = self.client.upload_part().bucket(&self.bucket).key(&self.key).upload_id(&self.id);
        req.part_number(n).body(data.to_vec().into())
    }

    /// Uploads part `n` and returns its ETag.
    pub async fn part(&self, n: i32, data: &[u8]) -> String {
        let out = self.part_request(n, data).send().await.or_panic(&format!("part {n} of {}", self.key));
        out.e_tag().expect("part ETag").to_owned()
    }

    /// An UploadPartCopy request for part `n` from `source` (`bucket/key`,
    /// see [`copy_source`]): add headers, then `.send()`.
    pub fn part_copy_request(&self, n: i32, source: &str) -> UploadPartCopyFluentBuilder {
        let req = self.client.upload_part_copy().bucket(&self.bucket).key(&self.key).upload_id(&self.id);
        req.part_number(n).copy_source(source)
    }

    /// A ListParts request: add paging, then `.send()`.
    pub fn list_parts_request(&self) -> ListPartsFluentBuilder {
        self.client.list_parts().bucket(&self.bucket).key(&self.key).upload_id(&self.id)
    }

    /// Part numbers ListParts shows, from a single, complete page.
    pub async fn listed_part_numbers(&self) -> Vec<i32> {
        let out = self.list_parts_request().send().await.or_panic("list parts");
        assert_ne!(out.is_truncated(), Some(true));
        out.parts().iter().map(|p| p.part_number().expect("part number")).collect()
    }

    /// A CompleteMultipartUpload request naming `parts` (number, ETag): add
    /// conditions, then `.send()`.
    pub fn complete_request(&self, parts: &[(i32, String)]) -> CompleteMultipartUploadFluentBuilder {
        self.complete_request_with(completed_upload(parts))
    }

    /// A CompleteMultipartUpload request with `body` as its part list (for
    /// parts that name checksums, or no part list at all).
    pub fn complete_request_with(&self, body: CompletedMultipartUpload) -> CompleteMultipartUploadFluentBuilder {
        let req = self.client.complete_multipart_upload().bucket(&self.bucket).key(&self.key).upload_id(&self.id);
        req.multipart_upload(body)
    }

    /// Completes the upload with `parts` (number, ETag).
    pub async fn complete(&self, parts: &[(i32, String)]) -> CompleteMultipartUploadOutput {
        self.complete_request(parts).send().await.or_panic(&format!("complete {}/{}", self.bucket, self.key))
    }

    /// An AbortMultipartUpload request: `.send()` it.
    pub fn abort_request(&self) -> AbortMultipartUploadFluentBuilder {
        self.client.abort_multipart_upload().bucket(&self.bucket).key(&self.key).upload_id(&self.id)
    }

    /// Aborts the upload.
    pub async fn abort(&self) {
        self.abort_request().send().await.or_panic(&format!("abort {}/{}", self.bucket, self.key));
    }
}

/// Creates an upload for `key`, uploads `parts` (numbered from 1, each ETag
/// checked) and returns the upload with its [(part number, ETag)], not completed.
pub async fn upload_parts(client: &Client, bucket: &str, key: &str, parts: &[&[u8]]) -> (Upload, Vec<(i32, String)>) {
    let upload = Upload::create(client, bucket, key).await;
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let etag = upload.part(n, p).await;
        assert_eq!(etag, etag_of(p), "part {n} ETag is the quoted MD5 of the part");
        done.push((n, etag));
    }
    (upload, done)
}

/// Uploads `parts` as a multipart object and completes it; returns the ETag.
pub async fn multipart_put(client: &Client, bucket: &str, key: &str, parts: &[&[u8]]) -> String {
    let (upload, done) = upload_parts(client, bucket, key, parts).await;
    upload.complete(&done).await.e_tag().expect("complete ETag").to_owned()
}
