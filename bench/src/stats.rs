//! Latency recording and percentiles.
//!
//! Every operation's latency is kept (in nanoseconds; a 10 s run of small
//! GETs is a few hundred thousand values), so percentiles are exact rather
//! than bucketed. Percentiles use the nearest-rank definition: the p-th
//! percentile of n sorted values is the value at rank ceil(p/100 * n).

use std::time::Duration;

/// Latencies of one run (or one worker of a run, merged later).
#[derive(Default, Clone, Debug)]
pub struct Latencies {
    nanos: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    /// Empty set.
    pub fn new() -> Latencies {
        Latencies { nanos: Vec::new(), sorted: true }
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        self.nanos.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Adds all of `other`'s values.
    pub fn merge(&mut self, other: Latencies) {
        self.nanos.extend(other.nanos);
        self.sorted = false;
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
    }

    /// Nearest-rank percentile in milliseconds (`p` in 0..=100); `None` when
    /// there are no values.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        self.sort();
        percentile_of_sorted(&self.nanos, p).map(|ns| ns as f64 / 1e6)
    }

    /// Largest value in milliseconds.
    pub fn max_ms(&mut self) -> Option<f64> {
        self.percentile_ms(100.0)
    }

    /// Mean in milliseconds.
    pub fn mean_ms(&self) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let sum: u128 = self.nanos.iter().map(|&n| u128::from(n)).sum();
        Some(sum as f64 / self.nanos.len() as f64 / 1e6)
    }
}

/// Nearest-rank percentile of an ascending slice.
pub fn percentile_of_sorted(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let n = sorted.len();
    // Rank in 1..=n; p = 0 is the minimum.
    // p * n first: exact for integral p, so p99 of 100 values is rank 99, not 100.
    let rank = (p * n as f64 / 100.0).ceil() as usize;
    let idx = rank.clamp(1, n) - 1;
    Some(sorted[idx])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_percentiles() {
        let mut l = Latencies::new();
        assert!(l.is_empty());
        assert_eq!(l.percentile_ms(50.0), None);
        assert_eq!(l.max_ms(), None);
        assert_eq!(l.mean_ms(), None);
    }

    #[test]
    fn single_value_is_every_percentile() {
        let mut l = Latencies::new();
        l.record(Duration::from_micros(1500));
        for p in [0.0, 1.0, 50.0, 99.0, 100.0] {
            assert_eq!(l.percentile_ms(p), Some(1.5));
        }
    }

    #[test]
    fn nearest_rank_on_1_to_100() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_of_sorted(&v, 0.0), Some(1));
        assert_eq!(percentile_of_sorted(&v, 50.0), Some(50));
        assert_eq!(percentile_of_sorted(&v, 50.1), Some(51));
        assert_eq!(percentile_of_sorted(&v, 99.0), Some(99));
        assert_eq!(percentile_of_sorted(&v, 99.5), Some(100));
        assert_eq!(percentile_of_sorted(&v, 100.0), Some(100));
        // Out-of-range p is clamped.
        assert_eq!(percentile_of_sorted(&v, 250.0), Some(100));
        assert_eq!(percentile_of_sorted(&v, -3.0), Some(1));
    }

    #[test]
    fn nearest_rank_small_sets() {
        // Classic example: 15, 20, 35, 40, 50.
        let v = [15, 20, 35, 40, 50];
        assert_eq!(percentile_of_sorted(&v, 5.0), Some(15));
        assert_eq!(percentile_of_sorted(&v, 30.0), Some(20));
        assert_eq!(percentile_of_sorted(&v, 40.0), Some(20));
        assert_eq!(percentile_of_sorted(&v, 50.0), Some(35));
        assert_eq!(percentile_of_sorted(&v, 100.0), Some(50));
        // p99 of 10 values is the maximum: one slow request shows.
        let mut ten = [1u64; 10];
        ten[9] = 1000;
        assert_eq!(percentile_of_sorted(&ten, 99.0), Some(1000));
        assert_eq!(percentile_of_sorted(&ten, 90.0), Some(1));
    }

    #[test]
    fn unsorted_input_and_merge() {
        let mut a = Latencies::new();
        for ms in [9u64, 1, 5, 3, 7] {
            a.record(Duration::from_millis(ms));
        }
        let mut b = Latencies::new();
        for ms in [10u64, 2, 8, 4, 6] {
            b.record(Duration::from_millis(ms));
        }
        a.merge(b);
        assert_eq!(a.len(), 10);
        assert_eq!(a.percentile_ms(50.0), Some(5.0));
        assert_eq!(a.percentile_ms(99.0), Some(10.0));
        assert_eq!(a.max_ms(), Some(10.0));
        assert_eq!(a.mean_ms(), Some(5.5));
        // Recording after a percentile query re-sorts.
        a.record(Duration::from_millis(0));
        assert_eq!(a.percentile_ms(0.0), Some(0.0));
    }
}
