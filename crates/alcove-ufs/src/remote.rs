//! Remote under-storage (S3, GCS, Azure Blob / ADLS, HDFS, WebHDFS) through Apache OpenDAL.
//!
//! Keys map one to one onto the remote's paths under the mount's root, so objects written by
//! others are read and listed like ours. What S3 describes an object with travels as the remote's
//! own metadata: Content-Type, -Encoding, -Disposition and Cache-Control natively, `x-amz-meta-*`
//! as the remote's user metadata, and what OpenDAL has no field for (tags, Content-Language,
//! Expires, part sizes, the checksum of a completed upload and, room permitting, its parts'
//! checksums) as user metadata named `alcove-*`.
//! Changing the metadata of an existing object (tagging, a copy onto itself) rewrites it.
//! A content header OpenDAL cannot set on a given remote (Azure: Content-Encoding and
//! -Disposition; GCS: Content-Disposition) travels as `alcove-*` user metadata too, and Azure's
//! rule that metadata names are C# identifiers is met by escaping every other byte.
//!
//! Writes stream to the remote: bodies are cut into `part_size` chunks and sent as the remote's
//! multipart upload, `concurrent` parts at a time, with a worker-wide bound on part buffers. A
//! write that fails (bad digest, broken body, remote error) is aborted, so the remote keeps what
//! it had. Multipart uploads of clients are staged on the worker's disk (the same code as local
//! mounts) and the completed object is then written to the remote in one streamed write.
//!
//! Remote failures become the errors a client can act on: unreachable or slow (every request
//! has the mount's timeout) is `Unavailable`, throttling is `SlowDown`, refused credentials are
//! reported once in the log with the mount's name. This module may not parse S3 requests.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt as _, Stream, StreamExt, TryStreamExt};
use opendal::layers::TimeoutLayer;
use opendal::options::{ListOptions, ReaderOptions, WriteOptions};
use opendal::{services, ErrorKind, Operator};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::backend::{drain_empty_body, BodyCheck, ByteStream, ObjectReader, OpenObject, Precondition, PutChecks};
use crate::key::ObjectKey;
use crate::list::{implied_folders, Collector, Flow, ListPage, ListQuery};
use crate::local::LocalFs;
use crate::meta::{ObjectInfo, ObjectMeta, StoredChecksum, EMPTY_ETAG};
use crate::uri::{RemoteKind, RemoteSpec};
use crate::{UfsError, UfsResult};

/// Reserved user-metadata names (after `x-amz-meta-`) for what has no native field.
const META_TAGS: &str = "alcove-tagging";
const META_LANGUAGE: &str = "alcove-content-language";
const META_EXPIRES: &str = "alcove-expires";
const META_CHECKSUM: &str = "alcove-checksum";
const META_PARTS: &str = "alcove-parts";
const META_CONTENT_TYPE: &str = "alcove-content-type";
const META_CONTENT_ENCODING: &str = "alcove-content-encoding";
const META_CONTENT_DISPOSITION: &str = "alcove-content-disposition";
const META_CACHE_CONTROL: &str = "alcove-cache-control";
const META_PART_CHECKSUMS: &str = "alcove-part-checksums";
/// S3's budget for user metadata (names and values). Part checksums are optional extras (only
/// GetObjectAttributes lists them), so they are kept only when they fit in it after everything
/// else: a large upload must not fail to complete for their sake.
const USER_METADATA_BUDGET: usize = 2048;
const RESERVED_PREFIX: &str = "alcove-";

/// What the remotes answer when the bucket (container, file system) is missing: S3's, Azure
/// Blob's and ADLS's error codes, GCS's message.
const BUCKET_MISSING: &[&str] =
    &["\"NoSuchBucket\"", "\"ContainerNotFound\"", "\"FilesystemNotFound\"", "The specified bucket does not exist"];

/// Bytes asked of the remote per read request of a streamed GET.
const READ_CHUNK: usize = 8 << 20;
/// Keys rolled into one common prefix before the listing skips the rest of that subtree with a
/// new request (small subtrees are cheaper to read through than to skip).
const SKIP_SUBTREE_AFTER: usize = 64;

/// How writes to remote mounts are cut and parallelised (`ufs.*` in the config).
#[derive(Debug, Clone)]
pub struct RemoteTuning {
    /// Size of each part of a streamed write (and of the buffers that hold them).
    pub part_size: usize,
    /// Parts of one write in flight at a time.
    pub concurrent: usize,
    /// Part buffers the whole worker may hold (`ufs.s3.upload_buffers`).
    buffers: Arc<Semaphore>,
    buffer_count: usize,
}

impl RemoteTuning {
    /// `multipart_async` off sends one part at a time; on, up to `upload_threads` per write.
    pub fn new(multipart_async: bool, upload_threads: usize, upload_buffers: usize, part_size: usize) -> Self {
        let buffer_count = upload_buffers.max(1);
        let concurrent = if multipart_async { upload_threads.clamp(1, buffer_count) } else { 1 };
        Self { part_size, concurrent, buffers: Arc::new(Semaphore::new(buffer_count)), buffer_count }
    }

