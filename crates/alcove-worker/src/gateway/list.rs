//! ListObjects (v1), ListObjectsV2 and ListObjectVersions: one page builder (alcove-ufs's
//! collector over the UFS walk), three shapes of answer, and `encoding-type=url`.

use alcove_s3::urlencode;
use alcove_ufs::{ListItem, ListPage, ListQuery, ObjectInfo};
use base64::Engine as _;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::{etag, owner, timestamp, ufs, Gateway};

const DEFAULT_MAX_KEYS: i32 = 1000;

/// The parameters all three listings share.
struct Listing<'a> {
    bucket: &'a str,
    prefix: Option<&'a str>,
    delimiter: Option<&'a str>,
    start_after: Option<String>,
    max_keys: Option<i32>,
    encoding: Option<&'a EncodingType>,
}

/// A listed page, with names already encoded as the client asked.
struct Page {
    objects: Vec<(String, ObjectInfo)>,
    prefixes: Vec<String>,
    /// The raw (unencoded) name to resume after, when truncated.
    next: Option<String>,
    url: bool,
    max_keys: i32,
}

impl Page {
    fn encode(&self, name: &str) -> String {
        if self.url {
            urlencode::encode(name)
        } else {
            name.to_owned()
        }
    }

    fn encode_opt(&self, name: Option<&str>) -> Option<String> {
        name.map(|n| self.encode(n))
    }

    fn common_prefixes(&self) -> Option<Vec<CommonPrefix>> {
        (!self.prefixes.is_empty())
            .then(|| self.prefixes.iter().map(|p| CommonPrefix { prefix: Some(self.encode(p)) }).collect())
    }

    fn encoding_type(&self) -> Option<EncodingType> {
        self.url.then(|| EncodingType::from_static(EncodingType::URL))
    }

    fn count(&self) -> i32 {
        (self.objects.len() + self.prefixes.len()) as i32
    }
}

impl Listing<'_> {
    async fn run(self, gw: &Gateway) -> S3Result<Page> {
        let url = match self.encoding.map(EncodingType::as_str) {
            None => false,
            Some(EncodingType::URL) => true,
            Some(_) => return Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request")),
        };
        let max_keys = self.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
        if max_keys < 0 {
            return Err(s3_error!(InvalidArgument, "max-keys must be a non-negative integer."));
        }
        let max_keys = max_keys.min(DEFAULT_MAX_KEYS);
        let bucket = gw.bucket(self.bucket)?;
        let query = ListQuery {
            prefix: self.prefix.unwrap_or_default().to_owned(),
            delimiter: self.delimiter.filter(|d| !d.is_empty()).map(str::to_owned),
            start_after: self.start_after,
            max_keys: max_keys as usize,
        };
        let ListPage { items, truncated } = ufs(bucket.list(query).await)?;
        let next = truncated.then(|| items.last().map(|i| i.name().to_owned())).flatten();
        let mut page = Page { objects: Vec::new(), prefixes: Vec::new(), next, url, max_keys };
        for item in items {
            match item {
                ListItem::Object { key, info } => page.objects.push((key, *info)),
                ListItem::CommonPrefix(p) => page.prefixes.push(p),
            }
        }
        Ok(page)
    }
}

fn object(page: &Page, key: &str, info: &ObjectInfo, with_owner: bool) -> Object {
    Object {
        key: Some(page.encode(key)),
        size: Some(info.size as i64),
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified)),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        owner: with_owner.then(owner),
        ..Default::default()
    }
}

