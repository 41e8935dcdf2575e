//! The S3 gateway: Alcove's implementation of the `s3s::S3` trait, one module per action family
//! (as Garage lays its API out), over the object service (alcove-cache). It owns no wire format
//! (s3s does), no caching and no storage details (the object service and alcove-ufs do): it
//! validates keys, asks the object service and shapes answers.

mod attributes;
mod bucket;
mod copy;
mod cors;
mod delete;
#[cfg(test)]
mod fuzz;
mod get;
mod list;
mod multipart;
mod object_meta;
mod put;
mod tagging;

use std::sync::Arc;

use alcove_cache::{BucketObjects, ObjectService};
use alcove_s3::limits::Limits;
use alcove_s3::s3_error_from;
use alcove_ufs::{ObjectKey, UfsError, UploadInfo};
use s3s::dto::{ETag, Owner, Timestamp};
use s3s::{S3Request, S3Response, S3Result, S3};
use time::OffsetDateTime;

use crate::cluster::{BucketSetting, ClusterLink};

pub use delete::{delete_keys, error_parts};

/// The S3 gateway of one worker.
#[derive(Clone)]
pub struct Gateway {
    objects: Arc<ObjectService>,
    limits: Limits,
    /// The other workers, when this one is in a cluster.
    cluster: Option<Arc<ClusterLink>>,
}

impl Gateway {
    pub fn new(objects: Arc<ObjectService>, limits: Limits, cluster: Option<Arc<ClusterLink>>) -> Self {
        Self { objects, limits, cluster }
    }

    fn bucket(&self, name: &str) -> S3Result<BucketObjects> {
        self.objects.bucket(name).map_err(s3_error_from)
    }

    /// Tells the other workers of a bucket setting changed here.
    async fn share_bucket_setting(&self, bucket: &str, setting: BucketSetting) {
        if let Some(cluster) = &self.cluster {
            cluster.bucket_setting_changed(bucket, &setting).await;
        }
    }

    /// The multipart uploads of `bucket` in progress on every worker, in the order S3 lists them.
    async fn uploads_of(&self, bucket: &BucketObjects) -> S3Result<Vec<UploadInfo>> {
        let mut uploads = ufs(bucket.list_uploads().await)?;
        if let Some(cluster) = &self.cluster {
            uploads.extend(cluster.peer_uploads(bucket.name()).await);
            uploads.sort_by(|a, b| (&a.key, a.initiated, &a.upload_id).cmp(&(&b.key, b.initiated, &b.upload_id)));
            // Workers that share the under-storage of a local mount see each other's uploads.
            uploads.dedup_by(|a, b| a.upload_id == b.upload_id);
        }
        Ok(uploads)
    }
}

/// Validates a client's key: path safety lives in alcove-ufs, the error mapping in alcove-s3.
fn object_key(key: &str) -> S3Result<ObjectKey> {
    ObjectKey::parse(key).map_err(s3_error_from)
}

/// Versioning is never enabled, so `null` is the only version of an object; any other id names
/// nothing.
fn check_version(version_id: Option<&str>) -> S3Result<()> {
    match version_id {
        Some(v) if v != "null" => Err(s3s::s3_error!(NoSuchVersion, "The specified version does not exist.")),
        _ => Ok(()),
    }
}

fn ufs<T>(r: Result<T, UfsError>) -> S3Result<T> {
    r.map_err(s3_error_from)
}

fn etag(hex: &str) -> ETag {
    ETag::Strong(hex.to_owned())
}

fn timestamp(t: OffsetDateTime) -> Timestamp {
    // S3 reports whole seconds; a finer Last-Modified would make If-Modified-Since misbehave.
    let secs = t.unix_timestamp();
    Timestamp::from(OffsetDateTime::from_unix_timestamp(secs).unwrap_or(t))
}