    /// Buffers one write holds: the part being filled plus those in flight.
    fn buffers_per_write(&self) -> u32 {
        (self.concurrent + 1).min(self.buffer_count) as u32
    }
}

impl Default for RemoteTuning {
    fn default() -> Self {
        Self::new(true, 20, 64, 8 << 20)
    }
}

/// What a remote can keep and list the way S3 does, from OpenDAL's capabilities of its service.
#[derive(Debug, Clone, Copy)]
struct Traits {
    /// Content headers OpenDAL can set on the remote object; the others travel as `alcove-*`.
    content_type: bool,
    content_encoding: bool,
    content_disposition: bool,
    cache_control: bool,
    /// A listing can start after a key; otherwise it is read from the folder's start.
    start_after: bool,
    /// A write can be conditional on the object's ETag, or else on its version (GCS).
    if_match: bool,
    if_version_match: bool,
    /// User-metadata names must be C# identifiers (Azure).
    identifier_names: bool,
}

impl Traits {
    fn of(kind: RemoteKind, cap: &opendal::Capability) -> Self {
        Self {
            content_type: cap.write_with_content_type,
            content_encoding: cap.write_with_content_encoding,
            content_disposition: cap.write_with_content_disposition,
            cache_control: cap.write_with_cache_control,
            start_after: cap.list_with_start_after,
            if_match: cap.write_with_if_match,
            if_version_match: cap.write_with_if_version_match,
            identifier_names: matches!(kind, RemoteKind::Azblob | RemoteKind::Azdls),
        }
    }
}

/// One remote mount.
#[derive(Clone)]
pub struct RemoteFs {
    inner: Arc<Inner>,
}

struct Inner {
    op: Operator,
    kind: RemoteKind,
    /// What the remote can store and list the way S3 does.
    traits: Traits,
    /// `/bucket`, for messages and the log.
    mount: String,
    tuning: RemoteTuning,
    /// Multipart uploads and bucket tags live on the worker's disk.
    staging: LocalFs,
    denied_reported: AtomicBool,
    /// List (and describe) implicit folders as 0-byte `dir/` objects.
    folder_objects: bool,
}

impl std::fmt::Debug for RemoteFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFs").field("mount", &self.inner.mount).field("kind", &self.inner.kind).finish()
    }
}

