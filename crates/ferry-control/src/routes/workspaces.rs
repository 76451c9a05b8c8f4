use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use ferry_api::{
    DEFAULT_ORGANIZATION_ID, NotificationsConfig, WorkspaceCreateRequest, WorkspaceResponse,
    WorkspaceUpdateRequest, WorkspacesResponse,
};
use ferry_store::{NewWorkspace, Region, Store, Workspace, WorkspaceChanges, WorkspaceQuery};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams, parse_uuid, valid_name};
use crate::pagination::links;
use crate::services::access;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/workspaces", get(list).post(create))
        .route(
            "/workspaces/{workspaceId}",
            get(read).patch(update).delete(remove),
        )
}

async fn workspace_response(store: &Store, workspace: Workspace) -> ApiResult<WorkspaceResponse> {
    let region = store.region(workspace.region_id).await?;
    Ok(WorkspaceResponse {
        workspace_id: workspace.id,
        name: workspace.name,
        data_residency: region.name.to_lowercase(),
        notifications: workspace.notifications,
        region_id: region.id,
        organization_id: workspace.organization_id,
    })
}

/// The region a create or update asks for, from `regionId` (the spec's field) and/or
/// `dataResidency` (the guide's: a region name, a region id, or `auto`). `None` when neither
/// was given.
async fn requested_region(
    store: &Store,
    organization_id: Uuid,
    region_id: Option<Uuid>,
    data_residency: Option<&str>,
) -> ApiResult<Option<Region>> {
    let by_id = match region_id {
        Some(id) => Some(
            store
                .live_region(id)
                .await
                .ok()
                .filter(|region| region.organization_id == organization_id)
                .ok_or_else(|| {
                    ApiError::field("regionId", format!("region {id} does not exist"))
                })?,
        ),
        None => None,
    };
    let by_residency = match data_residency.map(str::trim) {
        Some("") => return Err(ApiError::field("dataResidency", "must not be empty")),
        Some(residency) => Some(region_for_residency(store, organization_id, residency).await?),
        None => None,
    };
    let region = match (by_id, by_residency) {
        (Some(by_id), Some(by_residency)) if by_id.id != by_residency.id => {
            return Err(ApiError::field(
                "dataResidency",
                format!(
                    "names region '{}' but regionId names region '{}'",
                    by_residency.name, by_id.name
                ),
            ));
        }
        (by_id, by_residency) => by_id.or(by_residency),
    };
    if let Some(region) = &region
        && !region.enabled
    {
        let field = if region_id.is_some() {
            "regionId"
        } else {
            "dataResidency"
        };
        return Err(ApiError::unprocessable_field(
            field,
            format!("region '{}' is disabled", region.name),
        ));
    }
    Ok(region)
}

async fn region_for_residency(
    store: &Store,
    organization_id: Uuid,
    residency: &str,
) -> ApiResult<Region> {
    if let Ok(id) = Uuid::parse_str(residency)
        && let Some(region) = store
            .live_region(id)
            .await
            .ok()
            .filter(|region| region.organization_id == organization_id)
    {
        return Ok(region);
    }
    if let Some(region) = store.region_by_name(organization_id, residency).await? {
        return Ok(region);
    }
    if residency.eq_ignore_ascii_case("auto")
        && let Some(default_region_id) =
            store.organization(organization_id).await?.default_region_id
    {
        return Ok(store.region(default_region_id).await?);
    }
    Err(ApiError::field(
        "dataResidency",
        format!("no region named '{residency}' in this organization"),
    ))
}

