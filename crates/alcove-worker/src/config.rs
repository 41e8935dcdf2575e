//! Worker configuration: one TOML file, overridden by `ALCOVE_…` environment variables, then by
//! command-line flags. Key names mirror the seed system's properties (see the README's table).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alcove_s3::{AuthMode, AuthSettings};
use alcove_ufs::MountEntry;
use serde::Deserialize;

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The embedded default's local root: its top-level folders are buckets.
    pub root: PathBuf,
    pub s3: S3Config,
    pub peer: PeerConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub ufs: UfsConfig,
    pub cache: CacheConfig,
    pub mounts: Vec<MountConfig>,
}

/// The page cache (`[cache]`): what cached buckets (remote mounts by default) are read through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Bytes per page.
    pub page_size: ByteSize,
    /// Bytes of the memory tier; default: an eighth of the machine's memory, at most 4 GiB.
    pub memory_size: Option<ByteSize>,
    /// Pages fetched ahead of a sequential reader.
    pub read_ahead: u64,
    /// How long object metadata is trusted: "10s", "500ms", "5m"; 0 = ask every time, -1 = never
    /// ask again (only changes made through Alcove are seen).
    pub metadata_sync_interval: SyncInterval,
    /// Disk tiers; default: one folder in the root's state folder.
    pub dirs: Option<Vec<CacheDirConfig>>,
}

/// One disk tier (`[[cache.dirs]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheDirConfig {
    pub path: PathBuf,
    pub size: ByteSize,
}

/// A byte count: a number, or a string with a unit (`"512MiB"`, `"4 GB"`, `"1048576"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match OptionValue::deserialize(d)? {
            OptionValue::Integer(n) => {
                u64::try_from(n).map(ByteSize).map_err(|_| serde::de::Error::custom("a size cannot be negative"))
            }
            OptionValue::Text(text) => parse_byte_size(&text).map(ByteSize).map_err(serde::de::Error::custom),
            other => {
                Err(serde::de::Error::custom(format!("{other} is not a size (bytes, or a string such as \"512MiB\")")))
            }
        }
    }
}

fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("'{text}' is not a size: it must start with a number"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("'{other}' in '{text}' is not a unit (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)")),
    };
    number.checked_mul(multiplier).ok_or_else(|| format!("'{text}' is too large"))
}

/// `cache.metadata_sync_interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncInterval(pub alcove_cache::MetadataSync);

impl<'de> Deserialize<'de> for SyncInterval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use alcove_cache::MetadataSync;
        let seconds = |n: i64| match n {
            0 => Ok(MetadataSync::Always),
            -1 => Ok(MetadataSync::Never),
            n if n > 0 => Ok(MetadataSync::Every(Duration::from_secs(n as u64))),
            n => Err(format!("{n} is not an interval: use a duration, 0 (always) or -1 (never)")),
        };
        let parsed = match OptionValue::deserialize(d)? {
            OptionValue::Integer(n) => seconds(n),
            OptionValue::Text(text) => match text.trim().parse::<i64>() {
                Ok(n) => seconds(n),
                Err(_) => parse_duration(&text).map(MetadataSync::Every),
            },
            other => Err(format!("{other} is not an interval (\"10s\", \"500ms\", 0 or -1)")),
        };
        parsed.map(SyncInterval).map_err(serde::de::Error::custom)
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("'{text}' is not a duration (\"10s\", \"500ms\", \"5m\")"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!("'{other}' in '{text}' is not a unit (ms, s, m, h)")),
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            page_size: ByteSize(alcove_cache::DEFAULT_PAGE_SIZE),
            memory_size: None,
            read_ahead: 4,
            metadata_sync_interval: SyncInterval(alcove_cache::MetadataSync::Every(Duration::from_secs(10))),
            dirs: None,
        }
    }
}

