//! The mount table: which bucket name leads to which under-storage.
//!
//! Two sources of buckets: explicit mounts (`/name` → UFS URI, from the config file or added at
//! run time and persisted in the root's state folder), and the embedded default — every top-level
//! folder of the local root is a bucket, and CreateBucket makes one. An explicit mount wins over a
//! root folder of the same name.
//!
//! A mount's backend is built once, when the mount is added or the table opened (so a remote
//! mount's client and connection pool are shared by all its requests).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::key::STATE_DIR;
use crate::local::LocalFs;
use crate::meta;
use crate::remote::RemoteTuning;
use crate::stats::UfsStats;
use crate::store::{Backend, Store};
use crate::uri::{redact, MountSpec, UfsUri};
use crate::{UfsError, UfsResult};

const MOUNTS_FILE: &str = "mounts.json";
/// Under the root's state folder: per remote mount, its staged uploads and bucket tags.
const REMOTE_STAGING_DIR: &str = "remote";

/// One explicit mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountEntry {
    /// `/bucket`.
    pub path: String,
    /// The UFS URI, e.g. `file:///srv/photos`.
    pub ufs: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Defined in the config file: not persisted, not removable at run time.
    #[serde(default, skip_serializing)]
    pub from_config: bool,
}

/// A bucket as ListBuckets reports it.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    pub name: String,
    pub created: OffsetDateTime,
}

/// A resolved bucket: its backend, whether it is an explicit mount, and whether its reads go
/// through the page cache.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub store: Store,
    pub is_mount: bool,
    pub cached: bool,
}

/// An explicit mount with its backend.
#[derive(Debug)]
struct Mounted {
    entry: MountEntry,
    store: Store,
    cached: bool,
}

/// What every mount gets unless its own options say otherwise.
#[derive(Debug, Clone, Default)]
pub struct MountDefaults {
    pub remote: RemoteTuning,
    /// `s3.folder_objects`: list implicit folders as `dir/` objects (the seed system's listings)
    /// instead of AWS's (only objects that were written).
    pub folder_objects: bool,
    /// The folders `file://` mounts may name (or lie under); `None`: the local root only.
    pub local_roots: Option<Vec<PathBuf>>,
}

/// The mount table and the embedded local root.
#[derive(Debug)]
pub struct MountTable {
    root: PathBuf,
    /// `defaults.local_roots` resolved (or the root): where `file://` mounts may point.
    local_roots: Vec<PathBuf>,
    defaults: MountDefaults,
    mounts: RwLock<BTreeMap<String, Mounted>>,
    /// Under-storage figures of the root's folders (a mount's live in its store).
    root_stats: Mutex<HashMap<String, Arc<UfsStats>>>,
}

impl MountTable {
    /// Opens the table for the local `root` (created if missing), merging persisted mounts with
    /// those from the config file.
    pub fn open(root: &Path, config_mounts: Vec<MountEntry>, defaults: MountDefaults) -> UfsResult<Self> {
        fs::create_dir_all(root.join(STATE_DIR))
            .map_err(|e| UfsError::io(format!("creating the local root {}", root.display()), e))?;
        let root = root.canonicalize().map_err(|e| UfsError::io("resolving the local root", e))?;
        let local_roots = match &defaults.local_roots {
            None => vec![root.clone()],
            Some(dirs) => dirs
                .iter()
                .map(|d| {
                    d.canonicalize().map_err(|e| {
                        UfsError::InvalidRequest(format!("the local root {} cannot be resolved: {e}", d.display()))
                    })
                })
                .collect::<UfsResult<_>>()?,
        };
        let table =
            Self { root, local_roots, defaults, mounts: RwLock::new(BTreeMap::new()), root_stats: Mutex::default() };
        let mut mounts = BTreeMap::new();
        for entry in read_persisted(&table.root)? {
            let name = bucket_of(&entry.path)?.to_owned();
            mounts.insert(name, table.mounted(entry)?);
        }
        for mut entry in config_mounts {
            entry.from_config = true;
            let name = bucket_of(&entry.path)?.to_owned();
            mounts.insert(name, table.mounted(entry)?);
        }
        *table.write() = mounts;
        Ok(table)
    }

