//! A job's page: status, duration, rows and bytes, per-stream figures, and every attempt
//! with the **region and data plane that ran it**; each attempt's log with a live tail while
//! the job runs (htmx polling, the last 256 KiB), search and download; cancel.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ferry_api::{AttemptResponse, JobResponse};
use maud::{Markup, html};
use serde::Deserialize;

use super::form::Form;
use super::pages::{badge, bytes, csrf, duration, error_page, html_response, page, when};
use super::session::Ui;
use super::workspace_pages::place;
use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ApiResult};
use crate::services::{access, attempt_logs, job_views};

/// The most of a log a page shows (its end); the download has it all.
const TAIL_BYTES: usize = 256 * 1024;
/// The most matching lines a search shows.
const MAX_MATCHES: usize = 2_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs/{jobId}", get(job_page))
        .route("/jobs/{jobId}/summary", get(summary_fragment))
        .route("/jobs/{jobId}/cancel", post(cancel))
        .route(
            "/jobs/{jobId}/attempts/{attemptNumber}/log",
            get(log_fragment),
        )
        .route(
            "/jobs/{jobId}/attempts/{attemptNumber}/log.txt",
            get(log_download),
        )
}

fn job_id(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::field("jobId", format!("must be an integer, got '{text}'")))
}

fn attempt_number(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::field("attemptNumber", format!("must be an integer, got '{text}'")))
}

async fn shown_job(state: &AppState, ui: &Ui, id: &str) -> ApiResult<JobResponse> {
    let job = access::visible_job(state, &ui.caller, job_id(id)?).await?;
    job_views::job_response(state, job).await
}

async fn attempt_rows(state: &AppState, attempts: &[AttemptResponse]) -> ApiResult<Markup> {
    let mut region_names = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        region_names.push(state.store.region(attempt.region_id).await?.name);
    }
    Ok(html! {
        div.table-wrap { table {
            thead { tr {
                th scope="col" { "Attempt" } th scope="col" { "Status" } th scope="col" { "Region" } th scope="col" { "Data plane" }
                th scope="col" { "Started" } th scope="col" { "Ended" } th scope="col" { "Rows" } th scope="col" { "Bytes" } th scope="col" { "Failure" }
            } }
            tbody { @for (attempt, region) in attempts.iter().zip(&region_names) {
                tr data-attempt=(attempt.attempt_number) {
                    td { (attempt.attempt_number) }
                    td { (badge(attempt.status.as_str())) }
                    td.region { (region) br; code.muted { (attempt.region_id) } }
                    td.dataplane { (attempt.dataplane_name) br; code.muted { (attempt.dataplane_id) } }
                    td { (when(&attempt.started_at)) }
                    td { (attempt.ended_at.as_deref().map(when).unwrap_or_else(|| "—".to_owned())) }
                    td { (attempt.rows_synced) }
                    td { (bytes(attempt.bytes_synced)) }
                    td { (attempt.failure_reason.as_deref().unwrap_or("—"))
                        @if let Some(kind) = attempt.failure_type { br; span.muted { (kind.as_str()) } } }
                }
            } }
        } }
    })
}

/// Status, figures and attempts; polls itself while the job is not over.
async fn summary(state: &AppState, ui: &Ui, job: &JobResponse) -> ApiResult<Markup> {
    let workspace = access::require_workspace(
        state,
        &ui.caller,
        job_workspace(state, job).await?,
        Access::Read,
    )
    .await?;
    let can_run = ui
        .caller
        .require_workspace_access(&workspace, Access::Run)
        .is_ok();
    let over = job.status.is_terminal();
    let attempts = attempt_rows(state, &job.attempts).await?;
    Ok(html! {
        div #job-summary hx-get=[(!over).then(|| format!("/jobs/{}/summary?attempts={}", job.job_id, job.attempts.len()))]
            hx-trigger=[(!over).then_some("every 2s")] hx-swap="outerHTML" {
            dl.facts {
                dt { "Status" } dd #job-status { (badge(job.status.as_str())) }
                dt { "Type" } dd { (job.job_type.as_str()) }
                dt { "Started" } dd { (when(&job.start_time)) }
                dt { "Duration" } dd { (job.duration.as_deref().map(duration).unwrap_or_else(|| "—".to_owned())) }
                dt { "Rows" } dd #job-rows { (job.rows_synced) }
                dt { "Bytes" } dd { (bytes(job.bytes_synced)) }
                @if let Some(reason) = &job.failure_reason { dt { "Failure" } dd { (reason) } }
            }
            @if !over && can_run {
                form method="post" action={ "/jobs/" (job.job_id) "/cancel" } {
                    (csrf(ui)) div.actions { button.danger type="submit" { "Cancel job" } }
                }
            }
            @if !job.stream_stats.is_empty() {
                h2 { "Streams" }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Stream" } th scope="col" { "Records" } th scope="col" { "Bytes" } } }
                    tbody { @for stats in &job.stream_stats { tr {
                        td { (stats.stream_name) @if let Some(namespace) = &stats.stream_namespace { span.muted { " (" (namespace) ")" } } }
                        td { (stats.records_committed) }
                        td { (bytes(stats.bytes_committed)) }
                    } } }
                } }
            }
            h2 { "Attempts" }
            @if job.attempts.is_empty() { p.muted { "Waiting for a data plane of the region to claim it." } } @else { (attempts) }
        }
    })
}