/// The owner shown in listings: a single-tenant gateway has one.
fn owner() -> Owner {
    Owner { display_name: Some("alcove".into()), id: Some("alcove".into()) }
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        req: S3Request<s3s::dto::ListBucketsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListBucketsOutput>> {
        bucket::list_buckets(self, req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<s3s::dto::HeadBucketInput>,
    ) -> S3Result<S3Response<s3s::dto::HeadBucketOutput>> {
        bucket::head_bucket(self, req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<s3s::dto::CreateBucketInput>,
    ) -> S3Result<S3Response<s3s::dto::CreateBucketOutput>> {
        bucket::create_bucket(self, req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<s3s::dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteBucketOutput>> {
        bucket::delete_bucket(self, req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<s3s::dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<s3s::dto::GetBucketLocationOutput>> {
        bucket::get_bucket_location(self, req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<s3s::dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<s3s::dto::GetBucketVersioningOutput>> {
        bucket::get_bucket_versioning(self, req).await
    }

    async fn put_object(
        &self,
        req: S3Request<s3s::dto::PutObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::PutObjectOutput>> {
        put::put_object(self, req).await
    }

    async fn get_object(
        &self,
        req: S3Request<s3s::dto::GetObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::GetObjectOutput>> {
        get::get_object(self, req).await
    }

    async fn head_object(
        &self,
        req: S3Request<s3s::dto::HeadObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::HeadObjectOutput>> {
        get::head_object(self, req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<s3s::dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteObjectOutput>> {
        delete::delete_object(self, req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<s3s::dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteObjectsOutput>> {
        delete::delete_objects(self, req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<s3s::dto::ListObjectsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListObjectsOutput>> {
        list::list_objects(self, req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<s3s::dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<s3s::dto::ListObjectsV2Output>> {
        list::list_objects_v2(self, req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<s3s::dto::ListObjectVersionsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListObjectVersionsOutput>> {
        list::list_object_versions(self, req).await
    }
    async fn copy_object(
        &self,
        req: S3Request<s3s::dto::CopyObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::CopyObjectOutput>> {
        copy::copy_object(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<s3s::dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::CreateMultipartUploadOutput>> {
        multipart::create_multipart_upload(self, req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<s3s::dto::UploadPartInput>,
    ) -> S3Result<S3Response<s3s::dto::UploadPartOutput>> {
        multipart::upload_part(self, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<s3s::dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<s3s::dto::UploadPartCopyOutput>> {
        multipart::upload_part_copy(self, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<s3s::dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::CompleteMultipartUploadOutput>> {
        multipart::complete_multipart_upload(self, req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<s3s::dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::AbortMultipartUploadOutput>> {
        multipart::abort_multipart_upload(self, req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<s3s::dto::ListPartsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListPartsOutput>> {
        multipart::list_parts(self, req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<s3s::dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListMultipartUploadsOutput>> {
        multipart::list_multipart_uploads(self, req).await
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<s3s::dto::GetObjectTaggingInput>,
    ) -> S3Result<S3Response<s3s::dto::GetObjectTaggingOutput>> {
        tagging::get_object_tagging(self, req).await
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<s3s::dto::PutObjectTaggingInput>,
    ) -> S3Result<S3Response<s3s::dto::PutObjectTaggingOutput>> {
        tagging::put_object_tagging(self, req).await
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<s3s::dto::DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteObjectTaggingOutput>> {
        tagging::delete_object_tagging(self, req).await
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<s3s::dto::GetBucketTaggingInput>,
    ) -> S3Result<S3Response<s3s::dto::GetBucketTaggingOutput>> {
        tagging::get_bucket_tagging(self, req).await
    }

    async fn put_bucket_tagging(
        &self,
        req: S3Request<s3s::dto::PutBucketTaggingInput>,
    ) -> S3Result<S3Response<s3s::dto::PutBucketTaggingOutput>> {
        tagging::put_bucket_tagging(self, req).await
    }

    async fn delete_bucket_tagging(
        &self,
        req: S3Request<s3s::dto::DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteBucketTaggingOutput>> {
        tagging::delete_bucket_tagging(self, req).await
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<s3s::dto::GetObjectAttributesInput>,
    ) -> S3Result<S3Response<s3s::dto::GetObjectAttributesOutput>> {
        attributes::get_object_attributes(self, req).await
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<s3s::dto::PutBucketCorsInput>,
    ) -> S3Result<S3Response<s3s::dto::PutBucketCorsOutput>> {
        cors::put_bucket_cors(self, req).await
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<s3s::dto::GetBucketCorsInput>,
    ) -> S3Result<S3Response<s3s::dto::GetBucketCorsOutput>> {
        cors::get_bucket_cors(self, req).await
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<s3s::dto::DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteBucketCorsOutput>> {
        cors::delete_bucket_cors(self, req).await
    }
}
