//! Object metadata kept with the object itself, in an extended attribute of its file.
//!
//! Keeping metadata in an xattr of the data file makes it atomic with the data: the writer sets it
//! on the temp file before the rename that publishes the object, so no reader sees new data with
//! old metadata. The attribute also records the size and mtime it was computed for, so a file
//! changed by another tool is detected and its ETag recomputed instead of served stale.

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Extended attribute holding [`StoredMeta`] on an object file or an explicit folder.
pub const META_XATTR: &str = "user.alcove.meta";

/// ETag of empty content (the MD5 of nothing), used for folder objects.
pub const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// What Alcove stores about an object beyond its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMeta {
    /// Hex MD5 of the content, unquoted.
    pub etag: String,
    /// Size and mtime of the file this was computed for.
    pub size: u64,
    pub mtime_ns: i128,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
}

/// Metadata the writer supplies with a PUT.
#[derive(Debug, Clone, Default)]
pub struct WriteMeta {
    pub content_type: Option<String>,
    pub user: BTreeMap<String, String>,
}

/// Everything a GET, HEAD or listing reports about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub last_modified: OffsetDateTime,
    /// Hex MD5 of the content, unquoted.
    pub etag: String,
    pub content_type: Option<String>,
    pub user: BTreeMap<String, String>,
}

pub(crate) fn mtime_ns(md: &Metadata) -> i128 {
    md.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i128)
}

pub(crate) fn last_modified(md: &Metadata) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(mtime_ns(md)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn read_stored(path: &Path) -> Option<StoredMeta> {
    let raw = xattr::get(path, META_XATTR).ok().flatten()?;
    serde_json::from_slice(&raw).ok()
}

pub(crate) fn write_stored(path: &Path, meta: &StoredMeta) -> std::io::Result<()> {
    let raw = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    xattr::set(path, META_XATTR, &raw)
}

/// Describes the regular file at `path` (whose metadata is `md`). Metadata written by Alcove is
/// used while it still matches the file; otherwise (a file put there by another tool, or changed
/// by one) the MD5 is computed from the content and remembered for next time.
///
/// Blocking: call from a blocking-capable thread.
pub(crate) fn describe_file(path: &Path, md: &Metadata) -> std::io::Result<ObjectInfo> {
    let mtime = mtime_ns(md);
    let stored = match read_stored(path) {
        Some(s) if s.size == md.len() && s.mtime_ns == mtime => s,
        previous => {
            let etag = md5_of_file(path)?;
            let (content_type, user) = previous.map(|p| (p.content_type, p.user)).unwrap_or_default();
            let fresh = StoredMeta { etag, size: md.len(), mtime_ns: mtime, content_type, user };
            // Best effort: a read-only mount still serves, it just recomputes next time.
            if let Err(e) = write_stored(path, &fresh) {
                tracing::debug!(path = %path.display(), error = %e, "could not remember the ETag");
            }
            fresh
        }
    };
    Ok(ObjectInfo {
        size: md.len(),
        last_modified: last_modified(md),
        etag: stored.etag,
        content_type: stored.content_type,
        user: stored.user,
    })
}

/// Describes a directory as a 0-byte folder object.
pub(crate) fn describe_folder(path: &Path, md: &Metadata) -> ObjectInfo {
    let stored = read_stored(path).unwrap_or_default();
    ObjectInfo {
        size: 0,
        last_modified: last_modified(md),
        etag: EMPTY_ETAG.to_owned(),
        content_type: stored.content_type,
        user: stored.user,
    }
}

/// True when the folder was created as an object (PUT of `key/`), not implied by a deeper key.
pub(crate) fn is_explicit_folder(path: &Path) -> bool {
    matches!(xattr::get(path, META_XATTR), Ok(Some(_)))
}

fn md5_of_file(path: &Path) -> std::io::Result<String> {
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
