use ferry_api::{
    AttemptStatus, ConnectionSchedule, ConnectorRole, DestinationNaming, FailureOrigin,
    FailureType, JobStatus, JobType, NotificationsConfig, StreamConfigurations, StreamStats,
    TaskKind, TaskStatus,
};
use serde_json::Value;
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

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub region_id: Uuid,
    pub notifications: NotificationsConfig,
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
    pub notifications: NotificationsConfig,
}

#[derive(Debug, Clone, Default)]
pub struct WorkspaceChanges {
    pub name: Option<String>,
    pub region_id: Option<Uuid>,
    pub notifications: Option<NotificationsConfig>,
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

/// A source or a destination (Airbyte's "actor"; its `kind` is its role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Uuid,
    pub kind: ConnectorRole,
    pub workspace_id: Uuid,
    pub name: String,
    /// `sourceType` / `destinationType`, e.g. `faker`, `postgres`.
    pub connector_type: String,
    pub definition_id: Uuid,
    /// The configuration as JSON text.
    pub configuration: String,
    pub tombstone: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewActor {
    pub id: Uuid,
    pub kind: ConnectorRole,
    pub workspace_id: Uuid,
    pub name: String,
    pub connector_type: String,
    pub definition_id: Uuid,
    pub configuration: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub source_id: Uuid,
    pub destination_id: Uuid,
    pub name: String,
    /// `active`, `inactive`, `deprecated` or `locked`.
    pub status: String,
    pub schedule: ConnectionSchedule,
    pub configurations: StreamConfigurations,
    /// Where streams go in the destination (namespace definition, prefix).
    pub naming: DestinationNaming,
    pub tombstone: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewConnection {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub source_id: Uuid,
    pub destination_id: Uuid,
    pub name: String,
    pub status: String,
    pub schedule: ConnectionSchedule,
    pub configurations: StreamConfigurations,
    pub naming: DestinationNaming,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionChanges {
    pub name: Option<String>,
    pub status: Option<String>,
    pub schedule: Option<ConnectionSchedule>,
    pub configurations: Option<StreamConfigurations>,
    pub naming: Option<DestinationNaming>,
}

/// A page of workspace-scoped rows (actors, connections, jobs).
#[derive(Debug, Clone)]
pub struct ScopedQuery {
    /// Only rows of these workspaces; `None` for all.
    pub workspace_ids: Option<Vec<Uuid>>,
    pub include_deleted: bool,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub connection_id: Uuid,
    pub workspace_id: Uuid,
    pub region_id: Uuid,
    pub job_type: JobType,
    pub status: JobStatus,
    pub attempt_count: i64,
    pub max_attempts: i64,
    pub next_attempt_at: i64,
    pub current_attempt_id: Option<Uuid>,
    pub lease_expires_at: Option<i64>,
    pub cancel_requested: bool,
    /// The last attempt's failure (cleared when an attempt succeeds).
    pub failure_reason: Option<String>,
    pub failure_origin: Option<FailureOrigin>,
    pub failure_type: Option<FailureType>,
    pub created_at: i64,
    pub updated_at: i64,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub connection_id: Uuid,
    pub workspace_id: Uuid,
    pub region_id: Uuid,
    pub job_type: JobType,
    pub max_attempts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: Uuid,
    pub job_id: i64,
    pub attempt_number: i64,
    pub region_id: Uuid,
    pub dataplane_id: Uuid,
    pub status: AttemptStatus,
    pub failure_reason: Option<String>,
    pub failure_origin: Option<FailureOrigin>,
    pub failure_type: Option<FailureType>,
    pub rows_synced: i64,
    pub bytes_synced: i64,
    /// What the attempt committed per stream.
    pub stream_stats: Vec<StreamStats>,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct JobQuery {
    pub workspace_ids: Option<Vec<Uuid>>,
    pub connection_id: Option<Uuid>,
    pub job_type: Option<JobType>,
    pub status: Option<JobStatus>,
    pub created_at_start: Option<i64>,
    pub created_at_end: Option<i64>,
    pub updated_at_start: Option<i64>,
    pub updated_at_end: Option<i64>,
    /// `created_at` or `updated_at`.
    pub order_by: &'static str,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// How a failed attempt is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay before the second attempt; doubled for each later one.
    pub backoff_base_millis: i64,
    pub backoff_max_millis: i64,
}

impl RetryPolicy {
    pub fn delay_after(&self, attempt_number: i64) -> i64 {
        let exponent = u32::try_from((attempt_number - 1).clamp(0, 20)).unwrap_or(20);
        self.backoff_base_millis
            .saturating_mul(1_i64 << exponent)
            .min(self.backoff_max_millis)
    }
}

/// A state row: the stream key and the stream's state object.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredState {
    pub stream: String,
    pub state: Value,
    /// Where a large state is kept instead (the state bucket); `state` is then null.
    pub reference: Option<ferry_api::StateReference>,
}

/// What a heartbeat learns about the attempts a data plane says it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRenewal {
    /// Attempts whose job was cancelled.
    pub cancel: Vec<Uuid>,
    /// Attempts the data plane no longer holds.
    pub lost: Vec<Uuid>,
}

/// A workspace's own connector: a program speaking the Airbyte protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDefinition {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub kind: ConnectorRole,
    pub name: String,
    pub docker_repository: String,
    pub docker_image_tag: String,
    pub documentation_url: Option<String>,
    /// The command line: the program and its leading arguments.
    pub command: Vec<String>,
    pub created_at: i64,
}

/// A check or discover to run on a data plane of a region.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorTask {
    pub id: Uuid,
    pub region_id: Uuid,
    pub kind: TaskKind,
    pub actor_kind: ConnectorRole,
    pub actor_id: Uuid,
    pub status: TaskStatus,
    pub dataplane_id: Option<Uuid>,
    /// The answer (catalog, or connection status).
    pub result: Option<Value>,
    pub error: Option<String>,
    pub created_at: i64,
    /// When it must be answered by (epoch ms): its waiter gives up then, so it is
    /// claimable only before.
    pub expires_at: i64,
}
