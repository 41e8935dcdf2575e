//! A small client of the worker's admin API, for `alcove mount`, `alcove status`, and the
//! streamed answers of `alcove load` and `alcove free`.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use crate::status;

/// Longest line accepted in a streamed answer.
const MAX_LINE: usize = 1 << 20;

/// A worker's admin port: its URL and the token to send, if any.
#[derive(Debug, Clone)]
pub struct AdminPort {
    pub url: String,
    pub token: Option<String>,
}

/// Sends one request; the answer's head, or why the worker could not be reached.
async fn send(
    admin: &AdminPort,
    method: Method,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<Response<Incoming>, String> {
    let url = format!("{}{}", admin.url.trim_end_matches('/'), path_and_query);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut req = Request::builder().method(method).uri(&url).header("content-type", "application/json");
    if let Some(token) = admin.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req.body(Full::new(body)).map_err(|e| format!("bad admin URL {url}: {e}"))?;
    client
        .request(req)
        .await
        .map_err(|e| format!("cannot reach the worker's admin port at {} ({e}); is `alcove serve` running?", admin.url))
}

async fn call(admin: &AdminPort, method: Method, path_and_query: &str, body: Option<Value>) -> Result<Value, String> {
    let resp = send(admin, method, path_and_query, body).await?;
    let status = resp.status();
    let raw = resp.into_body().collect().await.map_err(|e| format!("reading the answer failed: {e}"))?.to_bytes();
    let value: Value = serde_json::from_slice(&raw).unwrap_or_else(|_| json!({"error": String::from_utf8_lossy(&raw)}));
    if status.is_success() {
        Ok(value)
    } else {
        Err(refusal(status, path_and_query, &value))
    }
}

/// The error message of a refused request.
fn refusal(status: StatusCode, path: &str, answer: &Value) -> String {
    match status {
        StatusCode::UNAUTHORIZED => {
            return "the worker's admin port needs a token: pass --admin-token or set ALCOVE_ADMIN_TOKEN".into()
        }
        StatusCode::FORBIDDEN if answer.get("error").and_then(Value::as_str) == Some("the admin token is not valid") => {
            return "the worker refused the admin token (--admin-token or ALCOVE_ADMIN_TOKEN): it is not the worker's admin.token".into()
        }
        _ => {}
    }
    match answer.get("error").and_then(Value::as_str) {
        Some(message) => message.to_owned(),
        None if status == StatusCode::NOT_FOUND => format!("{path}: not found (is the worker older than this CLI?)"),
        None => format!("request failed ({status})"),
    }
}

/// POSTs `body` to an endpoint that answers a stream of lines, and hands each line to `on_line`
/// as it arrives (not waiting for the end of the answer).
pub async fn post_lines(
    admin: &AdminPort,
    path: &str,
    body: Value,
    mut on_line: impl FnMut(&[u8]),
) -> Result<(), String> {
    let resp = send(admin, Method::POST, path, Some(body)).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let raw = body.collect().await.map_err(|e| format!("reading the answer failed: {e}"))?.to_bytes();
        let value: Value =
            serde_json::from_slice(&raw).unwrap_or_else(|_| json!({"error": String::from_utf8_lossy(&raw)}));
        return Err(refusal(status, path, &value));
    }
    let mut lines = Lines::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the worker's answer was cut short: {e}"))?;
        if let Some(data) = frame.data_ref() {
            lines.push(data, &mut on_line)?;
        }
    }
    lines.finish(&mut on_line);
    Ok(())
}

/// Cuts a byte stream into lines, wherever its chunks end.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    fn push(&mut self, chunk: &[u8], on_line: &mut impl FnMut(&[u8])) -> Result<(), String> {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            on_line(&self.pending[start..start + end]);
            start += end + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE {
            return Err(format!("the worker sent a line longer than {MAX_LINE} bytes"));
        }
        Ok(())
    }

    /// The last line, when the stream did not end with a newline.
    fn finish(self, on_line: &mut impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            on_line(&self.pending);
        }
    }
}

pub async fn add_mount(
    admin: &AdminPort,
    path: &str,
    ufs: &str,
    options: BTreeMap<String, String>,
    force: bool,
) -> Result<(), String> {
    let body = json!({"path": path, "ufs": ufs, "options": options, "force": force});
    call(admin, Method::POST, "/api/v1/mounts", Some(body)).await?;
    Ok(())
}

pub async fn remove_mount(admin: &AdminPort, path: &str) -> Result<(), String> {
    let encoded = percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC);
    call(admin, Method::DELETE, &format!("/api/v1/mounts?path={encoded}"), None).await?;
    Ok(())
}

pub async fn list_mounts(admin: &AdminPort) -> Result<(), String> {
    let mounts = call(admin, Method::GET, "/api/v1/mounts", None).await?;
    if mounts.as_array().is_none_or(|m| m.is_empty()) {
        // On standard error, so that the list itself (standard output) stays empty for scripts.
        eprintln!("no mounts: the buckets are the folders of the worker's local root");
    }
    for m in mounts.as_array().into_iter().flatten() {
        println!("{}", status::mount_line(m));
    }
    Ok(())
}

/// Prints `/status`: as text, or as the worker's JSON with `json`.
pub async fn status(admin: &AdminPort, json: bool) -> Result<(), String> {
    let status = call(admin, Method::GET, "/status", None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
    } else {
        print!("{}", status::render(&status));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut seen = Vec::new();
        let mut on_line = |l: &[u8]| seen.push(String::from_utf8_lossy(l).into_owned());
        let mut lines = Lines::default();
        for chunk in chunks {
            lines.push(chunk, &mut on_line).unwrap();
        }
        lines.finish(&mut on_line);
        seen
    }

    #[test]
    fn lines_are_whole_wherever_chunks_end() {
        assert_eq!(split(&[b"{\"a\":1}\n{\"b\"", b":2}\n", b"{\"c\":3}"]), [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
        assert_eq!(split(&[b"x\n\ny\n"]), ["x", "", "y"]);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn endless_lines_are_refused() {
        let mut lines = Lines::default();
        let chunk = vec![b'x'; MAX_LINE + 1];
        assert!(lines.push(&chunk, &mut |_: &[u8]| {}).is_err());
    }
}
