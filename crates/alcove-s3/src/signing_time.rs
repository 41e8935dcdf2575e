//! The times a signed request carries, checked the same way in both auth modes before anything
//! else looks at the request:
//!
//! * a presigned URL's `X-Amz-Expires` is a number of seconds from 0 to a week, else
//!   `AuthorizationQueryParametersError` (AWS checks this before the signature);
//! * a presigned URL past its expiry is `AccessDenied` "Request has expired" (V4: `X-Amz-Date`
//!   plus `X-Amz-Expires`; V2: `Expires`), in simple mode too: a shared link must stop working;
//! * `X-Amz-Date` is the request's time; a request signed with `Date` alone gets an
//!   `x-amz-date` made from it, which is what s3s's verification reads. A `Date` beside an
//!   `X-Amz-Date` (empty, stale, unparsable) is ignored, as AWS does.
//!
//! It reads headers and the query only; it never sees a secret.

use http::HeaderValue;
use s3s::{S3Error, S3ErrorCode, S3Result};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The longest a presigned URL may be valid: seven days.
pub const MAX_PRESIGNED_EXPIRY_SECS: i64 = 604_800;

/// Checks a request's signing times as the module doc says.
pub fn check_signing_times<B>(req: &mut http::Request<B>) -> S3Result<()> {
    check_presigned_expiry(req.uri().query().unwrap_or_default(), OffsetDateTime::now_utc())?;
    date_from_date_header(req.headers_mut());
    Ok(())
}

pub(crate) fn check_presigned_expiry(query: &str, now: OffsetDateTime) -> S3Result<()> {
    let param = |name: &str| crate::auth::query_param(query, name);
    if param("X-Amz-Credential").is_some() {
        let Some(expires) = param("X-Amz-Expires") else { return Ok(()) };
        let seconds = presigned_expiry(&expires)?;
        let signed = param("X-Amz-Date").and_then(|d| parse_amz_date(&d));
        // Checked: a date near the end of year 9999 plus a week is past what `time` can hold
        // (such a URL is simply not expired yet).
        let end = signed.map(|t| t.checked_add(time::Duration::seconds(seconds)));
        if end.is_some_and(|end| end.is_some_and(|end| now > end)) {
            return Err(expired());
        }
    } else if param("AWSAccessKeyId").is_some() {
        let expires = param("Expires").and_then(|e| e.parse::<i64>().ok());
        if expires.is_some_and(|at| now.unix_timestamp() > at) {
            return Err(expired());
        }
    }
    Ok(())
}

/// `X-Amz-Expires` in seconds, or AWS's refusal of it.
fn presigned_expiry(value: &str) -> S3Result<i64> {
    let seconds: i64 = value.trim().parse().map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if seconds < 0 {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    if seconds > MAX_PRESIGNED_EXPIRY_SECS {
        return Err(query_error("X-Amz-Expires must be less than a week (in seconds) that is 604800"));
    }
    Ok(seconds)
}

fn expired() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")
}

/// `AuthorizationQueryParametersError` is an AWS code that s3s's generated list lacks.
fn query_error(message: &str) -> S3Error {
    let code = S3ErrorCode::from_bytes(b"AuthorizationQueryParametersError").unwrap_or(S3ErrorCode::InvalidArgument);
    let mut e = S3Error::with_message(code, message.to_owned());
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

/// A V4-signed request without `X-Amz-Date` was signed at its `Date`.
pub(crate) fn date_from_date_header(headers: &mut http::HeaderMap) {
    let v4 = headers.get(http::header::AUTHORIZATION).is_some_and(|v| v.as_bytes().starts_with(b"AWS4-HMAC-SHA256"));
    if !v4 || headers.contains_key("x-amz-date") {
        return;
    }
    let date = headers.get(http::header::DATE).and_then(|v| v.to_str().ok()).and_then(parse_http_date);
    let Some(formatted) = date.and_then(format_amz_date) else { return };
    if let Ok(value) = HeaderValue::from_str(&formatted) {
        headers.insert("x-amz-date", value);
    }
}

/// An HTTP `Date`: IMF-fixdate (`Fri, 02 Jan 2026 03:04:05 GMT`) or the RFC 2822 form some
/// signers write (`Fri, 02 Jan 2026 03:04:05 -0000`, Python's `formatdate`).
fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
        .ok()
        .or_else(|| httpdate::parse_http_date(value).ok().map(OffsetDateTime::from))
}

