//! Object metadata kept with the object itself, in an extended attribute of its file.
//!
//! Keeping metadata in an xattr of the data file makes it atomic with the data: the writer sets it
//! on the temp file before the rename that publishes the object, so no reader sees new data with
//! old metadata. The attribute also records the size and mtime it was computed for, so a file
//! changed by another tool is detected and its ETag recomputed instead of served stale.
//!
//! File systems bound xattr sizes (ext4: one 4 KiB block for all of a file's attributes). A
//! record too large for that (a full set of tags plus 2 KB of user metadata) is written to an
//! immutable, content-addressed file in the mount's state folder first, and the xattr then holds
//! only its name — the switch is still the one atomic rename.

use std::collections::BTreeMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::key::STATE_DIR;

/// Extended attribute holding [`StoredMeta`] (or a pointer to it) on an object or explicit folder.
pub const META_XATTR: &str = "user.alcove.meta";
const META_XATTR_C: &std::ffi::CStr = c"user.alcove.meta";

/// ETag of empty content (the MD5 of nothing), used for folder objects.
pub const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";

const BLOB_DIR: &str = "meta-blobs";

/// A checksum stored with an object, as S3 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1` or `SHA256`.
    pub algorithm: String,
    /// Base64 value; composite multipart checksums end in `-N`.
    pub value: String,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub kind: String,
}

/// What a writer sets and a reader gets back, beyond the bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Expires`, as Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// `x-amz-meta-*`, names lowercased.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
    /// Sizes of the parts of a multipart object, for `partNumber` reads; empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<u64>,
    /// The checksums (base64) of those parts, in the algorithm of `checksum`, for
    /// GetObjectAttributes; empty when the upload had no checksum algorithm (or, on a remote
    /// mount, when they did not fit in the remote's user metadata).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub part_checksums: Vec<String>,
}

impl ObjectMeta {
    /// Forgets the part layout (sizes and part checksums) once the bytes are no longer those parts.
    pub fn clear_parts(&mut self) {
        self.parts.clear();
        self.part_checksums.clear();
    }
}

/// The xattr record: metadata plus what it was computed for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMeta {
    /// Hex MD5 of the content (or the multipart `md5-N`), unquoted.
    pub etag: String,
    pub size: u64,
    pub mtime_ns: i128,
    #[serde(flatten)]
    pub meta: ObjectMeta,
}

#[derive(Deserialize)]
struct BlobPointer {
    blob: String,
}

/// Everything a GET, HEAD or listing reports about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub last_modified: OffsetDateTime,
    /// Hex MD5 of the content (or `md5-N` for multipart objects), unquoted.
    pub etag: String,
    pub meta: ObjectMeta,
}

pub(crate) fn mtime_ns(md: &Metadata) -> i128 {
    md.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i128)
}

pub(crate) fn last_modified(md: &Metadata) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(mtime_ns(md)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Reads and writes metadata records of the objects of one mount.
pub(crate) struct MetaStore<'a> {
    root: &'a Path,
}

impl<'a> MetaStore<'a> {
    pub fn new(root: &'a Path) -> Self {
        Self { root }
    }

    fn blob_path(&self, name: &str) -> PathBuf {
        self.root.join(STATE_DIR).join(BLOB_DIR).join(name)
    }

    pub fn read(&self, path: &Path) -> Option<StoredMeta> {
        let raw = xattr::get(path, META_XATTR).ok().flatten()?;
        if let Ok(pointer) = serde_json::from_slice::<BlobPointer>(&raw) {
            // Blob names are hex digests we wrote; anything else is not followed.
            if !pointer.blob.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let blob = fs::read(self.blob_path(&pointer.blob)).ok()?;
            return serde_json::from_slice(&blob).ok();
        }
        serde_json::from_slice(&raw).ok()
    }

    pub fn write(&self, path: &Path, stored: &StoredMeta) -> io::Result<()> {
        let raw = serde_json::to_vec(stored).map_err(io::Error::other)?;
        match xattr::set(path, META_XATTR, &raw) {
            Err(e) if matches!(e.raw_os_error(), Some(7 /* E2BIG */ | 28 /* ENOSPC */ | 34 /* ERANGE */)) => {
                let name = hex::encode(Md5::digest(&raw));
                self.write_blob(&name, &raw)?;
                xattr::set(path, META_XATTR, format!("{{\"blob\":\"{name}\"}}").as_bytes())
            }
            other => other,
        }
    }

