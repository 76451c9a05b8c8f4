//! The control plane's metrics, in Prometheus' (OpenMetrics) text format at `/metrics` (on
//! the API port, and on `--metrics-listen` when given). Counters and histograms of what
//! passes through this process (HTTP requests, tokens, claims, attempts' ends) live in one
//! process-wide registry; what the store knows (jobs by status and region, each region's
//! queue, each data plane's heartbeat age) is read at each scrape, so every replica of the
//! control plane reports the same, whole picture.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::AppState;
use crate::error::ApiError;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels<const N: usize> = [(&'static str, String); N];

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

struct ProcessMetrics {
    registry: Registry,
    http_requests: Family<Labels<3>, Counter>,
    http_duration: Family<Labels<2>, Histogram, fn() -> Histogram>,
    tokens: Family<Labels<2>, Counter>,
    token_duration: Family<Labels<1>, Histogram, fn() -> Histogram>,
    claim_latency: Histogram,
    attempts_ended: Family<Labels<1>, Counter>,
    rows_moved: Counter,
    bytes_moved: Counter,
}

static METRICS: LazyLock<ProcessMetrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("ferry");
    let metrics = ProcessMetrics {
        registry: Registry::default(),
        http_requests: Family::default(),
        http_duration: Family::new_with_constructor(latency_histogram),
        tokens: Family::default(),
        token_duration: Family::new_with_constructor(latency_histogram),
        // A claim waits from a few milliseconds (a data plane long-polling) to minutes (all
        // planes of the region busy).
        claim_latency: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
        attempts_ended: Family::default(),
        rows_moved: Counter::default(),
        bytes_moved: Counter::default(),
    };
    registry.register(
        "http_requests",
        "HTTP requests answered, by method, route and status",
        metrics.http_requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time to answer an HTTP request, by method and route",
        metrics.http_duration.clone(),
    );
    registry.register(
        "token_requests",
        "Token requests, by kind (application, dataplane) and status",
        metrics.tokens.clone(),
    );
    registry.register(
        "token_request_duration_seconds",
        "Time to answer a token request (secret hash check included), by kind",
        metrics.token_duration.clone(),
    );
    registry.register(
        "job_claim_latency_seconds",
        "Time a job waited in its region's lane, claimable, before a data plane claimed it",
        metrics.claim_latency.clone(),
    );
    registry.register(
        "attempts_ended",
        "Attempts ended as their data planes reported, by status (handed_back: by a draining plane)",
        metrics.attempts_ended.clone(),
    );
    registry.register(
        "rows_moved",
        "Records the ended attempts committed",
        metrics.rows_moved.clone(),
    );
    registry.register(
        "bytes_moved",
        "Bytes the ended attempts committed",
        metrics.bytes_moved.clone(),
    );
    ProcessMetrics {
        registry,
        ..metrics
    }
});

/// A job was claimed; it had been claimable since `claimable_since` (epoch milliseconds).
pub fn job_claimed(claimable_since: i64) {
    let waited_millis = (ferry_store::now_millis() - claimable_since).max(0);
    #[allow(clippy::cast_precision_loss)]
    METRICS.claim_latency.observe(waited_millis as f64 / 1000.0);
}

/// An attempt ended (`status`), having committed `rows` and `bytes`.
pub fn attempt_ended(status: &str, rows: i64, bytes: i64) {
    METRICS
        .attempts_ended
        .get_or_create(&[("status", status.to_owned())])
        .inc();
    METRICS.rows_moved.inc_by(u64::try_from(rows).unwrap_or(0));
    METRICS
        .bytes_moved
        .inc_by(u64::try_from(bytes).unwrap_or(0));
}

