//! The cluster's ring, as the workers compute it (`alcove_cluster::Ring`): the keys a given worker
//! owns (`--owned-by`), and the ring's figures (`ring`): how evenly it spreads keys and how many
//! move when a worker leaves or joins.

use std::process::ExitCode;
use std::time::Instant;

use alcove_cluster::Ring;
use serde_json::json;

use crate::content::key_for;

/// Keys are scanned at most this many times `--objects` before giving up (a worker owns about
/// 1/N of the keys, so N = 1000 workers would still find theirs).
const SCAN_FACTOR: u64 = 1000;

/// The first `objects` keys `PREFIX k00000000, k00000001, ...` that `id` owns on the ring of
/// `members`, in bucket `bucket`.
pub fn owned_keys(
    members: &[String],
    id: &str,
    bucket: &str,
    prefix: &str,
    objects: u64,
) -> Result<Vec<String>, String> {
    let members: Vec<&str> = members.iter().map(|m| m.trim()).filter(|m| !m.is_empty()).collect();
    if !members.contains(&id) {
        return Err(format!("--owned-by {id} is not one of --members {}", members.join(",")));
    }
    let ring = Ring::new(members.iter().copied());
    let mut keys = Vec::with_capacity(objects as usize);
    let mut i = 0u64;
    while (keys.len() as u64) < objects {
        if i >= objects.saturating_mul(SCAN_FACTOR) {
            return Err(format!("{id} owns only {} of the first {i} keys", keys.len()));
        }
        let key = key_for(prefix, i);
        if ring.owner(bucket, &key) == Some(id) {
            keys.push(key);
        }
        i += 1;
    }
    Ok(keys)
}

/// Owner (index into the ring's members) of every key.
fn owners(ring: &Ring, bucket: &str, keys: &[String]) -> Vec<u32> {
    let ids: Vec<&str> = ring.members().collect();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let per = keys.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(per)
            .map(|chunk| {
                let ids = &ids;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|k| {
                            let owner = ring.owner(bucket, k).expect("a ring with members");
                            ids.iter().position(|id| *id == owner).expect("a member") as u32
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("owner thread")).collect()
    })
}

fn ids(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("w{i}")).collect()
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// `ring`: one JSON line with the figures of a ring of `n` workers (w1..wN) over `objects` keys
/// of `bucket` (`PREFIX k00000000`, ...): the busiest and the idlest worker's share against the
/// mean (balance), the keys that move when w1 leaves (only w1's may, and they should be 1/N of
/// all) and when w(N+1) joins (only to it, 1/(N+1) of all).
pub fn ring_figures(bucket: &str, prefix: &str, n: usize, objects: u64) -> ExitCode {
    let started = Instant::now();
    let keys: Vec<String> = (0..objects).map(|i| key_for(prefix, i)).collect();
    let ring = Ring::new(ids(1..=n));
    let before = owners(&ring, bucket, &keys);
    let names: Vec<String> = ring.members().map(str::to_owned).collect();
    let mut counts = vec![0u64; n];
    for &o in &before {
        counts[o as usize] += 1;
    }
    let mean = objects as f64 / n as f64;
    let busiest = counts.iter().copied().max().unwrap_or(0) as f64;
    let idlest = counts.iter().copied().min().unwrap_or(0) as f64;

    // w1 leaves: a key may move only if w1 owned it.
    let left = Ring::new(ids(2..=n));
    let left_names: Vec<String> = left.members().map(str::to_owned).collect();
    let after_leave = owners(&left, bucket, &keys);
    let mut moved_leave = 0u64;
    let mut wrong_leave = 0u64;
    for (b, a) in before.iter().zip(&after_leave) {
        let (b, a) = (&names[*b as usize], &left_names[*a as usize]);
        if b != a || b == "w1" {
            moved_leave += 1;
            if b != "w1" {
                wrong_leave += 1;
            }
        }
    }
    // w(N+1) joins: a key may move only to it.
    let joiner = format!("w{}", n + 1);
    let joined = Ring::new(ids(1..=n + 1));
    let joined_names: Vec<String> = joined.members().map(str::to_owned).collect();
    let after_join = owners(&joined, bucket, &keys);
    let mut moved_join = 0u64;
    let mut wrong_join = 0u64;
    for (b, a) in before.iter().zip(&after_join) {
        let (b, a) = (&names[*b as usize], &joined_names[*a as usize]);
        if b != a {
            moved_join += 1;
            if *a != joiner {
                wrong_join += 1;
            }
        }
    }
    let k = objects.max(1) as f64;
    let line = json!({
        "workload": "ring",
        "workers": n,
        "keys": objects,
        "bucket": bucket,
        "prefix": prefix,
        "busiest_share": round4(busiest / k),
        "balance": round4(busiest / mean.max(1e-9)),
        "idlest_balance": round4(idlest / mean.max(1e-9)),
        "leave_moved": moved_leave,
        "leave_moved_fraction": round4(moved_leave as f64 / k),
        "leave_ideal_fraction": round4(1.0 / n as f64),
        "leave_moved_elsewhere": wrong_leave,
        "join_moved": moved_join,
        "join_moved_fraction": round4(moved_join as f64 / k),
        "join_ideal_fraction": round4(1.0 / (n + 1) as f64),
        "join_moved_elsewhere": wrong_join,
        "elapsed_s": round4(started.elapsed().as_secs_f64()),
        "errors": wrong_leave + wrong_join,
    });
    println!("{line}");
    if wrong_leave + wrong_join > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_keys_are_owned_and_in_order() {
        let members = vec!["w1".to_owned(), "w2".to_owned()];
        let ring = Ring::new(["w1", "w2"]);
        let keys = owned_keys(&members, "w2", "shared", "p/", 50).unwrap();
        assert_eq!(keys.len(), 50);
        assert!(keys.iter().all(|k| ring.owner("shared", k) == Some("w2")));
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(owned_keys(&members, "w3", "shared", "p/", 5).is_err());
    }
}