    fn write_blob(&self, name: &str, raw: &[u8]) -> io::Result<()> {
        let target = self.blob_path(name);
        if target.exists() {
            return Ok(());
        }
        let dir = target.parent().unwrap_or(self.root);
        fs::create_dir_all(dir)?;
        let temp = dir.join(format!("{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        fs::write(&temp, raw)?;
        File::open(&temp)?.sync_all()?;
        fs::rename(&temp, &target)
    }

    /// Describes the regular file at `path`. Metadata written by Alcove is used while it still
    /// matches the file; otherwise (a file put there by another tool, or changed by one) the MD5
    /// is computed from the content and remembered for next time. Blocking.
    /// Describes an open object file from its inline record alone, or `None` when that takes more
    /// (no record or a stale one: the ETag must be recomputed; a record spilled to a blob file).
    /// Never reads file data, so it can run on an async thread.
    pub fn describe_open_file(file: &File, md: &Metadata) -> Option<ObjectInfo> {
        // Records that fit in an ext4 inode's xattr space are well under this.
        let mut buf = [0u8; 4096];
        let raw = crate::nowait::read_xattr(file, META_XATTR_C, &mut buf)?;
        let stored: StoredMeta = serde_json::from_slice(raw).ok()?;
        (stored.size == md.len() && stored.mtime_ns == mtime_ns(md)).then(|| ObjectInfo {
            size: md.len(),
            last_modified: last_modified(md),
            etag: stored.etag,
            meta: stored.meta,
        })
    }

    pub fn describe_file(&self, path: &Path, md: &Metadata) -> io::Result<ObjectInfo> {
        let mtime = mtime_ns(md);
        let stored = match self.read(path) {
            Some(s) if s.size == md.len() && s.mtime_ns == mtime => s,
            previous => {
                let etag = md5_of_file(path)?;
                // Tags and headers survive an outside rewrite; checksums and parts do not.
                let mut meta = previous.map(|p| p.meta).unwrap_or_default();
                meta.checksum = None;
                meta.clear_parts();
                let fresh = StoredMeta { etag, size: md.len(), mtime_ns: mtime, meta };
                // Best effort: a read-only mount still serves, it just recomputes next time.
                if let Err(e) = self.write(path, &fresh) {
                    tracing::debug!(path = %path.display(), error = %e, "could not remember the ETag");
                }
                fresh
            }
        };
        Ok(ObjectInfo { size: md.len(), last_modified: last_modified(md), etag: stored.etag, meta: stored.meta })
    }

    /// Describes a directory as a 0-byte folder object: one created as an object (marked with a
    /// record) always, one that only holds deeper keys only when `implicit` folders count.
    pub fn describe_folder(&self, path: &Path, md: &Metadata, implicit: bool) -> Option<ObjectInfo> {
        let meta = match self.read(path) {
            Some(stored) => stored.meta,
            None if implicit => ObjectMeta::default(),
            None => return None,
        };
        Some(ObjectInfo { size: 0, last_modified: last_modified(md), etag: EMPTY_ETAG.to_owned(), meta })
    }
}

/// True when the folder was created as an object (PUT of `key/`), not implied by a deeper key.
pub(crate) fn is_explicit_folder(path: &Path) -> bool {
    matches!(xattr::get(path, META_XATTR), Ok(Some(_)))
}

fn md5_of_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_records_spill_to_a_blob_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("obj");
        fs::write(&file, b"x").unwrap();
        let store = MetaStore::new(dir.path());
        let mut meta = ObjectMeta::default();
        for i in 0..10 {
            meta.tags.insert(format!("{i:0>128}"), "v".repeat(256));
        }
        meta.user.insert("big".into(), "u".repeat(2000));
        let stored = StoredMeta { etag: "e".into(), size: 1, mtime_ns: 1, meta };
        store.write(&file, &stored).unwrap();
        assert_eq!(store.read(&file), Some(stored));
    }
}
