//! `alcove presign s3://BUCKET/KEY`: prints a SigV4 presigned URL (query-string auth) for a worker.
//!
//! The signing is `aws-sigv4`'s, the AWS SDK's own signer; this module only gathers the inputs —
//! the target, the lifetime, the method and the credentials — and builds the path-style URL
//! `ENDPOINT/BUCKET/KEY` with the key percent-encoded as SigV4 wants it (every byte but
//! `A-Z a-z 0-9 - _ . ~` and `/`, hex in upper case). The signer takes that path as written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, SystemTime};

use alcove_worker::Config;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The longest lifetime AWS accepts for a presigned URL (`X-Amz-Expires`): a week.
pub const MAX_EXPIRES: u64 = 7 * 24 * 3600;

/// Bytes SigV4 percent-encodes in a path: all but the unreserved ones and `/`.
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Methods a presigned URL may be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "UPPER")]
pub enum Method {
    Get,
    Put,
    Head,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Head => "HEAD",
            Method::Delete => "DELETE",
        }
    }
}

/// Why no URL was printed.
#[derive(Debug, thiserror::Error)]
pub enum PresignError {
    #[error("'{0}' is not an s3:// URI; expected s3://BUCKET/KEY")]
    NotS3(String),
    #[error("'{0}' names no bucket; expected s3://BUCKET/KEY")]
    NoBucket(String),
    #[error("'{0}' names no key; expected s3://BUCKET/KEY")]
    NoKey(String),
    #[error("'{uri}': '{bucket}' cannot be a bucket name (no spaces, '?', '#', '%' or '\\')")]
    BadBucket { uri: String, bucket: String },
    #[error("--endpoint '{0}': expected http://HOST[:PORT] or https://HOST[:PORT]")]
    BadEndpoint(String),
    #[error(
        "no credentials: pass --access-key and --secret-key, set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or give --config FILE with an [[auth.credentials]] entry"
    )]
    NoCredentials,
    #[error("{0} is set but {1} is not; set both or neither")]
    HalfEnv(&'static str, &'static str),
    #[error("{0} has no [[auth.credentials]] entry")]
    NoConfigCredentials(String),
    #[error("{0}")]
    Config(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// The bucket and key of `s3://BUCKET/KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bucket: String,
    pub key: String,
}

impl Object {
    /// Parses `s3://BUCKET/KEY` (the scheme in any case); the key is taken as written, `/`s and all.
    pub fn parse(uri: &str) -> Result<Self, PresignError> {
        let rest = uri
            .get(..5)
            .filter(|scheme| scheme.eq_ignore_ascii_case("s3://"))
            .and_then(|_| uri.get(5..))
            .ok_or_else(|| PresignError::NotS3(uri.to_owned()))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(PresignError::NoBucket(uri.to_owned()));
        }
        if bucket.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%' | '\\')) {
            return Err(PresignError::BadBucket { uri: uri.to_owned(), bucket: bucket.to_owned() });
        }
        if key.is_empty() {
            return Err(PresignError::NoKey(uri.to_owned()));
        }
        Ok(Self { bucket: bucket.to_owned(), key: key.to_owned() })
    }

    /// The URL path, `/BUCKET/KEY`, percent-encoded for SigV4.
    fn path(&self) -> String {
        format!("/{}/{}", utf8_percent_encode(&self.bucket, PATH), utf8_percent_encode(&self.key, PATH))
    }
}

/// Parses a lifetime: `90` or `90s` seconds, `15m`, `1h`, `7d`; from 1 second to a week.
pub fn parse_expires(s: &str) -> Result<Duration, String> {
    let refuse = || format!("'{s}' is not a lifetime; expected e.g. 30s, 15m, 1h or 7d (at most 7d)");
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let unit_secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(refuse()),
    };
    let n: u64 = digits.parse().map_err(|_| refuse())?;
    match n.checked_mul(unit_secs) {
        Some(0) => Err(format!("'{s}': a presigned URL must live at least 1 second")),
        Some(secs) if secs <= MAX_EXPIRES => Ok(Duration::from_secs(secs)),
        _ => Err(format!("'{s}' is too long: a presigned URL lives at most 7 days ({MAX_EXPIRES} seconds)")),
    }
}

