//! The status page of the admin port (`GET /`): the worker's `/status` document as one
//! server-rendered HTML page, refreshed by the browser every 10 seconds; no script at all.
//!
//! It renders exactly what `/status` reports (so the page, `alcove status` and monitoring read
//! the same figures) and may not gather figures of its own. Every text from the document is
//! HTML-escaped: bucket names, keys and user names come from clients.

use std::fmt::Write as _;

use serde_json::Value;

/// The whole page for the `/status` document `status`.
pub fn render(status: &Value) -> String {
    let mut page = String::with_capacity(16 << 10);
    let me = status.pointer("/cluster/me").and_then(Value::as_str).unwrap_or("this worker");
    let _ = write!(
        page,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="10">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Alcove · {me}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Alcove <small>{version}</small></h1>
"#,
        me = esc(me),
        version = esc(text(status, "/version")),
    );
    overview(&mut page, status);
    requests(&mut page, status);
    cluster(&mut page, status);
    mounts(&mut page, status);
    cache(&mut page, status);
    failures(&mut page, status);
    page.push_str("<footer>Refreshed every 10 s. The same figures as JSON: <a href=\"/status\">/status</a>; for Prometheus: <a href=\"/metrics\">/metrics</a>.</footer>\n</body>\n</html>\n");
    page
}

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:70em;color:#1d2330;padding:0 1em}\
h1 small{font-size:.5em;color:#667}h2{margin-top:1.6em;border-bottom:1px solid #dde;padding-bottom:.2em}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #eef}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.down{color:#b00020}.live{color:#11772d}\
.empty{color:#667;font-style:italic}footer{margin-top:2em;color:#667;font-size:.9em}";

fn overview(page: &mut String, status: &Value) {
    let uptime = status.pointer("/uptime_seconds").and_then(Value::as_u64).unwrap_or(0);
    let rows = [
        ("S3 address", text(status, "/s3_addr").to_owned()),
        ("Auth mode", text(status, "/auth_mode").to_owned()),
        ("Uptime", duration(uptime)),
        ("Local root", text(status, "/root").to_owned()),
        ("Buckets", status.pointer("/buckets").and_then(Value::as_array).map_or(0, Vec::len).to_string()),
    ];
    page.push_str("<h2>Worker</h2>\n<table>\n");
    for (name, value) in rows {
        let _ = writeln!(page, "<tr><th>{name}</th><td>{}</td></tr>", esc(&value));
    }
    page.push_str("</table>\n");
}

fn requests(page: &mut String, status: &Value) {
    let rate = |window: &str| status.pointer(&format!("/requests/per_second_{window}")).and_then(Value::as_f64);
    page.push_str("<h2>Requests</h2>\n<table>\n<tr><th class=\"n\">last 10 s</th><th class=\"n\">last minute</th><th class=\"n\">last 5 minutes</th><th class=\"n\">since start</th></tr>\n<tr>");
    for window in ["10s", "60s", "300s"] {
        let _ = write!(page, "<td class=\"n\">{:.1}/s</td>", rate(window).unwrap_or(0.0));
    }
    let total = status.pointer("/requests/total").and_then(Value::as_u64).unwrap_or(0);
    let _ = writeln!(page, "<td class=\"n\">{total}</td></tr>\n</table>");
}

fn cluster(page: &mut String, status: &Value) {
    let Some(cluster) = status.get("cluster").filter(|c| !c.is_null()) else {
        page.push_str("<h2>Cluster</h2>\n<p class=\"empty\">Not in a cluster: this worker owns every key.</p>\n");
        return;
    };
    let _ = writeln!(
        page,
        "<h2>Cluster</h2>\n<p>{} membership, {} live.</p>\n<table>\n<tr><th>worker</th><th>state</th><th class=\"n\">ring share</th><th>S3</th><th>peer</th></tr>",
        esc(text(cluster, "/membership")),
        cluster.get("live").and_then(Value::as_u64).unwrap_or(0),
    );
    for member in cluster.get("members").and_then(Value::as_array).into_iter().flatten() {
        let state = text(member, "/state");
        let me = if member.get("me").and_then(Value::as_bool) == Some(true) { " (this worker)" } else { "" };
        let share = member.get("share").and_then(Value::as_f64).unwrap_or(0.0);
        let _ = writeln!(
            page,
            "<tr><td>{}{me}</td><td class=\"{}\">{}</td><td class=\"n\">{:.1} %</td><td>{}</td><td>{}</td></tr>",
            esc(text(member, "/id")),
            if state == "live" { "live" } else { "down" },
            esc(state),
            share * 100.0,
            esc(text(member, "/s3")),
            esc(text(member, "/peer")),
        );
    }
    page.push_str("</table>\n");
}

fn mounts(page: &mut String, status: &Value) {
    page.push_str("<h2>Mounts</h2>\n");
    let mounts = status.get("mounts").and_then(Value::as_array).filter(|m| !m.is_empty());
    let Some(mounts) = mounts else {
        page.push_str("<p class=\"empty\">No mounts: the buckets are the folders of the local root.</p>\n");
        return;
    };
    page.push_str("<table>\n<tr><th>bucket</th><th>under-storage</th><th>options</th><th>from</th></tr>\n");
    for mount in mounts {
        // The options as /status gives them: secrets already redacted.
        let options: Vec<String> = mount
            .get("options")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect();
        let from =
            if mount.get("from_config").and_then(Value::as_bool) == Some(true) { "config file" } else { "admin API" };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{from}</td></tr>",
            esc(text(mount, "/path")),
            esc(text(mount, "/ufs")),
            esc(&options.join(" ")),
        );
    }
    page.push_str("</table>\n");
}

fn cache(page: &mut String, status: &Value) {
    page.push_str("<h2>Page cache</h2>\n");
    let Some(cache) = status.get("cache").filter(|c| !c.is_null()) else {
        page.push_str("<p class=\"empty\">No page cache.</p>\n");
        return;
    };
    let ratio = cache.get("hit_ratio").and_then(Value::as_f64);
    let _ = writeln!(
        page,
        "<p>Hit ratio {}: {} hits, {} misses.</p>\n<table>\n<tr><th>tier</th><th class=\"n\">used</th><th class=\"n\">capacity</th><th class=\"n\">pages</th><th class=\"n\">hits</th><th class=\"n\">evictions</th><th>state</th></tr>",
        ratio.map_or_else(|| "–".to_owned(), |r| format!("{:.1} %", r * 100.0)),
        cache.get("hits").and_then(Value::as_u64).unwrap_or(0),
        cache.get("misses").and_then(Value::as_u64).unwrap_or(0),
    );
    for tier in cache.get("tiers").and_then(Value::as_array).into_iter().flatten() {
        let number = |name: &str| tier.get(name).and_then(Value::as_u64).unwrap_or(0);
        let failing = tier.get("failing").and_then(Value::as_bool) == Some(true);
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"{}\">{}</td></tr>",
            esc(text(tier, "/tier")),
            bytes(number("used_bytes")),
            bytes(number("capacity_bytes")),
            number("pages"),
            number("hits"),
            number("evictions"),
            if failing { "down" } else { "live" },
            if failing { "failing: reads go to the under-storage" } else { "ok" },
        );
    }
    page.push_str("</table>\n");
}

