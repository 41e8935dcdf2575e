//! A small client of the worker's admin API, for `alcove mount` and `alcove status`.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

async fn call(admin: &str, method: Method, path_and_query: &str, body: Option<Value>) -> Result<Value, String> {
    let url = format!("{}{}", admin.trim_end_matches('/'), path_and_query);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .map_err(|e| format!("bad admin URL {url}: {e}"))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("cannot reach the worker's admin port at {admin} ({e}); is `alcove serve` running?"))?;
    let status = resp.status();
    let raw = resp.into_body().collect().await.map_err(|e| format!("reading the answer failed: {e}"))?.to_bytes();
    let value: Value = serde_json::from_slice(&raw).unwrap_or_else(|_| json!({"error": String::from_utf8_lossy(&raw)}));
    if status.is_success() {
        Ok(value)
    } else if status == StatusCode::NOT_FOUND && value.get("error").is_none() {
        Err(format!("{url}: not found"))
    } else {
        Err(value.get("error").and_then(Value::as_str).unwrap_or("request failed").to_owned())
    }
}

pub async fn add_mount(admin: &str, path: &str, ufs: &str, options: BTreeMap<String, String>) -> Result<(), String> {
    call(admin, Method::POST, "/api/v1/mounts", Some(json!({"path": path, "ufs": ufs, "options": options}))).await?;
    Ok(())
}

pub async fn remove_mount(admin: &str, path: &str) -> Result<(), String> {
    let encoded = percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC);
    call(admin, Method::DELETE, &format!("/api/v1/mounts?path={encoded}"), None).await?;
    Ok(())
}

pub async fn list_mounts(admin: &str) -> Result<(), String> {
    let mounts = call(admin, Method::GET, "/api/v1/mounts", None).await?;
    for m in mounts.as_array().into_iter().flatten() {
        let path = m.get("path").and_then(Value::as_str).unwrap_or_default();
        let ufs = m.get("ufs").and_then(Value::as_str).unwrap_or_default();
        let source =
            if m.get("from_config").and_then(Value::as_bool).unwrap_or(false) { "  (config file)" } else { "" };
        // The worker has already replaced secret values with <redacted>.
        let options: Vec<String> = m
            .get("options")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        let options = if options.is_empty() { String::new() } else { format!("  {}", options.join(" ")) };
        println!("{path}  {ufs}{options}{source}");
    }
    Ok(())
}

pub async fn status(admin: &str) -> Result<(), String> {
    let status = call(admin, Method::GET, "/status", None).await?;
    println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
    Ok(())
}
