//! Ferry's control plane: the public API (`/api/public/v1`, also at `/v1`), the data-plane
//! API (`/api/v1/dataplanes/...`), authentication, and first-start bootstrap. It persists
//! everything through `ferry-store` and never links connector code.

pub mod auth;
pub mod bootstrap;
pub mod error;
pub mod extract;
pub mod metrics;
mod openapi;
mod pagination;
pub(crate) mod routes;
pub mod schedule;
pub mod secrets;
pub mod server;
pub(crate) mod services;
mod time_format;
pub mod tls;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ferry_store::Store;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

pub use auth::TokenIssuer;
pub use error::{ApiError, ApiResult};
pub use server::ServeOptions;

/// Settings of the control plane; every field has a default and an environment override in
/// the `ferry` binary.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Lifetime of application (user) tokens; Airbyte's default is 15 minutes.
    pub token_lifetime: Duration,
    /// Lifetime of data-plane tokens; Airbyte's default is 5 minutes.
    pub dataplane_token_lifetime: Duration,
    /// How long a data plane's previous secret keeps working after a rotation.
    pub secret_rotation_grace: Duration,
    /// Base URL clients reach this server at, for pagination links; when unset, taken from
    /// the request's Host header.
    pub public_url: Option<String>,
    /// How long a claimed job stays leased without a heartbeat renewing it.
    pub job_lease: Duration,
    /// Attempts a job gets before it fails for good.
    pub max_attempts: i64,
    /// Delay before a job's second attempt; doubled for each later one, up to a minute.
    pub retry_backoff: Duration,
    /// Heartbeat ages past which a data plane shows `degraded`, then `unhealthy`.
    pub dataplane_degraded_after: Duration,
    pub dataplane_unhealthy_after: Duration,
    /// The storage attempt logs are read from (shared with the data planes): a local
    /// directory or S3, resolved once at start-up.
    pub log_storage: std::sync::Arc<dyn object_store::ObjectStore>,
}

impl ControlConfig {
    pub fn retry_policy(&self) -> ferry_store::RetryPolicy {
        ferry_store::RetryPolicy {
            backoff_base_millis: i64::try_from(self.retry_backoff.as_millis()).unwrap_or(i64::MAX),
            backoff_max_millis: 60_000,
        }
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(15 * 60),
            dataplane_token_lifetime: Duration::from_secs(5 * 60),
            secret_rotation_grace: Duration::ZERO,
            public_url: None,
            job_lease: Duration::from_secs(60),
            max_attempts: 3,
            retry_backoff: Duration::from_secs(10),
            dataplane_degraded_after: Duration::from_secs(60),
            dataplane_unhealthy_after: Duration::from_secs(5 * 60),
            // In memory until a deployment names its storage: a default must not touch disk.
            log_storage: std::sync::Arc::new(object_store::memory::InMemory::new()),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Encrypts connector configurations at rest.
    pub secrets: secrets::SecretCipher,
    /// Where connector secrets live when a secrets manager is configured (the stored
    /// configurations then hold references to them): `secrets::managed`.
    pub secrets_manager: Option<Arc<ferry_secrets::SecretsManager>>,
    pub tokens: TokenIssuer,
    pub config: Arc<ControlConfig>,
    /// Woken when a job becomes claimable, so long-polling claims return at once.
    pub job_created: Arc<tokio::sync::Notify>,
    /// Woken when a data plane answers a connector task.
    pub task_done: Arc<tokio::sync::Notify>,
    /// Woken when a running job is cancelled, so the heartbeat its data plane holds open
    /// answers at once.
    pub job_cancelled: Arc<tokio::sync::Notify>,
    /// Set once the server is shutting down: held claims and heartbeats answer at once
    /// (nothing to take, nothing cancelled) instead of holding the shutdown for their wait.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// Whether the server is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn new(
        store: Store,
        config: ControlConfig,
        secrets: secrets::SecretCipher,
    ) -> ApiResult<Self> {
        let tokens = TokenIssuer::load(&store, &secrets).await?;
        Ok(Self {
            store,
            secrets,
            secrets_manager: None,
            tokens,
            config: Arc::new(config),
            job_created: Arc::new(tokio::sync::Notify::new()),
            task_done: Arc::new(tokio::sync::Notify::new()),
            job_cancelled: Arc::new(tokio::sync::Notify::new()),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// Keeps connector secrets in `manager` from now on (`secrets::managed`).
    pub fn with_secrets_manager(mut self, manager: Option<ferry_secrets::SecretsManager>) -> Self {
        self.secrets_manager = manager.map(Arc::new);
        self
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    // `/metrics` beside the API, every route counted and timed.
    routes::router(state.clone())
        .merge(metrics::router(state))
        .layer(axum::middleware::from_fn(metrics::track))
}

/// Every second: fails the attempts whose data plane stopped heartbeating and puts their
/// jobs back in their region's lane; every minute, drops expired tokens (they are refused
/// anyway: this only keeps the table small). Runs until the runtime stops.
pub fn spawn_lease_reaper(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        loop {
            interval.tick().await;
            ticks += 1;
            match state.store.expire_leases(state.config.retry_policy()).await {
                Ok(expired) if !expired.is_empty() => {
                    for (job_id, attempt_id) in &expired {
                        tracing::warn!(job_id, %attempt_id, "attempt lease expired; job requeued or failed");
                    }
                    state.job_created.notify_waiters();
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "expiring job leases failed"),
            }
            if ticks.is_multiple_of(60)
                && let Err(error) = state.store.purge_expired_access_tokens().await
            {
                tracing::error!(%error, "purging expired tokens failed");
            }
            if ticks.is_multiple_of(60)
                && let Err(error) = state.store.purge_expired_ui_sessions().await
            {
                tracing::error!(%error, "purging expired web-UI sessions failed");
            }
        }
    })
}

/// Serves the control plane on `listener` (HTTPS when `options.tls` is set, with the edge
/// limits of [`server`]) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, claims, heartbeats) = (
        state.stopping.clone(),
        state.job_created.clone(),
        state.job_cancelled.clone(),
    );
    // Long-polling claims and held heartbeats are requests under way: told to answer now,
    // they let the shutdown end at once rather than after their wait.
    let shutdown = async move {
        shutdown.await;
        stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        claims.notify_waiters();
        heartbeats.notify_waiters();
    };
    // Trailing slashes are trimmed before routing (the guide posts to `/v1/regions/`).
    let app = NormalizePathLayer::trim_trailing_slash().layer(router(state));
    server::serve(listener, app, options, shutdown).await
}
