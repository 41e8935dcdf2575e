//! The gate on a worker's S3 port: every request passes it before any S3 parsing. It asks the
//! [router](crate::router) for the key's owner and carries the decision out: the request is let
//! through to the local S3 layer, forwarded to the owner's peer port with the answer streamed
//! back (proxy mode), or answered `307 Temporary Redirect` (redirect mode). An owner that cannot
//! be reached gets the client a `503` with `Retry-After` at once, never a hang.
//!
//! It may not look into a request beyond its path; what it forwards, it forwards whole.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use tokio::sync::watch;

use crate::client::{PeerClient, PeerError};
use crate::membership::HEALTH_PATH;
use crate::router::{route, Handoff, Route, Target};
use crate::view::{ClusterView, Member};

/// The body of an answer the gate gives itself: the owner's, streamed, or a short document.
pub type GateBody = Either<Incoming, Full<Bytes>>;

/// How long a redirecting worker trusts what it learnt of an owner's health.
const HEALTH_TTL: Duration = Duration::from_secs(1);
/// How long a health check of an owner may take.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(500);

/// What the gate did with a request.
pub enum Passage {
    /// Serve it here.
    Here(Request<Incoming>),
    /// The gate answered (the owner's answer, a redirect, or 503).
    Answered(Response<GateBody>),
}

/// What the gate did, counted since the worker started.
#[derive(Debug, Default)]
pub struct GateCounters {
    /// Requests forwarded to their owner.
    pub forwarded: AtomicU64,
    /// Forwards that failed (the client got a 503).
    pub forward_failures: AtomicU64,
    /// Requests answered with a redirect to their owner.
    pub redirected: AtomicU64,
    /// Requests served here because their owner failed its health check.
    pub served_for_a_down_owner: AtomicU64,
}

/// Reads what a request names (bucket and key: the worker knows where its clients put them).
pub type TargetOf = Box<dyn Fn(&Request<Incoming>) -> Target + Send + Sync>;

/// The ownership gate of one worker.
pub struct Gate {
    view: watch::Receiver<Arc<ClusterView>>,
    target_of: TargetOf,
    client: PeerClient,
    handoff: Handoff,
    health_check: bool,
    health: Mutex<HashMap<String, (Instant, bool)>>,
    counters: GateCounters,
}

impl Gate {
    pub fn new(
        view: watch::Receiver<Arc<ClusterView>>,
        target_of: TargetOf,
        client: PeerClient,
        handoff: Handoff,
        health_check: bool,
    ) -> Self {
        let (health, counters) = (Mutex::new(HashMap::new()), GateCounters::default());
        Self { view, target_of, client, handoff, health_check, health, counters }
    }

    /// The cluster as this worker sees it now.
    pub fn view(&self) -> Arc<ClusterView> {
        Arc::clone(&self.view.borrow())
    }

    /// A receiver of every new view.
    pub fn watch(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.view.clone()
    }

    pub fn counters(&self) -> &GateCounters {
        &self.counters
    }

    pub fn client(&self) -> &PeerClient {
        &self.client
    }

    /// Lets `req` through, or answers it for its owner.
    pub async fn pass(&self, req: Request<Incoming>) -> Passage {
        let view = self.view();
        let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let target = (self.target_of)(&req);
        match route(&view, self.handoff, &target, &path_and_query) {
            Route::Local => Passage::Here(req),
            Route::Forward(owner) => Passage::Answered(self.forward(owner, req).await),
            Route::Redirect { owner, location } => {
                if self.health_check && !self.is_healthy(owner).await {
                    tracing::warn!(owner = %owner.id, "the owner does not answer its health check: serving here");
                    self.counters.served_for_a_down_owner.fetch_add(1, Relaxed);
                    return Passage::Here(req);
                }
                self.counters.redirected.fetch_add(1, Relaxed);
                Passage::Answered(redirect(&location, owner, req.method()))
            }
        }
    }

    async fn forward(&self, owner: &Member, req: Request<Incoming>) -> Response<GateBody> {
        let method = req.method().clone();
        let req = req.map(|body| body.map_err(Into::into).boxed());
        self.counters.forwarded.fetch_add(1, Relaxed);
        match self.client.forward(owner, req).await {
            Ok(resp) => resp.map(Either::Left),
            Err(e) => {
                self.counters.forward_failures.fetch_add(1, Relaxed);
                tracing::warn!(owner = %owner.id, error = %e, "could not forward a request to its owner");
                unavailable(&e, &method)
            }
        }
    }

    /// Whether `owner` answered a health check within the last second (asked now when the answer
    /// is older).
    async fn is_healthy(&self, owner: &Member) -> bool {
        if let Ok(health) = self.health.lock() {
            if let Some((when, healthy)) = health.get(&owner.id) {
                if when.elapsed() < HEALTH_TTL {
                    return *healthy;
                }
            }
        }
        let healthy = self.client.call(owner, Method::GET, HEALTH_PATH, Bytes::new(), HEALTH_TIMEOUT).await.is_ok();
        if let Ok(mut health) = self.health.lock() {
            health.insert(owner.id.clone(), (Instant::now(), healthy));
        }
        healthy
    }
}

/// `307 Temporary Redirect` to the owner, with AWS's error document.
fn redirect(location: &str, owner: &Member, method: &Method) -> Response<GateBody> {
    let endpoint = owner.s3.split_once("://").map_or(owner.s3.as_str(), |(_, rest)| rest);
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>TemporaryRedirect</Code><Message>Please re-send \
         this request to the specified temporary endpoint. Continue to use the original request endpoint for \
         future requests.</Message><Endpoint>{}</Endpoint></Error>",
        xml_text(endpoint)
    );
    let mut resp = document(StatusCode::TEMPORARY_REDIRECT, xml, method);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// `503 Service Unavailable` with `Retry-After`: the client may try again once the ring has
/// dropped the owner (or it is back).
fn unavailable(e: &PeerError, method: &Method) -> Response<GateBody> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>The worker that \
         owns this key cannot be reached; please retry. ({})</Message></Error>",
        xml_text(&e.to_string())
    );
    let mut resp = document(StatusCode::SERVICE_UNAVAILABLE, xml, method);
    resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

fn document(status: StatusCode, xml: String, method: &Method) -> Response<GateBody> {
    let length = xml.len();
    let body = if method == Method::HEAD { Bytes::new() } else { Bytes::from(xml) };
    let mut resp = Response::new(Either::Right(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(length));
    resp
}

fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
