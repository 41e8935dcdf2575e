//! The page store: a memory tier in front of disk tiers, single-flight fetches, removal and stats.
//!
//! Pages enter through [`PageStore::insert`] (or a fetch in [`PageStore::get_or_fetch`]): into
//! memory at once, and onto one disk tier through that tier's bounded write queue (a full queue
//! drops the page from the disk tier, it is never waited for). Disk tiers are inclusive of memory
//! (write-through), so a restart finds every page that reached a disk. A disk hit is promoted into
//! memory. Each page goes to one disk tier, chosen by rendezvous hashing weighted by tier size,
//! and is looked up in all of them, so that changing the folder list loses no pages still there.
//!
//! This module may not know about S3, HTTP or the under-storage: the caller's `fetch` is an
//! opaque future, and objects exist here only as (mount, path, version, size).

use std::any::Any;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::disk::{DiskTier, Writer};
use crate::error::PageStoreError;
use crate::policy::S3Fifo;
use crate::stats::{PageStoreStats, StoreCounters, TierCounters, TierStats};
use crate::{ObjectVersion, PageKey, DEFAULT_PAGE_SIZE};

/// Largest page size accepted (page lengths are stored as u32 on disk, and a bigger page would
/// defeat the point of paging).
const MAX_PAGE_SIZE: u64 = 1 << 30;
/// Bytes of pages a disk tier's write queue may hold before new pages skip that tier.
const WRITE_QUEUE_BYTES: u64 = 64 << 20;

/// One cache folder (`[[cache.dirs]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskTierConfig {
    pub path: PathBuf,
    /// Bytes the tier may take on disk, headers and bookkeeping included.
    pub size: u64,
}

/// The page store's settings (`[cache]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageStoreConfig {
    /// Bytes per page; the last page of an object may be shorter.
    pub page_size: u64,
    /// Bytes of the memory tier, per-page bookkeeping included; 0 for none.
    pub memory_size: u64,
    /// Disk tiers; none for a memory-only store.
    pub dirs: Vec<DiskTierConfig>,
}

impl Default for PageStoreConfig {
    fn default() -> Self {
        PageStoreConfig { page_size: DEFAULT_PAGE_SIZE, memory_size: 0, dirs: Vec::new() }
    }
}

/// Where `get_or_fetch` found its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Memory,
    Disk,
    /// This caller ran the fetch.
    Fetched,
    /// Another caller's fetch (or disk read) of the same page, already under way, answered.
    Joined,
}

/// A shared handle on the page store; clones are cheap and see the same pages.
#[derive(Clone)]
pub struct PageStore {
    inner: Arc<Inner>,
}

struct DiskSlot {
    tier: Arc<DiskTier>,
    /// `None` for a tier that could not be opened (it holds nothing and takes nothing).
    writer: Option<Writer>,
}

/// What joiners of a flight receive: the page, or the leader's error (type-erased, since callers
/// of one page may use different error types; a joiner whose type does not match fetches itself).
type FlightResult = Result<Bytes, Arc<dyn Any + Send + Sync>>;

struct Flight {
    id: u64,
    result: watch::Receiver<Option<FlightResult>>,
}

struct Inner {
    page_size: u64,
    memory: MemoryTier,
    disks: Vec<DiskSlot>,
    flights: Mutex<HashMap<PageKey, Flight>>,
    next_flight: AtomicU64,
    counters: StoreCounters,
}

