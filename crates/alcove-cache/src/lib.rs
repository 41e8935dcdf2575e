//! Alcove's page cache: what a worker read from its under-storage, kept in fixed-size pages in
//! memory and on local disks and served from there on repeats.
//!
//! [`PageStore`] is the whole interface: `get`, `get_or_fetch` (single-flight), `insert`,
//! removal by page, object version or path, `flush` and `stats`. The design and the measurements
//! behind it (against foyer's hybrid cache) are in PAGE-STORE.md beside this crate.
//!
//! This crate may not know about S3, HTTP or the under-storage crate: pages come in as bytes
//! under a [`PageKey`], and a miss is filled by a future the caller hands in.

mod disk;
mod error;
mod key;
mod memory;
mod policy;
mod stats;
mod store;

pub use error::PageStoreError;
pub use key::{ObjectVersion, PageKey, DEFAULT_PAGE_SIZE};
pub use stats::{PageStoreStats, TierStats};
pub use store::{DiskTierConfig, PageStore, PageStoreConfig, Source};

#[cfg(test)]
mod tests;