/// Checks `--endpoint` and returns it without a trailing `/`.
pub fn parse_endpoint(endpoint: &str) -> Result<String, PresignError> {
    let bad = || PresignError::BadEndpoint(endpoint.to_owned());
    let trimmed = endpoint.strip_suffix('/').unwrap_or(endpoint);
    let uri: http::Uri = trimmed.parse().map_err(|_| bad())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.path() == "/" || uri.path().is_empty();
    if !scheme_ok || uri.authority().is_none() || !bare || uri.query().is_some() || trimmed.ends_with('/') {
        return Err(bad());
    }
    Ok(trimmed.to_owned())
}

/// The endpoint of a worker listening on `addr` (an unspecified address is reached on loopback).
fn endpoint_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// What the command line gave.
pub struct Request<'a> {
    pub uri: &'a str,
    /// `None`: the `--config` worker's S3 address, else the default worker's.
    pub endpoint: Option<&'a str>,
    pub expires: Duration,
    pub method: Method,
    pub region: &'a str,
    pub access_key: Option<&'a str>,
    pub secret_key: Option<&'a str>,
    pub config: Option<&'a Path>,
}

/// The default worker's S3 endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:29998";

/// Builds the presigned URL of `req`, taking credentials from the flags, else `env`
/// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`), else the config file.
pub fn presign(
    req: &Request<'_>,
    env: impl Fn(&str) -> Option<String>,
    now: SystemTime,
) -> Result<String, PresignError> {
    let object = Object::parse(req.uri)?;
    let config = req
        .config
        .map(|path| Config::load(Some(path), std::env::vars()).map_err(|e| PresignError::Config(e.to_string())))
        .transpose()?;
    let endpoint = match (req.endpoint, &config) {
        (Some(e), _) => parse_endpoint(e)?,
        (None, Some(config)) => endpoint_of(config.s3.addr),
        (None, None) => DEFAULT_ENDPOINT.to_owned(),
    };
    let (access_key, secret_key) = credentials(req, env, config.as_ref())?;
    let url = format!("{endpoint}{}", object.path());
    sign_url(req.method.as_str(), &url, (&access_key, &secret_key), req.region, req.expires, now)
}

/// Presigns `url` (already percent-encoded, no query) for `method`, signing only `host`.
fn sign_url(
    method: &str,
    url: &str,
    (access_key, secret_key): (&str, &str),
    region: &str,
    expires: Duration,
    now: SystemTime,
) -> Result<String, PresignError> {
    let identity = Credentials::new(access_key, secret_key, None, None, "alcove-presign").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    // As for S3: the path is signed as sent (encoded once, `//` and `.` segments kept).
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let sign_error = |e: &dyn std::fmt::Display| PresignError::Sign(e.to_string());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| sign_error(&e))?
        .into();
    let signable = SignableRequest::new(method, url, std::iter::empty(), SignableBody::UnsignedPayload)
        .map_err(|e| sign_error(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| sign_error(&e))?.into_parts();
    let query: Vec<String> = instructions
        .params()
        .iter()
        .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, PATH_AND_SLASH)))
        .collect();
    Ok(format!("{url}?{}", query.join("&")))
}

/// Query values are encoded like path bytes, `/` included (the credential scope has some).
const PATH_AND_SLASH: &AsciiSet = &PATH.add(b'/');

