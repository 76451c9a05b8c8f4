//! Sources and destinations (one implementation for both roles): creating, updating and
//! deleting them with the roles' checks, their configuration validated against the
//! connector and encrypted at rest, secrets masked in whatever is shown (API and web UI).

use ferry_api::{ActorPatchRequest, ConnectorRole};
use ferry_connectors::registry;
use ferry_store::{Actor, NewActor, StoreError};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::valid_name;
use crate::secrets::{keep_masked_secrets, managed, mask};
use crate::services::access::{self, visible_actor};
use crate::services::definitions::{self, CUSTOM_TYPE};

pub fn type_field(kind: ConnectorRole) -> &'static str {
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

/// A new source or destination: (name, workspace, configuration, definition id).
pub async fn create(
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
    managed::refuse_references(&configuration)?;
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
    // A custom definition's SPEC (which fields are secret) before the first reply masks, and
    // before a secrets manager takes the secrets it marks.
    let spec = definitions::learn_spec(state, &actor).await?;
    if state.secrets_manager.is_none() {
        return Ok(actor);
    }
    let sealed = match managed::seal(state, workspace_id, configuration, spec.as_ref()).await {
        Ok(sealed) => sealed,
        Err(error) => {
            let _ = state.store.delete_actor(kind, actor.id).await;
            return Err(error);
        }
    };
    match state
        .store
        .update_actor(kind, actor.id, None, Some(&sealed.text))
        .await
    {
        Ok(actor) => Ok(actor),
        Err(error) => {
            managed::forget(state, sealed.written).await;
            let _ = state.store.delete_actor(kind, actor.id).await;
            Err(error.into())
        }
    }
}

/// The configuration as a reply may show it: the secrets its connector's SPEC marks (or,
/// without one, those named like secrets) masked.
pub async fn shown_configuration(state: &AppState, actor: &Actor) -> ApiResult<Value> {
    let spec = definitions::secret_spec(state, actor).await?;
    Ok(mask(
        &managed::without_secrets(state, actor)?,
        spec.as_ref(),
    ))
}

/// Applies a PATCH (or, with both fields, a PUT) to a source or destination.
pub async fn update(
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
    let (configuration, dropped) = match request.configuration {
        None => (None, Vec::new()),
        Some(mut configuration) => {
            if !configuration.is_object() {
                return Err(ApiError::field("configuration", "must be an object"));
            }
            managed::refuse_references(&configuration)?;
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
            let stored = managed::stored(state, &actor.configuration)?;
            let spec = definitions::learn_spec(state, &actor).await?;
            // A mask keeps the stored value: with a secrets manager, its reference.
            keep_masked_secrets(&mut configuration, &stored, spec.as_ref())?;
            let checked = managed::with_secrets(state, &configuration).await?;
            validate_configuration(kind, &actor.connector_type, &checked)?;
            let dropped = managed::dropped(&stored, &configuration, actor.workspace_id);
            let sealed =
                managed::seal(state, actor.workspace_id, configuration, spec.as_ref()).await?;
            (Some(sealed), dropped)
        }
    };
    let updated = state
        .store
        .update_actor(
            kind,
            id,
            name.as_deref(),
            configuration.as_ref().map(|sealed| sealed.text.as_str()),
        )
        .await;
    match updated {
        Ok(actor) => {
            // The secrets the old configuration had and the new one does not.
            managed::forget(state, dropped).await;
            Ok(actor)
        }
        Err(error) => {
            if let Some(sealed) = configuration {
                managed::forget(state, sealed.written).await;
            }
            Err(error.into())
        }
    }
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    kind: ConnectorRole,
    id: Uuid,
) -> ApiResult<()> {
    let actor = visible_actor(state, caller, kind, id).await?;
    access::require_workspace(state, caller, actor.workspace_id, Access::Edit).await?;
    state.store.delete_actor(kind, id).await?;
    // Its secrets go with it (a secrets manager's; inline ones stay encrypted in its row).
    if state.secrets_manager.is_some()
        && let Ok(stored) = managed::stored(state, &actor.configuration)
    {
        managed::forget(state, managed::owned(&stored, actor.workspace_id)).await;
    }
    Ok(())
}
