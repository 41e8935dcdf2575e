//! The backend of one bucket, local disk or remote, behind one set of operations: the store
//! picks the backend a mount's URI names, and its callers never ask which kind it has.
//! Multipart uploads, bucket tags and CORS rules are kept on the worker's disk for every kind (a
//! remote mount stages them in the worker's state folder). Every object operation is counted and
//! timed in the store's [`UfsStats`], per mount.

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::Stream;

use crate::backend::{ObjectReader, OpenObject, Precondition, PutChecks};
use crate::bucket_state::CorsRule;
use crate::key::ObjectKey;
use crate::list::{ListPage, ListQuery};
use crate::local::{FileStream, LocalFs};
use crate::meta::{ObjectInfo, ObjectMeta};
use crate::multipart::{parts_digest, CompletePart, CompletedUpload, ContentTap, PartInfo, UploadInfo};
use crate::remote::{RemoteFs, RemoteTuning};
use crate::stats::{UfsOp, UfsStats};
use crate::uri::UfsUri;
use crate::{UfsError, UfsResult};

/// A bucket's backend, and its figures.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    stats: Arc<UfsStats>,
}

/// Where a bucket's objects live.
#[derive(Debug, Clone)]
pub enum Backend {
    Local(LocalFs),
    Remote(RemoteFs),
}