impl RemoteFs {
    /// Builds the OpenDAL operator for a mount (no request is sent).
    pub fn new(
        mount: &str,
        spec: &RemoteSpec,
        tuning: RemoteTuning,
        staging: LocalFs,
        folder_objects: bool,
    ) -> UfsResult<Self> {
        // The process-wide HTTP client of OpenDAL's services (idempotent).
        opendal::install_default();
        let config = spec.config.clone().into_iter();
        let op = match spec.kind {
            RemoteKind::S3 => Operator::from_iter::<services::S3>(config),
            RemoteKind::Gcs => Operator::from_iter::<services::Gcs>(config),
            RemoteKind::Azblob => Operator::from_iter::<services::Azblob>(config),
            RemoteKind::Azdls => Operator::from_iter::<services::Azdls>(config),
            RemoteKind::Hdfs => Operator::from_iter::<services::HdfsNative>(config),
            RemoteKind::Webhdfs => Operator::from_iter::<services::Webhdfs>(config),
        }
        .map_err(|e| {
            UfsError::InvalidRequest(format!(
                "the {} mount {mount} cannot be set up: {}",
                spec.kind.name(),
                e.message()
            ))
        })?;
        let op = op.layer(TimeoutLayer::new().with_timeout(spec.timeout).with_io_timeout(spec.timeout));
        let traits = Traits::of(spec.kind, &op.info().capability());
        let inner = Inner {
            op,
            kind: spec.kind,
            traits,
            mount: mount.to_owned(),
            tuning,
            staging,
            denied_reported: AtomicBool::new(false),
            folder_objects,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Where this mount's multipart uploads and bucket tags are kept.
    pub fn staging(&self) -> &LocalFs {
        &self.inner.staging
    }

    pub fn mount(&self) -> &str {
        &self.inner.mount
    }

    /// True when `other` is the same mount, so a copy can stay on the remote.
    pub fn same_mount(&self, other: &RemoteFs) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub async fn stat(&self, key: &ObjectKey) -> UfsResult<ObjectInfo> {
        let path = path_of(key)?;
        if key.is_folder() {
            return self.stat_folder(&path).await;
        }
        let md = self.inner.op.stat(&path).await.map_err(|e| self.fail(e))?;
        Ok(describe(&md, false, &self.inner.traits))
    }

    /// OpenDAL's stat reports any folder that holds keys as a directory, so whether `path` is an
    /// object (one written as `key/`) is read from a listing, where such an object has an ETag.
    /// A folder that only holds deeper keys is an object only with folder objects listed.
    async fn stat_folder(&self, path: &str) -> UfsResult<ObjectInfo> {
        let opts = ListOptions { recursive: true, limit: Some(2), ..Default::default() };
        let mut lister = match self.inner.op.lister_options(path, opts).await {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(UfsError::NoSuchKey),
            Err(e) => return Err(self.fail(e)),
        };
        while let Some(entry) = lister.try_next().await.map_err(|e| self.fail(e))? {
            let (listed, md) = entry.into_parts();
            if listed == path && md.etag().is_some() {
                return Ok(describe(&md, true, &self.inner.traits));
            }
            if listed != path {
                return match self.inner.folder_objects {
                    true => Ok(implied_folder(&describe(&md, listed.ends_with('/'), &self.inner.traits))),
                    false => Err(UfsError::NoSuchKey),
                };
            }
        }
        Err(UfsError::NoSuchKey)
    }

    /// Describes the object; its bytes are fetched when the body is read, pinned to this version
    /// by its ETag, so the description always matches the bytes.
    pub async fn open(&self, key: &ObjectKey) -> UfsResult<OpenObject> {
        let info = self.stat(key).await?;
        if key.is_folder() || info.size == 0 {
            return Ok(OpenObject::empty(info));
        }
        let reader = self.reader(key, &info.etag)?;
        Ok(OpenObject::with_reader(info, reader))
    }

    /// A reader of the version of `key` whose ETag is `etag` (no request is sent yet).
    pub fn reader(&self, key: &ObjectKey, etag: &str) -> UfsResult<Arc<dyn ObjectReader>> {
        Ok(Arc::new(RemoteReader { remote: self.clone(), path: path_of(key)?, etag: etag.to_owned() }))
    }

    /// A stream over `span` of the object at `path`, refused if its ETag is no longer `etag`.
    async fn read(&self, path: &str, etag: &str, span: Range<u64>) -> UfsResult<ByteStream> {
        // A remote that reports no ETag cannot pin the version.
        let if_match = (!etag.is_empty()).then(|| format!("\"{etag}\""));
        let opts = ReaderOptions { if_match, chunk: Some(READ_CHUNK), ..Default::default() };
        let changed = |e: opendal::Error| match e.kind() {
            ErrorKind::ConditionNotMatch => UfsError::Changed,
            _ => self.fail(e),
        };
        let reader = self.inner.op.reader_options(path, opts).await.map_err(changed)?;
        let stream = reader.into_bytes_stream(span).await.map_err(changed)?;
        Ok(stream.boxed())
    }

    /// Streams a body to the remote; nothing changes there unless the whole body arrived intact.
    ///
    /// A body that fits in one part is held until it has all arrived, so `meta` (asked for once
    /// the body is complete, when trailing checksums are known) is stored whole and the remote
    /// sees a single PUT. A larger body starts the remote's multipart upload as soon as one part
    /// is full; its metadata is then what `meta` knows at that point.
    pub async fn put<S, E, M>(&self, key: &ObjectKey, mut body: S, meta: M, checks: PutChecks) -> UfsResult<ObjectInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        M: FnOnce() -> ObjectMeta + Send,
    {
        let path = path_of(key)?;
        if key.is_folder() {
            drain_empty_body(&mut body).await?;
            if let Err(e) = self.inner.op.create_dir(&path).await {
                return Err(self.write_error(key, None, self.fail(e)).await);
            }
            // Some S3 servers over a file system cannot describe a folder key afterwards.
            let now = OffsetDateTime::now_utc();
            return Ok(ObjectInfo { size: 0, last_modified: now, etag: EMPTY_ETAG.to_owned(), meta: meta() });
        }
        let tuning = &self.inner.tuning;
        let _buffers = Arc::clone(&tuning.buffers)
            .acquire_many_owned(tuning.buffers_per_write())
            .await
            .map_err(|e| UfsError::io("waiting for upload buffers", io::Error::other(e)))?;
        let mut upload = Upload { remote: self, path: &path, precondition: checks.precondition.as_ref(), writer: None };
        let mut meta = Some(meta);
        let mut held: Vec<Bytes> = Vec::new();
        let mut held_len = 0usize;
        let mut check = BodyCheck::new(&checks);
        let written = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| UfsError::Body(e.into()))?;
                check.feed(&chunk)?;
                if upload.writer.is_some() {
                    upload.write(chunk).await?;
                    continue;
                }
                held_len += chunk.len();
                held.push(chunk);
                if held_len > tuning.part_size {
                    upload.start(meta.take(), &mut held).await?;
                }
            }
            check.finish()?;
            if upload.writer.is_none() {
                upload.start(meta.take(), &mut held).await?;
            }
            upload.close().await
        }
        .await;
        if let Err(e) = written {
            upload.abort().await;
            return Err(self.write_error(key, checks.precondition.as_ref(), e).await);
        }
        // The remote's ETag and time are what later reads and listings report.
        self.stat(key).await
    }

    /// A failed `If-Match` write of a key that does not exist is `NoSuchKey`, as on S3. Any other
    /// write the remote answers with "not found" found no bucket to write into (Azure and GCS
    /// name no bucket in that answer the way S3's `NoSuchBucket` does).
    async fn write_error(&self, key: &ObjectKey, precondition: Option<&Precondition>, e: UfsError) -> UfsError {
        match (&e, precondition) {
            (UfsError::PreconditionFailed, Some(Precondition::IfMatch(_))) => match self.stat(key).await {
                Err(UfsError::NoSuchKey) => UfsError::NoSuchKey,
                _ => e,
            },
            (UfsError::NoSuchKey, None | Some(Precondition::IfNoneMatchAny)) if self.inner.kind.is_object_store() => {
                UfsError::RemoteBucketMissing { mount: self.inner.mount.clone() }
            }
            _ => e,
        }
    }

    /// The version of the object at `path` if its ETag is `etag`.
    async fn version_with_etag(&self, path: &str, etag: &str) -> UfsResult<String> {
        let md = self.inner.op.stat(path).await.map_err(|e| self.fail(e))?;
        if md.etag().map(unquote).as_deref() != Some(etag) {
            return Err(UfsError::PreconditionFailed);
        }
        md.version().map(str::to_owned).ok_or_else(|| {
            UfsError::Unsupported(format!(
                "the {} store of mount {} reports no version to make a conditional write on",
                self.inner.kind.name(),
                self.inner.mount
            ))
        })
    }

    /// Changes an object's metadata by rewriting it (remotes have no in-place metadata update).
    pub async fn update_meta<F>(&self, key: &ObjectKey, change: F) -> UfsResult<ObjectInfo>
    where
        F: FnOnce(&mut ObjectMeta) + Send + 'static,
    {
        let info = self.stat(key).await?;
        let mut meta = info.meta.clone();
        change(&mut meta);
        let body = if key.is_folder() || info.size == 0 {
            futures::stream::empty().boxed()
        } else {
            self.read(&path_of(key)?, &info.etag, 0..info.size).await?
        };
        let checks = PutChecks { expected_len: Some(info.size), ..Default::default() };
        self.put(key, body, move || meta, checks).await
    }

    /// Server-side copy within this mount (the remote copies the bytes and their metadata).
    pub async fn copy_within(&self, from: &ObjectKey, to: &ObjectKey) -> UfsResult<ObjectInfo> {
        self.inner.op.copy(&path_of(from)?, &path_of(to)?).await.map_err(|e| self.fail(e))?;
        self.stat(to).await
    }

    /// Deleting a missing key succeeds, as on S3.
    pub async fn delete(&self, key: &ObjectKey) -> UfsResult<()> {
        match self.inner.op.delete(&path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// One page of a listing. Object stores list flat in key order; the walk restarts after a
    /// common prefix that holds many keys instead of reading through it.
    pub async fn list(&self, query: ListQuery) -> UfsResult<ListPage> {
        let dir = query.prefix.rfind('/').map_or("", |i| &query.prefix[..=i]).to_owned();
        let mut collector = Collector::new(query.clone());
        let mut start_after = query.start_after.clone().filter(|m| m.as_str() >= dir.as_str());
        // With folder objects, the folders a key implies are offered before it, once each.
        let mut last_offered = query.start_after.clone();
        loop {
            let entries = self.list_from(&dir, start_after.clone()).await?;
            let mut rolled: Option<(String, usize)> = None;
            let mut skip_to = None;
            futures::pin_mut!(entries);
            while let Some((key, info)) = entries.try_next().await? {
                if !key.starts_with(query.prefix.as_str()) {
                    if key.as_str() > query.prefix.as_str() && self.inner.kind.lists_in_order() {
                        break;
                    }
                    continue;
                }
                if self.inner.folder_objects {
                    for folder in implied_folders(&key, last_offered.as_deref()) {
                        if collector.offer(folder, || Some(implied_folder(&info))) == Flow::Stop {
                            return Ok(collector.finish());
                        }
                    }
                    last_offered = Some(key.clone());
                }
                if collector.offer(&key, || Some(info)) == Flow::Stop {
                    return Ok(collector.finish());
                }
                match (collector.common_prefix_of(&key), rolled.as_mut()) {
                    (Some(p), Some((current, n))) if *current == p => {
                        *n += 1;
                        if *n >= SKIP_SUBTREE_AFTER && self.inner.kind.lists_in_order() && self.inner.traits.start_after
                        {
                            skip_to = Some(format!("{p}\u{10FFFF}"));
                            break;
                        }
                    }
                    (Some(p), _) => rolled = Some((p.to_owned(), 1)),
                    (None, _) => rolled = None,
                }
            }
            match skip_to {
                Some(after) => start_after = Some(after),
                None => return Ok(collector.finish()),
            }
        }
    }

    /// Keys under `dir` after `start_after`, in key order, with what a listing reports.
    async fn list_from(
        &self,
        dir: &str,
        start_after: Option<String>,
    ) -> UfsResult<BoxStream<'_, UfsResult<(String, ObjectInfo)>>> {
        let traits = self.inner.traits;
        let asked = start_after.clone().filter(|_| traits.start_after);
        let opts = ListOptions { recursive: true, start_after: asked, ..Default::default() };
        let lister = match self.inner.op.lister_options(dir, opts).await {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(futures::stream::empty().boxed()),
            Err(e) => return Err(self.fail(e)),
        };
        let entries = lister
            .map_err(|e| self.fail(e))
            .try_filter_map(move |entry| async move {
                let (path, md) = entry.into_parts();
                // A listed folder may be reported as an entry without being an object itself.
                let real = !path.is_empty() && path != "/" && (md.etag().is_some() || !path.ends_with('/'));
                Ok(real.then(|| {
                    let info = describe(&md, path.ends_with('/'), &traits);
                    (path, info)
                }))
            })
            // Keys up to `start_after` come back from remotes that cannot start after a key
            // (Azure Blob) or start at it (GCS's startOffset includes it; its emulator ignores it).
            .try_filter(move |(path, _)| {
                futures::future::ready(start_after.as_deref().is_none_or(|after| path.as_str() > after))
            });
        if self.inner.kind.lists_in_order() {
            return Ok(entries.boxed());
        }
        // File-system-like remotes walk folders in their own order: sort the subtree first.
        let mut all: Vec<(String, ObjectInfo)> = entries.try_collect().await?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(futures::stream::iter(all.into_iter().map(Ok)).boxed())
    }

    /// Maps a remote failure to what the client is told, logging what the operator needs.
    fn fail(&self, e: opendal::Error) -> UfsError {
        let mount = self.inner.mount.clone();
        // OpenDAL folds these codes into generic kinds; only its message still names them.
        if BUCKET_MISSING.iter().any(|code| e.message().contains(code)) {
            return UfsError::RemoteBucketMissing { mount };
        }
        if e.message().contains("\"MetadataTooLarge\"") {
            return UfsError::MetadataTooLarge(format!(
                "The metadata, with the tags and checksum Alcove keeps in the remote's user metadata, exceeds what the remote store of {mount} accepts (2 KB on S3)."
            ));
        }
        match e.kind() {
            ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory => UfsError::NoSuchKey,
            ErrorKind::ConditionNotMatch | ErrorKind::AlreadyExists => UfsError::PreconditionFailed,
            ErrorKind::PermissionDenied => {
                if !self.inner.denied_reported.swap(true, Ordering::Relaxed) {
                    tracing::error!(mount = %mount, error = %e, "the remote store of mount {mount} refused Alcove's credentials (reported once)");
                }
                UfsError::RemoteDenied { mount }
            }
            ErrorKind::RateLimited => UfsError::SlowDown { mount },
            ErrorKind::Unsupported => UfsError::Unsupported(format!(
                "the {} store of mount {mount} cannot do this: {}",
                self.inner.kind.name(),
                e.message()
            )),
            // Unreachable, timed out, or a server error: worth retrying.
            _ if e.is_temporary() => {
                tracing::warn!(mount = %mount, error = %e, "remote store request failed");
                UfsError::Unavailable { mount, retry_after: Duration::from_secs(1) }
            }
            // The remote understood and refused (a 4xx of its own): retrying would not help.
            _ => {
                tracing::warn!(mount = %mount, error = %e, "the remote store refused a request");
                let mut message = e.message().trim().to_owned();
                message.truncate(message.floor_char_boundary(400));
                if message.is_empty() {
                    // Emulators (and some gateways) answer a call they lack with a bare status.
                    message = "it gave no reason (the worker's log has its answer)".to_owned();
                }
                UfsError::RemoteRefused { mount, message }
            }
        }
    }
}

