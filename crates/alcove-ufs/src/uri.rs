//! UFS URIs and per-mount options: which backend a mount uses and how to reach it.
//!
//! `file:///dir` is the local-disk backend; every other scheme is a remote store reached through
//! Apache OpenDAL. This module turns a URI plus `--option key=value` pairs into the OpenDAL
//! service configuration, refusing unknown options with the list of known ones, and knows which
//! options are secrets (never logged, never shown). It may not contact a backend.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::{UfsError, UfsResult};

/// Seconds a remote request may take unless the mount's `timeout` option says otherwise.
pub const DEFAULT_REMOTE_TIMEOUT_SECS: u64 = 30;

/// Option values shown as this instead of themselves.
pub const REDACTED: &str = "<redacted>";

/// Options whose values are `true` or `false`.
const BOOL_OPTIONS: &[&str] = &["virtual_host_style", "allow_anonymous"];

/// Options whose values are credentials.
const SECRET_OPTIONS: &[&str] = &[
    "secret_access_key",
    "session_token",
    "account_key",
    "sas_token",
    "client_secret",
    "credential",
    "token",
    "delegation",
];

/// Options every mount takes, whatever its backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// List implicit folders as 0-byte `dir/` objects (the seed system's listings); `None`
    /// leaves it to the worker's `s3.folder_objects`.
    pub folder_objects: Option<bool>,
    /// `cache=on|off`: read the mount through the page cache; `None` caches remote mounts and
    /// not `file://` ones (the kernel already caches a local disk).
    pub cache: Option<bool>,
}

/// Names of the [`MountOptions`].
const COMMON_OPTIONS: &[&str] = &["folder_objects", "cache"];

impl MountOptions {
    /// Takes the options every mount knows out of `options`; the backend's own are left.
    fn take(options: &mut BTreeMap<String, String>) -> UfsResult<Self> {
        let folder_objects = options.remove("folder_objects").map(|v| parse_bool("folder_objects", &v)).transpose()?;
        let cache = options.remove("cache").map(|v| parse_switch("cache", &v)).transpose()?;
        Ok(Self { folder_objects, cache })
    }
}

/// A mount's URI and options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub ufs: UfsUri,
    pub options: MountOptions,
}

impl MountSpec {
    /// Parses a mount's URI and options.
    pub fn parse(uri: &str, options: &BTreeMap<String, String>) -> UfsResult<Self> {
        let mut backend_options = options.clone();
        let common = MountOptions::take(&mut backend_options)?;
        Ok(Self { ufs: UfsUri::parse(uri, &backend_options)?, options: common })
    }
}

/// A parsed UFS URI with its backend's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UfsUri {
    Local(PathBuf),
    Remote(RemoteSpec),
}

/// The remote stores Alcove can mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    S3,
    Gcs,
    Azblob,
    Azdls,
    Hdfs,
    Webhdfs,
}

impl RemoteKind {
    /// The name used in messages and the README's backend table.
    pub fn name(self) -> &'static str {
        match self {
            RemoteKind::S3 => "s3",
            RemoteKind::Gcs => "gcs",
            RemoteKind::Azblob => "azblob",
            RemoteKind::Azdls => "abfs",
            RemoteKind::Hdfs => "hdfs",
            RemoteKind::Webhdfs => "webhdfs",
        }
    }

    /// Mount options of this kind, as (Alcove name, OpenDAL configuration key).
    fn known_options(self) -> &'static [(&'static str, &'static str)] {
        match self {
            RemoteKind::S3 => &[
                ("endpoint", "endpoint"),
                ("region", "region"),
                ("access_key_id", "access_key_id"),
                ("secret_access_key", "secret_access_key"),
                ("session_token", "session_token"),
                ("virtual_host_style", "enable_virtual_host_style"),
                ("allow_anonymous", "skip_signature"),
                ("storage_class", "default_storage_class"),
            ],
            RemoteKind::Gcs => &[
                ("endpoint", "endpoint"),
                ("credential", "credential"),
                ("credential_path", "credential_path"),
                ("service_account", "service_account"),
                ("token", "token"),
                ("allow_anonymous", "skip_signature"),
            ],
            RemoteKind::Azblob => &[
                ("endpoint", "endpoint"),
                ("account_name", "account_name"),
                ("account_key", "account_key"),
                ("sas_token", "sas_token"),
            ],
            RemoteKind::Azdls => &[
                ("endpoint", "endpoint"),
                ("account_key", "account_key"),
                ("sas_token", "sas_token"),
                ("client_id", "client_id"),
                ("client_secret", "client_secret"),
                ("tenant_id", "tenant_id"),
            ],
            RemoteKind::Hdfs => &[],
            RemoteKind::Webhdfs => &[("user_name", "user_name"), ("delegation", "delegation")],
        }
    }
}

