//! The local-disk backend: keys are files under the mount's directory, so the tree stays readable
//! by other tools. A folder created as an object (`PUT key/`) is a marked directory; directories
//! that only hold deeper keys are listed as objects too when the mount lists folder objects (the
//! seed system's listings), and otherwise only as the common prefixes AWS would show.
//!
//! Writes are crash-safe: the body goes to a temp file in the mount's state folder, is fsynced,
//! gets its metadata, and is renamed into place (then the parent directory is fsynced). A reader
//! sees the old object or the new one, never a part. This module may not parse S3 requests; it
//! takes validated [`ObjectKey`]s only.

use std::fs::{self, File, Metadata};
use std::future::Future as _;
use std::io::{self, ErrorKind};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt as _, Stream, StreamExt};

use crate::backend::{drain_empty_body, BodyCheck, ByteStream, ObjectReader, OpenObject, Precondition, PutChecks};
use crate::dircache;
use crate::key::{ObjectKey, STATE_DIR};
use crate::list::{Collector, Flow, ListPage, ListQuery};
use crate::meta::{self, MetaStore, ObjectInfo, ObjectMeta, StoredMeta};
use crate::nowait;
use crate::{UfsError, UfsResult};

const TMP_DIR: &str = "tmp";

/// Serialises the check-and-publish of one target path (and metadata updates) in this process.
/// Striped, so unrelated keys rarely wait on each other.
static KEY_LOCKS: std::sync::LazyLock<Vec<std::sync::Mutex<()>>> =
    std::sync::LazyLock::new(|| (0..256).map(|_| std::sync::Mutex::new(())).collect());

pub(crate) fn lock_key(path: &Path) -> std::sync::MutexGuard<'static, ()> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let stripe = &KEY_LOCKS[(h.finish() % KEY_LOCKS.len() as u64) as usize];
    stripe.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read size for streamed local bodies: large enough to keep syscalls rare, small enough to
/// bound memory.
const READ_CHUNK: usize = 256 * 1024;

/// Streams a range of a file. Chunks the page cache holds are read on the async thread
/// (`RWF_NOWAIT`); only a chunk that needs the disk goes to the blocking pool, so a hot large
/// object costs no thread hand-off per chunk.
pub(crate) struct FileStream {
    file: Arc<File>,
    pos: u64,
    end: u64,
    pending: Option<tokio::task::JoinHandle<io::Result<Bytes>>>,
}

impl Stream for FileStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(pending) = this.pending.as_mut() {
                let joined = std::task::ready!(Pin::new(pending).poll(cx));
                this.pending = None;
                let chunk = joined.map_err(io::Error::other).and_then(|read| read);
                return Poll::Ready(Some(chunk.and_then(|bytes| this.advance(bytes))));
            }
            if this.pos >= this.end {
                return Poll::Ready(None);
            }
            let len = (this.end - this.pos).min(READ_CHUNK as u64) as usize;
            if let Some(bytes) = nowait::read_cached_at(&this.file, this.pos, len) {
                return Poll::Ready(Some(this.advance(bytes)));
            }
            let (file, pos) = (Arc::clone(&this.file), this.pos);
            this.pending = Some(tokio::task::spawn_blocking(move || read_at(&file, pos, len)));
        }
    }
}

impl FileStream {
    pub(crate) fn new(file: File, span: Range<u64>) -> Self {
        Self::shared(Arc::new(file), span)
    }

    fn shared(file: Arc<File>, span: Range<u64>) -> Self {
        Self { file, pos: span.start, end: span.end, pending: None }
    }

    fn advance(&mut self, bytes: Bytes) -> io::Result<Bytes> {
        if bytes.is_empty() {
            // Truncated by another tool while being read: the response cannot be completed.
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "the object's file shrank while it was being read"));
        }
        self.pos += bytes.len() as u64;
        Ok(bytes)
    }
}

/// Reads up to `len` bytes at `offset` (fewer only at the end of the file).
fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    use std::os::unix::fs::FileExt as _;
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

/// Objects up to this size are read whole when opened for reading.
pub const SMALL_OBJECT: u64 = 128 * 1024;

