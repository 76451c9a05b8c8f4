use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    /// The region `auto` means for this organization's workspaces.
    pub default_region_id: Option<Uuid>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub tombstone: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewRegion {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RegionChanges {
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataplane {
    pub id: Uuid,
    pub region_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub tombstone: bool,
    pub client_id: String,
    pub secret_hash: String,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_valid_until: Option<i64>,
    pub last_heartbeat_at: Option<i64>,
    pub version: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewDataplane {
    pub id: Uuid,
    pub region_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub client_id: String,
    pub secret_hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct DataplaneChanges {
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub region_id: Uuid,
    /// The notifications object as JSON text; the store does not interpret it.
    pub notifications: String,
    pub tombstone: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub region_id: Uuid,
    pub notifications: String,
}

#[derive(Debug, Clone, Default)]
pub struct WorkspaceChanges {
    pub name: Option<String>,
    pub region_id: Option<Uuid>,
    pub notifications: Option<String>,
}

/// Which workspaces a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    All,
    /// Workspaces of these organizations, plus these individual workspaces.
    Scoped {
        organization_ids: Vec<Uuid>,
        workspace_ids: Vec<Uuid>,
    },
}

#[derive(Debug, Clone)]
pub struct WorkspaceQuery {
    /// Only these workspaces, when given.
    pub ids: Option<Vec<Uuid>>,
    pub include_deleted: bool,
    pub visibility: Visibility,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub id: Uuid,
    pub user_id: Uuid,
    pub permission_type: String,
    pub workspace_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewPermission {
    pub id: Uuid,
    pub user_id: Uuid,
    pub permission_type: String,
    pub workspace_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub client_id: String,
    pub secret_hash: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewApplication {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub client_id: String,
    pub secret_hash: String,
}

/// Who a bearer token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    Application,
    Dataplane,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Dataplane => "dataplane",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "application" => Some(Self::Application),
            "dataplane" => Some(Self::Dataplane),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token_hash: String,
    pub principal_kind: PrincipalKind,
    pub principal_id: Uuid,
    pub expires_at: i64,
}
