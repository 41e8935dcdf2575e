//! The admin port: `/healthz`, `/readyz`, `/metrics`, `/status`, the mount API used by
//! `alcove mount` (`GET|POST|DELETE /api/v1/mounts`) and the cache API used by `alcove load` and
//! `alcove free` (`POST /api/v1/cache/load|free`, answered as a stream of JSON lines). It binds to
//! loopback by default.
//!
//! With a token (`admin.token`, required when the port listens beyond loopback) every endpoint
//! but `/healthz`, `/readyz` and `/metrics` asks for `Authorization: Bearer <token>`: the
//! mutations, and also `/status` and the mount list, which tell local paths, endpoints and the
//! cluster's layout. A missing token is answered 401 (with `WWW-Authenticate: Bearer`), a wrong
//! one 403.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use alcove_cache::{CacheStats, ObjectService, TierStats};
use alcove_ufs::{MountEntry, MountTable, UfsError};
use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::cluster::{ClusterLink, MountShareError};
use crate::config::MembershipMode;
use crate::metrics::Metrics;
use crate::preload::{Action, CacheJob, Event, DEFAULT_PARALLEL, MAX_PARALLEL};
use crate::status_page;

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 << 10;
/// Events of a cache job waiting for a slow client before the job waits too.
const JOB_EVENT_BUFFER: usize = 64;

pub struct Admin {
    pub mounts: Arc<MountTable>,
    pub objects: Arc<ObjectService>,
    pub metrics: Arc<Metrics>,
    pub ready: AtomicBool,
    /// Set on SIGTERM: `/readyz` answers 503 so that load balancers stop sending.
    pub draining: AtomicBool,
    pub started: Instant,
    pub s3_addr: Option<SocketAddr>,
    /// The S3 API's HTTPS port, and whether plain HTTP is refused.
    pub https_addr: Option<SocketAddr>,
    pub https_only: bool,
    pub auth_mode: String,
    pub cluster: Option<Arc<ClusterLink>>,
    /// The bearer token asked of every request but the health and metrics probes; `None`: an
    /// open port (loopback only, checked at start-up).
    pub token: Option<String>,
}

/// Why a request was refused before it reached its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Denied {
    #[error("this admin endpoint needs a token: send Authorization: Bearer <token> (alcove --admin-token or ALCOVE_ADMIN_TOKEN)")]
    Missing,
    #[error("the admin token is not valid")]
    Wrong,
}