/// Writes to remote under-storage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UfsConfig {
    /// Upload the parts of a remote write in parallel (`ufs.s3.upload_threads` at a time).
    pub multipart_async: bool,
    /// Bytes per part of a remote write (at least 5 MiB, S3's smallest part).
    pub part_size: usize,
    pub s3: UfsS3Config,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UfsS3Config {
    /// Parts of one remote write in flight at a time.
    pub upload_threads: usize,
    /// Part buffers all remote writes of the worker may hold together (memory: this × part_size).
    pub upload_buffers: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub enabled: bool,
    pub addr: SocketAddr,
    pub keep_alive: bool,
    /// Seconds a kept-alive connection may stay idle; 0 = no limit.
    pub idle_timeout: u64,
    /// true: log every request; false: failed requests only.
    pub access_log: bool,
    /// Seconds in-flight requests get to finish on SIGTERM.
    pub shutdown_grace: u64,
    /// Largest total size of `x-amz-meta-*` names and values, in bytes.
    pub metadata_max_size: usize,
    /// Enforce AWS's limits on tag counts and lengths.
    pub tagging_restrictions: bool,
    /// List directories as 0-byte `dir/` objects (the seed system) instead of AWS's listings;
    /// a mount's `folder_objects` option overrides it.
    pub folder_objects: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: String,
    pub allow_anonymous: bool,
    pub credentials: Vec<Credential>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountConfig {
    pub path: String,
    pub ufs: String,
    /// Backend options; numbers and booleans may be written bare (`timeout = 30`).
    #[serde(default)]
    pub options: BTreeMap<String, OptionValue>,
}

/// A mount option's value as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OptionValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Flag(bool),
}

impl std::fmt::Display for OptionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionValue::Text(s) => f.write_str(s),
            OptionValue::Integer(n) => write!(f, "{n}"),
            OptionValue::Float(x) => write!(f, "{x}"),
            OptionValue::Flag(b) => write!(f, "{b}"),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            root: PathBuf::from("./alcove-data"),
            s3: S3Config::default(),
            peer: PeerConfig::default(),
            admin: AdminConfig::default(),
            auth: AuthConfig::default(),
            ufs: UfsConfig::default(),
            cache: CacheConfig::default(),
            mounts: Vec::new(),
        }
    }
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 29998)),
            keep_alive: true,
            idle_timeout: 0,
            access_log: false,
            shutdown_grace: 30,
            metadata_max_size: 2048,
            tagging_restrictions: true,
            folder_objects: false,
        }
    }
}

impl Default for UfsConfig {
    fn default() -> Self {
        Self { multipart_async: true, part_size: 8 << 20, s3: UfsS3Config::default() }
    }
}

impl Default for UfsS3Config {
    fn default() -> Self {
        Self { upload_threads: 20, upload_buffers: 64 }
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self { addr: SocketAddr::from(([127, 0, 0, 1], 29999)) }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { addr: SocketAddr::from(([127, 0, 0, 1], 30000)) }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { mode: "simple".into(), allow_anonymous: true, credentials: Vec::new() }
    }
}

/// Sections whose keys may be set from `ALCOVE_<SECTION>_<KEY>` (`ALCOVE_UFS_S3_UPLOAD_THREADS`
/// is `ufs.s3.upload_threads`): the variable's prefix and the section's path, longest first.
const ENV_SECTIONS: &[(&str, &[&str])] = &[
    ("ufs_s3", &["ufs", "s3"]),
    ("s3", &["s3"]),
    ("peer", &["peer"]),
    ("admin", &["admin"]),
    ("auth", &["auth"]),
    ("ufs", &["ufs"]),
    ("cache", &["cache"]),
];

