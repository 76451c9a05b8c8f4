//! The data-plane API (`/api/v1/dataplanes/...`), with Airbyte's endpoint names. Every
//! route but `token` takes a data-plane token and acts only on the caller itself.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use ferry_api::{
    AttemptDirectives, DataplaneHeartbeatRequest, DataplaneIdentityResponse,
    DataplaneTokenResponse, TokenRequest,
};
use ferry_store::{PrincipalKind, now_millis};

use crate::AppState;
use crate::auth::{DataplaneCaller, credentials_of};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, JsonOrForm};
use crate::services::jobs;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/token", post(token))
        .route("/initialize", post(initialize))
        .route("/heartbeat", post(heartbeat))
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("invalid data-plane client_id or client_secret".to_owned())
}

pub async fn token(
    State(state): State<AppState>,
    JsonOrForm(request): JsonOrForm<TokenRequest>,
) -> ApiResult<Json<DataplaneTokenResponse>> {
    let (client_id, client_secret) = credentials_of(&request)?;
    let dataplane = state.store.dataplane_by_client_id(&client_id).await?;
    // The current secret, and the previous one while its grace period lasts.
    let mut hashes = Vec::new();
    if let Some(dataplane) = &dataplane {
        hashes.push(dataplane.secret_hash.clone());
        if let (Some(hash), Some(until)) = (
            &dataplane.previous_secret_hash,
            dataplane.previous_secret_valid_until,
        ) && until > now_millis()
        {
            hashes.push(hash.clone());
        }
    }
    let matched = state
        .tokens
        .check_secret(PrincipalKind::Dataplane, &client_id, client_secret, hashes)
        .await?;
    let dataplane = match dataplane {
        Some(dataplane) if matched => dataplane,
        Some(dataplane) => {
            tracing::warn!(dataplane_id = %dataplane.id, "data-plane token refused: wrong secret");
            return Err(invalid_credentials());
        }
        None => return Err(invalid_credentials()),
    };
    let lifetime = state.config.dataplane_token_lifetime;
    let access_token = state
        .tokens
        .issue(
            &state.store,
            PrincipalKind::Dataplane,
            dataplane.id,
            lifetime,
        )
        .await?;
    Ok(Json(DataplaneTokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX),
    }))
}

async fn identity(
    state: &AppState,
    caller: &DataplaneCaller,
    request: &DataplaneHeartbeatRequest,
) -> ApiResult<DataplaneIdentityResponse> {
    if request.client_id != caller.dataplane.client_id {
        tracing::warn!(dataplane_id = %caller.dataplane.id, "data plane named another client_id");
        return Err(ApiError::Forbidden(
            "client_id does not match the token's data plane".to_owned(),
        ));
    }
    state
        .store
        .record_dataplane_heartbeat(caller.dataplane.id, request.version.as_deref())
        .await?;
    crate::services::heartbeat_pulse::remember(caller.dataplane.id);
    let region = state.store.region(caller.dataplane.region_id).await?;
    Ok(DataplaneIdentityResponse {
        dataplane_name: caller.dataplane.name.clone(),
        dataplane_id: caller.dataplane.id,
        dataplane_enabled: caller.dataplane.enabled && region.enabled && !region.tombstone,
        dataplane_group_name: region.name,
        dataplane_group_id: region.id,
        organization_id: region.organization_id,
        directives: Default::default(),
    })
}

pub async fn initialize(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    ApiJson(request): ApiJson<DataplaneHeartbeatRequest>,
) -> ApiResult<Json<DataplaneIdentityResponse>> {
    Ok(Json(identity(&state, &caller, &request).await?))
}

/// Records the heartbeat, renews the leases of the attempts the data plane runs, and tells
/// it which to stop (cancelled, or no longer its own).
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    ApiJson(request): ApiJson<DataplaneHeartbeatRequest>,
) -> ApiResult<Json<DataplaneIdentityResponse>> {
    let mut response = identity(&state, &caller, &request).await?;
    let running = request.running_attempts.unwrap_or_default();
    let lease_millis = i64::try_from(state.config.job_lease.as_millis()).unwrap_or(i64::MAX);
    let mut renewal = state
        .store
        .renew_leases(caller.dataplane.id, &running, lease_millis)
        .await?;
    // A data plane with attempts running holds its heartbeat open to hear a cancel at once.
    let wait = Duration::from_millis(request.wait_ms.unwrap_or(0));
    if renewal.cancel.is_empty() && renewal.lost.is_empty() && !wait.is_zero() {
        renewal.cancel = jobs::await_cancel(&state, &caller, &running, wait).await?;
    }
    response.directives = AttemptDirectives {
        cancel: renewal.cancel,
        lost: renewal.lost,
    };
    Ok(Json(response))
}
