use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use ferry_api::{
    WorkspaceCreateRequest, WorkspaceResponse, WorkspaceUpdateRequest, WorkspacesResponse,
};
use ferry_store::Workspace;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::ApiResult;
use crate::extract::{ApiJson, QueryParams, parse_uuid};
use crate::pagination::links;
use crate::services::{access, workspaces};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/workspaces", get(list).post(create))
        .route(
            "/workspaces/{workspaceId}",
            get(read).patch(update).delete(remove),
        )
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
    let data = workspaces::list(
        &state,
        &caller,
        ids,
        query.bool("includeDeleted", false)?,
        page,
    )
    .await?;
    let page_links = links(
        &state,
        &headers,
        uri.path(),
        &query.filters(),
        page,
        data.len(),
    );
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
    Ok(Json(workspaces::create(&state, &caller, request).await?))
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
    let id = parse_uuid("workspaceId", &workspace_id)?;
    Ok(Json(workspaces::read(&state, &caller, id).await?))
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
    let id = parse_uuid("workspaceId", &workspace_id)?;
    Ok(Json(
        workspaces::update(&state, &caller, id, request).await?,
    ))
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
