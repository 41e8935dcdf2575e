//! S3-FIFO eviction (Yang et al., SOSP '23): the bookkeeping that decides which page leaves a
//! tier when it is full. Shared by the memory tier (weights in bytes) and the disk tiers (weights
//! in slots).
//!
//! Why S3-FIFO rather than LRU: a hit only bumps a 2-bit counter (no list surgery under the lock),
//! and a page read once — a large sequential scan of objects nobody reads again — passes through
//! the small FIFO and leaves without pushing the pages that are read repeatedly out of the main
//! FIFO. LRU lets one big scan flush the whole tier. A ghost FIFO of recently evicted keys sends a
//! page that comes back soon straight to the main FIFO.
//!
//! This module holds values and weights only; it may not do I/O, log, or know what a value is.

use std::collections::hash_map::{DefaultHasher, Entry as MapEntry};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::PageKey;

/// A hit counter saturates here: three hits buy three trips round the main FIFO.
const MAX_FREQ: u8 = 3;

struct Entry<V> {
    value: V,
    weight: u64,
    freq: u8,
    in_main: bool,
    /// Tells this residency apart from an earlier one of the same key whose queue slot is still
    /// waiting to be popped (removal is lazy in the queues).
    generation: u64,
}

/// The S3-FIFO state of one tier.
pub(crate) struct S3Fifo<V> {
    map: HashMap<Arc<PageKey>, Entry<V>>,
    small: VecDeque<(Arc<PageKey>, u64)>,
    main: VecDeque<(Arc<PageKey>, u64)>,
    ghost: VecDeque<u64>,
    ghost_set: HashSet<u64>,
    capacity: u64,
    small_weight: u64,
    main_weight: u64,
    next_generation: u64,
}