    /// Checks a mount entry and builds its backend (no request is sent to a remote).
    fn mounted(&self, entry: MountEntry) -> UfsResult<Mounted> {
        let name = bucket_of(&entry.path)?;
        let mut spec = MountSpec::parse(&entry.ufs, &entry.options)?;
        if let UfsUri::Local(dir) = &spec.ufs {
            spec.ufs = UfsUri::Local(self.allowed_local_dir(&entry.ufs, dir)?);
        }
        let folder_objects = spec.options.folder_objects.unwrap_or(self.defaults.folder_objects);
        let cached = spec.options.cache.unwrap_or(matches!(spec.ufs, UfsUri::Remote(_)));
        let staging = self.root.join(STATE_DIR).join(REMOTE_STAGING_DIR).join(name);
        let store = Store::for_mount(&entry.path, spec.ufs, folder_objects, &self.defaults.remote, staging)?;
        Ok(Mounted { entry, store, cached })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of the local root that a mount at `path` would hide (the bucket of the same
    /// name), if there is one.
    pub fn local_folder_under(&self, path: &str) -> Option<PathBuf> {
        let folder = self.root.join(bucket_of(path).ok()?);
        folder.is_dir().then_some(folder)
    }

    /// The folders `file://` mounts may name, resolved.
    pub fn local_roots(&self) -> &[PathBuf] {
        &self.local_roots
    }

    /// A `file://` mount's folder resolved (`..` and symbolic links followed), if it is one of the
    /// local roots or lies under one, and is not inside one of the worker's state folders.
    fn allowed_local_dir(&self, uri: &str, dir: &Path) -> UfsResult<PathBuf> {
        let resolved = dir.canonicalize().map_err(|_| {
            UfsError::InvalidRequest(format!(
                "the UFS directory {} does not exist or is not a directory",
                dir.display()
            ))
        })?;
        if !resolved.is_dir() {
            return Err(UfsError::InvalidRequest(format!("the UFS path {} is not a directory", dir.display())));
        }
        if resolved.components().any(|c| c.as_os_str() == STATE_DIR) {
            return Err(UfsError::InvalidRequest(format!(
                "{uri} is inside a {STATE_DIR} folder (the worker's own state); it cannot be mounted"
            )));
        }
        if !self.local_roots.iter().any(|r| resolved.starts_with(r)) {
            let roots: Vec<String> = self.local_roots.iter().map(|r| r.display().to_string()).collect();
            return Err(UfsError::InvalidRequest(format!(
                "{uri} resolves to {}, which is outside the allowed local roots ({}); add a folder to ufs.local_roots to allow it",
                resolved.display(),
                roots.join(", ")
            )));
        }
        Ok(resolved)
    }

    /// The mounts, with secret option values redacted.
    pub fn list(&self) -> Vec<MountEntry> {
        self.read().values().map(|m| MountEntry { options: redact(&m.entry.options), ..m.entry.clone() }).collect()
    }

    /// Adds a mount and persists it.
    pub fn add(&self, entry: MountEntry) -> UfsResult<()> {
        let name = bucket_of(&entry.path)?.to_owned();
        let mounted = self.mounted(entry)?;
        let mut mounts = self.write();
        if mounts.contains_key(&name) {
            return Err(UfsError::BucketExists(name));
        }
        mounts.insert(name, mounted);
        self.persist(&mounts)
    }

    /// The mounts added at run time, secrets included: what a cluster's workers share (each
    /// worker's config-file mounts stay its own).
    pub fn shared_entries(&self) -> Vec<MountEntry> {
        self.read().values().filter(|m| !m.entry.from_config).map(|m| m.entry.clone()).collect()
    }

    /// Makes the run-time mounts what `wanted` says (the cluster's table): adds the missing ones,
    /// replaces changed ones, removes the others; config-file mounts stay. A wanted entry that
    /// cannot be mounted here is skipped and reported; the rest still apply.
    pub fn reconcile(&self, wanted: Vec<MountEntry>) -> Vec<(String, UfsError)> {
        let mut failures = Vec::new();
        let mut next = BTreeMap::new();
        for mut entry in wanted {
            entry.from_config = false;
            let name = match bucket_of(&entry.path) {
                Ok(name) => name.to_owned(),
                Err(e) => {
                    failures.push((entry.path.clone(), e));
                    continue;
                }
            };
            next.insert(name, entry);
        }
        let mut mounts = self.write();
        let stale: Vec<String> = mounts
            .iter()
            .filter(|(name, m)| !m.entry.from_config && next.get(*name) != Some(&m.entry))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            mounts.remove(&name);
        }
        for (name, entry) in next {
            if mounts.contains_key(&name) {
                continue;
            }
            match self.mounted(entry) {
                Ok(m) => {
                    mounts.insert(name, m);
                }
                Err(e) => failures.push((format!("/{name}"), e)),
            }
        }
        if let Err(e) = self.persist(&mounts) {
            failures.push((String::from("the mount table"), e));
        }
        failures
    }

    /// Removes a mount (not its data) and persists the change.
    pub fn remove(&self, path: &str) -> UfsResult<()> {
        let name = bucket_of(path)?.to_owned();
        let mut mounts = self.write();
        match mounts.get(&name) {
            None => Err(UfsError::NoSuchBucket(name)),
            Some(m) if m.entry.from_config => Err(UfsError::InvalidRequest(format!(
                "the mount {path} is defined in the config file; remove it there"
            ))),
            Some(_) => {
                mounts.remove(&name);
                self.persist(&mounts)
            }
        }
    }

    /// Finds the bucket's backend, or `NoSuchBucket`.
    pub fn resolve(&self, bucket: &str) -> UfsResult<Bucket> {
        if let Some(mounted) = self.read().get(bucket) {
            let store = mounted.store.clone();
            return Ok(Bucket { name: bucket.to_owned(), store, is_mount: true, cached: mounted.cached });
        }
        let dir = self.root_bucket_dir(bucket)?;
        if dir.is_dir() {
            let fs = LocalFs::new(dir).with_folder_objects(self.defaults.folder_objects);
            let store = Store::local(fs, self.root_bucket_stats(bucket));
            return Ok(Bucket { name: bucket.to_owned(), store, is_mount: false, cached: false });
        }
        Err(UfsError::NoSuchBucket(bucket.to_owned()))
    }

    /// All buckets: mounts and the root's folders, by name.
    pub fn buckets(&self) -> UfsResult<Vec<BucketInfo>> {
        let mut found = BTreeMap::new();
        let entries = fs::read_dir(&self.root).map_err(|e| UfsError::io("listing the local root", e))?;
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Ok(md) = entry.metadata() else { continue };
            if md.is_dir() && validate_bucket_name(&name).is_ok() {
                found.insert(name, meta::last_modified(&md));
            }
        }
        for (name, mounted) in self.read().iter() {
            let dir = mounted.store.local_state().root();
            let created = fs::metadata(dir).map_or(OffsetDateTime::UNIX_EPOCH, |md| meta::last_modified(&md));
            found.insert(name.clone(), created);
        }
        Ok(found.into_iter().map(|(name, created)| BucketInfo { name, created }).collect())
    }