fn parse_amz_date(value: &str) -> Option<OffsetDateTime> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(value, format).ok().map(PrimitiveDateTime::assume_utc)
}

fn format_amz_date(t: OffsetDateTime) -> Option<String> {
    t.format(format_description!("[year][month][day]T[hour][minute][second]Z")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(amz: &str) -> OffsetDateTime {
        parse_amz_date(amz).unwrap()
    }

    fn code(r: S3Result<()>) -> String {
        r.unwrap_err().code().as_str().to_owned()
    }

    #[test]
    fn presigned_expiry_limits_and_expiry() {
        let now = at("20260102T000000Z");
        let v4 = |date: &str, expires: &str| {
            format!("X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}")
        };
        assert!(check_presigned_expiry(&v4("20260101T230000Z", "3600"), now).is_ok());
        assert_eq!(code(check_presigned_expiry(&v4("20260101T220000Z", "3600"), now)), "AccessDenied");
        assert_eq!(
            code(check_presigned_expiry(&v4("20260101T230000Z", "604801"), now)),
            "AuthorizationQueryParametersError"
        );
        assert_eq!(
            code(check_presigned_expiry(&v4("20260101T230000Z", "-1"), now)),
            "AuthorizationQueryParametersError"
        );
        assert_eq!(
            code(check_presigned_expiry(&v4("20260101T230000Z", "x"), now)),
            "AuthorizationQueryParametersError"
        );
        assert!(check_presigned_expiry(&v4("20260101T230000Z", "604800"), now).is_ok());
        let v2 = |expires: i64| format!("AWSAccessKeyId=AK&Expires={expires}&Signature=x");
        assert!(check_presigned_expiry(&v2(now.unix_timestamp() + 5), now).is_ok());
        assert_eq!(code(check_presigned_expiry(&v2(now.unix_timestamp() - 5), now)), "AccessDenied");
        assert!(check_presigned_expiry("list-type=2", now).is_ok(), "not presigned");
    }

    /// Found by `fuzz::signing_time`: a date at the end of year 9999 plus the expiry overflowed
    /// the time type and panicked the request.
    #[test]
    fn the_last_dates_do_not_overflow() {
        let query =
            "X-Amz-Credential=AK%2F1%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=99991225T000000Z&X-Amz-Expires=604800";
        assert!(check_presigned_expiry(query, at("20260102T000000Z")).is_ok());
        assert!(check_presigned_expiry(query, at("99991231T235959Z")).is_ok());
    }

    #[test]
    fn date_stands_in_for_a_missing_x_amz_date() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"));
        headers.insert(http::header::DATE, HeaderValue::from_static("Fri, 02 Jan 2026 03:04:05 GMT"));
        date_from_date_header(&mut headers);
        assert_eq!(headers["x-amz-date"], "20260102T030405Z");
        headers.remove("x-amz-date");
        headers.insert(http::header::DATE, HeaderValue::from_static("Fri, 02 Jan 2026 03:04:05 -0000"));
        date_from_date_header(&mut headers);
        assert_eq!(headers["x-amz-date"], "20260102T030405Z", "RFC 2822 dates too");
        headers.insert(http::header::DATE, HeaderValue::from_static(""));
        date_from_date_header(&mut headers);
        assert_eq!(headers["x-amz-date"], "20260102T030405Z", "an X-Amz-Date wins");
    }
}
