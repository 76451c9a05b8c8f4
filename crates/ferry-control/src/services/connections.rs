//! Connections: created (and checked against the source's catalog and the destination's
//! naming) with the roles' checks, for the public API and the web UI alike.

use ferry_api::{
    ConnectionCreateRequest, ConnectionResponse, ConnectionSchedule, ConnectorRole,
    DestinationNaming, StreamConfigurations,
};
use ferry_store::{Connection, NewConnection};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::valid_name;
use crate::services::access::visible_actor;
use crate::services::connection_checks;

pub const STATUSES: [&str; 4] = ["active", "inactive", "deprecated", "locked"];

pub fn connection_response(connection: Connection) -> ConnectionResponse {
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

/// When a schedule next runs: `None` for manual ones; 400 naming the field for one that
/// cannot run.
pub fn next_run_of(schedule: &ConnectionSchedule) -> ApiResult<Option<i64>> {
    crate::schedule::next_after(schedule, ferry_store::now_millis())
        .map_err(|error| ApiError::field(error.field, error.message))
}

/// Where streams go in the destination, checked.
pub fn naming_of(
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

pub fn validate_streams(configurations: &StreamConfigurations) -> ApiResult<()> {
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

/// A new connection between a source and a destination of one workspace (editors).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: ConnectionCreateRequest,
) -> ApiResult<ConnectionResponse> {
    let source = visible_actor(state, caller, ConnectorRole::Source, request.source_id)
        .await
        .map_err(|_| {
            ApiError::field(
                "sourceId",
                format!("source {} does not exist", request.source_id),
            )
        })?;
    let destination = visible_actor(
        state,
        caller,
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
    connection_checks::check(state, &source, &destination, &configurations, &naming).await?;
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
    Ok(connection_response(connection))
}

/// Airbyte's `ConnectionSyncModeEnum` values a stream supports.
pub fn sync_modes(stream: &Value) -> Vec<&'static str> {
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
