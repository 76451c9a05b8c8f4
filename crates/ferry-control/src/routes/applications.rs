use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use ferry_api::{
    ApplicationCreateRequest, ApplicationRead, ApplicationReadList, MASKED_SECRET, TokenRequest,
    TokenResponse,
};
use ferry_store::{Application, NewApplication, PrincipalKind, StoreError};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, credentials_of, hash_secret, new_credentials};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, JsonOrForm, parse_uuid, valid_name};
use crate::services::admins;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/applications/token", axum::routing::post(token))
        .route("/applications", get(list).post(create))
        .route("/applications/{applicationId}", get(read).delete(remove))
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("invalid client_id or client_secret".to_owned())
}

#[utoipa::path(post, path = "/applications/token", tag = "applications",
    request_body = TokenRequest, security(),
    responses((status = 200, body = TokenResponse), (status = 401, body = ferry_api::Problem),
        (status = 429, description = "too many wrong secrets for this client id: retry after Retry-After", body = ferry_api::Problem),
        (status = 503, description = "too many credential checks at once: retry after Retry-After", body = ferry_api::Problem)))]
pub async fn token(
    State(state): State<AppState>,
    JsonOrForm(request): JsonOrForm<TokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let (client_id, client_secret) = credentials_of(&request)?;
    let application = state.store.application_by_client_id(&client_id).await?;
    let hashes = application.iter().map(|known| known.secret_hash.clone());
    let matched = state
        .tokens
        .check_secret(
            PrincipalKind::Application,
            &client_id,
            client_secret,
            hashes.collect(),
        )
        .await?;
    let Some(application) = application.filter(|_| matched) else {
        return Err(invalid_credentials());
    };
    let lifetime = state.config.token_lifetime;
    let access_token = state
        .tokens
        .issue(
            &state.store,
            PrincipalKind::Application,
            application.id,
            lifetime,
        )
        .await?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX),
    }))
}

fn application_read(application: Application, secret: Option<String>) -> ApplicationRead {
    ApplicationRead {
        id: application.id.to_string(),
        name: application.name,
        client_id: application.client_id,
        client_secret: secret.unwrap_or_else(|| MASKED_SECRET.to_owned()),
        created_at: application.created_at,
    }
}

#[utoipa::path(get, path = "/applications", tag = "applications",
    responses((status = 200, body = ApplicationReadList)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ApplicationReadList>> {
    let applications = state
        .store
        .applications_of_user(caller.user.id)
        .await?
        .into_iter()
        .map(|application| application_read(application, None))
        .collect();
    Ok(Json(ApplicationReadList { applications }))
}

#[utoipa::path(post, path = "/applications", tag = "applications",
    request_body = ApplicationCreateRequest, responses((status = 200, body = ApplicationRead)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ApplicationCreateRequest>,
) -> ApiResult<Json<ApplicationRead>> {
    let name = valid_name("name", &request.name)?;
    let user_id =
        match request.user_id {
            Some(user_id) if user_id != caller.user.id => {
                caller.require_instance_admin("applications of other users")?;
                state.store.user(user_id).await.map_err(|_| {
                    ApiError::field("userId", format!("user {user_id} does not exist"))
                })?;
                user_id
            }
            _ => caller.user.id,
        };
    let credentials = new_credentials()?;
    let application = state
        .store
        .create_application(&NewApplication {
            id: Uuid::new_v4(),
            user_id,
            name,
            client_id: credentials.client_id,
            secret_hash: hash_secret(credentials.client_secret.clone()).await?,
        })
        .await?;
    Ok(Json(application_read(
        application,
        Some(credentials.client_secret),
    )))
}

/// The caller's own application (an instance admin may reach anyone's); others' are 404.
async fn owned_application(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Application> {
    let application_id = parse_uuid("applicationId", id)?;
    match state.store.application(application_id).await {
        Ok(application) if application.user_id == caller.user.id || caller.is_instance_admin() => {
            Ok(application)
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(ApiError::NotFound(format!(
            "application {application_id} not found"
        ))),
        Err(error) => Err(error.into()),
    }
}

#[utoipa::path(get, path = "/applications/{applicationId}", tag = "applications",
    params(("applicationId" = String, Path)), responses((status = 200, body = ApplicationRead)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(application_id): Path<String>,
) -> ApiResult<Json<ApplicationRead>> {
    let application = owned_application(&state, &caller, &application_id).await?;
    Ok(Json(application_read(application, None)))
}

#[utoipa::path(delete, path = "/applications/{applicationId}", tag = "applications",
    params(("applicationId" = String, Path)), responses((status = 200, body = ApplicationRead),
        (status = 409, description = "the last application of the last instance admin", body = ferry_api::Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(application_id): Path<String>,
) -> ApiResult<Json<ApplicationRead>> {
    let application = owned_application(&state, &caller, &application_id).await?;
    admins::check_application_removal(&state.store, &application).await?;
    let application = state.store.delete_application(application.id).await?;
    Ok(Json(application_read(application, None)))
}
