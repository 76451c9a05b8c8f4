//! Sources and destinations: the same shapes with different names, one implementation
//! (`services::actors`, which the web UI calls too).

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
use ferry_store::{Actor, ScopedQuery};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, QueryParams, parse_uuid};
use crate::pagination::links;
use crate::services::access::{visible_actor, visible_workspace_ids};
use crate::services::actors;

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

async fn source_response(state: &AppState, actor: Actor) -> ApiResult<SourceResponse> {
    Ok(SourceResponse {
        configuration: actors::shown_configuration(state, &actor).await?,
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
        configuration: actors::shown_configuration(state, &actor).await?,
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
    let actor = actors::create(
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
    let actor = actors::create(
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

pub async fn patch_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
    ApiJson(request): ApiJson<ActorPatchRequest>,
) -> ApiResult<Json<SourceResponse>> {
    let id = parse_uuid("sourceId", &source_id)?;
    let actor = actors::update(&state, &caller, ConnectorRole::Source, id, request).await?;
    Ok(Json(source_response(&state, actor).await?))
}

pub async fn put_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
    ApiJson(request): ApiJson<ActorPutRequest>,
) -> ApiResult<Json<SourceResponse>> {
    let id = parse_uuid("sourceId", &source_id)?;
    let actor = actors::update(&state, &caller, ConnectorRole::Source, id, request.into()).await?;
    Ok(Json(source_response(&state, actor).await?))
}

pub async fn delete_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_uuid("sourceId", &source_id)?;
    actors::delete(&state, &caller, ConnectorRole::Source, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn patch_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(destination_id): Path<String>,
    ApiJson(request): ApiJson<ActorPatchRequest>,
) -> ApiResult<Json<DestinationResponse>> {
    let id = parse_uuid("destinationId", &destination_id)?;
    let actor = actors::update(&state, &caller, ConnectorRole::Destination, id, request).await?;
    Ok(Json(destination_response(&state, actor).await?))
}

pub async fn put_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(destination_id): Path<String>,
    ApiJson(request): ApiJson<ActorPutRequest>,
) -> ApiResult<Json<DestinationResponse>> {
    let id = parse_uuid("destinationId", &destination_id)?;
    let actor = actors::update(
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
    actors::delete(&state, &caller, ConnectorRole::Destination, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
