//! Multipart uploads on the local backend.
//!
//! An upload lives in the mount's state folder (`.alcove.sys/uploads/<id>/`): `upload.json` says
//! which key it is for and with what metadata, and each part is a file whose xattr holds its MD5
//! and checksum — written like an object (temp file, fsync, rename), so a re-sent part replaces
//! the old one atomically. Uploads therefore survive restarts and never appear in listings.
//! Completing concatenates the chosen parts into a temp file and publishes it like a PUT; the
//! object appears whole or not at all. The upload folder is then replaced by a small record of
//! the result (`.alcove.sys/completed/<id>.json`), kept for [`COMPLETED_RETENTION`], so a client
//! that lost the answer and sends Complete again gets the same result instead of NoSuchUpload.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::Stream;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::backend::{Precondition, PutChecks};
use crate::key::{ObjectKey, STATE_DIR};
use crate::local::{blocking, lock_key, receive, LocalFs, TempFile};
use crate::meta::{self, MetaStore, ObjectInfo, ObjectMeta, StoredChecksum, StoredMeta};
use crate::{UfsError, UfsResult};

const UPLOADS_DIR: &str = "uploads";
const MANIFEST: &str = "upload.json";
const COMPLETED_DIR: &str = "completed";

/// How long a completed upload's result answers a repeated CompleteMultipartUpload.
pub const COMPLETED_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Expired completion records are looked for at most this often.
const PRUNE_EVERY_SECS: i64 = 600;

