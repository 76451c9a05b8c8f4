//! Sources and destinations: the same shapes with different names, one implementation.

use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use ferry_api::ConnectorRole;
use ferry_api::{
    ActorPatchRequest, ActorPutRequest, DestinationCreateRequest, DestinationResponse,
    DestinationsResponse, SourceCreateRequest, SourceResponse, SourcesResponse,
};
use ferry_connectors::registry;
use ferry_store::{Actor, NewActor, ScopedQuery, StoreError};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams, parse_uuid, valid_name};
use crate::pagination::links;
use crate::secrets::{keep_masked_secrets, mask};
use crate::services::access::{self, visible_actor, visible_workspace_ids};
use crate::services::definitions::{self, CUSTOM_TYPE};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sources", get(list_sources).post(create_source))
        .route(
            "/sources/{sourceId}",
            get(read_source)
                .patch(patch_source)
                .put(put_source)
                .delete(delete_source),
        )
        .route(
            "/destinations",
            get(list_destinations).post(create_destination),
        )
        .route(
            "/destinations/{destinationId}",
            get(read_destination)
                .patch(patch_destination)
                .put(put_destination)
                .delete(delete_destination),
        )
}

fn type_field(kind: ConnectorRole) -> &'static str {
    match kind {
        ConnectorRole::Source => "sourceType",
        ConnectorRole::Destination => "destinationType",
    }
}

/// Checks what Ferry can check of a built-in connector's configuration before any connector
/// runs (its shape: required keys, types, ranges), so that a bad one is refused at once,
/// naming the field, not after a job was queued.
fn validate_configuration(
    kind: ConnectorRole,
    connector_type: &str,
    configuration: &Value,
) -> ApiResult<()> {
    if connector_type == CUSTOM_TYPE {
        return Ok(());
    }
    let Some(registration) = registry::native(kind, connector_type) else {
        return Ok(());
    };
    registration.validate(configuration).map_err(|error| {
        let field = match error.field.as_str() {
            "" => "configuration".to_owned(),
            field => format!("configuration.{field}"),
        };
        ApiError::field(field, error.message)
    })
}

async fn create(
    state: &AppState,
    caller: &Caller,
    kind: ConnectorRole,
    request: (String, Uuid, Value, Option<Uuid>),
) -> ApiResult<Actor> {
    let (name, workspace_id, configuration, definition_id) = request;
    let name = valid_name("name", &name)?;
    let workspace = state
        .store
        .live_workspace(workspace_id)
        .await
        .map_err(|_| {
            ApiError::field(
                "workspaceId",
                format!("workspace {workspace_id} does not exist"),
            )
        })?;
    caller.require_workspace_access(&workspace, Access::Edit)?;
    if !configuration.is_object() {
        return Err(ApiError::field("configuration", "must be an object"));
    }
    let type_field = type_field(kind);
    let connector_type = match configuration.get(type_field) {
        None => None,
        Some(Value::String(kind)) => Some(kind.as_str()),
        Some(_) => {
            return Err(ApiError::field(
                format!("configuration.{type_field}"),
                "must be a string",
            ));
        }
    };
    if connector_type.is_none() && definition_id.is_none() {
        return Err(ApiError::field(
            format!("configuration.{type_field}"),
            format!("give configuration.{type_field} or definitionId"),
        ));
    }
    let (connector_type, definition_id) = match registry::find(kind, connector_type, definition_id)
    {
        Some(definition) => {
            validate_configuration(kind, definition.connector_type, &configuration)?;
            (
                definition.connector_type.to_owned(),
                definition.definition_id,
            )
        }
        None => {
            // Not built in: a custom definition of this workspace, named by its id.
            let custom = match definition_id {
                Some(id) => match state.store.definition(kind, id).await {
                    Ok(definition) => Some(definition),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(error) => return Err(error.into()),
                },
                None => None,
            }
            .filter(|definition| definition.workspace_id == workspace_id);
            match (custom, connector_type) {
                (Some(custom), _) => (CUSTOM_TYPE.to_owned(), custom.id),
                (None, Some(unknown)) => {
                    return Err(ApiError::field(
                        format!("configuration.{type_field}"),
                        format!(
                            "no {} connector of type '{unknown}' (or it does not match definitionId)",
                            kind.as_str()
                        ),
                    ));
                }
                (None, None) => {
                    return Err(ApiError::field(
                        "definitionId",
                        "no such connector definition",
                    ));
                }
            }
        }
    };
    let actor = state
        .store
        .create_actor(&NewActor {
            id: Uuid::new_v4(),
            kind,
            workspace_id,
            name,
            connector_type,
            definition_id,
            configuration: state.secrets.encrypt(&configuration)?,
        })
        .await?;
    // A custom definition's SPEC (which fields are secret) before the first reply masks.
    definitions::learn_spec(state, &actor).await?;
    Ok(actor)
}

