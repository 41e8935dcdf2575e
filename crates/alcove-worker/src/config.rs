//! Worker configuration: one TOML file, overridden by `ALCOVE_…` environment variables, then by
//! command-line flags. Key names mirror the seed system's properties (see the README's table).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alcove_s3::oidc::OidcSettings;
use alcove_s3::policy::{Grant, Identity, Policies};
use alcove_s3::{AuthMode, AuthSettings};
use alcove_ufs::MountEntry;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
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
    pub log: LogConfig,
    /// Several workers sharing one namespace; absent: a cluster of one that never opens the peer port.
    pub cluster: Option<ClusterConfig>,
    pub mounts: Vec<MountConfig>,
    /// The certificate of the HTTPS port (and of the peer port with `peer.tls`).
    pub tls: TlsConfig,
}

/// `[tls]`: PEM files, read at start and again on SIGHUP.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The certificate chain, the worker's own certificate first.
    pub cert: Option<PathBuf>,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The CA certificates peers trust with `peer.tls` (default: the system's roots).
    pub ca: Option<PathBuf>,
}

/// Where TLS is served and with what, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    /// The HTTPS port of the S3 API.
    pub https_addr: SocketAddr,
    /// Plain-HTTP S3 requests are refused.
    pub https_only: bool,
    /// The peer port speaks TLS, and peers are called over TLS.
    pub peer: bool,
}

/// The HTTPS port when a certificate is configured and `s3.https_addr` is not.
pub const DEFAULT_HTTPS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 29996);

/// `[log]`: how the worker writes its log (standard error) and its access log.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `"text"` (default) or `"json"`: one JSON object per line, access lines included
    /// (`--log-format`).
    pub format: LogFormat,
}

/// The log's line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format '{other}': expected 'text' or 'json'")),
        }
    }
}

/// `[cluster]`: who this worker is among its peers and how it finds them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This worker's id; default: the host name.
    pub id: Option<String>,
    /// Shared by every worker; `ALCOVE_CLUSTER_SECRET` sets it without writing it in the file.
    pub secret: Option<String>,
    /// `"static"` (the `[[cluster.workers]]` list) or `"etcd"`.
    pub membership: String,
    /// How long a worker may stay silent before it leaves the ring (static membership):
    /// seconds, or a duration such as `"5s"`.
    pub failure_timeout: Seconds,
    /// Static membership: every worker, this one included.
    pub workers: Vec<ClusterWorkerConfig>,
    pub etcd: EtcdConfig,
    /// etcd membership: the S3 endpoint other workers redirect clients to (default: `http://` and
    /// `s3.addr`; `https://` and `s3.https_addr` with `s3.https_only`).
    pub advertise_s3: Option<String>,
    /// etcd membership: the peer address other workers reach this one at (default: `peer.addr`).
    pub advertise_peer: Option<String>,
}

/// One `[[cluster.workers]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterWorkerConfig {
    /// The worker's id, as its own `cluster.id` says.
    pub id: String,
    /// What clients are redirected to, e.g. `http://10.0.0.5:29998`.
    pub s3: String,
    /// The peer port, `host:port`.
    pub peer: String,
}

/// `[cluster.etcd]`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// etcd client URLs.
    pub endpoints: Vec<String>,
    /// The key prefix of this cluster's registrations and mount table.
    pub prefix: String,
    /// Seconds a registration outlives its worker.
    pub lease_ttl: u64,
}

/// How the cluster is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipMode {
    Static,
    Etcd,
}

/// A span of time written as seconds (`5`, `0.5`) or with a unit (`"5s"`, `"500ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match OptionValue::deserialize(d)? {
            OptionValue::Integer(n) if n > 0 => Ok(Duration::from_secs(n as u64)),
            OptionValue::Float(x) if x > 0.0 && x < 1e9 => Ok(Duration::from_secs_f64(x)),
            OptionValue::Text(text) => parse_duration(&text),
            other => Err(format!("{other} is not a duration (seconds, or \"5s\", \"500ms\")")),
        };
        parsed.map(Seconds).map_err(serde::de::Error::custom)
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            id: None,
            secret: None,
            membership: "static".into(),
            failure_timeout: Seconds(Duration::from_secs(5)),
            workers: Vec::new(),
            etcd: EtcdConfig::default(),
            advertise_s3: None,
            advertise_peer: None,
        }
    }
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self { endpoints: vec!["http://127.0.0.1:2379".into()], prefix: "/alcove".into(), lease_ttl: 5 }
    }
}

/// The page cache (`[cache]`): what cached buckets (remote mounts by default) are read through.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
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
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheDirConfig {
    /// The folder of the tier's slab file.
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

/// How a span of time is written back: whole milliseconds, seconds, minutes or hours.
fn written_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The schema of a value written as a number or a string with a unit.
fn number_or_text(name: &'static str, description: &str) -> schemars::Schema {
    schemars::json_schema!({
        "title": name,
        "type": ["integer", "number", "string"],
        "description": description,
    })
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&written_duration(self.0))
    }
}

impl JsonSchema for Seconds {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        number_or_text("duration", "seconds, or with a unit: \"500ms\", \"5s\", \"2m\", \"1h\"")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        number_or_text("bytes", "bytes, or with a unit: \"512MiB\", \"4 GB\"")
    }
}

impl Serialize for SyncInterval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            alcove_cache::MetadataSync::Always => s.serialize_i64(0),
            alcove_cache::MetadataSync::Never => s.serialize_i64(-1),
            alcove_cache::MetadataSync::Every(d) => s.serialize_str(&written_duration(d)),
        }
    }
}

impl JsonSchema for SyncInterval {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SyncInterval".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        number_or_text("interval", "a duration (\"10s\"), 0 (ask every time) or -1 (never ask again)")
    }
}

