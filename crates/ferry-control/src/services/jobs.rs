//! Job admission and the data planes' side of the queue. A job is admitted only where it can
//! run (an active connection, an enabled region with an enabled data plane, no other job of
//! the connection under way); `POST /jobs` and the scheduler both start jobs here.

use std::time::Duration;

use ferry_api::{
    AttemptStatus, ClaimKind, ClaimResponse, ClaimedJob, FinishReport, JobStatus, JobType,
};
use ferry_store::{AttemptOutcome, Connection, Failure, Job, NewJob, Region, Workspace};
use tokio::time::Instant;
use uuid::Uuid;

use crate::AppState;
use crate::auth::DataplaneCaller;
use crate::error::{ApiError, ApiResult};
use crate::services::{access, connector_tasks};

/// Longest a claim may wait for a job.
const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting claim looks again even without a wake-up: jobs created by another
/// control-plane replica do not wake this one, nor does a retry's backoff running out.
const CLAIM_POLL: Duration = Duration::from_secs(1);

/// The workspace's region, if a data plane can run `what` there now: 409 when the region is
/// disabled or has no enabled data plane.
pub async fn runnable_region(
    state: &AppState,
    workspace: &Workspace,
    what: &str,
) -> ApiResult<Region> {
    let region = state.store.region(workspace.region_id).await?;
    if region.tombstone || !region.enabled {
        return Err(ApiError::Conflict(format!(
            "region '{}' of workspace '{}' is disabled: no job can run there",
            region.name, workspace.name
        )));
    }
    if !state.store.region_has_enabled_dataplane(region.id).await? {
        return Err(ApiError::Conflict(format!(
            "region '{}' has no enabled data plane to run {what}",
            region.name
        )));
    }
    Ok(region)
}

/// Puts a job for the connection in its region's lane — or refuses at once what could not
/// run: an inactive connection, a disabled region or one without an enabled data plane, a
/// connection that already has a job under way. Used by `POST /jobs` and the scheduler.
pub async fn start_job(
    state: &AppState,
    connection: &Connection,
    job_type: JobType,
) -> ApiResult<Job> {
    let workspace = state.store.live_workspace(connection.workspace_id).await?;
    if connection.status != "active" {
        return Err(ApiError::Conflict(format!(
            "connection {} is {}, not active",
            connection.id, connection.status
        )));
    }
    // The job's region is fixed now, from the workspace; refuse at once what could not run.
    // One job under way per connection is the store's rule (a unique index): 409 otherwise.
    let region = runnable_region(state, &workspace, "the job").await?;
    let job = state
        .store
        .create_job(&NewJob {
            connection_id: connection.id,
            workspace_id: workspace.id,
            region_id: region.id,
            job_type,
            max_attempts: state.config.max_attempts,
        })
        .await?;
    state.job_created.notify_waiters();
    Ok(job)
}

/// Cancels the job: 409 once it succeeded or failed.
pub async fn cancel_job(state: &AppState, job: &Job) -> ApiResult<Job> {
    if matches!(job.status, JobStatus::Succeeded | JobStatus::Failed) {
        return Err(ApiError::Conflict(format!(
            "job {} already {}",
            job.id, job.status
        )));
    }
    let cancelled = state.store.cancel_job(job.id).await?;
    if cancelled.cancel_requested {
        state.job_cancelled.notify_waiters();
    }
    Ok(cancelled)
}

/// Longest a heartbeat may be held open waiting for a cancel.
const MAX_HEARTBEAT_WAIT: Duration = Duration::from_secs(30);
/// How often a held heartbeat looks again without a wake-up (a cancel through another
/// control-plane replica does not wake this one): one read by primary key per attempt.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Waits up to `wait` (at most 30 s) until one of the data plane's `attempts` is cancelled;
/// those cancelled, or none.
///
/// Why a held heartbeat rather than faster ones: a cancel must stop a running attempt
/// within a second, and heartbeats every second (or polls per attempt) would cost each
/// running attempt a request and a lease write a second, all to learn nothing almost every
/// time. A data plane with attempts running holds one heartbeat open instead, for its usual
/// interval (leases are renewed as often as before); a cancel through this replica answers
/// it at once, one through another within `CANCEL_POLL`, by a cheap read.
pub async fn await_cancel(
    state: &AppState,
    caller: &DataplaneCaller,
    attempts: &[Uuid],
    wait: Duration,
) -> ApiResult<Vec<Uuid>> {
    let deadline = Instant::now() + wait.min(MAX_HEARTBEAT_WAIT);
    loop {
        let woken = state.job_cancelled.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let cancelled = state
            .store
            .cancelled_attempts(caller.dataplane.id, attempts)
            .await?;
        let now = Instant::now();
        if !cancelled.is_empty() || now >= deadline || state.is_stopping() {
            return Ok(cancelled);
        }
        let _ = tokio::time::timeout((deadline - now).min(CANCEL_POLL), woken).await;
    }
}

/// Whether the caller and its region may run jobs now.
async fn may_claim(state: &AppState, caller: &DataplaneCaller) -> ApiResult<bool> {
    let dataplane = state.store.live_dataplane(caller.dataplane.id).await?;
    let region = state.store.region(dataplane.region_id).await?;
    Ok(dataplane.enabled && region.enabled && !region.tombstone)
}

