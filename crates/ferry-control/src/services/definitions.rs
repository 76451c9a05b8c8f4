//! Custom connector definitions: programs speaking the Airbyte protocol that a workspace's
//! data planes run. A source or destination made from one has the connector type
//! [`CUSTOM_TYPE`] and names the definition by its `definition_id`.

use std::sync::OnceLock;

use ferry_api::{ConnectorRole, DataplaneHealth};
use ferry_connectors::registry;
use ferry_store::{Actor, StoreError};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiResult;
use crate::services::{connector_tasks, dataplane_health};

/// The `connector_type` of sources and destinations made from custom definitions.
pub const CUSTOM_TYPE: &str = "custom";

/// Whether the source or destination runs a custom definition's program.
pub fn is_custom(actor: &Actor) -> bool {
    actor.connector_type == CUSTOM_TYPE
}

/// The command line a data plane runs for the source or destination: its definition's, for
/// a custom one; `None` for a built-in connector.
pub async fn custom_command(state: &AppState, actor: &Actor) -> ApiResult<Option<Vec<String>>> {
    if !is_custom(actor) {
        return Ok(None);
    }
    let definition = state
        .store
        .definition(actor.kind, actor.definition_id)
        .await?;
    Ok(Some(definition.command))
}

/// A native connector's SPEC (`connectionSpecification`), generated once.
fn native_spec(role: ConnectorRole, connector_type: &str) -> Option<&'static Value> {
    static SPECS: OnceLock<Vec<(ConnectorRole, &'static str, Value)>> = OnceLock::new();
    SPECS
        .get_or_init(|| {
            registry::CONNECTORS
                .iter()
                .map(|row| (row.role, row.connector_type, (row.spec)()))
                .collect()
        })
        .iter()
        .find(|(kind, name, _)| *kind == role && *name == connector_type)
        .map(|(_, _, spec)| spec)
}

/// The SPEC (`connectionSpecification`) that says which of the actor's configuration fields
/// are secret: its native connector's, or what its custom definition's program printed.
/// `None` when none is known (yet): names decide then.
pub async fn secret_spec(state: &AppState, actor: &Actor) -> ApiResult<Option<Value>> {
    if !is_custom(actor) {
        return Ok(native_spec(actor.kind, &actor.connector_type).cloned());
    }
    match state
        .store
        .definition_spec(actor.kind, actor.definition_id)
        .await
    {
        Ok(spec) => Ok(spec),
        // A deleted definition: its actors are masked by names.
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// [`secret_spec`], learnt first if the actor's custom definition has none yet: a live data
/// plane of its region runs the program's `spec` (as Airbyte does when a definition is
/// added; Ferry runs programs only on data planes), and the definition keeps it, since its
/// command never changes. Best effort: without a data plane to ask, or an answer, names
/// decide, and the next create or update asks again.
pub async fn learn_spec(state: &AppState, actor: &Actor) -> ApiResult<Option<Value>> {
    let known = secret_spec(state, actor).await?;
    if known.is_some() || !is_custom(actor) || !region_has_healthy_dataplane(state, actor).await? {
        return Ok(known);
    }
    let answer = match connector_tasks::spec(state, actor).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => {
            tracing::warn!(definition_id = %actor.definition_id, %error, "the custom connector's `spec` failed; its secrets are judged by name");
            return Ok(None);
        }
        Err(error) => {
            tracing::warn!(definition_id = %actor.definition_id, %error, "no SPEC for the custom connector; its secrets are judged by name");
            return Ok(None);
        }
    };
    let Some(spec) = answer
        .get("connectionSpecification")
        .filter(|spec| spec.is_object())
    else {
        tracing::warn!(definition_id = %actor.definition_id, "the custom connector's SPEC has no connectionSpecification object");
        return Ok(None);
    };
    state
        .store
        .set_definition_spec(actor.kind, actor.definition_id, spec)
        .await?;
    Ok(Some(spec.clone()))
}

/// Whether a data plane of the actor's region may answer soon: enabled, and heartbeating
/// (or just made, before its first heartbeat, as `ferry up`'s own at start).
async fn region_has_healthy_dataplane(state: &AppState, actor: &Actor) -> ApiResult<bool> {
    let workspace = state.store.workspace(actor.workspace_id).await?;
    Ok(state
        .store
        .dataplanes(&[workspace.region_id])
        .await?
        .iter()
        .any(|plane| {
            plane.enabled
                && !plane.tombstone
                && matches!(
                    dataplane_health::status(&state.config, plane),
                    DataplaneHealth::Healthy | DataplaneHealth::Unknown
                )
        }))
}