#[derive(Deserialize)]
struct AddMount {
    path: String,
    ufs: String,
    #[serde(default)]
    options: std::collections::BTreeMap<String, String>,
    /// Mount even over a folder of the local root, hiding its objects while the mount exists.
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/cache/load|free`: a prefix of a cached bucket.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheJobRequest {
    bucket: String,
    #[serde(default)]
    prefix: String,
    parallel: Option<usize>,
}

/// Answers are whole (`Full`) except the cache API's streams of JSON lines.
pub(crate) type AdminResponse = Response<UnsyncBoxBody<Bytes, Infallible>>;

impl Admin {
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, remote: SocketAddr) -> AdminResponse {
        let path = req.uri().path().to_owned();
        if looks_like_s3(&req) {
            tracing::info!(%remote, method = %req.method(), path = %path, "an S3 request reached the admin port");
            return self.wrong_port(&path);
        }
        let open = req.method() == Method::GET && matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics");
        if !open {
            if let Err(denied) = self.authorize(&req) {
                tracing::warn!(%remote, method = %req.method(), path = %path, reason = %denied, "admin request refused");
                return denied_response(denied);
            }
        }
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
            (Method::GET, "/readyz") if self.draining.load(Ordering::Acquire) => {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            }
            (Method::GET, "/readyz") if self.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
            (Method::GET, "/readyz") => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
            (Method::GET, "/metrics") => {
                let mut r = text(StatusCode::OK, &self.metrics.render());
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                );
                r
            }
            (Method::GET, "/status") => json_response(StatusCode::OK, &self.status()),
            (Method::GET, "/") => html(StatusCode::OK, status_page::render(&self.status())),
            (Method::GET, "/api/v1/mounts") => json_response(StatusCode::OK, &json!(self.mount_list())),
            (Method::POST, "/api/v1/mounts") => self.add_mount(req).await,
            (Method::DELETE, "/api/v1/mounts") => self.remove_mount(&req).await,
            (Method::POST, "/api/v1/cache/load") => self.cache_job(req, Action::Load).await,
            (Method::POST, "/api/v1/cache/free") => self.cache_job(req, Action::Free).await,
            _ => json_error(StatusCode::NOT_FOUND, "no such admin endpoint"),
        }
    }

    /// An S3 client pointed at this port by mistake gets an S3 error it can show, naming the S3
    /// port, rather than a JSON body its XML parser reports as a server fault.
    fn wrong_port(&self, path: &str) -> AdminResponse {
        let target = match self.s3_addr {
            Some(addr) => format!("its S3 port, http://{addr}"),
            None => "its S3 port (s3.addr; the S3 API is disabled on this worker)".to_owned(),
        };
        let message = format!(
            "This is an Alcove worker's admin port (/healthz, /readyz, /metrics, /status, /api/v1); \
             send S3 requests to {target}."
        );
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidRequest</Code><Message>{}</Message>\
             <Resource>{}</Resource></Error>",
            xml_escape(&message),
            xml_escape(path)
        );
        let mut r = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        r
    }

    /// Checks the request's bearer token, when the port has one.
    fn authorize<B>(&self, req: &Request<B>) -> Result<(), Denied> {
        let Some(expected) = &self.token else { return Ok(()) };
        check_bearer(req.headers().get(AUTHORIZATION), expected)
    }

    fn mount_list(&self) -> Vec<serde_json::Value> {
        self.mounts
            .list()
            .into_iter()
            .map(|m| json!({"path": m.path, "ufs": m.ufs, "options": m.options, "from_config": m.from_config}))
            .collect()
    }

    /// The `/status` document: what `alcove status` prints and the status page renders.
    fn status(&self) -> serde_json::Value {
        let buckets: Vec<String> = self.mounts.buckets().unwrap_or_default().into_iter().map(|b| b.name).collect();
        let recent = &self.metrics.recent;
        json!({
                "version": env!("CARGO_PKG_VERSION"),
                "s3_addr": self.s3_addr.map(|a| a.to_string()),
                "s3_https_addr": self.https_addr.map(|a| a.to_string()),
                "https_only": self.https_only,
                "auth_mode": self.auth_mode,
                "uptime_seconds": self.started.elapsed().as_secs(),
                "root": self.mounts.root().display().to_string(),
                "buckets": buckets,
                "mounts": self.mount_list(),
                "cache": self.objects.cache().map(|c| cache_status(&c.stats())),
                "cluster": self.cluster.as_ref().map(|c| cluster_status(c)),
                "requests": {
                    "total": recent.total(),
                    "per_second_10s": recent.rate(10),
                    "per_second_60s": recent.rate(60),
                    "per_second_300s": recent.rate(300),
                    "recent_errors": recent.failures(),
                },
        })
    }

    async fn add_mount(&self, req: Request<Incoming>) -> AdminResponse {
        let add: AddMount = match read_json(req, r#"{"path", "ufs", "options"}"#).await {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        let entry = MountEntry { path: add.path, ufs: add.ufs, options: add.options, from_config: false };
        if let Some(folder) = self.mounts.local_folder_under(&entry.path) {
            if !add.force {
                return json_error(
                    StatusCode::CONFLICT,
                    &format!(
                        "the local root already has a folder '{}', served as a bucket; a mount at {} would hide \
                         its objects until the mount is removed. Rename or remove the folder, or mount with --force",
                        folder.display(),
                        entry.path
                    ),
                );
            }
            tracing::warn!(path = %entry.path, folder = %folder.display(), "mounted over a folder of the local root (force): its objects are hidden while the mount exists");
        }
        if let Err(e) = self.mounts.add(entry.clone()) {
            return ufs_error(e);
        }
        let unreached = match &self.cluster {
            Some(cluster) => match cluster.mount_added(&entry).await {
                Ok(unreached) => unreached,
                Err(e) => {
                    let _ = self.mounts.remove(&entry.path);
                    return share_error(e);
                }
            },
            None => Vec::new(),
        };
        json_response(StatusCode::CREATED, &json!({"ok": true, "workers_not_reached": unreached}))
    }

    async fn remove_mount(&self, req: &Request<Incoming>) -> AdminResponse {
        let path = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|p| p.strip_prefix("path="))
            .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
        let Some(path) = path else { return json_error(StatusCode::BAD_REQUEST, "missing ?path=/bucket") };
        let removed = self.mounts.shared_entries().into_iter().find(|m| m.path == path);
        if let Err(e) = self.mounts.remove(&path) {
            return ufs_error(e);
        }
        let unreached = match &self.cluster {
            Some(cluster) => match cluster.mount_removed(&path).await {
                Ok(unreached) => unreached,
                Err(e) => {
                    if let Some(entry) = removed {
                        let _ = self.mounts.add(entry);
                    }
                    return share_error(e);
                }
            },
            None => Vec::new(),
        };
        json_response(StatusCode::OK, &json!({"ok": true, "workers_not_reached": unreached}))
    }

    /// Starts loading or freeing a prefix of a cached bucket and streams its events as JSON
    /// lines. Refused up front: an unknown bucket (404), a bucket that is not cached and a bad
    /// request (400); everything after that is reported in the stream.
    async fn cache_job(&self, req: Request<Incoming>, action: Action) -> AdminResponse {
        let ask: CacheJobRequest = match read_json(req, r#"{"bucket", "prefix", "parallel"}"#).await {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        let parallel = ask.parallel.unwrap_or(DEFAULT_PARALLEL);
        if !(1..=MAX_PARALLEL).contains(&parallel) {
            return json_error(StatusCode::BAD_REQUEST, &format!("parallel must be between 1 and {MAX_PARALLEL}"));
        }
        let bucket = match self.objects.bucket(&ask.bucket) {
            Ok(b) => b,
            Err(UfsError::NoSuchBucket(_)) => {
                return json_error(StatusCode::NOT_FOUND, &format!("no bucket named '{}'", ask.bucket))
            }
            Err(e) => return ufs_error(e),
        };
        if !bucket.is_cached() {
            let message = format!("the bucket {} is not cached; mount it with cache=on", ask.bucket);
            return json_error(StatusCode::BAD_REQUEST, &message);
        }
        let (events, received) = mpsc::channel(JOB_EVENT_BUFFER);
        let job = CacheJob { action, bucket, prefix: ask.prefix, parallel, cache: self.objects.cache().cloned() };
        tokio::spawn(job.run(events));
        json_lines(received)
    }
}

/// `Authorization: Bearer <token>` against the expected token, compared in constant time.
/// `Bearer <token>` (the CLI, scripts), or `Basic` with the token as the password (any user name),
/// which is what a browser can send for the status page.
fn check_bearer(header: Option<&HeaderValue>, expected: &str) -> Result<(), Denied> {
    let Some(value) = header else { return Err(Denied::Missing) };
    let value = value.as_bytes();
    let Some(scheme_end) = value.iter().position(|&b| b == b' ') else { return Err(Denied::Missing) };
    let (scheme, token) = value.split_at(scheme_end);
    let token = token.trim_ascii();
    let basic_password;
    let token = if scheme.eq_ignore_ascii_case(b"bearer") {
        token
    } else if scheme.eq_ignore_ascii_case(b"basic") {
        let Ok(decoded) = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, token) else {
            return Err(Denied::Wrong);
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else { return Err(Denied::Wrong) };
        basic_password = decoded[colon + 1..].to_vec();
        &basic_password
    } else {
        return Err(Denied::Missing);
    };
    if token.is_empty() {
        return Err(Denied::Missing);
    }
    if constant_time_eq(token, expected.as_bytes()) {
        Ok(())
    } else {
        Err(Denied::Wrong)
    }
}

/// Equal bytes, in a time that depends on the lengths only (never on where they differ).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u64::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// 401 with `WWW-Authenticate: Bearer` for a missing token, 403 for a wrong one.
fn denied_response(denied: Denied) -> AdminResponse {
    match denied {
        Denied::Missing => {
            let mut r = json_error(StatusCode::UNAUTHORIZED, &denied.to_string());
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"alcove-admin\""));
            // Browsers ask for a password on Basic: the status page takes the token as one.
            r.headers_mut().append(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"alcove-admin\""));
            r
        }
        Denied::Wrong => json_error(StatusCode::FORBIDDEN, &denied.to_string()),
    }
}

/// Reads a JSON request body of at most [`MAX_ADMIN_BODY`] bytes; `expected` names its fields in
/// the answer to a body that is not one.
pub(crate) async fn read_json<T: DeserializeOwned>(req: Request<Incoming>, expected: &str) -> Result<T, AdminResponse> {
    let body = match Limited::new(req.into_body(), MAX_ADMIN_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(json_error(StatusCode::BAD_REQUEST, &format!("cannot read the request: {e}"))),
    };
    serde_json::from_slice(&body).map_err(|e| json_error(StatusCode::BAD_REQUEST, &format!("expected {expected}: {e}")))
}

/// A chunked answer with one JSON line per event, each sent as soon as it happens.
fn json_lines(events: mpsc::Receiver<Event>) -> AdminResponse {
    let lines = futures::stream::unfold(events, |mut events| async move {
        let event = events.recv().await?;
        // Serializing plain numbers and strings cannot fail.
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(line))), events))
    });
    let mut r = Response::new(StreamBody::new(lines).boxed_unsync());
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    r
}

/// The cluster as this worker sees it, for `/status` (and `alcove status`): every member, whether
/// it is live, and its share of the keys.
fn cluster_status(cluster: &ClusterLink) -> serde_json::Value {
    let view = cluster.view();
    let share = view.ring.share();
    let members: Vec<serde_json::Value> = view
        .members
        .values()
        .map(|m| {
            let live = view.live.contains(&m.id);
            json!({
                "id": m.id,
                "s3": m.s3,
                "peer": m.peer,
                "state": if live { "live" } else { "down" },
                "share": if live { share } else { 0.0 },
                "me": m.id == view.me,
            })
        })
        .collect();
    json!({
        "me": view.me,
        "membership": match cluster.mode { MembershipMode::Static => "static", MembershipMode::Etcd => "etcd" },
        "live": view.live.len(),
        "members": members,
    })
}

/// The cache's figures for `/status` (and `alcove status`).
fn cache_status(stats: &CacheStats) -> serde_json::Value {
    let tier = |name: String, t: &TierStats| {
        json!({
            "tier": name,
            "path": t.path.as_ref().map(|p| p.display().to_string()),
            "capacity_bytes": t.capacity_bytes,
            "used_bytes": t.used_bytes,
            "pages": t.pages,
            "hits": t.hits,
            "bytes_served": t.bytes_served,
            "evictions": t.evictions,
            "errors": t.errors,
            "corrupt_pages": t.corrupt_pages,
            "failing": t.failing,
        })
    };
    let pages = &stats.pages;
    let tiers: Vec<serde_json::Value> = std::iter::once(tier("memory".into(), &pages.memory))
        .chain(pages.disks.iter().enumerate().map(|(i, d)| tier(format!("disk{i}"), d)))
        .collect();
    let lookups = pages.hits() + pages.misses;
    json!({
        "page_size": pages.page_size,
        "tiers": tiers,
        "hits": pages.hits(),
        "misses": pages.misses,
        "hit_ratio": if lookups == 0 { None } else { Some(pages.hits() as f64 / lookups as f64) },
        "single_flight_joins": pages.single_flight_joins,
        "ufs_reads": stats.ufs_reads,
        "ufs_read_bytes": stats.ufs_read_bytes,
        "read_ahead_pages": stats.read_ahead_pages,
    })
}

/// A mount change the cluster refused (it was undone here).
fn share_error(e: MountShareError) -> AdminResponse {
    let status = match e {
        MountShareError::Exists(_) => StatusCode::CONFLICT,
        MountShareError::Etcd(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    json_error(status, &e.to_string())
}

pub(crate) fn ufs_error(e: UfsError) -> AdminResponse {
    let status = match e {
        UfsError::BucketExists(_) => StatusCode::CONFLICT,
        UfsError::NoSuchBucket(_) => StatusCode::NOT_FOUND,
        UfsError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        UfsError::FsRefused { .. } => StatusCode::FORBIDDEN,
        UfsError::NoSpace { .. } => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let message = match &e {
        UfsError::BucketExists(b) => format!("a bucket or mount named '{b}' already exists"),
        UfsError::NoSuchBucket(b) => format!("no mount named '/{b}'"),
        other => other.to_string(),
    };
    json_error(status, &message)
}

/// An AWS signature (header or query) or an `x-amz-` header: no admin client sends those.
fn looks_like_s3<B>(req: &Request<B>) -> bool {
    let signed = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256") || v.starts_with("AWS "));
    let presigned = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("X-Amz-Signature=") || p.starts_with("Signature=")));
    signed || presigned || req.headers().keys().any(|name| name.as_str().starts_with("x-amz-"))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn html(status: StatusCode, page: String) -> AdminResponse {
    let mut r = Response::new(Full::new(Bytes::from(page)).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    r
}

fn text(status: StatusCode, body: &str) -> AdminResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> AdminResponse {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> AdminResponse {
    json_response(status, &json!({"error": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let expected = "0123456789abcdef";
        let h = |v: &str| HeaderValue::from_str(v).unwrap();
        assert_eq!(check_bearer(None, expected), Err(Denied::Missing));
        assert_eq!(check_bearer(Some(&h("Digest abc")), expected), Err(Denied::Missing));
        assert_eq!(check_bearer(Some(&h("Basic !!")), expected), Err(Denied::Wrong));
        // Basic: any user name, the token as the password (base64 of "ops:0123456789abcdef").
        assert_eq!(check_bearer(Some(&h("Basic b3BzOjAxMjM0NTY3ODlhYmNkZWY=")), expected), Ok(()));
        assert_eq!(check_bearer(Some(&h("Basic b3BzOjAxMjM0NTY3ODlhYmNkZWc=")), expected), Err(Denied::Wrong));
        assert_eq!(check_bearer(Some(&h("Bearer ")), expected), Err(Denied::Missing));
        assert_eq!(check_bearer(Some(&h("Bearer")), expected), Err(Denied::Missing));
        assert_eq!(check_bearer(Some(&h("Bearer 0123456789abcdeF")), expected), Err(Denied::Wrong));
        assert_eq!(check_bearer(Some(&h("Bearer 0123456789abcde")), expected), Err(Denied::Wrong));
        assert_eq!(check_bearer(Some(&h("Bearer 0123456789abcdef0")), expected), Err(Denied::Wrong));
        assert_eq!(check_bearer(Some(&h("Bearer 0123456789abcdef")), expected), Ok(()));
        assert_eq!(check_bearer(Some(&h("bearer  0123456789abcdef ")), expected), Ok(()));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
    }

    #[test]
    fn refusals_are_json_with_a_challenge() {
        let missing = denied_response(Denied::Missing);
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert!(missing.headers()[WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"));
        assert_eq!(missing.headers()[CONTENT_TYPE], "application/json");
        let wrong = denied_response(Denied::Wrong);
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
        assert!(!wrong.headers().contains_key(WWW_AUTHENTICATE));
    }
}
