use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use ferry_api::{JobCreateRequest, JobResponse, JobStatus, JobType, JobsResponse};
use ferry_store::JobQuery;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams};
use crate::pagination::links;
use crate::services::job_views::{self, job_response};
use crate::services::{access, attempt_logs};

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

#[utoipa::path(post, path = "/jobs", tag = "jobs", request_body = JobCreateRequest,
    responses((status = 200, body = JobResponse), (status = 409, body = ferry_api::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<JobCreateRequest>,
) -> ApiResult<Json<JobResponse>> {
    Ok(Json(job_views::create(&state, &caller, request).await?))
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
    let job_id = parse_job_id(&job_id)?;
    Ok(Json(job_views::cancel(&state, &caller, job_id).await?))
}

/// Ferry extension: an attempt's log, as its data plane stored it (text).
pub async fn attempt_log(
    State(state): State<AppState>,
    caller: Caller,
    Path((job_id, attempt_number)): Path<(String, String)>,
) -> ApiResult<(axum::http::HeaderMap, String)> {
    let job = access::visible_job(&state, &caller, parse_job_id(&job_id)?).await?;
    let attempt_number: i64 = attempt_number.parse().map_err(|_| {
        ApiError::field(
            "attemptNumber",
            format!("must be an integer, got '{attempt_number}'"),
        )
    })?;
    let Some(bytes) = attempt_logs::read(&state, job.id, attempt_number).await? else {
        return Err(ApiError::NotFound(format!(
            "no log for attempt {attempt_number} of job {} (yet)",
            job.id
        )));
    };
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok((headers, String::from_utf8_lossy(&bytes).into_owned()))
}