fn credentials(
    req: &Request<'_>,
    env: impl Fn(&str) -> Option<String>,
    config: Option<&Config>,
) -> Result<(String, String), PresignError> {
    if let (Some(ak), Some(sk)) = (req.access_key, req.secret_key) {
        return Ok((ak.to_owned(), sk.to_owned()));
    }
    const AK: &str = "AWS_ACCESS_KEY_ID";
    const SK: &str = "AWS_SECRET_ACCESS_KEY";
    let non_empty = |name| env(name).filter(|v| !v.is_empty());
    match (non_empty(AK), non_empty(SK)) {
        (Some(ak), Some(sk)) => return Ok((ak, sk)),
        (Some(_), None) => return Err(PresignError::HalfEnv(AK, SK)),
        (None, Some(_)) => return Err(PresignError::HalfEnv(SK, AK)),
        (None, None) => {}
    }
    match (config, req.config) {
        (Some(config), Some(path)) => config
            .auth
            .credentials
            .first()
            .map(|c| (c.access_key.clone(), c.secret_key.clone()))
            .ok_or_else(|| PresignError::NoConfigCredentials(path.display().to_string())),
        _ => Err(PresignError::NoCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_expires("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_expires("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_expires("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_expires("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_expires("7d"), Ok(Duration::from_secs(MAX_EXPIRES)));
        assert_eq!(parse_expires("604800"), Ok(Duration::from_secs(MAX_EXPIRES)));
        for bad in ["0", "0s", "", "s", "1x", "-1", "1.5h", "h1", "1h30m", "99999999999999999999d"] {
            assert!(parse_expires(bad).is_err(), "{bad}");
        }
        assert!(parse_expires("8d").unwrap_err().contains("at most 7 days"));
        assert!(parse_expires("604801").unwrap_err().contains("at most 7 days"));
        assert!(parse_expires("0").unwrap_err().contains("at least 1 second"));
    }

    #[test]
    fn objects_and_paths() {
        let o = Object::parse("s3://b/dir/a b+c\u{e9}~.txt").unwrap();
        assert_eq!(o, Object { bucket: "b".into(), key: "dir/a b+c\u{e9}~.txt".into() });
        assert_eq!(o.path(), "/b/dir/a%20b%2Bc%C3%A9~.txt");
        assert!(matches!(Object::parse("s3://b"), Err(PresignError::NoKey(_))));
        assert!(matches!(Object::parse("s3://b/"), Err(PresignError::NoKey(_))));
        assert!(matches!(Object::parse("s3:///k"), Err(PresignError::NoBucket(_))));
        assert!(matches!(Object::parse("http://b/k"), Err(PresignError::NotS3(_))));
        assert!(matches!(Object::parse("s3://a b/k"), Err(PresignError::BadBucket { .. })));
    }

    #[test]
    fn endpoints() {
        assert_eq!(parse_endpoint("http://127.0.0.1:29998/").unwrap(), "http://127.0.0.1:29998");
        assert_eq!(parse_endpoint("https://s3.example.com").unwrap(), "https://s3.example.com");
        for bad in ["127.0.0.1:29998", "ftp://h", "http://h/base", "http://h?x=1", "http://h//"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(endpoint_of("0.0.0.0:9000".parse().unwrap()), "http://127.0.0.1:9000");
        assert_eq!(endpoint_of("[::]:9000".parse().unwrap()), "http://[::1]:9000");
    }

    fn request(uri: &str) -> Request<'_> {
        Request {
            uri,
            endpoint: None,
            expires: Duration::from_secs(86400),
            method: Method::Get,
            region: "us-east-1",
            access_key: Some("AKIAIOSFODNN7EXAMPLE"),
            secret_key: Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            config: None,
        }
    }

    /// AWS's documented presigned-URL example (S3 API reference, "Authenticating Requests:
    /// Using Query Parameters"): same URL, same signature.
    #[test]
    fn matches_the_aws_example() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24T00:00:00Z
        let keys = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let url = "https://examplebucket.s3.amazonaws.com/test.txt";
        let signed = sign_url("GET", url, keys, "us-east-1", Duration::from_secs(86400), now).unwrap();
        let (_, query) = signed.split_once('?').unwrap();
        let mut params: Vec<&str> = query.split('&').collect();
        params.sort_unstable();
        assert_eq!(
            params,
            [
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
                "X-Amz-Date=20130524T000000Z",
                "X-Amz-Expires=86400",
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
                "X-Amz-SignedHeaders=host",
            ]
        );
    }

    /// The path-style URL of the command: endpoint, bucket, encoded key.
    #[test]
    fn builds_path_style_urls() {
        let mut req = request("s3://b/dir/a b+c");
        req.endpoint = Some("http://127.0.0.1:9000/");
        req.method = Method::Put;
        let url = presign(&req, |_| None, SystemTime::now()).unwrap();
        assert!(url.starts_with("http://127.0.0.1:9000/b/dir/a%20b%2Bc?X-Amz-"), "{url}");
        assert!(url.contains("X-Amz-Expires=86400"), "{url}");
    }

    #[test]
    fn credentials_come_from_flags_then_env() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("ENVKEY".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_owned()),
            _ => None,
        };
        let mut req = request("s3://b/k");
        assert_eq!(credentials(&req, env, None).unwrap().0, "AKIAIOSFODNN7EXAMPLE");
        req.access_key = None;
        req.secret_key = None;
        assert_eq!(credentials(&req, env, None).unwrap(), ("ENVKEY".into(), "envsecret".into()));
        assert!(matches!(credentials(&req, |_| None, None), Err(PresignError::NoCredentials)));
        let half = |name: &str| (name == "AWS_ACCESS_KEY_ID").then(|| "K".to_owned());
        assert!(matches!(credentials(&req, half, None), Err(PresignError::HalfEnv(..))));
    }
}
