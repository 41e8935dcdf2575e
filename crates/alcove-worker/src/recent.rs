//! The last minutes of S3 traffic, for the status page and `/status`: requests per second over
//! the last 10 s, 1 min and 5 min, and the latest failed requests.
//!
//! Fed by the front end once per finished request; it may not block a request for long (one
//! atomic add, and a short lock only for a request that failed) and keeps bounded memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Seconds of per-second counts kept.
const WINDOW_SECONDS: usize = 300;
/// Failed requests kept.
const KEPT_ERRORS: usize = 20;

/// One failed request, as the status page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FailedRequest {
    /// RFC 3339, UTC.
    pub at: String,
    pub request_id: String,
    pub method: String,
    pub resource: String,
    pub status: u16,
    pub user: String,
}

/// Per-second request counts in a ring of [`WINDOW_SECONDS`] slots, and the latest failures.
pub struct RecentRequests {
    /// Slot `s % WINDOW_SECONDS` counts the requests that ended in second `s`, when
    /// `stamps[slot] == s`. A count racing a slot's reuse at a second's boundary can be lost; a
    /// rate on a status page can afford that, a lock on every request could not.
    counts: Box<[AtomicU64]>,
    stamps: Box<[AtomicU64]>,
    total: AtomicU64,
    errors: Mutex<VecDeque<FailedRequest>>,
}

impl Default for RecentRequests {
    fn default() -> Self {
        let slots = || (0..WINDOW_SECONDS).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into_boxed_slice();
        Self {
            counts: slots(),
            stamps: slots(),
            total: AtomicU64::new(0),
            errors: Mutex::new(VecDeque::with_capacity(KEPT_ERRORS)),
        }
    }
}

impl RecentRequests {
    /// Counts a request that ended now; one that failed (status 400 and up) is also kept.
    pub fn record(&self, status: u16, failed: impl FnOnce(String) -> FailedRequest) {
        self.count_at(unix_seconds());
        self.total.fetch_add(1, Relaxed);
        if status >= 400 {
            let entry = failed(now_rfc3339());
            let mut errors = self.errors();
            if errors.len() == KEPT_ERRORS {
                errors.pop_front();
            }
            errors.push_back(entry);
        }
    }

    fn count_at(&self, second: u64) {
        let slot = (second % WINDOW_SECONDS as u64) as usize;
        if self.stamps[slot].swap(second, Relaxed) != second {
            self.counts[slot].store(0, Relaxed);
        }
        self.counts[slot].fetch_add(1, Relaxed);
    }

    /// Mean requests per second over the last `seconds` whole seconds (at most five minutes).
    pub fn rate(&self, seconds: u64) -> f64 {
        self.rate_at(unix_seconds(), seconds)
    }

    fn rate_at(&self, now: u64, seconds: u64) -> f64 {
        let seconds = seconds.clamp(1, WINDOW_SECONDS as u64 - 1);
        let total: u64 = (1..=seconds)
            .filter_map(|back| now.checked_sub(back))
            .map(|second| {
                let slot = (second % WINDOW_SECONDS as u64) as usize;
                if self.stamps[slot].load(Relaxed) == second {
                    self.counts[slot].load(Relaxed)
                } else {
                    0
                }
            })
            .sum();
        total as f64 / seconds as f64
    }

    /// Requests since the start.
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }

    /// The kept failures, newest first.
    pub fn failures(&self) -> Vec<FailedRequest> {
        self.errors().iter().rev().cloned().collect()
    }

    fn errors(&self) -> MutexGuard<'_, VecDeque<FailedRequest>> {
        // A panic while holding the lock leaves a usable list behind.
        self.errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16) -> impl FnOnce(String) -> FailedRequest {
        move |at| FailedRequest {
            at,
            request_id: format!("id{status}"),
            method: "GET".into(),
            resource: "/b/k".into(),
            status,
            user: "u".into(),
        }
    }

    #[test]
    fn rates_count_whole_past_seconds() {
        let recent = RecentRequests::default();
        for _ in 0..30 {
            recent.count_at(1_000);
        }
        for _ in 0..10 {
            recent.count_at(1_009);
        }
        recent.count_at(1_010); // the current second is not counted yet
        assert_eq!(recent.rate_at(1_010, 10), 4.0);
        assert_eq!(recent.rate_at(1_010, 1), 10.0);
        // Five minutes later the slots were reused: nothing of second 1000 is left.
        assert_eq!(recent.rate_at(1_000 + WINDOW_SECONDS as u64 + 5, 10), 0.0);
        recent.count_at(1_000 + WINDOW_SECONDS as u64);
        assert_eq!(recent.rate_at(1_001 + WINDOW_SECONDS as u64, 1), 1.0, "a reused slot starts from zero");
    }

    #[test]
    fn keeps_the_latest_failures_only() {
        let recent = RecentRequests::default();
        recent.record(200, failure(200));
        assert!(recent.failures().is_empty());
        for status in 400..400 + KEPT_ERRORS as u16 + 5 {
            recent.record(status, failure(status));
        }
        let errors = recent.failures();
        assert_eq!(errors.len(), KEPT_ERRORS);
        assert_eq!(errors[0].status, 400 + KEPT_ERRORS as u16 + 4, "newest first");
        assert!(errors[0].at.ends_with('Z'), "{}", errors[0].at);
    }
}
