//! Custom connector definitions of a workspace: programs speaking the Airbyte protocol that
//! the workspace's data planes run. Running a program is running code on the data plane's
//! host, so only instance admins may register one.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use ferry_api::{ConnectorRole, DefinitionCreateRequest, DefinitionResponse, DefinitionsResponse};
use ferry_store::CustomDefinition;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, parse_uuid, valid_name};
use crate::services::access;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/workspaces/{workspaceId}/definitions/{kind}",
            get(list).post(create),
        )
        .route(
            "/workspaces/{workspaceId}/definitions/{kind}/{definitionId}",
            get(read).delete(remove),
        )
}

fn kind_of(segment: &str) -> ApiResult<ConnectorRole> {
    match segment {
        "sources" => Ok(ConnectorRole::Source),
        "destinations" => Ok(ConnectorRole::Destination),
        other => Err(ApiError::NotFound(format!(
            "no definitions of kind '{other}' (sources or destinations)"
        ))),
    }
}

fn definition_response(definition: CustomDefinition) -> DefinitionResponse {
    DefinitionResponse {
        command: definition.command,
        id: definition.id,
        name: definition.name,
        docker_repository: definition.docker_repository,
        docker_image_tag: definition.docker_image_tag,
        documentation_url: definition.documentation_url,
    }
}

async fn workspace_for(
    state: &AppState,
    caller: &Caller,
    workspace_id: &str,
    access: Access,
) -> ApiResult<Uuid> {
    let workspace_id = parse_uuid("workspaceId", workspace_id)?;
    Ok(access::workspace(state, caller, workspace_id, access)
        .await?
        .id)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((workspace_id, kind)): Path<(String, String)>,
    ApiJson(request): ApiJson<DefinitionCreateRequest>,
) -> ApiResult<Json<DefinitionResponse>> {
    let kind = kind_of(&kind)?;
    let workspace_id = workspace_for(&state, &caller, &workspace_id, Access::Edit).await?;
    caller.require_instance_admin("custom connectors (programs run on data planes)")?;
    let name = valid_name("name", &request.name)?;
    let command = request.command.clone().ok_or_else(|| {
        ApiError::unprocessable_field(
            "command",
            "Ferry runs custom connectors as programs speaking the Airbyte protocol: give the command line",
        )
    })?;
    if command.is_empty()
        || command
            .iter()
            .any(|part| part.is_empty() || part.contains('\0'))
    {
        return Err(ApiError::field(
            "command",
            "must be a non-empty list of non-empty strings",
        ));
    }
    let definition = state
        .store
        .create_definition(&CustomDefinition {
            id: Uuid::new_v4(),
            workspace_id,
            kind,
            name,
            docker_repository: request.docker_repository.unwrap_or_default(),
            docker_image_tag: request.docker_image_tag.unwrap_or_default(),
            documentation_url: request.documentation_url,
            command,
            created_at: 0,
        })
        .await?;
    Ok(Json(definition_response(definition)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((workspace_id, kind)): Path<(String, String)>,
) -> ApiResult<Json<DefinitionsResponse>> {
    let kind = kind_of(&kind)?;
    let workspace_id = workspace_for(&state, &caller, &workspace_id, Access::Read).await?;
    let data = state
        .store
        .definitions(kind, workspace_id)
        .await?
        .into_iter()
        .map(definition_response)
        .collect();
    Ok(Json(DefinitionsResponse { data }))
}

async fn owned_definition(
    state: &AppState,
    workspace_id: Uuid,
    kind: ConnectorRole,
    definition_id: &str,
) -> ApiResult<CustomDefinition> {
    let definition_id = parse_uuid("definitionId", definition_id)?;
    let definition = state.store.definition(kind, definition_id).await?;
    if definition.workspace_id != workspace_id {
        return Err(ApiError::NotFound(format!(
            "connector definition {definition_id} not found"
        )));
    }
    Ok(definition)
}

pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((workspace_id, kind, definition_id)): Path<(String, String, String)>,
) -> ApiResult<Json<DefinitionResponse>> {
    let kind = kind_of(&kind)?;
    let workspace_id = workspace_for(&state, &caller, &workspace_id, Access::Read).await?;
    Ok(Json(definition_response(
        owned_definition(&state, workspace_id, kind, &definition_id).await?,
    )))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((workspace_id, kind, definition_id)): Path<(String, String, String)>,
) -> ApiResult<Json<DefinitionResponse>> {
    let kind = kind_of(&kind)?;
    let workspace_id = workspace_for(&state, &caller, &workspace_id, Access::Edit).await?;
    caller.require_instance_admin("custom connectors (programs run on data planes)")?;
    let definition = owned_definition(&state, workspace_id, kind, &definition_id).await?;
    state.store.delete_definition(kind, definition.id).await?;
    Ok(Json(definition_response(definition)))
}
