//! Ferry's data-plane job endpoints (`/api/v1/jobs/...`). Each checks, first thing, that
//! the job belongs to the calling data plane's region (403, logged, otherwise), then that the
//! attempt named is still the job's current one (409: fenced).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use ferry_api::{
    AttemptConfig, ClaimRequest, ClaimResponse, ConnectorRole, FinishReport, JobType,
    ProgressReport, StateCommit, StreamState, TaskResult,
};
use ferry_store::{Job, StoredState};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::DataplaneCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, parse_uuid};
use crate::services::{access, attempt_logs, connector_tasks, definitions, jobs};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/claim", post(claim))
        .route("/{jobId}/attempts/{attemptId}/config", get(config))
        .route("/{jobId}/attempts/{attemptId}/progress", post(progress))
        .route("/{jobId}/attempts/{attemptId}/state", post(commit_state))
        .route("/{jobId}/attempts/{attemptId}/finish", post(finish))
        .route("/{jobId}/attempts/{attemptId}/hand-back", post(hand_back))
        .route("/{jobId}/attempts/{attemptId}/logs", post(append_log))
}

fn parse_job_id(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::field("jobId", format!("must be an integer, got '{text}'")))
}

/// The job and attempt the path names, if the caller holds them.
async fn held_attempt(
    state: &AppState,
    caller: &DataplaneCaller,
    job_id: &str,
    attempt_id: &str,
) -> ApiResult<(Job, Uuid)> {
    let job_id = parse_job_id(job_id)?;
    let attempt_id = parse_uuid("attemptId", attempt_id)?;
    let job = access::held_attempt(state, caller, job_id, attempt_id).await?;
    Ok((job, attempt_id))
}

pub async fn claim(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    ApiJson(request): ApiJson<ClaimRequest>,
) -> ApiResult<Json<ClaimResponse>> {
    let wait = Duration::from_millis(request.wait_ms.unwrap_or(0));
    Ok(Json(
        jobs::claim(&state, &caller, wait, request.job_id, request.only).await?,
    ))
}

/// `POST /api/v1/tasks/{taskId}/result`, from the data plane that claimed the task.
pub async fn task_result(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path(task_id): Path<String>,
    ApiJson(answer): ApiJson<TaskResult>,
) -> ApiResult<Json<Value>> {
    let task_id = parse_uuid("taskId", &task_id)?;
    connector_tasks::answer(&state, &caller, task_id, &answer).await?;
    Ok(Json(serde_json::json!({})))
}

pub async fn config(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path((job_id, attempt_id)): Path<(String, String)>,
) -> ApiResult<Json<AttemptConfig>> {
    let (job, attempt_id) = held_attempt(&state, &caller, &job_id, &attempt_id).await?;
    let connection = state.store.connection(job.connection_id).await?;
    let source = state
        .store
        .actor(ConnectorRole::Source, connection.source_id)
        .await?;
    let destination = state
        .store
        .actor(ConnectorRole::Destination, connection.destination_id)
        .await?;
    // A reset starts from nothing; a sync resumes from what was committed.
    let committed = if job.job_type == JobType::Sync {
        state.store.connection_states(connection.id).await?
    } else {
        Vec::new()
    };
    // With a secrets manager these hold references, which the data plane resolves itself.
    let source_configuration = crate::secrets::managed::for_dataplane(&state, &source)?;
    let destination_configuration = crate::secrets::managed::for_dataplane(&state, &destination)?;
    let source_command = definitions::custom_command(&state, &source).await?;
    let destination_command = definitions::custom_command(&state, &destination).await?;
    Ok(Json(AttemptConfig {
        source_command,
        destination_command,
        stream_configurations: serde_json::to_value(&connection.configurations)
            .map_err(|error| ApiError::Internal(error.to_string()))?,
        naming: connection.naming,
        job_id: job.id,
        attempt_id,
        job_type: job.job_type,
        connection_id: connection.id,
        source_type: source.connector_type,
        source_configuration,
        destination_type: destination.connector_type,
        destination_configuration,
        state: committed
            .into_iter()
            .map(|row| StreamState {
                stream: row.stream,
                state: row.state,
                reference: row.reference,
            })
            .collect(),
    }))
}

