//! Where a request names its bucket and key ([`crate::host`]): the `Host` header under
//! `s3.domains` and the percent-encoded path.

use proptest::prelude::*;
use s3s::host::S3Host as _;

use crate::host::Addressing;

const DOMAIN: &str = "s3.example.test";

fn addressing() -> Addressing {
    Addressing::new([DOMAIN, "other.internal"]).expect("valid domains")
}

/// Percent-encodes a key the way SDKs do (everything but unreserved characters and `/`).
fn encode_key(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(key, KEEP).to_string()
}

fn bucket() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
}

/// Host headers: names under the domains (any case, with ports), near misses, and junk.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        (bucket(), any::<bool>(), proptest::option::of(any::<u16>())).prop_map(|(b, upper, port)| {
            let d = if upper { DOMAIN.to_ascii_uppercase() } else { DOMAIN.to_owned() };
            port.map_or(format!("{b}.{d}"), |p| format!("{b}.{d}:{p}"))
        }),
        super::words(&[DOMAIN, ".", ":", "[::1]", "127.0.0.1", "é", "S3.EXAMPLE.TEST", "x", "29998", ":"]),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(super::config(8192))]

    /// A path-style request names the bucket and key it was built from, whatever the key holds.
    #[test]
    fn path_style_round_trip(bucket in bucket(), key in any::<String>(), host in proptest::option::of("[0-9.:]{1,20}")) {
        let a = addressing();
        let named = a.bucket_and_key(host.as_deref(), &format!("/{bucket}/{}", encode_key(&key)));
        prop_assert_eq!((named.bucket, named.key, named.in_host), (bucket, key, false));
    }

    /// A virtual-hosted request names the bucket of its Host (lower case) and the whole path.
    #[test]
    fn virtual_host_round_trip(bucket in bucket(), key in any::<String>(), port in proptest::option::of(any::<u16>())) {
        let a = addressing();
        let host = port.map_or(format!("{bucket}.{DOMAIN}"), |p| format!("{bucket}.{}:{p}", DOMAIN.to_uppercase()));
        let named = a.bucket_and_key(Some(&host), &format!("/{}", encode_key(&key)));
        prop_assert_eq!((named.bucket, named.key, named.in_host), (bucket.clone(), key, true));
        let parsed = a.parse_host_header(&host).expect("a host under the domain");
        prop_assert_eq!(parsed.bucket(), Some(bucket.as_str()));
    }

    /// Any Host and any path: no panic; a bucket from the Host sits under a domain and is not
    /// empty, and a bucket from the path holds no '/'.
    #[test]
    fn arbitrary_hosts_and_paths(host in proptest::option::of(host()), path in any::<String>()) {
        let a = addressing();
        let named = a.bucket_and_key(host.as_deref(), &path);
        if named.in_host {
            let lower = host.clone().unwrap_or_default().to_ascii_lowercase();
            prop_assert!(!named.bucket.is_empty());
            let under_a_domain = [DOMAIN, "other.internal"].iter().any(|d| lower.contains(&format!("{}.{d}", named.bucket)));
            prop_assert!(under_a_domain, "{:?} from {:?}", named.bucket, host);
        } else {
            prop_assert!(!named.bucket.contains('/'));
        }
        if let Some(host) = &host {
            let _ = a.parse_host_header(host);
            if let Some(b) = a.bucket_of_host(host) {
                prop_assert!(!b.is_empty());
            }
        }
    }

    /// `s3.domains` as written in a config file: whatever is accepted is a clean domain list.
    #[test]
    fn arbitrary_domain_lists(domains in proptest::collection::vec(host(), 0..4)) {
        if let Ok(a) = Addressing::new(&domains) {
            prop_assert_eq!(a.is_virtual_host_enabled(), !domains.is_empty());
        }
    }
}
