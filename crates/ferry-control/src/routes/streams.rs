//! `GET /streams` (discover) and Ferry's `POST /sources|destinations/{id}/check`: connector
//! commands that run on a data plane of the workspace's region — never in the control plane,
//! which would see the source's data otherwise — while the call waits for the answer.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use ferry_store::{Actor, ActorKind};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::actors::visible_actor;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{QueryParams, parse_uuid};

/// Longest an API call waits for a data plane's answer.
const TASK_WAIT: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/streams", get(streams))
        .route("/sources/{sourceId}/check", post(check_source))
        .route(
            "/destinations/{destinationId}/check",
            post(check_destination),
        )
}

/// Runs `kind` for the actor on a data plane of its workspace's region and waits for it.
async fn run_task(state: &AppState, actor: &Actor, kind: &str) -> ApiResult<Result<Value, String>> {
    let workspace = state.store.workspace(actor.workspace_id).await?;
    let region = super::jobs::runnable_region(state, &workspace, &format!("`{kind}`")).await?;
    let task = state
        .store
        .create_task(region.id, kind, actor.kind, actor.id)
        .await?;
    state.job_created.notify_waiters();
    let deadline = Instant::now() + TASK_WAIT;
    loop {
        let woken = state.task_done.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let current = state.store.task(task.id).await?;
        match current.status.as_str() {
            "succeeded" => {
                let result = current.result.as_deref().unwrap_or("null");
                return Ok(Ok(serde_json::from_str(result).unwrap_or(Value::Null)));
            }
            "failed" => return Ok(Err(current.error.unwrap_or_default())),
            _ => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ApiError::Unavailable(format!(
                "no data plane of region '{}' answered `{kind}` within {} s",
                region.name,
                TASK_WAIT.as_secs()
            )));
        }
        let _ = tokio::time::timeout((deadline - now).min(Duration::from_millis(250)), woken).await;
    }
}

/// The source's catalog, discovered on a data plane of its region.
pub async fn discover(state: &AppState, source: &Actor) -> ApiResult<Value> {
    run_task(state, source, "discover").await?.map_err(|error| {
        ApiError::unprocessable_field("sourceId", format!("discover failed: {error}"))
    })
}

/// Airbyte's `ConnectionSyncModeEnum` values a stream supports.
fn sync_modes(stream: &Value) -> Vec<&'static str> {
    let supports = |mode: &str| {
        stream["supported_sync_modes"]
            .as_array()
            .is_some_and(|modes| modes.iter().any(|supported| supported == mode))
    };
    let mut modes = Vec::new();
    if supports("full_refresh") {
        modes.extend(["full_refresh_overwrite", "full_refresh_append"]);
    }
    if supports("incremental") {
        modes.extend(["incremental_append", "incremental_deduped_history"]);
    }
    modes
}

/// `GET /streams?sourceId=`: the source's streams, as Airbyte's `StreamPropertiesResponse`
/// (a bare array).
pub async fn streams(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<Value>> {
    let source_id = query.required_uuid("sourceId")?;
    let source = visible_actor(&state, &caller, ActorKind::Source, source_id).await?;
    let catalog = run_task(&state, &source, "discover")
        .await?
        .map_err(|error| {
            ApiError::unprocessable_field("sourceId", format!("discover failed: {error}"))
        })?;
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
                "syncModes": sync_modes(stream),
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
    kind: ActorKind,
    id: &str,
    field: &str,
) -> ApiResult<Json<Value>> {
    let id = parse_uuid(field, id)?;
    let actor = visible_actor(state, caller, kind, id).await?;
    let answer = match run_task(state, &actor, "check").await? {
        Ok(status) => status,
        Err(error) => json!({"status": "FAILED", "message": error}),
    };
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
    check(&state, &caller, ActorKind::Source, &source_id, "sourceId").await
}

pub async fn check_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(destination_id): Path<String>,
) -> ApiResult<Json<Value>> {
    check(
        &state,
        &caller,
        ActorKind::Destination,
        &destination_id,
        "destinationId",
    )
    .await
}