impl Config {
    /// Reads `file` (if any) and applies the `ALCOVE_…` variables of `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut table: toml::Table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                text.parse().map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            apply_env(&mut table, &name, &value)?;
        }
        let config: Config =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.auth_settings()?;
        config.mount_defaults()?;
        config.page_store()?;
        Ok(config)
    }

    /// What mounts get unless their own options say otherwise.
    pub fn mount_defaults(&self) -> Result<alcove_ufs::MountDefaults, ConfigError> {
        Ok(alcove_ufs::MountDefaults { remote: self.remote_tuning()?, folder_objects: self.s3.folder_objects })
    }

    /// How writes to remote mounts are cut and parallelised.
    fn remote_tuning(&self) -> Result<alcove_ufs::RemoteTuning, ConfigError> {
        let ufs = &self.ufs;
        if ufs.part_size < 5 << 20 || ufs.part_size > 5 << 30 {
            return Err(ConfigError::Invalid(format!(
                "ufs.part_size = {} must be between 5 MiB (5242880) and 5 GiB",
                ufs.part_size
            )));
        }
        if ufs.s3.upload_threads == 0 || ufs.s3.upload_buffers == 0 {
            return Err(ConfigError::Invalid(
                "ufs.s3.upload_threads and ufs.s3.upload_buffers must be at least 1".into(),
            ));
        }
        Ok(alcove_ufs::RemoteTuning::new(
            ufs.multipart_async,
            ufs.s3.upload_threads,
            ufs.s3.upload_buffers,
            ufs.part_size,
        ))
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.s3.idle_timeout > 0).then(|| Duration::from_secs(self.s3.idle_timeout))
    }

    /// The page store's settings: sizes checked, the default memory tier and disk folder filled in.
    pub fn page_store(&self) -> Result<alcove_cache::PageStoreConfig, ConfigError> {
        let cache = &self.cache;
        let page_size = cache.page_size.0;
        if !(4096..=(64 << 20)).contains(&page_size) {
            return Err(ConfigError::Invalid(format!(
                "cache.page_size = {page_size} must be between 4 KiB and 64 MiB"
            )));
        }
        let dirs = match &cache.dirs {
            Some(dirs) => {
                dirs.iter().map(|d| alcove_cache::DiskTierConfig { path: d.path.clone(), size: d.size.0 }).collect()
            }
            None => vec![alcove_cache::DiskTierConfig {
                path: self.root.join(".alcove.sys").join("cache"),
                size: DEFAULT_CACHE_DIR_SIZE,
            }],
        };
        let memory_size = cache.memory_size.map_or_else(default_memory_tier, |m| m.0);
        Ok(alcove_cache::PageStoreConfig { page_size, memory_size, dirs })
    }

    pub fn read_settings(&self) -> alcove_cache::ReadSettings {
        alcove_cache::ReadSettings {
            read_ahead: self.cache.read_ahead,
            metadata_sync: self.cache.metadata_sync_interval.0,
        }
    }

    pub fn limits(&self) -> alcove_s3::limits::Limits {
        alcove_s3::limits::Limits {
            metadata_max_size: self.s3.metadata_max_size,
            tagging_restrictions: self.s3.tagging_restrictions,
        }
    }

    pub fn mount_entries(&self) -> Vec<MountEntry> {
        self.mounts
            .iter()
            .map(|m| MountEntry {
                path: m.path.clone(),
                ufs: m.ufs.clone(),
                options: m.options.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
                from_config: true,
            })
            .collect()
    }

    pub fn auth_settings(&self) -> Result<AuthSettings, ConfigError> {
        let mode: AuthMode = self.auth.mode.parse().map_err(ConfigError::Invalid)?;
        if mode == AuthMode::Sigv4 && self.auth.credentials.is_empty() {
            return Err(ConfigError::Invalid(
                "auth.mode = \"sigv4\" needs at least one [[auth.credentials]] entry".into(),
            ));
        }
        Ok(AuthSettings {
            mode,
            allow_anonymous: self.auth.allow_anonymous,
            credentials: self.auth.credentials.iter().map(|c| (c.access_key.clone(), c.secret_key.clone())).collect(),
            anonymous_user: std::env::var("USER").unwrap_or_else(|_| "alcove".into()),
        })
    }
}

/// The default disk tier's size: 16 GiB.
const DEFAULT_CACHE_DIR_SIZE: u64 = 16 << 30;

/// An eighth of the machine's memory, between 64 MiB and 4 GiB.
fn default_memory_tier() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    });
    total.map_or(256 << 20, |bytes| bytes / 8).clamp(64 << 20, 4 << 30)
}

/// `ALCOVE_S3_ACCESS_LOG=true` → `s3.access_log = true`; `ALCOVE_ROOT=dir` → `root = "dir"`.
fn apply_env(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    let Some(rest) = name.strip_prefix("ALCOVE_") else { return Ok(()) };
    let rest = rest.to_ascii_lowercase();
    let parsed = parse_env_value(value);
    if rest == "root" {
        table.insert(rest, parsed);
        return Ok(());
    }
    for (prefix, path) in ENV_SECTIONS {
        if let Some(key) = rest.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) {
            let mut t = &mut *table;
            for section in *path {
                let entry = t.entry(*section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let toml::Value::Table(inner) = entry else {
                    return Err(ConfigError::Invalid(format!("'{section}' must be a table")));
                };
                t = inner;
            }
            t.insert(key.to_owned(), parsed);
            return Ok(());
        }
    }
    Ok(())
}

