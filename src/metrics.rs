//! Prometheus metrics, built with `prometheus-client` (one registry for the process). Events are
//! counted where they happen, through the small functions below; the gauges that describe the
//! store (outbox, usage, dead letters) are set from the catalog's totals just before each
//! scrape (`render`). Label values are fixed words (operation names, status classes, outcomes),
//! never a bucket or a key, so every label set stays bounded. README, "Metrics", lists them all.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::store::{OutboxStats, Usage};
use crate::upstream::breaker::CircuitState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

type Histograms = Family<OperationLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms,
    received_bytes: Counter,
    sent_bytes: Counter,
    cache: Family<ResultLabel, Counter>,
    upstream_requests: Family<UpstreamLabels, Counter>,
    upstream_seconds: Histograms,
    circuit_state: Gauge,
    circuit_changes: Family<StateLabel, Counter>,
    outbox_depth: Gauge,
    outbox_oldest: Gauge<f64, AtomicU64>,
    replays: Family<ResultLabel, Counter>,
    dead_letters: Gauge,
    dead_lettered: Counter,
    local_bytes: Gauge,
    budget_bytes: Gauge,
    objects: Family<StateLabel, Gauge>,
    object_bytes: Family<StateLabel, Gauge>,
    integrity_errors: Counter,
    insufficient_storage: Counter,
    sealed_frames_read: Counter,
    sealed_frames_rejected: Counter,
    evicted_objects: Counter,
    evicted_bytes: Counter,
    cache_full: Gauge,
}