impl PageStore {
    /// Opens the store, creating the disk folders or rebuilding their indexes from what they hold.
    /// A folder that cannot be used is logged and left out (the store works without it); only a
    /// bad configuration or a folder locked by another store is an error.
    pub async fn open(config: PageStoreConfig) -> Result<Self, PageStoreError> {
        let page_size = config.page_size;
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            return Err(PageStoreError::PageSize(page_size));
        }
        let mut seen = HashSet::new();
        for dir in &config.dirs {
            if !seen.insert(&dir.path) {
                return Err(PageStoreError::DuplicateDir(dir.path.clone()));
            }
        }
        // Folders recover side by side: each is a pass over its own slot headers.
        let opening: Vec<_> = config
            .dirs
            .iter()
            .map(|dir| {
                let (path, size) = (dir.path.clone(), dir.size);
                tokio::task::spawn_blocking(move || DiskTier::open(&path, size, page_size))
            })
            .collect();
        let queue_len = (WRITE_QUEUE_BYTES / page_size).clamp(4, 1024) as usize;
        let mut disks = Vec::with_capacity(opening.len());
        let mut first_error = None;
        for (opened, dir) in opening.into_iter().zip(&config.dirs) {
            let opened = match opened.await {
                Ok(Ok(opened)) => opened,
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                    continue;
                }
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            };
            let tier = Arc::new(opened.tier);
            let writer = if tier.usable() {
                tracing::info!(dir = %dir.path.display(), size = dir.size, pages = opened.recovered, "cache folder open");
                match Writer::start(&tier, queue_len) {
                    Ok(writer) => Some(writer),
                    Err(e) => {
                        tracing::error!(dir = %dir.path.display(), error = %e, "no writer thread for cache folder; it is read-only");
                        None
                    }
                }
            } else {
                None
            };
            disks.push(DiskSlot { tier, writer });
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(PageStore {
            inner: Arc::new(Inner {
                page_size,
                memory: MemoryTier::new(config.memory_size),
                disks,
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
                counters: StoreCounters::default(),
            }),
        })
    }

    pub fn page_size(&self) -> u64 {
        self.inner.page_size
    }

    /// The page, from memory or else from disk (then promoted into memory).
    pub async fn get(&self, key: &PageKey) -> Option<Bytes> {
        if let Some(page) = self.inner.memory.get(key) {
            return Some(page);
        }
        if let Some(page) = self.read_disk(key).await {
            self.inner.memory.insert(key.clone(), page.clone());
            return Some(page);
        }
        TierCounters::add(&self.inner.counters.misses, 1);
        None
    }

    /// The page from the cache, or from `fetch` (then cached). Concurrent callers for one page
    /// share one disk read or one fetch; they get its page or a clone of its error, and an error
    /// is not cached. If the caller running the fetch is cancelled, a waiting caller takes over.
    pub async fn get_or_fetch<F, Fut, E>(&self, key: &PageKey, fetch: F) -> Result<(Bytes, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: Clone + Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let lead = loop {
            if let Some(page) = inner.memory.get(key) {
                return Ok((page, Source::Memory));
            }
            let mut result = {
                let mut flights = inner.flights.lock();
                match flights.get(key) {
                    Some(flight) => flight.result.clone(),
                    None => {
                        let (sender, result) = watch::channel(None);
                        let id = inner.next_flight.fetch_add(1, Relaxed);
                        flights.insert(key.clone(), Flight { id, result });
                        break FlightGuard { inner, key, id, sender };
                    }
                }
            };
            TierCounters::add(&inner.counters.joins, 1);
            let outcome = result.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
            match outcome {
                Some(Ok(page)) => return Ok((page, Source::Joined)),
                Some(Err(error)) => {
                    if let Some(error) = error.downcast_ref::<E>() {
                        return Err(error.clone());
                    }
                    // Another error type than this caller's: it fetches for itself.
                }
                // The leader was cancelled: go round, and maybe lead.
                None => {}
            }
        };
        // Between this caller's memory miss and its taking the lead, another flight of this page
        // may have finished: look again before going to disk or the remote.
        if let Some(page) = inner.memory.get(key) {
            lead.finish(Ok(page.clone()));
            return Ok((page, Source::Memory));
        }
        if let Some(page) = self.read_disk(key).await {
            inner.memory.insert(key.clone(), page.clone());
            lead.finish(Ok(page.clone()));
            return Ok((page, Source::Disk));
        }
        TierCounters::add(&inner.counters.misses, 1);
        TierCounters::add(&inner.counters.fetches, 1);
        match fetch().await {
            Ok(page) => {
                let page = self.insert_page(key.clone(), page);
                lead.finish(Ok(page.clone()));
                Ok((page, Source::Fetched))
            }
            Err(error) => {
                lead.finish(Err(Arc::new(error.clone())));
                Err(error)
            }
        }
    }

    /// Caches `page` (at most `page_size` bytes; a longer one is not cached): in memory now, on
    /// disk in the background. Never waits: a disk tier whose write queue is full skips the page.
    pub fn insert(&self, key: PageKey, page: Bytes) {
        self.insert_page(key, page);
    }

    /// `insert`, returning the page as the memory tier holds it.
    fn insert_page(&self, key: PageKey, page: Bytes) -> Bytes {
        let inner = &*self.inner;
        if page.len() as u64 > inner.page_size {
            tracing::debug!(page = %key, len = page.len(), "page longer than the page size; not cached");
            return page;
        }
        // The memory tier charges a page its length, which is only honest if the page owns its
        // buffer: a page sliced out of a larger body would keep that whole body alive. One copy
        // per fetched page (tens of microseconds per MiB) buys a bound that holds.
        let page = if inner.memory.capacity() > 0 {
            let owned = Bytes::copy_from_slice(&page);
            inner.memory.insert(key.clone(), owned.clone());
            owned
        } else {
            page
        };
        if let Some(disk) = self.place(&key) {
            if let Some(writer) = &disk.writer {
                writer.submit(&disk.tier, key, page.clone());
            }
        }
        page
    }

    /// The disk tier that should hold `key`, unless one already does: the top of a rendezvous
    /// ranking weighted by tier size, passing over failing tiers while a healthy one is left.
    fn place(&self, key: &PageKey) -> Option<&DiskSlot> {
        let disks = &self.inner.disks;
        if disks.iter().any(|d| d.tier.contains(key)) {
            return None;
        }
        let mut key_hash = DefaultHasher::new();
        key.hash(&mut key_hash);
        let key_hash = key_hash.finish();
        let score = |d: &DiskSlot| {
            let mut h = DefaultHasher::new();
            (key_hash, d.tier.dir()).hash(&mut h);
            // A uniform draw in (0, 1), then the weighted rendezvous score -w / ln(u).
            let u = ((h.finish() >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 2.0);
            -(d.tier.weight() as f64) / u.ln()
        };
        let usable = || disks.iter().filter(|d| d.tier.usable() && d.writer.is_some());
        let healthy = usable().filter(|d| !d.tier.is_failing());
        healthy
            .max_by(|a, b| score(a).total_cmp(&score(b)))
            .or_else(|| usable().max_by(|a, b| score(a).total_cmp(&score(b))))
    }

    async fn read_disk(&self, key: &PageKey) -> Option<Bytes> {
        for disk in &self.inner.disks {
            // The index lookup is cheap; only a page that is there costs a blocking thread.
            if !disk.tier.contains(key) {
                continue;
            }
            let (tier, owned) = (disk.tier.clone(), key.clone());
            match tokio::task::spawn_blocking(move || tier.read(&owned)).await {
                Ok(Some(page)) => return Some(page),
                Ok(None) => {}
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        }
        None
    }

    /// Removes one page from every tier. Returns whether any tier held it.
    pub async fn remove(&self, key: &PageKey) -> bool {
        self.remove_keys(vec![key.clone()]).await > 0
    }

    /// Removes every page of one version of an object of `size` bytes (for `alcove free` and
    /// invalidation). Returns how many pages were held (a page in memory and on disk counts once).
    pub async fn remove_object(&self, mount: &str, path: &str, version: &ObjectVersion, size: u64) -> u64 {
        let keys = PageKey::indices(0, size, self.inner.page_size)
            .map(|index| PageKey { mount: mount.to_owned(), path: path.to_owned(), version: version.clone(), index })
            .collect();
        self.remove_keys(keys).await
    }

    async fn remove_keys(&self, keys: Vec<PageKey>) -> u64 {
        let mut held = vec![false; keys.len()];
        for (at, key) in keys.iter().enumerate() {
            held[at] = self.inner.memory.remove(key);
        }
        let keys = Arc::new(keys);
        for disk in &self.inner.disks {
            if !disk.tier.usable() {
                continue;
            }
            let (tier, keys) = (disk.tier.clone(), keys.clone());
            match tokio::task::spawn_blocking(move || tier.remove(&keys)).await {
                Ok(removed) => removed.into_iter().for_each(|at| held[at] = true),
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        }
        held.into_iter().filter(|h| *h).count() as u64
    }

    /// Removes every page of `path` in `mount`, whatever its version. Not an index lookup but a
    /// scan of every tier's index (about a millisecond per 100,000 pages held), so meant for
    /// administrative removal, not for every request. Returns how many pages were held.
    pub async fn remove_path(&self, mount: &str, path: &str) -> u64 {
        let matches = |k: &PageKey| k.mount == mount && k.path == path;
        let mut removed: HashSet<Arc<PageKey>> =
            self.inner.memory.remove_where(matches).into_iter().map(|(k, _)| k).collect();
        for disk in &self.inner.disks {
            if !disk.tier.usable() {
                continue;
            }
            let (tier, mount, path) = (disk.tier.clone(), mount.to_owned(), path.to_owned());
            let scan = move || tier.remove_where(|k| k.mount == mount && k.path == path);
            match tokio::task::spawn_blocking(scan).await {
                Ok(keys) => removed.extend(keys),
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        }
        removed.len() as u64
    }

    /// Waits until every page inserted so far has been written to disk (or given up on). For an
    /// orderly shutdown and for tests; reading never needs it.
    pub async fn flush(&self) {
        for disk in &self.inner.disks {
            if let Some(writer) = &disk.writer {
                writer.flush().await;
            }
        }
    }

    pub fn stats(&self) -> PageStoreStats {
        let inner = &*self.inner;
        PageStoreStats {
            page_size: inner.page_size,
            memory: inner.memory.stats(),
            disks: inner.disks.iter().map(|d| d.tier.stats()).collect(),
            misses: inner.counters.misses.load(Relaxed),
            fetches: inner.counters.fetches.load(Relaxed),
            single_flight_joins: inner.counters.joins.load(Relaxed),
        }
    }

    #[cfg(test)]
    pub(crate) fn disk_tier(&self, at: usize) -> &DiskTier {
        &self.inner.disks[at].tier
    }
}

/// The leader's hold on a flight. Finishing publishes the result; dropping it unfinished (the
/// leader was cancelled) wakes the joiners empty-handed so that one of them takes over.
struct FlightGuard<'a> {
    inner: &'a Inner,
    key: &'a PageKey,
    id: u64,
    sender: watch::Sender<Option<FlightResult>>,
}

impl FlightGuard<'_> {
    fn finish(self, result: FlightResult) {
        // Out of the table first: a caller arriving now finds the page in the cache instead.
        self.leave();
        self.sender.send_replace(Some(result));
    }

    fn leave(&self) {
        let mut flights = self.inner.flights.lock();
        if flights.get(self.key).is_some_and(|f| f.id == self.id) {
            flights.remove(self.key);
        }
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

// The memory tier: pages held as `Bytes` under one S3-FIFO, bounded in bytes. It lives here, in
// the store it serves, so that a hit is read in this one file. A hit is a hash lookup, a counter
// bump and a `Bytes` clone (a reference count, no copy) under a short mutex. Pages are charged
// their length plus the key's heap and a fixed per-entry overhead, so the bound holds for many
// small pages too. The tier does no I/O and no logging.

/// Bookkeeping bytes charged per page beyond its data and key strings: the map slot, the entry,
/// the shared key allocation, the FIFO slots and a ghost (measured layout, rounded up).
pub(crate) const ENTRY_OVERHEAD: u64 = 256;

pub(crate) struct MemoryTier {
    policy: Mutex<S3Fifo<Bytes>>,
    pub counters: TierCounters,
}

impl MemoryTier {
    pub fn new(capacity: u64) -> Self {
        MemoryTier { policy: Mutex::new(S3Fifo::new(capacity)), counters: TierCounters::default() }
    }

    pub fn capacity(&self) -> u64 {
        self.policy.lock().capacity()
    }

    pub fn get(&self, key: &PageKey) -> Option<Bytes> {
        let page = self.policy.lock().get(key).cloned()?;
        self.counters.hit(page.len());
        Some(page)
    }

    /// Holds `page` unless it cannot fit even in an empty tier.
    pub fn insert(&self, key: PageKey, page: Bytes) {
        let capacity = self.capacity();
        let weight = page.len() as u64 + key.heap_size() + ENTRY_OVERHEAD;
        if weight > capacity {
            return;
        }
        let evicted = self.policy.lock().insert(key, page, weight);
        TierCounters::add(&self.counters.insertions, 1);
        TierCounters::add(&self.counters.evictions, evicted.len() as u64);
        // The evicted pages are freed here, outside the lock.
        drop(evicted);
    }

    pub fn remove(&self, key: &PageKey) -> bool {
        let removed = self.policy.lock().remove(key).is_some();
        if removed {
            TierCounters::add(&self.counters.removals, 1);
        }
        removed
    }

    pub fn remove_where(&self, matches: impl FnMut(&PageKey) -> bool) -> Vec<(Arc<PageKey>, Bytes)> {
        let removed = self.policy.lock().remove_where(matches);
        TierCounters::add(&self.counters.removals, removed.len() as u64);
        removed
    }

    pub fn stats(&self) -> TierStats {
        let mut stats = TierStats::default();
        {
            let policy = self.policy.lock();
            stats.capacity_bytes = policy.capacity();
            stats.used_bytes = policy.weight();
            stats.pages = policy.len() as u64;
        }
        self.counters.read_into(&mut stats);
        stats
    }
}
