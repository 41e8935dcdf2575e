//! STS `AssumeRoleWithWebIdentity` on the S3 port (as MinIO serves it): an OIDC token is
//! exchanged for temporary credentials — access key, secret, session token, expiry — that
//! unmodified SDKs then sign requests with (SigV4 with `x-amz-security-token`).
//!
//! The credentials carry their own proof, so any worker of a cluster verifies them without
//! shared state: the access key id is `ASIA` and 16 random characters, its secret is an HMAC of
//! it under the STS key, and the session token is the user, groups, access key and expiry with
//! an HMAC of them (readable, like a JWT, but not forgeable). The STS key is derived from
//! `auth.sts_key`, else from the cluster secret, else made at random when the worker starts.

use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use s3s::{S3Error, S3ErrorCode, S3Result};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::oidc::{OidcVerifier, TokenError, VerifiedToken};
use crate::policy::Identity;

/// How the access key ids of temporary credentials start (as AWS's do).
pub const TEMPORARY_KEY_PREFIX: &str = "ASIA";
/// The only STS API version.
const VERSION: &str = "2011-06-15";
const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// `DurationSeconds`: AWS's bounds for a role session, and its default.
const MIN_DURATION: u64 = 900;
const MAX_DURATION: u64 = 43_200;
const DEFAULT_DURATION: u64 = 3600;
/// The largest STS request body read (AWS allows tokens of 20 000 characters).
const MAX_BODY: usize = 64 << 10;
/// What the session token starts with.
const TOKEN_PREFIX: &str = "alcove1.";

/// The key temporary credentials are made and checked with.
pub struct StsKeys {
    key: hmac::Key,
}

impl std::fmt::Debug for StsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StsKeys(<redacted>)")
    }
}

/// What the session token says, MAC'd.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Session {
    #[serde(rename = "k")]
    access_key: String,
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "g", default)]
    groups: Vec<String>,
    /// Seconds since 1970.
    #[serde(rename = "e")]
    expires: i64,
}

/// Temporary credentials as handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    pub expires: OffsetDateTime,
}

impl StsKeys {
    /// Keys derived from a configured secret (the same on every worker of a cluster).
    pub fn new(secret: &[u8]) -> Self {
        let base = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&base, b"alcove sts key v1");
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    /// Keys of this process alone: its credentials end with it.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        // The system's random source failing leaves nothing sensible to do but stop.
        aws_lc_rs::rand::fill(&mut secret).expect("the system random source failed");
        Self::new(&secret)
    }

    /// Whether `access_key` has the shape of a temporary access key id.
    pub fn is_temporary(access_key: &str) -> bool {
        access_key.len() == 20
            && access_key.starts_with(TEMPORARY_KEY_PREFIX)
            && access_key.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    }

    /// The secret of a temporary access key id.
    pub fn secret_of(&self, access_key: &str) -> String {
        let tag = hmac::sign(&self.key, format!("secret\n{access_key}").as_bytes());
        STANDARD.encode(&tag.as_ref()[..30])
    }

    fn mac(&self, payload: &str) -> hmac::Tag {
        hmac::sign(&self.key, format!("token\n{payload}").as_bytes())
    }

    /// New temporary credentials for `user` (and `groups`), valid until `expires`.
    pub fn issue(&self, user: &str, groups: &[String], expires: OffsetDateTime) -> Issued {
        let mut random = [0u8; 8];
        aws_lc_rs::rand::fill(&mut random).expect("the system random source failed");
        let access_key = format!("{TEMPORARY_KEY_PREFIX}{}", hex::encode_upper(random));
        let session = Session {
            access_key: access_key.clone(),
            user: user.to_owned(),
            groups: groups.to_vec(),
            expires: expires.unix_timestamp(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&session).unwrap_or_default());
        let mac = URL_SAFE_NO_PAD.encode(self.mac(&payload).as_ref());
        Issued {
            secret_key: self.secret_of(&access_key),
            access_key,
            session_token: format!("{TOKEN_PREFIX}{payload}.{mac}"),
            expires,
        }
    }

    /// The identity behind a request signed with the temporary `access_key` (its signature
    /// already verified) and carrying `token`.
    pub fn identity(&self, access_key: &str, token: Option<&str>, now: OffsetDateTime) -> S3Result<Identity> {
        let Some(token) = token else {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records: temporary credentials need \
                 their session token (x-amz-security-token).",
            ));
        };
        let invalid = || {
            S3Error::with_message(S3ErrorCode::InvalidToken, "The provided token is malformed or otherwise invalid.")
        };
        let (payload, mac) = token.strip_prefix(TOKEN_PREFIX).and_then(|t| t.split_once('.')).ok_or_else(invalid)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| invalid())?;
        hmac::verify(&self.key, format!("token\n{payload}").as_bytes(), &mac).map_err(|_| invalid())?;
        let raw = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let session: Session = serde_json::from_slice(&raw).map_err(|_| invalid())?;
        if session.access_key != access_key {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidToken,
                "The provided token does not belong to the access key it was sent with.",
            ));
        }
        if now.unix_timestamp() >= session.expires {
            return Err(S3Error::with_message(S3ErrorCode::ExpiredToken, "The provided token has expired."));
        }
        Ok(Identity { user: session.user, groups: session.groups, anonymous: false })
    }
}

