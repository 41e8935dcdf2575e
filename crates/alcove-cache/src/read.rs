//! Reads of cached buckets: object metadata kept for `cache.metadata_sync_interval`, and object
//! bytes served page by page from the page store, each missing page fetched once from the
//! under-storage with a ranged read of exactly that version.
//!
//! A page key carries the object's version (its ETag, or size and modification time), so a
//! changed object is never served from old pages: once the metadata is refreshed, its pages are
//! simply other keys. Within a request the pages after the one being sent are fetched ahead
//! (`cache.read_ahead` of them), and a reader that comes back for the bytes right after its last
//! read (a sequential reader using ranged GETs) gets the pages after its range fetched ahead too.
//!
//! It may not parse S3 requests or know where the bytes come from beyond the store's interface.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alcove_ufs::stats::{Histogram, LatencyRecorder};
use alcove_ufs::{Bucket, ByteStream, ObjectInfo, ObjectKey, ObjectReader, OpenObject, UfsError, UfsResult};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use tokio::sync::OnceCell;

use crate::{ObjectVersion, PageKey, PageStore, PageStoreStats};

/// Objects whose metadata is remembered at most (the oldest half is dropped beyond it).
const KNOWN_OBJECTS: usize = 100_000;
/// Readers whose last position is remembered, to tell sequential readers apart.
const TRACKED_READERS: usize = 10_000;

/// How long the metadata of a cached object is trusted before the under-storage is asked again
/// (`cache.metadata_sync_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSync {
    /// Every request asks the under-storage (`0`).
    Always,
    /// Asked again once this old.
    Every(Duration),
    /// Only changes made through Alcove are seen (`-1`).
    Never,
}

impl MetadataSync {
    fn fresh(self, checked: Instant) -> bool {
        match self {
            MetadataSync::Always => false,
            MetadataSync::Every(interval) => checked.elapsed() < interval,
            MetadataSync::Never => true,
        }
    }

    /// Whether metadata still fresh is old enough to be re-checked in the background, so that an
    /// object read all the time never makes a reader wait for the check: its last quarter.
    fn due_soon(self, checked: Instant) -> bool {
        matches!(self, MetadataSync::Every(interval) if checked.elapsed() >= interval - interval / 4)
    }
}

/// How cached reads behave (`[cache]`).
#[derive(Debug, Clone, Copy)]
pub struct ReadSettings {
    /// Pages fetched ahead of a sequential reader.
    pub read_ahead: u64,
    pub metadata_sync: MetadataSync,
}

/// Figures of the cached reads, beside the page store's own.
#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    pub pages: PageStoreStats,
    /// Ranged reads sent to the under-storage for missing pages, and their bytes.
    pub ufs_reads: u64,
    pub ufs_read_bytes: u64,
    /// Failed ranged reads.
    pub ufs_read_errors: u64,
    /// Seconds the under-storage took per page read: counts of reads at or under each bound.
    pub ufs_read_seconds: Histogram,
    /// Pages fetched ahead of readers (whether or not they were read later).
    pub read_ahead_pages: u64,
    /// Metadata asked of the under-storage because none was known or it was too old.
    pub metadata_refreshes: u64,
    /// Requests served from known metadata while the under-storage could not be reached.
    pub served_while_unavailable: u64,
}

#[derive(Default)]
struct Counters {
    ufs_reads: AtomicU64,
    ufs_read_bytes: AtomicU64,
    ufs_read_errors: AtomicU64,
    latency: LatencyRecorder,
    read_ahead_pages: AtomicU64,
    metadata_refreshes: AtomicU64,
    served_while_unavailable: AtomicU64,
}

impl Counters {
    fn observe_read(&self, took: Duration, bytes: usize) {
        self.ufs_reads.fetch_add(1, Relaxed);
        self.ufs_read_bytes.fetch_add(bytes as u64, Relaxed);
        self.latency.observe(took);
    }
}

/// What is known of one object.
#[derive(Clone)]
struct Known {
    info: ObjectInfo,
    checked: Instant,
}

/// Object identity in the maps below: bucket and key.
type ObjectId = (String, String);

/// Stripes of forgetting generations (a power of two).
const GENERATION_STRIPES: usize = 256;

/// How often objects were forgotten, per stripe of objects: a metadata answer is remembered only
/// if its object's stripe did not move while it was asked for. Striped so that writes to other
/// objects rarely stop an answer from being remembered; one counter per object would grow
/// without bound.
struct Generations {
    stripes: Box<[AtomicU64]>,
}

