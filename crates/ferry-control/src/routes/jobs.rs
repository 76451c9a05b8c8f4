use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use ferry_api::{
    AttemptResponse, JobCreateRequest, JobResponse, JobStatus, JobType, JobsResponse, StreamStats,
};
use ferry_store::{Job, JobQuery, now_millis};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams};
use crate::pagination::links;
use crate::services::{access, jobs};
use crate::time_format::rfc3339;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list).post(create))
        .route("/jobs/{jobId}", get(read).delete(cancel))
        .route(
            "/jobs/{jobId}/attempts/{attemptNumber}/logs",
            get(attempt_log),
        )
}

/// The `status` filter's values: Ferry's statuses and Airbyte's `queued` (Ferry's `pending`).
const STATUS_FILTERS: [&str; 7] = [
    "pending",
    "queued",
    "running",
    "incomplete",
    "failed",
    "succeeded",
    "cancelled",
];

fn status_filter(text: &str) -> ApiResult<JobStatus> {
    if text == "queued" {
        return Ok(JobStatus::Pending);
    }
    text.parse().map_err(|_| {
        ApiError::field(
            "status",
            format!("must be one of {}", STATUS_FILTERS.join(", ")),
        )
    })
}

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

#[utoipa::path(post, path = "/jobs", tag = "jobs", request_body = JobCreateRequest,
    responses((status = 200, body = JobResponse), (status = 409, body = ferry_api::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<JobCreateRequest>,
) -> ApiResult<Json<JobResponse>> {
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
    let connection = access::visible_connection(&state, &caller, request.connection_id)
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
    let job = jobs::start_job(&state, &connection, job_type).await?;
    Ok(Json(job_response(&state, job).await?))
}

fn parse_time(query: &QueryParams, name: &str) -> ApiResult<Option<i64>> {
    query
        .string(name)
        .map(|value| {
            OffsetDateTime::parse(&value, &Rfc3339)
                .map(|time| {
                    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
                })
                .map_err(|_| {
                    ApiError::field(
                        name,
                        format!("must be an RFC 3339 date-time, got '{value}'"),
                    )
                })
        })
        .transpose()
}

#[utoipa::path(get, path = "/jobs", tag = "jobs", responses((status = 200, body = JobsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    query: QueryParams,
) -> ApiResult<Json<JobsResponse>> {
    let page = query.page()?;
    let workspace_ids =
        access::visible_workspace_ids(&state, &caller, &query.uuids("workspaceIds")?).await?;
    let connection_id = query.uuid("connectionId")?;
    if let Some(connection_id) = connection_id {
        access::visible_connection(&state, &caller, connection_id).await?;
    }
    let job_type = query
        .string("jobType")
        .map(|job_type| {
            job_type.parse::<JobType>().map_err(|_| {
                ApiError::field(
                    "jobType",
                    format!("must be one of {}", JobType::NAMES.join(", ")),
                )
            })
        })
        .transpose()?;
    let status = query
        .string("status")
        .as_deref()
        .map(status_filter)
        .transpose()?;
    let order = query
        .string("orderBy")
        .unwrap_or_else(|| "createdAt|ASC".to_owned());
    let (order_by, descending) = match order.split_once('|') {
        Some(("createdAt", "ASC")) => ("created_at", false),
        Some(("createdAt", "DESC")) => ("created_at", true),
        Some(("updatedAt", "ASC")) => ("updated_at", false),
        Some(("updatedAt", "DESC")) => ("updated_at", true),
        _ => {
            return Err(ApiError::field(
                "orderBy",
                "must be createdAt|ASC, createdAt|DESC, updatedAt|ASC or updatedAt|DESC",
            ));
        }
    };
    let jobs = state
        .store
        .jobs(&JobQuery {
            workspace_ids,
            connection_id,
            job_type,
            status,
            created_at_start: parse_time(&query, "createdAtStart")?,
            created_at_end: parse_time(&query, "createdAtEnd")?,
            updated_at_start: parse_time(&query, "updatedAtStart")?,
            updated_at_end: parse_time(&query, "updatedAtEnd")?,
            order_by,
            descending,
            limit: page.limit,
            offset: page.offset,
        })
        .await?;
    let page_links = links(
        &state,
        &headers,
        uri.path(),
        &query.filters(),
        page,
        jobs.len(),
    );
    let mut data = Vec::with_capacity(jobs.len());
    for job in jobs {
        data.push(job_response(&state, job).await?);
    }
    Ok(Json(JobsResponse {
        data,
        next: page_links.next,
        previous: page_links.previous,
    }))
}

fn parse_job_id(job_id: &str) -> ApiResult<i64> {
    job_id
        .parse()
        .map_err(|_| ApiError::field("jobId", format!("must be an integer, got '{job_id}'")))
}

#[utoipa::path(get, path = "/jobs/{jobId}", tag = "jobs",
    params(("jobId" = i64, Path)), responses((status = 200, body = JobResponse)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> ApiResult<Json<JobResponse>> {
    let job = access::visible_job(&state, &caller, parse_job_id(&job_id)?).await?;
    Ok(Json(job_response(&state, job).await?))
}

/// Cancels the job (Airbyte's `DELETE /jobs/{jobId}`).
#[utoipa::path(delete, path = "/jobs/{jobId}", tag = "jobs",
    params(("jobId" = i64, Path)), responses((status = 200, body = JobResponse)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> ApiResult<Json<JobResponse>> {
    let job = access::visible_job(&state, &caller, parse_job_id(&job_id)?).await?;
    access::require_workspace(&state, &caller, job.workspace_id, Access::Run).await?;
    let job = jobs::cancel_job(&state, &job).await?;
    Ok(Json(job_response(&state, job).await?))
}

/// Ferry extension: an attempt's log, as its data plane stored it (text).
pub async fn attempt_log(
    State(state): State<AppState>,
    caller: Caller,
    Path((job_id, attempt_number)): Path<(String, String)>,
) -> ApiResult<(axum::http::HeaderMap, String)> {
    use object_store::ObjectStoreExt;
    let job = access::visible_job(&state, &caller, parse_job_id(&job_id)?).await?;
    let attempt_number: i64 = attempt_number.parse().map_err(|_| {
        ApiError::field(
            "attemptNumber",
            format!("must be an integer, got '{attempt_number}'"),
        )
    })?;
    let storage = &state.config.log_storage;
    let path = object_store::path::Path::from(ferry_api::attempt_log_path(job.id, attempt_number));
    let bytes = match storage.get(&path).await {
        Ok(object) => object
            .bytes()
            .await
            .map_err(|error| ApiError::Internal(format!("reading a log: {error}")))?,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::NotFound(format!(
                "no log for attempt {attempt_number} of job {} (yet)",
                job.id
            )));
        }
        Err(error) => return Err(ApiError::Internal(format!("reading a log: {error}"))),
    };
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok((headers, String::from_utf8_lossy(&bytes).into_owned()))
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
