//! The data plane's own HTTP port (`--health-listen`): `/health/liveness`,
//! `/health/readiness` and `/metrics`, for Kubernetes' probes and Prometheus. Nothing here
//! accepts work: a data plane only dials out to its control plane.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::DataplaneError;
use crate::metrics::DataplaneMetrics;

/// What readiness is made of; each flag is set by the part that knows it.
#[derive(Debug, Default)]
pub struct Health {
    /// The control plane accepted the credentials (a token is held) and named this plane.
    authenticated: AtomicBool,
    /// The last call to the control plane (heartbeat, claim) got an answer.
    control_plane_answers: AtomicBool,
    /// SIGTERM came: no more claims; readiness goes false so no rollout waits on this pod.
    draining: AtomicBool,
}

impl Health {
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Relaxed);
        self.control_plane_answers.store(true, Ordering::Relaxed);
    }

    pub fn control_plane_answered(&self, answered: bool) {
        self.control_plane_answers
            .store(answered, Ordering::Relaxed);
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// `None` when ready, else why not.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::Relaxed) {
            Some("draining: stopping, no longer claiming")
        } else if !self.authenticated.load(Ordering::Relaxed) {
            Some("not yet authenticated with the control plane")
        } else if !self.control_plane_answers.load(Ordering::Relaxed) {
            Some("the control plane does not answer")
        } else {
            None
        }
    }
}

#[derive(Clone)]
struct Probes {
    health: Arc<Health>,
    metrics: Arc<DataplaneMetrics>,
}

/// Binds `address` now (so a taken port fails the start, not a probe later) and serves the
/// probes and metrics until the runtime stops.
pub async fn spawn(
    address: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<DataplaneMetrics>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), DataplaneError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| DataplaneError::Config(format!("--health-listen {address}: {error}")))?;
    let bound = listener
        .local_addr()
        .map_err(|error| DataplaneError::Config(format!("--health-listen {address}: {error}")))?;
    let app = Router::new()
        .route("/health/liveness", get(liveness))
        .route("/health/readiness", get(readiness))
        .route("/metrics", get(scrape))
        .with_state(Probes { health, metrics });
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the health and metrics server stopped");
        }
    });
    Ok((bound, server))
}

/// Alive while the process serves: a plane waiting for its control plane is alive (a
/// restart would not bring the control plane back), only not ready.
async fn liveness() -> impl IntoResponse {
    (StatusCode::OK, "alive")
}

async fn readiness(State(probes): State<Probes>) -> impl IntoResponse {
    match probes.health.not_ready_because() {
        None => (StatusCode::OK, "ready"),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

async fn scrape(State(probes): State<Probes>) -> impl IntoResponse {
    match probes.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// Health and metrics, handed to the parts of the plane that feed them.
#[derive(Clone, Default)]
pub(crate) struct Observers {
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: Arc<DataplaneMetrics>,
}

impl Observers {
    pub(crate) fn heartbeat(&self, answered: bool, tokens_fetched: u64) {
        self.health.control_plane_answered(answered);
        let result = if answered { "ok" } else { "error" };
        DataplaneMetrics::count(&self.metrics.heartbeats, "result", result);
        if answered {
            self.metrics.heartbeat_answered();
        }
        self.metrics.sync_tokens(tokens_fetched);
    }

    pub(crate) fn claimed(
        &self,
        reply: &Result<ferry_api::ClaimResponse, ferry_client::ClientError>,
        took: std::time::Duration,
    ) {
        let result = match reply {
            Ok(reply) if reply.job.is_some() => "job",
            Ok(reply) if reply.task.is_some() => "task",
            Ok(_) => "none",
            // A refusal is an answer; only no answer makes the plane unready.
            Err(ferry_client::ClientError::Status { .. }) => "error",
            Err(_) => {
                self.health.control_plane_answered(false);
                "error"
            }
        };
        if reply.is_ok() {
            self.health.control_plane_answered(true);
        }
        if matches!(result, "job" | "task") {
            self.metrics.claim_duration.observe(took.as_secs_f64());
        }
        DataplaneMetrics::count(&self.metrics.claims, "result", result);
    }

    pub(crate) fn attempt_ended(&self, ended: &crate::attempt::Ended) {
        self.metrics.attempts_running.dec();
        DataplaneMetrics::count(&self.metrics.attempts_ended, "status", ended.how);
        self.metrics
            .rows_moved
            .inc_by(u64::try_from(ended.rows).unwrap_or(0));
        self.metrics
            .bytes_moved
            .inc_by(u64::try_from(ended.bytes).unwrap_or(0));
    }
}
