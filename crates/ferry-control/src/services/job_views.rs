//! Jobs as users see them (API and web UI): their report (attempts with the region and data
//! plane that ran each, per-stream figures, duration), and starting and cancelling them
//! with the roles' checks.

use std::collections::HashMap;

use ferry_api::{AttemptResponse, JobCreateRequest, JobResponse, JobStatus, JobType, StreamStats};
use ferry_store::{Job, now_millis};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::services::{access, jobs};
use crate::time_format::rfc3339;

/// `PT8M30S`, as Airbyte reports a job's duration.
pub fn iso8601_duration(millis: i64) -> String {
    let total = millis.max(0) / 1000;
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let mut text = "PT".to_owned();
    if hours > 0 {
        text.push_str(&format!("{hours}H"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}M"));
    }
    if seconds > 0 || (hours == 0 && minutes == 0) {
        text.push_str(&format!("{seconds}S"));
    }
    text
}

pub async fn job_response(state: &AppState, job: Job) -> ApiResult<JobResponse> {
    let attempts = state.store.attempts(job.id).await?;
    let mut dataplane_names: HashMap<Uuid, String> = HashMap::new();
    let mut attempt_responses = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        if let std::collections::hash_map::Entry::Vacant(entry) =
            dataplane_names.entry(attempt.dataplane_id)
        {
            entry.insert(state.store.dataplane(attempt.dataplane_id).await?.name);
        }
        attempt_responses.push(AttemptResponse {
            attempt_id: attempt.id,
            attempt_number: attempt.attempt_number,
            status: attempt.status,
            region_id: attempt.region_id,
            dataplane_id: attempt.dataplane_id,
            dataplane_name: dataplane_names[&attempt.dataplane_id].clone(),
            started_at: rfc3339(attempt.created_at),
            ended_at: attempt.ended_at.map(rfc3339),
            failure_reason: attempt.failure_reason,
            failure_origin: attempt.failure_origin,
            failure_type: attempt.failure_type,
            rows_synced: attempt.rows_synced,
            bytes_synced: attempt.bytes_synced,
            stream_stats: attempt.stream_stats,
        });
    }
    // The job's per-stream figures: each attempt's, added up (a retry resumes, so together
    // they count each row once, like rowsSynced).
    let mut stream_stats: Vec<StreamStats> = Vec::new();
    for stats in attempt_responses
        .iter()
        .flat_map(|attempt| &attempt.stream_stats)
    {
        match stream_stats.iter_mut().find(|total| {
            total.stream_name == stats.stream_name
                && total.stream_namespace == stats.stream_namespace
        }) {
            Some(total) => {
                total.records_committed += stats.records_committed;
                total.bytes_committed += stats.bytes_committed;
                // The latest attempt's estimate, where it gave one.
                total.estimated_records = stats.estimated_records.or(total.estimated_records);
                total.estimated_bytes = stats.estimated_bytes.or(total.estimated_bytes);
            }
            None => stream_stats.push(stats.clone()),
        }
    }
    let terminal = job.status.is_terminal();
    let duration = match (job.status, job.ended_at) {
        (JobStatus::Pending, _) => None,
        (_, Some(ended)) => Some(iso8601_duration(ended - job.created_at)),
        _ => Some(iso8601_duration(now_millis() - job.created_at)),
    };
    Ok(JobResponse {
        job_id: job.id,
        status: job.status,
        job_type: job.job_type,
        start_time: rfc3339(job.created_at),
        connection_id: job.connection_id,
        last_updated_at: terminal.then(|| rfc3339(job.updated_at)),
        duration,
        rows_synced: attempt_responses
            .iter()
            .map(|attempt| attempt.rows_synced)
            .sum(),
        bytes_synced: attempt_responses
            .iter()
            .map(|attempt| attempt.bytes_synced)
            .sum(),
        region_id: job.region_id,
        failure_reason: job.failure_reason,
        failure_origin: job.failure_origin,
        failure_type: job.failure_type,
        stream_stats,
        attempts: attempt_responses,
    })
}

/// Starts a job of the connection (a sync needs the runner role, a clear the editor's).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: JobCreateRequest,
) -> ApiResult<JobResponse> {
    let job_type = match request.job_type.parse() {
        Ok(JobType::Refresh) => {
            return Err(ApiError::unprocessable_field(
                "jobType",
                "Refreshes are not supported in the public API",
            ));
        }
        Ok(job_type) => job_type,
        Err(_) => {
            return Err(ApiError::field(
                "jobType",
                format!(
                    "must be one of {}, got '{}'",
                    JobType::NAMES.join(", "),
                    request.job_type
                ),
            ));
        }
    };
    let connection = access::visible_connection(state, caller, request.connection_id)
        .await
        .map_err(|error| match error {
            ApiError::Store(ferry_store::StoreError::NotFound { .. }) | ApiError::NotFound(_) => {
                ApiError::field(
                    "connectionId",
                    format!("connection {} does not exist", request.connection_id),
                )
            }
            other => other,
        })?;
    let workspace = state.store.live_workspace(connection.workspace_id).await?;
    let needed = if job_type == JobType::Clear {
        Access::Edit
    } else {
        Access::Run
    };
    caller.require_workspace_access(&workspace, needed)?;
    let job = jobs::start_job(state, &connection, job_type).await?;
    job_response(state, job).await
}

/// Cancels the job (runner role).
pub async fn cancel(state: &AppState, caller: &Caller, job_id: i64) -> ApiResult<JobResponse> {
    let job = access::visible_job(state, caller, job_id).await?;
    access::require_workspace(state, caller, job.workspace_id, Access::Run).await?;
    let job = jobs::cancel_job(state, &job).await?;
    job_response(state, job).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_airbytes() {
        assert_eq!(iso8601_duration(0), "PT0S");
        assert_eq!(iso8601_duration(510_000), "PT8M30S");
        assert_eq!(iso8601_duration(3_600_000), "PT1H");
        assert_eq!(iso8601_duration(3_661_999), "PT1H1M1S");
    }
}