/// Reads one version of a remote object: each span is a ranged GET with `If-Match` on its ETag.
struct RemoteReader {
    remote: RemoteFs,
    path: String,
    etag: String,
}

impl ObjectReader for RemoteReader {
    fn read(&self, span: Range<u64>) -> BoxFuture<'static, UfsResult<ByteStream>> {
        let (remote, path, etag) = (self.remote.clone(), self.path.clone(), self.etag.clone());
        async move { remote.read(&path, &etag, span).await }.boxed()
    }
}

/// One streamed write to the remote, started once its metadata is known.
struct Upload<'a> {
    remote: &'a RemoteFs,
    path: &'a str,
    precondition: Option<&'a Precondition>,
    writer: Option<opendal::Writer>,
}

impl Upload<'_> {
    /// Opens the remote write with the metadata `meta` gives now, then sends what was held.
    async fn start(&mut self, meta: Option<impl FnOnce() -> ObjectMeta>, held: &mut Vec<Bytes>) -> UfsResult<()> {
        let meta = meta.map(|m| m()).unwrap_or_default();
        let inner = &self.remote.inner;
        let mut opts = write_options(&meta, self.precondition, &inner.tuning, &inner.traits);
        if let Some(Precondition::IfMatch(etag)) = self.precondition {
            if !inner.traits.if_match && inner.traits.if_version_match {
                // GCS makes a write conditional on the object's generation, not its ETag: the ETag
                // is checked here and the write made conditional on the generation it names, so
                // a change in between still fails the write there.
                opts.if_match = None;
                opts.if_version_match = Some(self.remote.version_with_etag(self.path, etag).await?);
            }
        }
        let writer = self.remote.inner.op.writer_options(self.path, opts).await.map_err(|e| self.remote.fail(e))?;
        self.writer = Some(writer);
        for chunk in held.drain(..) {
            self.write(chunk).await?;
        }
        Ok(())
    }

    async fn write(&mut self, chunk: Bytes) -> UfsResult<()> {
        match self.writer.as_mut() {
            Some(w) => w.write(chunk).await.map_err(|e| self.remote.fail(e)),
            None => Err(UfsError::io("writing to the remote", io::Error::other("the upload was not started"))),
        }
    }

    async fn close(&mut self) -> UfsResult<()> {
        match self.writer.as_mut() {
            Some(w) => w.close().await.map(drop).map_err(|e| self.remote.fail(e)),
            None => Ok(()),
        }
    }

    /// Gives up the write: the remote keeps what it had (its multipart upload is aborted).
    async fn abort(&mut self) {
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.abort().await {
                tracing::debug!(mount = %self.remote.inner.mount, error = %e, "aborting a failed remote write");
            }
        }
    }
}