impl Default for Generations {
    fn default() -> Self {
        Self { stripes: (0..GENERATION_STRIPES).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl Generations {
    fn stripe(&self, id: &ObjectId) -> &AtomicU64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(id, &mut hasher);
        &self.stripes[std::hash::Hasher::finish(&hasher) as usize % GENERATION_STRIPES]
    }

    fn of(&self, id: &ObjectId) -> u64 {
        self.stripe(id).load(SeqCst)
    }

    fn bump(&self, id: &ObjectId) {
        self.stripe(id).fetch_add(1, SeqCst);
    }

    fn bump_all(&self) {
        for stripe in self.stripes.iter() {
            stripe.fetch_add(1, SeqCst);
        }
    }
}

/// The cached reads of every cached bucket of a worker.
pub struct CachedReads {
    pages: PageStore,
    settings: ReadSettings,
    known: Mutex<HashMap<ObjectId, Known>>,
    /// Objects whose metadata is being re-checked in the background.
    refreshing: Mutex<HashSet<ObjectId>>,
    /// Bumped whenever an object is forgotten: metadata asked for before is stale.
    forgotten: Generations,
    /// Until then, metadata answers are not remembered: the cluster's ring changed, and until
    /// every worker routes by the new ring a key may be written through a worker that is not its
    /// owner here.
    settling_until: Mutex<Option<Instant>>,
    /// Where each recent reader's last read ended.
    positions: Mutex<HashMap<ObjectId, u64>>,
    counters: Counters,
}

impl CachedReads {
    pub fn new(pages: PageStore, settings: ReadSettings) -> Arc<Self> {
        Arc::new(Self {
            pages,
            settings,
            known: Mutex::default(),
            refreshing: Mutex::default(),
            forgotten: Generations::default(),
            settling_until: Mutex::default(),
            positions: Mutex::default(),
            counters: Counters::default(),
        })
    }

    pub fn pages(&self) -> &PageStore {
        &self.pages
    }

    /// Describes and opens `key`; its bytes are read through the page store.
    pub async fn open(self: &Arc<Self>, bucket: &Bucket, key: &ObjectKey) -> UfsResult<OpenObject> {
        let info = self.stat(bucket, key).await?;
        if key.is_folder() || info.size == 0 {
            return Ok(OpenObject::empty(info));
        }
        let fetcher = PageFetcher(Arc::new(PageFetchInner {
            reads: Arc::clone(self),
            bucket: bucket.clone(),
            key: key.clone(),
            version: version_of(&info),
            info: info.clone(),
            source: OnceCell::new(),
        }));
        Ok(OpenObject::with_reader(info, Arc::new(fetcher)))
    }

    /// The object's description: remembered while fresh, else asked of the under-storage. While
    /// the under-storage cannot be reached, what was known keeps being served.
    pub async fn stat(self: &Arc<Self>, bucket: &Bucket, key: &ObjectKey) -> UfsResult<ObjectInfo> {
        let id = object_id(bucket, key);
        let known = lock(&self.known).get(&id).cloned();
        if let Some(k) = known.as_ref().filter(|k| self.settings.metadata_sync.fresh(k.checked)) {
            if self.settings.metadata_sync.due_soon(k.checked) {
                self.recheck_in_background(bucket, key, id);
            }
            return Ok(k.info.clone());
        }
        self.counters.metadata_refreshes.fetch_add(1, Relaxed);
        let generation = self.forgotten.of(&id);
        match bucket.store.stat(key).await {
            Ok(info) => {
                self.remember(id, &info, generation);
                Ok(info)
            }
            Err(e @ (UfsError::Unavailable { .. } | UfsError::SlowDown { .. })) => match known {
                Some(k) => {
                    self.counters.served_while_unavailable.fetch_add(1, Relaxed);
                    Ok(k.info)
                }
                None => Err(e),
            },
            Err(e) => {
                if matches!(e, UfsError::NoSuchKey) {
                    self.drop_known(&id).await;
                }
                Err(e)
            }
        }
    }

    /// Asks the under-storage for `key`'s metadata while the known one is still served; what it
    /// answers is remembered unless something was forgotten meanwhile (a write through Alcove).
    /// A failed check changes nothing: the check at expiry decides.
    fn recheck_in_background(self: &Arc<Self>, bucket: &Bucket, key: &ObjectKey, id: ObjectId) {
        if !lock(&self.refreshing).insert(id.clone()) {
            return;
        }
        let (reads, bucket, key) = (Arc::clone(self), bucket.clone(), key.clone());
        let generation = self.forgotten.of(&id);
        tokio::spawn(async move {
            reads.counters.metadata_refreshes.fetch_add(1, Relaxed);
            let checked = bucket.store.stat(&key).await;
            lock(&reads.refreshing).remove(&id);
            match checked {
                Ok(info) => reads.remember(id, &info, generation),
                Err(e) => tracing::debug!(error = %e, "a background metadata check failed"),
            }
        });
    }

    /// Remembers `info`, asked of the under-storage when the object's generation was
    /// `generation`, unless the object was forgotten since: then the answer may predate a write
    /// through Alcove, and remembering it would serve the old version until the next check.
    fn remember(&self, id: ObjectId, info: &ObjectInfo, generation: u64) {
        let mut known = lock(&self.known);
        // Checked under the lock that `drop_known` removes under, after its bump: either this
        // sees the bump, or the removal comes after this insert.
        if self.forgotten.of(&id) != generation || self.settling() {
            return;
        }
        if known.len() >= KNOWN_OBJECTS {
            let drop: Vec<ObjectId> = known.keys().take(KNOWN_OBJECTS / 2).cloned().collect();
            for id in drop {
                known.remove(&id);
            }
        }
        known.insert(id, Known { info: info.clone(), checked: Instant::now() });
    }

    fn settling(&self) -> bool {
        lock(&self.settling_until).is_some_and(|until| Instant::now() < until)
    }

    /// Forgets what is known of `key` and drops the pages of the version it had: it was changed
    /// through Alcove. (Pages of a version no longer known are unreachable anyway — every key
    /// names its version — and age out.)
    pub async fn forget(&self, bucket: &Bucket, key: &ObjectKey) {
        self.drop_known(&object_id(bucket, key)).await;
    }

    /// Forgets what is known of every object (their pages stay: a page names its object's
    /// version). Called when this worker's share of the keys changes: objects it takes over may
    /// have been changed through the worker that owned them.
    pub fn forget_all_metadata(&self) {
        self.forget_all_metadata_settling(Duration::ZERO);
    }

    /// Forgets what is known of every object, and remembers nothing new for `settle`: the time
    /// the other workers of a cluster may take to route by the same ring as this one.
    pub fn forget_all_metadata_settling(&self, settle: Duration) {
        if !settle.is_zero() {
            let until = Instant::now() + settle;
            let mut settling = lock(&self.settling_until);
            *settling = Some(settling.map_or(until, |t| t.max(until)));
        }
        self.forgotten.bump_all();
        lock(&self.known).clear();
        lock(&self.positions).clear();
    }

    async fn drop_known(&self, id: &ObjectId) {
        self.forgotten.bump(id);
        let known = lock(&self.known).remove(id);
        lock(&self.positions).remove(id);
        if let Some(k) = known {
            self.pages.remove_object(&id.0, &id.1, &version_of(&k.info), k.info.size).await;
        }
    }

    /// Fills the cache with every page of `key` (for `alcove load`): the number of page bytes
    /// that had to be read from the under-storage.
    pub async fn load(self: &Arc<Self>, bucket: &Bucket, key: &ObjectKey) -> UfsResult<u64> {
        let info = self.stat(bucket, key).await?;
        if key.is_folder() || info.size == 0 {
            return Ok(0);
        }
        let reader = self.open(bucket, key).await?.reader();
        let Some(reader) = reader else { return Ok(0) };
        let mut pages = reader.read(0..info.size).await?;
        while let Some(page) = pages.next().await {
            page.map_err(|e| UfsError::io("loading the object", e))?;
        }
        Ok(info.size)
    }

    /// Drops every page of `key` (for `alcove free`): the number of pages removed.
    pub async fn free(&self, bucket: &Bucket, key: &ObjectKey) -> u64 {
        let id = object_id(bucket, key);
        lock(&self.known).remove(&id);
        self.pages.remove_path(&id.0, &id.1).await
    }

    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            pages: self.pages.stats(),
            ufs_reads: c.ufs_reads.load(Relaxed),
            ufs_read_bytes: c.ufs_read_bytes.load(Relaxed),
            ufs_read_errors: c.ufs_read_errors.load(Relaxed),
            ufs_read_seconds: c.latency.snapshot(),
            read_ahead_pages: c.read_ahead_pages.load(Relaxed),
            metadata_refreshes: c.metadata_refreshes.load(Relaxed),
            served_while_unavailable: c.served_while_unavailable.load(Relaxed),
        }
    }

