use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use ferry_api::{
    DataplaneCreateRequest, DataplaneCreateResponse, DataplanePatchRequest, DataplaneResponse,
    DataplanesResponse,
};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, QueryParams, parse_uuid};
use crate::services::regions;

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

#[utoipa::path(get, path = "/dataplanes", tag = "dataplanes",
    params(("regionIds" = Option<Vec<Uuid>>, Query, description = "only data planes of these regions")),
    responses((status = 200, body = DataplanesResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<DataplanesResponse>> {
    let region_ids = query.uuids("regionIds")?;
    let data = regions::list_dataplanes(&state, &caller, &region_ids).await?;
    Ok(Json(DataplanesResponse { data }))
}

#[utoipa::path(post, path = "/dataplanes", tag = "dataplanes", request_body = DataplaneCreateRequest,
    responses((status = 200, body = DataplaneCreateResponse)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<DataplaneCreateRequest>,
) -> ApiResult<Json<DataplaneCreateResponse>> {
    Ok(Json(
        regions::create_dataplane(&state, &caller, request).await?,
    ))
}

#[utoipa::path(get, path = "/dataplanes/{dataplaneId}", tag = "dataplanes",
    params(("dataplaneId" = Uuid, Path)), responses((status = 200, body = DataplaneResponse)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataplane_id): Path<String>,
) -> ApiResult<Json<DataplaneResponse>> {
    let dataplane_id = parse_uuid("dataplaneId", &dataplane_id)?;
    Ok(Json(
        regions::read_dataplane(&state, &caller, dataplane_id).await?,
    ))
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
    let dataplane_id = parse_uuid("dataplaneId", &dataplane_id)?;
    Ok(Json(
        regions::update_dataplane(&state, &caller, dataplane_id, request).await?,
    ))
}

#[utoipa::path(delete, path = "/dataplanes/{dataplaneId}", tag = "dataplanes",
    params(("dataplaneId" = Uuid, Path)), responses((status = 200, body = DataplaneResponse)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataplane_id): Path<String>,
) -> ApiResult<Json<DataplaneResponse>> {
    let dataplane_id = parse_uuid("dataplaneId", &dataplane_id)?;
    Ok(Json(
        regions::delete_dataplane(&state, &caller, dataplane_id).await?,
    ))
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
    let dataplane_id = parse_uuid("dataplaneId", &dataplane_id)?;
    Ok(Json(
        regions::rotate_dataplane_secret(&state, &caller, dataplane_id).await?,
    ))
}
