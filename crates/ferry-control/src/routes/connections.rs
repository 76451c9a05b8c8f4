use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use ferry_api::{
    ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse, ConnectionsResponse,
    ConnectorRole,
};
use ferry_store::{ConnectionChanges, ScopedQuery};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams, parse_uuid, valid_name};
use crate::pagination::links;
use crate::services::access::{editable_connection, visible_connection, visible_workspace_ids};
use crate::services::connection_checks;
use crate::services::connections::{
    self, STATUSES, connection_response, naming_of, next_run_of, validate_streams,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list).post(create))
        .route(
            "/connections/{connectionId}",
            get(read).patch(update).delete(remove),
        )
}

#[utoipa::path(post, path = "/connections", tag = "connections", request_body = ConnectionCreateRequest,
    responses((status = 200, body = ConnectionResponse)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ConnectionCreateRequest>,
) -> ApiResult<Json<ConnectionResponse>> {
    Ok(Json(connections::create(&state, &caller, request).await?))
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
                let mut entry = json!({
                    "stream": row.stream,
                    "state": row.state,
                });
                // A large state is in the data planes' state bucket: where, and its digest.
                if let Some(reference) = row.reference {
                    entry["stateReference"] = json!(reference);
                }
                entry
            })
            .collect(),
    );
    Ok(Json(body))
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
