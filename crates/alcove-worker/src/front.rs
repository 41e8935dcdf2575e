//! The S3 front end of a worker: what happens to every request around the s3s service — a
//! request id, the header and body limits ([`crate::limits`]), STS calls (oidc mode), the auth
//! pre-layer (simple mode, bearer tokens), the DeleteObjects integrity check, CORS (preflights
//! and the `Access-Control-*` headers, see [`crate::cors`]), the error document's `Resource` and
//! `RequestId`, metrics and the access log. Plain-HTTP requests under `s3.https_only` are
//! refused here too ([`HttpsRequired`]), so the refusal is logged and shaped like any other error.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use alcove_s3::auth::{claimed_access_key, hoist_presigned_v2_token, make_unsigned, simple_prelayer, Anonymous};
use alcove_s3::body_watch::BodyWatch;
use alcove_s3::cors::CorsRequest;
use alcove_s3::error::take_details;
use alcove_s3::integrity::verify_whole_body;
use alcove_s3::oidc::{bearer_token, OidcVerifier, TokenError};
use alcove_s3::policy::{Identity, ResolvedAction, ResolvedUser};
use alcove_s3::signing_time::check_signing_times;
use alcove_s3::sts::{is_sts_request, Sts};
use alcove_s3::{decorate_error_body, AuthMode, AuthSettings, RequestUser};
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use s3s::service::S3Service;
use s3s::{S3Error, S3ErrorCode};

use crate::attributes_etag::{is_get_object_attributes, unquote_etag};
use crate::config::LogFormat;
use crate::cors::FrontCors;
use crate::limits::RequestLimits;
use crate::metrics::Metrics;
use crate::recent::FailedRequest;
use crate::tls::HttpsRequired;
/// Largest error document rewritten to add Resource and RequestId.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Everything the front end needs, shared by all connections.
pub struct S3Front {
    pub service: S3Service,
    /// Where requests name their bucket (path, or Host under `s3.domains`).
    pub addressing: alcove_s3::Addressing,
    pub auth: AuthSettings,
    /// oidc mode: verifies bearer tokens.
    pub oidc: Option<Arc<OidcVerifier>>,
    /// oidc mode: STS `AssumeRoleWithWebIdentity` on `/`.
    pub sts: Option<Sts>,
    pub access_log_all: Arc<std::sync::atomic::AtomicBool>,
    pub metrics: Arc<Metrics>,
    pub cors: FrontCors,
    /// The access log's format.
    pub log_format: LogFormat,
    /// This worker's id, in a cluster.
    pub worker_id: Option<Arc<str>>,
    pub limits: RequestLimits,
    /// Largest XML body (s3.max_xml_size); s3s has the same limit for the bodies it reads.
    pub max_xml_size: usize,
}

/// Set by the peer port on a request another worker forwarded here (verified): that worker's id.
#[derive(Debug, Clone)]
pub struct ForwardedBy(pub String);

/// What the access log says about one request.
struct AccessRecord {
    request_id: String,
    remote: SocketAddr,
    method: Method,
    /// The S3 action s3s routed the request to, or what the front end answered itself.
    action: String,
    bucket: String,
    key: String,
    user: String,
    status: StatusCode,
    bytes_in: u64,
    started: Instant,
    /// The worker that forwarded the request here, in a cluster.
    via: Option<String>,
}

