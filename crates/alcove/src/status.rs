//! `alcove status` and `alcove mount list` as text: the worker, its buckets and mounts, its
//! cluster (members, their state and share of the keys), and the page cache (capacity and usage
//! per tier, hit ratio, evictions) in small tables.
//!
//! It only formats the admin API's JSON it is handed; a field the worker did not send prints as
//! `-`, so an older or newer worker still gets a readable answer.

use std::time::Duration;

use serde_json::Value;

use crate::human;

/// A mount as `alcove mount list` prints it: path, URI, options (secrets were redacted by the
/// worker), and where it came from.
pub fn mount_line(m: &Value) -> String {
    let path = m.get("path").and_then(Value::as_str).unwrap_or_default();
    let ufs = m.get("ufs").and_then(Value::as_str).unwrap_or_default();
    let source = if m.get("from_config").and_then(Value::as_bool).unwrap_or(false) { "  (config file)" } else { "" };
    let options: Vec<String> = m
        .get("options")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let options = if options.is_empty() { String::new() } else { format!("  {}", options.join(" ")) };
    format!("{path}  {ufs}{options}{source}")
}

/// The whole `/status` answer as text.
pub fn render(status: &Value) -> String {
    let text = |field: &str| status.get(field).and_then(Value::as_str).unwrap_or("-").to_owned();
    let uptime = status.get("uptime_seconds").and_then(Value::as_u64).map(Duration::from_secs);
    let buckets: Vec<&str> =
        status.get("buckets").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let mut rows = vec![
        row(&["version", &text("version")]),
        row(&["s3", &format!("{} (auth: {})", text("s3_addr"), text("auth_mode"))]),
        row(&["https", &https_line(status)]),
        row(&["uptime", &uptime.map_or_else(|| "-".to_owned(), human::duration)]),
        row(&["root", &text("root")]),
        row(&["buckets", &if buckets.is_empty() { "none".to_owned() } else { buckets.join(", ") }]),
    ];
    let mounts = status.get("mounts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        rows.push(row(&[if i == 0 { "mounts" } else { "" }, &mount_line(m)]));
    }
    let mut out = human::table(&rows, "");
    match status.get("cluster").filter(|c| !c.is_null()) {
        Some(cluster) => out.push_str(&cluster_text(cluster)),
        None => out.push_str("cluster  none (this worker alone)\n"),
    }
    match status.get("cache").filter(|c| !c.is_null()) {
        Some(cache) => out.push_str(&cache_text(cache)),
        None => out.push_str("cache    none\n"),
    }
    out
}

