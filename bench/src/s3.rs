//! S3 operations through `aws-sdk-s3` (signed, or anonymous with `--unsigned`).

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

use crate::content::{Expected, Verifier};
use crate::driver::Outcome;

/// How the client is built.
pub struct ClientOptions<'a> {
    pub endpoint: &'a str,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    /// Anonymous requests: no `Authorization`, no signature.
    pub unsigned: bool,
    /// Only compute/validate checksums when an operation requires them
    /// (otherwise the SDK's defaults: CRC32 on PUT, validation on GET).
    pub checksums_when_required: bool,
}

/// Path-style client for a custom endpoint, no retries (errors surface),
/// plain HTTP connector (no TLS).
pub fn client(o: &ClientOptions<'_>) -> Client {
    let mut b = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(o.region.to_owned()))
        .endpoint_url(o.endpoint)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http());
    if o.unsigned {
        // No credentials provider: SigV4 has no identity, so the no-auth
        // scheme is chosen and requests go out without Authorization.
        b = b.allow_no_auth();
    } else {
        b = b.credentials_provider(Credentials::new(o.access_key, o.secret_key, None, None, "alcove-bench"));
    }
    if o.checksums_when_required {
        b = b
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    }
    Client::from_conf(b.build())
}

fn sdk_err<E: std::error::Error + 'static>(what: &str, key: &str, e: E) -> String {
    format!("{what} {key}: {}", DisplayErrorContext(e))
}

/// Creates the bucket; an existing one is fine.
pub async fn ensure_bucket(client: &Client, bucket: &str) -> Result<(), String> {
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => match e.code() {
            Some("BucketAlreadyOwnedByYou") | Some("BucketAlreadyExists") => Ok(()),
            _ => Err(sdk_err("CreateBucket", bucket, e)),
        },
    }
}

/// GET of a whole object, streamed through the verifier.
pub async fn get(client: &Client, bucket: &str, key: &str, expected: &Expected) -> Outcome {
    let out = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) => return Outcome::error(sdk_err("GetObject", key, e)),
    };
    if let Some(len) = out.content_length() {
        if len < 0 || len as u64 != expected.len {
            return Outcome::error(format!("GetObject {key}: Content-Length {len} != expected {}", expected.len));
        }
    }
    let mut body = out.body;
    let mut v = Verifier::new(expected);
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => v.update(&chunk),
            Ok(None) => break,
            Err(e) => return Outcome::error(format!("GetObject {key}: body after {} bytes: {e}", v.len())),
        }
    }
    match v.finish() {
        Ok(n) => Outcome::verified(n),
        Err(msg) => Outcome::error(format!("GetObject {key}: {msg}")),
    }
}

/// HEAD: Content-Length and ETag (MD5) must match.
pub async fn head(client: &Client, bucket: &str, key: &str, expected: &Expected) -> Outcome {
    let out = match client.head_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) => return Outcome::error(sdk_err("HeadObject", key, e)),
    };
    let len = out.content_length().unwrap_or(-1);
    if len < 0 || len as u64 != expected.len {
        return Outcome::error(format!("HeadObject {key}: Content-Length {len} != expected {}", expected.len));
    }
    match out.e_tag() {
        Some(etag) if expected.etag_matches(etag) => Outcome::verified(0),
        other => Outcome::error(format!("HeadObject {key}: ETag {other:?} != expected \"{}\"", expected.md5_hex)),
    }
}

/// PUT of a known body: the returned ETag must be its MD5.
pub async fn put(client: &Client, bucket: &str, key: &str, body: Bytes, expected: &Expected) -> Outcome {
    let len = body.len() as u64;
    let out = match client.put_object().bucket(bucket).key(key).body(ByteStream::from(body)).send().await {
        Ok(o) => o,
        Err(e) => return Outcome::error(sdk_err("PutObject", key, e)),
    };
    match out.e_tag() {
        Some(etag) if expected.etag_matches(etag) => Outcome::verified(len),
        other => Outcome::error(format!("PutObject {key}: ETag {other:?} != expected \"{}\"", expected.md5_hex)),
    }
}

/// One full listing's result.
pub struct Listing {
    /// Object keys seen (folder entries `dir/` not included).
    pub keys: u64,
    /// Folder entries (`dir/`, 0 bytes) seen; Alcove lists sub-directories.
    pub folders: u64,
    /// Pages requested.
    pub pages: u64,
}

/// What a listing must show.
pub struct ListCheck {
    pub prefix: String,
    /// Every object's size (folder entries excepted).
    pub size: Option<u64>,
    /// Number of objects expected in total.
    pub objects: Option<u64>,
}

/// Lists the whole bucket (under the prefix) page by page with
/// ListObjectsV2, checking order, prefix and sizes. `on_page` is called with
/// each page's latency and its verification result. The page loop is bounded
/// by `max_pages`.
pub async fn list_all(
    client: &Client,
    bucket: &str,
    max_keys: i32,
    check: &ListCheck,
    max_pages: u64,
    mut on_page: impl FnMut(std::time::Duration, Result<(), String>),
) -> Result<Listing, String> {
    let mut token: Option<String> = None;
    let mut last: Option<String> = None;
    let mut listing = Listing { keys: 0, folders: 0, pages: 0 };
    loop {
        if listing.pages >= max_pages {
            return Err(format!("listing not finished after {max_pages} pages"));
        }
        let began = std::time::Instant::now();
        let mut req = client.list_objects_v2().bucket(bucket).max_keys(max_keys);
        if !check.prefix.is_empty() {
            req = req.prefix(&check.prefix);
        }
        if let Some(t) = &token {
            req = req.continuation_token(t);
        }
        let out = req.send().await;
        let elapsed = began.elapsed();
        listing.pages += 1;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                let msg = sdk_err("ListObjectsV2", bucket, e);
                on_page(elapsed, Err(msg.clone()));
                return Err(msg);
            }
        };
        let mut page_check = Ok(());
        for obj in out.contents() {
            let key = obj.key().unwrap_or_default();
            if let Some(prev) = &last {
                if key <= prev.as_str() {
                    page_check = Err(format!("ListObjectsV2: key {key:?} not after {prev:?}"));
                }
            }
            if !key.starts_with(&check.prefix) {
                page_check = Err(format!("ListObjectsV2: key {key:?} outside prefix {:?}", check.prefix));
            }
            if key.ends_with('/') {
                listing.folders += 1;
            } else {
                listing.keys += 1;
                if let Some(size) = check.size {
                    let got = obj.size().unwrap_or(-1);
                    if got < 0 || got as u64 != size {
                        page_check = Err(format!("ListObjectsV2: {key:?} has size {got}, expected {size}"));
                    }
                }
            }
            last = Some(key.to_owned());
        }
        let truncated = out.is_truncated().unwrap_or(false);
        token = out.next_continuation_token().map(str::to_owned);
        if truncated && token.is_none() {
            page_check = Err("ListObjectsV2: truncated page without NextContinuationToken".to_owned());
        }
        let failed = page_check.clone().err();
        on_page(elapsed, page_check);
        if let Some(msg) = failed {
            return Err(msg);
        }
        if !truncated {
            break;
        }
    }
    if let Some(n) = check.objects {
        if listing.keys != n {
            return Err(format!("ListObjectsV2: listed {} objects, expected {n}", listing.keys));
        }
    }
    Ok(listing)
}