impl S3Front {
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>, remote: SocketAddr) -> Response<LoggedBody>
    where
        s3s::Body: From<B>,
    {
        let (resp, record) = self.respond(req, remote).await;
        let log = self.access_log_all.load(std::sync::atomic::Ordering::Relaxed)
            || record.status.is_client_error()
            || record.status.is_server_error();
        resp.map(|body| LoggedBody {
            inner: body,
            sent: 0,
            record: Some(record),
            log: log.then(|| AccessLog { format: self.log_format, worker: self.worker_id.clone() }),
            metrics: Arc::clone(&self.metrics),
        })
    }

    /// Everything [`Self::handle`] does but the access log and metrics: the answer, and what the
    /// log says about it.
    async fn respond<B>(&self, req: Request<B>, remote: SocketAddr) -> (Response<s3s::Body>, AccessRecord)
    where
        s3s::Body: From<B>,
    {
        let started = Instant::now();
        let request_id = new_request_id();
        let alcove_s3::Addressed { bucket, key, .. } = self.addressing.target(&req);
        let method = req.method().clone();
        let bytes_in = content_length(req.headers());
        let close_on_error = announces_body(req.headers());
        let close_always = expects_continue_without_body(req.headers());
        let cors_request = CorsRequest::actual(&method, req.headers()).filter(|_| method != Method::OPTIONS);
        let unquote = is_get_object_attributes(&req);
        let section = self.limits.check_header_section(&req);
        let mut req = req.map(s3s::Body::from);
        if close_on_error {
            self.limits.watch_body(&mut req);
        }
        let anonymous = matches!(claimed_access_key(&req), Ok(None));
        if anonymous {
            req.extensions_mut().insert(Anonymous);
        }
        let resolved = ResolvedUser::default();
        req.extensions_mut().insert(resolved.clone());
        let routed = ResolvedAction::default();
        req.extensions_mut().insert(routed.clone());
        let via = req.extensions().get::<ForwardedBy>().map(|f| f.0.clone());
        let https_refusal = req.extensions().get::<HttpsRequired>().map(|h| h.refusal(req.headers()));
        let sts = self.sts.as_ref().filter(|_| bucket.is_empty() && is_sts_request(&req));
        let (user, result) = if let Some(refusal) = https_refusal {
            (String::from("-"), Err(refusal))
        } else if let Err(e) = section {
            (String::from("-"), Err(e))
        } else if let Some(sts) = sts {
            let (resp, user) = sts.handle(req, &request_id).await;
            (user.unwrap_or_else(|| String::from("-")), Ok(resp))
        } else if method == Method::OPTIONS {
            // Browsers send preflights unsigned; s3s would not route them.
            (String::from("-"), self.cors.preflight(&bucket, req.headers()).await)
        } else {
            let authenticated = match check_signing_times(&mut req) {
                Ok(()) => self.authenticate(&mut req, anonymous).await,
                Err(e) => Err(e),
            };
            match authenticated {
                Ok(user) => (user.0.clone(), self.call(req, user, !bucket.is_empty() && !key.is_empty()).await),
                Err(e) => (String::from("-"), Err(e)),
            }
        };
        // The access check knows best who a request ran as, and what it asked for.
        let user = resolved.0.get().cloned().unwrap_or(user);
        let action = match routed.0.get() {
            Some(action) => action.clone(),
            None if sts.is_some() => "AssumeRoleWithWebIdentity".to_owned(),
            None if method == Method::OPTIONS => "PreflightCORS".to_owned(),
            // Refused before s3s routed it: bad credentials, a malformed request, plain HTTP.
            None => "Unrouted".to_owned(),
        };
        let mut resp = result.unwrap_or_else(error_response);
        if unquote {
            resp = unquote_etag(resp).await;
        }
        if let Some(asked) = &cors_request {
            self.cors.decorate(&bucket, asked, resp.headers_mut()).await;
        }
        let resource = resource_of(&bucket, &key);
        // STS errors have a shape of their own, with their request id already in it.
        if (resp.status().is_client_error() || resp.status().is_server_error()) && sts.is_none() {
            resp = decorate(resp, &method, &resource, &request_id).await;
        }
        let failed = resp.status().is_client_error() || resp.status().is_server_error();
        let headers = resp.headers_mut();
        if (failed && close_on_error) || close_always {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amz-request-id", v.clone());
            headers.insert("x-amz-id-2", v);
        }
        let status = resp.status();
        let record =
            AccessRecord { request_id, remote, method, action, bucket, key, user, status, bytes_in, started, via };
        (resp, record)
    }

    /// Finds the user; in simple mode (and for bearer tokens) also turns the request into an
    /// unsigned one, and says who it runs as for the policies.
    async fn authenticate(&self, req: &mut Request<s3s::Body>, anonymous: bool) -> Result<RequestUser, S3Error> {
        match self.auth.mode {
            AuthMode::Simple => {
                let user = simple_prelayer(req, &self.auth)?;
                let identity = if anonymous { Identity::anonymous() } else { Identity::user(user.0.clone()) };
                req.extensions_mut().insert(identity);
                Ok(user)
            }
            AuthMode::Oidc if bearer_token(req).is_some() => self.authenticate_bearer(req).await,
            // s3s verifies the signature; the claimed key is only for the log.
            AuthMode::Sigv4 | AuthMode::Oidc => {
                hoist_presigned_v2_token(req);
                Ok(RequestUser(claimed_access_key(req)?.unwrap_or_else(|| self.auth.anonymous_user.clone())))
            }
        }
    }

    /// `Authorization: Bearer <JWT>`: the token names the user; the request goes on unsigned.
    async fn authenticate_bearer(&self, req: &mut Request<s3s::Body>) -> Result<RequestUser, S3Error> {
        let (Some(oidc), Some(token)) = (&self.oidc, bearer_token(req)) else {
            return Err(S3Error::with_message(S3ErrorCode::InvalidToken, "Bearer tokens are not accepted here."));
        };
        let verified = oidc.verify(token).await.map_err(|e| {
            tracing::info!(error = %e, "refused a bearer token");
            match e {
                TokenError::Expired => {
                    S3Error::with_message(S3ErrorCode::ExpiredToken, "The provided token has expired.")
                }
                TokenError::Invalid(why) => S3Error::with_message(
                    S3ErrorCode::InvalidToken,
                    format!("The provided token is malformed or otherwise invalid: {why}."),
                ),
                TokenError::Provider(why) => S3Error::with_message(
                    S3ErrorCode::ServiceUnavailable,
                    format!("The token cannot be checked now: {why}. Please retry."),
                ),
            }
        })?;
        make_unsigned(req)?;
        let user = RequestUser(verified.user.clone());
        req.extensions_mut().insert(Identity { user: verified.user, groups: verified.groups, anonymous: false });
        Ok(user)
    }

    async fn call(
        &self,
        mut req: Request<s3s::Body>,
        user: RequestUser,
        names_a_key: bool,
    ) -> Result<Response<s3s::Body>, S3Error> {
        check_body_framing(&req, names_a_key)?;
        check_content_md5_given(req.headers())?;
        // Reads never take a body; anything else may (even an empty one can fail its hash).
        let reads = req.method() == Method::GET || req.method() == Method::HEAD;
        if !reads && !carries_object_data(&req, names_a_key) {
            crate::limits::cap_body(&mut req, self.max_xml_size);
        }
        let watch = (!reads).then(|| BodyWatch::install(&mut req));
        let body_failure = || watch.as_ref().and_then(BodyWatch::failure);
        if is_delete_objects(&req) {
            let body = std::mem::take(req.body_mut());
            let bytes = match read_limited(body, self.max_xml_size).await {
                Ok(bytes) => bytes,
                // The body arrived whole, so it was too large.
                Err(_) => return Err(body_failure().unwrap_or_else(|| xml_too_large(self.max_xml_size))),
            };
            verify_whole_body(req.headers(), &bytes)?;
            *req.body_mut() = s3s::Body::from(bytes);
        }
        req.extensions_mut().insert(user);
        let resp = self.service.call(req).await.map_err(|e| {
            tracing::error!(error = ?e, "the S3 service failed");
            S3Error::with_message(S3ErrorCode::InternalError, "We encountered an internal error. Please try again.")
        })?;
        // An error after the body failed is the body's failure (s3s calls a body it could not
        // read an internal error, or a form it could not parse a malformed one): say what it was.
        if resp.status().is_client_error() || resp.status().is_server_error() {
            if let Some(failure) = body_failure() {
                return Err(failure);
            }
        }
        Ok(resp)
    }
}

