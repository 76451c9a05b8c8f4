use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use ferry_api::{
    PermissionCreateRequest, PermissionResponse, PermissionType, PermissionUpdateRequest,
    PermissionsResponse, UserCreateRequest, UserResponse, UsersResponse,
};
use ferry_store::{NewPermission, Permission, User};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams, parse_uuid, valid_name};
use crate::services::admins;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/permissions", get(list).post(create))
        .route(
            "/permissions/{permissionId}",
            get(read).patch(update).delete(remove),
        )
        .route("/users", get(list_users).post(create_user))
}

fn permission_response(permission: Permission) -> ApiResult<PermissionResponse> {
    let permission_type = PermissionType::parse(&permission.permission_type).ok_or_else(|| {
        ApiError::Internal(format!(
            "stored permission type {} is unknown",
            permission.permission_type
        ))
    })?;
    Ok(PermissionResponse {
        permission_id: permission.id,
        permission_type,
        user_id: permission.user_id,
        workspace_id: permission.workspace_id,
        organization_id: permission.organization_id,
    })
}

fn user_response(user: User) -> UserResponse {
    UserResponse {
        id: user.id,
        name: user.name,
        email: user.email,
    }
}

/// The organization a permission's scope falls in; `None` for instance-wide.
async fn scope_organization(state: &AppState, permission: &Permission) -> ApiResult<Option<Uuid>> {
    if let Some(workspace_id) = permission.workspace_id {
        return Ok(Some(
            state.store.workspace(workspace_id).await?.organization_id,
        ));
    }
    Ok(permission.organization_id)
}

/// Granting, changing or revoking a permission needs admin rights over its scope.
fn require_grant_rights(
    caller: &Caller,
    permission_type: PermissionType,
    organization_id: Option<Uuid>,
) -> ApiResult<()> {
    match (permission_type, organization_id) {
        (PermissionType::InstanceAdmin, _) | (_, None) => {
            caller.require_instance_admin("instance-wide permissions")
        }
        (_, Some(organization_id)) => {
            caller.require_organization_access(organization_id, Access::Admin)
        }
    }
}

#[utoipa::path(post, path = "/permissions", tag = "permissions",
    request_body = PermissionCreateRequest, responses((status = 200, body = PermissionResponse)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PermissionCreateRequest>,
) -> ApiResult<Json<PermissionResponse>> {
    let kind = request.permission_type;
    let (workspace_id, organization_id) = if kind.is_workspace_scoped() {
        let workspace_id = request.workspace_id.ok_or_else(|| {
            ApiError::field("workspaceId", format!("is required for {}", kind.as_str()))
        })?;
        if request.organization_id.is_some() {
            return Err(ApiError::field(
                "organizationId",
                format!("must not be given with {}", kind.as_str()),
            ));
        }
        (Some(workspace_id), None)
    } else if kind.is_organization_scoped() {
        let organization_id = request.organization_id.ok_or_else(|| {
            ApiError::field(
                "organizationId",
                format!("is required for {}", kind.as_str()),
            )
        })?;
        if request.workspace_id.is_some() {
            return Err(ApiError::field(
                "workspaceId",
                format!("must not be given with {}", kind.as_str()),
            ));
        }
        (None, Some(organization_id))
    } else {
        (None, None)
    };
    state.store.user(request.user_id).await.map_err(|_| {
        ApiError::field("userId", format!("user {} does not exist", request.user_id))
    })?;
    let scope = if let Some(workspace_id) = workspace_id {
        let workspace = state
            .store
            .live_workspace(workspace_id)
            .await
            .map_err(|_| {
                ApiError::field(
                    "workspaceId",
                    format!("workspace {workspace_id} does not exist"),
                )
            })?;
        Some(workspace.organization_id)
    } else if let Some(organization_id) = organization_id {
        state
            .store
            .organization(organization_id)
            .await
            .map_err(|_| {
                ApiError::field(
                    "organizationId",
                    format!("organization {organization_id} does not exist"),
                )
            })?;
        Some(organization_id)
    } else {
        None
    };
    require_grant_rights(&caller, kind, scope)?;
    let permission = state
        .store
        .create_permission(&NewPermission {
            id: Uuid::new_v4(),
            user_id: request.user_id,
            permission_type: kind.as_str().to_owned(),
            workspace_id,
            organization_id,
        })
        .await?;
    Ok(Json(permission_response(permission)?))
}

