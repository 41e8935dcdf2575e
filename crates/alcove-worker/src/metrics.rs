//! Prometheus metrics of one worker, served on the admin port at `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use alcove_cache::CachedReads;
use alcove_ufs::stats::{Histogram as LatencyHistogram, OpStats};
use alcove_ufs::MountTable;

use crate::cluster::ClusterLink;
use crate::limits::ConnectionLimit;
use crate::recent::RecentRequests;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The S3 action (`GetObject`, `PutObject`, …), as s3s names it.
    pub action: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

type DurationFamily = Family<ActionLabels, Histogram, fn() -> Histogram>;

/// Counters updated by the S3 front end.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    bytes_sent: Family<ActionLabels, Counter>,
    bytes_received: Family<ActionLabels, Counter>,
    duration: DurationFamily,
    /// Rates and failures of the last minutes, for the status page.
    pub recent: RecentRequests,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("alcove_s3");
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes_sent = Family::<ActionLabels, Counter>::default();
        let bytes_received = Family::<ActionLabels, Counter>::default();
        let duration: DurationFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        registry.register("requests", "S3 requests by action and status", requests.clone());
        registry.register("response_bytes", "Body bytes sent to S3 clients, by action", bytes_sent.clone());
        registry.register("request_bytes", "Body bytes announced by S3 clients, by action", bytes_received.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of the response body, by action",
            duration.clone(),
        );
        Self { registry, requests, bytes_sent, bytes_received, duration, recent: RecentRequests::default() }
    }
}

impl Metrics {
    /// Counts one answered S3 request.
    pub fn observe_request(&self, action: &str, status: u16, bytes_in: u64, bytes_out: u64, elapsed: Duration) {
        let labels = ActionLabels { action: action.to_owned() };
        self.requests.get_or_create(&RequestLabels { action: action.to_owned(), status }).inc();
        self.bytes_sent.get_or_create(&labels).inc_by(bytes_out);
        self.bytes_received.get_or_create(&labels).inc_by(bytes_in);
        self.duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Adds the page cache's figures, read from `cache` at each scrape.
    pub fn with_cache(mut self, cache: Arc<CachedReads>) -> Self {
        self.registry.register_collector(Box::new(CacheCollector(cache)));
        self
    }

    /// Adds each bucket's under-storage figures, read at each scrape.
    pub fn with_mounts(mut self, mounts: Arc<MountTable>) -> Self {
        self.registry.register_collector(Box::new(UfsCollector(mounts)));
        self
    }

    /// Adds the S3 port's connection figures, read at each scrape.
    pub fn with_connections(mut self, limit: Arc<ConnectionLimit>) -> Self {
        self.registry.register_collector(Box::new(ConnectionCollector(limit)));
        self
    }

    /// Adds the cluster's figures (members, and what the gate did), read at each scrape.
    pub fn with_cluster(mut self, cluster: Arc<ClusterLink>) -> Self {
        self.registry.register_collector(Box::new(ClusterCollector(cluster)));
        self
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The S3 port's connections: `alcove_s3_connections` (open now), `alcove_s3_max_connections`
/// and `alcove_s3_refused_connections_total` (answered `503 SlowDown` or closed at the limit).
#[derive(Debug)]
struct ConnectionCollector(Arc<ConnectionLimit>);

impl Collector for ConnectionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        single(e, "connections", "S3 connections being served", ConstGauge::new(self.0.open() as i64))?;
        single(e, "max_connections", "S3 connections served at most at once", ConstGauge::new(self.0.max() as i64))?;
        single(
            e,
            "refused_connections",
            "S3 connections refused at the limit (503 SlowDown)",
            ConstCounter::new(self.0.refused()),
        )
    }
}

/// The cluster's figures, as `alcove_s3_cluster_*` metrics.
struct ClusterCollector(Arc<ClusterLink>);

impl std::fmt::Debug for ClusterCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterCollector")
    }
}

impl Collector for ClusterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let view = self.0.view();
        let gate = self.0.gate.counters();
        let count = |c: &std::sync::atomic::AtomicU64| ConstCounter::new(c.load(std::sync::atomic::Ordering::Relaxed));
        let e = &mut encoder;
        single(e, "cluster_members", "Workers this one knows of", ConstGauge::new(view.members.len() as i64))?;
        single(e, "cluster_live_members", "Workers in the ring now", ConstGauge::new(view.live.len() as i64))?;
        single(e, "cluster_forwarded", "Requests forwarded to their key's owner", count(&gate.forwarded))?;
        single(
            e,
            "cluster_forward_failures",
            "Forwards whose owner could not be reached (answered 503)",
            count(&gate.forward_failures),
        )?;
        single(e, "cluster_redirects", "Requests redirected to their key's owner", count(&gate.redirected))?;
        single(
            e,
            "cluster_served_for_down_owner",
            "Requests served here because their owner failed its health check",
            count(&gate.served_for_a_down_owner),
        )
    }
}

