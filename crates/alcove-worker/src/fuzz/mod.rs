//! Fuzz targets of the worker: whole S3 requests through the front end, the s3s service and
//! the gateway over a real (temporary) root, in process. Property tests (proptest) on the
//! stable toolchain; see `alcove-s3`'s `fuzz` module for how they are run. The gateway's own
//! header readers have theirs beside them (`gateway::fuzz`).

mod requests;

use proptest::prelude::*;

/// `PROPTEST_CASES` when set (the long campaign), else `default`.
pub(crate) fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, ..ProptestConfig::default() }
}