/// The HTTPS port, and whether the plain-HTTP port refuses S3 requests.
fn https_line(status: &Value) -> String {
    match status.get("s3_https_addr").and_then(Value::as_str) {
        None => "off".to_owned(),
        Some(addr) if status.get("https_only").and_then(Value::as_bool) == Some(true) => {
            format!("{addr} (https only: plain-HTTP S3 requests are refused)")
        }
        Some(addr) => addr.to_owned(),
    }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

fn number(v: &Value, field: &str) -> Option<u64> {
    v.get(field).and_then(Value::as_u64)
}

fn bytes_of(v: &Value, field: &str) -> String {
    number(v, field).map_or_else(|| "-".to_owned(), human::bytes)
}

fn count_of(v: &Value, field: &str) -> String {
    number(v, field).map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// `3 hits`, `1 miss`, `- misses` (not sent).
fn counted(v: &Value, field: &str, singular: &str, plural: &str) -> String {
    number(v, field).map_or_else(|| format!("- {plural}"), |n| human::count(n, singular, plural))
}

/// The cluster section: membership and this worker on one line, then one table row per member.
fn cluster_text(cluster: &Value) -> String {
    let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).unwrap_or("-").to_owned();
    let members = cluster.get("members").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut out = format!(
        "cluster  {} membership, {} of {} live, this worker: {}\n",
        text(cluster, "membership"),
        count_of(cluster, "live"),
        members.len(),
        text(cluster, "me"),
    );
    let mut rows = vec![row(&["member", "state", "share", "s3", "peer"])];
    for m in members {
        let mut id = text(m, "id");
        if m.get("me").and_then(Value::as_bool).unwrap_or(false) {
            id.push_str(" (this)");
        }
        let share = m.get("share").and_then(Value::as_f64).map_or_else(|| "-".to_owned(), human::percent);
        rows.push(vec![id, text(m, "state"), share, text(m, "s3"), text(m, "peer")]);
    }
    out.push_str(&human::table(&rows, "  "));
    out
}

/// The cache section: its figures on two lines, then one table row per tier.
fn cache_text(cache: &Value) -> String {
    let ratio = cache.get("hit_ratio").and_then(Value::as_f64).map_or_else(|| "-".to_owned(), human::percent);
    let mut out = format!(
        "cache    page size {}, hit ratio {ratio} ({}, {})\n",
        bytes_of(cache, "page_size"),
        counted(cache, "hits", "hit", "hits"),
        counted(cache, "misses", "miss", "misses"),
    );
    out.push_str(&format!(
        "         {} ({}), {} read ahead, {}\n",
        counted(cache, "ufs_reads", "UFS read", "UFS reads"),
        bytes_of(cache, "ufs_read_bytes"),
        counted(cache, "read_ahead_pages", "page", "pages"),
        counted(cache, "single_flight_joins", "single-flight join", "single-flight joins"),
    ));
    let mut rows = vec![row(&["tier", "capacity", "used", "pages", "hits", "served", "evictions"])];
    for tier in cache.get("tiers").and_then(Value::as_array).into_iter().flatten() {
        let mut name = tier.get("tier").and_then(Value::as_str).unwrap_or("-").to_owned();
        if tier.get("failing").and_then(Value::as_bool).unwrap_or(false) {
            name.push_str(" (failing)");
        }
        rows.push(vec![
            name,
            bytes_of(tier, "capacity_bytes"),
            bytes_of(tier, "used_bytes"),
            count_of(tier, "pages"),
            count_of(tier, "hits"),
            bytes_of(tier, "bytes_served"),
            count_of(tier, "evictions"),
        ]);
    }
    out.push_str(&human::table(&rows, "  "));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_is_a_readable_table() {
        let status = json!({
            "version": "0.1.0", "s3_addr": "127.0.0.1:29998", "auth_mode": "simple", "uptime_seconds": 125,
            "root": "./alcove-data", "buckets": ["a", "near"],
            "mounts": [{"path": "/near", "ufs": "s3://far", "options": {"endpoint": "http://h"}, "from_config": false}],
            "cache": {
                "page_size": 1048576, "hits": 3, "misses": 1, "hit_ratio": 0.75, "ufs_reads": 1,
                "ufs_read_bytes": 1048576, "read_ahead_pages": 0, "single_flight_joins": 0,
                "tiers": [
                    {"tier": "memory", "capacity_bytes": 67108864, "used_bytes": 1049000, "pages": 1, "hits": 3,
                     "bytes_served": 3145728, "evictions": 0, "failing": false},
                    {"tier": "disk0", "capacity_bytes": 1073741824, "used_bytes": 0, "pages": 0, "hits": 0,
                     "bytes_served": 0, "evictions": 2, "failing": true}
                ]
            }
        });
        let text = render(&status);
        let expected = "\
version  0.1.0
s3       127.0.0.1:29998 (auth: simple)
https    off
uptime   2m05s
root     ./alcove-data
buckets  a, near
mounts   /near  s3://far  endpoint=http://h
cluster  none (this worker alone)
cache    page size 1.0 MiB, hit ratio 75.0% (3 hits, 1 miss)
         1 UFS read (1.0 MiB), 0 pages read ahead, 0 single-flight joins
  tier             capacity  used     pages  hits  served   evictions
  memory           64.0 MiB  1.0 MiB  1      3     3.0 MiB  0
  disk0 (failing)  1.0 GiB   0 B      0      0     0 B      2
";
        assert_eq!(text, expected);
    }

    #[test]
    fn cluster_members_are_listed() {
        let cluster = json!({
            "me": "w1", "membership": "static", "live": 2,
            "members": [
                {"id": "w1", "s3": "http://10.0.0.1:29998", "peer": "10.0.0.1:29999", "state": "live", "share": 0.5, "me": true},
                {"id": "w2", "s3": "http://10.0.0.2:29998", "peer": "10.0.0.2:29999", "state": "live", "share": 0.5, "me": false},
                {"id": "w3", "s3": "http://10.0.0.3:29998", "peer": "10.0.0.3:29999", "state": "down", "share": 0.0, "me": false}
            ]
        });
        let expected = "\
cluster  static membership, 2 of 3 live, this worker: w1
  member     state  share  s3                     peer
  w1 (this)  live   50.0%  http://10.0.0.1:29998  10.0.0.1:29999
  w2         live   50.0%  http://10.0.0.2:29998  10.0.0.2:29999
  w3         down   0.0%   http://10.0.0.3:29998  10.0.0.3:29999
";
        assert_eq!(cluster_text(&cluster), expected);
    }

    #[test]
    fn missing_fields_print_as_dashes() {
        let text = render(&json!({"version": "9"}));
        assert!(text.contains("s3       - (auth: -)"), "{text}");
        assert!(text.contains("https    off"), "{text}");
        let https = render(&json!({"s3_https_addr": "0.0.0.0:29996", "https_only": true}));
        assert!(https.contains("https    0.0.0.0:29996 (https only: plain-HTTP S3 requests are refused)"), "{https}");
        assert!(text.ends_with("cache    none\n"), "{text}");
        let cache = cache_text(&json!({"tiers": [{}]}));
        assert!(cache.contains("hit ratio - (- hits, - misses)"), "{cache}");
    }
}
