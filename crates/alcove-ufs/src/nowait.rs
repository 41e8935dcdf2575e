//! File-system calls that never wait for the disk, so hot objects are served from the async
//! threads without a hop to the blocking pool (the hop — two thread wake-ups — cost more than half
//! of a 4 KiB GET; see bench/RESULTS.md).
//!
//! Each call answers `None` when the kernel would have to go to the device (or does not support
//! the call): the caller then does the same work on the blocking pool. Path lookups use
//! `openat2(RESOLVE_CACHED)` (Linux 5.12), reads use `preadv2(RWF_NOWAIT)` (Linux 4.14); metadata
//! of an open file (`fstat`, `fgetxattr`) comes from the in-memory inode. This module may only read.

use std::ffi::CStr;
use std::fs::File;
use std::io::IoSliceMut;
use std::path::Path;

use bytes::Bytes;
use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
use rustix::io::ReadWriteFlags;

/// Opens `path` read-only if every component of the lookup is in the dentry cache.
pub(crate) fn open_cached(path: &Path) -> Option<File> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    rustix::fs::openat2(CWD, path, flags, Mode::empty(), ResolveFlags::CACHED).ok().map(File::from)
}

/// An extended attribute of an open file, read in one call into `buf` (`None` if absent or larger).
pub(crate) fn read_xattr<'b>(file: &File, name: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let len = rustix::fs::fgetxattr(file, name, &mut *buf).ok()?;
    buf.get(..len)
}

/// Reads `len` bytes from offset 0 if they are all in the page cache.
pub(crate) fn read_cached(file: &File, len: u64) -> Option<Bytes> {
    read_cached_at(file, 0, usize::try_from(len).ok()?).filter(|b| b.len() as u64 == len)
}

/// Reads up to `len` bytes at `offset`, as far as the page cache holds them without waiting:
/// `None` when not even the first byte is cached (or at the end of the file).
pub(crate) fn read_cached_at(file: &File, offset: u64, len: usize) -> Option<Bytes> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let mut slices = [IoSliceMut::new(&mut buf[filled..])];
        match rustix::io::preadv2(file, &mut slices, offset + filled as u64, ReadWriteFlags::NOWAIT) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    if filled == 0 {
        return None;
    }
    buf.truncate(filled);
    Some(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_file_is_opened_and_read_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot");
        std::fs::write(&path, b"hello, page cache").unwrap();
        // Just written: dentry and pages are cached.
        let file = open_cached(&path).expect("a just-written file is in the dentry cache");
        assert_eq!(read_cached(&file, 17).as_deref(), Some(&b"hello, page cache"[..]));
        // Asking for more than the file holds is a short read: not served from here.
        assert_eq!(read_cached(&file, 18), None);
        assert_eq!(read_cached_at(&file, 7, 100).as_deref(), Some(&b"page cache"[..]));
        assert_eq!(read_cached_at(&file, 17, 4), None, "at the end");
    }

    #[test]
    fn xattr_is_read_in_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tagged");
        std::fs::write(&path, b"x").unwrap();
        if xattr::set(&path, "user.alcove.test", b"value").is_err() {
            return; // the temp file system has no user xattrs
        }
        let file = File::open(&path).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(read_xattr(&file, c"user.alcove.test", &mut buf), Some(&b"value"[..]));
        assert_eq!(read_xattr(&file, c"user.alcove.absent", &mut buf), None);
        assert_eq!(read_xattr(&file, c"user.alcove.test", &mut [0u8; 2]), None);
    }

    #[test]
    fn missing_file_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_cached(&dir.path().join("absent")).is_none());
    }
}
