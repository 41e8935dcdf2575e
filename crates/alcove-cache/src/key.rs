//! The page cache's vocabulary: how a cached page of an object is named, and how that name is
//! written into a disk tier's page header.
//!
//! A page is keyed by (mount, path, object version, page index), and the version is the UFS's
//! ETag or its (size, mtime), so a page of a changed object can never be found again — stale data
//! is unreachable by construction rather than by invalidation. The memory and disk tiers that
//! store pages under these keys build on this module; it may not know about S3, HTTP or the
//! tiers themselves.

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

/// Tag of the key encoding below; a future layout gets another tag, and old pages read as
/// unknown (dropped) rather than misread.
const KEY_FORMAT: u8 = 1;
const VERSION_ETAG: u8 = 0;
const VERSION_SIZE_MTIME: u8 = 1;

impl PageKey {
    /// The key as bytes, for a disk tier's page header: the header must name the page fully so
    /// that a restart can rebuild the index from the disk alone, and so that a read can tell its
    /// page from another one written into the same slot. `None` if a field is too long for its
    /// length prefix (such a page is simply not cached on disk).
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(32 + self.mount.len() + self.path.len());
        out.push(KEY_FORMAT);
        out.extend_from_slice(&u16::try_from(self.mount.len()).ok()?.to_le_bytes());
        out.extend_from_slice(self.mount.as_bytes());
        out.extend_from_slice(&u32::try_from(self.path.len()).ok()?.to_le_bytes());
        out.extend_from_slice(self.path.as_bytes());
        match &self.version {
            ObjectVersion::ETag(etag) => {
                out.push(VERSION_ETAG);
                out.extend_from_slice(&u16::try_from(etag.len()).ok()?.to_le_bytes());
                out.extend_from_slice(etag.as_bytes());
            }
            ObjectVersion::SizeMtime { size, mtime_ns } => {
                out.push(VERSION_SIZE_MTIME);
                out.extend_from_slice(&size.to_le_bytes());
                out.extend_from_slice(&mtime_ns.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.index.to_le_bytes());
        Some(out)
    }

    /// The inverse of [`PageKey::encode`]. Disk content is untrusted: anything malformed (short,
    /// trailing bytes, not UTF-8, unknown tags) is `None`, never a panic.
    pub(crate) fn decode(bytes: &[u8]) -> Option<PageKey> {
        let mut r = Reader(bytes);
        if r.take(1)?[0] != KEY_FORMAT {
            return None;
        }
        let mount_len = u16::from_le_bytes(r.array()?) as usize;
        let mount = r.string(mount_len)?;
        let path_len = u32::from_le_bytes(r.array()?) as usize;
        let path = r.string(path_len)?;
        let version = match r.take(1)?[0] {
            VERSION_ETAG => {
                let len = u16::from_le_bytes(r.array()?) as usize;
                ObjectVersion::ETag(r.string(len)?)
            }
            VERSION_SIZE_MTIME => ObjectVersion::SizeMtime {
                size: u64::from_le_bytes(r.array()?),
                mtime_ns: i128::from_le_bytes(r.array()?),
            },
            _ => return None,
        };
        let index = u64::from_le_bytes(r.array()?);
        if !r.0.is_empty() {
            return None;
        }
        Some(PageKey { mount, path, version, index })
    }

    /// Heap bytes this key holds, for the memory tier's honest accounting.
    pub(crate) fn heap_size(&self) -> u64 {
        let version = match &self.version {
            ObjectVersion::ETag(e) => e.capacity(),
            ObjectVersion::SizeMtime { .. } => 0,
        };
        (self.mount.capacity() + self.path.capacity() + version) as u64
    }
}

/// A bounds-checked cursor over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn string(&mut self, n: usize) -> Option<String> {
        String::from_utf8(self.take(n)?.to_vec()).ok()
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

    #[test]
    fn keys_survive_their_encoding_and_garbage_does_not_decode() {
        let keys = [
            PageKey {
                mount: "m".into(),
                path: "dir/ü.bin".into(),
                version: ObjectVersion::ETag("\"abc\"".into()),
                index: 7,
            },
            PageKey {
                mount: String::new(),
                path: "x".into(),
                version: ObjectVersion::SizeMtime { size: 1 << 40, mtime_ns: -5 },
                index: u64::MAX,
            },
        ];
        for key in keys {
            let bytes = key.encode().expect("short fields encode");
            assert_eq!(PageKey::decode(&bytes), Some(key.clone()));
            for cut in 0..bytes.len() {
                assert_eq!(PageKey::decode(&bytes[..cut]), None, "a cut at {cut} must not decode");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(PageKey::decode(&longer), None);
        }
        let long =
            PageKey { mount: "m".repeat(70_000), path: "p".into(), version: ObjectVersion::ETag("e".into()), index: 0 };
        assert_eq!(long.encode(), None);
    }
}
