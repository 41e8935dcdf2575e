//! The object service (the one interface the S3 gateway reads and writes objects through) and
//! Alcove's page cache behind it: what a worker read from its under-storage, kept in fixed-size
//! pages in memory and on local disks and served from there on repeats.
//!
//! [`ObjectService`] resolves buckets and serves every object operation from the bucket's store,
//! reads of cached buckets through [`CachedReads`] (metadata kept for its sync interval, bytes
//! page by page from the [`PageStore`]). The page store itself (`get`, `get_or_fetch` with
//! single-flight, `insert`, removal, `stats`) knows nothing of S3, HTTP or the under-storage:
//! pages come in as bytes under a [`PageKey`], and a miss is filled by a future the caller hands
//! in. The design and the measurements behind it (against foyer's hybrid cache) are in
//! PAGE-STORE.md beside this crate. Nothing here knows S3 or HTTP.

mod disk;
mod error;
mod key;
pub mod objects;
mod policy;
pub mod read;

mod stats;
mod store;

pub use error::PageStoreError;
pub use key::{ObjectVersion, PageKey, DEFAULT_PAGE_SIZE};
pub use objects::{BucketObjects, ChangeObserver, ObjectService};
pub use read::{CacheStats, CachedReads, MetadataSync, ReadSettings};

pub use stats::{PageStoreStats, TierStats};
pub use store::{DiskTierConfig, PageStore, PageStoreConfig, Source};

#[cfg(test)]
mod tests;
