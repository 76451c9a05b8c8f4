use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use ferry_api::{RegionCreateRequest, RegionPatchRequest, RegionResponse, RegionsResponse};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, QueryParams, parse_uuid};
use crate::services::regions;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/regions", get(list).post(create))
        .route(
            "/regions/{regionId}",
            get(read).patch(update).delete(remove),
        )
}

#[utoipa::path(get, path = "/regions", tag = "regions",
    params(("organizationId" = Uuid, Query, description = "organization whose regions to list")),
    responses((status = 200, body = RegionsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<RegionsResponse>> {
    let organization_id = query.required_uuid("organizationId")?;
    let data = regions::list_regions(&state, &caller, organization_id).await?;
    Ok(Json(RegionsResponse { data }))
}

#[utoipa::path(post, path = "/regions", tag = "regions", request_body = RegionCreateRequest,
    responses((status = 200, body = RegionResponse), (status = 409, body = ferry_api::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<RegionCreateRequest>,
) -> ApiResult<Json<RegionResponse>> {
    Ok(Json(
        regions::create_region(&state, &caller, request).await?,
    ))
}

#[utoipa::path(get, path = "/regions/{regionId}", tag = "regions",
    params(("regionId" = Uuid, Path)), responses((status = 200, body = RegionResponse)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(region_id): Path<String>,
) -> ApiResult<Json<RegionResponse>> {
    let region_id = parse_uuid("regionId", &region_id)?;
    Ok(Json(
        regions::read_region(&state, &caller, region_id).await?,
    ))
}

#[utoipa::path(patch, path = "/regions/{regionId}", tag = "regions", request_body = RegionPatchRequest,
    params(("regionId" = Uuid, Path)), responses((status = 200, body = RegionResponse)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(region_id): Path<String>,
    ApiJson(request): ApiJson<RegionPatchRequest>,
) -> ApiResult<Json<RegionResponse>> {
    let region_id = parse_uuid("regionId", &region_id)?;
    Ok(Json(
        regions::update_region(&state, &caller, region_id, request).await?,
    ))
}

#[utoipa::path(delete, path = "/regions/{regionId}", tag = "regions",
    params(("regionId" = Uuid, Path)),
    responses((status = 200, body = RegionResponse), (status = 409, body = ferry_api::Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(region_id): Path<String>,
) -> ApiResult<Json<RegionResponse>> {
    let region_id = parse_uuid("regionId", &region_id)?;
    Ok(Json(
        regions::delete_region(&state, &caller, region_id).await?,
    ))
}
