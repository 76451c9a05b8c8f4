use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use ferry_api::{OrganizationResponse, OrganizationsResponse};

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new().route("/organizations", get(list))
}

#[utoipa::path(get, path = "/organizations", tag = "organizations",
    responses((status = 200, body = OrganizationsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<OrganizationsResponse>> {
    // A user with a role in one workspace is a member of that workspace's organization.
    let mut member_of = Vec::new();
    for workspace_id in caller
        .permissions
        .iter()
        .filter_map(|permission| permission.workspace_id)
    {
        member_of.push(state.store.workspace(workspace_id).await?.organization_id);
    }
    let data = state
        .store
        .organizations()
        .await?
        .into_iter()
        .filter(|organization| {
            caller.has_organization_access(organization.id, Access::Read)
                || member_of.contains(&organization.id)
        })
        .map(|organization| OrganizationResponse {
            organization_id: organization.id,
            organization_name: organization.name,
            email: organization.email,
        })
        .collect();
    Ok(Json(OrganizationsResponse { data }))
}