/// The method as a label: HTTP lets a client make up methods, and each would be a series
/// of its own, for anyone reaching the port to multiply.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times every request by its route's template (never the raw path:
/// ids would make a series each), and token requests apart.
pub async fn track(request: Request, next: Next) -> Response {
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    let token_kind = if route.ends_with("/applications/token") {
        Some("application")
    } else if route == "/api/v1/dataplanes/token" {
        Some("dataplane")
    } else {
        None
    };
    if let Some(kind) = token_kind {
        METRICS
            .tokens
            .get_or_create(&[("kind", kind.to_owned()), ("status", status.clone())])
            .inc();
        METRICS
            .token_duration
            .get_or_create(&[("kind", kind.to_owned())])
            .observe(seconds);
    }
    METRICS
        .http_duration
        .get_or_create(&[("method", method.clone()), ("route", route.clone())])
        .observe(seconds);
    METRICS
        .http_requests
        .get_or_create(&[("method", method), ("route", route), ("status", status)])
        .inc();
    response
}

/// `GET /metrics`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

/// Serves `/metrics` alone on its own listener (`--metrics-listen`), e.g. a port only the
/// cluster's Prometheus reaches, until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(state): State<AppState>) -> Response {
    match render(&state).await {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => error.into_response(),
    }
}

fn gauge_f64() -> Gauge<f64, std::sync::atomic::AtomicU64> {
    Gauge::default()
}

/// The process's counters, then what the store says now.
async fn render(state: &AppState) -> Result<String, ApiError> {
    let mut from_store = Registry::with_prefix("ferry");
    let jobs = Family::<Labels<2>, Gauge>::default();
    let attempts_running = Family::<Labels<1>, Gauge>::default();
    for count in state.store.job_counts().await? {
        if count.status == ferry_api::JobStatus::Running.as_str() {
            attempts_running
                .get_or_create(&[("region", count.region.clone())])
                .set(count.jobs);
        }
        jobs.get_or_create(&[("region", count.region), ("status", count.status)])
            .set(count.jobs);
    }
    let depth = Family::<Labels<1>, Gauge>::default();
    let oldest = Family::<Labels<1>, Gauge<f64, std::sync::atomic::AtomicU64>, fn() -> _>::new_with_constructor(gauge_f64);
    for queue in state.store.queue_stats().await? {
        let region = [("region", queue.region)];
        // Every live region has a series, so an empty lane reads 0, not absent.
        drop(attempts_running.get_or_create(&region));
        depth.get_or_create(&region).set(queue.depth);
        #[allow(clippy::cast_precision_loss)]
        oldest
            .get_or_create(&region)
            .set(queue.oldest_age_millis as f64 / 1000.0);
    }
    let heartbeat_age =
        Family::<Labels<3>, Gauge<f64, std::sync::atomic::AtomicU64>, fn() -> _>::new_with_constructor(gauge_f64);
    for plane in state.store.heartbeat_ages().await? {
        if let Some(age) = plane.age_millis {
            #[allow(clippy::cast_precision_loss)]
            heartbeat_age
                .get_or_create(&[
                    ("dataplane_id", plane.dataplane_id),
                    ("dataplane", plane.dataplane),
                    ("region", plane.region),
                ])
                .set(age as f64 / 1000.0);
        }
    }
    from_store.register("jobs", "Jobs by region and status", jobs);
    from_store.register(
        "attempts_running",
        "Attempts running now, by region",
        attempts_running,
    );
    from_store.register(
        "queue_depth",
        "Jobs claimable now in the region's lane",
        depth,
    );
    from_store.register(
        "queue_oldest_age_seconds",
        "How long the oldest claimable job of the region has waited (0: none waits)",
        oldest,
    );
    from_store.register(
        "dataplane_heartbeat_age_seconds",
        "Seconds since each data plane's last heartbeat (planes that never heartbeated: absent)",
        heartbeat_age,
    );
    let mut text = String::new();
    let encoded = encode_registry(&mut text, &METRICS.registry)
        .and_then(|()| encode_registry(&mut text, &from_store))
        .and_then(|()| encode_eof(&mut text));
    encoded.map_err(|error| ApiError::Internal(format!("encoding metrics: {error}")))?;
    Ok(text)
}
