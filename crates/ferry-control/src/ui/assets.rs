//! The UI's static files, embedded in the binary: the style sheet, the small enhancement
//! script, the favicon and htmx (2.0.11, from the npm package `htmx.org`, BSD-0 licence in
//! `assets/htmx-LICENSE.txt`).

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

const CSS: &str = include_str!("../../assets/ferry.css");
const SCRIPT: &str = include_str!("../../assets/ui.js");
const HTMX: &str = include_str!("../../assets/htmx-2.0.11.min.js");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/assets/ferry.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/assets/ui.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            super::pages::HTMX,
            get(|| async { asset("text/javascript; charset=utf-8", HTMX) }),
        )
        .route(
            "/favicon.svg",
            get(|| async { asset("image/svg+xml", FAVICON) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { asset("image/svg+xml", FAVICON) }),
        )
}
