//! Workspaces: what the public API and the web UI both do to them, with the same checks.

use ferry_api::{
    DEFAULT_ORGANIZATION_ID, NotificationsConfig, WorkspaceCreateRequest, WorkspaceResponse,
    WorkspaceUpdateRequest,
};
use ferry_store::{NewWorkspace, Region, Store, Workspace, WorkspaceChanges, WorkspaceQuery};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::valid_name;
use crate::services::access;

pub async fn response(store: &Store, workspace: Workspace) -> ApiResult<WorkspaceResponse> {
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

/// A new workspace of the organization (default: the default one) in the region asked for
/// (default: the organization's default region); editors of the organization only.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: WorkspaceCreateRequest,
) -> ApiResult<WorkspaceResponse> {
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
    response(&state.store, workspace).await
}

/// The workspaces the caller may see, as a page.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    ids: Vec<Uuid>,
    include_deleted: bool,
    page: crate::extract::Page,
) -> ApiResult<Vec<WorkspaceResponse>> {
    let workspaces = state
        .store
        .workspaces(&WorkspaceQuery {
            ids: (!ids.is_empty()).then_some(ids),
            include_deleted,
            visibility: caller.workspace_visibility(),
            limit: page.limit,
            offset: page.offset,
        })
        .await?;
    let mut data = Vec::with_capacity(workspaces.len());
    for workspace in workspaces {
        data.push(response(&state.store, workspace).await?);
    }
    Ok(data)
}

/// The live workspace, if the caller may see it.
pub async fn read(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<WorkspaceResponse> {
    let workspace = access::workspace(state, caller, id, Access::Read).await?;
    response(&state.store, workspace).await
}

/// Renames the workspace and/or moves it to another region (editors); later jobs run there.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    request: WorkspaceUpdateRequest,
) -> ApiResult<WorkspaceResponse> {
    let workspace = access::workspace(state, caller, id, Access::Read).await?;
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
    response(&state.store, workspace).await
}

/// The regions a workspace of the organization may be put in: its enabled ones (what
/// [`update`] accepts).
pub async fn region_choices(state: &AppState, organization_id: Uuid) -> ApiResult<Vec<Region>> {
    Ok(state
        .store
        .regions(organization_id)
        .await?
        .into_iter()
        .filter(|region| region.enabled)
        .collect())
}
