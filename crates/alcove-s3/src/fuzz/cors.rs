//! Bucket CORS ([`crate::cors`]): origin and header patterns against a brute-force model, and
//! preflight and actual requests with arbitrary `Origin` and `Access-Control-Request-*` values
//! against arbitrary rules.

use alcove_ufs::CorsRule;
use http::header::{ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use s3s::dto::{CORSConfiguration, CORSRule};

use crate::cors::{rules_from_config, wildcard_match, CorsRequest, PreflightError};

/// The pattern matches when some way of cutting `value` into head, middle and tail puts the
/// pattern's text before its first `*` at the head and the rest at the tail (ASCII case
/// ignored); without a `*`, the whole value must be the pattern.
fn model(pattern: &str, value: &str) -> bool {
    let (p, v) = (pattern.to_ascii_lowercase().into_bytes(), value.to_ascii_lowercase().into_bytes());
    let Some(star) = p.iter().position(|&b| b == b'*') else { return p == v };
    let (head, tail) = (&p[..star], &p[star + 1..]);
    (0..=v.len()).any(|i| (i..=v.len()).any(|j| &v[..i] == head && &v[j..] == tail))
}

fn pattern_text() -> impl Strategy<Value = String> {
    super::words(&["*", "https://", "a", "b.", "example.com", "A", "x-amz-", "é", "**", ":"])
}

fn rule() -> impl Strategy<Value = CorsRule> {
    let list = |s: &'static [&'static str]| proptest::collection::vec(super::words(s), 0..4);
    (
        list(&["*", "https://", "a", ".example.com", "*.b"]),
        list(&["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "get"]),
        list(&["*", "x-amz-", "content-type", "a", "**"]),
        list(&["ETag", "x-amz-request-id", "*", "\u{7f}"]),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(|(allowed_origins, allowed_methods, allowed_headers, expose_headers, max_age_seconds)| {
            CorsRule { id: None, allowed_origins, allowed_methods, allowed_headers, expose_headers, max_age_seconds }
        })
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        super::words(&["https://a.example.com", "GET", "PUT", "x-amz-date", ",", " ", "*", "null"])
            .prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..60),
    ]
}

proptest! {
    #![proptest_config(super::config(4096))]

    #[test]
    fn wildcards_agree_with_the_model(pattern in pattern_text(), value in pattern_text()) {
        prop_assert_eq!(wildcard_match(&pattern, &value), model(&pattern, &value), "{:?} vs {:?}", pattern, value);
    }

    /// Arbitrary preflight headers against arbitrary rules: no panic; an allowed preflight
    /// names its origin and only methods of a rule.
    #[test]
    fn preflights(
        origin in proptest::option::of(header_bytes()),
        method in proptest::option::of(header_bytes()),
        requested in proptest::collection::vec(header_bytes(), 0..3),
        rules in proptest::option::of(proptest::collection::vec(rule(), 0..4)),
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in [(ORIGIN, origin), (ACCESS_CONTROL_REQUEST_METHOD, method)] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
                headers.insert(name, v);
            }
        }
        for r in requested {
            if let Ok(v) = HeaderValue::from_bytes(&r) {
                headers.append(ACCESS_CONTROL_REQUEST_HEADERS, v);
            }
        }
        match CorsRequest::preflight(&headers) {
            Ok(asked) => match asked.answer_preflight(rules.as_deref()) {
                Ok(answer) => {
                    let rules = rules.unwrap_or_default();
                    prop_assert!(rules.iter().any(|r| r.allowed_methods.contains(&asked.method)));
                    let allowed = answer.get(http::header::ACCESS_CONTROL_ALLOW_ORIGIN).map(|v| v.to_str().unwrap_or_default());
                    prop_assert!(allowed == Some("*") || allowed == Some(asked.origin.as_str()), "{allowed:?}");
                }
                Err(e) => prop_assert_eq!(e, PreflightError::Forbidden),
            },
            Err(e) => prop_assert!(matches!(e, PreflightError::MissingOrigin | PreflightError::MissingMethod)),
        }
        if let Some(asked) = CorsRequest::actual(&Method::GET, &headers) {
            let _ = asked.answer_actual(&[]);
        }
    }

    /// PutBucketCors' checks: accepted rules follow AWS's (a method from the five, at most one
    /// `*` per origin and allowed header, none in exposed headers, 1..=100 rules).
    #[test]
    fn configurations(rules in proptest::collection::vec(rule(), 0..6)) {
        let dto: Vec<CORSRule> = crate::cors::rules_to_dto(rules);
        if let Ok(accepted) = rules_from_config(CORSConfiguration { cors_rules: dto }) {
            prop_assert!(!accepted.is_empty() && accepted.len() <= crate::cors::MAX_RULES);
            for r in &accepted {
                prop_assert!(!r.allowed_origins.is_empty() && !r.allowed_methods.is_empty());
                prop_assert!(r.allowed_methods.iter().all(|m| ["GET", "PUT", "POST", "DELETE", "HEAD"].contains(&m.as_str())));
                prop_assert!(r.allowed_origins.iter().chain(&r.allowed_headers).all(|p| p.matches('*').count() <= 1));
                prop_assert!(r.expose_headers.iter().all(|h| !h.contains('*')));
            }
        }
    }
}