/// AWS's smallest part, except the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// AWS's part numbers.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    #[serde(skip)]
    pub upload_id: String,
    pub key: String,
    /// Nanoseconds, so uploads of one key list in the order they were started.
    #[serde(with = "time::serde::timestamp::nanoseconds")]
    pub initiated: OffsetDateTime,
    /// Metadata the completed object will get (headers, user metadata, tags).
    pub meta: ObjectMeta,
    /// `x-amz-checksum-algorithm` given at creation, if any.
    pub checksum_algorithm: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE`, if a checksum algorithm was given.
    pub checksum_type: Option<String>,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub number: u32,
    /// Hex MD5 of the part, unquoted.
    pub etag: String,
    pub size: u64,
    pub last_modified: OffsetDateTime,
    /// The part's checksum (base64), when the upload has a checksum algorithm.
    pub checksum: Option<String>,
}

/// A part as named in CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub struct CompletePart {
    pub number: u32,
    /// Hex MD5, unquoted.
    pub etag: String,
    /// The part's checksum as the client names it, checked when given.
    pub checksum: Option<String>,
}

/// Streams bytes of the completed object as they are assembled (for full-object checksums).
pub type ContentTap = Box<dyn FnMut(&[u8]) + Send>;

/// What a completed upload answered, kept to answer a repeated Complete the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUpload {
    pub key: String,
    /// [`parts_digest`] of the parts the upload was completed with.
    pub parts: String,
    /// The object's ETag (hex, unquoted).
    pub etag: String,
    pub checksum: Option<StoredChecksum>,
    #[serde(with = "time::serde::timestamp")]
    pub completed: OffsetDateTime,
}

/// A digest of a Complete request's parts list (numbers and ETags, in order), so a repeat can be
/// recognised without keeping up to 10 000 entries.
pub fn parts_digest<'a>(parts: impl IntoIterator<Item = (u32, &'a str)>) -> String {
    let mut digest = Md5::new();
    for (number, etag) in parts {
        digest.update(format!("{number}:{etag}\n"));
    }
    hex::encode(digest.finalize())
}

impl LocalFs {
    fn uploads_dir(&self) -> PathBuf {
        self.root().join(STATE_DIR).join(UPLOADS_DIR)
    }

    /// The folder of an upload; ids are our own hex strings, anything else is unknown.
    fn upload_dir(&self, upload_id: &str) -> UfsResult<PathBuf> {
        if upload_id.len() != 32 || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(UfsError::NoSuchUpload);
        }
        Ok(self.uploads_dir().join(upload_id))
    }

    /// Starts an upload for `key`.
    pub async fn create_upload(&self, key: &ObjectKey, mut info: UploadInfo) -> UfsResult<UploadInfo> {
        if key.is_folder() {
            return Err(UfsError::InvalidRequest(
                "a key ending in '/' is a folder and cannot be uploaded in parts".into(),
            ));
        }
        info.upload_id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.upload_dir(&info.upload_id)?;
        let manifest = info.clone();
        blocking(move || {
            fs::create_dir_all(&dir).map_err(|e| UfsError::io("creating the upload folder", e))?;
            let raw = serde_json::to_vec(&manifest).map_err(|e| UfsError::io("encoding the upload", e.into()))?;
            write_durably(&dir.join(MANIFEST), &raw).map_err(|e| UfsError::io("saving the upload", e))
        })
        .await?;
        Ok(info)
    }

    /// The upload `upload_id`, which must be for `key`.
    pub async fn upload(&self, upload_id: &str, key: &str) -> UfsResult<UploadInfo> {
        let dir = self.upload_dir(upload_id)?;
        let (id, key) = (upload_id.to_owned(), key.to_owned());
        blocking(move || match read_manifest(&dir, &id)? {
            Some(info) if info.key == key => Ok(info),
            _ => Err(UfsError::NoSuchUpload),
        })
        .await
    }

    /// Stores one part; `checksum` is asked for once the body has arrived.
    pub async fn upload_part<S, E, C>(
        &self,
        upload: &UploadInfo,
        number: u32,
        body: S,
        checks: PutChecks,
        checksum: C,
    ) -> UfsResult<PartInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        C: FnOnce() -> Option<String> + Send + 'static,
    {
        let dir = self.upload_dir(&upload.upload_id)?;
        let temp = self.new_temp_file().await?;
        let (md5, size) = receive(&temp.0, body, &checks).await?;
        let checksum = checksum();
        let root = self.root().to_path_buf();
        let temp_path = temp.0.clone();
        let part = blocking(move || {
            let md = fs::metadata(&temp_path).map_err(|e| UfsError::io("stat of the part", e))?;
            let meta = ObjectMeta {
                checksum: checksum.map(|value| StoredChecksum { algorithm: String::new(), value, kind: String::new() }),
                ..Default::default()
            };
            let stored = StoredMeta { etag: hex::encode(md5), size, mtime_ns: meta::mtime_ns(&md), meta };
            MetaStore::new(&root).write(&temp_path, &stored).map_err(|e| UfsError::io("storing part metadata", e))?;
            // The upload may have been completed or aborted meanwhile.
            let _guard = lock_key(&dir);
            if !dir.join(MANIFEST).exists() {
                return Err(UfsError::NoSuchUpload);
            }
            fs::rename(&temp_path, dir.join(part_file(number))).map_err(|e| UfsError::io("storing the part", e))?;
            Ok(PartInfo {
                number,
                etag: stored.etag,
                size,
                last_modified: meta::last_modified(&md),
                checksum: stored.meta.checksum.map(|c| c.value),
            })
        })
        .await?;
        temp.disarm();
        Ok(part)
    }

    /// All parts of an upload, by number.
    pub async fn list_parts(&self, upload: &UploadInfo) -> UfsResult<Vec<PartInfo>> {
        let dir = self.upload_dir(&upload.upload_id)?;
        let root = self.root().to_path_buf();
        blocking(move || read_parts(&root, &dir)).await
    }

    /// Drops an upload and its parts.
    pub async fn abort_upload(&self, upload: &UploadInfo) -> UfsResult<()> {
        let dir = self.upload_dir(&upload.upload_id)?;
        blocking(move || {
            let _guard = lock_key(&dir);
            match fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(UfsError::NoSuchUpload),
                Err(e) => Err(UfsError::io("removing the upload", e)),
            }
        })
        .await
    }

    /// Every upload in progress, ordered by key, then initiation time.
    pub async fn list_uploads(&self) -> UfsResult<Vec<UploadInfo>> {
        let dir = self.uploads_dir();
        blocking(move || {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(UfsError::io("listing uploads", e)),
            };
            let mut uploads = Vec::new();
            for entry in entries.flatten() {
                let Ok(id) = entry.file_name().into_string() else { continue };
                if let Ok(Some(info)) = read_manifest(&entry.path(), &id) {
                    uploads.push(info);
                }
            }
            uploads.sort_by(|a, b| (&a.key, a.initiated, &a.upload_id).cmp(&(&b.key, b.initiated, &b.upload_id)));
            Ok(uploads)
        })
        .await
    }

    /// Assembles the named parts into the object `key` and ends the upload.
    ///
    /// Checks, in AWS's order: parts ascending (`InvalidPartOrder`), each uploaded with that
    /// ETag (`InvalidPart`), each but the last at least 5 MiB (`EntityTooSmall`). `meta` is
    /// asked for after assembly, with the parts used, so full-object checksums fed by `tap`
    /// are complete.
    pub async fn complete_upload<M>(
        &self,
        key: &ObjectKey,
        upload: &UploadInfo,
        chosen: Vec<CompletePart>,
        precondition: Option<Precondition>,
        mut tap: Option<ContentTap>,
        meta: M,
    ) -> UfsResult<ObjectInfo>
    where
        M: FnOnce(&[PartInfo]) -> UfsResult<ObjectMeta> + Send + 'static,
    {
        let parts = parts_digest(chosen.iter().map(|p| (p.number, p.etag.as_str())));
        let assembled = self.assemble_upload(upload, chosen, tap.take(), meta).await?;
        let info =
            self.commit(key, &assembled.temp, assembled.etag, assembled.size, assembled.meta, precondition).await?;
        assembled.temp.disarm();
        self.finish_upload(upload, parts, &info).await?;
        Ok(info)
    }

    /// Checks the chosen parts and concatenates them into a temp file (see `complete_upload`).
    pub(crate) async fn assemble_upload<M>(
        &self,
        upload: &UploadInfo,
        chosen: Vec<CompletePart>,
        mut tap: Option<ContentTap>,
        meta: M,
    ) -> UfsResult<Assembled>
    where
        M: FnOnce(&[PartInfo]) -> UfsResult<ObjectMeta> + Send + 'static,
    {
        let dir = self.upload_dir(&upload.upload_id)?;
        let uploaded = self.list_parts(upload).await?;
        let parts = select_parts(&uploaded, &chosen)?;
        let temp = self.new_temp_file().await?;
        let temp_path = temp.0.clone();
        let sources: Vec<PathBuf> = parts.iter().map(|p| dir.join(part_file(p.number))).collect();
        let (size, etag, meta) = blocking(move || {
            let size = concatenate(&temp_path, &sources, tap.as_mut())?;
            let mut md5s = Md5::new();
            for part in &parts {
                md5s.update(hex::decode(&part.etag).unwrap_or_default());
            }
            let etag = format!("{}-{}", hex::encode(md5s.finalize()), parts.len());
            let mut object_meta = meta(&parts)?;
            object_meta.parts = parts.iter().map(|p| p.size).collect();
            Ok((size, etag, object_meta))
        })
        .await?;
        Ok(Assembled { temp, size, etag, meta })
    }

    /// Replaces a completed upload's folder by the record of its result. The record is durable
    /// before the folder goes, so a crash in between leaves an upload that completes again.
    pub(crate) async fn finish_upload(&self, upload: &UploadInfo, parts: String, info: &ObjectInfo) -> UfsResult<()> {
        let dir = self.upload_dir(&upload.upload_id)?;
        let completed_dir = self.completed_dir();
        let record_path = completed_dir.join(format!("{}.json", upload.upload_id));
        let record = CompletedUpload {
            key: upload.key.clone(),
            parts,
            etag: info.etag.clone(),
            checksum: info.meta.checksum.clone(),
            completed: OffsetDateTime::now_utc(),
        };
        blocking(move || {
            let raw = serde_json::to_vec(&record).map_err(|e| UfsError::io("encoding the completion", e.into()))?;
            fs::create_dir_all(&completed_dir).map_err(|e| UfsError::io("creating the completions folder", e))?;
            write_durably(&record_path, &raw).map_err(|e| UfsError::io("recording the completion", e))?;
            let _guard = lock_key(&dir);
            fs::remove_dir_all(&dir).map_err(|e| UfsError::io("removing the completed upload", e))?;
            prune_completed(&completed_dir, OffsetDateTime::now_utc());
            Ok(())
        })
        .await
    }

    /// The result of the upload `upload_id` for `key` if it was completed within
    /// [`COMPLETED_RETENTION`].
    pub async fn completed_upload(&self, upload_id: &str, key: &str) -> UfsResult<Option<CompletedUpload>> {
        self.upload_dir(upload_id)?;
        let path = self.completed_dir().join(format!("{upload_id}.json"));
        let key = key.to_owned();
        blocking(move || {
            let raw = match fs::read(&path) {
                Ok(raw) => raw,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(UfsError::io("reading a completion record", e)),
            };
            let record: CompletedUpload =
                serde_json::from_slice(&raw).map_err(|e| UfsError::io("reading a completion record", e.into()))?;
            let fresh = OffsetDateTime::now_utc() - record.completed < COMPLETED_RETENTION;
            Ok((fresh && record.key == key).then_some(record))
        })
        .await
    }

    fn completed_dir(&self) -> PathBuf {
        self.root().join(STATE_DIR).join(COMPLETED_DIR)
    }
}

/// Removes completion records older than [`COMPLETED_RETENTION`], at most once per
/// [`PRUNE_EVERY_SECS`] in this process (a busy worker completes many uploads).
fn prune_completed(dir: &Path, now: OffsetDateTime) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST_PRUNE: AtomicI64 = AtomicI64::new(0);
    let last = LAST_PRUNE.load(Ordering::Relaxed);
    let now_secs = now.unix_timestamp();
    if now_secs - last < PRUNE_EVERY_SECS
        || LAST_PRUNE.compare_exchange(last, now_secs, Ordering::Relaxed, Ordering::Relaxed).is_err()
    {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    let cutoff = std::time::SystemTime::now() - COMPLETED_RETENTION;
    for entry in entries.flatten() {
        let old = entry.metadata().and_then(|md| md.modified()).is_ok_and(|t| t < cutoff);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A completed upload's content in a temp file (removed on drop unless published).
pub(crate) struct Assembled {
    pub temp: TempFile,
    pub size: u64,
    /// The multipart ETag (`md5-of-md5s-N`).
    pub etag: String,
    pub meta: ObjectMeta,
}

fn part_file(number: u32) -> String {
    format!("part-{number:05}")
}

fn read_manifest(dir: &Path, upload_id: &str) -> UfsResult<Option<UploadInfo>> {
    match fs::read(dir.join(MANIFEST)) {
        Ok(raw) => {
            let mut info: UploadInfo =
                serde_json::from_slice(&raw).map_err(|e| UfsError::io("reading an upload", e.into()))?;
            info.upload_id = upload_id.to_owned();
            Ok(Some(info))
        }
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(UfsError::io("reading an upload", e)),
    }
}

fn read_parts(root: &Path, dir: &Path) -> UfsResult<Vec<PartInfo>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(UfsError::NoSuchUpload),
        Err(e) => return Err(UfsError::io("listing parts", e)),
    };
    let store = MetaStore::new(root);
    let mut parts = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(number) = name.to_str().and_then(|n| n.strip_prefix("part-")).and_then(|n| n.parse().ok()) else {
            continue;
        };
        let path = entry.path();
        let Ok(md) = fs::metadata(&path) else { continue };
        let Ok(info) = store.describe_file(&path, &md) else { continue };
        parts.push(PartInfo {
            number,
            etag: info.etag,
            size: info.size,
            last_modified: info.last_modified,
            checksum: info.meta.checksum.map(|c| c.value),
        });
    }
    parts.sort_by_key(|p| p.number);
    Ok(parts)
}

fn select_parts(uploaded: &[PartInfo], chosen: &[CompletePart]) -> UfsResult<Vec<PartInfo>> {
    if chosen.windows(2).any(|w| w[0].number >= w[1].number) {
        return Err(UfsError::InvalidPartOrder);
    }
    let mut parts = Vec::with_capacity(chosen.len());
    for want in chosen {
        let part = uploaded.iter().find(|p| p.number == want.number && p.etag == want.etag).ok_or_else(|| {
            UfsError::InvalidPart(format!(
                "part {} with ETag \"{}\" was not uploaded, or its ETag differs",
                want.number, want.etag
            ))
        })?;
        if want.checksum.as_ref().is_some_and(|c| part.checksum.as_ref() != Some(c)) {
            return Err(UfsError::InvalidPart(format!(
                "the checksum given for part {} does not match the one it was uploaded with",
                want.number
            )));
        }
        parts.push(part.clone());
    }
    if let Some(small) = parts.iter().rev().skip(1).find(|p| p.size < MIN_PART_SIZE) {
        return Err(UfsError::EntityTooSmall(format!(
            "part {} is {} bytes; every part but the last must be at least 5 MiB",
            small.number, small.size
        )));
    }
    Ok(parts)
}

/// Appends the parts into `target`, feeding `tap`, and fsyncs it. Returns the total size.
fn concatenate(target: &Path, sources: &[PathBuf], mut tap: Option<&mut ContentTap>) -> UfsResult<u64> {
    let io_err = |e| UfsError::io("assembling the object", e);
    let mut out = File::create(target).map_err(io_err)?;
    let mut total = 0;
    for source in sources {
        let mut input = File::open(source).map_err(io_err)?;
        total += match tap.as_deref_mut() {
            // Without a tap the kernel copies (copy_file_range), never through user space.
            None => io::copy(&mut input, &mut out).map_err(io_err)?,
            Some(tap) => copy_tapped(&mut input, &mut out, tap).map_err(io_err)?,
        };
    }
    out.sync_all().map_err(io_err)?;
    Ok(total)
}

fn copy_tapped(input: &mut File, out: &mut File, tap: &mut ContentTap) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        tap(&buf[..n]);
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn write_durably(path: &Path, raw: &[u8]) -> io::Result<()> {
    let temp = path.with_extension("tmp");
    fs::write(&temp, raw)?;
    File::open(&temp)?.sync_all()?;
    fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::ListQuery;
    use futures::stream;

    fn body(data: Vec<u8>) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin {
        stream::iter(vec![Ok(Bytes::from(data))])
    }

    fn new_upload(key: &str) -> UploadInfo {
        UploadInfo {
            upload_id: String::new(),
            key: key.into(),
            initiated: OffsetDateTime::now_utc(),
            meta: ObjectMeta { content_type: Some("text/plain".into()), ..Default::default() },
            checksum_algorithm: None,
            checksum_type: None,
        }
    }

    #[tokio::test]
    async fn upload_complete_and_etag() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        let key = ObjectKey::parse("big/file").unwrap();
        let upload = fs.create_upload(&key, new_upload("big/file")).await.unwrap();
        let a = vec![b'a'; MIN_PART_SIZE as usize];
        let p1 = fs.upload_part(&upload, 1, body(a.clone()), PutChecks::default(), || None).await.unwrap();
        let p2 = fs.upload_part(&upload, 2, body(b"tail".to_vec()), PutChecks::default(), || None).await.unwrap();
        assert_eq!(fs.list_uploads().await.unwrap().len(), 1);
        let names = fs.list(ListQuery { max_keys: 100, ..Default::default() }).await.unwrap();
        assert!(names.items.is_empty(), "uploads are never listed");

        let chosen = vec![
            CompletePart { number: 1, etag: p1.etag.clone(), checksum: None },
            CompletePart { number: 2, etag: p2.etag.clone(), checksum: None },
        ];
        let info = fs.complete_upload(&key, &upload, chosen, None, None, |_| Ok(new_upload("").meta)).await.unwrap();
        let mut md5s = Md5::new();
        md5s.update(hex::decode(&p1.etag).unwrap());
        md5s.update(hex::decode(&p2.etag).unwrap());
        assert_eq!(info.etag, format!("{}-2", hex::encode(md5s.finalize())));
        assert_eq!(info.meta.parts, vec![MIN_PART_SIZE, 4]);
        let data = std::fs::read(dir.path().join("big/file")).unwrap();
        assert_eq!(data.len() as u64, MIN_PART_SIZE + 4);
        assert!(data.ends_with(b"tail"));
        assert_eq!(fs.stat(&key).await.unwrap().etag, info.etag, "stable ETag");
        assert!(fs.list_uploads().await.unwrap().is_empty(), "the upload is gone");
        assert!(matches!(fs.upload(&upload.upload_id, "big/file").await, Err(UfsError::NoSuchUpload)));

        // The result is remembered for a repeated Complete of the same key, for a while.
        let done = fs.completed_upload(&upload.upload_id, "big/file").await.unwrap().expect("a completion record");
        assert_eq!(done.etag, info.etag);
        assert_eq!(done.parts, parts_digest([(1, p1.etag.as_str()), (2, p2.etag.as_str())]));
        assert_ne!(done.parts, parts_digest([(1, p1.etag.as_str())]));
        assert!(fs.completed_upload(&upload.upload_id, "other").await.unwrap().is_none());
        let record = dir.path().join(STATE_DIR).join(COMPLETED_DIR).join(format!("{}.json", upload.upload_id));
        let stale = CompletedUpload { completed: done.completed - COMPLETED_RETENTION, ..done };
        std::fs::write(&record, serde_json::to_vec(&stale).unwrap()).unwrap();
        assert!(fs.completed_upload(&upload.upload_id, "big/file").await.unwrap().is_none(), "expired");
    }

    #[tokio::test]
    async fn completion_checks_parts() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        let key = ObjectKey::parse("k").unwrap();
        let upload = fs.create_upload(&key, new_upload("k")).await.unwrap();
        let p1 = fs.upload_part(&upload, 1, body(b"small".to_vec()), PutChecks::default(), || None).await.unwrap();
        let p2 = fs.upload_part(&upload, 2, body(b"last".to_vec()), PutChecks::default(), || None).await.unwrap();
        let part = |n: u32, e: &str| CompletePart { number: n, etag: e.into(), checksum: None };
        let complete = |chosen: Vec<CompletePart>| {
            let fs = fs.clone();
            let key = key.clone();
            let upload = upload.clone();
            async move { fs.complete_upload(&key, &upload, chosen, None, None, |_| Ok(ObjectMeta::default())).await }
        };
        assert!(matches!(complete(vec![part(2, &p2.etag), part(1, &p1.etag)]).await, Err(UfsError::InvalidPartOrder)));
        assert!(matches!(complete(vec![part(1, "00")]).await, Err(UfsError::InvalidPart(_))));
        assert!(matches!(complete(vec![part(1, &p1.etag), part(2, &p2.etag)]).await, Err(UfsError::EntityTooSmall(_))));
        assert!(!dir.path().join("k").exists(), "nothing published");
        // A single small part is fine: it is the last.
        complete(vec![part(1, &p1.etag)]).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("k")).unwrap(), b"small");
    }

    #[tokio::test]
    async fn abort_and_unknown_ids() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        let key = ObjectKey::parse("k").unwrap();
        let upload = fs.create_upload(&key, new_upload("k")).await.unwrap();
        assert!(matches!(fs.upload(&upload.upload_id, "other").await, Err(UfsError::NoSuchUpload)));
        assert!(matches!(fs.upload("../../etc", "k").await, Err(UfsError::NoSuchUpload)));
        fs.abort_upload(&upload).await.unwrap();
        assert!(matches!(fs.abort_upload(&upload).await, Err(UfsError::NoSuchUpload)));
    }
}