/// A remote mount: the OpenDAL service and its configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub kind: RemoteKind,
    /// OpenDAL configuration keys and values (secrets included: never print this).
    pub config: BTreeMap<String, String>,
    /// Longest time one remote request may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for RemoteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSpec")
            .field("kind", &self.kind)
            .field("config", &redact(&self.config))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl UfsUri {
    /// Parses a mount's URI and its backend's options (those of every mount are taken out by
    /// [`MountSpec::parse`]).
    fn parse(uri: &str, options: &BTreeMap<String, String>) -> UfsResult<Self> {
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(invalid(format!(
                "'{uri}' is not a UFS URI (scheme://…, e.g. file:///dir or s3://bucket/prefix)"
            )));
        };
        let kind = match scheme {
            "file" => return parse_local(uri, rest, options),
            "s3" | "s3a" => RemoteKind::S3,
            "gs" | "gcs" => RemoteKind::Gcs,
            "azblob" | "wasb" | "wasbs" => RemoteKind::Azblob,
            "abfs" | "abfss" => RemoteKind::Azdls,
            "hdfs" => RemoteKind::Hdfs,
            "webhdfs" | "swebhdfs" => RemoteKind::Webhdfs,
            other => {
                return Err(UfsError::Unsupported(format!(
                    "UFS scheme '{other}' is not supported; use file://, s3://, gs://, azblob://, abfs://, hdfs:// or webhdfs://"
                )))
            }
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(invalid(format!("'{uri}' names no {} bucket, container or host", kind.name())));
        }
        let mut config = BTreeMap::new();
        config.insert("root".to_owned(), format!("/{}", path.trim_matches('/')));
        match kind {
            RemoteKind::S3 | RemoteKind::Gcs => {
                config.insert("bucket".into(), authority.into());
            }
            RemoteKind::Azblob => {
                config.insert("container".into(), authority.into());
            }
            RemoteKind::Azdls => {
                let (filesystem, host) = authority.split_once('@').ok_or_else(|| {
                    invalid(format!("'{uri}' must look like abfs://FILESYSTEM@ACCOUNT.dfs.core.windows.net/path"))
                })?;
                let account = host.split('.').next().unwrap_or_default();
                config.insert("filesystem".into(), filesystem.into());
                config.insert("endpoint".into(), format!("https://{host}"));
                config.insert("account_name".into(), account.into());
            }
            RemoteKind::Hdfs => {
                config.insert("name_node".into(), format!("hdfs://{authority}"));
            }
            RemoteKind::Webhdfs => {
                let tls = scheme == "swebhdfs";
                config.insert("endpoint".into(), format!("{}://{authority}", if tls { "https" } else { "http" }));
            }
        }
        let mut timeout = Duration::from_secs(DEFAULT_REMOTE_TIMEOUT_SECS);
        for (name, value) in options {
            if name == "timeout" {
                timeout = parse_timeout(value)?;
                continue;
            }
            let key = kind.known_options().iter().find(|(n, _)| n == name).map(|(_, k)| *k).ok_or_else(|| {
                let known: Vec<&str> = kind
                    .known_options()
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(std::iter::once("timeout"))
                    .chain(COMMON_OPTIONS.iter().copied())
                    .collect();
                invalid(format!(
                    "unknown option '{name}' for a {} mount; known options: {}",
                    kind.name(),
                    known.join(", ")
                ))
            })?;
            if BOOL_OPTIONS.contains(&name.as_str()) {
                parse_bool(name, value)?;
            }
            if key == "endpoint" {
                check_endpoint(value)?;
            }
            config.insert(key.to_owned(), value.clone());
        }
        if kind == RemoteKind::S3 {
            // A mount with its own keys must not pick up the machine's ~/.aws files or environment.
            if config.contains_key("access_key_id") {
                config.insert("disable_config_load".into(), "true".into());
            }
            if config.contains_key("endpoint") && !config.contains_key("region") {
                config.insert("region".into(), "us-east-1".into());
            }
        }
        if kind == RemoteKind::Gcs {
            // Nor a GCS mount with its own credentials (or none at all) the machine's: a malformed
            // `credential` would otherwise fall back to them silently.
            let own = ["credential", "credential_path", "token"].iter().any(|k| config.contains_key(*k))
                || config.get("skip_signature").is_some_and(|v| v == "true");
            if own {
                config.insert("disable_config_load".into(), "true".into());
                config.insert("disable_vm_metadata".into(), "true".into());
            }
        }
        Ok(Self::Remote(RemoteSpec { kind, config, timeout }))
    }
}