async fn job_workspace(state: &AppState, job: &JobResponse) -> ApiResult<uuid::Uuid> {
    Ok(state.store.job(job.job_id).await?.workspace_id)
}

async fn job_page(State(state): State<AppState>, ui: Ui, Path(id): Path<String>) -> Response {
    let rendered = async {
        let job = shown_job(&state, &ui, &id).await?;
        let place = place(&state, &ui, job_workspace(&state, &job).await?).await?;
        let connection = state.store.connection(job.connection_id).await?;
        let summary = summary(&state, &ui, &job).await?;
        let over = job.status.is_terminal();
        Ok::<Markup, ApiError>(page(
            Some(&ui),
            Some(&place),
            &format!("Job {}", job.job_id),
            html! {
                p { "Of connection " a href={ "/connections/" (connection.id) } { (connection.name) } }
                (summary)
                @for attempt in &job.attempts {
                    section aria-labelledby={ "log-" (attempt.attempt_number) } {
                        h2 id={ "log-" (attempt.attempt_number) } { "Log of attempt " (attempt.attempt_number) }
                        form.actions method="get" action={ "/jobs/" (job.job_id) "/attempts/" (attempt.attempt_number) "/log" }
                            hx-get={ "/jobs/" (job.job_id) "/attempts/" (attempt.attempt_number) "/log" }
                            hx-target={ "#log-body-" (attempt.attempt_number) } hx-swap="outerHTML" {
                            label.inline for={ "search-" (attempt.attempt_number) } { "Search" }
                            input type="text" id={ "search-" (attempt.attempt_number) } name="q" class="search";
                            button.secondary type="submit" { "Find" }
                            a.button.secondary href={ "/jobs/" (job.job_id) "/attempts/" (attempt.attempt_number) "/log.txt" } { "Download log" }
                        }
                        (log_placeholder(job.job_id, attempt.attempt_number, !over))
                    }
                }
            },
        ))
    };
    match rendered.await {
        Ok(markup) => html_response(StatusCode::OK, markup),
        Err(error) => error_page(Some(&ui), &error),
    }
}