impl RemoteKind {
    /// Flat key spaces: a write needs no folder, and listings come in binary key order.
    fn is_object_store(self) -> bool {
        matches!(self, RemoteKind::S3 | RemoteKind::Gcs | RemoteKind::Azblob)
    }

    /// Object stores list keys in binary order; file systems walk folders in their own order.
    fn lists_in_order(self) -> bool {
        self.is_object_store()
    }
}

/// The remote path of a key. OpenDAL trims white space around paths, which would silently
/// merge `a ` into `a`: such keys are refused on remote mounts instead.
fn path_of(key: &ObjectKey) -> UfsResult<String> {
    let path = key.to_string();
    if path.trim() != path {
        return Err(UfsError::InvalidKey(format!(
            "object key '{}' starts or ends with white space, which this remote mount cannot store",
            path.escape_debug()
        )));
    }
    Ok(path)
}

fn unquote(etag: &str) -> String {
    etag.trim_start_matches("W/").trim_matches('"').to_owned()
}

/// A folder no object names, shown as a 0-byte object as recent as the key that implies it.
fn implied_folder(implied_by: &ObjectInfo) -> ObjectInfo {
    ObjectInfo {
        size: 0,
        last_modified: implied_by.last_modified,
        etag: EMPTY_ETAG.to_owned(),
        meta: ObjectMeta::default(),
    }
}

