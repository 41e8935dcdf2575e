//! The object service: the one interface the S3 gateway reads and writes objects through. It
//! resolves buckets in the mount table and serves each operation from the bucket's store, with
//! the page cache in front of the reads of cached buckets; every change made through it
//! (writes, copies, completions, tagging, deletes) drops what the cache knew of that object.
//!
//! It knows nothing of S3 or HTTP: keys arrive validated, answers are `alcove_ufs` types.

use std::collections::BTreeMap;
use std::sync::Arc;

use alcove_ufs::multipart::{CompletePart, CompletedUpload, ContentTap};
use alcove_ufs::{
    Bucket, BucketInfo, CorsRule, ListPage, ListQuery, MountTable, ObjectInfo, ObjectKey, ObjectMeta, OpenObject,
    PartInfo, Precondition, PutChecks, Store, UfsResult, UploadInfo,
};
use std::future::Future;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::Stream;

use crate::read::CachedReads;

/// Told of every change made through this worker to an object of a cached bucket, after the
/// worker's own cache forgot it: a cluster tells the key's owner, whose cache may hold the object
/// while the ring is changing.
pub trait ChangeObserver: Send + Sync {
    fn changed<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, ()>;
}

/// The objects of every bucket, read through the cache where a bucket is cached.
pub struct ObjectService {
    mounts: Arc<MountTable>,
    cache: Option<Arc<CachedReads>>,
    observer: Option<Arc<dyn ChangeObserver>>,
}

impl ObjectService {
    /// The service over `mounts`; without a cache every read goes to the stores.
    pub fn new(mounts: Arc<MountTable>, cache: Option<Arc<CachedReads>>) -> Self {
        Self { mounts, cache, observer: None }
    }

    /// The service, telling `observer` of every change to an object of a cached bucket.
    pub fn with_observer(mut self, observer: Arc<dyn ChangeObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The objects of the bucket `name`, or `NoSuchBucket`.
    pub fn bucket(&self, name: &str) -> UfsResult<BucketObjects> {
        let bucket = self.mounts.resolve(name)?;
        let cache = self.cache.clone().filter(|_| bucket.cached);
        let observer = self.observer.clone().filter(|_| cache.is_some());
        Ok(BucketObjects { bucket, cache, observer })
    }

    /// Forgets what the cache knows of `bucket/key`: another worker changed it.
    pub async fn forget(&self, bucket: &str, key: &ObjectKey) -> UfsResult<()> {
        let bucket = self.mounts.resolve(bucket)?;
        if let Some(cache) = self.cache.as_ref().filter(|_| bucket.cached) {
            cache.forget(&bucket, key).await;
        }
        Ok(())
    }

    /// The cache, if the worker has one.
    pub fn cache(&self) -> Option<&Arc<CachedReads>> {
        self.cache.as_ref()
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

/// One bucket's objects: its store, and the cache when the bucket is cached.
pub struct BucketObjects {
    bucket: Bucket,
    cache: Option<Arc<CachedReads>>,
    observer: Option<Arc<dyn ChangeObserver>>,
}

impl BucketObjects {
    pub fn name(&self) -> &str {
        &self.bucket.name
    }

    fn store(&self) -> &Store {
        &self.bucket.store
    }

    /// True when reads of this bucket go through the page cache.
    pub fn is_cached(&self) -> bool {
        self.cache.is_some()
    }

    /// Describes the object and opens its bytes (through the cache for a cached bucket).
    pub async fn open(&self, key: &ObjectKey) -> UfsResult<OpenObject> {
        match &self.cache {
            Some(cache) => cache.open(&self.bucket, key).await,
            None => self.store().open(key).await,
        }
    }

    pub async fn stat(&self, key: &ObjectKey) -> UfsResult<ObjectInfo> {
        match &self.cache {
            Some(cache) => cache.stat(&self.bucket, key).await,
            None => self.store().stat(key).await,
        }
    }

    /// Reads every page of `key` into the cache (`alcove load`): the bytes read. Nothing to do
    /// for a bucket that is not cached.
    pub async fn load(&self, key: &ObjectKey) -> UfsResult<u64> {
        match &self.cache {
            Some(cache) => cache.load(&self.bucket, key).await,
            None => Ok(0),
        }
    }

    /// Drops every cached page of `key` (`alcove free`): the pages removed.
    pub async fn free(&self, key: &ObjectKey) -> u64 {
        match &self.cache {
            Some(cache) => cache.free(&self.bucket, key).await,
            None => 0,
        }
    }

    /// Runs a change of `key`, then forgets the object's cached state, whatever the outcome (a
    /// failed write may still have replaced the object on a remote).
    async fn changing<T>(&self, key: &ObjectKey, change: impl Future<Output = UfsResult<T>>) -> UfsResult<T> {
        let result = change.await;
        self.forget_changed(key).await;
        result
    }

    async fn forget_changed(&self, key: &ObjectKey) {
        if let Some(cache) = &self.cache {
            cache.forget(&self.bucket, key).await;
        }
        if let Some(observer) = &self.observer {
            observer.changed(&self.bucket.name, &key.to_string()).await;
        }
    }

    pub async fn put<S, E, M>(&self, key: &ObjectKey, body: S, meta: M, checks: PutChecks) -> UfsResult<ObjectInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        M: FnOnce() -> ObjectMeta + Send + 'static,
    {
        self.changing(key, self.store().put(key, body, meta, checks)).await
    }

    pub async fn update_meta<F>(&self, key: &ObjectKey, change: F) -> UfsResult<ObjectInfo>
    where
        F: FnOnce(&mut ObjectMeta) + Send + 'static,
    {
        self.changing(key, self.store().update_meta(key, change)).await
    }

    /// A copy the store makes by itself (same remote mount, metadata kept), or `None` when the
    /// bytes must be streamed through the worker.
    pub async fn copy_within(
        &self,
        source: &BucketObjects,
        from: &ObjectKey,
        to: &ObjectKey,
    ) -> Option<UfsResult<ObjectInfo>> {
        let copied = self.store().copy_within(source.store(), from, to).await;
        self.forget_changed(to).await;
        copied
    }

    pub async fn delete(&self, key: &ObjectKey) -> UfsResult<()> {
        self.changing(key, self.store().delete(key)).await
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
        self.changing(key, self.store().complete_upload(key, upload, chosen, precondition, tap, meta)).await
    }
}