/// Where a log appears: loaded by htmx (live while the job runs); a link without script.
fn log_placeholder(job_id: i64, attempt: i64, live: bool) -> Markup {
    let url = format!("/jobs/{job_id}/attempts/{attempt}/log");
    html! {
        div id={ "log-body-" (attempt) } hx-get=(url) hx-trigger=(if live { "load, every 2s" } else { "load" }) hx-swap="outerHTML" {
            p.muted { a href=(url) { "Show the log" } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Shown {
    attempts: Option<usize>,
}

async fn summary_fragment(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(shown): Query<Shown>,
) -> Response {
    let rendered = async {
        let job = shown_job(&state, &ui, &id).await?;
        let summary = summary(&state, &ui, &job).await?;
        Ok::<_, ApiError>((job.attempts.len(), summary))
    };
    match rendered.await {
        // A new attempt has a log of its own: htmx reloads the whole page to show it.
        Ok((attempts, _)) if shown.attempts.is_some_and(|shown| shown != attempts) => {
            ([("HX-Refresh", "true")], StatusCode::OK).into_response()
        }
        Ok((_, markup)) => html_response(StatusCode::OK, markup),
        Err(error) => error_page(Some(&ui), &error),
    }
}

#[derive(Debug, Deserialize)]
pub struct Search {
    q: Option<String>,
}

/// The end of `log` (whole lines), and whether it was cut.
fn tail(log: &str, limit: usize) -> (&str, bool) {
    if log.len() <= limit {
        return (log, false);
    }
    let mut start = log.len() - limit;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    let from = log[start..]
        .find('\n')
        .map_or(start, |newline| start + newline + 1);
    (&log[from..], true)
}

async fn read_log(
    state: &AppState,
    ui: &Ui,
    job: &str,
    attempt: &str,
) -> ApiResult<(i64, i64, Option<String>)> {
    let job = access::visible_job(state, &ui.caller, job_id(job)?).await?;
    let attempt = attempt_number(attempt)?;
    let log = attempt_logs::read(state, job.id, attempt).await?;
    Ok((
        job.id,
        attempt,
        log.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ))
}

async fn log_fragment(
    State(state): State<AppState>,
    ui: Ui,
    Path((job, attempt)): Path<(String, String)>,
    Query(search): Query<Search>,
) -> Response {
    let rendered = async {
        let (job_id, attempt, log) = read_log(&state, &ui, &job, &attempt).await?;
        let running = !state.store.job(job_id).await?.status.is_terminal();
        let query = search
            .q
            .as_deref()
            .map(str::trim)
            .filter(|query| !query.is_empty());
        let url = format!("/jobs/{job_id}/attempts/{attempt}/log");
        // A search is a snapshot; the plain tail keeps polling while the job runs.
        let live = running && query.is_none();
        let body = match (&log, query) {
            (None, _) => html! { p.muted { "No log yet." } },
            (Some(log), Some(query)) => {
                let needle = query.to_lowercase();
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|line| line.to_lowercase().contains(&needle))
                    .take(MAX_MATCHES)
                    .collect();
                html! {
                    p.muted { (lines.len()) " matching lines for “" (query) "” · " a href=(url) hx-get=(url) hx-target="closest div" hx-swap="outerHTML" { "show the whole log" } }
                    pre.log { (lines.join("\n")) }
                }
            }
            (Some(log), None) => {
                let (shown, cut) = tail(log, TAIL_BYTES);
                html! {
                    @if cut { p.muted { "The last " (bytes(shown.len() as i64)) " of " (bytes(log.len() as i64)) "; download the log for all of it." } }
                    pre.log { (shown) }
                }
            }
        };
        Ok::<Markup, ApiError>(html! {
            div id={ "log-body-" (attempt) } hx-get=[live.then_some(url.as_str())] hx-trigger=[live.then_some("every 2s")] hx-swap="outerHTML" {
                (body)
            }
        })
    };
    match rendered.await {
        Ok(markup) => html_response(StatusCode::OK, markup),
        Err(error) => error_page(Some(&ui), &error),
    }
}

async fn log_download(
    State(state): State<AppState>,
    ui: Ui,
    Path((job, attempt)): Path<(String, String)>,
) -> Response {
    match read_log(&state, &ui, &job, &attempt).await {
        Ok((job_id, attempt, Some(log))) => (
            [
                (CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    CONTENT_DISPOSITION,
                    format!("attachment; filename=\"job-{job_id}-attempt-{attempt}.log\""),
                ),
            ],
            log,
        )
            .into_response(),
        Ok((job_id, attempt, None)) => error_page(
            Some(&ui),
            &ApiError::NotFound(format!(
                "no log for attempt {attempt} of job {job_id} (yet)"
            )),
        ),
        Err(error) => error_page(Some(&ui), &error),
    }
}

async fn cancel(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let cancelled = async {
        ui.check_csrf(&form)?;
        job_views::cancel(&state, &ui.caller, job_id(&id)?).await
    };
    match cancelled.await {
        Ok(job) => Redirect::to(&format!("/jobs/{}", job.job_id)).into_response(),
        Err(error) => error_page(Some(&ui), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn the_tail_keeps_whole_lines_of_the_end() {
        assert_eq!(tail("a\nb\n", 10), ("a\nb\n", false));
        assert_eq!(tail("first line\nsecond\nthird\n", 12), ("third\n", true));
        assert_eq!(tail("ééééé\nx\n", 5).0, "x\n");
    }
}
