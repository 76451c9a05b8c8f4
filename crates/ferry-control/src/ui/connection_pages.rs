//! Connections: the workspace's list (status, last sync), a new connection (its source and
//! destination, then the streams the source discovered in the region, each with its sync
//! mode, cursor and primary key), and a connection's page: its streams, **Sync now**, and
//! the job history with the region and data plane of each job's last attempt.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ferry_api::{
    ConnectionCreateRequest, ConnectionNaming, ConnectorRole, JobCreateRequest, JobResponse,
    StreamConfiguration, StreamConfigurations,
};
use ferry_store::{JobQuery, ScopedQuery};
use maud::{Markup, html};
use serde_json::Value;
use uuid::Uuid;

use super::form::Form;
use super::pages::{
    FieldErrors, badge, bytes, csrf, duration, error_page, html_response, page, when,
};
use super::session::Ui;
use super::workspace_pages::{place, workspace_id};
use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_uuid;
use crate::services::{access, connections, connector_tasks, job_views};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/workspaces/{workspaceId}/connections",
            get(list).post(create),
        )
        .route(
            "/workspaces/{workspaceId}/connections/new",
            get(new_form).post(choose_streams),
        )
        .route("/connections/{connectionId}", get(connection_page))
        .route("/connections/{connectionId}/sync", post(sync_now))
}

fn respond(ui: &Ui, rendered: ApiResult<Markup>, status: StatusCode) -> Response {
    match rendered {
        Ok(markup) => html_response(status, markup),
        Err(error) => error_page(Some(ui), &error),
    }
}

/// The connection's latest jobs, newest first.
pub async fn recent_jobs(
    state: &AppState,
    connection_id: Uuid,
    limit: i64,
) -> ApiResult<Vec<JobResponse>> {
    let jobs = state
        .store
        .jobs(&JobQuery {
            workspace_ids: None,
            connection_id: Some(connection_id),
            job_type: None,
            status: None,
            created_at_start: None,
            created_at_end: None,
            updated_at_start: None,
            updated_at_end: None,
            order_by: "created_at",
            descending: true,
            limit,
            offset: 0,
        })
        .await?;
    let mut shown = Vec::with_capacity(jobs.len());
    for job in jobs {
        shown.push(job_views::job_response(state, job).await?);
    }
    Ok(shown)
}

async fn list(State(state): State<AppState>, ui: Ui, Path(id): Path<String>) -> Response {
    let rendered = async {
        let id = workspace_id(&id)?;
        let place = place(&state, &ui, id).await?;
        let workspace = access::workspace(&state, &ui.caller, id, Access::Read).await?;
        let can_edit = ui
            .caller
            .require_workspace_access(&workspace, Access::Edit)
            .is_ok();
        let workspace_ids = access::visible_workspace_ids(&state, &ui.caller, &[id]).await?;
        let rows = state
            .store
            .connections(&ScopedQuery {
                workspace_ids,
                include_deleted: false,
                limit: 1000,
                offset: 0,
            })
            .await?;
        let mut last = Vec::with_capacity(rows.len());
        for connection in &rows {
            last.push(
                recent_jobs(&state, connection.id, 1)
                    .await?
                    .into_iter()
                    .next(),
            );
        }
        Ok(page(
            Some(&ui),
            Some(&place),
            "Connections",
            html! {
                @if can_edit {
                    div.actions { a.button href={ "/workspaces/" (id) "/connections/new" } { "New connection" } }
                }
                @if rows.is_empty() { p.muted { "No connection yet." } } @else {
                    div.table-wrap { table {
                        thead { tr { th scope="col" { "Connection" } th scope="col" { "Status" } th scope="col" { "Last sync" } } }
                        tbody { @for (connection, job) in rows.iter().zip(&last) { tr {
                            td { a href={ "/connections/" (connection.id) } { (connection.name) } }
                            td { (badge(&connection.status)) }
                            td { @match job {
                                Some(job) => { (badge(job.status.as_str())) " " (when(&job.start_time)) }
                                None => span.muted { "never" },
                            } }
                        } } }
                    } }
                }
            },
        ))
    };
    respond(&ui, rendered.await, StatusCode::OK)
}