/// The page cache's figures, as `alcove_s3_cache_*` metrics.
struct CacheCollector(Arc<CachedReads>);

impl std::fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheCollector")
    }
}

/// One metric family of the cache, with one value per tier (`memory`, `disk0`, …, `ufs`).
fn per_tier<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: &[(String, M)],
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (tier, value) in values {
        value.encode(family.encode_family(&[("tier", tier.as_str())])?)?;
    }
    Ok(())
}

fn single<M: EncodeMetric>(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: M) -> std::fmt::Result {
    value.encode(encoder.encode_descriptor(name, help, None, value.metric_type())?)
}

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let stats = self.0.stats();
        let pages = &stats.pages;
        let tiers: Vec<(String, &alcove_cache::TierStats)> = std::iter::once(("memory".to_owned(), &pages.memory))
            .chain(pages.disks.iter().enumerate().map(|(i, d)| (format!("disk{i}"), d)))
            .collect();
        let counters = |f: fn(&alcove_cache::TierStats) -> u64| -> Vec<(String, ConstCounter)> {
            tiers.iter().map(|(name, t)| (name.clone(), ConstCounter::new(f(t)))).collect()
        };
        let gauges = |f: fn(&alcove_cache::TierStats) -> u64| -> Vec<(String, ConstGauge)> {
            tiers.iter().map(|(name, t)| (name.clone(), ConstGauge::new(f(t) as i64))).collect()
        };
        let e = &mut encoder;
        per_tier(e, "cache_hits", "Pages served from a cache tier", MetricType::Counter, &counters(|t| t.hits))?;
        let mut served = counters(|t| t.bytes_served);
        served.push(("ufs".to_owned(), ConstCounter::new(stats.ufs_read_bytes)));
        per_tier(
            e,
            "cache_served_bytes",
            "Page bytes served from each tier, and read from the UFS",
            MetricType::Counter,
            &served,
        )?;
        per_tier(e, "cache_evictions", "Pages evicted to make room", MetricType::Counter, &counters(|t| t.evictions))?;
        per_tier(e, "cache_used_bytes", "Bytes a tier holds now", MetricType::Gauge, &gauges(|t| t.used_bytes))?;
        per_tier(e, "cache_capacity_bytes", "Bytes a tier may hold", MetricType::Gauge, &gauges(|t| t.capacity_bytes))?;
        per_tier(e, "cache_pages", "Pages a tier holds now", MetricType::Gauge, &gauges(|t| t.pages))?;
        single(e, "cache_misses", "Page lookups no tier could answer", ConstCounter::new(pages.misses))?;
        single(
            e,
            "cache_single_flight_joins",
            "Page misses that joined a fetch already under way",
            ConstCounter::new(pages.single_flight_joins),
        )?;
        single(
            e,
            "cache_read_ahead_pages",
            "Pages fetched ahead of sequential readers",
            ConstCounter::new(stats.read_ahead_pages),
        )?;
        single(e, "cache_ufs_reads", "Page reads sent to the under-storage", ConstCounter::new(stats.ufs_reads))?;
        single(
            e,
            "cache_ufs_read_errors",
            "Failed page reads from the under-storage",
            ConstCounter::new(stats.ufs_read_errors),
        )?;
        single(
            e,
            "cache_metadata_refreshes",
            "Object metadata asked of the under-storage",
            ConstCounter::new(stats.metadata_refreshes),
        )?;
        single(
            e,
            "cache_served_while_unavailable",
            "Reads served from the cache while the under-storage was unreachable",
            ConstCounter::new(stats.served_while_unavailable),
        )?;
        single(
            e,
            "cache_disk_errors",
            "Failed reads and writes of the disk tiers",
            ConstCounter::new(pages.disk_errors()),
        )?;
        let corrupt: u64 = pages.disks.iter().map(|d| d.corrupt_pages).sum();
        single(
            e,
            "cache_corrupt_pages",
            "Cached pages that failed their checksum and were dropped",
            ConstCounter::new(corrupt),
        )?;
        let mut histogram = e.encode_descriptor(
            "cache_ufs_read_seconds",
            "Time the under-storage took to deliver a page",
            None,
            MetricType::Histogram,
        )?;
        encode_latency(histogram.encode_family(&NO_LABELS)?, &stats.ufs_read_seconds)
    }
}

