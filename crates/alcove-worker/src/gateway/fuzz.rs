//! The gateway's own readers of client headers: a GET's `Range` or `partNumber`
//! ([`super::get::requested_span`]) and UploadPartCopy's `x-amz-copy-source-range`
//! ([`super::copy::copy_source_range`]), against models of RFC 9110 and S3's rules.

use alcove_ufs::{ObjectInfo, ObjectMeta};
use proptest::prelude::*;
use s3s::dto::Range;

use super::copy::copy_source_range;
use super::get::requested_span;

fn object(parts: Vec<u64>) -> ObjectInfo {
    let size = if parts.is_empty() { 0 } else { parts.iter().sum() };
    ObjectInfo {
        size,
        last_modified: time::OffsetDateTime::UNIX_EPOCH,
        etag: String::new(),
        meta: ObjectMeta { parts, ..Default::default() },
    }
}

/// RFC 9110 §14.1.2: `first-last` is satisfiable when first < size (last clamped to the end);
/// `-n` when n > 0 and the object is not empty (its last n bytes, or all of it).
fn model_range(range: &Range, size: u64) -> Option<std::ops::Range<u64>> {
    match *range {
        Range::Int { first, last } => (first < size).then(|| first..last.map_or(size, |l| l.min(size - 1) + 1)),
        Range::Suffix { length } => (length > 0 && size > 0).then(|| size - length.min(size)..size),
    }
}

fn range_header() -> impl Strategy<Value = String> {
    let n = prop_oneof![0u64..20, any::<u64>(), Just(i64::MAX as u64)];
    prop_oneof![
        (n.clone(), proptest::option::of(n.clone()))
            .prop_map(|(a, b)| b.map_or(format!("bytes={a}-"), |b| format!("bytes={a}-{b}"))),
        n.prop_map(|l| format!("bytes=-{l}")),
        "bytes=[0-9+ -]{0,12}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(crate::fuzz::config(32768))]

    /// A Range is served exactly as RFC 9110 says, and a part number names that part's bytes;
    /// both at once is `InvalidRequest`, an unsatisfiable one 416.
    #[test]
    fn read_spans(
        header in proptest::option::of(range_header()),
        part in proptest::option::of(prop_oneof![-2i32..12, any::<i32>()]),
        parts in prop_oneof![Just(vec![]), proptest::collection::vec(0u64..30, 1..8)],
    ) {
        let info = object(parts.clone());
        let range = header.as_deref().and_then(|h| Range::parse(h).ok());
        let result = requested_span(range.as_ref(), part, &info);
        match (range, part) {
            (Some(_), Some(_)) => {
                let refused = result.expect_err("Range and partNumber together");
                prop_assert_eq!(refused.code().as_str(), "InvalidRequest");
            }
            (Some(r), None) => match (result, model_range(&r, info.size)) {
                (Ok(got), want) => prop_assert_eq!(got, want, "{:?} of {} bytes", r, info.size),
                (Err(e), None) => prop_assert_eq!(e.status_code().map(|s| s.as_u16()), Some(416)),
                (Err(e), Some(want)) => prop_assert!(false, "{r:?} of {}: refused ({e}), RFC 9110 serves {want:?}", info.size),
            },
            (None, Some(n)) => {
                let count = parts.len().max(1);
                match result {
                    Ok(Some(span)) => {
                        prop_assert!(n >= 1 && n as usize <= count);
                        let i = n as usize - 1;
                        let start: u64 = parts.iter().take(i).sum();
                        prop_assert_eq!(span, start..start + parts.get(i).copied().unwrap_or(info.size));
                    }
                    Ok(None) => prop_assert!(false, "a part number names bytes"),
                    Err(e) => {
                        prop_assert!(n < 1 || n as usize > count, "part {n} of {count} refused: {e}");
                        prop_assert_eq!(e.status_code().map(|s| s.as_u16()), Some(416));
                    }
                }
            }
            (None, None) => prop_assert_eq!(result.ok(), Some(None)),
        }
    }

    /// `x-amz-copy-source-range`: `bytes=first-last` of decimal digits with first <= last < size;
    /// anything else `InvalidArgument`.
    #[test]
    fn copy_source_ranges(header in range_header(), size in prop_oneof![0u64..40, any::<u64>()]) {
        let model = header.trim().strip_prefix("bytes=").and_then(|r| r.split_once('-')).and_then(|(a, b)| {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            let (a, b) = (digits(a).then(|| a.parse::<u64>().ok()).flatten()?, digits(b).then(|| b.parse::<u64>().ok()).flatten()?);
            (a <= b && b < size).then(|| a..b + 1)
        });
        match copy_source_range(Some(&header), size) {
            Ok(got) => prop_assert_eq!(got, model, "{:?}", header),
            Err(e) => {
                prop_assert!(model.is_none(), "{header:?} refused: {e}");
                prop_assert_eq!(e.code().as_str(), "InvalidArgument");
            }
        }
    }
}

/// What the targets above found, kept as plain regression tests.
#[test]
fn fuzz_findings_stay_fixed() {
    // A suffix range of an empty object was served as an empty 200 instead of 416.
    let empty = object(vec![]);
    let suffix = Range::parse("bytes=-1").expect("a range");
    let e = requested_span(Some(&suffix), None, &empty).expect_err("unsatisfiable");
    assert_eq!((e.code().as_str(), e.status_code().map(|s| s.as_u16())), ("InvalidRange", Some(416)));
    // A signed copy-source range ("+0") was taken.
    assert_eq!(copy_source_range(Some("bytes=+0-0"), 1).expect_err("refused").code().as_str(), "InvalidArgument");
    assert_eq!(copy_source_range(Some("bytes=0-0"), 1).expect("valid"), Some(0..1));
}