/// One local directory serving as a bucket.
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
    /// List (and describe) directories that only hold deeper keys as 0-byte `dir/` objects.
    folder_objects: bool,
}

impl LocalFs {
    /// A bucket over `root` with AWS's listings (see [`LocalFs::with_folder_objects`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), folder_objects: false }
    }

    /// `true`: every directory is a folder object, as in the seed system; `false`: only folders
    /// created with `PUT key/` are objects.
    pub fn with_folder_objects(self, folder_objects: bool) -> Self {
        Self { folder_objects, ..self }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.relative_path())
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR).join(TMP_DIR)
    }

    /// Removes temp files left by a crash. Called at start, before serving.
    pub fn clean_temp_files(&self) -> io::Result<usize> {
        let dir = self.temp_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            fs::remove_file(entry?.path())?;
            removed += 1;
        }
        Ok(removed)
    }

    /// True when the bucket holds no object (its state folder does not count).
    pub fn is_empty(&self) -> io::Result<bool> {
        for entry in fs::read_dir(&self.root)? {
            if entry?.file_name() != STATE_DIR {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Opens an object for reading and describes it, both from the same file handle, so the
    /// description always matches the bytes that will be read.
    pub async fn open(&self, key: &ObjectKey) -> UfsResult<OpenObject> {
        let path = self.path_of(key);
        let folder = key.is_folder();
        if let Some(hot) = open_hot(&path, folder) {
            return Ok(hot);
        }
        let (root, implicit) = (self.root.clone(), self.folder_objects);
        blocking(move || {
            let (info, file) = describe_blocking(&root, &path, folder, implicit)?;
            // A file shrunk by another tool meanwhile falls back to streaming.
            let len = info.size as usize;
            let small = file.as_ref().filter(|_| info.size <= SMALL_OBJECT).and_then(|f| read_at(f, 0, len).ok());
            Ok(opened(info, file, small.filter(|b| b.len() == len)))
        })
        .await
    }

    /// A reader of the version `info` describes: the object's file, if it still is that version.
    pub async fn reader(&self, key: &ObjectKey, info: &ObjectInfo) -> UfsResult<Arc<dyn ObjectReader>> {
        let path = self.path_of(key);
        let (root, implicit, folder) = (self.root.clone(), self.folder_objects, key.is_folder());
        let (size, etag) = (info.size, info.etag.clone());
        blocking(move || match describe_blocking(&root, &path, folder, implicit)? {
            (now, Some(file)) if now.size == size && now.etag == etag => {
                Ok(Arc::new(FileReader(Arc::new(file))) as Arc<dyn ObjectReader>)
            }
            _ => Err(UfsError::Changed),
        })
        .await
    }

    pub async fn stat(&self, key: &ObjectKey) -> UfsResult<ObjectInfo> {
        let path = self.path_of(key);
        let folder = key.is_folder();
        if let Some(hot) = describe_hot(&path, folder) {
            return Ok(hot.0);
        }
        let (root, implicit) = (self.root.clone(), self.folder_objects);
        blocking(move || Ok(describe_blocking(&root, &path, folder, implicit)?.0)).await
    }

    /// Writes an object from a streamed body; see the module doc for the crash-safety protocol.
    /// `meta` is asked for once the whole body has arrived (checksums are known only then).
    pub async fn put<S, E, M>(&self, key: &ObjectKey, body: S, meta: M, checks: PutChecks) -> UfsResult<ObjectInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        M: FnOnce() -> ObjectMeta + Send + 'static,
    {
        if key.is_folder() {
            return self.put_folder(key, body, meta, checks).await;
        }
        let temp = self.new_temp_file().await?;
        let (md5, size) = receive(&temp.0, body, &checks).await?;
        let info = self.commit(key, &temp, hex::encode(md5), size, meta(), checks.precondition).await?;
        temp.disarm();
        Ok(info)
    }

    /// A fresh temp file path in the mount's state folder (same file system as the objects).
    pub(crate) async fn new_temp_file(&self) -> UfsResult<TempFile> {
        let temp_dir = self.temp_dir();
        tokio::fs::create_dir_all(&temp_dir).await.map_err(|e| UfsError::io("creating the temp folder", e))?;
        Ok(TempFile(temp_dir.join(uuid::Uuid::new_v4().simple().to_string())))
    }

    /// Gives the complete, fsynced temp file its metadata and publishes it as `key`.
    pub(crate) async fn commit(
        &self,
        key: &ObjectKey,
        temp: &TempFile,
        etag: String,
        size: u64,
        meta: ObjectMeta,
        precondition: Option<Precondition>,
    ) -> UfsResult<ObjectInfo> {
        let target = self.path_of(key);
        let root = self.root.clone();
        let temp_path = temp.0.clone();
        blocking(move || {
            let md = fs::metadata(&temp_path).map_err(|e| UfsError::io("stat of the temp file", e))?;
            let stored = StoredMeta { etag, size, mtime_ns: meta::mtime_ns(&md), meta };
            MetaStore::new(&root).write(&temp_path, &stored).map_err(|e| UfsError::io("storing object metadata", e))?;
            let _guard = lock_key(&target);
            check_precondition(&root, &target, false, false, precondition.as_ref())?;
            publish(&root, &temp_path, &target)?;
            Ok(ObjectInfo { size, last_modified: meta::last_modified(&md), etag: stored.etag, meta: stored.meta })
        })
        .await
    }

    /// Changes an object's metadata in place (tags, or a copy onto itself), keeping its data.
    pub async fn update_meta<F>(&self, key: &ObjectKey, change: F) -> UfsResult<ObjectInfo>
    where
        F: FnOnce(&mut ObjectMeta) + Send + 'static,
    {
        let path = self.path_of(key);
        let (root, implicit) = (self.root.clone(), self.folder_objects);
        let folder = key.is_folder();
        blocking(move || {
            let _guard = lock_key(&path);
            let info = describe_blocking(&root, &path, folder, implicit)?.0;
            let mut stored = StoredMeta { etag: info.etag, size: info.size, mtime_ns: 0, meta: info.meta };
            let md = fs::metadata(&path).map_err(read_error)?;
            stored.mtime_ns = meta::mtime_ns(&md);
            change(&mut stored.meta);
            MetaStore::new(&root).write(&path, &stored).map_err(|e| UfsError::io("updating object metadata", e))?;
            Ok(ObjectInfo {
                size: stored.size,
                last_modified: meta::last_modified(&md),
                etag: stored.etag,
                meta: stored.meta,
            })
        })
        .await
    }

    /// A folder object is a directory; marking it with metadata makes it explicit, so it stays
    /// when the objects under it are deleted.
    async fn put_folder<S, E, M>(
        &self,
        key: &ObjectKey,
        mut body: S,
        meta: M,
        checks: PutChecks,
    ) -> UfsResult<ObjectInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        M: FnOnce() -> ObjectMeta + Send + 'static,
    {
        drain_empty_body(&mut body).await?;
        let path = self.path_of(key);
        let root = self.root.clone();
        let display = key.to_string();
        let meta = meta();
        let implicit = self.folder_objects;
        blocking(move || {
            let _guard = lock_key(&path);
            check_precondition(&root, &path, true, implicit, checks.precondition.as_ref())?;
            create_dirs(&root, &path, &display)?;
            let md = fs::metadata(&path).map_err(|e| UfsError::io("stat of the folder", e))?;
            let stored = StoredMeta { etag: meta::EMPTY_ETAG.into(), size: 0, mtime_ns: meta::mtime_ns(&md), meta };
            MetaStore::new(&root).write(&path, &stored).map_err(|e| UfsError::io("marking the folder", e))?;
            Ok(ObjectInfo { size: 0, last_modified: meta::last_modified(&md), etag: stored.etag, meta: stored.meta })
        })
        .await
    }

    /// Deletes an object; deleting a missing key succeeds, as on S3. Folders that only existed to
    /// hold the deleted object are removed with it.
    pub async fn delete(&self, key: &ObjectKey) -> UfsResult<()> {
        let path = self.path_of(key);
        let root = self.root.clone();
        let folder = key.is_folder();
        blocking(move || {
            if folder {
                match xattr::remove(&path, meta::META_XATTR) {
                    Ok(()) => {}
                    Err(e) if is_absent(&e) || e.raw_os_error() == Some(61 /* ENODATA */) => {}
                    Err(e) => return Err(UfsError::io("unmarking the folder", e)),
                }
                prune_empty_folders(&root, &path);
                return Ok(());
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if is_absent(&e) || e.kind() == ErrorKind::IsADirectory => return Ok(()),
                Err(e) => return Err(UfsError::io("deleting the object", e)),
            }
            if let Some(parent) = path.parent() {
                prune_empty_folders(&root, parent);
            }
            Ok(())
        })
        .await
    }

    /// Lists one page of keys in UTF-8 binary order (folders as the module doc says).
    pub async fn list(&self, query: ListQuery) -> UfsResult<ListPage> {
        let (root, folder_objects) = (self.root.clone(), self.folder_objects);
        blocking(move || {
            let mut collector = Collector::new(query);
            let walk = Walk { store: MetaStore::new(&root), folder_objects };
            walk.dir(&root, String::new(), &mut collector).map_err(|e| UfsError::io("listing", e))?;
            Ok(collector.finish())
        })
        .await
    }
}

/// Runs blocking file-system work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> UfsResult<T> + Send + 'static) -> UfsResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| UfsError::io("file-system task", io::Error::other(e)))?
}

/// Opens and describes the object at `path`, both from one handle (the file of an object, none
/// for a folder); a directory is a folder object when it is marked as one, or always when
/// `implicit_folders`.
fn describe_blocking(
    root: &Path,
    path: &Path,
    folder: bool,
    implicit_folders: bool,
) -> UfsResult<(ObjectInfo, Option<File>)> {
    let file = File::open(path).map_err(read_error)?;
    let md = file.metadata().map_err(|e| UfsError::io("stat", e))?;
    let store = MetaStore::new(root);
    match (md.is_dir(), folder) {
        (true, true) => {
            let info = store.describe_folder(path, &md, implicit_folders).ok_or(UfsError::NoSuchKey)?;
            Ok((info, None))
        }
        (false, false) if md.is_file() => {
            let info = store.describe_file(path, &md).map_err(|e| UfsError::io("reading object metadata", e))?;
            Ok((info, Some(file)))
        }
        _ => Err(UfsError::NoSuchKey),
    }
}

/// An opened local object: its whole content when it is at hand, else a reader of its file.
fn opened(info: ObjectInfo, file: Option<File>, small: Option<Bytes>) -> OpenObject {
    match (small, file) {
        (Some(content), _) => OpenObject::whole(info, content),
        (None, Some(file)) if info.size > 0 => OpenObject::with_reader(info, Arc::new(FileReader(Arc::new(file)))),
        _ => OpenObject::empty(info),
    }
}

/// Reads an object through the file handle it was opened with: that version, whatever happens
/// to the path meanwhile (a rename publishes a new file, it never changes this one).
struct FileReader(Arc<File>);

impl ObjectReader for FileReader {
    fn read(&self, span: Range<u64>) -> BoxFuture<'static, UfsResult<ByteStream>> {
        let stream = FileStream::shared(Arc::clone(&self.0), span).boxed();
        futures::future::ready(Ok(stream)).boxed()
    }
}