/// An object upload must say how long its body is: with `Content-Length` or chunked framing.
/// Without either, HTTP reads no body at all, and the object would silently be empty.
fn check_body_framing<B>(req: &Request<B>, names_a_key: bool) -> Result<(), S3Error> {
    let object_write = req.method() == Method::PUT && names_a_key;
    let headers = req.headers();
    let framed = headers.contains_key(CONTENT_LENGTH) || headers.contains_key(TRANSFER_ENCODING);
    if object_write && !framed && !headers.contains_key("x-amz-copy-source") {
        return Err(S3Error::with_message(
            S3ErrorCode::MissingContentLength,
            "You must provide the Content-Length HTTP header (or send the body with chunked transfer encoding).",
        ));
    }
    Ok(())
}

/// Object data (PutObject, UploadPart) may be large; every other body is an XML document read
/// whole, capped by `s3.max_xml_size`. Object-level PUTs with a sub-resource (tagging, acl,
/// retention, legal-hold) carry XML. POST form uploads are not implemented: s3s would read the
/// whole file into memory before saying so, so their bodies are capped too.
fn carries_object_data<B>(req: &Request<B>, names_a_key: bool) -> bool {
    const XML_SUBRESOURCES: [&str; 4] = ["tagging", "acl", "retention", "legal-hold"];
    let query = req.uri().query().unwrap_or_default();
    let sub_resource = query.split('&').any(|p| XML_SUBRESOURCES.contains(&p.split_once('=').map_or(p, |(n, _)| n)));
    req.method() == Method::PUT && names_a_key && !sub_resource
}