/// The session token of a request: the `x-amz-security-token` header, or the parameter of a
/// presigned URL.
pub fn session_token(headers: &http::HeaderMap, uri: &http::Uri) -> Option<String> {
    if let Some(v) = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    let query = uri.query()?;
    // SigV4 presigned URLs spell it `X-Amz-Security-Token`, SigV2 ones `x-amz-security-token`.
    crate::auth::query_param(query, "X-Amz-Security-Token")
        .or_else(|| crate::auth::query_param(query, "x-amz-security-token"))
}

/// Whether a request to the service root is an STS call (`Action=…` in the query, or a form
/// body POSTed to `/`).
pub fn is_sts_request<B>(req: &Request<B>) -> bool {
    if req.uri().path() != "/" {
        return false;
    }
    let in_query = req.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
    let form = req.method() == Method::POST
        && req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    in_query || form
}

/// An STS error: its code, HTTP status and message, sent as STS's `ErrorResponse`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StsError {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
}

impl StsError {
    fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        Self { code, status, message: message.into() }
    }

    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, StatusCode::BAD_REQUEST, message)
    }
}

impl From<TokenError> for StsError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => {
                Self::bad("ExpiredTokenException", "Token expired: the web identity token has expired.")
            }
            TokenError::Invalid(m) => {
                Self::bad("InvalidIdentityToken", format!("The web identity token is invalid: {m}."))
            }
            TokenError::Provider(m) => Self::bad("IDPCommunicationError", m),
        }
    }
}

/// What an `AssumeRoleWithWebIdentity` call asks for.
#[derive(Debug, PartialEq, Eq)]
struct Call {
    token: String,
    role_arn: String,
    session_name: String,
    duration: u64,
}

impl Call {
    /// Reads and checks the parameters (query and form body together).
    fn parse(params: &[(String, String)]) -> Result<Self, StsError> {
        let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let required = |name: &'static str| {
            get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                StsError::bad("MissingParameter", format!("The request must contain the parameter {name}."))
            })
        };
        let action = required("Action")?;
        if action != "AssumeRoleWithWebIdentity" {
            return Err(StsError::bad(
                "InvalidAction",
                format!("Could not find operation {action} for version {VERSION}: only AssumeRoleWithWebIdentity is served."),
            ));
        }
        if let Some(v) = get("Version").filter(|v| *v != VERSION) {
            return Err(StsError::bad("InvalidAction", format!("Could not find operation {action} for version {v}.")));
        }
        let token = required("WebIdentityToken")?;
        if token.len() < 4 || token.len() > 20_000 {
            return Err(StsError::bad("ValidationError", "WebIdentityToken must be 4 to 20000 characters long."));
        }
        let role_arn = required("RoleArn")?;
        if role_arn.len() > 2048 {
            return Err(StsError::bad("ValidationError", "RoleArn must be at most 2048 characters long."));
        }
        let session_name = required("RoleSessionName")?;
        let name_chars = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        if !(2..=64).contains(&session_name.len()) || !session_name.chars().all(name_chars) {
            return Err(StsError::bad(
                "ValidationError",
                "RoleSessionName must be 2 to 64 characters: letters, digits and _+=,.@-",
            ));
        }
        let duration = match get("DurationSeconds") {
            None => DEFAULT_DURATION,
            Some(v) => {
                v.parse::<u64>().ok().filter(|d| (MIN_DURATION..=MAX_DURATION).contains(d)).ok_or_else(|| {
                    StsError::bad(
                        "ValidationError",
                        format!("DurationSeconds must be a number from {MIN_DURATION} to {MAX_DURATION}, not '{v}'."),
                    )
                })?
            }
        };
        Ok(Self {
            token: token.to_owned(),
            role_arn: role_arn.to_owned(),
            session_name: session_name.to_owned(),
            duration,
        })
    }
}