/// A regular object file whose lookup and inline metadata record are all in memory, opened and
/// described without waiting for the disk; `None` sends the caller to the blocking pool (which
/// also produces the errors: absent keys, folders, foreign or changed files).
fn describe_hot(path: &Path, folder: bool) -> Option<(ObjectInfo, File)> {
    if folder {
        return None;
    }
    let file = nowait::open_cached(path)?;
    let md = file.metadata().ok().filter(Metadata::is_file)?;
    Some((MetaStore::describe_open_file(&file, &md)?, file))
}

/// [`describe_hot`], plus the whole content of a small object if it is in the page cache (a
/// larger or uncached one streams from the file).
fn open_hot(path: &Path, folder: bool) -> Option<OpenObject> {
    let (info, file) = describe_hot(path, folder)?;
    let small = (info.size <= SMALL_OBJECT).then(|| nowait::read_cached(&file, info.size)).flatten();
    Some(opened(info, Some(file), small))
}

/// Evaluates a conditional write against what `target` holds now. Call under the key lock.
fn check_precondition(
    root: &Path,
    target: &Path,
    folder: bool,
    implicit_folders: bool,
    precondition: Option<&Precondition>,
) -> UfsResult<()> {
    let Some(precondition) = precondition else { return Ok(()) };
    let current = match describe_blocking(root, target, folder, implicit_folders) {
        Ok((info, _)) => Some(info),
        Err(UfsError::NoSuchKey) => None,
        Err(e) => return Err(e),
    };
    match (precondition, current) {
        (Precondition::IfNoneMatchAny, Some(_)) => Err(UfsError::PreconditionFailed),
        (Precondition::IfNoneMatchAny, None) => Ok(()),
        (Precondition::IfMatch(_), None) => Err(UfsError::NoSuchKey),
        (Precondition::IfMatch(want), Some(info)) if *want != info.etag => Err(UfsError::PreconditionFailed),
        (Precondition::IfMatch(_), Some(_)) => Ok(()),
    }
}

