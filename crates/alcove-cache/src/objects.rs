//! The object service: the one interface the S3 gateway reads and writes objects through. It
//! resolves buckets in the mount table and serves each operation from the bucket's store.
//!
//! It knows nothing of S3 or HTTP: keys arrive validated, answers are `alcove_ufs` types.

use std::collections::BTreeMap;
use std::sync::Arc;

use alcove_ufs::multipart::{CompletePart, CompletedUpload, ContentTap};
use alcove_ufs::{
    Bucket, BucketInfo, CorsRule, ListPage, ListQuery, MountTable, ObjectInfo, ObjectKey, ObjectMeta, OpenObject,
    PartInfo, Precondition, PutChecks, Store, UfsResult, UploadInfo,
};
use bytes::Bytes;
use futures::Stream;

/// The objects of every bucket.
pub struct ObjectService {
    mounts: Arc<MountTable>,
}

impl ObjectService {
    pub fn new(mounts: Arc<MountTable>) -> Self {
        Self { mounts }
    }

    /// The objects of the bucket `name`, or `NoSuchBucket`.
    pub fn bucket(&self, name: &str) -> UfsResult<BucketObjects> {
        Ok(BucketObjects { bucket: self.mounts.resolve(name)? })
    }

    /// All buckets, by name.
    pub fn buckets(&self) -> UfsResult<Vec<BucketInfo>> {
        self.mounts.buckets()
    }

    /// CreateBucket on the embedded root.
    pub fn create_bucket(&self, name: &str) -> UfsResult<()> {
        self.mounts.create_bucket(name)
    }

    /// DeleteBucket on the embedded root.
    pub fn delete_bucket(&self, name: &str) -> UfsResult<()> {
        self.mounts.delete_bucket(name)
    }
}

/// One bucket's objects.
pub struct BucketObjects {
    bucket: Bucket,
}

impl BucketObjects {
    pub fn name(&self) -> &str {
        &self.bucket.name
    }

    fn store(&self) -> &Store {
        &self.bucket.store
    }

    /// Describes the object and opens its bytes.
    pub async fn open(&self, key: &ObjectKey) -> UfsResult<OpenObject> {
        self.store().open(key).await
    }

    pub async fn stat(&self, key: &ObjectKey) -> UfsResult<ObjectInfo> {
        self.store().stat(key).await
    }

    pub async fn put<S, E, M>(&self, key: &ObjectKey, body: S, meta: M, checks: PutChecks) -> UfsResult<ObjectInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        M: FnOnce() -> ObjectMeta + Send + 'static,
    {
        self.store().put(key, body, meta, checks).await
    }

    pub async fn update_meta<F>(&self, key: &ObjectKey, change: F) -> UfsResult<ObjectInfo>
    where
        F: FnOnce(&mut ObjectMeta) + Send + 'static,
    {
        self.store().update_meta(key, change).await
    }

    /// A copy the store makes by itself (same remote mount, metadata kept), or `None` when the
    /// bytes must be streamed through the worker.
    pub async fn copy_within(
        &self,
        source: &BucketObjects,
        from: &ObjectKey,
        to: &ObjectKey,
    ) -> Option<UfsResult<ObjectInfo>> {
        self.store().copy_within(source.store(), from, to).await
    }

    pub async fn delete(&self, key: &ObjectKey) -> UfsResult<()> {
        self.store().delete(key).await
    }

    pub async fn list(&self, query: ListQuery) -> UfsResult<ListPage> {
        self.store().list(query).await
    }

    pub async fn bucket_tags(&self) -> UfsResult<Option<BTreeMap<String, String>>> {
        self.store().bucket_tags().await
    }

    pub async fn set_bucket_tags(&self, tags: Option<BTreeMap<String, String>>) -> UfsResult<()> {
        self.store().set_bucket_tags(tags).await
    }

    pub async fn bucket_cors(&self) -> UfsResult<Option<Vec<CorsRule>>> {
        self.store().bucket_cors().await
    }

    pub async fn set_bucket_cors(&self, rules: Option<Vec<CorsRule>>) -> UfsResult<()> {
        self.store().set_bucket_cors(rules).await
    }

    pub async fn create_upload(&self, key: &ObjectKey, info: UploadInfo) -> UfsResult<UploadInfo> {
        self.store().create_upload(key, info).await
    }

    pub async fn upload(&self, upload_id: &str, key: &str) -> UfsResult<UploadInfo> {
        self.store().upload(upload_id, key).await
    }

    pub async fn upload_part<S, E, C>(
        &self,
        upload: &UploadInfo,
        number: u32,
        body: S,
        checks: PutChecks,
        checksum: C,
    ) -> UfsResult<PartInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        C: FnOnce() -> Option<String> + Send + 'static,
    {
        self.store().upload_part(upload, number, body, checks, checksum).await
    }

    pub async fn list_parts(&self, upload: &UploadInfo) -> UfsResult<Vec<PartInfo>> {
        self.store().list_parts(upload).await
    }

    pub async fn abort_upload(&self, upload: &UploadInfo) -> UfsResult<()> {
        self.store().abort_upload(upload).await
    }

    pub async fn list_uploads(&self) -> UfsResult<Vec<UploadInfo>> {
        self.store().list_uploads().await
    }

    pub async fn completed_upload(&self, upload_id: &str, key: &str) -> UfsResult<Option<CompletedUpload>> {
        self.store().completed_upload(upload_id, key).await
    }

    pub async fn complete_upload<M>(
        &self,
        key: &ObjectKey,
        upload: &UploadInfo,
        chosen: Vec<CompletePart>,
        precondition: Option<Precondition>,
        tap: Option<ContentTap>,
        meta: M,
    ) -> UfsResult<ObjectInfo>
    where
        M: FnOnce(&[PartInfo]) -> UfsResult<ObjectMeta> + Send + 'static,
    {
        self.store().complete_upload(key, upload, chosen, precondition, tap, meta).await
    }
}
