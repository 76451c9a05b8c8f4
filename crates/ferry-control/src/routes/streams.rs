//! `GET /streams` (discover) and Ferry's `POST /sources|destinations/{id}/check`: connector
//! commands run on a data plane of the workspace's region (`services::connector_tasks`)
//! while the call waits for the answer.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use ferry_api::ConnectorRole;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{QueryParams, parse_uuid};
use crate::services::access::visible_actor;
use crate::services::connections;
use crate::services::connector_tasks;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/streams", get(streams))
        .route("/sources/{sourceId}/check", post(check_source))
        .route(
            "/destinations/{destinationId}/check",
            post(check_destination),
        )
}

/// `GET /streams?sourceId=`: the source's streams, as Airbyte's `StreamPropertiesResponse`
/// (a bare array).
pub async fn streams(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<Value>> {
    let source_id = query.required_uuid("sourceId")?;
    let source = visible_actor(&state, &caller, ConnectorRole::Source, source_id).await?;
    let catalog = connector_tasks::discover(&state, &source).await?;
    let streams = catalog["streams"].as_array().cloned().unwrap_or_default();
    let properties: Vec<Value> = streams
        .iter()
        .map(|stream| {
            let fields: Vec<Value> = stream["json_schema"]["properties"]
                .as_object()
                .map(|properties| properties.keys().map(|key| json!([key])).collect())
                .unwrap_or_default();
            json!({
                "streamName": stream["name"],
                "streamnamespace": stream.get("namespace").cloned().unwrap_or(Value::Null),
                "syncModes": connections::sync_modes(stream),
                "defaultCursorField": stream.get("default_cursor_field").cloned().unwrap_or_else(|| json!([])),
                "sourceDefinedCursorField": stream["source_defined_cursor"].as_bool().unwrap_or(false),
                "sourceDefinedPrimaryKey": stream.get("source_defined_primary_key").cloned().unwrap_or_else(|| json!([])),
                "propertyFields": fields,
            })
        })
        .collect();
    Ok(Json(Value::Array(properties)))
}

async fn check(
    state: &AppState,
    caller: &Caller,
    role: ConnectorRole,
    id: &str,
    field: &str,
) -> ApiResult<Json<Value>> {
    let id = parse_uuid(field, id)?;
    let actor = visible_actor(state, caller, role, id).await?;
    let answer = connector_tasks::check(state, &actor).await?;
    let succeeded = answer["status"] == "SUCCEEDED";
    Ok(Json(json!({
        "status": if succeeded { "succeeded" } else { "failed" },
        "message": answer.get("message").cloned().unwrap_or(Value::Null),
    })))
}

/// Ferry extension (Airbyte's internal `check_connection`): runs the connector's `check`.
pub async fn check_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> ApiResult<Json<Value>> {
    check(
        &state,
        &caller,
        ConnectorRole::Source,
        &source_id,
        "sourceId",
    )
    .await
}

pub async fn check_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(destination_id): Path<String>,
) -> ApiResult<Json<Value>> {
    check(
        &state,
        &caller,
        ConnectorRole::Destination,
        &destination_id,
        "destinationId",
    )
    .await
}