    /// Records a read of `span` and says where read-ahead beyond it should start: the end of
    /// the span when the reader continues where its last read ended.
    fn follow_reader(&self, id: &ObjectId, span: &Range<u64>) -> Option<u64> {
        let mut positions = lock(&self.positions);
        let sequential = positions.get(id).is_some_and(|&end| end == span.start);
        if positions.len() >= TRACKED_READERS {
            positions.clear();
        }
        positions.insert(id.clone(), span.end);
        sequential.then_some(span.end)
    }
}

fn object_id(bucket: &Bucket, key: &ObjectKey) -> ObjectId {
    (bucket.name.clone(), key.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one version of one object through the page store; shared by the pages of a read and
/// by its read-ahead.
#[derive(Clone)]
struct PageFetcher(Arc<PageFetchInner>);

struct PageFetchInner {
    reads: Arc<CachedReads>,
    bucket: Bucket,
    key: ObjectKey,
    info: ObjectInfo,
    version: ObjectVersion,
    /// The under-storage's reader of this version, made on the first miss.
    source: OnceCell<Arc<dyn ObjectReader>>,
}

impl ObjectReader for PageFetcher {
    fn read(&self, span: Range<u64>) -> BoxFuture<'static, UfsResult<ByteStream>> {
        self.clone().stream(span).boxed()
    }
}

impl PageFetcher {
    fn page_size(&self) -> u64 {
        self.0.reads.pages.page_size()
    }

    fn page_key(&self, index: u64) -> PageKey {
        PageKey {
            mount: self.0.bucket.name.clone(),
            path: self.0.key.to_string(),
            version: self.0.version.clone(),
            index,
        }
    }

    /// The bytes of `span`: the first page is at hand before the stream is returned (so a
    /// failure is still an error of the request, not a cut body); the next ones stream with up
    /// to `read_ahead` pages fetched ahead.
    async fn stream(self, span: Range<u64>) -> UfsResult<ByteStream> {
        let page_size = self.page_size();
        let id = (self.0.bucket.name.clone(), self.0.key.to_string());
        if let Some(after) = self.0.reads.follow_reader(&id, &span) {
            self.read_ahead_from(after);
        }
        let window = self.0.reads.settings.read_ahead.max(1) as usize;
        let fetcher = self.clone();
        let mut pages = futures::stream::iter(PageKey::indices(span.start, span.end, page_size))
            .map(move |index| {
                let fetcher = fetcher.clone();
                let span = span.clone();
                async move {
                    let page = fetcher.page(index).await?;
                    let start = index * page_size;
                    let from = span.start.saturating_sub(start) as usize;
                    let to = (span.end - start).min(page.len() as u64) as usize;
                    Ok::<_, UfsError>(page.slice(from..to))
                }
            })
            .buffered(window);
        let first = match pages.next().await {
            Some(first) => first?,
            None => return Ok(futures::stream::empty().boxed()),
        };
        let rest = pages.map_err(|e| std::io::Error::other(e.to_string()));
        Ok(futures::stream::once(async move { Ok(first) }).chain(rest).boxed())
    }

    /// Fetches the `read_ahead` pages from byte `offset` on into the cache, in the background.
    fn read_ahead_from(&self, offset: u64) {
        let page_size = self.page_size();
        let first = offset.div_ceil(page_size);
        let last = self.0.info.size.div_ceil(page_size).min(first + self.0.reads.settings.read_ahead);
        for index in first..last {
            let fetcher = self.clone();
            self.0.reads.counters.read_ahead_pages.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                if let Err(e) = fetcher.page(index).await {
                    tracing::debug!(error = %e, "read-ahead of a page failed");
                }
            });
        }
    }

    /// One page, from the page store or else from the under-storage (once, however many ask).
    async fn page(&self, index: u64) -> UfsResult<Bytes> {
        let key = self.page_key(index);
        let fetched = self.0.reads.pages.get_or_fetch(&key, || self.fetch(index)).await;
        match fetched {
            Ok((page, _)) => Ok(page),
            Err(shared) => Err(Arc::try_unwrap(shared).unwrap_or_else(|e| e.duplicate())),
        }
    }

    /// Reads page `index` of this version from the under-storage.
    async fn fetch(&self, index: u64) -> Result<Bytes, Arc<UfsError>> {
        let inner = &*self.0;
        let started = Instant::now();
        let fetched = async {
            let source = inner.source.get_or_try_init(|| inner.bucket.store.reader(&inner.key, &inner.info)).await?;
            let page_size = self.page_size();
            let span = index * page_size..((index + 1) * page_size).min(inner.info.size);
            let mut page = BytesMut::with_capacity((span.end - span.start) as usize);
            let mut body = source.read(span).await?;
            while let Some(chunk) = body.next().await {
                page.extend_from_slice(&chunk.map_err(page_read_error)?);
            }
            Ok::<_, UfsError>(page.freeze())
        }
        .await;
        match fetched {
            Ok(page) => {
                inner.reads.counters.observe_read(started.elapsed(), page.len());
                Ok(page)
            }
            Err(e) => {
                inner.reads.counters.ufs_read_errors.fetch_add(1, Relaxed);
                if matches!(e, UfsError::Changed | UfsError::NoSuchKey) {
                    // The object is another version now: what was known of it is stale.
                    let id = (inner.bucket.name.clone(), inner.key.to_string());
                    inner.reads.forgotten.bump(&id);
                    lock(&inner.reads.known).remove(&id);
                }
                Err(Arc::new(e))
            }
        }
    }
}