const NO_LABELS: [(&str, &str); 0] = [];

/// A latency histogram of `alcove_ufs::stats` in Prometheus form (cumulative buckets).
fn encode_latency(
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
    latency: &LatencyHistogram,
) -> std::fmt::Result {
    let mut cumulative = 0;
    let buckets: Vec<(f64, u64)> = latency
        .bounds
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .zip(&latency.counts)
        .map(|(bound, n)| {
            cumulative += n;
            (bound, cumulative)
        })
        .collect();
    let mut encoder = encoder;
    encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(latency.sum_seconds, cumulative, &buckets, None)
}

/// Each bucket's under-storage figures, as `alcove_s3_ufs_*{mount, op}` metrics.
struct UfsCollector(Arc<MountTable>);

impl std::fmt::Debug for UfsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UfsCollector")
    }
}

impl Collector for UfsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let all: Vec<(String, Vec<OpStats>)> =
            self.0.ufs_stats().into_iter().map(|(mount, stats)| (mount, stats.snapshot())).collect();
        let rows = || all.iter().flat_map(|(mount, ops)| ops.iter().map(move |op| (mount.as_str(), op)));
        let mut calls = encoder.encode_descriptor(
            "ufs_requests",
            "Calls to each bucket's under-storage, by kind of operation",
            None,
            MetricType::Counter,
        )?;
        for (mount, op) in rows() {
            ConstCounter::new(op.calls).encode(calls.encode_family(&[("mount", mount), ("op", op.op.name())])?)?;
        }
        let mut errors = encoder.encode_descriptor(
            "ufs_errors",
            "Calls to the under-storage that failed (unreachable, throttled, refused, I/O errors)",
            None,
            MetricType::Counter,
        )?;
        for (mount, op) in rows() {
            ConstCounter::new(op.errors).encode(errors.encode_family(&[("mount", mount), ("op", op.op.name())])?)?;
        }
        let mut latency = encoder.encode_descriptor(
            "ufs_request_duration_seconds",
            "Time the under-storage took to answer, by kind of operation (writes: the whole body)",
            None,
            MetricType::Histogram,
        )?;
        for (mount, op) in rows() {
            encode_latency(latency.encode_family(&[("mount", mount), ("op", op.op.name())])?, &op.latency)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alcove_cache::{MetadataSync, ObjectVersion, PageKey, PageStore, PageStoreConfig, ReadSettings};
    use bytes::Bytes;

    use super::*;

    fn page(index: u64) -> PageKey {
        PageKey { mount: "b".into(), path: "k".into(), version: ObjectVersion::ETag("e".into()), index }
    }

    /// Every cache figure an operator graphs is in the exposition, under its documented name.
    #[tokio::test]
    async fn cache_figures_render() {
        let config = PageStoreConfig { page_size: 4096, memory_size: 1 << 20, dirs: Vec::new() };
        let pages = PageStore::open(config).await.expect("a memory-only page store");
        let cache = CachedReads::new(pages, ReadSettings { read_ahead: 0, metadata_sync: MetadataSync::Never });
        // One miss filled by a fetch, then one hit.
        for _ in 0..2 {
            let fetched =
                cache.pages().get_or_fetch(&page(0), || async { Ok::<_, ()>(Bytes::from_static(b"x")) }).await;
            assert!(fetched.is_ok());
        }
        let text = Metrics::default().with_cache(cache).render();
        for line in [
            "alcove_s3_cache_hits_total{tier=\"memory\"} 1",
            "alcove_s3_cache_misses_total 1",
            "alcove_s3_cache_served_bytes_total{tier=\"memory\"} 1",
            "alcove_s3_cache_served_bytes_total{tier=\"ufs\"} 0",
            "alcove_s3_cache_evictions_total{tier=\"memory\"} 0",
            "alcove_s3_cache_used_bytes{tier=\"memory\"} ",
            "alcove_s3_cache_capacity_bytes{tier=\"memory\"} 1048576",
            "alcove_s3_cache_pages{tier=\"memory\"} 1",
            "alcove_s3_cache_read_ahead_pages_total 0",
            "alcove_s3_cache_single_flight_joins_total 0",
            "alcove_s3_cache_ufs_reads_total 0",
            "alcove_s3_cache_ufs_read_seconds_bucket{le=\"0.001\"} 0",
            "alcove_s3_cache_ufs_read_seconds_bucket{le=\"+Inf\"} 0",
            "alcove_s3_cache_ufs_read_seconds_count 0",
            "# TYPE alcove_s3_cache_ufs_read_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l.starts_with(line)), "no line starting {line:?} in\n{text}");
        }
    }
}
