//! Routes grouped by caller: the public API (users, through applications), the data-plane
//! API (data planes, with their own tokens), and the unauthenticated few (health, tokens).
//!
//! A handler parses its request, calls `crate::services`, and answers. Route files never
//! import each other (`scripts/test.sh` checks): only this file wires them together.

pub(crate) mod actors;
pub(crate) mod applications;
pub(crate) mod connections;
mod dataplane_api;
mod dataplane_jobs;
pub(crate) mod dataplanes;
mod definitions;
pub(crate) mod jobs;
pub(crate) mod organizations;
pub(crate) mod permissions;
pub(crate) mod regions;
pub(crate) mod streams;
pub(crate) mod user_passwords;
pub(crate) mod workspaces;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;

pub fn router(state: AppState) -> Router {
    let public = public_api();
    Router::new()
        .nest("/api/public/v1", public.clone())
        .nest("/v1", public)
        .route("/api/v1/applications/token", post(applications::token))
        .route("/applications/token", post(applications::token))
        .nest("/api/v1/dataplanes", dataplane_api::router())
        .nest("/api/v1/jobs", dataplane_jobs::router())
        .route(
            "/api/v1/tasks/{taskId}/result",
            post(dataplane_jobs::task_result),
        )
        .route("/health", get(health))
        // The web UI: `/` and its pages, outside `/api`.
        .merge(crate::ui::router())
        .fallback(crate::ui::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_panic| {
            ApiError::Internal("handler panicked".to_owned()).into_response()
        }))
        .with_state(state)
}

fn public_api() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(crate::openapi::document))
        .merge(applications::router())
        .merge(organizations::router())
        .merge(regions::router())
        .merge(dataplanes::router())
        .merge(workspaces::router())
        .merge(permissions::router())
        .merge(actors::router())
        .merge(connections::router())
        .merge(jobs::router())
        .merge(definitions::router())
        .merge(streams::router())
        .merge(user_passwords::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn health() -> impl IntoResponse {
    (StatusCode::OK, "Successful operation")
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("method not allowed on this route".to_owned())
}