/// s3s reads an empty `Content-MD5` as none at all; AWS refuses it, as any other value that is
/// not the base64 of 16 bytes.
fn check_content_md5_given(headers: &http::HeaderMap) -> Result<(), S3Error> {
    match headers.get("content-md5") {
        Some(v) if v.as_bytes().trim_ascii().is_empty() => {
            Err(S3Error::with_message(S3ErrorCode::InvalidDigest, "The Content-MD5 you specified is not valid."))
        }
        _ => Ok(()),
    }
}

/// An error may be sent before the request body was read; the connection then cannot carry
/// another request, and saying so lets clients reconnect instead of failing on a dead socket.
fn announces_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING) || content_length(headers) > 0
}

/// hyper sends `100 Continue` only when a body is read, so an empty body never gets one; some
/// botocore versions then misread the next response on the connection. Closing it is safe.
fn expects_continue_without_body(headers: &http::HeaderMap) -> bool {
    headers.get(EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue")) && !announces_body(headers)
}

fn is_delete_objects<B>(req: &Request<B>) -> bool {
    req.method() == Method::POST
        && req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "delete" || p.starts_with("delete=")))
}

/// `MaxMessageLengthExceeded`, as s3s answers for the XML bodies it reads itself.
fn xml_too_large(limit: usize) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::MaxMessageLengthExceeded,
        format!("Your request was too big: XML bodies may have at most {limit} bytes (s3.max_xml_size)."),
    )
}

async fn read_limited(mut body: s3s::Body, limit: usize) -> Result<Bytes, String> {
    body.store_all_limited(limit).await.map_err(|e| format!("The request body could not be read: {e}"))
}

/// A random id, shaped like AWS's (16 uppercase hex characters).
/// 16 upper-case hex digits, as AWS's: a random start (so ids differ across restarts) plus a
/// counter. A counter rather than a random number per request: getrandom was a syscall per request.
fn new_request_id() -> String {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    let next = NEXT.get_or_init(|| std::sync::atomic::AtomicU64::new(uuid::Uuid::new_v4().as_u64_pair().0));
    format!("{:016X}", next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn content_length(headers: &http::HeaderMap) -> u64 {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    header("x-amz-decoded-content-length").or_else(|| header(CONTENT_LENGTH.as_str())).unwrap_or(0)
}

/// The `Resource` of an error document; control characters (a NUL in a key, say) cannot appear
/// in XML, so they are percent-encoded.
fn resource_of(bucket: &str, key: &str) -> String {
    let path = match (bucket.is_empty(), key.is_empty()) {
        (true, _) => "/".into(),
        (false, true) => format!("/{bucket}"),
        (false, false) => format!("/{bucket}/{key}"),
    };
    percent_encoding::utf8_percent_encode(&path, percent_encoding::CONTROLS).to_string()
}

/// An S3 error document for errors raised before s3s sees the request.
fn error_response(e: S3Error) -> Response<s3s::Body> {
    let status = e.status_code().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>{}</Message></Error>",
        xml_text(e.code().as_str()),
        xml_text(e.message().unwrap_or_default())
    );
    let mut resp = Response::new(s3s::Body::from(xml));
    *resp.status_mut() = status;
    if let Some(headers) = e.headers() {
        resp.headers_mut().extend(headers.clone());
    }
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp
}

fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Adds Resource and RequestId to an error document (HEAD answers carry no body).
async fn decorate(resp: Response<s3s::Body>, method: &Method, resource: &str, request_id: &str) -> Response<s3s::Body> {
    let (mut parts, body) = resp.into_parts();
    let details = take_details(&mut parts.headers);
    if method == Method::HEAD {
        parts.headers.remove(CONTENT_LENGTH);
        return Response::from_parts(parts, s3s::Body::empty());
    }
    let bytes = match read_limited(body, MAX_ERROR_BODY).await {
        Ok(b) => b,
        Err(_) => return Response::from_parts(parts, s3s::Body::empty()),
    };
    let bytes = decorate_error_body(&bytes, resource, request_id, &details).map(Bytes::from).unwrap_or(bytes);
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, s3s::Body::from(bytes))
}

