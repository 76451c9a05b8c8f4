//! Ferry's control plane: the public API (`/api/public/v1`, also at `/v1`), the data-plane
//! API (`/api/v1/dataplanes/...`), authentication, and first-start bootstrap. It persists
//! everything through `ferry-store` and never links connector code.

pub mod auth;
pub mod bootstrap;
pub mod error;
pub mod extract;
mod openapi;
pub(crate) mod routes;
mod time_format;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use ferry_store::Store;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

pub use auth::TokenIssuer;
pub use error::{ApiError, ApiResult};

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
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(15 * 60),
            dataplane_token_lifetime: Duration::from_secs(5 * 60),
            secret_rotation_grace: Duration::ZERO,
            public_url: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: TokenIssuer,
    pub config: Arc<ControlConfig>,
}

impl AppState {
    pub async fn new(store: Store, config: ControlConfig) -> Result<Self, ferry_store::StoreError> {
        let tokens = TokenIssuer::load(&store).await?;
        Ok(Self {
            store,
            tokens,
            config: Arc::new(config),
        })
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Serves the control plane on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Trailing slashes are trimmed before routing (the guide posts to `/v1/regions/`).
    let app = NormalizePathLayer::trim_trailing_slash().layer(router(state));
    let app = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