impl Serialize for LocalRoots {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl JsonSchema for LocalRoots {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LocalRoots".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "title": "folders",
            "type": ["array", "string"],
            "items": {"type": "string"},
            "description": "a list of folders, or one string of folders separated by ':'",
        })
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
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UfsConfig {
    /// Upload the parts of a remote write in parallel (`ufs.s3.upload_threads` at a time).
    pub multipart_async: bool,
    /// Bytes per part of a remote write (at least 5 MiB, S3's smallest part).
    pub part_size: usize,
    pub s3: UfsS3Config,
    /// The folders `file://` mounts may name (or lie under); default: the worker's root. Written
    /// as a list, or (`ALCOVE_UFS_LOCAL_ROOTS`) as folders separated by `:`.
    pub local_roots: Option<LocalRoots>,
}

/// `ufs.local_roots`: a list of folders, or one string of folders separated by `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRoots(pub Vec<PathBuf>);

impl<'de> Deserialize<'de> for LocalRoots {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Serialize, JsonSchema)]
        #[serde(untagged)]
        enum Written {
            List(Vec<PathBuf>),
            Joined(String),
        }
        let dirs = match Written::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "ufs.local_roots must be a list of folders (or one string of folders joined by ':')",
            )
        })? {
            Written::List(dirs) => dirs,
            Written::Joined(text) => text.split(':').filter(|p| !p.trim().is_empty()).map(PathBuf::from).collect(),
        };
        Ok(LocalRoots(dirs))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UfsS3Config {
    /// Parts of one remote write in flight at a time.
    pub upload_threads: usize,
    /// Part buffers all remote writes of the worker may hold together (memory: this × part_size).
    pub upload_buffers: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Serve the S3 API at all.
    pub enabled: bool,
    /// The S3 API over HTTP (`--s3-addr`).
    pub addr: SocketAddr,
    /// Keep client connections open between requests.
    pub keep_alive: bool,
    /// Seconds a kept-alive connection may stay idle; 0 = no limit.
    pub idle_timeout: u64,
    /// true: log every request; false: failed requests only.
    pub access_log: bool,
    /// Seconds in-flight requests get to finish on SIGTERM.
    pub shutdown_grace: u64,
    /// On SIGTERM, how long the worker keeps serving after it left the ring and `/readyz`
    /// turned 503, before it stops accepting: long enough for load balancers to notice
    /// ("3s"; default none, for a worker no load balancer sends to).
    pub shutdown_drain: Option<Seconds>,
    /// Largest total size of `x-amz-meta-*` names and values, in bytes.
    pub metadata_max_size: usize,
    /// Enforce AWS's limits on tag counts and lengths.
    pub tagging_restrictions: bool,
    /// List directories as 0-byte `dir/` objects (the seed system) instead of AWS's listings;
    /// a mount's `folder_objects` option overrides it.
    pub folder_objects: bool,
    pub redirect: RedirectConfig,
    /// Base domains of virtual-hosted-style requests: `bucket.<domain>/key` beside path style.
    pub domains: Vec<String>,
    /// The HTTPS port (needs `[tls] cert` and `key`; `--https-addr`); default `0.0.0.0:29996`
    /// when they are set.
    pub https_addr: Option<SocketAddr>,
    /// Answer S3 requests on the plain-HTTP port with `403 AccessDenied` (use HTTPS).
    pub https_only: bool,
    /// Longest a request's headers may take to arrive, counted from the connection's opening
    /// or its previous response (so it also closes connections idle that long).
    pub header_timeout: Seconds,
    /// Longest a request body may send nothing while it is read (then `RequestTimeout`).
    pub body_idle_timeout: Seconds,
    /// Largest header section (names, values and the query), in bytes.
    pub max_header_size: ByteSize,
    /// Most header lines in one request.
    pub max_headers: usize,
    /// Largest XML request body (DeleteObjects, CompleteMultipartUpload, tagging, CORS).
    pub max_xml_size: ByteSize,
    /// Most connections served at once; one more gets `503 SlowDown`.
    pub max_connections: usize,
}

/// `[s3.redirect]`: how a worker hands on a request for a key another worker owns.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedirectConfig {
    /// Answer `307` to the owner's S3 endpoint instead of forwarding the request to it.
    pub enabled: bool,
    /// Before redirecting, check that the owner answers (cached for a second); serve the
    /// request here when it does not.
    pub health_check: bool,
}

impl Default for RedirectConfig {
    fn default() -> Self {
        Self { enabled: false, health_check: true }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    /// The peer port, where the other workers forward requests and probe health (`--peer-addr`); opened only in a cluster.
    pub addr: SocketAddr,
    /// Serve the peer port over TLS with the `[tls]` certificate, and call peers over TLS
    /// (trusting `tls.ca`); the same on every worker.
    pub tls: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The admin port: `/healthz`, `/readyz`, `/metrics`, the status page and the admin API (`--admin-addr`).
    pub addr: SocketAddr,
    /// The bearer token the admin API asks for (all but `/healthz`, `/readyz` and `/metrics`);
    /// required when `addr` is not a loopback address. `ALCOVE_ADMIN_TOKEN` sets it without
    /// writing it in the file.
    pub token: Option<String>,
}

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `"simple"` (the access key names the user, signatures are not checked), `"sigv4"` (signatures checked against `[[auth.credentials]]`) or `"oidc"` (sigv4, plus bearer tokens and STS).
    pub mode: String,
    /// Serve requests without credentials (as the worker's process user, or the user `anonymous` for policies); false: `AccessDenied`.
    pub allow_anonymous: bool,
    /// Access keys and their secrets, for sigv4 and oidc modes.
    pub credentials: Vec<Credential>,
    /// Who may do what; none: everyone may do everything.
    pub policies: Vec<PolicyConfig>,
    /// The identity provider of `mode = "oidc"`.
    pub oidc: Option<OidcConfig>,
    /// What the keys of STS's temporary credentials are derived from (the same on every worker);
    /// default: the cluster secret, else a random key of this process. `ALCOVE_AUTH_STS_KEY` sets
    /// it without writing it in the file.
    pub sts_key: Option<String>,
}

