//! Counters of the page store and the plain snapshot the caller prints or exports to Prometheus.
//!
//! Counters are relaxed atomics bumped on the paths they count; a snapshot is a consistent-enough
//! reading, not a transaction. This module may not do I/O or decide anything.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One tier's figures. The memory tier has no path and its disk-only fields stay zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierStats {
    /// The disk tier's folder; `None` for the memory tier.
    pub path: Option<PathBuf>,
    /// Configured bytes.
    pub capacity_bytes: u64,
    /// Bytes charged now: page bytes plus per-page overhead (memory: key and bookkeeping; disk:
    /// whole slots, header included, plus the file's superblock).
    pub used_bytes: u64,
    /// Pages held now.
    pub pages: u64,
    pub hits: u64,
    /// Page bytes handed to callers from this tier.
    pub bytes_served: u64,
    pub insertions: u64,
    pub evictions: u64,
    /// Pages removed on request (`remove`, `remove_object`, `remove_path`).
    pub removals: u64,
    /// Disk: failed reads and writes (EIO, ENOSPC, ...).
    pub errors: u64,
    /// Disk: pages that failed their checksum or were cut short, dropped and reported as misses.
    pub corrupt_pages: u64,
    /// Disk: pages not written because the write queue was full or the tier was failing.
    pub dropped_writes: u64,
    /// Disk: the tier is failing and takes no writes until it is retried.
    pub failing: bool,
}

/// A snapshot of the whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageStoreStats {
    pub page_size: u64,
    pub memory: TierStats,
    pub disks: Vec<TierStats>,
    /// Lookups that no tier could answer (`get` returning `None`, `get_or_fetch` calling fetch).
    pub misses: u64,
    /// Calls of the caller's fetch by `get_or_fetch`.
    pub fetches: u64,
    /// `get_or_fetch` callers that joined a fetch (or disk read) already under way for their page.
    pub single_flight_joins: u64,
}

impl PageStoreStats {
    /// Hits over all tiers.
    pub fn hits(&self) -> u64 {
        self.memory.hits + self.disks.iter().map(|d| d.hits).sum::<u64>()
    }

    /// Disk errors over all disk tiers.
    pub fn disk_errors(&self) -> u64 {
        self.disks.iter().map(|d| d.errors).sum()
    }
}

/// The live counters behind one [`TierStats`].
#[derive(Default)]
pub(crate) struct TierCounters {
    pub hits: AtomicU64,
    pub bytes_served: AtomicU64,
    pub insertions: AtomicU64,
    pub evictions: AtomicU64,
    pub removals: AtomicU64,
    pub errors: AtomicU64,
    pub corrupt_pages: AtomicU64,
    pub dropped_writes: AtomicU64,
}

impl TierCounters {
    pub fn hit(&self, bytes: usize) {
        self.hits.fetch_add(1, Relaxed);
        self.bytes_served.fetch_add(bytes as u64, Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Fills the counter fields of `stats`; the caller fills capacity, usage and state.
    pub fn read_into(&self, stats: &mut TierStats) {
        stats.hits = self.hits.load(Relaxed);
        stats.bytes_served = self.bytes_served.load(Relaxed);
        stats.insertions = self.insertions.load(Relaxed);
        stats.evictions = self.evictions.load(Relaxed);
        stats.removals = self.removals.load(Relaxed);
        stats.errors = self.errors.load(Relaxed);
        stats.corrupt_pages = self.corrupt_pages.load(Relaxed);
        stats.dropped_writes = self.dropped_writes.load(Relaxed);
    }
}

/// Store-wide counters.
#[derive(Default)]
pub(crate) struct StoreCounters {
    pub misses: AtomicU64,
    pub fetches: AtomicU64,
    pub joins: AtomicU64,
}
