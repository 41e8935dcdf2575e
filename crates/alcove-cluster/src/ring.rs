//! A consistent-hash ring with virtual nodes: each worker takes many points on a 64-bit circle,
//! and a key belongs to the first point at or after its hash. Adding or removing a worker moves
//! only the keys of that worker's points.

use std::collections::BTreeMap;

/// Points each worker takes on the ring.
pub const DEFAULT_VNODES: usize = 128;

/// The ring of live workers, by their ids.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    points: BTreeMap<u64, String>,
}

impl Ring {
    pub fn new<I, S>(workers: I, vnodes: usize) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut points = BTreeMap::new();
        for worker in workers {
            let worker = worker.into();
            for v in 0..vnodes {
                points.insert(hash(format!("{worker}#{v}").as_bytes()), worker.clone());
            }
        }
        Self { points }
    }

    /// The owner of `bucket/key`, or `None` on an empty ring.
    pub fn owner(&self, bucket: &str, key: &str) -> Option<&str> {
        let h = hash(format!("{bucket}/{key}").as_bytes());
        self.points.range(h..).next().or_else(|| self.points.iter().next()).map(|(_, w)| w.as_str())
    }
}

/// FNV-1a followed by a 64-bit finaliser (splitmix): stable across processes and versions,
/// which the ring needs (std's hasher is randomly seeded per process).
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_worker_owns_everything() {
        let ring = Ring::new(["w1"], DEFAULT_VNODES);
        for k in ["a", "b/c", "日本"] {
            assert_eq!(ring.owner("bucket", k), Some("w1"));
        }
        assert_eq!(Ring::default().owner("b", "k"), None);
    }

    #[test]
    fn keys_spread_and_move_little_when_a_worker_joins() {
        let three = Ring::new(["w1", "w2", "w3"], DEFAULT_VNODES);
        let four = Ring::new(["w1", "w2", "w3", "w4"], DEFAULT_VNODES);
        let keys: Vec<String> = (0..4000).map(|i| format!("key-{i}")).collect();
        let mut counts = BTreeMap::new();
        let mut moved = 0;
        for k in &keys {
            let before = three.owner("b", k).unwrap();
            *counts.entry(before).or_insert(0) += 1;
            let after = four.owner("b", k).unwrap();
            if before != after {
                assert_eq!(after, "w4", "keys only move to the new worker");
                moved += 1;
            }
        }
        for (_, n) in counts {
            assert!((900..=1800).contains(&n), "balanced: {n}");
        }
        assert!((600..=1500).contains(&moved), "about a quarter moves: {moved}");
    }
}