#[utoipa::path(get, path = "/workspaces", tag = "workspaces",
    params(
        ("workspaceIds" = Option<Vec<Uuid>>, Query),
        ("includeDeleted" = Option<bool>, Query),
        ("limit" = Option<i32>, Query),
        ("offset" = Option<i32>, Query),
    ),
    responses((status = 200, body = WorkspacesResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    query: QueryParams,
) -> ApiResult<Json<WorkspacesResponse>> {
    let ids = query.uuids("workspaceIds")?;
    let page = query.page()?;
    let workspaces = state
        .store
        .workspaces(&WorkspaceQuery {
            ids: (!ids.is_empty()).then_some(ids),
            include_deleted: query.bool("includeDeleted", false)?,
            visibility: caller.workspace_visibility(),
            limit: page.limit,
            offset: page.offset,
        })
        .await?;
    let page_links = links(
        &state,
        &headers,
        uri.path(),
        &query.filters(),
        page,
        workspaces.len(),
    );
    let mut data = Vec::with_capacity(workspaces.len());
    for workspace in workspaces {
        data.push(workspace_response(&state.store, workspace).await?);
    }
    Ok(Json(WorkspacesResponse {
        data,
        next: page_links.next,
        previous: page_links.previous,
    }))
}

#[utoipa::path(post, path = "/workspaces", tag = "workspaces", request_body = WorkspaceCreateRequest,
    responses((status = 200, body = WorkspaceResponse)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<WorkspaceCreateRequest>,
) -> ApiResult<Json<WorkspaceResponse>> {
    let name = valid_name("name", &request.name)?;
    let organization_id = request.organization_id.unwrap_or(DEFAULT_ORGANIZATION_ID);
    let organization = state
        .store
        .organization(organization_id)
        .await
        .map_err(|_| {
            ApiError::field(
                "organizationId",
                format!("organization {organization_id} does not exist"),
            )
        })?;
    caller.require_organization_access(organization_id, Access::Edit)?;
    let region_id = match requested_region(
        &state.store,
        organization_id,
        request.region_id,
        request.data_residency.as_deref(),
    )
    .await?
    {
        Some(region) => region.id,
        None => organization.default_region_id.ok_or_else(|| {
            ApiError::field(
                "regionId",
                "the organization has no default region; name one",
            )
        })?,
    };
    let notifications = request
        .notifications
        .unwrap_or_else(NotificationsConfig::airbyte_default);
    let workspace = state
        .store
        .create_workspace(&NewWorkspace {
            id: Uuid::new_v4(),
            organization_id,
            name,
            region_id,
            notifications,
        })
        .await?;
    Ok(Json(workspace_response(&state.store, workspace).await?))
}

async fn visible_workspace(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Workspace> {
    access::workspace(state, caller, parse_uuid("workspaceId", id)?, Access::Read).await
}

#[utoipa::path(get, path = "/workspaces/{workspaceId}", tag = "workspaces",
    params(("workspaceId" = Uuid, Path)), responses((status = 200, body = WorkspaceResponse)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(workspace_id): Path<String>,
) -> ApiResult<Json<WorkspaceResponse>> {
    let workspace = visible_workspace(&state, &caller, &workspace_id).await?;
    Ok(Json(workspace_response(&state.store, workspace).await?))
}

#[utoipa::path(patch, path = "/workspaces/{workspaceId}", tag = "workspaces",
    request_body = WorkspaceUpdateRequest, params(("workspaceId" = Uuid, Path)),
    responses((status = 200, body = WorkspaceResponse)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(workspace_id): Path<String>,
    ApiJson(request): ApiJson<WorkspaceUpdateRequest>,
) -> ApiResult<Json<WorkspaceResponse>> {
    let workspace = visible_workspace(&state, &caller, &workspace_id).await?;
    caller.require_workspace_access(&workspace, Access::Edit)?;
    let name = request
        .name
        .as_deref()
        .map(|name| valid_name("name", name))
        .transpose()?;
    let region = requested_region(
        &state.store,
        workspace.organization_id,
        request.region_id,
        request.data_residency.as_deref(),
    )
    .await?;
    let workspace = state
        .store
        .update_workspace(
            workspace.id,
            &WorkspaceChanges {
                name,
                region_id: region.map(|region| region.id),
                notifications: request.notifications,
            },
        )
        .await?;
    Ok(Json(workspace_response(&state.store, workspace).await?))
}

#[utoipa::path(delete, path = "/workspaces/{workspaceId}", tag = "workspaces",
    params(("workspaceId" = Uuid, Path)), responses((status = 204)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(workspace_id): Path<String>,
) -> ApiResult<StatusCode> {
    let workspace = visible_workspace(&state, &caller, &workspace_id).await?;
    caller.require_workspace_access(&workspace, Access::Admin)?;
    state.store.delete_workspace(workspace.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
