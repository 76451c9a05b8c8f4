//! Ferry extension: an instance admin gives a user a web-UI password.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use serde::Deserialize;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, parse_uuid};
use crate::services::passwords;

pub fn router() -> Router<AppState> {
    Router::new().route("/users/{userId}/password", put(set_password))
}

/// A user's new web-UI password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// At least 12 characters.
    pub password: String,
}

/// Ferry extension: sets the user's web-UI password (instance admins only; at least 12
/// characters); the user's browser sessions end.
#[utoipa::path(put, path = "/users/{userId}/password", tag = "users",
    request_body = PasswordRequest, params(("userId" = uuid::Uuid, Path)),
    responses((status = 204), (status = 400, body = ferry_api::Problem), (status = 403, body = ferry_api::Problem)))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    ApiJson(request): ApiJson<PasswordRequest>,
) -> ApiResult<StatusCode> {
    let user_id = parse_uuid("userId", &user_id)?;
    passwords::set_password(&state, &caller, user_id, &request.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