async fn actor_choices(
    state: &AppState,
    ui: &Ui,
    workspace_id: Uuid,
    role: ConnectorRole,
) -> ApiResult<Vec<(Uuid, String)>> {
    let workspace_ids = access::visible_workspace_ids(state, &ui.caller, &[workspace_id]).await?;
    Ok(state
        .store
        .actors(
            role,
            &ScopedQuery {
                workspace_ids,
                include_deleted: false,
                limit: 1000,
                offset: 0,
            },
        )
        .await?
        .into_iter()
        .map(|actor| (actor.id, actor.name))
        .collect())
}

async fn new_page(state: &AppState, ui: &Ui, id: Uuid, errors: &FieldErrors) -> ApiResult<Markup> {
    let place = place(state, ui, id).await?;
    let sources = actor_choices(state, ui, id, ConnectorRole::Source).await?;
    let destinations = actor_choices(state, ui, id, ConnectorRole::Destination).await?;
    Ok(page(
        Some(ui),
        Some(&place),
        "New connection",
        html! {
            (errors.summary())
            @if sources.is_empty() || destinations.is_empty() {
                p { "A connection needs a source and a destination: "
                    a href={ "/workspaces/" (id) "/sources/new" } { "new source" } ", "
                    a href={ "/workspaces/" (id) "/destinations/new" } { "new destination" } "." }
            } @else {
                form.card method="post" action={ "/workspaces/" (id) "/connections/new" } {
                    (csrf(ui))
                    label for="source" { "Source" }
                    select id="source" name="sourceId" { @for (actor_id, name) in &sources { option value=(actor_id) { (name) } } }
                    (errors.next_to("sourceId"))
                    label for="destination" { "Destination" }
                    select id="destination" name="destinationId" { @for (actor_id, name) in &destinations { option value=(actor_id) { (name) } } }
                    (errors.next_to("destinationId"))
                    div.actions { button type="submit" { "Next: choose streams" } span.muted { "The source is discovered on a data plane of the workspace's region." } }
                }
            }
        },
    ))
}

async fn new_form(State(state): State<AppState>, ui: Ui, Path(id): Path<String>) -> Response {
    let rendered =
        async { new_page(&state, &ui, workspace_id(&id)?, &FieldErrors::default()).await };
    respond(&ui, rendered.await, StatusCode::OK)
}

fn text_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Step two: the streams the source has, discovered in the region, to choose from.
async fn choose_streams(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let rendered = async {
        ui.check_csrf(&form)?;
        let id = workspace_id(&id)?;
        let place = place(&state, &ui, id).await?;
        let source_id = parse_uuid("sourceId", form.get("sourceId").unwrap_or_default())?;
        let destination_id = parse_uuid(
            "destinationId",
            form.get("destinationId").unwrap_or_default(),
        )?;
        let source =
            access::visible_actor(&state, &ui.caller, ConnectorRole::Source, source_id).await?;
        let destination = access::visible_actor(
            &state,
            &ui.caller,
            ConnectorRole::Destination,
            destination_id,
        )
        .await?;
        let catalog = connector_tasks::discover(&state, &source).await?;
        let streams = catalog["streams"].as_array().cloned().unwrap_or_default();
        Ok::<Markup, ApiError>(page(
            Some(&ui),
            Some(&place),
            "New connection: streams",
            html! {
                p { "From " strong { (source.name) } " to " strong { (destination.name) } "." }
                form.card method="post" action={ "/workspaces/" (id) "/connections" } {
                    (csrf(&ui))
                    input type="hidden" name="sourceId" value=(source.id);
                    input type="hidden" name="destinationId" value=(destination.id);
                    label for="connection-name" { "Connection name" }
                    input type="text" id="connection-name" name="name" value={ (source.name) " → " (destination.name) };
                    div.table-wrap { table {
                        caption.muted { "Streams" }
                        thead { tr { th scope="col" { "Sync" } th scope="col" { "Stream" } th scope="col" { "Sync mode" } th scope="col" { "Cursor" } th scope="col" { "Primary key" } } }
                        tbody { @for (index, stream) in streams.iter().enumerate() {
                            @let name = stream["name"].as_str().unwrap_or_default();
                            @let fields: Vec<String> = stream["json_schema"]["properties"].as_object().map(|properties| properties.keys().cloned().collect()).unwrap_or_default();
                            @let default_cursor = text_list(&stream["default_cursor_field"]).join(".");
                            @let key: Vec<String> = stream["source_defined_primary_key"].as_array().map(|keys| keys.iter().map(|path| text_list(path).join(".")).collect()).unwrap_or_default();
                            tr.stream-row {
                                td { label.inline for={ "stream-" (index) } {
                                    input type="checkbox" id={ "stream-" (index) } name="stream" value=(index) checked;
                                    span.muted { "sync" }
                                } }
                                td { (name)
                                    input type="hidden" name={ "name." (index) } value=(name);
                                    @if let Some(namespace) = stream["namespace"].as_str() {
                                        span.muted { " (" (namespace) ")" }
                                        input type="hidden" name={ "namespace." (index) } value=(namespace);
                                    } }
                                td { select id={ "mode-" (index) } name={ "mode." (index) } aria-label={ "Sync mode of " (name) } {
                                        @for mode in connections::sync_modes(stream) { option value=(mode) { (mode) } }
                                    } }
                                td { select name={ "cursor." (index) } aria-label={ "Cursor of " (name) } {
                                    option value="" { "—" }
                                    @for field in &fields { option value=(field) selected[*field == default_cursor] { (field) } }
                                } }
                                td { input type="text" name={ "pk." (index) } value=(key.join(", ")) aria-label={ "Primary key of " (name) }; }
                            }
                        } }
                    } }
                    div.actions { button type="submit" { "Create connection" } }
                }
            },
        ))
    };
    match rendered.await {
        Ok(markup) => html_response(StatusCode::OK, markup),
        Err(
            error @ (ApiError::BadRequest { .. }
            | ApiError::Unprocessable { .. }
            | ApiError::Unavailable(_)),
        ) => {
            let status = error.status();
            let again = async {
                new_page(
                    &state,
                    &ui,
                    workspace_id(&id)?,
                    &FieldErrors::from_error(&error),
                )
                .await
            };
            respond(&ui, again.await, status)
        }
        Err(error) => error_page(Some(&ui), &error),
    }
}