fn parse_env_value(value: &str) -> toml::Value {
    if let Ok(b) = value.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(n) = value.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    toml::Value::String(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(c.s3.addr.port(), 29998);
        assert_eq!(c.admin.addr.port(), 30000);
        assert_eq!(c.root, PathBuf::from("./alcove-data"));
        assert!(c.s3.keep_alive);
        assert!(!c.s3.folder_objects, "AWS listings by default");
        assert_eq!(c.auth_settings().unwrap().mode, AuthMode::Simple);
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alcove.toml");
        std::fs::write(
            &path,
            "root = \"/r\"\n[s3]\nidle_timeout = 5\n[[mounts]]\npath = \"/photos\"\nufs = \"file:///srv/photos\"\n",
        )
        .unwrap();
        let env = [("ALCOVE_S3_ACCESS_LOG".to_owned(), "true".to_owned()), ("HOME".to_owned(), "/x".to_owned())];
        let c = Config::load(Some(&path), env).unwrap();
        assert!(c.s3.access_log);
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(c.mount_entries()[0].path, "/photos");
    }

    #[test]
    fn mistakes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alcove.toml");
        std::fs::write(&path, "[s3]\nacess_log = true\n").unwrap();
        assert!(Config::load(Some(&path), []).is_err(), "typo in a key");
        std::fs::write(&path, "[auth]\nmode = \"sigv4\"\n").unwrap();
        assert!(Config::load(Some(&path), []).is_err(), "sigv4 without credentials");
        std::fs::write(&path, "[ufs]\npart_size = 1024\n").unwrap();
        assert!(Config::load(Some(&path), []).is_err(), "parts smaller than S3 allows");
    }

    #[test]
    fn cache_settings_take_units() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alcove.toml");
        std::fs::write(
            &path,
            "[cache]\npage_size = \"256KiB\"\nmemory_size = 1073741824\nread_ahead = 8\nmetadata_sync_interval = \"500ms\"\n[[cache.dirs]]\npath = \"/c1\"\nsize = \"2 GB\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), []).unwrap();
        let store = c.page_store().unwrap();
        assert_eq!((store.page_size, store.memory_size), (256 << 10, 1 << 30));
        assert_eq!(store.dirs[0].size, 2_000_000_000);
        let reads = c.read_settings();
        assert_eq!(reads.read_ahead, 8);
        assert_eq!(reads.metadata_sync, alcove_cache::MetadataSync::Every(Duration::from_millis(500)));
        for (value, want) in [("0", alcove_cache::MetadataSync::Always), ("-1", alcove_cache::MetadataSync::Never)] {
            let env = [("ALCOVE_CACHE_METADATA_SYNC_INTERVAL".to_owned(), value.to_owned())];
            assert_eq!(Config::load(None, env).unwrap().read_settings().metadata_sync, want);
        }
        let defaults = Config::load(None, []).unwrap().page_store().unwrap();
        assert_eq!(defaults.page_size, 1 << 20);
        assert!(defaults.memory_size >= 64 << 20);
        assert!(defaults.dirs[0].path.ends_with(".alcove.sys/cache"));
        for bad in ["page_size = \"12 parsecs\"", "page_size = 100", "metadata_sync_interval = -5", "memory_size = -1"]
        {
            std::fs::write(&path, format!("[cache]\n{bad}\n")).unwrap();
            assert!(Config::load(Some(&path), []).is_err(), "{bad}");
        }
    }

    #[test]
    fn ufs_settings_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alcove.toml");
        std::fs::write(
            &path,
            "[ufs]\nmultipart_async = false\n[ufs.s3]\nupload_buffers = 8\n[[mounts]]\npath = \"/r\"\nufs = \"s3://b\"\n[mounts.options]\nregion = \"eu-west-1\"\ntimeout = 5\nvirtual_host_style = true\n",
        )
        .unwrap();
        let env = [("ALCOVE_UFS_S3_UPLOAD_THREADS".to_owned(), "4".to_owned())];
        let c = Config::load(Some(&path), env).unwrap();
        assert!(!c.ufs.multipart_async);
        assert_eq!((c.ufs.s3.upload_threads, c.ufs.s3.upload_buffers), (4, 8));
        let options = &c.mount_entries()[0].options;
        assert_eq!((options["region"].as_str(), options["timeout"].as_str()), ("eu-west-1", "5"));
        assert_eq!(options["virtual_host_style"], "true");
        assert_eq!(c.mount_defaults().unwrap().remote.concurrent, 1);
    }
}
