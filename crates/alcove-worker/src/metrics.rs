//! Prometheus metrics of one worker, served on the admin port at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub status: u16,
}

/// Counters updated by the S3 front end.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub bytes_sent: Counter,
    pub bytes_received: Counter,
    pub duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("alcove_s3");
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes_sent = Counter::default();
        let bytes_received = Counter::default();
        let duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register("requests", "S3 requests by method and status", requests.clone());
        registry.register("response_bytes", "Body bytes sent to S3 clients", bytes_sent.clone());
        registry.register("request_bytes", "Body bytes announced by S3 clients", bytes_received.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of the response body",
            duration.clone(),
        );
        Self { registry, requests, bytes_sent, bytes_received, duration }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