/// `[auth.oidc]`: whose tokens are accepted and what they say.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` of accepted tokens.
    pub issuer: String,
    /// The provider's JWKS; default: the `jwks_uri` of `<issuer>/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// The `aud` accepted tokens carry.
    pub audience: String,
    /// The claim naming the user.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim listing the user's groups.
    pub groups_claim: Option<String>,
    /// Leeway on a token's `exp` and `nbf`.
    #[serde(default = "default_clock_skew")]
    pub clock_skew: Seconds,
    /// The shortest time between two fetches of the JWKS for a key id it lacks.
    #[serde(default = "default_refetch_interval")]
    pub refetch_interval: Seconds,
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_clock_skew() -> Seconds {
    Seconds(Duration::from_secs(60))
}

fn default_refetch_interval() -> Seconds {
    Seconds(Duration::from_secs(10))
}

/// The shortest `auth.sts_key` accepted.
pub const MIN_STS_KEY_LEN: usize = 16;

/// One `[[auth.policies]]` entry: `users` and `groups` may do `actions` on `resources`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    /// Users the grant is for: access keys, simple-mode names, OIDC users; `"*"` is everyone, `"anonymous"` unsigned requests.
    pub users: Vec<String>,
    #[serde(default)]
    /// OIDC groups (from `auth.oidc.groups_claim`) the grant is for.
    pub groups: Vec<String>,
    /// What they may do: any of `"read"`, `"write"`, `"list"`.
    pub actions: Vec<String>,
    /// Where: `"bucket"` (the bucket and its keys), `"bucket/prefix*"`, `"bucket/key"`, `"team-*"` (buckets by prefix) or `"*"`.
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The access key id clients sign with.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountConfig {
    /// The bucket, as `/name`.
    pub path: String,
    /// The under-storage URI: `file:///dir`, `s3://bucket/prefix`, `gs://…`, `azblob://…`, `hdfs://…`, `webhdfs://…`.
    pub ufs: String,
    /// Backend options; numbers and booleans may be written bare (`timeout = 30`).
    #[serde(default)]
    pub options: BTreeMap<String, OptionValue>,
}

/// A mount option's value as written in the file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
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
            cluster: None,
            mounts: Vec::new(),
            tls: TlsConfig::default(),
            log: LogConfig::default(),
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
            shutdown_drain: None,
            metadata_max_size: 2048,
            tagging_restrictions: true,
            folder_objects: false,
            redirect: RedirectConfig::default(),
            domains: Vec::new(),
            https_addr: None,
            https_only: false,
            header_timeout: Seconds(Duration::from_secs(30)),
            body_idle_timeout: Seconds(Duration::from_secs(60)),
            max_header_size: ByteSize(8 << 10),
            max_headers: 100,
            max_xml_size: ByteSize(4 << 20),
            max_connections: 4096,
        }
    }
}

impl Default for UfsConfig {
    fn default() -> Self {
        Self { multipart_async: true, part_size: 8 << 20, s3: UfsS3Config::default(), local_roots: None }
    }
}

impl Default for UfsS3Config {
    fn default() -> Self {
        Self { upload_threads: 20, upload_buffers: 64 }
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self { addr: SocketAddr::from(([127, 0, 0, 1], 29999)), tls: false }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { addr: SocketAddr::from(([127, 0, 0, 1], 30000)), token: None }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: "simple".into(),
            allow_anonymous: true,
            credentials: Vec::new(),
            policies: Vec::new(),
            oidc: None,
            sts_key: None,
        }
    }
}