#[utoipa::path(get, path = "/permissions", tag = "permissions",
    params(("userId" = Option<Uuid>, Query), ("organizationId" = Option<Uuid>, Query)),
    responses((status = 200, body = PermissionsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<PermissionsResponse>> {
    let user_id = query.uuid("userId")?;
    let organization_id = query.uuid("organizationId")?;
    let allowed = caller.is_instance_admin()
        || organization_id.is_some_and(|organization| {
            caller.has_organization_access(organization, Access::Admin)
        })
        || (user_id == Some(caller.user.id));
    let user_id = match (allowed, user_id) {
        (true, user_id) => user_id,
        // Anyone may list their own permissions.
        (false, None) if organization_id.is_none() => Some(caller.user.id),
        (false, _) => {
            return Err(ApiError::Forbidden(
                "listing others' permissions needs organization admin rights".to_owned(),
            ));
        }
    };
    let data = state
        .store
        .permissions(user_id, organization_id)
        .await?
        .into_iter()
        .map(permission_response)
        .collect::<ApiResult<_>>()?;
    Ok(Json(PermissionsResponse { data }))
}

async fn reachable_permission(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<Permission> {
    let permission_id = parse_uuid("permissionId", id)?;
    let permission = state.store.permission(permission_id).await?;
    if permission.user_id == caller.user.id || caller.is_instance_admin() {
        return Ok(permission);
    }
    match scope_organization(state, &permission).await? {
        Some(organization_id) if caller.has_organization_access(organization_id, Access::Admin) => {
            Ok(permission)
        }
        _ => Err(ApiError::NotFound(format!(
            "permission {permission_id} not found"
        ))),
    }
}

#[utoipa::path(get, path = "/permissions/{permissionId}", tag = "permissions",
    params(("permissionId" = Uuid, Path)), responses((status = 200, body = PermissionResponse)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(permission_id): Path<String>,
) -> ApiResult<Json<PermissionResponse>> {
    let permission = reachable_permission(&state, &caller, &permission_id).await?;
    Ok(Json(permission_response(permission)?))
}

#[utoipa::path(patch, path = "/permissions/{permissionId}", tag = "permissions",
    request_body = PermissionUpdateRequest, params(("permissionId" = Uuid, Path)),
    responses((status = 200, body = PermissionResponse)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(permission_id): Path<String>,
    ApiJson(request): ApiJson<PermissionUpdateRequest>,
) -> ApiResult<Json<PermissionResponse>> {
    let permission = reachable_permission(&state, &caller, &permission_id).await?;
    let current = PermissionType::parse(&permission.permission_type)
        .ok_or_else(|| ApiError::Internal("stored permission type is unknown".to_owned()))?;
    let wanted = request.permission_type;
    if current.is_workspace_scoped() != wanted.is_workspace_scoped()
        || current.is_organization_scoped() != wanted.is_organization_scoped()
    {
        return Err(ApiError::field(
            "permissionType",
            format!(
                "cannot change a {} permission into {}: the scope differs",
                current.as_str(),
                wanted.as_str()
            ),
        ));
    }
    let scope = scope_organization(&state, &permission).await?;
    require_grant_rights(&caller, current, scope)?;
    require_grant_rights(&caller, wanted, scope)?;
    let permission = state
        .store
        .update_permission(permission.id, wanted.as_str())
        .await?;
    Ok(Json(permission_response(permission)?))
}

#[utoipa::path(delete, path = "/permissions/{permissionId}", tag = "permissions",
    params(("permissionId" = Uuid, Path)), responses((status = 204),
        (status = 409, description = "the instance_admin permission of the last instance admin with an application", body = ferry_api::Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(permission_id): Path<String>,
) -> ApiResult<StatusCode> {
    let permission = reachable_permission(&state, &caller, &permission_id).await?;
    let kind = PermissionType::parse(&permission.permission_type)
        .ok_or_else(|| ApiError::Internal("stored permission type is unknown".to_owned()))?;
    let scope = scope_organization(&state, &permission).await?;
    require_grant_rights(&caller, kind, scope)?;
    admins::check_permission_removal(&state.store, &permission).await?;
    state.store.delete_permission(permission.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/users", tag = "users",
    params(
        ("organizationId" = Uuid, Query),
        ("ids" = Option<Vec<Uuid>>, Query),
        ("emails" = Option<Vec<String>>, Query),
    ),
    responses((status = 200, body = UsersResponse)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<UsersResponse>> {
    let organization_id = query.required_uuid("organizationId")?;
    state.store.organization(organization_id).await?;
    caller.require_organization_access(organization_id, Access::Read)?;
    let data = state
        .store
        .users_of_organization(
            organization_id,
            &query.uuids("ids")?,
            &query.strings("emails"),
        )
        .await?
        .into_iter()
        .map(user_response)
        .collect();
    Ok(Json(UsersResponse { data }))
}

/// Ferry extension: creates a user (who then needs a permission and an application).
#[utoipa::path(post, path = "/users", tag = "users", request_body = UserCreateRequest,
    responses((status = 200, body = UserResponse)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<UserCreateRequest>,
) -> ApiResult<Json<UserResponse>> {
    caller.require_instance_admin("users")?;
    let name = valid_name("name", &request.name)?;
    let email = request.email.trim();
    let valid_email = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(' ')
    });
    if !valid_email {
        return Err(ApiError::field(
            "email",
            format!("'{email}' is not an email address"),
        ));
    }
    let user = state
        .store
        .create_user(Uuid::new_v4(), &name, email)
        .await?;
    Ok(Json(user_response(user)))
}