/// What OpenDAL reports, as S3 describes an object.
fn describe(md: &opendal::Metadata, folder: bool, traits: &Traits) -> ObjectInfo {
    let last_modified = md
        .last_modified()
        .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.into_inner().as_nanosecond()).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let etag = md.etag().map(unquote).unwrap_or_else(|| if folder { EMPTY_ETAG.to_owned() } else { String::new() });
    let mut meta = ObjectMeta {
        content_type: md.content_type().map(str::to_owned),
        content_encoding: md.content_encoding().map(str::to_owned),
        content_disposition: md.content_disposition().map(str::to_owned),
        cache_control: md.cache_control().map(str::to_owned),
        ..Default::default()
    };
    if let Some(user) = md.user_metadata() {
        let pairs: Vec<(String, String)> = user
            .into_iter()
            .map(|(k, v)| {
                let name = k.to_ascii_lowercase();
                let name = if traits.identifier_names { from_identifier_name(&name) } else { name };
                (name, v.to_owned())
            })
            .collect();
        read_reserved(&mut meta, pairs);
    }
    let size = if folder { 0 } else { md.content_length() };
    ObjectInfo { size, last_modified, etag, meta }
}

/// Splits the remote's user metadata into the user's and Alcove's own fields. A content header
/// the remote object has itself wins over one Alcove kept for it.
fn read_reserved(meta: &mut ObjectMeta, pairs: Vec<(String, String)>) {
    for (name, value) in pairs {
        match name.as_str() {
            META_CONTENT_TYPE => _ = meta.content_type.get_or_insert(value),
            META_CONTENT_ENCODING => _ = meta.content_encoding.get_or_insert(value),
            META_CONTENT_DISPOSITION => _ = meta.content_disposition.get_or_insert(value),
            META_CACHE_CONTROL => _ = meta.cache_control.get_or_insert(value),
            META_TAGS => meta.tags = form_urlencoded_decode(&value),
            META_LANGUAGE => meta.content_language = Some(value),
            META_EXPIRES => meta.expires = value.parse().ok(),
            META_CHECKSUM => meta.checksum = parse_checksum(&value),
            META_PARTS => meta.parts = value.split(',').filter_map(|n| n.parse().ok()).collect(),
            // Base64 has no commas.
            META_PART_CHECKSUMS => meta.part_checksums = value.split(',').map(str::to_owned).collect(),
            _ if name.starts_with(RESERVED_PREFIX) => {}
            _ => {
                meta.user.insert(name, value);
            }
        }
    }
}

