//! The closed-loop driver: `concurrency` tasks each issue one operation at a
//! time until the run's deadline or its operation budget is reached.
//!
//! Operations are numbered from a shared counter, so op `i` is the same work
//! whatever the concurrency (the workloads map `i` to a key round-robin).
//! Every operation is also bounded by a per-request timeout, so a run always
//! ends: at the latest `duration + timeout` after it starts.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stats::Latencies;

/// What one operation did.
#[derive(Debug)]
pub struct Outcome {
    /// Payload bytes moved (body bytes read or written).
    pub bytes: u64,
    /// `Ok(true)`: the result was checked and correct; `Ok(false)`: not
    /// checkable; `Err`: the operation failed or returned wrong data.
    pub result: Result<bool, String>,
}

impl Outcome {
    /// A checked, correct operation.
    pub fn verified(bytes: u64) -> Outcome {
        Outcome { bytes, result: Ok(true) }
    }

    /// A failed operation.
    pub fn error(msg: impl Into<String>) -> Outcome {
        Outcome { bytes: 0, result: Err(msg.into()) }
    }
}

/// Limits of one run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Parallel in-flight operations.
    pub concurrency: usize,
    /// No new operation starts after this long.
    pub duration: Duration,
    /// At most this many operations in total.
    pub max_ops: Option<u64>,
    /// An operation that takes longer counts as an error.
    pub op_timeout: Duration,
}

/// Totals of one run.
#[derive(Debug, Default)]
pub struct Totals {
    /// Operations completed (successful or not).
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Operations whose result was verified correct.
    pub verified: u64,
    /// Payload bytes moved by successful operations.
    pub bytes: u64,
    /// Wall time from the start to the end of the last operation.
    pub elapsed: Duration,
    /// Latency of every operation (failed ones included).
    pub latencies: Latencies,
    /// The first few error messages (all errors are counted in `errors`).
    pub first_errors: Vec<String>,
}

/// How many error messages are kept for the report.
const KEPT_ERRORS: usize = 5;

/// Runs `op(i)` for i = 0, 1, 2, ... with the given limits.
pub async fn run<F, Fut>(limits: Limits, op: F) -> Totals
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let errors_kept = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let deadline = start + limits.duration;
    let mut tasks = Vec::with_capacity(limits.concurrency);
    for _ in 0..limits.concurrency.max(1) {
        let op = Arc::clone(&op);
        let next = Arc::clone(&next);
        let errors_kept = Arc::clone(&errors_kept);
        tasks.push(tokio::spawn(async move {
            let mut t = Totals::default();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if limits.max_ops.is_some_and(|m| i >= m) {
                    break;
                }
                let began = Instant::now();
                let outcome = match tokio::time::timeout(limits.op_timeout, op(i)).await {
                    Ok(o) => o,
                    Err(_) => Outcome::error(format!("op {i}: no answer within {:?}", limits.op_timeout)),
                };
                t.latencies.record(began.elapsed());
                t.ops += 1;
                match outcome.result {
                    Ok(checked) => {
                        t.bytes += outcome.bytes;
                        if checked {
                            t.verified += 1;
                        }
                    }
                    Err(msg) => {
                        t.errors += 1;
                        let mut kept = errors_kept.lock().expect("error list");
                        if kept.len() < KEPT_ERRORS {
                            eprintln!("alcove-bench: error: {msg}");
                            kept.push(msg);
                        }
                    }
                }
            }
            t
        }));
    }
    let mut total = Totals::default();
    for task in tasks {
        match task.await {
            Ok(t) => {
                total.ops += t.ops;
                total.errors += t.errors;
                total.verified += t.verified;
                total.bytes += t.bytes;
                total.latencies.merge(t.latencies);
            }
            Err(e) => {
                // A panicking worker is an error too, never silently dropped.
                total.errors += 1;
                let msg = format!("worker task failed: {e}");
                eprintln!("alcove-bench: error: {msg}");
                errors_kept.lock().expect("error list").push(msg);
            }
        }
    }
    total.elapsed = start.elapsed();
    total.first_errors = std::mem::take(&mut *errors_kept.lock().expect("error list"));
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn op_budget_is_exact_and_errors_are_counted() {
        let limits = Limits {
            concurrency: 8,
            duration: Duration::from_secs(30),
            max_ops: Some(1000),
            op_timeout: Duration::from_secs(5),
        };
        let t = run(limits, |i| async move {
            if i % 100 == 7 {
                Outcome::error(format!("bad {i}"))
            } else {
                Outcome::verified(10)
            }
        })
        .await;
        assert_eq!(t.ops, 1000);
        assert_eq!(t.errors, 10);
        assert_eq!(t.verified, 990);
        assert_eq!(t.bytes, 9900);
        assert_eq!(t.latencies.len(), 1000);
        assert_eq!(t.first_errors.len(), KEPT_ERRORS);
    }

    #[tokio::test]
    async fn duration_and_timeout_bound_the_run() {
        let limits = Limits {
            concurrency: 2,
            duration: Duration::from_millis(200),
            max_ops: None,
            op_timeout: Duration::from_millis(50),
        };
        let started = Instant::now();
        let t = run(limits, |_| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Outcome::verified(1)
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(t.ops > 0);
        assert_eq!(t.errors, t.ops);
        assert_eq!(t.verified, 0);
    }
}
