//! Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging.

use std::collections::BTreeMap;

use alcove_s3::limits::{MAX_BUCKET_TAGS, MAX_OBJECT_TAGS};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::{object_key, ufs, Gateway};
use crate::cluster::BucketSetting;

fn pairs(tagging: Tagging) -> Vec<(String, String)> {
    tagging.tag_set.into_iter().map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())).collect()
}

fn tag_set(tags: BTreeMap<String, String>) -> TagSet {
    tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect()
}

pub async fn get_object_tagging(
    gw: &Gateway,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let key = object_key(&req.input.key)?;
    let info = ufs(gw.bucket(&req.input.bucket)?.stat(&key).await)?;
    Ok(S3Response::new(GetObjectTaggingOutput { tag_set: tag_set(info.meta.tags), version_id: None }))
}

pub async fn put_object_tagging(
    gw: &Gateway,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let key = object_key(&req.input.key)?;
    let bucket = gw.bucket(&req.input.bucket)?;
    let tags = gw.limits.check_tags(&pairs(req.input.tagging), MAX_OBJECT_TAGS)?;
    ufs(bucket.update_meta(&key, move |m| m.tags = tags).await)?;
    Ok(S3Response::new(PutObjectTaggingOutput::default()))
}

pub async fn delete_object_tagging(
    gw: &Gateway,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let key = object_key(&req.input.key)?;
    let bucket = gw.bucket(&req.input.bucket)?;
    ufs(bucket.update_meta(&key, |m| m.tags.clear()).await)?;
    Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
}

pub async fn get_bucket_tagging(
    gw: &Gateway,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let bucket = gw.bucket(&req.input.bucket)?;
    match ufs(bucket.bucket_tags().await)? {
        Some(tags) => Ok(S3Response::new(GetBucketTaggingOutput { tag_set: tag_set(tags) })),
        None => Err(s3_error!(NoSuchTagSet, "The TagSet does not exist.")),
    }
}

pub async fn put_bucket_tagging(
    gw: &Gateway,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let bucket = gw.bucket(&req.input.bucket)?;
    let tags = gw.limits.check_tags(&pairs(req.input.tagging), MAX_BUCKET_TAGS)?;
    ufs(bucket.set_bucket_tags(Some(tags.clone())).await)?;
    gw.share_bucket_setting(bucket.name(), BucketSetting::Tags(Some(tags))).await;
    Ok(S3Response::new(PutBucketTaggingOutput::default()))
}

pub async fn delete_bucket_tagging(
    gw: &Gateway,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    let bucket = gw.bucket(&req.input.bucket)?;
    ufs(bucket.set_bucket_tags(None).await)?;
    gw.share_bucket_setting(bucket.name(), BucketSetting::Tags(None)).await;
    Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
}
