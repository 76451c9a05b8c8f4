use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use ferry_api::{RegionCreateRequest, RegionPatchRequest, RegionResponse, RegionsResponse};
use ferry_store::{NewRegion, Region, RegionChanges};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams, parse_uuid, valid_name};
use crate::time_format::rfc3339;

const REGIONS: &str = "regions";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/regions", get(list).post(create))
        .route(
            "/regions/{regionId}",
            get(read).patch(update).delete(remove),
        )
}

pub fn region_response(region: Region) -> RegionResponse {
    RegionResponse {
        region_id: region.id,
        name: region.name,
        organization_id: region.organization_id,
        enabled: region.enabled,
        created_at: rfc3339(region.created_at),
        updated_at: rfc3339(region.updated_at),
    }
}

#[utoipa::path(get, path = "/regions", tag = "regions",
    params(("organizationId" = Uuid, Query, description = "organization whose regions to list")),
    responses((status = 200, body = RegionsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<RegionsResponse>> {
    caller.require_instance_admin(REGIONS)?;
    let organization_id = query.required_uuid("organizationId")?;
    state.store.organization(organization_id).await?;
    let data = state
        .store
        .regions(organization_id)
        .await?
        .into_iter()
        .map(region_response)
        .collect();
    Ok(Json(RegionsResponse { data }))
}

#[utoipa::path(post, path = "/regions", tag = "regions", request_body = RegionCreateRequest,
    responses((status = 200, body = RegionResponse), (status = 409, body = ferry_api::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<RegionCreateRequest>,
) -> ApiResult<Json<RegionResponse>> {
    caller.require_instance_admin(REGIONS)?;
    let name = valid_name("name", &request.name)?;
    state
        .store
        .organization(request.organization_id)
        .await
        .map_err(|_| {
            ApiError::field(
                "organizationId",
                format!("organization {} does not exist", request.organization_id),
            )
        })?;
    let region = state
        .store
        .create_region(&NewRegion {
            id: Uuid::new_v4(),
            organization_id: request.organization_id,
            name,
            enabled: request.enabled.unwrap_or(true),
        })
        .await?;
    Ok(Json(region_response(region)))
}

#[utoipa::path(get, path = "/regions/{regionId}", tag = "regions",
    params(("regionId" = Uuid, Path)), responses((status = 200, body = RegionResponse)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(region_id): Path<String>,
) -> ApiResult<Json<RegionResponse>> {
    caller.require_instance_admin(REGIONS)?;
    let region_id = parse_uuid("regionId", &region_id)?;
    Ok(Json(region_response(
        state.store.live_region(region_id).await?,
    )))
}

#[utoipa::path(patch, path = "/regions/{regionId}", tag = "regions", request_body = RegionPatchRequest,
    params(("regionId" = Uuid, Path)), responses((status = 200, body = RegionResponse)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(region_id): Path<String>,
    ApiJson(request): ApiJson<RegionPatchRequest>,
) -> ApiResult<Json<RegionResponse>> {
    caller.require_instance_admin(REGIONS)?;
    let region_id = parse_uuid("regionId", &region_id)?;
    let name = request
        .name
        .as_deref()
        .map(|name| valid_name("name", name))
        .transpose()?;
    let region = state
        .store
        .update_region(
            region_id,
            &RegionChanges {
                name,
                enabled: request.enabled,
            },
        )
        .await?;
    Ok(Json(region_response(region)))
}

#[utoipa::path(delete, path = "/regions/{regionId}", tag = "regions",
    params(("regionId" = Uuid, Path)),
    responses((status = 200, body = RegionResponse), (status = 409, body = ferry_api::Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(region_id): Path<String>,
) -> ApiResult<Json<RegionResponse>> {
    caller.require_instance_admin(REGIONS)?;
    let region_id = parse_uuid("regionId", &region_id)?;
    Ok(Json(region_response(
        state.store.delete_region(region_id).await?,
    )))
}