fn parse_local(uri: &str, path: &str, options: &BTreeMap<String, String>) -> UfsResult<UfsUri> {
    if !path.starts_with('/') {
        return Err(invalid(format!("UFS URI '{uri}' must name an absolute path (file:///dir)")));
    }
    if let Some(name) = options.keys().next() {
        return Err(invalid(format!(
            "option '{name}' is not known for a file:// mount (it takes only {})",
            COMMON_OPTIONS.join(", ")
        )));
    }
    Ok(UfsUri::Local(PathBuf::from(path)))
}

fn parse_timeout(value: &str) -> UfsResult<Duration> {
    match value.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(invalid(format!("option timeout={value} must be a number of seconds between 0 and 86400"))),
    }
}

fn check_endpoint(value: &str) -> UfsResult<()> {
    let rest = value.strip_prefix("http://").or_else(|| value.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) && !host.starts_with('/') => Ok(()),
        _ => Err(invalid(format!("option endpoint={value} must be an http:// or https:// URL with a host"))),
    }
}

fn parse_bool(name: &str, value: &str) -> UfsResult<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(format!("option {name}={value} must be true or false"))),
    }
}

fn parse_switch(name: &str, value: &str) -> UfsResult<bool> {
    match value {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(invalid(format!("option {name}={value} must be on or off"))),
    }
}

fn invalid(message: String) -> UfsError {
    UfsError::InvalidRequest(message)
}

/// True for options whose values are credentials.
pub fn is_secret(name: &str) -> bool {
    SECRET_OPTIONS.contains(&name)
}

