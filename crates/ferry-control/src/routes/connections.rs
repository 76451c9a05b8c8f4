use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use ferry_api::{
    ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse, ConnectionSchedule,
    ConnectionsResponse, StreamConfigurations,
};
use ferry_api::{ConnectorRole, DestinationNaming};
use ferry_store::{Connection, ConnectionChanges, NewConnection, ScopedQuery};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams, parse_uuid, valid_name};
use crate::pagination::links;
use crate::services::access::{
    editable_connection, visible_actor, visible_connection, visible_workspace_ids,
};
use crate::services::connection_checks;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list).post(create))
        .route(
            "/connections/{connectionId}",
            get(read).patch(update).delete(remove),
        )
}

const STATUSES: [&str; 4] = ["active", "inactive", "deprecated", "locked"];

fn connection_response(connection: Connection) -> ConnectionResponse {
    ConnectionResponse {
        connection_id: connection.id,
        name: connection.name,
        source_id: connection.source_id,
        destination_id: connection.destination_id,
        workspace_id: connection.workspace_id,
        status: connection.status,
        schedule: connection.schedule,
        configurations: connection.configurations,
        naming: connection.naming,
        created_at: connection.created_at / 1000,
        tags: Vec::new(),
    }
}

#[utoipa::path(post, path = "/connections", tag = "connections", request_body = ConnectionCreateRequest,
    responses((status = 200, body = ConnectionResponse)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ConnectionCreateRequest>,
) -> ApiResult<Json<ConnectionResponse>> {
    let source = visible_actor(&state, &caller, ConnectorRole::Source, request.source_id)
        .await
        .map_err(|_| {
            ApiError::field(
                "sourceId",
                format!("source {} does not exist", request.source_id),
            )
        })?;
    let destination = visible_actor(
        &state,
        &caller,
        ConnectorRole::Destination,
        request.destination_id,
    )
    .await
    .map_err(|_| {
        ApiError::field(
            "destinationId",
            format!("destination {} does not exist", request.destination_id),
        )
    })?;
    if source.workspace_id != destination.workspace_id {
        return Err(ApiError::field(
            "destinationId",
            "the source and the destination belong to different workspaces",
        ));
    }
    let workspace = state.store.live_workspace(source.workspace_id).await?;
    caller.require_workspace_access(&workspace, Access::Edit)?;
    let name = match &request.name {
        Some(name) => valid_name("name", name)?,
        None => format!("{} → {}", source.name, destination.name),
    };
    let status = request
        .status
        .clone()
        .unwrap_or_else(|| "active".to_owned());
    if !STATUSES.contains(&status.as_str()) {
        return Err(ApiError::field(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    let schedule = request.schedule.clone().unwrap_or(ConnectionSchedule {
        schedule_type: "manual".to_owned(),
        cron_expression: None,
        basic_timing: None,
    });
    let naming = naming_of(
        request.naming.namespace_definition.as_deref(),
        request.naming.namespace_format.as_deref(),
        request.naming.prefix.as_deref(),
        DestinationNaming::default(),
    )?;
    let next_run_at = next_run_of(&schedule)?;
    let configurations = request.configurations.clone().unwrap_or_default();
    validate_streams(&configurations)?;
    connection_checks::check(&state, &source, &destination, &configurations, &naming).await?;
    let connection = state
        .store
        .create_connection(&NewConnection {
            id: Uuid::new_v4(),
            workspace_id: workspace.id,
            source_id: source.id,
            destination_id: destination.id,
            name,
            status,
            schedule,
            configurations,
            naming,
        })
        .await?;
    state.store.set_next_run(connection.id, next_run_at).await?;
    Ok(Json(connection_response(connection)))
}

#[utoipa::path(get, path = "/connections", tag = "connections",
    responses((status = 200, body = ConnectionsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    query: QueryParams,
) -> ApiResult<Json<ConnectionsResponse>> {
    let page = query.page()?;
    let workspace_ids =
        visible_workspace_ids(&state, &caller, &query.uuids("workspaceIds")?).await?;
    let connections = state
        .store
        .connections(&ScopedQuery {
            workspace_ids,
            include_deleted: query.bool("includeDeleted", false)?,
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
        connections.len(),
    );
    Ok(Json(ConnectionsResponse {
        data: connections.into_iter().map(connection_response).collect(),
        next: page_links.next,
        previous: page_links.previous,
    }))
}

#[utoipa::path(get, path = "/connections/{connectionId}", tag = "connections",
    params(("connectionId" = Uuid, Path)), responses((status = 200, body = ConnectionResponse)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(connection_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_uuid("connectionId", &connection_id)?;
    let connection = visible_connection(&state, &caller, id).await?;
    // Ferry extension: the committed state (cursor and primary-key values only).
    let state_rows = state.store.connection_states(connection.id).await?;
    let mut body = serde_json::to_value(connection_response(connection))
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    body["state"] = Value::Array(
        state_rows
            .into_iter()
            .map(|row| {
                json!({
                    "stream": row.stream,
                    "state": row.state,
                })
            })
            .collect(),
    );
    Ok(Json(body))
}

/// When a schedule next runs: `None` for manual ones; 400 naming the field for one that
/// cannot run.
fn next_run_of(schedule: &ConnectionSchedule) -> ApiResult<Option<i64>> {
    crate::schedule::next_after(schedule, ferry_store::now_millis())
        .map_err(|error| ApiError::field(error.field, error.message))
}

/// Where streams go in the destination, checked.
fn naming_of(
    definition: Option<&str>,
    format: Option<&str>,
    prefix: Option<&str>,
    current: DestinationNaming,
) -> ApiResult<DestinationNaming> {
    let naming = DestinationNaming {
        namespace_definition: definition
            .map(str::to_owned)
            .unwrap_or(current.namespace_definition),
        namespace_format: format.map(str::to_owned).or(current.namespace_format),
        prefix: prefix.map(str::to_owned).or(current.prefix),
    };
    if !DestinationNaming::DEFINITIONS.contains(&naming.namespace_definition.as_str()) {
        return Err(ApiError::field(
            "namespaceDefinition",
            format!(
                "must be one of {}",
                DestinationNaming::DEFINITIONS.join(", ")
            ),
        ));
    }
    Ok(naming)
}

fn validate_streams(configurations: &StreamConfigurations) -> ApiResult<()> {
    for (index, stream) in configurations.streams.iter().enumerate() {
        if stream.name.trim().is_empty() {
            return Err(ApiError::field(
                format!("configurations.streams[{index}].name"),
                "must not be empty",
            ));
        }
        if let Some(mode) = &stream.sync_mode
            && ferry_api::split_sync_mode(mode).is_none()
        {
            return Err(ApiError::field(
                format!("configurations.streams[{index}].syncMode"),
                format!("'{mode}' is not a sync mode"),
            ));
        }
    }
    Ok(())
}

#[utoipa::path(patch, path = "/connections/{connectionId}", tag = "connections",
    request_body = ConnectionPatchRequest, params(("connectionId" = Uuid, Path)),
    responses((status = 200, body = ConnectionResponse)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(connection_id): Path<String>,
    ApiJson(request): ApiJson<ConnectionPatchRequest>,
) -> ApiResult<Json<ConnectionResponse>> {
    let id = parse_uuid("connectionId", &connection_id)?;
    let connection = editable_connection(&state, &caller, id).await?;
    let name = request
        .name
        .as_deref()
        .map(|name| valid_name("name", name))
        .transpose()?;
    if let Some(status) = &request.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::field(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    let next_run_at = request.schedule.as_ref().map(next_run_of).transpose()?;
    let naming = if request.naming == Default::default() {
        None
    } else {
        Some(naming_of(
            request.naming.namespace_definition.as_deref(),
            request.naming.namespace_format.as_deref(),
            request.naming.prefix.as_deref(),
            connection.naming.clone(),
        )?)
    };
    if let Some(configurations) = &request.configurations {
        validate_streams(configurations)?;
    }
    // New streams, or the same streams placed anew: checked as a creation would be.
    if request.configurations.is_some() || naming.is_some() {
        let source = state
            .store
            .actor(ConnectorRole::Source, connection.source_id)
            .await?;
        let destination = state
            .store
            .actor(ConnectorRole::Destination, connection.destination_id)
            .await?;
        connection_checks::check(
            &state,
            &source,
            &destination,
            request
                .configurations
                .as_ref()
                .unwrap_or(&connection.configurations),
            naming.as_ref().unwrap_or(&connection.naming),
        )
        .await?;
    }
    let changes = ConnectionChanges {
        naming,
        name,
        status: request.status.clone(),
        schedule: request.schedule.clone(),
        configurations: request.configurations.clone(),
    };
    let connection = state
        .store
        .update_connection(connection.id, &changes)
        .await?;
    if let Some(next_run_at) = next_run_at {
        state.store.set_next_run(connection.id, next_run_at).await?;
    }
    Ok(Json(connection_response(connection)))
}

#[utoipa::path(delete, path = "/connections/{connectionId}", tag = "connections",
    params(("connectionId" = Uuid, Path)), responses((status = 204)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(connection_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_uuid("connectionId", &connection_id)?;
    let connection = editable_connection(&state, &caller, id).await?;
    state.store.delete_connection(connection.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
