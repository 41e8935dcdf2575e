//! Where a request names its bucket: in the path (`/bucket/key`, always understood), or in the
//! `Host` header (`bucket.s3.example.test/key`) when the host ends in one of the configured
//! `s3.domains`. One [`Addressing`] answers for every layer that needs the bucket and key of a
//! request — the ownership gate, the front end's log and checks, and s3s itself (as its
//! [`S3Host`]).
//!
//! Written here rather than taken from s3s's `SingleDomain`/`MultiDomain` because those read any
//! other host that looks like a domain as a bucket name (CNAME style), so `127.0.0.1:29998` or
//! `localhost` would name a bucket and path-style requests to them would break.

use s3s::host::{S3Host, VirtualHost};
use s3s::{s3_error, S3Result};

/// Why `s3.domains` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("s3.domains: {0:?} is not a domain name (letters, digits, '-' and '.', no port)")]
    Invalid(String),
    #[error("s3.domains: {0:?} and {1:?} overlap (one ends with the other)")]
    Overlapping(String, String),
}

/// The request addressing a worker understands.
#[derive(Debug, Clone, Default)]
pub struct Addressing {
    /// Lower-case base domains, e.g. `s3.example.test`.
    domains: Vec<String>,
}

impl Addressing {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(domains: I) -> Result<Self, DomainError> {
        let mut checked: Vec<String> = Vec::new();
        for domain in domains {
            let domain = domain.as_ref().trim().trim_end_matches('.').to_ascii_lowercase();
            let valid = !domain.is_empty()
                && domain
                    .split('.')
                    .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            if !valid {
                return Err(DomainError::Invalid(domain));
            }
            if let Some(other) = checked.iter().find(|o| o.ends_with(&domain) || domain.ends_with(o.as_str())) {
                return Err(DomainError::Overlapping(other.clone(), domain));
            }
            checked.push(domain);
        }
        Ok(Self { domains: checked })
    }

    pub fn is_virtual_host_enabled(&self) -> bool {
        !self.domains.is_empty()
    }

    /// The bucket a `Host` header names, if it is `BUCKET.<one of the domains>[:port]`.
    pub fn bucket_of_host<'a>(&self, host: &'a str) -> Option<&'a str> {
        let name = host_name(host);
        self.domains.iter().find_map(|domain| {
            let split = name.len().checked_sub(domain.len()).filter(|&at| name.is_char_boundary(at))?;
            let (prefix, suffix) = name.split_at(split);
            let bucket = prefix.strip_suffix('.').filter(|_| suffix.eq_ignore_ascii_case(domain))?;
            (!bucket.is_empty()).then_some(bucket)
        })
    }

    /// Bucket and key of a request, percent-decoded; empty strings where it names none (the
    /// service, or a bucket).
    pub fn bucket_and_key(&self, host: Option<&str>, path: &str) -> Addressed {
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
        if let Some(bucket) = host.and_then(|h| self.bucket_of_host(h)) {
            return Addressed { bucket: bucket.to_ascii_lowercase(), key: trimmed.to_owned(), in_host: true };
        }
        let (bucket, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        Addressed { bucket: bucket.to_owned(), key: key.to_owned(), in_host: false }
    }

    /// [`Self::bucket_and_key`] of a request.
    pub fn target<B>(&self, req: &http::Request<B>) -> Addressed {
        let host = req.headers().get(http::header::HOST).and_then(|v| v.to_str().ok());
        let host = host.or_else(|| req.uri().authority().map(|a| a.as_str()));
        self.bucket_and_key(host, req.uri().path())
    }
}

/// What a request names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressed {
    pub bucket: String,
    pub key: String,
    /// The bucket was named by the `Host` header (virtual-hosted style).
    pub in_host: bool,
}

/// The host without its port.
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

impl S3Host for Addressing {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        if host.is_empty() {
            return Err(s3_error!(InvalidRequest, "The Host header is empty."));
        }
        Ok(match self.bucket_of_host(host) {
            Some(bucket) => VirtualHost::new(host).with_bucket(bucket.to_ascii_lowercase()),
            None => VirtualHost::new(host),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_from_the_host_only_under_a_domain() {
        let a = Addressing::new(["S3.Example.Test"]).unwrap();
        assert_eq!(a.bucket_of_host("photos.s3.example.test"), Some("photos"));
        assert_eq!(a.bucket_of_host("photos.s3.example.test:29998"), Some("photos"));
        assert_eq!(a.bucket_of_host("my.dotted.bucket.S3.example.test"), Some("my.dotted.bucket"));
        for not_virtual in [
            "s3.example.test",
            "127.0.0.1:29998",
            "localhost",
            "photos.other.test",
            "xs3.example.test",
            ".s3.example.test",
            "[::1]:29998",
        ] {
            assert_eq!(a.bucket_of_host(not_virtual), None, "{not_virtual}");
        }
        let named = |a: &Addressing, host: Option<&str>, path: &str| {
            let t = a.bucket_and_key(host, path);
            (t.bucket, t.key, t.in_host)
        };
        let photos = Some("photos.s3.example.test");
        assert_eq!(named(&a, photos, "/2024/cat%20x.jpg"), ("photos".into(), "2024/cat x.jpg".into(), true));
        assert_eq!(named(&a, photos, "/"), ("photos".into(), String::new(), true));
        assert_eq!(named(&a, Some("127.0.0.1:29998"), "/b/k"), ("b".into(), "k".into(), false));
        assert_eq!(named(&a, None, "/b"), ("b".into(), String::new(), false));
        assert_eq!(named(&a, None, "/"), (String::new(), String::new(), false));
        assert_eq!(named(&Addressing::default(), photos, "/k"), ("k".into(), String::new(), false));
    }

    #[test]
    fn bad_domains_are_refused() {
        assert!(matches!(Addressing::new(["s3.example.test:80"]), Err(DomainError::Invalid(_))));
        assert!(matches!(Addressing::new(["a..b"]), Err(DomainError::Invalid(_))));
        assert!(matches!(Addressing::new(["example.test", "s3.example.test"]), Err(DomainError::Overlapping(..))));
        assert!(!Addressing::new(Vec::<String>::new()).unwrap().is_virtual_host_enabled());
    }
}