impl Metrics {
    fn new() -> Self {
        // Every series carries the node's name, so several nodes scraped together stay apart.
        let node = NODE.get().map_or("lifeboat", String::as_str).to_owned();
        let mut r = Registry::with_prefix_and_labels(
            "lifeboat",
            [(
                std::borrow::Cow::Borrowed("node"),
                std::borrow::Cow::Owned(node),
            )]
            .into_iter(),
        );
        let m = Self {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
            cache: Family::default(),
            upstream_requests: Family::default(),
            upstream_seconds: Family::new_with_constructor(latency_histogram),
            circuit_state: Gauge::default(),
            circuit_changes: Family::default(),
            outbox_depth: Gauge::default(),
            outbox_oldest: Gauge::default(),
            replays: Family::default(),
            dead_letters: Gauge::default(),
            dead_lettered: Counter::default(),
            local_bytes: Gauge::default(),
            budget_bytes: Gauge::default(),
            objects: Family::default(),
            object_bytes: Family::default(),
            integrity_errors: Counter::default(),
            insufficient_storage: Counter::default(),
            sealed_frames_read: Counter::default(),
            sealed_frames_rejected: Counter::default(),
            evicted_objects: Counter::default(),
            evicted_bytes: Counter::default(),
            cache_full: Gauge::default(),
            registry: Registry::default(),
        };
        r.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        r.register(
            "requests",
            "S3 requests by operation and status class (2xx, 3xx, 4xx, 5xx)",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "S3 request latency (to the response head) by operation",
            m.request_seconds.clone(),
        );
        r.register(
            "received_bytes",
            "Request body bytes received by S3 requests (POST form uploads not included)",
            m.received_bytes.clone(),
        );
        r.register(
            "sent_bytes",
            "Response body bytes sent (S3 and admin API answers)",
            m.sent_bytes.clone(),
        );
        r.register(
            "cache_results",
            "Gateway reads by cache result (hit, miss, stale)",
            m.cache.clone(),
        );
        r.register(
            "upstream_requests",
            "Upstream attempts by operation and outcome (ok, 4xx, 5xx, timeout, connect_error, error, local_error)",
            m.upstream_requests.clone(),
        );
        r.register(
            "upstream_request_duration_seconds",
            "Upstream request latency (to the response head) by operation",
            m.upstream_seconds.clone(),
        );
        r.register(
            "upstream_circuit_state",
            "The upstream circuit: 0 closed, 1 half-open, 2 open",
            m.circuit_state.clone(),
        );
        r.register(
            "upstream_circuit_changes",
            "Changes of the upstream circuit, by the state entered",
            m.circuit_changes.clone(),
        );
        r.register(
            "outbox_depth",
            "Writes and deletes queued for the upstream",
            m.outbox_depth.clone(),
        );
        r.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest queued entry (0 when the outbox is empty)",
            m.outbox_oldest.clone(),
        );
        r.register(
            "outbox_replays",
            "Outbox replays by result (done, failed)",
            m.replays.clone(),
        );
        r.register(
            "dead_letters",
            "Entries the upstream refused for good, kept for the operator",
            m.dead_letters.clone(),
        );
        r.register(
            "dead_lettered",
            "Entries moved to the dead letters",
            m.dead_lettered.clone(),
        );
        r.register(
            "local_bytes",
            "Bytes of the objects held on local disk",
            m.local_bytes.clone(),
        );
        r.register(
            "local_budget_bytes",
            "The cache budget (storage.max_bytes)",
            m.budget_bytes.clone(),
        );
        r.register(
            "objects",
            "Objects on local disk by sync state",
            m.objects.clone(),
        );
        r.register(
            "object_bytes",
            "Bytes of the objects on local disk by sync state",
            m.object_bytes.clone(),
        );
        r.register(
            "upstream_integrity_errors",
            "Upstream bodies whose length, ETag or checksum did not match",
            m.integrity_errors.clone(),
        );
        r.register(
            "insufficient_storage",
            "Writes refused with 507 InsufficientStorage",
            m.insufficient_storage.clone(),
        );
        r.register(
            "sealed_frames_read",
            "Frames of sealed (encrypted) blobs decrypted and authenticated (64 KiB each)",
            m.sealed_frames_read.clone(),
        );
        r.register(
            "sealed_frames_rejected",
            "Sealed blobs that failed authentication or their length check: never served",
            m.sealed_frames_rejected.clone(),
        );
        r.register(
            "evicted_objects",
            "Synced cached copies evicted over the cache budget (gateway mode)",
            m.evicted_objects.clone(),
        );
        r.register(
            "evicted_bytes",
            "Bytes of the synced cached copies evicted over the cache budget",
            m.evicted_bytes.clone(),
        );
        r.register(
            "cache_full",
            "1 while writes are refused (507) because what cannot be evicted fills the budget or the disk",
            m.cache_full.clone(),
        );
        Self { registry: r, ..m }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// `server.node_name`, the `node` label of every series: set once at start, before the first
/// metric is counted.
static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names this node in the metrics (the first call wins).
pub fn set_node(name: &str) {
    let _ = NODE.set(name.to_owned());
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// One S3 request answered.
pub fn request(operation: &'static str, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    m.requests
        .get_or_create(&RequestLabels {
            operation,
            status: status_class(status),
        })
        .inc();
    m.request_seconds
        .get_or_create(&OperationLabel { operation })
        .observe(elapsed.as_secs_f64());
}

pub fn received(bytes: usize) {
    METRICS.received_bytes.inc_by(bytes as u64);
}

pub fn sent(bytes: usize) {
    METRICS.sent_bytes.inc_by(bytes as u64);
}

/// A gateway read answered from the cache (`hit`), the upstream (`miss`) or a stale copy.
pub fn cache_result(result: &'static str) {
    METRICS.cache.get_or_create(&ResultLabel { result }).inc();
}

/// One upstream request (one attempt) and how it ended.
pub fn upstream_request(operation: &'static str, outcome: &'static str, elapsed: Duration) {
    let m = &*METRICS;
    m.upstream_requests
        .get_or_create(&UpstreamLabels { operation, outcome })
        .inc();
    m.upstream_seconds
        .get_or_create(&OperationLabel { operation })
        .observe(elapsed.as_secs_f64());
}

/// The circuit entered `state`.
pub fn circuit_changed(state: CircuitState) {
    let m = &*METRICS;
    m.circuit_state.set(circuit_value(state));
    m.circuit_changes
        .get_or_create(&StateLabel {
            state: state.as_str(),
        })
        .inc();
}

fn circuit_value(state: CircuitState) -> i64 {
    match state {
        CircuitState::Closed => 0,
        CircuitState::HalfOpen => 1,
        CircuitState::Open => 2,
    }
}

/// An outbox replay finished (`done`) or failed and stays queued (`failed`).
pub fn replay(result: &'static str) {
    METRICS.replays.get_or_create(&ResultLabel { result }).inc();
}

pub fn dead_lettered() {
    METRICS.dead_lettered.inc();
}

pub fn integrity_error() {
    METRICS.integrity_errors.inc();
}

pub fn insufficient_storage() {
    METRICS.insufficient_storage.inc();
}

/// One frame of a sealed blob opened (store/sealed/).
pub fn sealed_frame_read() {
    METRICS.sealed_frames_read.inc();
}

/// A sealed blob that failed authentication or did not fit its size (store/sealed/).
pub fn sealed_frame_rejected() {
    METRICS.sealed_frames_rejected.inc();
}

/// A synced copy of `bytes` evicted over the cache budget.
pub fn evicted(bytes: u64) {
    let m = &*METRICS;
    m.evicted_objects.inc();
    m.evicted_bytes.inc_by(bytes);
}

/// The store's state at the moment of a scrape.
pub struct Snapshot {
    pub usage: Usage,
    pub outbox: OutboxStats,
    pub budget_bytes: u64,
    /// Writes are refused for lack of room (`gateway::evict`; false in local-only mode).
    pub cache_full: bool,
    pub circuit: Option<CircuitState>,
    pub now_ms: i64,
}

/// The text exposition (OpenMetrics), with the store's gauges set from `snap`.
pub fn render(snap: &Snapshot) -> String {
    let m = &*METRICS;
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    m.outbox_depth.set(gauge(snap.outbox.depth));
    m.outbox_oldest.set(
        snap.outbox
            .oldest_enqueued_ms
            .map_or(0.0, |t| (snap.now_ms - t).max(0) as f64 / 1000.0),
    );
    m.dead_letters.set(gauge(snap.outbox.dead_letters));
    m.local_bytes.set(gauge(snap.usage.bytes.total()));
    m.budget_bytes.set(gauge(snap.budget_bytes));
    m.cache_full.set(i64::from(snap.cache_full));
    if let Some(c) = snap.circuit {
        m.circuit_state.set(circuit_value(c));
    }
    for state in Usage::states() {
        let label = StateLabel {
            state: state.as_str(),
        };
        m.objects
            .get_or_create(&label)
            .set(gauge(snap.usage.objects.get(state)));
        m.object_bytes
            .get_or_create(&label)
            .set(gauge(snap.usage.bytes.get(state)));
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        out.clear();
    }
    out
}

/// The content type of `render`'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_renders_with_bounded_labels() {
        request("GetObject", 200, Duration::from_millis(3));
        upstream_request("PutObject", "timeout", Duration::from_millis(5));
        cache_result("hit");
        evicted(10);
        // No node name is set in unit tests: every series carries the default, "lifeboat".
        let text = render(&Snapshot {
            usage: Usage::default(),
            outbox: OutboxStats {
                depth: 2,
                oldest_enqueued_ms: Some(1_000),
                dead_letters: 0,
                oldest_dead_letter_ms: None,
            },
            budget_bytes: 7,
            cache_full: true,
            circuit: Some(CircuitState::Open),
            now_ms: 3_000,
        });
        for needle in [
            "lifeboat_build_info{node=\"lifeboat\",version=",
            "lifeboat_requests_total{node=\"lifeboat\",operation=\"GetObject\",status=\"2xx\"} 1",
            "lifeboat_upstream_requests_total{node=\"lifeboat\",operation=\"PutObject\",outcome=\"timeout\"} 1",
            "lifeboat_outbox_depth{node=\"lifeboat\"} 2",
            "lifeboat_outbox_oldest_age_seconds{node=\"lifeboat\"} 2.0",
            "lifeboat_upstream_circuit_state{node=\"lifeboat\"} 2",
            "lifeboat_objects{node=\"lifeboat\",state=\"pending\"} 0",
            "lifeboat_local_budget_bytes{node=\"lifeboat\"} 7",
            "lifeboat_sealed_frames_read_total",
            "lifeboat_sealed_frames_rejected_total",
            "lifeboat_cache_full{node=\"lifeboat\"} 1",
            "lifeboat_evicted_objects_total{node=\"lifeboat\"} 1",
            "lifeboat_evicted_bytes_total{node=\"lifeboat\"} 10",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