/// The remote user metadata that carries `meta` (with what the remote object cannot carry itself).
fn user_metadata(meta: &ObjectMeta, traits: &Traits) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = meta
        .user
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let headers = [
        (META_CONTENT_TYPE, &meta.content_type, traits.content_type),
        (META_CONTENT_ENCODING, &meta.content_encoding, traits.content_encoding),
        (META_CONTENT_DISPOSITION, &meta.content_disposition, traits.content_disposition),
        (META_CACHE_CONTROL, &meta.cache_control, traits.cache_control),
    ];
    for (name, value, native) in headers {
        if let (Some(value), false) = (value, native) {
            out.insert(name.into(), value.clone());
        }
    }
    if !meta.tags.is_empty() {
        out.insert(META_TAGS.into(), form_urlencoded_encode(&meta.tags));
    }
    if let Some(language) = &meta.content_language {
        out.insert(META_LANGUAGE.into(), language.clone());
    }
    if let Some(expires) = meta.expires {
        out.insert(META_EXPIRES.into(), expires.to_string());
    }
    if let Some(c) = &meta.checksum {
        out.insert(META_CHECKSUM.into(), format!("{}:{}:{}", c.algorithm, c.kind, c.value));
    }
    if !meta.parts.is_empty() {
        out.insert(META_PARTS.into(), meta.parts.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
    }
    if !meta.part_checksums.is_empty() {
        let value = meta.part_checksums.join(",");
        let used: usize = out.iter().map(|(k, v)| k.len() + v.len()).sum();
        if used + META_PART_CHECKSUMS.len() + value.len() <= USER_METADATA_BUDGET {
            out.insert(META_PART_CHECKSUMS.into(), value);
        }
    }
    if traits.identifier_names {
        out = out.into_iter().map(|(k, v)| (identifier_name(&k), v)).collect();
    }
    out
}

