//! A raw HTTP/1.1 client for requests that normal clients refuse to send,
//! S3 error-shape checks, and XML helpers for reading response bodies.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------

/// A parsed raw HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// Body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `<Code>` of an S3 error body, if any.
    pub fn error_code(&self) -> Option<String> {
        xml_top(&self.text(), "Code")
    }

    /// Asserts an S3 error response: status, Code, and the presence of
    /// Message/Resource/RequestId plus a matching x-amz-request-id header.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        let body = self.text();
        assert_eq!(xml_top(&body, "Code").as_deref(), Some(code), "error code; body: {body}");
        assert_error_shape(self);
    }
}

/// Collects error responses whose XML shape is checked at the end of a test,
/// so that a missing field does not hide the outcome of later steps.
#[derive(Default)]
pub struct ShapeChecks(Vec<(String, RawResponse)>);

impl ShapeChecks {
    /// Asserts status and code now; remembers the response for [`Self::finish`].
    #[track_caller]
    pub fn check(&mut self, what: &str, r: &RawResponse, status: u16, code: &str) {
        assert_eq!(r.status, status, "{what}: status; body: {}", r.text());
        assert_eq!(r.error_code().as_deref(), Some(code), "{what}: code; body: {}", r.text());
        self.0.push((what.to_owned(), r.clone()));
    }

    /// Asserts the full error shape of every collected response.
    #[track_caller]
    pub fn finish(self) {
        let mut bad = Vec::new();
        for (what, r) in &self.0 {
            if let Err(e) = std::panic::catch_unwind(|| assert_error_shape(r)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                bad.push(format!("{what}: {msg}"));
            }
        }
        assert!(bad.is_empty(), "error responses with a bad shape:\n{}", bad.join("\n"));
    }
}

/// Asserts that an error response has Message, Resource and RequestId and
/// that RequestId equals the x-amz-request-id header.
#[track_caller]
pub fn assert_error_shape(r: &RawResponse) {
    let body = r.text();
    let doc = roxmltree::Document::parse(&body).unwrap_or_else(|e| panic!("error body is not XML ({e}): {body:?}"));
    assert_eq!(doc.root_element().tag_name().name(), "Error", "root element; body: {body}");
    for f in ["Code", "Message", "Resource", "RequestId"] {
        assert!(doc.root_element().children().any(|c| c.tag_name().name() == f), "error XML lacks <{f}>: {body}");
    }
    let rid = xml_top(&body, "RequestId").unwrap_or_default();
    assert!(!rid.is_empty(), "empty RequestId: {body}");
    assert_eq!(r.header("x-amz-request-id"), Some(rid.as_str()), "x-amz-request-id header must equal <RequestId>");
}

/// Sends one HTTP/1.1 request (with `Connection: close`) and reads the full
/// response. `target` is sent verbatim, so it may contain `..`, `%2e` etc.
/// A `Host` header and `Content-Length` (for non-empty bodies, or PUT/POST)
/// are added unless given.
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let length = body.len().to_string();
    let mut all = headers.to_vec();
    if !has("content-length") && !has("transfer-encoding") && (!body.is_empty() || method == "PUT" || method == "POST")
    {
        all.push(("Content-Length", &length));
    }
    raw_request_unframed(addr, method, target, &all, body).await
}

/// [`raw_request`] without the `Content-Length` it adds: the body is framed
/// only as `headers` say (or not at all).
pub async fn raw_request_unframed(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut req = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
    }
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    req.extend_from_slice(body);
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect to S3 port");
        s.write_all(&req).await.expect("write request");
        let mut buf = Vec::new();
        // The server may close early (e.g. after an error); read what there is.
        let _ = s.read_to_end(&mut buf).await;
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(60), fut).await.expect("raw request timed out");
    parse_response(&buf, method == "HEAD")
}

/// `body` for PUT/POST, nothing for other methods.
pub fn body_for<'a>(method: &str, body: &'a [u8]) -> &'a [u8] {
    if method == "PUT" || method == "POST" {
        body
    } else {
        b""
    }
}

/// Parses a complete HTTP/1.1 response (read until EOF).
pub fn parse_response(buf: &[u8], head: bool) -> RawResponse {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {:?}", String::from_utf8_lossy(buf)));
    let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if head {
        // Keep whatever followed the head: a HEAD response must have none.
        rest.to_vec()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    RawResponse { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&data[..pos]).into_owned();
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        data = &data[pos + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

// ---------------------------------------------------------------------------
// XML helpers
// ---------------------------------------------------------------------------

/// Text of the first direct child `<tag>` of the root element.
pub fn xml_top(xml: &str, tag: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.root_element().children().find(|c| c.tag_name().name() == tag).map(|c| c.text().unwrap_or("").to_owned())
}

/// For every direct child `<parent>` of the root, the text of its `<child>`.
pub fn xml_list(xml: &str, parent: &str, child: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml:?}"));
    doc.root_element()
        .children()
        .filter(|c| c.tag_name().name() == parent)
        .filter_map(|p| p.children().find(|c| c.tag_name().name() == child).map(|c| c.text().unwrap_or("").to_owned()))
        .collect()
}

/// Number of direct children `<tag>` of the root element.
pub fn xml_count(xml: &str, tag: &str) -> usize {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml:?}"));
    doc.root_element().children().filter(|c| c.tag_name().name() == tag).count()
}
