use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Airbyte's permission types, from strongest to weakest within each scope.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PermissionType {
    InstanceAdmin,
    OrganizationAdmin,
    OrganizationEditor,
    OrganizationRunner,
    OrganizationReader,
    OrganizationMember,
    WorkspaceOwner,
    WorkspaceAdmin,
    WorkspaceEditor,
    WorkspaceRunner,
    WorkspaceReader,
}

impl PermissionType {
    pub const ALL: [PermissionType; 11] = [
        Self::InstanceAdmin,
        Self::OrganizationAdmin,
        Self::OrganizationEditor,
        Self::OrganizationRunner,
        Self::OrganizationReader,
        Self::OrganizationMember,
        Self::WorkspaceOwner,
        Self::WorkspaceAdmin,
        Self::WorkspaceEditor,
        Self::WorkspaceRunner,
        Self::WorkspaceReader,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstanceAdmin => "instance_admin",
            Self::OrganizationAdmin => "organization_admin",
            Self::OrganizationEditor => "organization_editor",
            Self::OrganizationRunner => "organization_runner",
            Self::OrganizationReader => "organization_reader",
            Self::OrganizationMember => "organization_member",
            Self::WorkspaceOwner => "workspace_owner",
            Self::WorkspaceAdmin => "workspace_admin",
            Self::WorkspaceEditor => "workspace_editor",
            Self::WorkspaceRunner => "workspace_runner",
            Self::WorkspaceReader => "workspace_reader",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    pub fn is_workspace_scoped(self) -> bool {
        self.as_str().starts_with("workspace_")
    }

    pub fn is_organization_scoped(self) -> bool {
        self.as_str().starts_with("organization_")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionCreateRequest {
    pub permission_type: PermissionType,
    pub user_id: Uuid,
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
    #[serde(default)]
    pub organization_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionUpdateRequest {
    pub permission_type: PermissionType,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionResponse {
    pub permission_id: Uuid,
    pub permission_type: PermissionType,
    pub user_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PermissionsResponse {
    pub data: Vec<PermissionResponse>,
}

/// Ferry extension: Airbyte's public API has no way to create a user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserCreateRequest {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsersResponse {
    pub data: Vec<UserResponse>,
}
