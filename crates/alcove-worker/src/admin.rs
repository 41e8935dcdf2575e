//! The admin port: `/healthz`, `/readyz`, `/metrics`, `/status`, and the mount API used by
//! `alcove mount` (`GET|POST|DELETE /api/v1/mounts`). It binds to loopback by default and has no
//! authentication of its own: expose it only to operators.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use alcove_cache::{CacheStats, ObjectService, TierStats};
use alcove_ufs::{MountEntry, MountTable, UfsError};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use crate::metrics::Metrics;

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 << 10;

pub struct Admin {
    pub mounts: Arc<MountTable>,
    pub objects: Arc<ObjectService>,
    pub metrics: Arc<Metrics>,
    pub ready: AtomicBool,
    pub started: Instant,
    pub s3_addr: Option<SocketAddr>,
    pub auth_mode: String,
}

#[derive(Deserialize)]
struct AddMount {
    path: String,
    ufs: String,
    #[serde(default)]
    options: std::collections::BTreeMap<String, String>,
}

type AdminResponse = Response<Full<Bytes>>;

impl Admin {
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, _remote: SocketAddr) -> AdminResponse {
        let path = req.uri().path().to_owned();
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
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
            (Method::GET, "/status" | "/") => self.status(),
            (Method::GET, "/api/v1/mounts") => json_response(StatusCode::OK, &json!(self.mount_list())),
            (Method::POST, "/api/v1/mounts") => self.add_mount(req).await,
            (Method::DELETE, "/api/v1/mounts") => self.remove_mount(&req),
            _ => json_error(StatusCode::NOT_FOUND, "no such admin endpoint"),
        }
    }

    fn mount_list(&self) -> Vec<serde_json::Value> {
        self.mounts
            .list()
            .into_iter()
            .map(|m| json!({"path": m.path, "ufs": m.ufs, "options": m.options, "from_config": m.from_config}))
            .collect()
    }

    fn status(&self) -> AdminResponse {
        let buckets: Vec<String> = self.mounts.buckets().unwrap_or_default().into_iter().map(|b| b.name).collect();
        json_response(
            StatusCode::OK,
            &json!({
                "version": env!("CARGO_PKG_VERSION"),
                "s3_addr": self.s3_addr.map(|a| a.to_string()),
                "auth_mode": self.auth_mode,
                "uptime_seconds": self.started.elapsed().as_secs(),
                "root": self.mounts.root().display().to_string(),
                "buckets": buckets,
                "mounts": self.mount_list(),
                "cache": self.objects.cache().map(|c| cache_status(&c.stats())),
            }),
        )
    }

    async fn add_mount(&self, req: Request<Incoming>) -> AdminResponse {
        let body = match Limited::new(req.into_body(), MAX_ADMIN_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("cannot read the request: {e}")),
        };
        let add: AddMount = match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(e) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("expected {{\"path\", \"ufs\", \"options\"}}: {e}"),
                )
            }
        };
        let entry = MountEntry { path: add.path, ufs: add.ufs, options: add.options, from_config: false };
        match self.mounts.add(entry) {
            Ok(()) => json_response(StatusCode::CREATED, &json!({"ok": true})),
            Err(e) => ufs_error(e),
        }
    }

    fn remove_mount(&self, req: &Request<Incoming>) -> AdminResponse {
        let path = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|p| p.strip_prefix("path="))
            .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
        let Some(path) = path else { return json_error(StatusCode::BAD_REQUEST, "missing ?path=/bucket") };
        match self.mounts.remove(&path) {
            Ok(()) => json_response(StatusCode::OK, &json!({"ok": true})),
            Err(e) => ufs_error(e),
        }
    }
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

fn ufs_error(e: UfsError) -> AdminResponse {
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

fn text(status: StatusCode, body: &str) -> AdminResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> AdminResponse {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn json_error(status: StatusCode, message: &str) -> AdminResponse {
    json_response(status, &json!({"error": message}))
}
