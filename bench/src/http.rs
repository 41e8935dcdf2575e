//! Plain, unsigned HTTP GET/HEAD of `/{bucket}/{key}` with a keep-alive
//! hyper client: the same requests work against nginx serving the bucket
//! folders as static files and against an S3 server that allows anonymous
//! reads, so the client side is identical for all of them.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::content::{Expected, Verifier};
use crate::driver::Outcome;

/// Keep-alive client.
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A client keeping up to `concurrency` idle connections per host.
pub fn client(concurrency: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(concurrency.max(1)).build(connector)
}

/// Percent-encodes a key for a URL path ('/' kept).
pub fn encode_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `endpoint/bucket/key` (endpoint without trailing slash).
pub fn url(endpoint: &str, bucket: &str, key: &str) -> Result<http::Uri, String> {
    let s = format!("{}/{}/{}", endpoint.trim_end_matches('/'), encode_path(bucket), encode_path(key));
    s.parse().map_err(|e| format!("bad URL {s}: {e}"))
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// GET: status 200, Content-Length and the body's length and CRC32.
pub async fn get(client: &HttpClient, uri: http::Uri, expected: &Expected) -> Outcome {
    let resp = match client.get(uri.clone()).await {
        Ok(r) => r,
        Err(e) => return Outcome::error(format!("GET {uri}: {e:?}")),
    };
    let status = resp.status();
    if let Some(len) = content_length(resp.headers()) {
        if status.is_success() && len != expected.len {
            return Outcome::error(format!("GET {uri}: Content-Length {len} != expected {}", expected.len));
        }
    }
    let mut body = resp.into_body();
    if !status.is_success() {
        let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let text = String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned();
        return Outcome::error(format!("GET {uri}: status {status}: {text}"));
    }
    let mut v = Verifier::new(expected);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    v.update(d);
                }
            }
            Err(e) => return Outcome::error(format!("GET {uri}: body after {} bytes: {e}", v.len())),
        }
    }
    match v.finish() {
        Ok(n) => Outcome::verified(n),
        Err(msg) => Outcome::error(format!("GET {uri}: {msg}")),
    }
}

/// HEAD: status 200 and Content-Length.
pub async fn head(client: &HttpClient, uri: http::Uri, expected: &Expected) -> Outcome {
    let req = match http::Request::head(uri.clone()).body(Empty::new()) {
        Ok(r) => r,
        Err(e) => return Outcome::error(format!("HEAD {uri}: {e}")),
    };
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) => return Outcome::error(format!("HEAD {uri}: {e:?}")),
    };
    if resp.status() != http::StatusCode::OK {
        return Outcome::error(format!("HEAD {uri}: status {}", resp.status()));
    }
    match content_length(resp.headers()) {
        Some(len) if len == expected.len => Outcome::verified(0),
        other => Outcome::error(format!("HEAD {uri}: Content-Length {other:?} != expected {}", expected.len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded() {
        assert_eq!(encode_path("a/b-c_d.e~f/k00000001"), "a/b-c_d.e~f/k00000001");
        assert_eq!(encode_path("a b+c%"), "a%20b%2Bc%25");
        assert_eq!(url("http://127.0.0.1:1/", "bkt", "x y").unwrap().to_string(), "http://127.0.0.1:1/bkt/x%20y");
    }
}