/// The configuration as a reply may show it: the secrets its connector's SPEC marks (or,
/// without one, those named like secrets) masked.
async fn shown_configuration(state: &AppState, actor: &Actor) -> ApiResult<Value> {
    let spec = definitions::secret_spec(state, actor).await?;
    Ok(mask(
        &state.secrets.decrypt(&actor.configuration)?,
        spec.as_ref(),
    ))
}

async fn source_response(state: &AppState, actor: Actor) -> ApiResult<SourceResponse> {
    Ok(SourceResponse {
        configuration: shown_configuration(state, &actor).await?,
        source_id: actor.id,
        name: actor.name,
        source_type: actor.connector_type,
        definition_id: actor.definition_id,
        workspace_id: actor.workspace_id,
        created_at: actor.created_at / 1000,
    })
}

async fn destination_response(state: &AppState, actor: Actor) -> ApiResult<DestinationResponse> {
    Ok(DestinationResponse {
        configuration: shown_configuration(state, &actor).await?,
        destination_id: actor.id,
        name: actor.name,
        destination_type: actor.connector_type,
        definition_id: actor.definition_id,
        workspace_id: actor.workspace_id,
        created_at: actor.created_at / 1000,
    })
}

async fn list(
    state: &AppState,
    caller: &Caller,
    kind: ConnectorRole,
    query: &QueryParams,
) -> ApiResult<(Vec<Actor>, crate::extract::Page)> {
    let page = query.page()?;
    let workspace_ids = visible_workspace_ids(state, caller, &query.uuids("workspaceIds")?).await?;
    let actors = state
        .store
        .actors(
            kind,
            &ScopedQuery {
                workspace_ids,
                include_deleted: query.bool("includeDeleted", false)?,
                limit: page.limit,
                offset: page.offset,
            },
        )
        .await?;
    Ok((actors, page))
}

#[utoipa::path(post, path = "/sources", tag = "sources", request_body = SourceCreateRequest,
    responses((status = 200, body = SourceResponse)))]
pub async fn create_source(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<SourceCreateRequest>,
) -> ApiResult<Json<SourceResponse>> {
    let actor = create(
        &state,
        &caller,
        ConnectorRole::Source,
        (
            request.name,
            request.workspace_id,
            request.configuration,
            request.definition_id,
        ),
    )
    .await?;
    Ok(Json(source_response(&state, actor).await?))
}

#[utoipa::path(get, path = "/sources", tag = "sources", responses((status = 200, body = SourcesResponse)))]
pub async fn list_sources(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    query: QueryParams,
) -> ApiResult<Json<SourcesResponse>> {
    let (actors, page) = list(&state, &caller, ConnectorRole::Source, &query).await?;
    let page_links = links(
        &state,
        &headers,
        uri.path(),
        &query.filters(),
        page,
        actors.len(),
    );
    let mut data = Vec::with_capacity(actors.len());
    for actor in actors {
        data.push(source_response(&state, actor).await?);
    }
    Ok(Json(SourcesResponse {
        data,
        next: page_links.next,
        previous: page_links.previous,
    }))
}

#[utoipa::path(get, path = "/sources/{sourceId}", tag = "sources",
    params(("sourceId" = Uuid, Path)), responses((status = 200, body = SourceResponse)))]
pub async fn read_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> ApiResult<Json<SourceResponse>> {
    let id = parse_uuid("sourceId", &source_id)?;
    let actor = visible_actor(&state, &caller, ConnectorRole::Source, id).await?;
    Ok(Json(source_response(&state, actor).await?))
}

#[utoipa::path(post, path = "/destinations", tag = "destinations", request_body = DestinationCreateRequest,
    responses((status = 200, body = DestinationResponse)))]
pub async fn create_destination(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<DestinationCreateRequest>,
) -> ApiResult<Json<DestinationResponse>> {
    let actor = create(
        &state,
        &caller,
        ConnectorRole::Destination,
        (
            request.name,
            request.workspace_id,
            request.configuration,
            request.definition_id,
        ),
    )
    .await?;
    Ok(Json(destination_response(&state, actor).await?))
}

#[utoipa::path(get, path = "/destinations", tag = "destinations",
    responses((status = 200, body = DestinationsResponse)))]
pub async fn list_destinations(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    query: QueryParams,
) -> ApiResult<Json<DestinationsResponse>> {
    let (actors, page) = list(&state, &caller, ConnectorRole::Destination, &query).await?;
    let page_links = links(
        &state,
        &headers,
        uri.path(),
        &query.filters(),
        page,
        actors.len(),
    );
    let mut data = Vec::with_capacity(actors.len());
    for actor in actors {
        data.push(destination_response(&state, actor).await?);
    }
    Ok(Json(DestinationsResponse {
        data,
        next: page_links.next,
        previous: page_links.previous,
    }))
}