pub async fn progress(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path((job_id, attempt_id)): Path<(String, String)>,
    ApiJson(report): ApiJson<ProgressReport>,
) -> ApiResult<Json<Value>> {
    let (job, attempt_id) = held_attempt(&state, &caller, &job_id, &attempt_id).await?;
    state
        .store
        .record_progress(job.id, attempt_id, report.rows_synced, report.bytes_synced)
        .await?;
    Ok(Json(serde_json::json!({})))
}

pub async fn commit_state(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path((job_id, attempt_id)): Path<(String, String)>,
    ApiJson(commit): ApiJson<StateCommit>,
) -> ApiResult<Json<Value>> {
    let (job, attempt_id) = held_attempt(&state, &caller, &job_id, &attempt_id).await?;
    let states: Vec<StoredState> = commit
        .states
        .into_iter()
        .map(|stream_state| StoredState {
            stream: stream_state.stream,
            state: stream_state.state,
            reference: stream_state.reference,
        })
        .collect();
    state
        .store
        .commit_state(
            job.id,
            attempt_id,
            &states,
            commit.rows_synced,
            commit.bytes_synced,
            &commit.streams,
        )
        .await?;
    Ok(Json(serde_json::json!({})))
}

pub async fn finish(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path((job_id, attempt_id)): Path<(String, String)>,
    ApiJson(report): ApiJson<FinishReport>,
) -> ApiResult<Json<Value>> {
    let (job, attempt_id) = held_attempt(&state, &caller, &job_id, &attempt_id).await?;
    let job = jobs::finish_attempt(&state, job.id, attempt_id, report).await?;
    attempt_logs::join_when_ended(&state, job.id, attempt_id);
    Ok(Json(serde_json::json!({"job_status": job.status})))
}

/// `POST …/hand-back`: the caller, draining, gives the attempt up with what it committed; the
/// job is claimable at once by any plane of the region.
pub async fn hand_back(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path((job_id, attempt_id)): Path<(String, String)>,
    ApiJson(counts): ApiJson<ProgressReport>,
) -> ApiResult<Json<Value>> {
    let (job, attempt_id) = held_attempt(&state, &caller, &job_id, &attempt_id).await?;
    let job = jobs::hand_back_attempt(&state, job.id, attempt_id, &counts).await?;
    attempt_logs::join_when_ended(&state, job.id, attempt_id);
    Ok(Json(serde_json::json!({"job_status": job.status})))
}

/// `POST …/attempts/{attemptId}/logs?offset=N`: the attempt's log from byte N on (text).
/// Taken from the data plane holding the attempt, even after its end, so that its last
/// lines are never refused; the answer says how much of the log is held.
pub async fn append_log(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path((job_id, attempt_id)): Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: axum::body::Body,
) -> ApiResult<Json<ferry_api::LogAppendResponse>> {
    let (job, attempt_id) = held_attempt(&state, &caller, &job_id, &attempt_id).await?;
    let offset = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "offset")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| ApiError::field("offset", "is required (the log's byte offset)"))?;
    let offset: u64 = offset.parse().map_err(|_| {
        ApiError::field(
            "offset",
            format!("must be a non-negative integer, got '{offset}'"),
        )
    })?;
    let bytes = axum::body::to_bytes(body, attempt_logs::MAX_PART_BYTES)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "a log part may hold at most {} bytes",
                attempt_logs::MAX_PART_BYTES
            ))
        })?;
    let received = attempt_logs::append(&state, job.id, attempt_id, offset, &bytes).await?;
    Ok(Json(ferry_api::LogAppendResponse { received }))
}