fn read_error(e: io::Error) -> UfsError {
    if is_absent(&e) {
        return UfsError::NoSuchKey;
    }
    if e.raw_os_error() == Some(36 /* ENAMETOOLONG */) {
        return UfsError::KeyTooLong("a path component is longer than the file system allows".into());
    }
    UfsError::io("opening the object", e)
}

/// Not there, or a component on the way is a file (ENOTDIR): either way, no such object.
fn is_absent(e: &io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory
}

/// Deletes the temp file on drop unless the write was published.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl TempFile {
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Streams the body into `temp`, checking length and MD5, and fsyncs it.
pub(crate) async fn receive<S, E>(temp: &Path, mut body: S, checks: &PutChecks) -> UfsResult<([u8; 16], u64)>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let temp = temp.to_owned();
    let file = blocking(move || File::create(&temp).map_err(|e| UfsError::io("creating the temp file", e))).await?;
    let mut out = BatchWriter { file: Some(file), batch: Vec::new(), batched: 0 };
    let mut check = BodyCheck::new(checks);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UfsError::Body(e.into()))?;
        check.feed(&chunk)?;
        out.push(chunk).await?;
    }
    let (digest, size) = check.finish()?;
    out.finish().await?;
    Ok((digest, size))
}

/// Bytes gathered before a write: one trip to the blocking pool and one vectored write each.
const WRITE_BATCH_BYTES: usize = 1 << 20;
/// Chunks gathered before a write (below the kernel's IOV_MAX of 1024 buffers per call).
const WRITE_BATCH_CHUNKS: usize = 512;

