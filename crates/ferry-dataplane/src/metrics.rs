//! The data plane's metrics, in Prometheus' (OpenMetrics) text format on its health port:
//! attempts running and ended, rows and bytes moved, claims and how long they waited,
//! heartbeats and the age of the last answered one, data-plane tokens fetched.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = [(&'static str, String); 1];

pub struct DataplaneMetrics {
    registry: Registry,
    pub attempts_running: Gauge,
    pub attempts_ended: Family<Labels, Counter>,
    pub rows_moved: Counter,
    pub bytes_moved: Counter,
    /// How long a claim request took to bring work (a long poll waits for it).
    pub claim_duration: Histogram,
    pub claims: Family<Labels, Counter>,
    pub heartbeats: Family<Labels, Counter>,
    heartbeat_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    last_heartbeat: Mutex<Option<Instant>>,
    pub tokens: Counter,
}

impl Default for DataplaneMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl DataplaneMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ferry_dataplane");
        let metrics = Self {
            attempts_running: Gauge::default(),
            attempts_ended: Family::default(),
            rows_moved: Counter::default(),
            bytes_moved: Counter::default(),
            claim_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            claims: Family::default(),
            heartbeats: Family::default(),
            heartbeat_age: Gauge::default(),
            last_heartbeat: Mutex::new(None),
            tokens: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "attempts_running",
            "Attempts this data plane runs now",
            metrics.attempts_running.clone(),
        );
        registry.register(
            "attempts_ended",
            "Attempts ended, by how (succeeded, failed, cancelled, handed_back, abandoned)",
            metrics.attempts_ended.clone(),
        );
        registry.register(
            "rows_moved",
            "Records committed by this data plane's attempts",
            metrics.rows_moved.clone(),
        );
        registry.register(
            "bytes_moved",
            "Bytes committed by this data plane's attempts",
            metrics.bytes_moved.clone(),
        );
        registry.register(
            "claim_duration_seconds",
            "Time from a claim request to the job or task it brought",
            metrics.claim_duration.clone(),
        );
        registry.register(
            "claims",
            "Claim requests, by result (job, task, none, error)",
            metrics.claims.clone(),
        );
        registry.register(
            "heartbeats",
            "Heartbeats sent, by result (ok, error)",
            metrics.heartbeats.clone(),
        );
        registry.register(
            "heartbeat_age_seconds",
            "Seconds since the control plane last answered a heartbeat (-1: never)",
            metrics.heartbeat_age.clone(),
        );
        registry.register(
            "tokens_fetched",
            "Data-plane tokens fetched from the control plane",
            metrics.tokens.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    pub fn count(family: &Family<Labels, Counter>, label: &'static str, value: &str) {
        family.get_or_create(&[(label, value.to_owned())]).inc();
    }

    pub fn heartbeat_answered(&self) {
        if let Ok(mut last) = self.last_heartbeat.lock() {
            *last = Some(Instant::now());
        }
    }

    /// The client counts the tokens it fetched; the counter catches up with it.
    pub fn sync_tokens(&self, fetched: u64) {
        let known = self.tokens.get();
        if fetched > known {
            self.tokens.inc_by(fetched - known);
        }
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let age = self
            .last_heartbeat
            .lock()
            .ok()
            .and_then(|last| *last)
            .map_or(-1.0, |last| last.elapsed().as_secs_f64());
        self.heartbeat_age.set(age);
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
