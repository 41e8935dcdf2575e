//! How a bucket's under-storage answers: calls, errors and latency per kind of operation, kept
//! by its [`Store`](crate::Store) and read by the worker's `/metrics`. Also the lock-free latency
//! histogram that the page cache uses for its own reads.
//!
//! Recording is a few relaxed atomic adds; it may not lock, allocate or log.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Latency bounds: 1 ms to ~16 s.
pub const LATENCY_BOUNDS: [f64; 15] =
    [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];

/// A fixed-bucket latency histogram, as read at one moment (the exporter turns it into
/// Prometheus form).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending.
    pub bounds: Vec<f64>,
    /// Observations at or under each bound (not cumulative), then those above the last.
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
}

/// Records latencies into [`LATENCY_BOUNDS`].
#[derive(Debug, Default)]
pub struct LatencyRecorder {
    counts: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

impl LatencyRecorder {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = LATENCY_BOUNDS.iter().position(|&b| seconds <= b).unwrap_or(LATENCY_BOUNDS.len());
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn snapshot(&self) -> Histogram {
        Histogram {
            bounds: LATENCY_BOUNDS.to_vec(),
            counts: self.counts.iter().map(|n| n.load(Relaxed)).collect(),
            sum_seconds: self.sum_micros.load(Relaxed) as f64 / 1e6,
        }
    }
}

/// The kinds of under-storage operation counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UfsOp {
    /// Describing an object (HEAD).
    Stat,
    /// Opening an object's bytes, or a reader of one version.
    Read,
    /// Writing an object, its metadata, a copy, a part or a completion.
    Write,
    Delete,
    List,
}

impl UfsOp {
    pub const ALL: [UfsOp; 5] = [UfsOp::Stat, UfsOp::Read, UfsOp::Write, UfsOp::Delete, UfsOp::List];

    pub fn name(self) -> &'static str {
        match self {
            UfsOp::Stat => "stat",
            UfsOp::Read => "read",
            UfsOp::Write => "write",
            UfsOp::Delete => "delete",
            UfsOp::List => "list",
        }
    }
}

#[derive(Debug, Default)]
struct OpCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    latency: LatencyRecorder,
}

/// One bucket's under-storage figures.
#[derive(Debug, Default)]
pub struct UfsStats {
    ops: [OpCounters; UfsOp::ALL.len()],
}

/// One kind of operation's figures, as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct OpStats {
    pub op: UfsOp,
    pub calls: u64,
    pub errors: u64,
    pub latency: Histogram,
}

impl UfsStats {
    /// Counts one call of `op` that took `took`; `failed` for an error of the under-storage
    /// (a missing key is an answer, not an error).
    pub fn record(&self, op: UfsOp, took: Duration, failed: bool) {
        let counters = &self.ops[op as usize];
        counters.calls.fetch_add(1, Relaxed);
        if failed {
            counters.errors.fetch_add(1, Relaxed);
        }
        counters.latency.observe(took);
    }

    pub fn snapshot(&self) -> Vec<OpStats> {
        UfsOp::ALL
            .iter()
            .map(|&op| {
                let c = &self.ops[op as usize];
                OpStats {
                    op,
                    calls: c.calls.load(Relaxed),
                    errors: c.errors.load(Relaxed),
                    latency: c.latency.snapshot(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_buckets() {
        let recorder = LatencyRecorder::default();
        recorder.observe(Duration::from_micros(500));
        recorder.observe(Duration::from_millis(3));
        recorder.observe(Duration::from_secs(60));
        let h = recorder.snapshot();
        assert_eq!((h.counts[0], h.counts[2], h.counts[LATENCY_BOUNDS.len()]), (1, 1, 1));
        assert_eq!(h.counts.iter().sum::<u64>(), 3);
        assert!((h.sum_seconds - 60.0035).abs() < 1e-9);
    }

    #[test]
    fn calls_and_errors_are_counted_per_kind() {
        let stats = UfsStats::default();
        stats.record(UfsOp::Write, Duration::from_millis(5), false);
        stats.record(UfsOp::Write, Duration::from_millis(5), true);
        stats.record(UfsOp::List, Duration::from_millis(1), false);
        let snapshot = stats.snapshot();
        let write = snapshot.iter().find(|s| s.op == UfsOp::Write).unwrap();
        assert_eq!((write.calls, write.errors), (2, 1));
        let stat = snapshot.iter().find(|s| s.op == UfsOp::Stat).unwrap();
        assert_eq!((stat.calls, stat.errors), (0, 0));
    }
}
