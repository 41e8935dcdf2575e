//! Bucket names and mount paths ([`crate::mount`]) against a plain model of S3's naming rules,
//! and UFS URIs with their options ([`crate::uri::MountSpec`], admin API input).

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::mount::{bucket_of, validate_bucket_name};
use crate::uri::{MountSpec, UfsUri};

/// S3's rules: 3 to 63 of `a-z 0-9 . -`, a letter or digit at both ends, no `..`, not an
/// IPv4 address.
fn model_valid(name: &str) -> bool {
    let chars_ok = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && chars_ok
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.-]{0,70}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "[a-zA-Z0-9._/-]{0,10}",
        any::<String>(),
    ]
}

fn uri() -> impl Strategy<Value = String> {
    let scheme = proptest::sample::select(
        &[
            "file://",
            "s3://",
            "s3a://",
            "gs://",
            "azblob://",
            "abfs://",
            "hdfs://",
            "webhdfs://",
            "swebhdfs://",
            "ftp://",
            "",
            "file:",
        ][..],
    );
    let rest = prop_oneof![
        "[a-z0-9@.:/_-]{0,30}",
        any::<String>(),
        Just("/tmp/../etc".to_owned()),
        Just("fs@acct.dfs.core.windows.net/p".to_owned())
    ];
    prop_oneof![(scheme, rest).prop_map(|(s, r)| format!("{s}{r}")), any::<String>()]
}

fn options() -> impl Strategy<Value = BTreeMap<String, String>> {
    let name = prop_oneof![
        proptest::sample::select(
            &[
                "endpoint",
                "region",
                "timeout",
                "cache",
                "folder_objects",
                "virtual_host_style",
                "allow_anonymous",
                "secret_access_key",
                "account_name",
                "credential",
                "user_name",
                "unknown"
            ][..]
        )
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    let value = prop_oneof!["(true|false|on|off|[0-9]{1,25}|-1|http://127.0.0.1:1)", any::<String>()];
    proptest::collection::btree_map(name, value, 0..5)
}

proptest! {
    #![proptest_config(super::config(16384))]

    #[test]
    fn bucket_names_follow_the_rules(name in name()) {
        prop_assert_eq!(validate_bucket_name(&name).is_ok(), model_valid(&name), "{:?}", name);
        let path = format!("/{name}");
        match bucket_of(&path) {
            Ok(b) => prop_assert_eq!(b, name.as_str()),
            Err(_) => prop_assert!(!model_valid(&name)),
        }
        let _ = bucket_of(&name);
    }

    /// Any URI and options: a spec or an error, never a panic; a local mount is an absolute path.
    #[test]
    fn mount_uris(uri in uri(), options in options()) {
        if let Ok(spec) = MountSpec::parse(&uri, &options) {
            if let UfsUri::Local(dir) = spec.ufs {
                prop_assert!(dir.is_absolute(), "{uri}: {}", dir.display());
            }
        }
    }
}
