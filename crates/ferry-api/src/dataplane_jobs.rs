//! Ferry's own data-plane job endpoints (`/api/v1/jobs/...`), beside Airbyte's
//! token/initialize/heartbeat. snake_case, like Airbyte's internal API.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// `POST /api/v1/jobs/claim`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// How long the server may hold the request open waiting for a job (long poll).
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// Claim this job only (it must be in the caller's region).
    #[serde(default)]
    pub job_id: Option<i64>,
    /// Claim only jobs, or only connector tasks; either (tasks first) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<crate::ClaimKind>,
}

/// A claimed job: the attempt id fences every later call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedJob {
    pub job_id: i64,
    pub attempt_id: Uuid,
    pub attempt_number: i64,
    pub job_type: crate::JobType,
    pub connection_id: Uuid,
    pub lease_expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimResponse {
    pub job: Option<ClaimedJob>,
    /// A check or discover to run now (claimed before jobs: an API call waits for it).
    #[serde(default)]
    pub task: Option<ClaimedTask>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedTask {
    pub task_id: Uuid,
    /// `check` or `discover`.
    pub kind: crate::TaskKind,
    /// `source` or `destination`.
    pub role: crate::ConnectorRole,
    pub connector_type: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    pub configuration: Value,
    /// How long the data plane has to answer, in milliseconds: the API call waiting for the
    /// answer gives up then (absent: the data plane's own bound for the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `POST /api/v1/tasks/{taskId}/result`: the answer, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskResult {
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
}

/// What a data plane needs to run an attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptConfig {
    pub job_id: i64,
    pub attempt_id: Uuid,
    pub job_type: crate::JobType,
    pub connection_id: Uuid,
    pub source_type: String,
    pub source_configuration: Value,
    pub destination_type: String,
    pub destination_configuration: Value,
    /// For a custom (external) source: its command line; `None` for a built-in one.
    #[serde(default)]
    pub source_command: Option<Vec<String>>,
    #[serde(default)]
    pub destination_command: Option<Vec<String>>,
    /// The connection's stream configurations (`{"streams": [...]}`).
    #[serde(default)]
    pub stream_configurations: Value,
    /// Where streams go in the destination.
    #[serde(default)]
    pub naming: ferry_protocol::catalog::DestinationNaming,
    /// Committed state per stream key (`namespace.name`, or `name`).
    pub state: Vec<StreamState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// `namespace.name`, or the stream name alone without a namespace.
    pub stream: String,
    /// The Airbyte STATE message's state object for that stream, as the source emitted it
    /// (`null` when it is kept in the state bucket instead).
    pub state: Value,
    /// Where a large state is kept instead (the guide's `state` bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<crate::StateReference>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProgressReport {
    pub rows_synced: i64,
    pub bytes_synced: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateCommit {
    pub states: Vec<StreamState>,
    pub rows_synced: i64,
    pub bytes_synced: i64,
    /// What the attempt committed so far, per stream.
    #[serde(default)]
    pub streams: Vec<crate::StreamStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishReport {
    /// `succeeded`, `failed` or `cancelled` (`running` is refused).
    pub status: crate::AttemptStatus,
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// Where the failure came from; absent for an attempt that did not fail, or from a
    /// data plane too old to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_origin: Option<ferry_protocol::failure::FailureOrigin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<ferry_protocol::failure::FailureType>,
    pub rows_synced: i64,
    pub bytes_synced: i64,
}

/// What the heartbeat's reply tells a data plane about its running attempts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptDirectives {
    /// Attempts whose job was cancelled: stop them and report `cancelled`.
    #[serde(default)]
    pub cancel: Vec<Uuid>,
    /// Attempts this data plane no longer holds (lease lost): stop them, commit nothing.
    #[serde(default)]
    pub lost: Vec<Uuid>,
}