/// A response body that counts what it sends and writes the access-log line and metrics when
/// it ends (or is dropped by a client that went away).
pub struct LoggedBody {
    inner: s3s::Body,
    sent: u64,
    record: Option<AccessRecord>,
    /// Where and how the access-log line goes, when this request gets one.
    log: Option<AccessLog>,
    metrics: Arc<Metrics>,
}

/// The access log's format, and this worker's id in a cluster (the owner that served the request).
struct AccessLog {
    format: LogFormat,
    worker: Option<Arc<str>>,
}

impl AccessLog {
    /// One line: `access key=value …` (text), or a JSON object with the same fields (json).
    fn line(&self, r: &AccessRecord, bytes_out: u64, elapsed: Duration) -> String {
        let duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        match self.format {
            LogFormat::Json => serde_json::json!({
                "timestamp": now_rfc3339(),
                "type": "access",
                "request_id": r.request_id,
                "remote": r.remote.to_string(),
                "method": r.method.as_str(),
                "action": r.action,
                "bucket": r.bucket,
                "key": r.key,
                "status": r.status.as_u16(),
                "bytes_in": r.bytes_in,
                "bytes_out": bytes_out,
                "duration_ms": duration_ms,
                "user": r.user,
                "worker": self.worker.as_deref(),
                "via": r.via,
            })
            .to_string(),
            LogFormat::Text => {
                let mut line = format!(
                    "access request_id={} remote={} method={} action={} bucket={:?} key={:?} status={} bytes_in={} bytes_out={} duration_ms={:.3} user={:?}",
                    r.request_id,
                    r.remote,
                    r.method,
                    r.action,
                    r.bucket,
                    r.key,
                    r.status.as_u16(),
                    r.bytes_in,
                    bytes_out,
                    duration_ms,
                    r.user,
                );
                if let Some(worker) = &self.worker {
                    line.push_str(&format!(" worker={worker:?}"));
                }
                if let Some(via) = &r.via {
                    line.push_str(&format!(" via={via:?}"));
                }
                line
            }
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

impl LoggedBody {
    fn finish(&mut self) {
        let Some(r) = self.record.take() else { return };
        let elapsed = r.started.elapsed();
        self.metrics.observe_request(&r.action, r.status.as_u16(), r.bytes_in, self.sent, elapsed);
        self.metrics.recent.record(r.status.as_u16(), |at| FailedRequest {
            at,
            request_id: r.request_id.clone(),
            method: r.method.to_string(),
            resource: resource_of(&r.bucket, &r.key),
            status: r.status.as_u16(),
            user: r.user.clone(),
        });
        if let Some(log) = &self.log {
            // On stderr without the tracing prefix, so log shippers can match `^access ` (text)
            // or parse every line as JSON (json).
            eprintln!("{}", log.line(&r, self.sent, elapsed));
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_bucket_and_key() {
        assert_eq!(resource_of("b", "k"), "/b/k");
        assert_eq!(resource_of("", ""), "/");
        assert_eq!(resource_of("b", "a\0b"), "/b/a%00b");
    }

    #[test]
    fn delete_objects_is_recognised_by_its_query() {
        let req = |m: Method, uri: &str| Request::builder().method(m).uri(uri).body(()).unwrap();
        assert!(is_delete_objects(&req(Method::POST, "/b?delete")));
        assert!(is_delete_objects(&req(Method::POST, "/b?delete=")));
        assert!(!is_delete_objects(&req(Method::POST, "/b?deleted")));
        assert!(!is_delete_objects(&req(Method::DELETE, "/b/k")));
    }

    #[test]
    fn only_object_data_escapes_the_xml_cap() {
        let req = |m: Method, uri: &str| Request::builder().method(m).uri(uri).body(()).unwrap();
        assert!(carries_object_data(&req(Method::PUT, "/b/k"), true));
        assert!(carries_object_data(&req(Method::PUT, "/b/k?partNumber=1&uploadId=x"), true));
        assert!(!carries_object_data(&req(Method::PUT, "/b/k?tagging"), true));
        assert!(!carries_object_data(&req(Method::PUT, "/b/k?acl="), true));
        assert!(!carries_object_data(&req(Method::PUT, "/b"), false), "CreateBucket's configuration");
        assert!(!carries_object_data(&req(Method::POST, "/b/k?uploadId=x"), true), "CompleteMultipartUpload");
        assert!(!carries_object_data(&req(Method::POST, "/b"), false), "POST form uploads");
    }

    #[test]
    fn request_ids_look_like_aws() {
        let id = new_request_id();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
        assert_ne!(new_request_id(), new_request_id());
    }
}