/// The STS endpoint of a worker.
#[derive(Debug, Clone)]
pub struct Sts {
    pub oidc: Arc<OidcVerifier>,
    pub keys: Arc<StsKeys>,
}

impl Sts {
    /// Answers an STS request: the response, and the user it was for (for the access log).
    pub async fn handle(&self, req: Request<s3s::Body>, request_id: &str) -> (Response<s3s::Body>, Option<String>) {
        match self.assume_role(req).await {
            Ok((xml, user)) => (xml_response(StatusCode::OK, xml, request_id), Some(user)),
            Err(e) => {
                tracing::info!(code = e.code, message = %e.message, "refused an STS request");
                (xml_response(e.status, error_xml(&e, request_id), request_id), None)
            }
        }
    }

    async fn assume_role(&self, req: Request<s3s::Body>) -> Result<(String, String), StsError> {
        let mut params: Vec<(String, String)> = req.uri().query().map(form_pairs).unwrap_or_default();
        let mut body = req.into_body();
        let bytes: Bytes = body.store_all_limited(MAX_BODY).await.map_err(|e| {
            StsError::bad(
                "ValidationError",
                format!("The request body could not be read (at most {MAX_BODY} bytes): {e}"),
            )
        })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| StsError::bad("ValidationError", "The request body is not UTF-8 form data."))?;
        params.extend(form_pairs(text));
        let call = Call::parse(&params)?;
        let verified = self.oidc.verify(&call.token).await?;
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| OffsetDateTime::now_utc());
        let expires = now + time::Duration::seconds(call.duration as i64);
        let issued = self.keys.issue(&verified.user, &verified.groups, expires);
        tracing::info!(user = %verified.user, access_key = %issued.access_key, expires = %expires, "issued temporary credentials");
        Ok((success_xml(&call, &verified, &issued), verified.user))
    }
}

/// `name=value&…` pairs of a query or a form body (`+` is a space there).
fn form_pairs(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn timestamp(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn success_xml(call: &Call, token: &VerifiedToken, issued: &Issued) -> String {
    let role = call.role_arn.rsplit('/').next().filter(|r| !r.is_empty()).unwrap_or("alcove");
    let arn = format!("arn:aws:sts::000000000000:assumed-role/{role}/{}", call.session_name);
    format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"{NAMESPACE}\"><AssumeRoleWithWebIdentityResult>\
         <SubjectFromWebIdentityToken>{subject}</SubjectFromWebIdentityToken>\
         <Audience>{audience}</Audience>\
         <AssumedRoleUser><Arn>{arn}</Arn><AssumedRoleId>{id}:{session}</AssumedRoleId></AssumedRoleUser>\
         <Credentials><AccessKeyId>{ak}</AccessKeyId><SecretAccessKey>{sk}</SecretAccessKey>\
         <SessionToken>{st}</SessionToken><Expiration>{exp}</Expiration></Credentials>\
         <Provider>{provider}</Provider>\
         </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        subject = xml_text(&token.subject),
        audience = xml_text(&token.audience),
        arn = xml_text(&arn),
        id = issued.access_key,
        session = xml_text(&call.session_name),
        ak = issued.access_key,
        sk = xml_text(&issued.secret_key),
        st = xml_text(&issued.session_token),
        exp = timestamp(issued.expires),
        provider = xml_text(&token.issuer),
    )
}

fn error_xml(e: &StsError, request_id: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{}</RequestId></ErrorResponse>",
        e.code,
        xml_text(&e.message),
        xml_text(request_id)
    )
}