pub async fn list_objects(gw: &Gateway, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = &req.input;
    let page = Listing {
        bucket: &input.bucket,
        prefix: input.prefix.as_deref(),
        delimiter: input.delimiter.as_deref(),
        start_after: input.marker.clone().filter(|m| !m.is_empty()),
        max_keys: input.max_keys,
        encoding: input.encoding_type.as_ref(),
    }
    .run(gw)
    .await?;
    let contents = page.objects.iter().map(|(k, i)| object(&page, k, i, true)).collect();
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket.clone()),
        prefix: Some(page.encode(input.prefix.as_deref().unwrap_or_default())),
        marker: Some(page.encode(input.marker.as_deref().unwrap_or_default())),
        delimiter: page.encode_opt(input.delimiter.as_deref()),
        max_keys: Some(page.max_keys),
        is_truncated: Some(page.next.is_some()),
        next_marker: page.encode_opt(page.next.as_deref()),
        common_prefixes: page.common_prefixes(),
        encoding_type: page.encoding_type(),
        contents: Some(contents),
        ..Default::default()
    }))
}

/// V2 continuation tokens are opaque to clients: the resume key, base64url-encoded.
fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_token(token: &str) -> S3Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

pub async fn list_objects_v2(
    gw: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = &req.input;
    let resume = match input.continuation_token.as_deref() {
        Some(token) => Some(decode_token(token)?),
        None => input.start_after.clone().filter(|s| !s.is_empty()),
    };
    let page = Listing {
        bucket: &input.bucket,
        prefix: input.prefix.as_deref(),
        delimiter: input.delimiter.as_deref(),
        start_after: resume,
        max_keys: input.max_keys,
        encoding: input.encoding_type.as_ref(),
    }
    .run(gw)
    .await?;
    let with_owner = input.fetch_owner.unwrap_or(false);
    let contents = page.objects.iter().map(|(k, i)| object(&page, k, i, with_owner)).collect();
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket.clone()),
        prefix: Some(page.encode(input.prefix.as_deref().unwrap_or_default())),
        delimiter: page.encode_opt(input.delimiter.as_deref()),
        max_keys: Some(page.max_keys),
        key_count: Some(page.count()),
        continuation_token: input.continuation_token.clone(),
        next_continuation_token: page.next.as_deref().map(encode_token),
        start_after: page.encode_opt(input.start_after.as_deref()),
        is_truncated: Some(page.next.is_some()),
        common_prefixes: page.common_prefixes(),
        encoding_type: page.encoding_type(),
        contents: Some(contents),
        ..Default::default()
    }))
}

/// A bucket that never had versioning: each object is its one version, `null`.
pub async fn list_object_versions(
    gw: &Gateway,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let input = &req.input;
    let page = Listing {
        bucket: &input.bucket,
        prefix: input.prefix.as_deref(),
        delimiter: input.delimiter.as_deref(),
        start_after: input.key_marker.clone().filter(|m| !m.is_empty()),
        max_keys: input.max_keys,
        encoding: input.encoding_type.as_ref(),
    }
    .run(gw)
    .await?;
    let versions = page
        .objects
        .iter()
        .map(|(key, info)| ObjectVersion {
            key: Some(page.encode(key)),
            version_id: Some("null".into()),
            is_latest: Some(true),
            size: Some(info.size as i64),
            e_tag: Some(etag(&info.etag)),
            last_modified: Some(timestamp(info.last_modified)),
            owner: Some(owner()),
            storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
            ..Default::default()
        })
        .collect();
    let next_is_object = page.next.as_deref().is_some_and(|n| page.objects.last().is_some_and(|(k, _)| k == n));
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket.clone()),
        prefix: Some(page.encode(input.prefix.as_deref().unwrap_or_default())),
        delimiter: page.encode_opt(input.delimiter.as_deref()),
        key_marker: Some(page.encode(input.key_marker.as_deref().unwrap_or_default())),
        version_id_marker: Some(input.version_id_marker.clone().unwrap_or_default()),
        max_keys: Some(page.max_keys),
        is_truncated: Some(page.next.is_some()),
        next_key_marker: page.encode_opt(page.next.as_deref()),
        next_version_id_marker: next_is_object.then(|| "null".to_owned()),
        common_prefixes: page.common_prefixes(),
        encoding_type: page.encoding_type(),
        versions: Some(versions),
        ..Default::default()
    }))
}