/// Sections whose keys may be set from `ALCOVE_<SECTION>_<KEY>` (`ALCOVE_UFS_S3_UPLOAD_THREADS`
/// is `ufs.s3.upload_threads`): the variable's prefix and the section's path, longest first.
const ENV_SECTIONS: &[(&str, &[&str])] = &[
    ("ufs_s3", &["ufs", "s3"]),
    ("s3_redirect", &["s3", "redirect"]),
    ("s3", &["s3"]),
    ("cluster_etcd", &["cluster", "etcd"]),
    ("cluster", &["cluster"]),
    ("peer", &["peer"]),
    ("admin", &["admin"]),
    ("auth_oidc", &["auth", "oidc"]),
    ("auth", &["auth"]),
    ("ufs", &["ufs"]),
    ("cache", &["cache"]),
    ("tls", &["tls"]),
    ("log", &["log"]),
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
        if let Some(token) = &config.admin.token {
            if !token.trim().is_empty() && token.trim().chars().count() < MIN_ADMIN_TOKEN_LEN {
                return Err(ConfigError::Invalid(format!(
                    "admin.token (or ALCOVE_ADMIN_TOKEN) must be at least {MIN_ADMIN_TOKEN_LEN} characters"
                )));
            }
        }
        config.page_store()?;
        config.cluster_settings()?;
        config.addressing()?;
        config.tls_settings()?;
        config.request_limits()?;
        Ok(config)
    }

    /// The S3 port's limits on one request, checked against each other.
    pub fn request_limits(&self) -> Result<crate::limits::RequestLimits, ConfigError> {
        let s3 = &self.s3;
        let header_bytes = usize::try_from(s3.max_header_size.0).unwrap_or(usize::MAX);
        // User metadata travels in headers: the section must hold it and the usual headers.
        let needed = s3.metadata_max_size.saturating_add(4096);
        if header_bytes < needed {
            return Err(ConfigError::Invalid(format!(
                "s3.max_header_size = {header_bytes} must be at least s3.metadata_max_size + 4096 = {needed} bytes"
            )));
        }
        if s3.max_headers < 16 {
            return Err(ConfigError::Invalid(format!("s3.max_headers = {} must be at least 16", s3.max_headers)));
        }
        if s3.max_xml_size.0 < 64 << 10 {
            return Err(ConfigError::Invalid(format!(
                "s3.max_xml_size = {} must be at least 64 KiB",
                s3.max_xml_size.0
            )));
        }
        if s3.max_connections == 0 {
            return Err(ConfigError::Invalid("s3.max_connections must be at least 1".into()));
        }
        Ok(crate::limits::RequestLimits {
            max_header_bytes: header_bytes,
            max_headers: s3.max_headers,
            body_idle_timeout: crate::limits::LiveDuration::new(s3.body_idle_timeout.0),
        })
    }

    /// The largest XML body, in bytes.
    pub fn max_xml_size(&self) -> usize {
        usize::try_from(self.s3.max_xml_size.0).unwrap_or(usize::MAX)
    }

    /// hyper's header read timeout on the S3 port: `s3.header_timeout`, or `s3.idle_timeout`
    /// when that is set and shorter (hyper measures both with one timer).
    pub fn header_read_timeout(&self) -> Duration {
        let header = self.s3.header_timeout.0;
        self.idle_timeout().map_or(header, |idle| idle.min(header))
    }

    /// hyper's own limits on a request head, well above the S3 front end's (which answers
    /// with an S3 error): bytes, header lines.
    pub fn hyper_head_limits(&self) -> (usize, usize) {
        let bytes = usize::try_from(self.s3.max_header_size.0).unwrap_or(usize::MAX);
        (bytes.saturating_mul(4).max(64 << 10), self.s3.max_headers.saturating_mul(2))
    }

    /// TLS as configured (`None`: plain HTTP only). HTTPS, `s3.https_only` and `peer.tls` each
    /// need `[tls] cert` and `key`; the files themselves are read when the worker starts.
    pub fn tls_settings(&self) -> Result<Option<TlsSettings>, ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        let (cert, key) = match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (Some(_), None) => return invalid("tls.cert is set but tls.key is not: HTTPS needs both PEM files"),
            (None, Some(_)) => return invalid("tls.key is set but tls.cert is not: HTTPS needs both PEM files"),
            (None, None) => {
                if let Some(addr) = self.s3.https_addr {
                    return Err(ConfigError::Invalid(format!(
                        "HTTPS on {addr} (s3.https_addr or --https-addr) needs a certificate: set [tls] cert and key \
                         (PEM files)"
                    )));
                }
                if self.s3.https_only {
                    return invalid("s3.https_only = true needs HTTPS: set [tls] cert and key (PEM files)");
                }
                if self.peer.tls {
                    return invalid("peer.tls = true needs a certificate: set [tls] cert and key (PEM files)");
                }
                return Ok(None);
            }
        };
        if self.s3.https_only && !self.s3.enabled {
            return invalid("s3.https_only = true, but the S3 API is off (s3.enabled = false)");
        }
        Ok(Some(TlsSettings {
            cert,
            key,
            ca: self.tls.ca.clone(),
            https_addr: self.s3.https_addr.unwrap_or(DEFAULT_HTTPS_ADDR),
            https_only: self.s3.https_only,
            peer: self.peer.tls,
        }))
    }

    /// How requests name buckets: in the path, and in the Host under `s3.domains`.
    pub fn addressing(&self) -> Result<alcove_s3::Addressing, ConfigError> {
        alcove_s3::Addressing::new(&self.s3.domains).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The cluster this worker belongs to, checked; `None` for a worker alone.
    pub fn cluster_settings(&self) -> Result<Option<ClusterSettings>, ConfigError> {
        let Some(cluster) = &self.cluster else { return Ok(None) };
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        let id = match &cluster.id {
            Some(id) => id.trim().to_owned(),
            None => host_name()
                .ok_or_else(|| ConfigError::Invalid("cluster.id is not set and the host name cannot be read".into()))?,
        };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return invalid(format!("cluster.id = {id:?} must be letters, digits, '-', '_' or '.'"));
        }
        let secret = cluster.secret.clone().unwrap_or_default();
        if secret.len() < 8 {
            return invalid(
                "cluster.secret (or ALCOVE_CLUSTER_SECRET) must be set, at least 8 characters, the same on every worker"
                    .into(),
            );
        }
        let mode = match cluster.membership.to_ascii_lowercase().as_str() {
            "static" => MembershipMode::Static,
            "etcd" => MembershipMode::Etcd,
            other => return invalid(format!("cluster.membership = {other:?} must be \"static\" or \"etcd\"")),
        };
        let mut workers = Vec::new();
        for w in &cluster.workers {
            if workers.iter().any(|m: &alcove_cluster::Member| m.id == w.id) {
                return invalid(format!("cluster.workers names {:?} twice", w.id));
            }
            check_endpoint(&w.id, &w.s3, &w.peer)?;
            workers.push(alcove_cluster::Member { id: w.id.clone(), s3: w.s3.clone(), peer: w.peer.clone() });
        }
        let me = match mode {
            MembershipMode::Static => match workers.iter().find(|m| m.id == id) {
                Some(me) => me.clone(),
                None => {
                    return invalid(format!(
                        "static membership: this worker's id {id:?} is not among [[cluster.workers]]"
                    ))
                }
            },
            MembershipMode::Etcd => {
                if cluster.etcd.endpoints.is_empty() || cluster.etcd.lease_ttl == 0 {
                    return invalid("cluster.etcd needs endpoints and a lease_ttl of at least 1 second".into());
                }
                let s3 = match &cluster.advertise_s3 {
                    Some(s3) => s3.clone(),
                    None if self.s3.https_only => {
                        format!("https://{}", self.s3.https_addr.unwrap_or(DEFAULT_HTTPS_ADDR))
                    }
                    None => format!("http://{}", self.s3.addr),
                };
                let peer = cluster.advertise_peer.clone().unwrap_or_else(|| self.peer.addr.to_string());
                check_endpoint(&id, &s3, &peer)?;
                alcove_cluster::Member { id: id.clone(), s3, peer }
            }
        };
        Ok(Some(ClusterSettings {
            me,
            secret,
            mode,
            workers,
            failure_timeout: cluster.failure_timeout.0,
            etcd: cluster.etcd.clone(),
            redirect: self.s3.redirect.enabled,
            health_check: self.s3.redirect.health_check,
        }))
    }

    /// What mounts get unless their own options say otherwise.
    pub fn mount_defaults(&self) -> Result<alcove_ufs::MountDefaults, ConfigError> {
        let local_roots = match &self.ufs.local_roots {
            None => None,
            Some(LocalRoots(dirs)) if dirs.is_empty() => {
                return Err(ConfigError::Invalid(
                    "ufs.local_roots is empty; leave it out to allow the root only, or name at least one folder".into(),
                ))
            }
            Some(LocalRoots(dirs)) => Some(dirs.clone()),
        };
        Ok(alcove_ufs::MountDefaults {
            remote: self.remote_tuning()?,
            folder_objects: self.s3.folder_objects,
            local_roots,
        })
    }

    /// The admin API's token, checked: at least [`MIN_ADMIN_TOKEN_LEN`] characters, and set
    /// whenever the admin port listens beyond loopback. `None`: an open admin port on loopback.
    pub fn admin_token(&self) -> Result<Option<String>, ConfigError> {
        let token = self.admin.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
        match token {
            Some(t) if t.chars().count() < MIN_ADMIN_TOKEN_LEN => Err(ConfigError::Invalid(format!(
                "admin.token (or ALCOVE_ADMIN_TOKEN) must be at least {MIN_ADMIN_TOKEN_LEN} characters"
            ))),
            Some(t) if !t.chars().all(|c| c.is_ascii_graphic()) => Err(ConfigError::Invalid(
                "admin.token (or ALCOVE_ADMIN_TOKEN) must be printable ASCII without spaces".into(),
            )),
            Some(t) => Ok(Some(t.to_owned())),
            None if !is_loopback(self.admin.addr) => Err(ConfigError::Invalid(format!(
                "the admin port listens on {}, beyond loopback, but no admin token is set: set admin.token \
                 (or ALCOVE_ADMIN_TOKEN), or listen on 127.0.0.1",
                self.admin.addr
            ))),
            None => Ok(None),
        }
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
        let policies = self.policies(mode)?;
        let oidc = match (&self.auth.oidc, mode) {
            (Some(oidc), AuthMode::Oidc) => Some(oidc_settings(oidc)?),
            (None, AuthMode::Oidc) => {
                return Err(ConfigError::Invalid(
                    "auth.mode = \"oidc\" needs an [auth.oidc] section (issuer, audience)".into(),
                ))
            }
            (Some(_), _) => {
                return Err(ConfigError::Invalid("[auth.oidc] is used only with auth.mode = \"oidc\"".into()))
            }
            (None, _) => None,
        };
        let sts_key = self.auth.sts_key.as_deref().map(str::trim).filter(|k| !k.is_empty());
        if sts_key.is_some_and(|k| k.chars().count() < MIN_STS_KEY_LEN) {
            return Err(ConfigError::Invalid(format!(
                "auth.sts_key (or ALCOVE_AUTH_STS_KEY) must be at least {MIN_STS_KEY_LEN} characters"
            )));
        }
        let cluster_secret = self.cluster.as_ref().and_then(|c| c.secret.clone()).filter(|s| !s.is_empty());
        Ok(AuthSettings {
            mode,
            allow_anonymous: self.auth.allow_anonymous,
            credentials: self.auth.credentials.iter().map(|c| (c.access_key.clone(), c.secret_key.clone())).collect(),
            anonymous_user: process_user(),
            policies: Arc::new(policies),
            oidc,
            sts_secret: sts_key.map(str::to_owned).or(cluster_secret),
        })
    }

    /// `[[auth.policies]]`, checked.
    fn policies(&self, mode: AuthMode) -> Result<Policies, ConfigError> {
        let mut grants = Vec::new();
        for (i, p) in self.auth.policies.iter().enumerate() {
            let grant = Grant::new(&p.users, &p.groups, &p.actions, &p.resources)
                .map_err(|e| ConfigError::Invalid(format!("auth.policies[{i}]: {e}")))?;
            if grant.names_groups() && mode != AuthMode::Oidc {
                return Err(ConfigError::Invalid(format!(
                    "auth.policies[{i}] names groups, which come from OIDC tokens: they need auth.mode = \"oidc\""
                )));
            }
            grants.push(grant);
        }
        if !grants.is_empty() {
            let reserved = [Identity::ANONYMOUS, "*"];
            if let Some(c) = self.auth.credentials.iter().find(|c| reserved.contains(&c.access_key.as_str())) {
                return Err(ConfigError::Invalid(format!(
                    "[[auth.credentials]] access_key = {:?} is reserved by the policies (\"anonymous\" is the user of \
                     unsigned requests, \"*\" is everyone)",
                    c.access_key
                )));
            }
        }
        Ok(Policies::new(grants))
    }
}