/// Writes received chunks to a file in batches, without copying them: the chunks are handed to
/// the kernel as they came off the socket.
struct BatchWriter {
    /// `None` only while a batch is being written on the blocking pool.
    file: Option<File>,
    batch: Vec<Bytes>,
    batched: usize,
}

impl BatchWriter {
    async fn push(&mut self, chunk: Bytes) -> UfsResult<()> {
        self.batched += chunk.len();
        self.batch.push(chunk);
        if self.batched >= WRITE_BATCH_BYTES || self.batch.len() >= WRITE_BATCH_CHUNKS {
            self.write_batch(false).await?;
        }
        Ok(())
    }

    /// Writes what is left and fsyncs, in one trip.
    async fn finish(mut self) -> UfsResult<()> {
        self.write_batch(true).await
    }

    async fn write_batch(&mut self, sync: bool) -> UfsResult<()> {
        let batch = std::mem::take(&mut self.batch);
        self.batched = 0;
        let mut file = self
            .file
            .take()
            .ok_or_else(|| UfsError::io("writing the temp file", io::Error::other("a previous write failed")))?;
        let file = blocking(move || {
            write_all_vectored(&mut file, &batch).map_err(|e| UfsError::io("writing the temp file", e))?;
            if sync {
                file.sync_all().map_err(|e| UfsError::io("fsync of the temp file", e))?;
            }
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        Ok(())
    }
}

fn write_all_vectored(file: &mut File, chunks: &[Bytes]) -> io::Result<()> {
    use std::io::{IoSlice, Write as _};
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().filter(|c| !c.is_empty()).map(|c| IoSlice::new(c)).collect();
    let mut remaining = &mut slices[..];
    while !remaining.is_empty() {
        match file.write_vectored(remaining) {
            Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
            Ok(n) => IoSlice::advance_slices(&mut remaining, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes the fsynced temp file visible as `target`, atomically.
fn publish(root: &Path, temp: &Path, target: &Path) -> UfsResult<()> {
    let display = target.strip_prefix(root).unwrap_or(target).display().to_string();
    let parent = target.parent().unwrap_or(root);
    // A concurrent delete may prune the parent folder between its creation and the rename.
    for _ in 0..8 {
        create_dirs(root, parent, &display)?;
        match fs::rename(temp, target) {
            Ok(()) => {
                if let Ok(dir) = File::open(parent) {
                    dir.sync_all().map_err(|e| UfsError::io("fsync of the folder", e))?;
                }
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) if matches!(e.kind(), ErrorKind::IsADirectory | ErrorKind::DirectoryNotEmpty) => {
                return Err(conflict(&display, "a folder of that name exists"));
            }
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                return Err(conflict(&display, "an object is where a folder on its path would be"));
            }
            Err(e) => return Err(UfsError::io("publishing the object", e)),
        }
    }
    Err(UfsError::io("publishing the object", io::Error::other("the folder kept disappearing")))
}

fn create_dirs(root: &Path, dir: &Path, display: &str) -> UfsResult<()> {
    match fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::NotADirectory) => {
            Err(conflict(display, "an object is where a folder on its path would be"))
        }
        Err(e) if e.raw_os_error() == Some(36) => {
            Err(UfsError::KeyTooLong("a path component is longer than the file system allows".into()))
        }
        Err(e) => Err(UfsError::io(format!("creating folders under {}", root.display()), e)),
    }
}

fn conflict(key: &str, why: &str) -> UfsError {
    UfsError::Conflict(format!(
        "cannot store '{key}': {why}; a file-system mount cannot hold an object and a folder with the same name"
    ))
}

/// Removes `dir` and its parents while they are empty implicit folders, stopping at the root.
fn prune_empty_folders(root: &Path, dir: &Path) {
    let mut dir = dir.to_path_buf();
    while dir != root && dir.starts_with(root) {
        if meta::is_explicit_folder(&dir) || fs::remove_dir(&dir).is_err() {
            return;
        }
        if !dir.pop() {
            return;
        }
    }
}

/// One listing's walk of a mount's directory tree.
struct Walk<'a> {
    store: MetaStore<'a>,
    folder_objects: bool,
}

impl Walk<'_> {
    /// Visits the directory `dir` (whose keys start with `key_prefix`) in key order.
    fn dir(&self, dir: &Path, key_prefix: String, collector: &mut Collector) -> io::Result<Flow> {
        let children = match dircache::sorted_children(dir) {
            Ok(c) => c,
            // Removed while we walked: nothing there any more.
            Err(e) if is_absent(&e) => return Ok(Flow::Continue),
            Err(e) => return Err(e),
        };
        for (name, is_dir) in children.iter() {
            let (name, is_dir) = (name.as_str(), *is_dir);
            let key = format!("{key_prefix}{name}");
            let path = dir.join(name.trim_end_matches('/'));
            if !is_dir {
                if collector.offer(&key, || describe_file(&self.store, &path)) == Flow::Stop {
                    return Ok(Flow::Stop);
                }
                continue;
            }
            if collector.rolls_up(&key) {
                // One common prefix stands for the whole subtree, if anything in it is listed.
                let listed = || self.folder_objects || meta::is_explicit_folder(&path) || holds_objects(&path);
                if collector.offer_rolled_subtree(&key, listed) == Flow::Stop {
                    return Ok(Flow::Stop);
                }
                continue;
            }
            let describe = || {
                let md = fs::symlink_metadata(&path).ok().filter(Metadata::is_dir)?;
                self.store.describe_folder(&path, &md, self.folder_objects)
            };
            if collector.offer(&key, describe) == Flow::Stop {
                return Ok(Flow::Stop);
            }
            if collector.wants_subtree(&key) && self.dir(&path, key, collector)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

fn describe_file(store: &MetaStore<'_>, path: &Path) -> Option<ObjectInfo> {
    let md: Metadata = fs::symlink_metadata(path).ok().filter(Metadata::is_file)?;
    store.describe_file(path, &md).ok()
}

/// True when the directory's subtree holds an object: a file or a folder created as one. Stops
/// at the first it finds, so it is cheap for any directory that holds files.
fn holds_objects(dir: &Path) -> bool {
    let Ok(children) = dircache::sorted_children(dir) else { return false };
    if children.iter().any(|(_, is_dir)| !is_dir) {
        return true;
    }
    children.iter().any(|(name, _)| {
        let path = dir.join(name.trim_end_matches('/'));
        meta::is_explicit_folder(&path) || holds_objects(&path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn key(k: &str) -> ObjectKey {
        ObjectKey::parse(k).unwrap()
    }

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin {
        stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    async fn put(fs: &LocalFs, k: &str, data: &'static [u8]) -> UfsResult<ObjectInfo> {
        fs.put(&key(k), body(&[data]), ObjectMeta::default, PutChecks::default()).await
    }

    async fn names(fs: &LocalFs, query: ListQuery) -> Vec<String> {
        fs.list(query).await.unwrap().items.iter().map(|i| i.name().to_owned()).collect()
    }

    fn all() -> ListQuery {
        ListQuery { max_keys: 1000, ..Default::default() }
    }

    #[tokio::test]
    async fn put_get_delete_round_trip_and_prunes_implicit_folders() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        let info = put(&fs, "a/b/c.txt", b"hello").await.unwrap();
        assert_eq!(info.etag, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(std::fs::read(dir.path().join("a/b/c.txt")).unwrap(), b"hello");
        assert_eq!(fs.stat(&key("a/b/c.txt")).await.unwrap().etag, info.etag);
        assert_eq!(names(&fs, all()).await, ["a/b/c.txt"]);
        let seed = fs.clone().with_folder_objects(true);
        assert_eq!(names(&seed, all()).await, ["a/", "a/b/", "a/b/c.txt"]);
        fs.delete(&key("a/b/c.txt")).await.unwrap();
        assert!(!dir.path().join("a").exists());
        fs.delete(&key("a/b/c.txt")).await.unwrap();
    }

    #[tokio::test]
    async fn explicit_folders_survive_deletes_below_them() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        put(&fs, "keep/", b"").await.unwrap();
        put(&fs, "keep/x", b"1").await.unwrap();
        assert_eq!(names(&fs, all()).await, ["keep/", "keep/x"]);
        fs.delete(&key("keep/x")).await.unwrap();
        assert_eq!(names(&fs, all()).await, ["keep/"]);
        fs.delete(&key("keep/")).await.unwrap();
        assert!(names(&fs, all()).await.is_empty());
    }

    #[tokio::test]
    async fn object_and_folder_of_one_name_conflict_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        put(&fs, "f", b"file").await.unwrap();
        assert!(matches!(put(&fs, "f/x", b"1").await, Err(UfsError::Conflict(_))));
        put(&fs, "d/x", b"1").await.unwrap();
        assert!(matches!(put(&fs, "d", b"2").await, Err(UfsError::Conflict(_))));
        assert_eq!(names(&fs, all()).await, ["d/x", "f"]);
        assert_eq!(fs.clean_temp_files().unwrap(), 0, "no temp file left behind");
    }

    #[tokio::test]
    async fn bad_digest_and_short_body_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        let checks = PutChecks { content_md5: Some([0; 16]), ..Default::default() };
        let r = fs.put(&key("x"), body(&[b"data"]), ObjectMeta::default, checks).await;
        assert!(matches!(r, Err(UfsError::BadDigest)));
        let checks = PutChecks { expected_len: Some(10), ..Default::default() };
        let r = fs.put(&key("x"), body(&[b"data"]), ObjectMeta::default, checks).await;
        assert!(matches!(r, Err(UfsError::IncompleteBody { expected: 10, got: 4 })));
        let failing = stream::iter(vec![Ok(Bytes::from_static(b"part")), Err(io::Error::other("dropped"))]);
        let r = fs.put(&key("x"), failing, ObjectMeta::default, PutChecks::default()).await;
        assert!(matches!(r, Err(UfsError::Body(_))));
        assert!(!dir.path().join("x").exists());
        assert_eq!(fs.clean_temp_files().unwrap(), 0);
    }

    #[tokio::test]
    async fn foreign_files_get_an_md5_etag_that_tracks_changes() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        std::fs::write(dir.path().join("ext"), b"hello").unwrap();
        assert_eq!(fs.stat(&key("ext")).await.unwrap().etag, "5d41402abc4b2a76b9719d911017c592");
        std::fs::write(dir.path().join("ext"), b"hello world").unwrap();
        assert_eq!(fs.stat(&key("ext")).await.unwrap().etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");
    }

    #[tokio::test]
    async fn listing_order_is_binary_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        for k in ["b-c", "b/x", "b0", "a", "B"] {
            put(&fs, k, b"").await.unwrap();
        }
        assert_eq!(names(&fs, all()).await, ["B", "a", "b-c", "b/x", "b0"]);
        assert_eq!(names(&fs.clone().with_folder_objects(true), all()).await, ["B", "a", "b-c", "b/", "b/x", "b0"]);
        let q = ListQuery { delimiter: Some("/".into()), start_after: Some("b-c".into()), max_keys: 1, ..all() };
        let page = fs.list(q).await.unwrap();
        assert_eq!(page.items[0].name(), "b/");
        assert!(page.truncated);
    }

    #[tokio::test]
    async fn aws_listings_show_folders_only_as_prefixes_of_objects() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        put(&fs, "deep/x/y/z", b"1").await.unwrap();
        put(&fs, "marked/", b"").await.unwrap();
        put(&fs, "top", b"2").await.unwrap();
        std::fs::create_dir_all(dir.path().join("empty/deeper")).unwrap();
        let slash = |prefix: &str| ListQuery { prefix: prefix.into(), delimiter: Some("/".into()), ..all() };
        assert_eq!(names(&fs, slash("")).await, ["deep/", "marked/", "top"]);
        assert_eq!(names(&fs, slash("deep/")).await, ["deep/x/"]);
        assert!(names(&fs, slash("empty/")).await.is_empty());
        let prefixed = ListQuery { prefix: "deep/".into(), ..all() };
        assert_eq!(names(&fs, prefixed).await, ["deep/x/y/z"]);
        assert!(matches!(fs.stat(&key("deep/")).await, Err(UfsError::NoSuchKey)));
        assert_eq!(fs.stat(&key("marked/")).await.unwrap().size, 0);

        let seed = fs.clone().with_folder_objects(true);
        assert_eq!(names(&seed, slash("")).await, ["deep/", "empty/", "marked/", "top"]);
        let prefixed = ListQuery { prefix: "deep/".into(), ..all() };
        assert_eq!(names(&seed, prefixed).await, ["deep/", "deep/x/", "deep/x/y/", "deep/x/y/z"]);
        assert_eq!(seed.stat(&key("deep/")).await.unwrap().etag, meta::EMPTY_ETAG);
    }

    #[tokio::test]
    async fn aws_listings_page_through_prefixes_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        for k in ["a/1", "b/c/2", "d", "e/"] {
            put(&fs, k, b"").await.unwrap();
        }
        std::fs::create_dir_all(dir.path().join("c/empty")).unwrap();
        let mut seen = Vec::new();
        let mut start_after = None;
        loop {
            let q = ListQuery { delimiter: Some("/".into()), start_after: start_after.clone(), max_keys: 1, ..all() };
            let page = fs.list(q).await.unwrap();
            seen.extend(page.items.iter().map(|i| i.name().to_owned()));
            if !page.truncated {
                break;
            }
            start_after = page.items.last().map(|i| i.name().to_owned());
        }
        assert_eq!(seen, ["a/", "b/", "d", "e/"]);
    }

    #[tokio::test]
    async fn state_folder_is_never_listed() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        std::fs::create_dir_all(dir.path().join(STATE_DIR).join(TMP_DIR)).unwrap();
        std::fs::write(dir.path().join(STATE_DIR).join("secret"), b"x").unwrap();
        assert!(names(&fs, all()).await.is_empty());
        assert!(fs.is_empty().unwrap());
    }
}
