//! Fuzz targets for the parsers of this crate that read client text: object keys (the one place
//! a key becomes a path), bucket names and mount paths, UFS URIs and options (admin API input),
//! and the listing parameters (prefix, delimiter, start-after, max-keys). Property tests
//! (proptest) on the stable toolchain; see `alcove-s3`'s `fuzz` module for how they are run.

mod key;
mod list;
mod mount;

use proptest::prelude::*;

/// `PROPTEST_CASES` when set (the long campaign), else `default`.
pub(crate) fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, ..ProptestConfig::default() }
}
