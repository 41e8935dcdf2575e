//! Bucket CORS configuration: Put/Get/DeleteBucketCors. The rules are checked and interpreted in
//! alcove-s3 (`cors`) and kept by alcove-ufs beside the bucket's tags; preflight requests and the
//! `Access-Control-*` headers of other answers are the front end's (s3s does not route `OPTIONS`).
//! This module only shapes the three actions; it may not interpret rules itself.

use alcove_s3::cors::{rules_from_config, rules_to_dto};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::{ufs, Gateway};
use crate::cluster::BucketSetting;

pub async fn put_bucket_cors(
    gw: &Gateway,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let bucket = gw.bucket(&req.input.bucket)?;
    let rules = rules_from_config(req.input.cors_configuration)?;
    ufs(bucket.set_bucket_cors(Some(rules.clone())).await)?;
    gw.share_bucket_setting(bucket.name(), BucketSetting::Cors(Some(rules))).await;
    Ok(S3Response::new(PutBucketCorsOutput::default()))
}

pub async fn get_bucket_cors(
    gw: &Gateway,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let bucket = gw.bucket(&req.input.bucket)?;
    match ufs(bucket.bucket_cors().await)? {
        Some(rules) => Ok(S3Response::new(GetBucketCorsOutput { cors_rules: Some(rules_to_dto(rules)) })),
        None => Err(s3_error!(NoSuchCORSConfiguration, "The CORS configuration does not exist")),
    }
}

pub async fn delete_bucket_cors(
    gw: &Gateway,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    let bucket = gw.bucket(&req.input.bucket)?;
    ufs(bucket.set_bucket_cors(None).await)?;
    gw.share_bucket_setting(bucket.name(), BucketSetting::Cors(None)).await;
    Ok(S3Response::new(DeleteBucketCorsOutput::default()))
}