impl Store {
    /// A store over a local directory, counting into `stats`.
    pub fn local(fs: LocalFs, stats: Arc<UfsStats>) -> Self {
        Store { backend: Backend::Local(fs), stats }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn stats(&self) -> &Arc<UfsStats> {
        &self.stats
    }

    /// Runs one operation of kind `op`, counting and timing it; errors of the under-storage count
    /// as failures, answers such as a missing key do not.
    async fn timed<T>(&self, op: UfsOp, call: impl Future<Output = UfsResult<T>>) -> UfsResult<T> {
        let started = Instant::now();
        let result = call.await;
        let failed = result.as_ref().is_err_and(UfsError::is_store_failure);
        self.stats.record(op, started.elapsed(), failed);
        result
    }

    /// The backend of the mount at `mount_path` (`/bucket`): a local directory, or a remote whose
    /// client uploads and bucket tags are staged in `staging` (created here). No request is sent
    /// to a remote.
    pub(crate) fn for_mount(
        mount_path: &str,
        ufs: UfsUri,
        folder_objects: bool,
        tuning: &RemoteTuning,
        staging: PathBuf,
    ) -> UfsResult<Self> {
        let stats = Arc::new(UfsStats::default());
        match ufs {
            UfsUri::Local(dir) => {
                if !dir.is_dir() {
                    return Err(UfsError::InvalidRequest(format!(
                        "the UFS directory {} does not exist or is not a directory",
                        dir.display()
                    )));
                }
                Ok(Store::local(LocalFs::new(dir).with_folder_objects(folder_objects), stats))
            }
            UfsUri::Remote(spec) => {
                fs::create_dir_all(&staging).map_err(|e| UfsError::io("creating the mount's staging folder", e))?;
                let staging = LocalFs::new(staging);
                let remote = RemoteFs::new(mount_path, &spec, tuning.clone(), staging, folder_objects)?;
                Ok(Store { backend: Backend::Remote(remote), stats })
            }
        }
    }

    /// Where uploads in progress and bucket settings live.
    pub fn local_state(&self) -> &LocalFs {
        match &self.backend {
            Backend::Local(fs) => fs,
            Backend::Remote(remote) => remote.staging(),
        }
    }

    pub async fn open(&self, key: &ObjectKey) -> UfsResult<OpenObject> {
        self.timed(UfsOp::Read, async {
            match &self.backend {
                Backend::Local(fs) => fs.open(key).await,
                Backend::Remote(remote) => remote.open(key).await,
            }
        })
        .await
    }

    /// A reader of the version of `key` that `info` describes, for reading spans of it later
    /// (`UfsError::Changed` once the object is another version).
    pub async fn reader(&self, key: &ObjectKey, info: &ObjectInfo) -> UfsResult<Arc<dyn ObjectReader>> {
        self.timed(UfsOp::Read, async {
            match &self.backend {
                Backend::Local(fs) => fs.reader(key, info).await,
                Backend::Remote(remote) => remote.reader(key, &info.etag),
            }
        })
        .await
    }

    pub async fn stat(&self, key: &ObjectKey) -> UfsResult<ObjectInfo> {
        self.timed(UfsOp::Stat, async {
            match &self.backend {
                Backend::Local(fs) => fs.stat(key).await,
                Backend::Remote(remote) => remote.stat(key).await,
            }
        })
        .await
    }

    /// Writes an object from a streamed body. `meta` is asked for once the body has arrived
    /// (checksums are known only then); a remote write larger than one part needs it when the
    /// first part leaves, so a trailing checksum of such a body is verified but not stored.
    pub async fn put<S, E, M>(&self, key: &ObjectKey, body: S, meta: M, checks: PutChecks) -> UfsResult<ObjectInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        M: FnOnce() -> ObjectMeta + Send + 'static,
    {
        self.timed(UfsOp::Write, async {
            match &self.backend {
                Backend::Local(fs) => fs.put(key, body, meta, checks).await,
                Backend::Remote(remote) => remote.put(key, body, meta, checks).await,
            }
        })
        .await
    }

    pub async fn update_meta<F>(&self, key: &ObjectKey, change: F) -> UfsResult<ObjectInfo>
    where
        F: FnOnce(&mut ObjectMeta) + Send + 'static,
    {
        self.timed(UfsOp::Write, async {
            match &self.backend {
                Backend::Local(fs) => fs.update_meta(key, change).await,
                Backend::Remote(remote) => remote.update_meta(key, change).await,
            }
        })
        .await
    }

    /// A copy the backend can make by itself (same remote mount, metadata kept): `None` when
    /// the bytes must be streamed through the worker instead.
    pub async fn copy_within(&self, source: &Store, from: &ObjectKey, to: &ObjectKey) -> Option<UfsResult<ObjectInfo>> {
        match (&self.backend, &source.backend) {
            (Backend::Remote(dest), Backend::Remote(src)) if dest.same_mount(src) && !from.is_folder() => {
                Some(self.timed(UfsOp::Write, dest.copy_within(from, to)).await)
            }
            _ => None,
        }
    }

    pub async fn delete(&self, key: &ObjectKey) -> UfsResult<()> {
        self.timed(UfsOp::Delete, async {
            match &self.backend {
                Backend::Local(fs) => fs.delete(key).await,
                Backend::Remote(remote) => remote.delete(key).await,
            }
        })
        .await
    }

    pub async fn list(&self, query: ListQuery) -> UfsResult<ListPage> {
        self.timed(UfsOp::List, async {
            match &self.backend {
                Backend::Local(fs) => fs.list(query).await,
                Backend::Remote(remote) => remote.list(query).await,
            }
        })
        .await
    }

    pub async fn bucket_tags(&self) -> UfsResult<Option<BTreeMap<String, String>>> {
        self.local_state().bucket_tags().await
    }

    pub async fn set_bucket_tags(&self, tags: Option<BTreeMap<String, String>>) -> UfsResult<()> {
        self.local_state().set_bucket_tags(tags).await
    }

    pub async fn bucket_cors(&self) -> UfsResult<Option<Vec<CorsRule>>> {
        self.local_state().bucket_cors().await
    }

    pub async fn set_bucket_cors(&self, rules: Option<Vec<CorsRule>>) -> UfsResult<()> {
        self.local_state().set_bucket_cors(rules).await
    }

    pub async fn create_upload(&self, key: &ObjectKey, info: UploadInfo) -> UfsResult<UploadInfo> {
        self.local_state().create_upload(key, info).await
    }

    pub async fn upload(&self, upload_id: &str, key: &str) -> UfsResult<UploadInfo> {
        self.local_state().upload(upload_id, key).await
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
        self.local_state().upload_part(upload, number, body, checks, checksum).await
    }

    pub async fn list_parts(&self, upload: &UploadInfo) -> UfsResult<Vec<PartInfo>> {
        self.local_state().list_parts(upload).await
    }

    pub async fn abort_upload(&self, upload: &UploadInfo) -> UfsResult<()> {
        self.local_state().abort_upload(upload).await
    }

    /// What a recently completed upload answered (see [`CompletedUpload`]).
    pub async fn completed_upload(&self, upload_id: &str, key: &str) -> UfsResult<Option<CompletedUpload>> {
        self.local_state().completed_upload(upload_id, key).await
    }

    pub async fn list_uploads(&self) -> UfsResult<Vec<UploadInfo>> {
        self.local_state().list_uploads().await
    }

    /// Completes an upload: on local disk the assembled file is published in place; on a remote
    /// it is streamed there as one write (the remote's own multipart upload, parts in parallel).
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
        self.timed(UfsOp::Write, async move {
            let remote = match &self.backend {
                Backend::Local(fs) => return fs.complete_upload(key, upload, chosen, precondition, tap, meta).await,
                Backend::Remote(remote) => remote,
            };
            let staging = remote.staging();
            let parts = parts_digest(chosen.iter().map(|p| (p.number, p.etag.as_str())));
            let assembled = staging.assemble_upload(upload, chosen, tap, meta).await?;
            let file =
                std::fs::File::open(&assembled.temp.0).map_err(|e| UfsError::io("reading the assembled upload", e))?;
            let body = FileStream::new(file, 0..assembled.size);
            let checks = PutChecks { expected_len: Some(assembled.size), precondition, ..Default::default() };
            let meta = assembled.meta.clone();
            let info = remote.put(key, body, move || meta, checks).await?;
            staging.finish_upload(upload, parts, &info).await?;
            Ok(info)
        })
        .await
    }
}