impl<V> S3Fifo<V> {
    pub(crate) fn new(capacity: u64) -> Self {
        S3Fifo {
            map: HashMap::new(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            ghost: VecDeque::new(),
            ghost_set: HashSet::new(),
            capacity,
            small_weight: 0,
            main_weight: 0,
            next_generation: 0,
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn weight(&self) -> u64 {
        self.small_weight + self.main_weight
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The value for `key`, counting a hit.
    pub(crate) fn get(&mut self, key: &PageKey) -> Option<&V> {
        let entry = self.map.get_mut(key)?;
        entry.freq = (entry.freq + 1).min(MAX_FREQ);
        Some(&entry.value)
    }

    /// The value for `key`, without counting a hit.
    pub(crate) fn peek(&self, key: &PageKey) -> Option<&V> {
        self.map.get(key).map(|e| &e.value)
    }

    pub(crate) fn contains(&self, key: &PageKey) -> bool {
        self.map.contains_key(key)
    }

    /// Adds `key` (or replaces its value in place), evicting until the weight fits. Returns what
    /// was evicted. A value heavier than the whole capacity is handed straight back as evicted.
    pub(crate) fn insert(&mut self, key: PageKey, value: V, weight: u64) -> Vec<(Arc<PageKey>, V)> {
        let mut evicted = Vec::new();
        if weight > self.capacity {
            evicted.push((Arc::new(key), value));
            return evicted;
        }
        if let Some(old) = self.map.get_mut(&key) {
            let old_weight = std::mem::replace(&mut old.weight, weight);
            old.value = value;
            if old.in_main {
                self.main_weight = self.main_weight - old_weight + weight;
            } else {
                self.small_weight = self.small_weight - old_weight + weight;
            }
        } else {
            while self.weight() + weight > self.capacity {
                match self.evict() {
                    Some(e) => evicted.push(e),
                    None => break,
                }
            }
            let to_main = self.ghost_set.remove(&ghost_hash(&key));
            self.push(key, value, weight, to_main);
        }
        // A replacement may have grown the value.
        while self.weight() > self.capacity {
            match self.evict() {
                Some(e) => evicted.push(e),
                None => break,
            }
        }
        evicted
    }

    /// Adds an entry rebuilt from disk at start: straight into the main FIFO (it earned its place
    /// before the restart), in the order given, evicting nothing.
    pub(crate) fn insert_recovered(&mut self, key: PageKey, value: V, weight: u64) {
        self.push(key, value, weight, true);
    }

    fn push(&mut self, key: PageKey, value: V, weight: u64, to_main: bool) {
        let key = Arc::new(key);
        let generation = self.next_generation;
        self.next_generation += 1;
        if to_main {
            self.main.push_back((key.clone(), generation));
            self.main_weight += weight;
        } else {
            self.small.push_back((key.clone(), generation));
            self.small_weight += weight;
        }
        self.map.insert(key, Entry { value, weight, freq: 0, in_main: to_main, generation });
        self.compact();
    }

    pub(crate) fn remove(&mut self, key: &PageKey) -> Option<V> {
        let entry = self.map.remove(key)?;
        self.unweigh(&entry);
        Some(entry.value)
    }

    /// Removes every entry whose key matches; a scan of the whole tier.
    pub(crate) fn remove_where(&mut self, mut matches: impl FnMut(&PageKey) -> bool) -> Vec<(Arc<PageKey>, V)> {
        let keys: Vec<Arc<PageKey>> = self.map.keys().filter(|k| matches(k)).cloned().collect();
        let mut removed = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = self.remove(&key) {
                removed.push((key, value));
            }
        }
        removed
    }

    fn unweigh(&mut self, entry: &Entry<V>) {
        if entry.in_main {
            self.main_weight -= entry.weight;
        } else {
            self.small_weight -= entry.weight;
        }
    }

    /// Evicts one entry, or `None` when the tier is empty.
    pub(crate) fn evict(&mut self) -> Option<(Arc<PageKey>, V)> {
        loop {
            // The small FIFO gives up its tail while it holds more than a tenth of the capacity
            // (or when the main FIFO has nothing to give).
            let from_small = !self.small.is_empty() && (self.small_weight > self.capacity / 10 || self.main.is_empty());
            if from_small {
                let (key, generation) = self.small.pop_front()?;
                let MapEntry::Occupied(mut slot) = self.map.entry(key) else { continue };
                if slot.get().generation != generation {
                    continue;
                }
                let entry = slot.get_mut();
                if entry.freq > 0 {
                    // Read again while on probation: promoted to the main FIFO.
                    entry.freq = 0;
                    entry.in_main = true;
                    let weight = entry.weight;
                    self.small_weight -= weight;
                    self.main_weight += weight;
                    self.main.push_back((slot.key().clone(), generation));
                    continue;
                }
                let (key, entry) = slot.remove_entry();
                self.small_weight -= entry.weight;
                self.remember(&key);
                return Some((key, entry.value));
            }
            let (key, generation) = self.main.pop_front()?;
            let MapEntry::Occupied(mut slot) = self.map.entry(key) else { continue };
            if slot.get().generation != generation {
                continue;
            }
            let entry = slot.get_mut();
            if entry.freq > 0 {
                entry.freq -= 1;
                self.main.push_back((slot.key().clone(), generation));
                continue;
            }
            let (key, entry) = slot.remove_entry();
            self.main_weight -= entry.weight;
            return Some((key, entry.value));
        }
    }

    /// Puts an evicted key into the ghost FIFO, which holds about as many keys as the tier holds
    /// pages (hashes only: a ghost costs 16 bytes, not a key).
    fn remember(&mut self, key: &PageKey) {
        let hash = ghost_hash(key);
        if self.ghost_set.insert(hash) {
            self.ghost.push_back(hash);
        }
        let bound = self.map.len().max(16);
        while self.ghost.len() > bound {
            if let Some(old) = self.ghost.pop_front() {
                self.ghost_set.remove(&old);
            }
        }
    }

    /// Drops queue slots of removed entries once they outnumber the live ones, so that a tier
    /// that only ever inserts and removes (and never fills) does not grow its queues forever.
    fn compact(&mut self) {
        if self.small.len() + self.main.len() <= 2 * self.map.len() + 64 {
            return;
        }
        let map = &self.map;
        let live = |(key, generation): &(Arc<PageKey>, u64)| map.get(key).is_some_and(|e| e.generation == *generation);
        self.small.retain(live);
        self.main.retain(live);
    }
}

fn ghost_hash(key: &PageKey) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjectVersion;

    fn key(i: u64) -> PageKey {
        PageKey { mount: "m".into(), path: "p".into(), version: ObjectVersion::ETag("e".into()), index: i }
    }

    #[test]
    fn weight_never_exceeds_capacity() {
        let mut p = S3Fifo::new(100);
        let mut evictions = 0;
        for i in 0..1000 {
            evictions += p.insert(key(i), i, 7 + i % 5).len();
            assert!(p.weight() <= 100);
            if i % 3 == 0 {
                p.get(&key(i / 2));
            }
        }
        assert!(evictions > 900);
        assert!(p.insert(key(5000), 0, 101).len() == 1, "too heavy to ever fit");
    }

    #[test]
    fn a_scan_does_not_flush_pages_read_again() {
        let mut p = S3Fifo::new(100);
        for i in 0..50 {
            p.insert(key(i), (), 1);
        }
        // Pages 0..50 are read again: they are the working set.
        for _ in 0..2 {
            for i in 0..50 {
                p.get(&key(i));
            }
        }
        // A scan of 1000 pages read once each.
        for i in 1000..2000 {
            p.insert(key(i), (), 1);
        }
        let kept = (0..50).filter(|i| p.contains(&key(*i))).count();
        assert_eq!(kept, 50, "the working set survives a one-time scan");
    }

    #[test]
    fn removal_is_exact_and_queues_stay_bounded() {
        let mut p = S3Fifo::new(1 << 40);
        for round in 0..100 {
            for i in 0..100 {
                p.insert(key(i), round, 1);
            }
            for i in 0..100 {
                assert_eq!(p.remove(&key(i)), Some(round));
            }
        }
        assert_eq!(p.len(), 0);
        assert_eq!(p.weight(), 0);
        assert!(p.small.len() + p.main.len() <= 300);
        assert!(p.evict().is_none());
    }
}