    /// CreateBucket on the embedded root: a new folder.
    pub fn create_bucket(&self, bucket: &str) -> UfsResult<()> {
        if self.read().contains_key(bucket) {
            return Err(UfsError::BucketExists(bucket.to_owned()));
        }
        let dir = self.root_bucket_dir(bucket)?;
        match fs::create_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(UfsError::BucketExists(bucket.to_owned())),
            Err(e) => Err(UfsError::io("creating the bucket folder", e)),
        }
    }

    /// DeleteBucket on the embedded root: removes an empty bucket folder.
    pub fn delete_bucket(&self, bucket: &str) -> UfsResult<()> {
        let resolved = self.resolve(bucket)?;
        if resolved.is_mount {
            return Err(UfsError::InvalidRequest(format!(
                "the bucket {bucket} is a mount; remove it with `alcove mount remove --path /{bucket}`"
            )));
        }
        let Backend::Local(store) = resolved.store.backend() else {
            return Err(UfsError::NoSuchBucket(bucket.to_owned()));
        };
        let dir = store.root().to_path_buf();
        if !store.is_empty().map_err(|e| UfsError::io("reading the bucket folder", e))? {
            return Err(UfsError::BucketNotEmpty(bucket.to_owned()));
        }
        let _ = fs::remove_dir_all(dir.join(STATE_DIR));
        match fs::remove_dir(&dir) {
            Ok(()) => {
                self.root_stats.lock().unwrap_or_else(|p| p.into_inner()).remove(bucket);
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => Err(UfsError::BucketNotEmpty(bucket.to_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(UfsError::NoSuchBucket(bucket.to_owned())),
            Err(e) => Err(UfsError::io("deleting the bucket folder", e)),
        }
    }

    /// Every bucket's backend, for start-up housekeeping.
    pub fn all_stores(&self) -> Vec<LocalFs> {
        self.buckets()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|b| self.resolve(&b.name).ok())
            .map(|b| b.store.local_state().clone())
            .collect()
    }

    /// Every bucket's under-storage figures, by bucket name: the mounts', and those of the root's
    /// folders that served a request since the start.
    pub fn ufs_stats(&self) -> Vec<(String, Arc<UfsStats>)> {
        let mut all: BTreeMap<String, Arc<UfsStats>> =
            self.root_stats.lock().unwrap_or_else(|p| p.into_inner()).clone().into_iter().collect();
        for (name, mounted) in self.read().iter() {
            all.insert(name.clone(), Arc::clone(mounted.store.stats()));
        }
        all.into_iter().collect()
    }

    /// The figures of the root's folder `bucket`, kept across the requests that resolve it.
    fn root_bucket_stats(&self, bucket: &str) -> Arc<UfsStats> {
        let mut stats = self.root_stats.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(stats.entry(bucket.to_owned()).or_default())
    }

    fn root_bucket_dir(&self, bucket: &str) -> UfsResult<PathBuf> {
        validate_bucket_name(bucket)?;
        Ok(self.root.join(bucket))
    }

    fn persist(&self, mounts: &BTreeMap<String, Mounted>) -> UfsResult<()> {
        let persisted: Vec<&MountEntry> = mounts.values().map(|m| &m.entry).filter(|e| !e.from_config).collect();
        let raw = serde_json::to_vec_pretty(&persisted).map_err(|e| UfsError::io("encoding mounts", e.into()))?;
        let dir = self.root.join(STATE_DIR);
        let temp = dir.join(format!("{MOUNTS_FILE}.tmp"));
        // Mounts may hold credentials: readable by the worker's user only.
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut f| f.write_all(&raw).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&temp, dir.join(MOUNTS_FILE)))
            .map_err(|e| UfsError::io("saving the mount table", e))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Mounted>> {
        self.mounts.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Mounted>> {
        self.mounts.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn read_persisted(root: &Path) -> UfsResult<Vec<MountEntry>> {
    match fs::read(root.join(STATE_DIR).join(MOUNTS_FILE)) {
        Ok(raw) => serde_json::from_slice(&raw).map_err(|e| UfsError::io("reading the mount table", e.into())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(UfsError::io("reading the mount table", e)),
    }
}

/// `/name` → `name`; only top-level mounts are buckets and `/` is not one.
pub fn bucket_of(path: &str) -> UfsResult<&str> {
    let name = path
        .strip_prefix('/')
        .ok_or_else(|| UfsError::InvalidBucketName(format!("mount path '{path}' must start with '/'")))?;
    if name.is_empty() {
        return Err(UfsError::InvalidBucketName("'/' is not a bucket; mount at /name".into()));
    }
    if name.contains('/') {
        return Err(UfsError::InvalidBucketName(format!(
            "mount path '{path}' is nested; only top-level mounts are buckets"
        )));
    }
    validate_bucket_name(name)?;
    Ok(name)
}

/// The S3 bucket naming rules: 3–63 characters of lowercase letters, digits, `-` and `.`,
/// starting and ending with a letter or digit, not shaped like an IP address.
pub fn validate_bucket_name(name: &str) -> UfsResult<()> {
    let bad = |why: &str| Err(UfsError::InvalidBucketName(format!("the bucket name '{name}' is not valid: {why}")));
    if !(3..=63).contains(&name.len()) {
        return bad("it must be 3 to 63 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.') {
        return bad("only lowercase letters, digits, '-' and '.' are allowed");
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(name.as_bytes()[0]) || !edge_ok(name.as_bytes()[name.len() - 1]) {
        return bad("it must start and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("it must not contain two adjacent periods");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it must not be formatted as an IP address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.1", "a1b"] {
            validate_bucket_name(ok).unwrap();
        }
        for bad in ["ab", "Abc", "-ab", "ab-", "a..b", "192.168.1.1", ".alcove.sys", "a_b"] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_paths() {
        assert_eq!(bucket_of("/photos").unwrap(), "photos");
        assert!(bucket_of("/").is_err());
        assert!(bucket_of("photos").is_err());
        assert!(bucket_of("/a/b").is_err());
    }

    #[test]
    fn mounts_persist_and_root_folders_are_buckets() {
        let root = tempfile::tempdir().unwrap();
        let ufs = tempfile::tempdir().unwrap();
        let defaults = MountDefaults { local_roots: Some(vec![ufs.path().to_owned()]), ..MountDefaults::default() };
        let table = MountTable::open(root.path(), vec![], defaults.clone()).unwrap();
        table.create_bucket("local").unwrap();
        assert!(matches!(table.create_bucket("local"), Err(UfsError::BucketExists(_))));
        let uri = format!("file://{}", ufs.path().display());
        table
            .add(MountEntry { path: "/photos".into(), ufs: uri.clone(), options: BTreeMap::new(), from_config: false })
            .unwrap();
        let names: Vec<String> = table.buckets().unwrap().into_iter().map(|b| b.name).collect();
        assert_eq!(names, ["local", "photos"]);
        assert!(table.resolve("photos").unwrap().is_mount);
        assert!(matches!(table.resolve("nope"), Err(UfsError::NoSuchBucket(_))));

        let reopened = MountTable::open(root.path(), vec![], defaults.clone()).unwrap();
        assert_eq!(reopened.list().len(), 1);
        reopened.remove("/photos").unwrap();
        assert!(MountTable::open(root.path(), vec![], defaults).unwrap().list().is_empty());
        reopened.delete_bucket("local").unwrap();
        assert!(matches!(reopened.resolve("local"), Err(UfsError::NoSuchBucket(_))));
    }

    #[test]
    fn remote_mounts_are_built_and_list_redacted() {
        let root = tempfile::tempdir().unwrap();
        let table = MountTable::open(root.path(), vec![], MountDefaults::default()).unwrap();
        let options: BTreeMap<String, String> =
            [("endpoint", "http://127.0.0.1:9"), ("access_key_id", "AK"), ("secret_access_key", "very-secret")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let entry = MountEntry { path: "/remote".into(), ufs: "s3://there/p".into(), options, from_config: false };
        table.add(entry).unwrap();
        assert!(matches!(table.resolve("remote").unwrap().store.backend(), Backend::Remote(_)));
        let listed = table.list();
        assert_eq!(listed[0].options["secret_access_key"], crate::uri::REDACTED);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(root.path().join(STATE_DIR).join(MOUNTS_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the mount table holds secrets");
        // The persisted table keeps the secret (the worker needs it after a restart).
        let reopened = MountTable::open(root.path(), vec![], MountDefaults::default()).unwrap();
        assert!(matches!(reopened.resolve("remote").unwrap().store.backend(), Backend::Remote(_)));
    }

    #[test]
    fn unsupported_and_relative_uris_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let table = MountTable::open(root.path(), vec![], MountDefaults::default()).unwrap();
        let entry = |ufs: &str| MountEntry {
            path: "/xyz".into(),
            ufs: ufs.into(),
            options: BTreeMap::new(),
            from_config: false,
        };
        assert!(matches!(table.add(entry("ftp://nn/x")), Err(UfsError::Unsupported(_))));
        assert!(matches!(table.add(entry("file://relative")), Err(UfsError::InvalidRequest(_))));
    }

    fn local(path: &str, dir: &Path) -> MountEntry {
        MountEntry {
            path: path.into(),
            ufs: format!("file://{}", dir.display()),
            options: BTreeMap::new(),
            from_config: false,
        }
    }

    #[test]
    fn file_mounts_stay_inside_the_local_roots() {
        let root = tempfile::tempdir().unwrap();
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(allowed.path().join("inner")).unwrap();
        std::os::unix::fs::symlink(outside.path(), allowed.path().join("link-out")).unwrap();
        let defaults = MountDefaults { local_roots: Some(vec![allowed.path().to_owned()]), ..MountDefaults::default() };
        let table = MountTable::open(root.path(), vec![], defaults).unwrap();
        let refused = |entry: MountEntry| match table.add(entry) {
            Err(UfsError::InvalidRequest(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refused(local("/out", outside.path())).contains("outside the allowed local roots"));
        assert!(refused(local("/dots", &allowed.path().join("inner/../..").join(outside.path().file_name().unwrap())))
            .contains("outside"));
        assert!(refused(local("/link", &allowed.path().join("link-out"))).contains("outside"));
        // Not even the worker's own root is allowed when the roots are set.
        assert!(refused(local("/rooted", root.path())).contains("outside"));
        table.add(local("/whole", allowed.path())).unwrap();
        table.add(local("/inner", &allowed.path().join("inner/../inner"))).unwrap();
        assert_eq!(table.list().len(), 2);
    }

    #[test]
    fn the_default_local_root_is_the_workers_root_without_its_state() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("data")).unwrap();
        let table = MountTable::open(root.path(), vec![], MountDefaults::default()).unwrap();
        assert!(table.add(local("/out", outside.path())).is_err());
        let state = table.add(local("/state", &root.path().join(STATE_DIR))).unwrap_err().to_string();
        assert!(state.contains("state"), "{state}");
        table.add(local("/data", &root.path().join("data"))).unwrap();
        // A config-file mount outside the roots stops the table from opening.
        let config = vec![local("/cfg", outside.path())];
        let error = MountTable::open(root.path(), config, MountDefaults::default()).unwrap_err().to_string();
        assert!(error.contains("outside the allowed local roots"), "{error}");
        // A local root that does not exist is an error too.
        let missing = MountDefaults { local_roots: Some(vec![root.path().join("nope")]), ..MountDefaults::default() };
        assert!(MountTable::open(root.path(), vec![], missing).is_err());
    }
}