fn failures(page: &mut String, status: &Value) {
    page.push_str("<h2>Recent errors</h2>\n");
    let failed = status.pointer("/requests/recent_errors").and_then(Value::as_array).filter(|f| !f.is_empty());
    let Some(failed) = failed else {
        page.push_str("<p class=\"empty\">No failed requests since the start.</p>\n");
        return;
    };
    page.push_str("<table>\n<tr><th>time (UTC)</th><th class=\"n\">status</th><th>request</th><th>user</th><th>request id</th></tr>\n");
    for request in failed {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
            esc(text(request, "/at")),
            request.get("status").and_then(Value::as_u64).unwrap_or(0),
            esc(text(request, "/method")),
            esc(text(request, "/resource")),
            esc(text(request, "/user")),
            esc(text(request, "/request_id")),
        );
    }
    page.push_str("</table>\n");
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn duration(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} min {} s", seconds % 60),
        (0, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_text_is_escaped() {
        let status = json!({
            "version": "0.1.0",
            "requests": {"total": 3, "recent_errors": [
                {"at": "2026-01-01T00:00:00Z", "status": 404, "method": "GET",
                 "resource": "/b/<script>alert(1)</script>", "user": "a\"b", "request_id": "X"}
            ]},
            "mounts": [{"path": "/m", "ufs": "s3://x", "options": {"secret_access_key": "<redacted>"}, "from_config": false}],
        });
        let page = render(&status);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("/b/&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("a&quot;b"));
        assert!(page.contains("secret_access_key=&lt;redacted&gt;"));
        assert!(page.contains("Not in a cluster"));
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(duration(59), "0 min 59 s");
        assert_eq!(duration(3_700), "1 h 1 min");
        assert_eq!(duration(90_000), "1 d 1 h");
    }
}
