use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use ferry_api::{
    DataplaneCreateRequest, DataplaneCreateResponse, DataplanePatchRequest, DataplaneResponse,
    DataplanesResponse,
};
use ferry_store::{Dataplane, DataplaneChanges, NewDataplane, StoreError, now_millis};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, hash_secret, new_credentials};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams, parse_uuid, valid_name};
use crate::services::dataplane_health;
use crate::time_format::rfc3339;

const DATAPLANES: &str = "data planes";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dataplanes", get(list).post(create))
        .route(
            "/dataplanes/{dataplaneId}",
            get(read).patch(update).delete(remove),
        )
        .route(
            "/dataplanes/{dataplaneId}/rotate_secret",
            post(rotate_secret),
        )
}

fn dataplane_response(state: &AppState, dataplane: Dataplane) -> DataplaneResponse {
    DataplaneResponse {
        status: dataplane_health::status(&state.config, &dataplane),
        dataplane_id: dataplane.id,
        name: dataplane.name,
        region_id: dataplane.region_id,
        enabled: dataplane.enabled,
        created_at: rfc3339(dataplane.created_at),
        updated_at: rfc3339(dataplane.updated_at),
        last_heartbeat_at: dataplane.last_heartbeat_at.map(rfc3339),
        version: dataplane.version,
    }
}

#[utoipa::path(get, path = "/dataplanes", tag = "dataplanes",
    params(("regionIds" = Option<Vec<Uuid>>, Query, description = "only data planes of these regions")),
    responses((status = 200, body = DataplanesResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<DataplanesResponse>> {
    caller.require_instance_admin(DATAPLANES)?;
    let region_ids = query.uuids("regionIds")?;
    for region_id in &region_ids {
        state.store.live_region(*region_id).await?;
    }
    let data = state
        .store
        .dataplanes(&region_ids)
        .await?
        .into_iter()
        .map(|dataplane| dataplane_response(&state, dataplane))
        .collect();
    Ok(Json(DataplanesResponse { data }))
}

#[utoipa::path(post, path = "/dataplanes", tag = "dataplanes", request_body = DataplaneCreateRequest,
    responses((status = 200, body = DataplaneCreateResponse)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<DataplaneCreateRequest>,
) -> ApiResult<Json<DataplaneCreateResponse>> {
    caller.require_instance_admin(DATAPLANES)?;
    let name = valid_name("name", &request.name)?;
    let credentials = new_credentials()?;
    let dataplane = state
        .store
        .create_dataplane(&NewDataplane {
            id: Uuid::new_v4(),
            region_id: request.region_id,
            name,
            enabled: request.enabled.unwrap_or(true),
            client_id: credentials.client_id.clone(),
            secret_hash: hash_secret(credentials.client_secret.clone()).await?,
        })
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => {
                ApiError::NotFound(format!("regionId: region {} not found", request.region_id))
            }
            other => other.into(),
        })?;
    Ok(Json(DataplaneCreateResponse {
        dataplane_id: dataplane.id,
        region_id: dataplane.region_id,
        client_id: credentials.client_id,
        client_secret: credentials.client_secret,
    }))
}

#[utoipa::path(get, path = "/dataplanes/{dataplaneId}", tag = "dataplanes",
    params(("dataplaneId" = Uuid, Path)), responses((status = 200, body = DataplaneResponse)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataplane_id): Path<String>,
) -> ApiResult<Json<DataplaneResponse>> {
    caller.require_instance_admin(DATAPLANES)?;
    let dataplane_id = parse_uuid("dataplaneId", &dataplane_id)?;
    Ok(Json(dataplane_response(
        &state,
        state.store.live_dataplane(dataplane_id).await?,
    )))
}

#[utoipa::path(patch, path = "/dataplanes/{dataplaneId}", tag = "dataplanes",
    request_body = DataplanePatchRequest, params(("dataplaneId" = Uuid, Path)),
    responses((status = 200, body = DataplaneResponse)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataplane_id): Path<String>,
    ApiJson(request): ApiJson<DataplanePatchRequest>,
) -> ApiResult<Json<DataplaneResponse>> {
    caller.require_instance_admin(DATAPLANES)?;
    let dataplane_id = parse_uuid("dataplaneId", &dataplane_id)?;
    let name = request
        .name
        .as_deref()
        .map(|name| valid_name("name", name))
        .transpose()?;
    let dataplane = state
        .store
        .update_dataplane(
            dataplane_id,
            &DataplaneChanges {
                name,
                enabled: request.enabled,
            },
        )
        .await?;
    Ok(Json(dataplane_response(&state, dataplane)))
}

#[utoipa::path(delete, path = "/dataplanes/{dataplaneId}", tag = "dataplanes",
    params(("dataplaneId" = Uuid, Path)), responses((status = 200, body = DataplaneResponse)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataplane_id): Path<String>,
) -> ApiResult<Json<DataplaneResponse>> {
    caller.require_instance_admin(DATAPLANES)?;
    let dataplane_id = parse_uuid("dataplaneId", &dataplane_id)?;
    Ok(Json(dataplane_response(
        &state,
        state.store.delete_dataplane(dataplane_id).await?,
    )))
}

/// Ferry extension: a new secret; the old one and its tokens stop working (after the
/// configured grace period, zero by default).
#[utoipa::path(post, path = "/dataplanes/{dataplaneId}/rotate_secret", tag = "dataplanes",
    params(("dataplaneId" = Uuid, Path)), responses((status = 200, body = DataplaneCreateResponse)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataplane_id): Path<String>,
) -> ApiResult<Json<DataplaneCreateResponse>> {
    caller.require_instance_admin(DATAPLANES)?;
    let dataplane_id = parse_uuid("dataplaneId", &dataplane_id)?;
    let client_secret = new_credentials()?.client_secret;
    let grace_millis = i64::try_from(state.config.secret_rotation_grace.as_millis()).unwrap_or(0);
    let dataplane = state
        .store
        .rotate_dataplane_secret(
            dataplane_id,
            &hash_secret(client_secret.clone()).await?,
            now_millis() + grace_millis,
        )
        .await?;
    Ok(Json(DataplaneCreateResponse {
        dataplane_id: dataplane.id,
        region_id: dataplane.region_id,
        client_id: dataplane.client_id,
        client_secret,
    }))
}