/// The streams chosen in the form, as the API's stream configurations.
fn chosen_streams(form: &Form) -> Vec<StreamConfiguration> {
    form.all("stream")
        .into_iter()
        .filter_map(|index| {
            let name = form.text(&format!("name.{index}"))?;
            let cursor = form.text(&format!("cursor.{index}"));
            let key: Vec<Vec<String>> = form
                .get(&format!("pk.{index}"))
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|column| !column.is_empty())
                .map(|column| vec![column.to_owned()])
                .collect();
            Some(StreamConfiguration {
                name,
                namespace: form.text(&format!("namespace.{index}")),
                sync_mode: form.text(&format!("mode.{index}")),
                cursor_field: cursor.map(|cursor| vec![cursor]),
                primary_key: (!key.is_empty()).then_some(key),
            })
        })
        .collect()
}

async fn create(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let created = async {
        ui.check_csrf(&form)?;
        workspace_id(&id)?;
        let request = ConnectionCreateRequest {
            source_id: parse_uuid("sourceId", form.get("sourceId").unwrap_or_default())?,
            destination_id: parse_uuid(
                "destinationId",
                form.get("destinationId").unwrap_or_default(),
            )?,
            name: form.text("name"),
            schedule: None,
            status: None,
            configurations: Some(StreamConfigurations {
                streams: chosen_streams(&form),
            }),
            naming: ConnectionNaming::default(),
        };
        connections::create(&state, &ui.caller, request).await
    };
    match created.await {
        Ok(connection) => {
            Redirect::to(&format!("/connections/{}", connection.connection_id)).into_response()
        }
        Err(
            error @ (ApiError::BadRequest { .. }
            | ApiError::Unprocessable { .. }
            | ApiError::Conflict(_)),
        ) => {
            let status = error.status();
            let again = async {
                new_page(
                    &state,
                    &ui,
                    workspace_id(&id)?,
                    &FieldErrors::from_error(&error),
                )
                .await
            };
            respond(&ui, again.await, status)
        }
        Err(error) => error_page(Some(&ui), &error),
    }
}

/// A job's last attempt's region and data plane, in words.
pub async fn ran_where(state: &AppState, job: &JobResponse) -> ApiResult<Option<(String, String)>> {
    let Some(attempt) = job.attempts.last() else {
        return Ok(None);
    };
    let region = state.store.region(attempt.region_id).await?;
    Ok(Some((region.name, attempt.dataplane_name.clone())))
}

