//! Sources, destinations, connections and jobs (Airbyte public API §6–8).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceCreateRequest {
    pub name: String,
    pub workspace_id: Uuid,
    /// Connector configuration; `sourceType` names a built-in connector.
    #[schema(value_type = Object)]
    pub configuration: Value,
    #[serde(default)]
    pub definition_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceResponse {
    pub source_id: Uuid,
    pub name: String,
    pub source_type: String,
    pub definition_id: Uuid,
    pub workspace_id: Uuid,
    #[schema(value_type = Object)]
    pub configuration: Value,
    /// Epoch seconds.
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourcesResponse {
    pub data: Vec<SourceResponse>,
    pub next: String,
    pub previous: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationCreateRequest {
    pub name: String,
    pub workspace_id: Uuid,
    #[schema(value_type = Object)]
    pub configuration: Value,
    #[serde(default)]
    pub definition_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationResponse {
    pub destination_id: Uuid,
    pub name: String,
    pub destination_type: String,
    pub definition_id: Uuid,
    pub workspace_id: Uuid,
    #[schema(value_type = Object)]
    pub configuration: Value,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DestinationsResponse {
    pub data: Vec<DestinationResponse>,
    pub next: String,
    pub previous: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSchedule {
    /// `manual`, `cron` (Quartz `cronExpression`) or `basic` (`basicTiming`, e.g.
    /// `Every 24 hours`).
    pub schedule_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_timing: Option<String>,
}

/// Where a connection puts streams in the destination (Airbyte's fields of that name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionNaming {
    /// `destination` (default), `source` or `custom_format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionCreateRequest {
    pub source_id: Uuid,
    pub destination_id: Uuid,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub schedule: Option<ConnectionSchedule>,
    #[serde(default)]
    pub status: Option<String>,
    /// Which streams to sync, and how; all streams with default modes when absent.
    #[serde(default)]
    pub configurations: Option<StreamConfigurations>,
    #[serde(flatten)]
    pub naming: ConnectionNaming,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamConfigurations {
    #[serde(default)]
    pub streams: Vec<StreamConfiguration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamConfiguration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_field: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Vec<Vec<String>>>,
}

/// Airbyte's `ConnectionSyncModeEnum`, split into the protocol's source and destination modes.
pub use ferry_protocol::catalog::split_sync_mode;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionResponse {
    pub connection_id: Uuid,
    pub name: String,
    pub source_id: Uuid,
    pub destination_id: Uuid,
    pub workspace_id: Uuid,
    pub status: String,
    pub schedule: ConnectionSchedule,
    pub configurations: StreamConfigurations,
    #[serde(flatten)]
    #[schema(value_type = ConnectionNaming)]
    pub naming: ferry_protocol::catalog::DestinationNaming,
    pub created_at: i64,
    #[schema(value_type = Vec<Object>)]
    pub tags: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionsResponse {
    pub data: Vec<ConnectionResponse>,
    pub next: String,
    pub previous: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCreateRequest {
    pub connection_id: Uuid,
    pub job_type: String,
}

/// One attempt at running a job (Ferry extension): where it ran and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptResponse {
    pub attempt_id: Uuid,
    pub attempt_number: i64,
    pub status: crate::AttemptStatus,
    pub region_id: Uuid,
    pub dataplane_id: Uuid,
    pub dataplane_name: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Where the failure came from (Airbyte's `failureOrigin`): `source`, `destination`,
    /// `replication`, `persistence`, `airbyte_platform`, `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub failure_origin: Option<crate::FailureOrigin>,
    /// What kind of failure (Airbyte's `failureType`): a `config_error` is not retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub failure_type: Option<crate::FailureType>,
    pub rows_synced: i64,
    pub bytes_synced: i64,
    pub stream_stats: Vec<StreamStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobResponse {
    pub job_id: i64,
    pub status: crate::JobStatus,
    pub job_type: crate::JobType,
    pub start_time: String,
    pub connection_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    pub bytes_synced: i64,
    pub rows_synced: i64,
    /// Ferry extension: the region the job is bound to.
    pub region_id: Uuid,
    /// Ferry extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Ferry extension: the last attempt's failure origin, beside `failureReason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub failure_origin: Option<crate::FailureOrigin>,
    /// Ferry extension: the last attempt's failure type, beside `failureReason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub failure_type: Option<crate::FailureType>,
    /// Ferry extension: committed per stream, over all attempts.
    pub stream_stats: Vec<StreamStats>,
    /// Ferry extension.
    pub attempts: Vec<AttemptResponse>,
}

/// What was committed for one stream (Ferry extension, in the shape of Airbyte's internal
/// API stream stats).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamStats {
    pub stream_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_namespace: Option<String>,
    pub records_committed: i64,
    pub bytes_committed: i64,
    /// What the source estimated the stream holds (its `ESTIMATE` trace), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_records: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_bytes: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobsResponse {
    pub data: Vec<JobResponse>,
    pub next: String,
    pub previous: String,
}

/// `POST /workspaces/{workspaceId}/definitions/{sources|destinations}`. Ferry runs custom
/// connectors as local programs speaking the Airbyte protocol: `command` (Ferry extension)
/// is the program and its leading arguments; the docker fields are kept for reference.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionCreateRequest {
    pub name: String,
    #[serde(default)]
    pub docker_repository: Option<String>,
    #[serde(default)]
    pub docker_image_tag: Option<String>,
    #[serde(default)]
    pub documentation_url: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionResponse {
    pub id: Uuid,
    pub name: String,
    pub docker_repository: String,
    pub docker_image_tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DefinitionsResponse {
    pub data: Vec<DefinitionResponse>,
}

/// `PATCH /sources/{id}` and `PATCH /destinations/{id}`; `PUT` requires name and
/// configuration. A secret sent back as `**********` keeps its stored value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActorPatchRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub configuration: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActorPutRequest {
    pub name: String,
    #[schema(value_type = Object)]
    pub configuration: Value,
}

/// A PUT is a PATCH that gives both fields.
impl From<ActorPutRequest> for ActorPatchRequest {
    fn from(put: ActorPutRequest) -> Self {
        Self {
            name: Some(put.name),
            workspace_id: None,
            configuration: Some(put.configuration),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPatchRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub configurations: Option<StreamConfigurations>,
    #[serde(default)]
    pub schedule: Option<ConnectionSchedule>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(flatten)]
    pub naming: ConnectionNaming,
}