/// `[auth.oidc]`, checked: the issuer and the JWKS address must be http(s) URLs.
fn oidc_settings(oidc: &OidcConfig) -> Result<OidcSettings, ConfigError> {
    let is_url = |u: &str| {
        u.parse::<http::Uri>().is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
    };
    if !is_url(&oidc.issuer) {
        return Err(ConfigError::Invalid(format!(
            "auth.oidc.issuer = {:?} must be the provider's http(s) URL",
            oidc.issuer
        )));
    }
    if let Some(url) = oidc.jwks_url.as_deref().filter(|u| !is_url(u)) {
        return Err(ConfigError::Invalid(format!("auth.oidc.jwks_url = {url:?} must be an http(s) URL")));
    }
    if oidc.audience.trim().is_empty() || oidc.user_claim.trim().is_empty() {
        return Err(ConfigError::Invalid("auth.oidc.audience and auth.oidc.user_claim must not be empty".into()));
    }
    Ok(OidcSettings {
        issuer: oidc.issuer.clone(),
        jwks_url: oidc.jwks_url.clone(),
        audience: oidc.audience.clone(),
        user_claim: oidc.user_claim.clone(),
        groups_claim: oidc.groups_claim.clone().filter(|c| !c.trim().is_empty()),
        clock_skew: oidc.clock_skew.0,
        refetch_interval: oidc.refetch_interval.0,
    })
}

