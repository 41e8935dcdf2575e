//! The page cache's vocabulary: how a cached page of an object is named.
//!
//! A page is keyed by (mount, path, object version, page index), and the version is the UFS's
//! ETag or its (size, mtime), so a page of a changed object can never be found again — stale data
//! is unreachable by construction rather than by invalidation. The memory and disk tiers that
//! store pages under these keys build on this crate; it may not know about S3 or HTTP.

pub mod objects;

pub use objects::{BucketObjects, ObjectService};

use std::fmt;

/// Default page size: 1 MiB.
pub const DEFAULT_PAGE_SIZE: u64 = 1 << 20;

/// The version of a UFS object, as far as the cache can tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectVersion {
    /// The store's own ETag (S3 and most object stores).
    ETag(String),
    /// Size and modification time in nanoseconds (file systems).
    SizeMtime { size: u64, mtime_ns: i128 },
}

/// The name of one cached page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub mount: String,
    pub path: String,
    pub version: ObjectVersion,
    pub index: u64,
}

impl PageKey {
    /// The pages covering bytes `start..end` of an object, for a given page size.
    pub fn indices(start: u64, end: u64, page_size: u64) -> std::ops::Range<u64> {
        if end <= start || page_size == 0 {
            return 0..0;
        }
        (start / page_size)..end.div_ceil(page_size)
    }
}

impl fmt::Display for PageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            ObjectVersion::ETag(e) => write!(f, "{}/{}@{}#{}", self.mount, self.path, e, self.index),
            ObjectVersion::SizeMtime { size, mtime_ns } => {
                write!(f, "{}/{}@{}:{}#{}", self.mount, self.path, size, mtime_ns, self.index)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges() {
        let p = DEFAULT_PAGE_SIZE;
        assert_eq!(PageKey::indices(0, 1, p), 0..1);
        assert_eq!(PageKey::indices(0, p, p), 0..1);
        assert_eq!(PageKey::indices(p - 1, p + 1, p), 0..2);
        assert_eq!(PageKey::indices(5, 5, p), 0..0);
    }

    #[test]
    fn a_new_version_is_a_different_page() {
        let key = |version| PageKey { mount: "m".into(), path: "a".into(), version, index: 0 };
        let old = key(ObjectVersion::SizeMtime { size: 1, mtime_ns: 10 });
        let new = key(ObjectVersion::SizeMtime { size: 1, mtime_ns: 11 });
        assert_ne!(old, new);
        assert_ne!(old.to_string(), new.to_string());
    }
}
