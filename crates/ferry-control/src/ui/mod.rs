//! The web UI, served by the control plane itself: server-rendered HTML (maud: templates
//! checked at compile time, every value escaped) with htmx, vendored and embedded, for the
//! few live parts (data-plane status, the log tail). No Node toolchain builds or runs it,
//! and it loads nothing from elsewhere. Every page calls the same services and role checks
//! as the public API (`crate::services`), as the signed-in user's [`crate::auth::Caller`];
//! a change is a POST form carrying the session's CSRF token.

mod actor_pages;
mod assets;
mod connection_pages;
pub mod form;
mod job_pages;
pub mod pages;
mod region_pages;
pub mod session;
mod sign_in;
mod spec_form;
mod user_pages;
mod workspace_pages;

use axum::Router;
use axum::extract::Request;
use axum::http::header::ACCEPT;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(workspace_pages::home))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .merge(assets::router())
        .merge(workspace_pages::router())
        .merge(region_pages::router())
        .merge(connection_pages::router())
        .merge(job_pages::router())
        .merge(actor_pages::router())
        .merge(user_pages::router())
}

/// Unknown paths: the 404 page for a browser, the problem body for API clients.
pub async fn not_found(request: Request) -> Response {
    let wants_html = request
        .headers()
        .get(ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        return pages::not_found_page(None);
    }
    ApiError::NotFound("no such route".to_owned()).into_response()
}
