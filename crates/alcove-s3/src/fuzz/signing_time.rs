//! Signing times ([`crate::signing_time`]): presigned expiry (`X-Amz-Date` + `X-Amz-Expires`,
//! V2 `Expires`) and the `Date` header that stands in for a missing `X-Amz-Date`.

use http::HeaderValue;
use proptest::prelude::*;
use time::OffsetDateTime;

use crate::signing_time::{check_presigned_expiry, date_from_date_header, MAX_PRESIGNED_EXPIRY_SECS};

/// `YYYYMMDDTHHMMSSZ` with the years where arithmetic breaks (the first and the last the time
/// library knows) as likely as ordinary ones.
fn amz_date() -> impl Strategy<Value = String> {
    let year = prop_oneof![Just(9999), Just(0), Just(1970), Just(2026), 0u32..10000];
    (year, 1u32..13, 1u32..32, 0u32..24, 0u32..60, 0u32..60)
        .prop_map(|(y, mo, d, h, mi, s)| format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"))
}

fn expires() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..=MAX_PRESIGNED_EXPIRY_SECS).prop_map(|n| n.to_string()),
        Just(MAX_PRESIGNED_EXPIRY_SECS.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9 +-]{0,25}",
        any::<String>(),
    ]
}

fn now() -> impl Strategy<Value = OffsetDateTime> {
    prop_oneof![
        Just(time::macros::datetime!(2026-01-02 00:00:00 UTC)),
        Just(time::macros::datetime!(9999-12-31 23:59:59 UTC)),
        (0i64..253_402_300_799)
            .prop_map(|t| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)),
    ]
}

fn encode(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

proptest! {
    #![proptest_config(super::config(8192))]

    /// A V4 presigned URL: an expiry outside 0..=604800 (or not a number) is
    /// `AuthorizationQueryParametersError`; otherwise the URL has expired exactly when now is
    /// past its date plus its expiry (worked out in plain integers here).
    #[test]
    fn presigned_v4_expiry(date in amz_date(), expires in expires(), now in now()) {
        let query = format!(
            "X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={}&X-Amz-Expires={}",
            encode(&date),
            encode(&expires)
        );
        let result = check_presigned_expiry(&query, now);
        let seconds = expires.trim().parse::<i64>().ok().filter(|s| (0..=MAX_PRESIGNED_EXPIRY_SECS).contains(s));
        let Some(seconds) = seconds else {
            let refused = result.expect_err("an expiry out of range is refused");
            prop_assert_eq!(refused.code().as_str(), "AuthorizationQueryParametersError");
            return Ok(());
        };
        let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let signed = time::PrimitiveDateTime::parse(&date, format).ok().map(|t| t.assume_utc());
        let expired = signed.is_some_and(|t| i128::from(now.unix_timestamp()) > i128::from(t.unix_timestamp()) + i128::from(seconds));
        match result {
            Ok(()) => prop_assert!(!expired),
            Err(e) => {
                prop_assert!(expired, "refused: {e}");
                prop_assert_eq!(e.code().as_str(), "AccessDenied");
            }
        }
    }

    /// A V2 presigned URL expires at its `Expires` (Unix seconds); anything unparsable is
    /// left to the signature check.
    #[test]
    fn presigned_v2_expiry(expires in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), any::<String>()], now in now()) {
        let query = format!("AWSAccessKeyId=AK&Signature=x&Expires={}", encode(&expires));
        let expired = expires.parse::<i64>().is_ok_and(|at| now.unix_timestamp() > at);
        prop_assert_eq!(check_presigned_expiry(&query, now).is_err(), expired);
    }

    /// Arbitrary queries: no panic.
    #[test]
    fn arbitrary_queries(
        query in super::words(&["X-Amz-Credential=", "X-Amz-Date=", "X-Amz-Expires=", "AWSAccessKeyId=", "Expires=", "99991231T235959Z", "604800", "&"]),
        now in now(),
    ) {
        let _ = check_presigned_expiry(&query, now);
    }

    /// Any `Date` beside a V4 `Authorization`: an `x-amz-date` made from it is well formed and
    /// names the same second.
    #[test]
    fn date_header_stands_in(date in prop_oneof![
        any::<String>(),
        any::<i64>().prop_map(httpdate_of),
        "(Mon|Fri), [0-9]{2} (Jan|Feb|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} (GMT|[+-][0-9]{4})",
    ]) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"));
        let Ok(value) = HeaderValue::from_str(&date) else { return Ok(()) };
        headers.insert(http::header::DATE, value);
        date_from_date_header(&mut headers);
        if let Some(made) = headers.get("x-amz-date") {
            let made = made.to_str().expect("ASCII");
            let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
            prop_assert!(time::PrimitiveDateTime::parse(made, format).is_ok(), "{made}");
        }
    }
}

/// An IMF-fixdate for a Unix time, where one exists.
fn httpdate_of(t: i64) -> String {
    let t = t.rem_euclid(253_402_300_799);
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
        .unwrap_or_default()
}
