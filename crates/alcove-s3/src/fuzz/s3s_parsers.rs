//! The parsers of s3s that read client headers and paths before the gateway sees a request,
//! through s3s's public API: `Range`, `x-amz-copy-source`, `If-Match`/`If-None-Match`, HTTP
//! dates (`If-Modified-Since`) and path-style bucket/key paths.

use proptest::prelude::*;
use s3s::dto::{CopySource, ETagCondition, Range, Timestamp, TimestampFormat};

fn range_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u64>(), proptest::option::of(any::<u64>())).prop_map(|(a, b)| match b {
            Some(b) => format!("bytes={a}-{b}"),
            None => format!("bytes={a}-"),
        }),
        any::<u64>().prop_map(|n| format!("bytes=-{n}")),
        super::words(&["bytes=", "-", "0", "1", "9223372036854775807", "18446744073709551616", ",", " ", "+"]),
        any::<String>(),
    ]
}

fn key_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), super::words(&["a", "/", "..", ".", "%2F", "%", "?", "versionId=", "é", " ", "+"])]
}

proptest! {
    #![proptest_config(super::config(16384))]

    /// Any `Range` text: no panic; a parsed range prints back to itself, and a satisfiable
    /// span lies inside the object.
    #[test]
    fn ranges(text in range_text(), size in prop_oneof![Just(0u64), 1u64..1 << 40, Just(u64::MAX)]) {
        if let Ok(range) = Range::parse(&text) {
            prop_assert_eq!(Range::parse(&range.to_header_string()).ok(), Some(range));
            if let Ok(span) = range.check(size) {
                prop_assert!(span.start <= span.end && span.end <= size, "{span:?} of {size}");
            }
        }
    }

    /// `x-amz-copy-source`: a bucket and key written the way SDKs write them come back; any
    /// text is parsed or refused without a panic.
    #[test]
    fn copy_sources(
        bucket in "[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]",
        key in key_text(),
        version in proptest::option::of("[A-Za-z0-9._-]{1,20}"),
        junk in prop_oneof![any::<String>(), super::words(&["arn:", "aws", ":s3:", "accesspoint/", "/object/", "?versionId=", "%", "/"])],
    ) {
        let _ = CopySource::parse(&junk);
        let source = CopySource::Bucket { bucket: bucket.clone().into(), key: key.clone().into(), version_id: version.clone().map(Into::into) };
        let written = source.format_to_string();
        if let Ok(CopySource::Bucket { bucket: b, key: k, version_id: v }) = CopySource::parse(&written) {
            prop_assert_eq!((&*b, &*k, v.as_deref()), (bucket.as_str(), key.as_str(), version.as_deref()));
        }
    }

    /// Conditional headers and dates: no panic.
    #[test]
    fn conditions_and_dates(text in prop_oneof![
        any::<String>(),
        super::words(&["\"", "W/", "*", ",", "abc", " ", "GMT", "Mon, ", "01 Jan 2026 ", "00:00:00", "9999"]),
    ]) {
        let _ = ETagCondition::parse_http_header(text.as_bytes());
        let _ = text.parse::<ETagCondition>();
        for format in [TimestampFormat::HttpDate, TimestampFormat::DateTime, TimestampFormat::EpochSeconds] {
            if let Ok(t) = Timestamp::parse(format, &text) {
                let mut out = Vec::new();
                let _ = t.format(format, &mut out);
            }
        }
    }

    /// Path-style paths: a bucket and key come back as written; any path parses or is refused.
    #[test]
    fn paths(bucket in "[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]", key in key_text(), junk in any::<String>()) {
        let _ = s3s::path::parse_path_style(&junk);
        if let Ok(path) = s3s::path::parse_path_style(&format!("/{bucket}/{key}")) {
            if !key.is_empty() {
                prop_assert_eq!(path.as_object(), Some((bucket.as_str(), key.as_str())));
            }
        }
    }
}
