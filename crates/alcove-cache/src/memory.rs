//! The memory tier: pages held as `Bytes` under one S3-FIFO, bounded in bytes.
//!
//! A hit is a hash lookup, a counter bump and a `Bytes` clone (a reference count, no copy) under
//! a short mutex. Pages are charged their length plus the key's heap and a fixed per-entry
//! overhead, so the bound holds for many small pages too. This module may not do I/O or log.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::policy::S3Fifo;
use crate::stats::{TierCounters, TierStats};
use crate::PageKey;

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
