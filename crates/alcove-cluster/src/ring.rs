//! Who owns a key: rendezvous (highest-random-weight) hashing over the live workers. Every worker
//! scores each key, and the key belongs to the worker with the highest score.
//!
//! Chosen over a ring of virtual nodes because it balances without tuning (each worker's share
//! is 1/N up to sampling noise, where virtual nodes need hundreds of points per worker to come
//! within 5 %) and moves the least possible when membership changes: only the keys of a worker
//! that leaves move (to the others, spread evenly), and a worker that joins takes only its own
//! share. A lookup costs one hash of the key and one mix per worker, cheap for the tens of
//! workers a cluster has. Every worker computes the same owner from the same member ids: the
//! hash is fixed (not std's per-process seeded one).

/// The owners of keys, over a set of worker ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ring {
    /// Worker ids with their precomputed hashes, sorted by id (so equal member sets are equal rings).
    workers: Vec<(String, u64)>,
}

impl Ring {
    pub fn new<I, S>(workers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut workers: Vec<(String, u64)> = workers
            .into_iter()
            .map(|w| {
                let id = w.into();
                let h = hash(id.as_bytes());
                (id, h)
            })
            .collect();
        workers.sort();
        workers.dedup_by(|a, b| a.0 == b.0);
        Self { workers }
    }

    /// The worker ids, sorted.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.workers.iter().map(|(id, _)| id.as_str())
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The owner of `bucket/key`, or `None` on an empty ring.
    pub fn owner(&self, bucket: &str, key: &str) -> Option<&str> {
        let k = key_hash(bucket, key);
        self.workers.iter().max_by_key(|(id, w)| (mix(k ^ w), id.as_str())).map(|(id, _)| id.as_str())
    }

    /// The share of keys each worker owns: equal, as every worker scores alike.
    pub fn share(&self) -> f64 {
        if self.workers.is_empty() {
            0.0
        } else {
            1.0 / self.workers.len() as f64
        }
    }
}

fn key_hash(bucket: &str, key: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(bucket.as_bytes());
    h.write(b"/");
    h.write(key.as_bytes());
    mix(h.0)
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.write(bytes);
    mix(h.0)
}

/// FNV-1a: stable across processes and versions.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The splitmix64 finaliser: every input bit moves every output bit, so a key's scores for two
/// workers are independent.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEYS: usize = 1_000_000;
    const GOLDEN_ALCOVE_HASH: u64 = 3_563_330_934_235_695_588;

    fn workers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("worker-{i}")).collect()
    }

    fn owners(ring: &Ring) -> Vec<String> {
        (0..KEYS).map(|i| ring.owner("bucket", &format!("data/{i:07}.bin")).unwrap().to_owned()).collect()
    }

    #[test]
    fn a_single_worker_owns_everything() {
        let ring = Ring::new(["w1"]);
        for k in ["a", "b/c", "日本"] {
            assert_eq!(ring.owner("bucket", k), Some("w1"));
        }
        assert_eq!(Ring::default().owner("b", "k"), None);
    }

    #[test]
    fn every_worker_computes_the_same_owner() {
        let a = Ring::new(["w3", "w1", "w2"]);
        let b = Ring::new(["w1", "w2", "w3", "w2"]);
        assert_eq!(a, b, "order and duplicates do not matter");
        for i in 0..1000 {
            let k = format!("k{i}");
            assert_eq!(a.owner("b", &k), b.owner("b", &k));
        }
        // Fixed hashes: the same value in every process and version (a change here would move
        // every key of a running cluster during a rolling upgrade).
        assert_eq!(hash(b"alcove"), GOLDEN_ALCOVE_HASH);
    }

    /// With 3 to 50 workers the busiest holds at most 1.05× the mean share of a million keys.
    #[test]
    fn the_busiest_worker_holds_at_most_five_percent_more_than_the_mean() {
        for n in [3, 5, 10, 25, 50] {
            let ring = Ring::new(workers(n));
            let mut counts: HashMap<String, usize> = HashMap::new();
            for owner in owners(&ring) {
                *counts.entry(owner).or_default() += 1;
            }
            let mean = KEYS as f64 / n as f64;
            let busiest = *counts.values().max().unwrap() as f64;
            assert_eq!(counts.len(), n);
            assert!(busiest <= 1.05 * mean, "{n} workers: busiest {busiest} vs mean {mean}");
        }
    }

    /// Adding or removing one of N workers moves at most 1.2/N of the keys, and only to or from
    /// that worker.
    #[test]
    fn a_joining_or_leaving_worker_moves_only_its_own_share() {
        for n in [3, 10, 50] {
            let before = Ring::new(workers(n));
            let joined = Ring::new(workers(n + 1));
            let new_worker = format!("worker-{n}");
            let (old, after) = (owners(&before), owners(&joined));
            let moved = old.iter().zip(&after).filter(|(a, b)| a != b).count();
            assert!(old.iter().zip(&after).filter(|(a, b)| a != b).all(|(_, b)| *b == new_worker));
            assert!(moved as f64 <= 1.2 * KEYS as f64 / (n + 1) as f64, "join of {n}+1: {moved}");

            let left = Ring::new(workers(n).into_iter().filter(|w| w != "worker-0"));
            let after = owners(&left);
            let moved = old.iter().zip(&after).filter(|(a, b)| a != b).count();
            assert!(old.iter().zip(&after).filter(|(a, b)| a != b).all(|(a, _)| a == "worker-0"));
            assert!(moved as f64 <= 1.2 * KEYS as f64 / n as f64, "leave of 1 of {n}: {moved}");
        }
    }
}