/// The cluster section, checked and with its defaults filled in.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub me: alcove_cluster::Member,
    pub secret: String,
    pub mode: MembershipMode,
    /// Static membership's list (this worker included).
    pub workers: Vec<alcove_cluster::Member>,
    pub failure_timeout: Duration,
    pub etcd: EtcdConfig,
    pub redirect: bool,
    pub health_check: bool,
}

/// A worker's addresses must be usable by the others: an `http(s)://host:port` S3 endpoint and a
/// `host:port` peer address.
fn check_endpoint(id: &str, s3: &str, peer: &str) -> Result<(), ConfigError> {
    let s3_ok = s3
        .parse::<http::Uri>()
        .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() && u.path() == "/")
        && !s3.ends_with('/');
    let peer_ok = peer.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !s3_ok {
        return Err(ConfigError::Invalid(format!(
            "worker {id:?}: s3 = {s3:?} must be an http:// or https:// endpoint such as \"http://10.0.0.5:29998\""
        )));
    }
    if !peer_ok {
        return Err(ConfigError::Invalid(format!(
            "worker {id:?}: peer = {peer:?} must be host:port such as \"10.0.0.5:29999\""
        )));
    }
    Ok(())
}

/// 127.0.0.0/8 or ::1 (an IPv4-mapped loopback address too); `0.0.0.0` and `::` are not.
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// The name of the user the worker runs as: what requests without credentials run as. Read from
/// /proc and /etc/passwd (a few lines, rather than a crate for one lookup); users known only to
/// NSS services such as LDAP fall back to `$USER`, then to `uid-N`.
fn process_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
        line.split_whitespace().next().map(str::to_owned)
    });
    let named = uid.as_deref().and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|entry| {
            let mut fields = entry.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid).then(|| name.to_owned())
        })
    });
    named
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid-{}", uid.as_deref().unwrap_or("unknown")))
}