/// Work for the calling data plane, waiting up to `wait` (at most 30 s) for some: a
/// connector task first (an API call waits for each), else the oldest claimable job of its
/// region — or only `job_id`, when it names one (it must be in the caller's region); only
/// jobs or only tasks when `only` says so.
pub async fn claim(
    state: &AppState,
    caller: &DataplaneCaller,
    wait: Duration,
    job_id: Option<i64>,
    only: Option<ClaimKind>,
) -> ApiResult<ClaimResponse> {
    // A claim for a job names none of the tasks, and the other way round.
    let only = if job_id.is_some() {
        Some(ClaimKind::Jobs)
    } else {
        only
    };
    if let Some(job_id) = job_id {
        access::region_job(state, caller, job_id).await?;
    }
    let deadline = Instant::now() + wait.min(MAX_CLAIM_WAIT);
    let lease_millis = i64::try_from(state.config.job_lease.as_millis()).unwrap_or(i64::MAX);
    loop {
        // Registered before looking, so a job created meanwhile is not missed.
        let woken = state.job_created.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // A read first: a claim with nothing to take writes nothing.
        let allowed = (job_id.is_some()
            || state
                .store
                .region_has_claimable_work(caller.dataplane.region_id, only)
                .await?)
            && may_claim(state, caller).await?;
        // Tasks first: an API call is waiting for each. Not when a specific job is asked for.
        if allowed
            && only != Some(ClaimKind::Jobs)
            && let Some(task) = state
                .store
                .claim_task(caller.dataplane.region_id, caller.dataplane.id)
                .await?
        {
            return Ok(ClaimResponse {
                job: None,
                task: Some(connector_tasks::claimed(state, task).await?),
            });
        }
        if allowed
            && only != Some(ClaimKind::Tasks)
            && let Some((job, attempt)) = state
                .store
                .claim_job(
                    caller.dataplane.region_id,
                    caller.dataplane.id,
                    lease_millis,
                    job_id,
                )
                .await?
        {
            crate::metrics::job_claimed(job.next_attempt_at);
            tracing::info!(
                job_id = job.id,
                attempt_id = %attempt.id,
                attempt_number = attempt.attempt_number,
                dataplane_id = %caller.dataplane.id,
                region_id = %job.region_id,
                "job claimed"
            );
            return Ok(ClaimResponse {
                job: Some(ClaimedJob {
                    job_id: job.id,
                    attempt_id: attempt.id,
                    attempt_number: attempt.attempt_number,
                    job_type: job.job_type,
                    connection_id: job.connection_id,
                    lease_expires_at: job.lease_expires_at.unwrap_or_default(),
                }),
                task: None,
            });
        }
        let now = Instant::now();
        if now >= deadline || state.is_stopping() {
            return Ok(ClaimResponse {
                job: None,
                task: None,
            });
        }
        let _ = tokio::time::timeout((deadline - now).min(CLAIM_POLL), woken).await;
    }
}

/// Ends the attempt as its data plane reports (the caller holds it: see
/// `access::held_attempt`), and wakes the claims when the job went back to its lane.
pub async fn finish_attempt(
    state: &AppState,
    job_id: i64,
    attempt_id: Uuid,
    report: FinishReport,
) -> ApiResult<Job> {
    let outcome = match report.status {
        AttemptStatus::Succeeded => AttemptOutcome::Succeeded,
        AttemptStatus::Failed => AttemptOutcome::Failed,
        AttemptStatus::Cancelled => AttemptOutcome::Cancelled,
        AttemptStatus::Running => {
            return Err(ApiError::field(
                "status",
                "must be succeeded, failed or cancelled, got 'running'",
            ));
        }
    };
    let failure = Failure {
        reason: report.failure_reason,
        origin: report.failure_origin,
        failure_type: report.failure_type,
    };
    let job = state
        .store
        .finish_attempt(
            job_id,
            attempt_id,
            outcome,
            &failure,
            (report.rows_synced, report.bytes_synced),
            state.config.retry_policy(),
        )
        .await?;
    crate::metrics::attempt_ended(
        report.status.as_str(),
        report.rows_synced,
        report.bytes_synced,
    );
    tracing::info!(
        job_id = job.id,
        %attempt_id,
        status = %job.status,
        failure_type = failure.failure_type.map(ferry_api::FailureType::as_str),
        "attempt finished"
    );
    if job.status == JobStatus::Incomplete {
        state.job_created.notify_waiters();
    }
    Ok(job)
}

/// Puts a draining data plane's attempt back in its region's lane with what it committed,
/// and wakes the region's waiting claims so another plane resumes it at once.
pub async fn hand_back_attempt(
    state: &AppState,
    job_id: i64,
    attempt_id: Uuid,
    counts: &ferry_api::ProgressReport,
) -> ApiResult<Job> {
    let job = state
        .store
        .hand_back_attempt(
            job_id,
            attempt_id,
            (counts.rows_synced, counts.bytes_synced),
        )
        .await?;
    // Requeued, or ended: cancelled meanwhile, or out of attempts after many hand-backs.
    let how = match job.status {
        ferry_api::JobStatus::Incomplete => "handed_back",
        ferry_api::JobStatus::Cancelled => "cancelled",
        _ => "failed",
    };
    tracing::info!(job_id, %attempt_id, job_status = %job.status, "attempt handed back by its draining data plane");
    crate::metrics::attempt_ended(how, counts.rows_synced, counts.bytes_synced);
    if how == "handed_back" {
        state.job_created.notify_waiters();
    }
    Ok(job)
}
