//! Ferry's data-plane job endpoints (`/api/v1/jobs/...`). Each checks, first thing, that
//! the job belongs to the calling data plane's region (403, logged, otherwise), then that the
//! attempt named is still the job's current one (409: fenced).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use ferry_api::{
    AttemptConfig, ClaimRequest, ClaimResponse, ClaimedJob, ClaimedTask, FinishReport,
    ProgressReport, StateCommit, StreamState, TaskResult,
};
use ferry_store::{ActorKind, AttemptOutcome, Job, StoredState};
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

use crate::AppState;
use crate::auth::DataplaneCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, parse_uuid};

/// Longest a claim may wait for a job.
const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting claim looks again even without a wake-up: jobs created by another
/// control-plane replica do not wake this one, nor does a retry's backoff running out.
const CLAIM_POLL: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/claim", post(claim))
        .route("/{jobId}/attempts/{attemptId}/config", get(config))
        .route("/{jobId}/attempts/{attemptId}/progress", post(progress))
        .route("/{jobId}/attempts/{attemptId}/state", post(commit_state))
        .route("/{jobId}/attempts/{attemptId}/finish", post(finish))
}

fn parse_job_id(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::field("jobId", format!("must be an integer, got '{text}'")))
}

/// The job, if it is in the caller's region; 403 (and a warning in the log) otherwise.
async fn job_of_my_region(
    state: &AppState,
    caller: &DataplaneCaller,
    job_id: i64,
) -> ApiResult<Job> {
    let job = state.store.job(job_id).await?;
    if job.region_id != caller.dataplane.region_id {
        tracing::warn!(
            dataplane_id = %caller.dataplane.id,
            dataplane_region = %caller.dataplane.region_id,
            job_id,
            job_region = %job.region_id,
            "data plane asked for a job of another region"
        );
        return Err(ApiError::Forbidden(format!(
            "job {job_id} does not belong to this data plane's region"
        )));
    }
    Ok(job)
}

async fn attempt_of(
    state: &AppState,
    caller: &DataplaneCaller,
    job_id: &str,
    attempt_id: &str,
) -> ApiResult<(Job, Uuid)> {
    let job_id = parse_job_id(job_id)?;
    let attempt_id = parse_uuid("attemptId", attempt_id)?;
    let job = job_of_my_region(state, caller, job_id).await?;
    let attempt = state.store.attempt(attempt_id).await?;
    if attempt.job_id != job.id || attempt.dataplane_id != caller.dataplane.id {
        return Err(ApiError::Forbidden(format!(
            "attempt {attempt_id} of job {job_id} is not this data plane's"
        )));
    }
    Ok((job, attempt_id))
}

/// Whether the caller and its region may run jobs now.
async fn may_claim(state: &AppState, caller: &DataplaneCaller) -> ApiResult<bool> {
    let dataplane = state.store.live_dataplane(caller.dataplane.id).await?;
    let region = state.store.region(dataplane.region_id).await?;
    Ok(dataplane.enabled && region.enabled && !region.tombstone)
}

pub async fn claim(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    ApiJson(request): ApiJson<ClaimRequest>,
) -> ApiResult<Json<ClaimResponse>> {
    if let Some(job_id) = request.job_id {
        job_of_my_region(&state, &caller, job_id).await?;
    }
    let wait = Duration::from_millis(request.wait_ms.unwrap_or(0)).min(MAX_CLAIM_WAIT);
    let deadline = Instant::now() + wait;
    let lease_millis = i64::try_from(state.config.job_lease.as_millis()).unwrap_or(i64::MAX);
    loop {
        // Registered before looking, so a job created meanwhile is not missed.
        let woken = state.job_created.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // A read first: a claim with nothing to take writes nothing.
        let allowed = (request.job_id.is_some()
            || state
                .store
                .region_has_claimable_work(caller.dataplane.region_id)
                .await?)
            && may_claim(&state, &caller).await?;
        // Tasks first: an API call is waiting for each. Not when a specific job is asked for.
        if allowed
            && request.job_id.is_none()
            && let Some(task) = state
                .store
                .claim_task(caller.dataplane.region_id, caller.dataplane.id)
                .await?
        {
            return Ok(Json(ClaimResponse {
                job: None,
                task: Some(claimed_task(&state, task).await?),
            }));
        }
        if allowed
            && let Some((job, attempt)) = state
                .store
                .claim_job(
                    caller.dataplane.region_id,
                    caller.dataplane.id,
                    lease_millis,
                    request.job_id,
                )
                .await?
        {
            tracing::info!(
                job_id = job.id,
                attempt_id = %attempt.id,
                attempt_number = attempt.attempt_number,
                dataplane_id = %caller.dataplane.id,
                region_id = %job.region_id,
                "job claimed"
            );
            return Ok(Json(ClaimResponse {
                job: Some(ClaimedJob {
                    job_id: job.id,
                    attempt_id: attempt.id,
                    attempt_number: attempt.attempt_number,
                    job_type: job.job_type,
                    connection_id: job.connection_id,
                    lease_expires_at: job.lease_expires_at.unwrap_or_default(),
                }),
                task: None,
            }));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Json(ClaimResponse {
                job: None,
                task: None,
            }));
        }
        let _ = tokio::time::timeout((deadline - now).min(CLAIM_POLL), woken).await;
    }
}