#[utoipa::path(get, path = "/destinations/{destinationId}", tag = "destinations",
    params(("destinationId" = Uuid, Path)), responses((status = 200, body = DestinationResponse)))]
pub async fn read_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(destination_id): Path<String>,
) -> ApiResult<Json<DestinationResponse>> {
    let id = parse_uuid("destinationId", &destination_id)?;
    let actor = visible_actor(&state, &caller, ConnectorRole::Destination, id).await?;
    Ok(Json(destination_response(&state, actor).await?))
}

/// Applies a PATCH (or, with both fields, a PUT) to a source or destination.
async fn update(
    state: &AppState,
    caller: &Caller,
    kind: ConnectorRole,
    id: Uuid,
    request: ActorPatchRequest,
) -> ApiResult<Actor> {
    let actor = visible_actor(state, caller, kind, id).await?;
    access::require_workspace(state, caller, actor.workspace_id, Access::Edit).await?;
    if request
        .workspace_id
        .is_some_and(|workspace_id| workspace_id != actor.workspace_id)
    {
        return Err(ApiError::unprocessable_field(
            "workspaceId",
            "a source cannot move to another workspace",
        ));
    }
    let name = request
        .name
        .as_deref()
        .map(|name| valid_name("name", name))
        .transpose()?;
    let configuration = match request.configuration {
        None => None,
        Some(mut configuration) => {
            if !configuration.is_object() {
                return Err(ApiError::field("configuration", "must be an object"));
            }
            let type_field = type_field(kind);
            if let Some(given) = configuration.get(type_field)
                && actor.connector_type != CUSTOM_TYPE
                && given.as_str() != Some(actor.connector_type.as_str())
            {
                return Err(ApiError::field(
                    format!("configuration.{type_field}"),
                    format!("cannot change from '{}'", actor.connector_type),
                ));
            }
            let stored = state.secrets.decrypt(&actor.configuration)?;
            let spec = definitions::learn_spec(state, &actor).await?;
            keep_masked_secrets(&mut configuration, &stored, spec.as_ref())?;
            validate_configuration(kind, &actor.connector_type, &configuration)?;
            Some(state.secrets.encrypt(&configuration)?)
        }
    };
    Ok(state
        .store
        .update_actor(kind, id, name.as_deref(), configuration.as_deref())
        .await?)
}

async fn delete(
    state: &AppState,
    caller: &Caller,
    kind: ConnectorRole,
    id: Uuid,
) -> ApiResult<StatusCode> {
    let actor = visible_actor(state, caller, kind, id).await?;
    access::require_workspace(state, caller, actor.workspace_id, Access::Edit).await?;
    state.store.delete_actor(kind, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn patch_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
    ApiJson(request): ApiJson<ActorPatchRequest>,
) -> ApiResult<Json<SourceResponse>> {
    let id = parse_uuid("sourceId", &source_id)?;
    let actor = update(&state, &caller, ConnectorRole::Source, id, request).await?;
    Ok(Json(source_response(&state, actor).await?))
}

pub async fn put_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
    ApiJson(request): ApiJson<ActorPutRequest>,
) -> ApiResult<Json<SourceResponse>> {
    let id = parse_uuid("sourceId", &source_id)?;
    let actor = update(&state, &caller, ConnectorRole::Source, id, request.into()).await?;
    Ok(Json(source_response(&state, actor).await?))
}

pub async fn delete_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_uuid("sourceId", &source_id)?;
    delete(&state, &caller, ConnectorRole::Source, id).await
}

pub async fn patch_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(destination_id): Path<String>,
    ApiJson(request): ApiJson<ActorPatchRequest>,
) -> ApiResult<Json<DestinationResponse>> {
    let id = parse_uuid("destinationId", &destination_id)?;
    let actor = update(&state, &caller, ConnectorRole::Destination, id, request).await?;
    Ok(Json(destination_response(&state, actor).await?))
}

pub async fn put_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(destination_id): Path<String>,
    ApiJson(request): ApiJson<ActorPutRequest>,
) -> ApiResult<Json<DestinationResponse>> {
    let id = parse_uuid("destinationId", &destination_id)?;
    let actor = update(
        &state,
        &caller,
        ConnectorRole::Destination,
        id,
        request.into(),
    )
    .await?;
    Ok(Json(destination_response(&state, actor).await?))
}

pub async fn delete_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(destination_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_uuid("destinationId", &destination_id)?;
    delete(&state, &caller, ConnectorRole::Destination, id).await
}