/// The host name, the default worker id.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
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
    // Secrets stay strings: a token of digits must not become a number.
    let parsed = match rest.as_str() {
        "admin_token" | "cluster_secret" | "auth_sts_key" => toml::Value::String(value.to_owned()),
        _ => parse_env_value(value),
    };
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
    fn anonymous_requests_run_as_the_process_user() {
        // This test runs as some user of /etc/passwd, whatever $USER says.
        let user = process_user();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().next().unwrap();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        assert!(
            passwd.lines().any(|l| l.starts_with(&format!("{user}:")) && l.split(':').nth(2) == Some(uid)),
            "{user}"
        );
    }

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

    #[test]
    fn cluster_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alcove.toml");
        let workers = "[[cluster.workers]]\nid = \"w1\"\ns3 = \"http://127.0.0.1:1\"\npeer = \"127.0.0.1:2\"\n\
                       [[cluster.workers]]\nid = \"w2\"\ns3 = \"http://127.0.0.1:3\"\npeer = \"127.0.0.1:4\"\n";
        std::fs::write(&path, format!("[cluster]\nid = \"w2\"\nfailure_timeout = \"2s\"\n{workers}")).unwrap();
        let env = || [("ALCOVE_CLUSTER_SECRET".to_owned(), "a long secret".to_owned())];
        let c = Config::load(Some(&path), env()).unwrap();
        let settings = c.cluster_settings().unwrap().unwrap();
        assert_eq!((settings.me.id.as_str(), settings.me.peer.as_str()), ("w2", "127.0.0.1:4"));
        assert_eq!((settings.mode, settings.failure_timeout), (MembershipMode::Static, Duration::from_secs(2)));
        assert_eq!(settings.workers.len(), 2);
        assert!(!settings.redirect && settings.health_check, "proxy mode, health checks on");
        let redirect = [("ALCOVE_S3_REDIRECT_ENABLED".to_owned(), "true".to_owned())];
        assert!(Config::load(Some(&path), env().into_iter().chain(redirect)).unwrap().s3.redirect.enabled);
        assert!(Config::load(None, []).unwrap().cluster_settings().unwrap().is_none(), "alone by default");

        let refused = |text: String, env: Vec<(String, String)>| {
            std::fs::write(&path, &text).unwrap();
            let e = Config::load(Some(&path), env).err().unwrap_or_else(|| panic!("accepted: {text}"));
            e.to_string()
        };
        assert!(refused(format!("[cluster]\nid = \"w2\"\n{workers}"), vec![]).contains("cluster.secret"));
        assert!(refused(format!("[cluster]\nid = \"w9\"\n{workers}"), env().into()).contains("w9"));
        assert!(refused(format!("[cluster]\nid = \"w1\"\nmembership = \"gossip\"\n{workers}"), env().into())
            .contains("gossip"));
        let bad_peer = workers.replace("127.0.0.1:4", "nowhere");
        assert!(refused(format!("[cluster]\nid = \"w1\"\n{bad_peer}"), env().into()).contains("host:port"));
        let twice = workers.replace("\"w2\"", "\"w1\"");
        assert!(refused(format!("[cluster]\nid = \"w1\"\n{twice}"), env().into()).contains("twice"));
    }

    #[test]
    fn admin_token_and_loopback() {
        let load = |file: &str, env: &[(&str, &str)]| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("alcove.toml");
            std::fs::write(&path, file).unwrap();
            Config::load(Some(&path), env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        let open = load("", &[]).unwrap();
        assert_eq!(open.admin_token().unwrap(), None, "loopback without a token stays open");
        let wide = load("[admin]\naddr = \"0.0.0.0:30000\"\n", &[]).unwrap();
        let refused = wide.admin_token().unwrap_err().to_string();
        assert!(refused.contains("beyond loopback") && refused.contains("ALCOVE_ADMIN_TOKEN"), "{refused}");
        let digits = "1234567890123456789";
        let from_env = load("[admin]\naddr = \"[::]:30000\"\n", &[("ALCOVE_ADMIN_TOKEN", digits)]).unwrap();
        assert_eq!(from_env.admin_token().unwrap().as_deref(), Some(digits), "a token of digits stays a string");
        assert!(load("[admin]\ntoken = \"short\"\n", &[]).is_err());
        for (addr, loopback) in
            [("127.0.0.1:1", true), ("127.5.0.1:1", true), ("[::1]:1", true), ("[::ffff:127.0.0.1]:1", true)]
                .into_iter()
                .chain([("0.0.0.0:1", false), ("[::]:1", false), ("10.0.0.5:1", false)])
        {
            assert_eq!(is_loopback(addr.parse().unwrap()), loopback, "{addr}");
        }
    }

    #[test]
    fn tls_settings_need_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alcove.toml");
        let load = |text: &str, env: &[(&str, &str)]| {
            std::fs::write(&path, text).unwrap();
            Config::load(Some(&path), env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        assert_eq!(load("", &[]).unwrap().tls_settings().unwrap(), None, "plain HTTP by default");
        let pair = "[tls]\ncert = \"/etc/alcove/cert.pem\"\nkey = \"/etc/alcove/key.pem\"\n";
        let t = load(pair, &[]).unwrap().tls_settings().unwrap().unwrap();
        assert_eq!(t.https_addr, DEFAULT_HTTPS_ADDR);
        assert_eq!(t.https_addr.to_string(), "0.0.0.0:29996");
        assert!(!t.https_only && !t.peer && t.ca.is_none());
        let file = format!("{pair}ca = \"/etc/alcove/ca.pem\"\n[s3]\nhttps_addr = \"127.0.0.1:8443\"\nhttps_only = true\n[peer]\ntls = true\n");
        let t = load(&file, &[]).unwrap().tls_settings().unwrap().unwrap();
        assert_eq!((t.https_addr.port(), t.https_only, t.peer), (8443, true, true));
        assert_eq!(t.ca.as_deref(), Some(Path::new("/etc/alcove/ca.pem")));
        let env = [("ALCOVE_TLS_CERT", "/c.pem"), ("ALCOVE_TLS_KEY", "/k.pem"), ("ALCOVE_S3_HTTPS_ONLY", "true")];
        let t = load("", &env).unwrap().tls_settings().unwrap().unwrap();
        assert_eq!((t.cert.as_path(), t.key.as_path(), t.https_only), (Path::new("/c.pem"), Path::new("/k.pem"), true));

        for (text, says) in [
            ("[s3]\nhttps_addr = \"127.0.0.1:8443\"\n", "needs a certificate"),
            ("[s3]\nhttps_only = true\n", "s3.https_only"),
            ("[peer]\ntls = true\n", "peer.tls"),
            ("[tls]\ncert = \"/c.pem\"\n", "tls.key"),
            ("[tls]\nkey = \"/k.pem\"\n", "tls.cert"),
            ("[tls]\ncertificate = \"/c.pem\"\n", "certificate"),
        ] {
            let e = load(text, &[]).err().unwrap_or_else(|| panic!("accepted: {text}")).to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        // A flag given after the file was read is checked when the worker starts.
        let mut c = load("", &[]).unwrap();
        c.s3.https_addr = Some("127.0.0.1:8443".parse().unwrap());
        assert!(c.tls_settings().unwrap_err().to_string().contains("--https-addr"));
    }

    #[test]
    fn https_only_workers_advertise_https() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alcove.toml");
        std::fs::write(
            &path,
            "[s3]\nhttps_only = true\nhttps_addr = \"10.0.0.5:8443\"\n[tls]\ncert = \"/c\"\nkey = \"/k\"\n\
             [cluster]\nid = \"w1\"\nsecret = \"a long secret\"\nmembership = \"etcd\"\n",
        )
        .unwrap();
        let settings = Config::load(Some(&path), []).unwrap().cluster_settings().unwrap().unwrap();
        assert_eq!(settings.me.s3, "https://10.0.0.5:8443");
    }

    #[test]
    fn policies_are_checked() {
        let load = |file: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("alcove.toml");
            std::fs::write(&path, file).unwrap();
            Config::load(Some(&path), [])
        };
        let grant =
            "[[auth.policies]]\nusers = [\"alice\"]\nactions = [\"read\", \"list\"]\nresources = [\"photos/2024/*\"]\n";
        let c = load(grant).unwrap();
        let policies = c.auth_settings().unwrap().policies;
        assert_eq!(policies.grants().len(), 1);
        assert!(Config::load(None, []).unwrap().auth_settings().unwrap().policies.is_empty());
        let refused = |file: String| load(&file).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused(grant.replace("read\", \"list", "read\", \"delete")).contains("'delete' is not an action"));
        assert!(refused(grant.replace("photos/2024/*", "photos/*/x")).contains("policies[0]"));
        assert!(refused(grant.replace("users = [\"alice\"]", "groups = [\"staff\"]")).contains("OIDC"));
        assert!(refused(grant.replace("resources", "resource")).contains("resource"), "a typo in a key");
        let reserved = format!("{grant}[[auth.credentials]]\naccess_key = \"anonymous\"\nsecret_key = \"s\"\n");
        assert!(refused(reserved).contains("reserved"));
    }

    #[test]
    fn oidc_settings_are_checked() {
        let load = |file: &str, env: &[(&str, &str)]| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("alcove.toml");
            std::fs::write(&path, file).unwrap();
            Config::load(Some(&path), env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        let oidc = "[auth]\nmode = \"oidc\"\n[auth.oidc]\nissuer = \"https://idp.example.test/realms/x\"\naudience = \"alcove\"\n";
        let settings = load(oidc, &[]).unwrap().auth_settings().unwrap();
        let o = settings.oidc.expect("oidc settings");
        assert_eq!((o.user_claim.as_str(), o.groups_claim, o.jwks_url), ("sub", None, None));
        assert_eq!((o.clock_skew, o.refetch_interval), (Duration::from_secs(60), Duration::from_secs(10)));
        assert_eq!(settings.sts_secret, None, "alone and without auth.sts_key: a key of the process");
        let digits = "12345678901234567890";
        let from_env =
            load(oidc, &[("ALCOVE_AUTH_STS_KEY", digits), ("ALCOVE_AUTH_OIDC_USER_CLAIM", "email")]).unwrap();
        let settings = from_env.auth_settings().unwrap();
        assert_eq!(settings.sts_secret.as_deref(), Some(digits), "a key of digits stays a string");
        assert_eq!(settings.oidc.unwrap().user_claim, "email");
        let clustered = format!(
            "{oidc}[cluster]\nid = \"w1\"\nsecret = \"the cluster secret\"\n[[cluster.workers]]\nid = \"w1\"\n\
             s3 = \"http://127.0.0.1:1\"\npeer = \"127.0.0.1:2\"\n"
        );
        let settings = load(&clustered, &[]).unwrap().auth_settings().unwrap();
        assert_eq!(settings.sts_secret.as_deref(), Some("the cluster secret"));
        let groups =
            format!("{oidc}[[auth.policies]]\ngroups = [\"staff\"]\nactions = [\"read\"]\nresources = [\"*\"]\n");
        assert!(load(&groups, &[]).is_ok(), "groups come with oidc mode");

        let refused = |file: &str| load(file, &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused("[auth]\nmode = \"oidc\"\n").contains("[auth.oidc]"));
        assert!(refused(&oidc.replace("mode = \"oidc\"", "mode = \"simple\"")).contains("only with"));
        assert!(refused(&oidc.replace("https://idp.example.test/realms/x", "idp.example.test")).contains("issuer"));
        assert!(refused(&format!("{oidc}jwks_url = \"ftp://x/keys\"\n")).contains("jwks_url"));
        assert!(refused(&oidc.replace("[auth.oidc]", "sts_key = \"short\"\n[auth.oidc]")).contains("sts_key"));
        assert!(refused(&format!("{oidc}client_secret = \"x\"\n")).contains("client_secret"), "a typo in a key");
    }

    #[test]
    fn request_limits_have_defaults_and_are_checked() {
        let c = Config::load(None, []).unwrap();
        let limits = c.request_limits().unwrap();
        assert_eq!((limits.max_header_bytes, limits.max_headers), (8192, 100));
        assert_eq!(limits.body_idle_timeout.get(), Duration::from_secs(60));
        assert_eq!((c.max_xml_size(), c.s3.max_connections), (4 << 20, 4096));
        assert_eq!(c.header_read_timeout(), Duration::from_secs(30));
        assert_eq!(c.hyper_head_limits(), (64 << 10, 200));
        let env =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let c = Config::load(
            None,
            env(&[
                ("ALCOVE_S3_HEADER_TIMEOUT", "5s"),
                ("ALCOVE_S3_IDLE_TIMEOUT", "2"),
                ("ALCOVE_S3_MAX_CONNECTIONS", "10"),
            ]),
        )
        .unwrap();
        assert_eq!(c.header_read_timeout(), Duration::from_secs(2), "the shorter of the two");
        assert_eq!(c.s3.max_connections, 10);
        let c = Config::load(None, env(&[("ALCOVE_S3_MAX_HEADER_SIZE", "32KiB"), ("ALCOVE_S3_MAX_XML_SIZE", "1MiB")]))
            .unwrap();
        assert_eq!((c.request_limits().unwrap().max_header_bytes, c.max_xml_size()), (32 << 10, 1 << 20));
        for bad in [
            &[("ALCOVE_S3_MAX_HEADER_SIZE", "4096")][..],
            &[("ALCOVE_S3_METADATA_MAX_SIZE", "8192")],
            &[("ALCOVE_S3_MAX_HEADERS", "3")],
            &[("ALCOVE_S3_MAX_XML_SIZE", "1000")],
            &[("ALCOVE_S3_MAX_CONNECTIONS", "0")],
            &[("ALCOVE_S3_BODY_IDLE_TIMEOUT", "0")],
        ] {
            assert!(Config::load(None, env(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_roots_from_file_and_env() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(c.mount_defaults().unwrap().local_roots, None);
        let env = [("ALCOVE_UFS_LOCAL_ROOTS".to_owned(), "/srv/a:/srv/b".to_owned())];
        let c = Config::load(None, env).unwrap();
        assert_eq!(
            c.mount_defaults().unwrap().local_roots,
            Some(vec![PathBuf::from("/srv/a"), PathBuf::from("/srv/b")])
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alcove.toml");
        std::fs::write(&path, "[ufs]\nlocal_roots = [\"/srv/photos\"]\n").unwrap();
        let c = Config::load(Some(&path), []).unwrap();
        assert_eq!(c.mount_defaults().unwrap().local_roots, Some(vec![PathBuf::from("/srv/photos")]));
        std::fs::write(&path, "[ufs]\nlocal_roots = []\n").unwrap();
        assert!(Config::load(Some(&path), []).is_err());
    }
}