async fn claimed_task(
    state: &AppState,
    task: ferry_store::ConnectorTask,
) -> ApiResult<ClaimedTask> {
    let actor = state.store.actor(task.actor_kind, task.actor_id).await?;
    Ok(ClaimedTask {
        task_id: task.id,
        kind: task.kind,
        role: task.actor_kind.as_str().to_owned(),
        command: custom_command(state, &actor).await?,
        connector_type: actor.connector_type.clone(),
        configuration: state.secrets.decrypt(&actor.configuration)?,
    })
}

/// `POST /api/v1/tasks/{taskId}/result`, from the data plane that claimed the task.
pub async fn task_result(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path(task_id): Path<String>,
    ApiJson(answer): ApiJson<TaskResult>,
) -> ApiResult<Json<Value>> {
    let task_id = parse_uuid("taskId", &task_id)?;
    let task = state.store.task(task_id).await?;
    if task.region_id != caller.dataplane.region_id {
        tracing::warn!(dataplane_id = %caller.dataplane.id, %task_id, "data plane answered a task of another region");
        return Err(ApiError::Forbidden(format!(
            "task {task_id} does not belong to this data plane's region"
        )));
    }
    let result = answer.result.as_ref().map(Value::to_string);
    state
        .store
        .complete_task(
            task_id,
            caller.dataplane.id,
            result.as_deref(),
            answer.error.as_deref(),
        )
        .await?;
    state.task_done.notify_waiters();
    Ok(Json(serde_json::json!({})))
}

fn parse_stored_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub async fn config(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path((job_id, attempt_id)): Path<(String, String)>,
) -> ApiResult<Json<AttemptConfig>> {
    let (job, attempt_id) = attempt_of(&state, &caller, &job_id, &attempt_id).await?;
    let connection = state.store.connection(job.connection_id).await?;
    let source = state
        .store
        .actor(ActorKind::Source, connection.source_id)
        .await?;
    let destination = state
        .store
        .actor(ActorKind::Destination, connection.destination_id)
        .await?;
    // A reset starts from nothing; a sync resumes from what was committed.
    let committed = if job.job_type == "sync" {
        state.store.connection_states(connection.id).await?
    } else {
        Vec::new()
    };
    let source_command = custom_command(&state, &source).await?;
    let destination_command = custom_command(&state, &destination).await?;
    Ok(Json(AttemptConfig {
        source_command,
        destination_command,
        stream_configurations: parse_stored_json(&connection.configurations),
        naming: serde_json::from_str(&connection.naming).unwrap_or_default(),
        job_id: job.id,
        attempt_id,
        job_type: job.job_type,
        connection_id: connection.id,
        source_type: source.connector_type,
        source_configuration: state.secrets.decrypt(&source.configuration)?,
        destination_type: destination.connector_type,
        destination_configuration: state.secrets.decrypt(&destination.configuration)?,
        state: committed
            .into_iter()
            .map(|row| StreamState {
                stream: row.stream,
                state: parse_stored_json(&row.state),
            })
            .collect(),
    }))
}

/// The command line of a source or destination made from a custom definition.
async fn custom_command(
    state: &AppState,
    actor: &ferry_store::Actor,
) -> ApiResult<Option<Vec<String>>> {
    if actor.connector_type != super::actors::CUSTOM_TYPE {
        return Ok(None);
    }
    let definition = state
        .store
        .definition(actor.kind, actor.definition_id)
        .await?;
    Ok(Some(super::definitions::command_of(&definition)))
}

pub async fn progress(
    State(state): State<AppState>,
    caller: DataplaneCaller,
    Path((job_id, attempt_id)): Path<(String, String)>,
    ApiJson(report): ApiJson<ProgressReport>,
) -> ApiResult<Json<Value>> {
    let (job, attempt_id) = attempt_of(&state, &caller, &job_id, &attempt_id).await?;
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
    let (job, attempt_id) = attempt_of(&state, &caller, &job_id, &attempt_id).await?;
    let states: Vec<StoredState> = commit
        .states
        .iter()
        .map(|stream_state| StoredState {
            stream: stream_state.stream.clone(),
            state: stream_state.state.to_string(),
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
            &serde_json::to_string(&commit.streams)
                .map_err(|error| ApiError::Internal(error.to_string()))?,
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
    let (job, attempt_id) = attempt_of(&state, &caller, &job_id, &attempt_id).await?;
    let outcome = match report.status.as_str() {
        "succeeded" => AttemptOutcome::Succeeded,
        "failed" => AttemptOutcome::Failed,
        "cancelled" => AttemptOutcome::Cancelled,
        other => {
            return Err(ApiError::field(
                "status",
                format!("must be succeeded, failed or cancelled, got '{other}'"),
            ));
        }
    };
    let job = state
        .store
        .finish_attempt(
            job.id,
            attempt_id,
            outcome,
            report.failure_reason.as_deref(),
            (report.rows_synced, report.bytes_synced),
            state.config.retry_policy(),
        )
        .await?;
    tracing::info!(job_id = job.id, %attempt_id, status = %job.status, "attempt finished");
    if job.status == "incomplete" {
        state.job_created.notify_waiters();
    }
    Ok(Json(serde_json::json!({"job_status": job.status})))
}