/// Azure allows only C# identifiers as metadata names: every byte but an ASCII letter (or a digit
/// after the first) is written as `_` and two hex digits, so `alcove-tagging` is
/// `alcove_2dtagging` there.
fn identifier_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// The name [`identifier_name`] made `name` from; a name others wrote (`my_key`) stays as it is.
fn from_identifier_name(name: &str) -> String {
    let mut bytes = Vec::with_capacity(name.len());
    let mut rest = name.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let escaped = (b == b'_')
            .then(|| tail.get(..2))
            .flatten()
            .filter(|hex| hex.iter().all(|h| matches!(h, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                bytes.push(byte);
                rest = &tail[2..];
            }
            None => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok().filter(|decoded| identifier_name(decoded) == name).unwrap_or_else(|| name.to_owned())
}

fn parse_checksum(value: &str) -> Option<StoredChecksum> {
    let mut fields = value.splitn(3, ':');
    let (algorithm, kind, value) = (fields.next()?, fields.next()?, fields.next()?);
    Some(StoredChecksum { algorithm: algorithm.into(), kind: kind.into(), value: value.into() })
}

fn write_options(
    meta: &ObjectMeta,
    precondition: Option<&Precondition>,
    tuning: &RemoteTuning,
    traits: &Traits,
) -> WriteOptions {
    let user = user_metadata(meta, traits);
    let native = |value: &Option<String>, can: bool| value.clone().filter(|_| can);
    WriteOptions {
        content_type: native(&meta.content_type, traits.content_type),
        content_encoding: native(&meta.content_encoding, traits.content_encoding),
        content_disposition: native(&meta.content_disposition, traits.content_disposition),
        cache_control: native(&meta.cache_control, traits.cache_control),
        user_metadata: (!user.is_empty()).then_some(user),
        if_not_exists: matches!(precondition, Some(Precondition::IfNoneMatchAny)),
        if_match: match precondition {
            Some(Precondition::IfMatch(etag)) => Some(format!("\"{etag}\"")),
            _ => None,
        },
        chunk: Some(tuning.part_size),
        concurrent: tuning.concurrent,
        ..Default::default()
    }
}

/// Tags as a query string (`k=v&k2=v2`), the form S3 itself uses in `x-amz-tagging`.
fn form_urlencoded_encode(tags: &BTreeMap<String, String>) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    tags.iter()
        .map(|(k, v)| {
            format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn form_urlencoded_decode(s: &str) -> BTreeMap<String, String> {
    let decode = |x: &str| percent_encoding::percent_decode_str(x).decode_utf8_lossy().into_owned();
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3: Traits = Traits {
        content_type: true,
        content_encoding: true,
        content_disposition: true,
        cache_control: true,
        start_after: true,
        if_match: true,
        if_version_match: false,
        identifier_names: false,
    };
    /// What OpenDAL 0.59 can do on Azure Blob.
    const AZBLOB: Traits = Traits {
        content_encoding: false,
        content_disposition: false,
        start_after: false,
        identifier_names: true,
        ..S3
    };

    #[test]
    fn reserved_metadata_round_trips() {
        let meta = ObjectMeta {
            content_language: Some("fr".into()),
            expires: Some(1_700_000_000),
            user: [("color".to_owned(), "blue".to_owned())].into(),
            tags: [("a b".to_owned(), "c&d=e".to_owned()), ("k".to_owned(), String::new())].into(),
            checksum: Some(StoredChecksum {
                algorithm: "CRC32".into(),
                kind: "COMPOSITE".into(),
                value: "AAAA-2".into(),
            }),
            parts: vec![5 << 20, 7],
            part_checksums: vec!["AAAAAA==".into(), "AQIDBA==".into()],
            ..Default::default()
        };
        let mut back = ObjectMeta::default();
        read_reserved(&mut back, user_metadata(&meta, &S3).into_iter().collect());
        assert_eq!(back, meta);
    }

    #[test]
    fn part_checksums_are_left_out_when_they_do_not_fit() {
        let meta =
            ObjectMeta { parts: vec![5 << 20; 60], part_checksums: vec!["A".repeat(44); 60], ..Default::default() };
        let mut back = ObjectMeta::default();
        read_reserved(&mut back, user_metadata(&meta, &S3).into_iter().collect());
        assert_eq!(back.parts, meta.parts, "the part sizes are kept");
        assert!(back.part_checksums.is_empty(), "2.6 KB of part checksums are not");
    }

    #[test]
    fn users_cannot_forge_reserved_fields() {
        let meta = ObjectMeta { user: [("alcove-tagging".to_owned(), "x=y".to_owned())].into(), ..Default::default() };
        assert!(user_metadata(&meta, &S3).is_empty());
    }

    #[test]
    fn headers_the_remote_cannot_set_travel_as_metadata() {
        let meta = ObjectMeta {
            content_type: Some("text/html".into()),
            content_encoding: Some("gzip".into()),
            content_disposition: Some("attachment".into()),
            cache_control: Some("no-cache".into()),
            user: [("my-key".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        };
        let on_azure = user_metadata(&meta, &AZBLOB);
        let opts = write_options(&meta, None, &RemoteTuning::default(), &AZBLOB);
        assert_eq!((opts.content_type.as_deref(), opts.content_disposition.as_deref()), (Some("text/html"), None));
        assert_eq!(on_azure.get("alcove_2dcontent_2ddisposition").map(String::as_str), Some("attachment"));
        assert_eq!(on_azure.get("alcove_2dcontent_2dencoding").map(String::as_str), Some("gzip"));
        assert!(on_azure.keys().all(|k| k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')));
        // read back: the object's own Content-Type plus what the metadata kept
        let mut back = ObjectMeta {
            content_type: Some("text/html".into()),
            cache_control: Some("no-cache".into()),
            ..Default::default()
        };
        read_reserved(&mut back, on_azure.into_iter().map(|(k, v)| (from_identifier_name(&k), v)).collect());
        assert_eq!(back, meta);
        // a header the remote object has itself wins
        let mut native = ObjectMeta { content_disposition: Some("inline".into()), ..Default::default() };
        read_reserved(&mut native, vec![(META_CONTENT_DISPOSITION.to_owned(), "attachment".to_owned())]);
        assert_eq!(native.content_disposition.as_deref(), Some("inline"));
    }

    #[test]
    fn azure_metadata_names_round_trip() {
        for name in ["alcove-tagging", "x", "a_b", "9lives", "dots.and-dashes_", "ünï", "_", "ab_2d"] {
            let id = identifier_name(name);
            assert!(
                id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !id.starts_with(|c: char| c.is_ascii_digit()),
                "{id}"
            );
            assert_eq!(from_identifier_name(&id), name, "{id}");
        }
        assert_eq!(identifier_name("alcove-tagging"), "alcove_2dtagging");
        // names other tools wrote that are no escape of ours stay as they are
        for foreign in ["my_key", "a_zz", "x_2", "Camel_Case", "b_2D"] {
            assert_eq!(from_identifier_name(foreign), foreign);
        }
    }

    #[test]
    fn folder_keys_keep_their_slash() {
        assert_eq!(path_of(&ObjectKey::parse("a/b/").unwrap()).unwrap(), "a/b/");
        assert_eq!(path_of(&ObjectKey::parse("a/b").unwrap()).unwrap(), "a/b");
        assert!(path_of(&ObjectKey::parse("a/b ").unwrap()).is_err(), "OpenDAL would trim it");
        assert!(path_of(&ObjectKey::parse(" a").unwrap()).is_err());
        assert_eq!(path_of(&ObjectKey::parse("a b/c").unwrap()).unwrap(), "a b/c");
    }

    #[test]
    fn tuning_bounds_parts_in_flight() {
        assert_eq!(RemoteTuning::new(false, 20, 64, 1).concurrent, 1);
        let t = RemoteTuning::new(true, 20, 8, 1);
        assert_eq!((t.concurrent, t.buffers_per_write()), (8, 8));
    }
}