/// The options with every secret value replaced by [`REDACTED`], for display and logs.
pub fn redact(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    options.iter().map(|(k, v)| (k.clone(), if is_secret(k) { REDACTED.to_owned() } else { v.clone() })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn remote(uri: &str, pairs: &[(&str, &str)]) -> RemoteSpec {
        match MountSpec::parse(uri, &opts(pairs)).unwrap().ufs {
            UfsUri::Remote(spec) => spec,
            other => panic!("{uri} parsed as {other:?}"),
        }
    }

    #[test]
    fn local_uris() {
        assert_eq!(MountSpec::parse("file:///srv/x", &opts(&[])).unwrap().ufs, UfsUri::Local("/srv/x".into()));
        assert!(MountSpec::parse("file://relative", &opts(&[])).is_err());
        assert!(MountSpec::parse("file:///srv", &opts(&[("region", "x")])).is_err());
    }

    #[test]
    fn every_mount_takes_folder_objects() {
        let local = MountSpec::parse("file:///srv/x", &opts(&[("folder_objects", "true")])).unwrap();
        assert_eq!(local.options.folder_objects, Some(true));
        let remote = MountSpec::parse("s3://b", &opts(&[("folder_objects", "false"), ("region", "x")])).unwrap();
        assert_eq!(remote.options.folder_objects, Some(false));
        assert_eq!(MountSpec::parse("s3://b", &opts(&[])).unwrap().options.folder_objects, None);
        let bad = MountSpec::parse("file:///x", &opts(&[("folder_objects", "yes")])).unwrap_err().to_string();
        assert!(bad.contains("true or false"), "{bad}");
        let unknown = MountSpec::parse("s3://b", &opts(&[("folders", "x")])).unwrap_err().to_string();
        assert!(unknown.contains("folder_objects"), "{unknown}");
        let cached = MountSpec::parse("file:///x", &opts(&[("cache", "on")])).unwrap();
        assert_eq!(cached.options.cache, Some(true));
        assert_eq!(MountSpec::parse("s3://b", &opts(&[("cache", "off")])).unwrap().options.cache, Some(false));
        let bad = MountSpec::parse("s3://b", &opts(&[("cache", "yes")])).unwrap_err().to_string();
        assert!(bad.contains("on or off"), "{bad}");
    }

    #[test]
    fn s3_uri_and_options() {
        let spec = remote(
            "s3://photos/2024/raw/",
            &[
                ("endpoint", "http://127.0.0.1:9000"),
                ("access_key_id", "AK"),
                ("secret_access_key", "SK"),
                ("virtual_host_style", "true"),
                ("timeout", "2.5"),
            ],
        );
        assert_eq!(spec.kind, RemoteKind::S3);
        assert_eq!(spec.config["bucket"], "photos");
        assert_eq!(spec.config["root"], "/2024/raw");
        assert_eq!(spec.config["region"], "us-east-1");
        assert_eq!(spec.config["enable_virtual_host_style"], "true");
        assert_eq!(spec.config["disable_config_load"], "true");
        assert_eq!(spec.timeout, Duration::from_millis(2500));
        assert!(!format!("{spec:?}").contains("SK"), "Debug must not show secrets");
        assert_eq!(remote("s3a://b", &[]).config["root"], "/");
    }

    #[test]
    fn other_schemes() {
        let gs = remote("gs://bkt/p", &[("credential_path", "/k.json")]);
        assert_eq!((gs.kind, gs.config["bucket"].as_str(), gs.config["root"].as_str()), (RemoteKind::Gcs, "bkt", "/p"));
        let az = remote("azblob://cont/dir", &[("account_name", "acct"), ("account_key", "k")]);
        assert_eq!((az.kind, az.config["container"].as_str()), (RemoteKind::Azblob, "cont"));
        let abfs = remote("abfs://fs@acct.dfs.core.windows.net/d", &[]);
        assert_eq!(abfs.config["filesystem"], "fs");
        assert_eq!(abfs.config["endpoint"], "https://acct.dfs.core.windows.net");
        assert_eq!(abfs.config["account_name"], "acct");
        let private = remote("abfs://fs@acct.dfs.core.windows.net/d", &[("endpoint", "http://127.0.0.1:1/acct")]);
        assert_eq!(private.config["endpoint"], "http://127.0.0.1:1/acct");
        let hdfs = remote("hdfs://nn:8020/warehouse", &[]);
        assert_eq!((hdfs.config["name_node"].as_str(), hdfs.config["root"].as_str()), ("hdfs://nn:8020", "/warehouse"));
        let web = remote("webhdfs://nn:9870/data", &[("user_name", "hive")]);
        assert_eq!(web.config["endpoint"], "http://nn:9870");
        assert_eq!(remote("swebhdfs://nn:9871/", &[]).config["endpoint"], "https://nn:9871");
    }

    #[test]
    fn gcs_with_own_credentials_ignores_the_machines() {
        let anonymous = remote("gs://b", &[("endpoint", "http://127.0.0.1:1"), ("allow_anonymous", "true")]);
        assert_eq!(anonymous.config["skip_signature"], "true");
        assert_eq!(anonymous.config["disable_vm_metadata"], "true");
        assert_eq!(anonymous.config["disable_config_load"], "true");
        assert_eq!(remote("gs://b", &[("token", "t")]).config["disable_config_load"], "true");
        let machine = remote("gs://b", &[("service_account", "sa@p.iam.gserviceaccount.com")]);
        assert!(!machine.config.contains_key("disable_vm_metadata"));
        assert!(UfsUri::parse("gs://b", &opts(&[("allow_anonymous", "yes")])).is_err());
    }

    #[test]
    fn bad_uris_and_options_are_refused_clearly() {
        let err = |uri: &str, pairs: &[(&str, &str)]| MountSpec::parse(uri, &opts(pairs)).unwrap_err().to_string();
        assert!(err("ftp://x/y", &[]).contains("not supported"));
        assert!(err("s3:///prefix", &[]).contains("names no"));
        assert!(err("nothing", &[]).contains("not a UFS URI"));
        let unknown = err("s3://b", &[("endpiont", "x")]);
        assert!(unknown.contains("endpiont") && unknown.contains("known options: endpoint"), "{unknown}");
        assert!(err("s3://b", &[("timeout", "-1")]).contains("timeout"));
        assert!(err("s3://b", &[("virtual_host_style", "yes")]).contains("true or false"));
        assert!(err("s3://b", &[("endpoint", "not a url")]).contains("http:// or https://"));
        assert!(err("s3://b", &[("endpoint", "http://")]).contains("http:// or https://"));
        assert!(err("abfs://noaccount/x", &[]).contains("abfs://FILESYSTEM@"));
    }

    #[test]
    fn secrets_are_redacted() {
        let shown = redact(&opts(&[("access_key_id", "AK"), ("secret_access_key", "SK"), ("session_token", "T")]));
        assert_eq!(shown["access_key_id"], "AK");
        assert_eq!(shown["secret_access_key"], REDACTED);
        assert_eq!(shown["session_token"], REDACTED);
    }
}