fn xml_response(status: StatusCode, xml: String, request_id: &str) -> Response<s3s::Body> {
    let mut resp = Response::new(s3s::Body::from(xml));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn temporary_credentials_verify_anywhere_with_the_same_key() {
        let (here, there) = (StsKeys::new(b"cluster secret"), StsKeys::new(b"cluster secret"));
        let now = OffsetDateTime::now_utc();
        let issued = here.issue("alice", &["staff".into()], now + time::Duration::hours(1));
        assert!(StsKeys::is_temporary(&issued.access_key), "{}", issued.access_key);
        assert_eq!(there.secret_of(&issued.access_key), issued.secret_key);
        assert_eq!(issued.secret_key.len(), 40);
        let who = there.identity(&issued.access_key, Some(&issued.session_token), now).unwrap();
        assert_eq!((who.user.as_str(), who.groups.as_slice()), ("alice", ["staff".to_owned()].as_slice()));

        let code = |r: S3Result<Identity>| r.unwrap_err().code().clone();
        let other = StsKeys::new(b"another secret");
        assert_ne!(other.secret_of(&issued.access_key), issued.secret_key);
        assert_eq!(
            code(other.identity(&issued.access_key, Some(&issued.session_token), now)),
            S3ErrorCode::InvalidToken
        );
        assert_eq!(code(here.identity(&issued.access_key, None, now)), S3ErrorCode::InvalidAccessKeyId);
        let later = now + time::Duration::hours(2);
        assert_eq!(
            code(here.identity(&issued.access_key, Some(&issued.session_token), later)),
            S3ErrorCode::ExpiredToken
        );
        let second = here.issue("bob", &[], now + time::Duration::hours(1));
        assert_eq!(
            code(here.identity(&second.access_key, Some(&issued.session_token), now)),
            S3ErrorCode::InvalidToken
        );
        // A token whose payload was changed (another user) no longer matches its MAC.
        let (payload, mac) = issued.session_token.strip_prefix(TOKEN_PREFIX).unwrap().split_once('.').unwrap();
        let mut session: Session = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        session.user = "admin".into();
        let forged = format!("{TOKEN_PREFIX}{}.{mac}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&session).unwrap()));
        assert_eq!(code(here.identity(&issued.access_key, Some(&forged), now)), S3ErrorCode::InvalidToken);
        for junk in ["", "alcove1.", "alcove1.x.y", "x.y"] {
            assert_eq!(code(here.identity(&issued.access_key, Some(junk), now)), S3ErrorCode::InvalidToken, "{junk}");
        }
    }

    #[test]
    fn temporary_key_ids_have_one_shape() {
        assert!(StsKeys::is_temporary("ASIA0123456789ABCDEF"));
        for not in ["AKIA0123456789ABCDEF", "ASIA0123", "ASIA0123456789abcdef", "asia0123456789ABCDEF"] {
            assert!(!StsKeys::is_temporary(not), "{not}");
        }
    }

    #[test]
    fn calls_are_checked_as_aws_checks_them() {
        let good = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", "arn:aws:iam::123456789012:role/reader"),
            ("RoleSessionName", "app-1"),
            ("WebIdentityToken", "a.b.c"),
        ];
        let call = Call::parse(&pairs(&good)).unwrap();
        assert_eq!((call.duration, call.session_name.as_str()), (3600, "app-1"));
        let with = |name: &str, value: &str| {
            let mut p = pairs(&good);
            p.retain(|(n, _)| n != name);
            if !value.is_empty() {
                p.push((name.to_owned(), value.to_owned()));
            }
            Call::parse(&p).map(|c| c.duration).map_err(|e| e.code)
        };
        assert_eq!(with("DurationSeconds", "900"), Ok(900));
        assert_eq!(with("DurationSeconds", "899"), Err("ValidationError"));
        assert_eq!(with("DurationSeconds", "43201"), Err("ValidationError"));
        assert_eq!(with("DurationSeconds", "1h"), Err("ValidationError"));
        assert_eq!(with("Action", "AssumeRole"), Err("InvalidAction"));
        assert_eq!(with("Action", ""), Err("MissingParameter"));
        assert_eq!(with("Version", "2010-01-01"), Err("InvalidAction"));
        assert_eq!(with("WebIdentityToken", ""), Err("MissingParameter"));
        assert_eq!(with("RoleArn", ""), Err("MissingParameter"));
        assert_eq!(with("RoleSessionName", "a b"), Err("ValidationError"));
        assert_eq!(with("RoleSessionName", "x"), Err("ValidationError"));
    }

    #[test]
    fn sts_requests_are_told_apart_from_s3_ones() {
        let req = |m: Method, uri: &str, ct: Option<&str>| {
            let mut b = Request::builder().method(m).uri(uri);
            if let Some(ct) = ct {
                b = b.header(CONTENT_TYPE, ct);
            }
            b.body(()).unwrap()
        };
        assert!(is_sts_request(&req(Method::POST, "/", Some("application/x-www-form-urlencoded; charset=utf-8"))));
        assert!(is_sts_request(&req(Method::GET, "/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15", None)));
        assert!(!is_sts_request(&req(Method::GET, "/", None)), "ListBuckets");
        assert!(!is_sts_request(&req(Method::POST, "/bucket", Some("application/x-www-form-urlencoded"))));
        assert_eq!(form_pairs("a=b+c&d=%2B&e"), pairs(&[("a", "b c"), ("d", "+"), ("e", "")]));
    }
}
