//! The peer client: requests from this worker to another one's peer port over pooled keep-alive
//! connections, signed with the cluster secret. It forwards clients' requests verbatim (method,
//! path, query, headers — `Host` and `Authorization` included, so the owner checks the client's
//! own signature — and the body, streamed both ways), and makes the workers' own calls (health,
//! mounts, uploads). With a TLS client configuration (`peer.tls`) it calls the peers' ports
//! over TLS (`https://`), checking their certificates against that configuration's roots.
//!
//! It may not look into S3 requests: what it forwards, it forwards whole.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, EXPECT, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;

use crate::peer_auth::{unix_now, ClusterSecret, PEER_HEADER};
use crate::view::Member;

/// A request or response body crossing the peer link.
pub type PeerBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Says which worker sent a peer request (for the receiver's log).
pub const FORWARDED_BY_HEADER: &str = "x-alcove-forwarded-by";

/// Longest answer read from a worker's own call (the peer API answers small JSON documents).
const MAX_CALL_ANSWER: usize = 16 << 20;
/// How long a connection to a peer may take before the peer counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a peer could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("worker {peer} ({addr}) could not be reached: {reason}")]
    Unreachable { peer: String, addr: String, reason: String },
    #[error("worker {peer} did not answer within {0:?}", .timeout)]
    Timeout { peer: String, timeout: Duration },
    #[error("worker {peer} answered {status}: {message}")]
    Refused { peer: String, status: StatusCode, message: String },
    #[error("bad peer address {0}")]
    BadAddress(String),
}

/// Requests to the other workers.
#[derive(Clone)]
pub struct PeerClient {
    http: Connections,
    secret: ClusterSecret,
    me: String,
}

/// The pooled connections to the peers: plain, or TLS with `peer.tls`.
#[derive(Clone)]
enum Connections {
    Plain(Client<HttpConnector, PeerBody>),
    Tls(Client<HttpsConnector<HttpConnector>, PeerBody>),
}

impl Connections {
    fn request(&self, req: Request<PeerBody>) -> ResponseFuture {
        match self {
            Connections::Plain(client) => client.request(req),
            Connections::Tls(client) => client.request(req),
        }
    }

    fn scheme(&self) -> &'static str {
        match self {
            Connections::Plain(_) => "http",
            Connections::Tls(_) => "https",
        }
    }
}

impl PeerClient {
    /// A client calling peers over plain HTTP, or over TLS with `tls`.
    pub fn new(secret: ClusterSecret, me: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(90)).pool_max_idle_per_host(64);
        let http = match tls {
            None => Connections::Plain(builder.build(connector)),
            Some(config) => {
                // The TLS connector is handed https:// URIs, which the plain one refuses by default.
                connector.enforce_http(false);
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(Arc::unwrap_or_clone(config))
                    .https_only()
                    .enable_http1()
                    .wrap_connector(connector);
                Connections::Tls(builder.build(connector))
            }
        };
        Self { http, secret, me: me.to_owned() }
    }

    pub fn secret(&self) -> &ClusterSecret {
        &self.secret
    }

    /// Forwards a client's request to `peer` as it came (hop-by-hop headers aside) and hands back
    /// the peer's answer, its body streaming.
    pub async fn forward(&self, peer: &Member, req: Request<PeerBody>) -> Result<Response<Incoming>, PeerError> {
        let (mut parts, body) = req.into_parts();
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        parts.uri = peer_uri(self.http.scheme(), peer, &path_and_query)?;
        strip_hop_by_hop(&mut parts.headers);
        // The client's `100 Continue` was answered here when its body was first read.
        parts.headers.remove(EXPECT);
        self.sign(&mut parts.headers, parts.method.as_str(), &path_and_query);
        let req = Request::from_parts(parts, body);
        self.http.request(req).await.map_err(|e| unreachable(peer, &e)).map(|mut resp| {
            strip_hop_by_hop(resp.headers_mut());
            resp
        })
    }

    /// One of the workers' own calls: `method path` with `body` (JSON), answered within `timeout`.
    pub async fn call(
        &self,
        peer: &Member,
        method: Method,
        path_and_query: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, PeerError> {
        let mut req = Request::new(Full::new(body).map_err(|never| match never {}).boxed());
        *req.method_mut() = method.clone();
        *req.uri_mut() = peer_uri(self.http.scheme(), peer, path_and_query)?;
        if let Ok(host) = HeaderValue::from_str(&peer.peer) {
            req.headers_mut().insert(HOST, host);
        }
        self.sign(req.headers_mut(), method.as_str(), path_and_query);
        let answer = async {
            let resp = self.http.request(req).await.map_err(|e| unreachable(peer, &e))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_CALL_ANSWER)
                .collect()
                .await
                .map_err(|e| PeerError::Unreachable {
                    peer: peer.id.clone(),
                    addr: peer.peer.clone(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            if !status.is_success() {
                let message = String::from_utf8_lossy(&body).into_owned();
                return Err(PeerError::Refused { peer: peer.id.clone(), status, message });
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| PeerError::Timeout { peer: peer.id.clone(), timeout })?
    }

    fn sign(&self, headers: &mut http::HeaderMap, method: &str, path_and_query: &str) {
        let signature = self.secret.sign(unix_now(), method, path_and_query);
        if let Ok(v) = HeaderValue::from_str(&signature) {
            headers.insert(HeaderName::from_static(PEER_HEADER), v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.me) {
            headers.insert(HeaderName::from_static(FORWARDED_BY_HEADER), v);
        }
    }
}

fn peer_uri(scheme: &str, peer: &Member, path_and_query: &str) -> Result<Uri, PeerError> {
    format!("{scheme}://{}{path_and_query}", peer.peer).parse().map_err(|_| PeerError::BadAddress(peer.peer.clone()))
}

fn unreachable(peer: &Member, e: &hyper_util::client::legacy::Error) -> PeerError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        reason = format!("{reason}: {inner}");
        source = inner.source();
    }
    PeerError::Unreachable { peer: peer.id.clone(), addr: peer.peer.clone(), reason }
}

/// Headers that describe one connection, not the request: never passed on by a proxy (RFC 9110
/// §7.6.1). `Host` is kept: the owner checks the client's signature, which covers it.
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "trailer"] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut headers = http::HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "5"),
            ("host", "h"),
            ("authorization", "a"),
        ] {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "host"]);
    }
}