/// A failed read of a page's bytes: the object changed meanwhile, or the read itself failed.
fn page_read_error(e: std::io::Error) -> UfsError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<UfsError>()) {
        Some(UfsError::Changed) => UfsError::Changed,
        _ => UfsError::io("reading a page from the under-storage", e),
    }
}

/// The version pages of `info` are keyed by: the ETag, or size and time when there is none.
fn version_of(info: &ObjectInfo) -> ObjectVersion {
    if info.etag.is_empty() {
        ObjectVersion::SizeMtime { size: info.size, mtime_ns: info.last_modified.unix_timestamp_nanos() }
    } else {
        ObjectVersion::ETag(info.etag.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PageStoreConfig;

    fn info(etag: &str) -> ObjectInfo {
        ObjectInfo {
            size: 1,
            last_modified: time::OffsetDateTime::UNIX_EPOCH,
            etag: etag.into(),
            meta: Default::default(),
        }
    }

    async fn reads() -> Arc<CachedReads> {
        let config = PageStoreConfig { memory_size: 1 << 20, ..Default::default() };
        let pages = PageStore::open(config).await.unwrap();
        CachedReads::new(pages, ReadSettings { read_ahead: 0, metadata_sync: MetadataSync::Never })
    }

    fn known_etag(reads: &CachedReads, id: &ObjectId) -> Option<String> {
        lock(&reads.known).get(id).map(|k| k.info.etag.clone())
    }

    #[tokio::test]
    async fn an_answer_asked_before_a_write_is_not_remembered() {
        let reads = reads().await;
        let id: ObjectId = ("b".into(), "k".into());
        // A reader asks the under-storage (generation taken), a write through Alcove forgets the
        // object meanwhile, then the reader's (old) answer arrives: it must not be kept.
        let asked = reads.forgotten.of(&id);
        reads.drop_known(&id).await;
        reads.remember(id.clone(), &info("old"), asked);
        assert_eq!(known_etag(&reads, &id), None);
        // An answer asked after the write is kept.
        reads.remember(id.clone(), &info("new"), reads.forgotten.of(&id));
        assert_eq!(known_etag(&reads, &id).as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn forgetting_one_object_does_not_spoil_answers_about_others() {
        let reads = reads().await;
        let (a, b): (ObjectId, ObjectId) = (("b".into(), "a".into()), ("b".into(), "b".into()));
        let asked = reads.forgotten.of(&b);
        // Unless they share a stripe (1 in 256), a write to `a` leaves `b`'s answer good.
        if !std::ptr::eq(reads.forgotten.stripe(&a), reads.forgotten.stripe(&b)) {
            reads.drop_known(&a).await;
        }
        reads.remember(b.clone(), &info("b1"), asked);
        assert_eq!(known_etag(&reads, &b).as_deref(), Some("b1"));
        // Forgetting everything (the ring changed) spoils every answer in flight.
        let asked = reads.forgotten.of(&b);
        reads.forget_all_metadata();
        reads.remember(b.clone(), &info("b2"), asked);
        assert_eq!(known_etag(&reads, &b), None);
    }

    #[tokio::test]
    async fn nothing_is_remembered_while_the_ring_settles() {
        let reads = reads().await;
        let id: ObjectId = ("b".into(), "k".into());
        reads.forget_all_metadata_settling(Duration::from_millis(300));
        reads.remember(id.clone(), &info("during"), reads.forgotten.of(&id));
        assert_eq!(known_etag(&reads, &id), None);
        tokio::time::sleep(Duration::from_millis(350)).await;
        reads.remember(id.clone(), &info("after"), reads.forgotten.of(&id));
        assert_eq!(known_etag(&reads, &id).as_deref(), Some("after"));
    }
}