pub fn jobs_table(jobs: &[JobResponse], places: &[Option<(String, String)>]) -> Markup {
    html! {
        div.table-wrap { table {
            caption.muted { "Job history" }
            thead { tr {
                th scope="col" { "Job" } th scope="col" { "Status" } th scope="col" { "Started" } th scope="col" { "Duration" }
                th scope="col" { "Rows" } th scope="col" { "Bytes" } th scope="col" { "Region / data plane" }
            } }
            tbody { @for (job, place) in jobs.iter().zip(places) { tr {
                td { a href={ "/jobs/" (job.job_id) } { "#" (job.job_id) " " (job.job_type.as_str()) } }
                td { (badge(job.status.as_str())) }
                td { (when(&job.start_time)) }
                td { (job.duration.as_deref().map(duration).unwrap_or_default()) }
                td { (job.rows_synced) }
                td { (bytes(job.bytes_synced)) }
                td { @match place { Some((region, plane)) => { (region) " / " (plane) } None => span.muted { "not started" } } }
            } } }
        } }
    }
}

async fn connection_page(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    let rendered = async {
        let id = parse_uuid("connectionId", &id)?;
        let connection = access::visible_connection(&state, &ui.caller, id).await?;
        let workspace =
            access::workspace(&state, &ui.caller, connection.workspace_id, Access::Read).await?;
        let can_run = ui
            .caller
            .require_workspace_access(&workspace, Access::Run)
            .is_ok();
        let place = place(&state, &ui, connection.workspace_id).await?;
        let source = state
            .store
            .actor(ConnectorRole::Source, connection.source_id)
            .await?;
        let destination = state
            .store
            .actor(ConnectorRole::Destination, connection.destination_id)
            .await?;
        let shown = connections::connection_response(connection);
        let jobs = recent_jobs(&state, shown.connection_id, 20).await?;
        let mut places = Vec::with_capacity(jobs.len());
        for job in &jobs {
            places.push(ran_where(&state, job).await?);
        }
        Ok(page(
            Some(&ui),
            Some(&place),
            &shown.name,
            html! {
                dl.facts {
                    dt { "Status" } dd { (badge(&shown.status)) }
                    dt { "Source" } dd { a href={ "/sources/" (source.id) } { (source.name) } }
                    dt { "Destination" } dd { a href={ "/destinations/" (destination.id) } { (destination.name) } }
                    dt { "Schedule" } dd { (shown.schedule.schedule_type) @if let Some(cron) = &shown.schedule.cron_expression { " " code { (cron) } } }
                }
                @if can_run {
                    form method="post" action={ "/connections/" (shown.connection_id) "/sync" } {
                        (csrf(&ui)) div.actions { button type="submit" { "Sync now" } }
                    }
                }
                h2 { "Streams" }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Stream" } th scope="col" { "Sync mode" } th scope="col" { "Cursor" } th scope="col" { "Primary key" } } }
                    tbody { @for stream in &shown.configurations.streams { tr {
                        td { (stream.name) @if let Some(namespace) = &stream.namespace { span.muted { " (" (namespace) ")" } } }
                        td { (stream.sync_mode.as_deref().unwrap_or("—")) }
                        td { (stream.cursor_field.as_ref().map(|path| path.join(".")).unwrap_or_else(|| "—".to_owned())) }
                        td { (stream.primary_key.as_ref().map(|keys| keys.iter().map(|path| path.join(".")).collect::<Vec<_>>().join(", ")).unwrap_or_else(|| "—".to_owned())) }
                    } } }
                } }
                h2 { "Jobs" }
                @if jobs.is_empty() { p.muted { "No job yet." } } @else { (jobs_table(&jobs, &places)) }
            },
        ))
    };
    respond(&ui, rendered.await, StatusCode::OK)
}

async fn sync_now(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let started = async {
        ui.check_csrf(&form)?;
        let connection_id = parse_uuid("connectionId", &id)?;
        job_views::create(
            &state,
            &ui.caller,
            JobCreateRequest {
                connection_id,
                job_type: "sync".to_owned(),
            },
        )
        .await
    };
    match started.await {
        Ok(job) => Redirect::to(&format!("/jobs/{}", job.job_id)).into_response(),
        Err(error) => error_page(Some(&ui), &error),
    }
}
