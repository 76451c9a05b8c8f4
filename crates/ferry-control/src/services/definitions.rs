//! Custom connector definitions: programs speaking the Airbyte protocol that a workspace's
//! data planes run. A source or destination made from one has the connector type
//! [`CUSTOM_TYPE`] and names the definition by its `definition_id`.

use ferry_store::Actor;

use crate::AppState;
use crate::error::ApiResult;

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
