//! Connector configurations as stored, with or without a secrets manager.
//!
//! Without one (the default), a configuration is stored whole, encrypted (`enc:v1:`), and a
//! data plane receives it decrypted. With one, each secret value (by the connector's SPEC,
//! [`fields::secret_pointers`]) is written to the manager under a coordinate of its own and
//! replaced by a reference (`{"_secret": "<coordinate>"}`, Airbyte's shape); the
//! configuration, holding no secret any more, is stored as plain JSON, and a data plane
//! receives the references and reads the secrets from the manager itself. A secret is never
//! overwritten in place: an update writes new coordinates, stores them, then deletes the
//! ones no longer referred to, so a failed update leaves the stored configuration working.

use ferry_api::{ConnectorRole, MASKED_SECRET};
use ferry_secrets::references;
use ferry_store::{Actor, ScopedQuery};
use serde_json::Value;
use uuid::Uuid;

use super::{SecretCipher, fields};
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Actors read at once while migrating.
const MIGRATION_PAGE: i64 = 200;

fn manager_error(error: ferry_secrets::SecretsError) -> ApiError {
    ApiError::Unavailable(format!("secrets manager: {error}"))
}

/// A stored configuration as it was stored: inline secrets (decrypted) or references.
pub fn stored(state: &AppState, text: &str) -> ApiResult<Value> {
    if SecretCipher::is_encrypted(text) {
        return state.secrets.decrypt(text);
    }
    serde_json::from_str(text)
        .map_err(|_| ApiError::Internal("a stored configuration is corrupt".to_owned()))
}

/// The actor's configuration as a data plane receives it: with a manager, references it
/// resolves itself; without, the secrets.
pub fn for_dataplane(state: &AppState, actor: &Actor) -> ApiResult<Value> {
    let mut configuration = stored(state, &actor.configuration)?;
    // Sent as nothing: the connector then says the field is missing, where the data plane
    // would otherwise read a secret this configuration does not own.
    let foreign = foreign_references(&configuration, actor.workspace_id);
    for coordinate in &foreign {
        tracing::warn!(kind = actor.kind.as_str(), id = %actor.id, %coordinate, "a stored configuration refers to a secret that is not its workspace's: sent without it (give the secret again)");
    }
    if !foreign.is_empty() {
        blank_references(&mut configuration, &foreign);
    }
    Ok(configuration)
}

/// The references that are not to a secret Ferry wrote for `workspace_id`. Ferry writes
/// only those, and users may send none; one could still be in a configuration stored before
/// references were refused, naming another workspace's secret (or one Ferry never wrote).
fn foreign_references(configuration: &Value, workspace_id: Uuid) -> Vec<String> {
    references::coordinates(configuration)
        .into_iter()
        .filter(|coordinate| references::coordinate_workspace(coordinate) != Some(workspace_id))
        .collect()
}

fn blank_references(configuration: &mut Value, coordinates: &[String]) {
    if references::as_reference(configuration)
        .is_some_and(|coordinate| coordinates.iter().any(|foreign| foreign == coordinate))
    {
        *configuration = Value::Null;
        return;
    }
    match configuration {
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|value| blank_references(value, coordinates)),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| blank_references(item, coordinates)),
        _ => {}
    }
}

/// The actor's configuration with each reference shown as the mask (what a reply, or a
/// check that needs no secret, sees).
pub fn without_secrets(state: &AppState, actor: &Actor) -> ApiResult<Value> {
    let mut configuration = stored(state, &actor.configuration)?;
    references::replace_references(&mut configuration, &Value::String(MASKED_SECRET.to_owned()));
    Ok(configuration)
}

/// The configuration with its references replaced by the secrets they name, read back
/// from the manager: what an update is validated against, as without a manager (a kept
/// secret is checked as the value it is, not as its mask). It never leaves this process.
pub async fn with_secrets(state: &AppState, configuration: &Value) -> ApiResult<Value> {
    let mut resolved = configuration.clone();
    references::resolve(&mut resolved, state.secrets_manager.as_deref())
        .await
        .map_err(manager_error)?;
    Ok(resolved)
}

/// A configuration a user sent may not hold references: one naming another workspace's
/// secret would hand it to their connector.
pub fn refuse_references(configuration: &Value) -> ApiResult<()> {
    match references::first_reference(configuration) {
        Some(field) => Err(ApiError::field(
            field,
            format!(
                "'{}' is a reference to a stored secret, which only Ferry writes: give the secret's value",
                references::SECRET_KEY
            ),
        )),
        None => Ok(()),
    }
}

/// A configuration made ready for the store, and the coordinates written for it.
pub struct Sealed {
    pub text: String,
    pub written: Vec<String>,
}

/// Makes `configuration` ready for the store: encrypted whole without a manager; with one,
/// its secret values written to the manager and replaced by references (references already
/// there, kept from the stored configuration by a mask, stay).
pub async fn seal(
    state: &AppState,
    workspace_id: Uuid,
    mut configuration: Value,
    spec: Option<&Value>,
) -> ApiResult<Sealed> {
    let Some(manager) = state.secrets_manager.as_deref() else {
        return Ok(Sealed {
            text: state.secrets.encrypt(&configuration)?,
            written: Vec::new(),
        });
    };
    let mut written = Vec::new();
    for pointer in fields::secret_pointers(&configuration, spec) {
        let Some(slot) = configuration.pointer_mut(&pointer) else {
            continue;
        };
        let coordinate = references::new_coordinate(workspace_id);
        let (reference, text) = references::reference(&coordinate, slot);
        if let Err(error) = manager.write(&coordinate, &text).await {
            forget(state, written).await;
            return Err(manager_error(error));
        }
        written.push(coordinate);
        *slot = reference;
    }
    let text = serde_json::to_string(&configuration)
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(Sealed { text, written })
}

/// Deletes secrets from the manager, for good; a failure is logged (the secret stays
/// behind, unreferenced), never an error of the call that made it unneeded.
pub async fn forget(state: &AppState, coordinates: Vec<String>) {
    let Some(manager) = state.secrets_manager.as_deref() else {
        return;
    };
    for coordinate in coordinates {
        if let Err(error) = manager.delete(&coordinate).await {
            tracing::warn!(%coordinate, %error, "could not delete a secret no longer used from the secrets manager");
        }
    }
}

/// The coordinates of `workspace_id`'s secrets a configuration refers to: those its
/// deletion may delete. A reference to anything else (stored before references were
/// refused) names a secret this configuration does not own.
pub fn owned(configuration: &Value, workspace_id: Uuid) -> Vec<String> {
    references::coordinates(configuration)
        .into_iter()
        .filter(|coordinate| references::coordinate_workspace(coordinate) == Some(workspace_id))
        .collect()
}

/// The coordinates of `workspace_id`'s secrets `before` refers to and `after` does not.
pub fn dropped(before: &Value, after: &Value, workspace_id: Uuid) -> Vec<String> {
    let kept = references::coordinates(after);
    owned(before, workspace_id)
        .into_iter()
        .filter(|coordinate| !kept.contains(coordinate))
        .collect()
}

/// On a start with a secrets manager: moves the secrets of every live source and
/// destination still stored inline (encrypted) into the manager. Idempotent: a start
/// interrupted half-way finishes the rest the next time. Without a manager, a start over
/// configurations that refer to one is refused, since no data plane could read them.
/// Returns how many configurations moved.
pub async fn migrate(state: &AppState) -> ApiResult<usize> {
    let mut moved = 0;
    for kind in [ConnectorRole::Source, ConnectorRole::Destination] {
        let mut offset = 0;
        loop {
            let page = state
                .store
                .actors(
                    kind,
                    &ScopedQuery {
                        workspace_ids: None,
                        include_deleted: false,
                        limit: MIGRATION_PAGE,
                        offset,
                    },
                )
                .await?;
            let count = i64::try_from(page.len()).unwrap_or(MIGRATION_PAGE);
            for actor in page {
                if migrate_actor(state, &actor).await? {
                    moved += 1;
                }
            }
            if count < MIGRATION_PAGE {
                break;
            }
            offset += MIGRATION_PAGE;
        }
    }
    Ok(moved)
}

async fn migrate_actor(state: &AppState, actor: &Actor) -> ApiResult<bool> {
    if state.secrets_manager.is_none() {
        // Only a manager's sealing stores plain JSON: an encrypted configuration holds its
        // secrets, and is not even decrypted here.
        if SecretCipher::is_encrypted(&actor.configuration) {
            return Ok(false);
        }
        let configuration = stored(state, &actor.configuration)?;
        return match references::coordinates(&configuration).first() {
            Some(coordinate) => Err(ApiError::Internal(format!(
                "the {} {} keeps its secrets in a secrets manager ({coordinate}): start with the secrets manager configured",
                actor.kind.as_str(),
                actor.id
            ))),
            None => Ok(false),
        };
    }
    let configuration = stored(state, &actor.configuration)?;
    let spec = crate::services::definitions::secret_spec(state, actor).await?;
    let already = !SecretCipher::is_encrypted(&actor.configuration)
        && fields::secret_pointers(&configuration, spec.as_ref()).is_empty();
    if already {
        return Ok(false);
    }
    let sealed = seal(state, actor.workspace_id, configuration, spec.as_ref()).await?;
    if let Err(error) = state
        .store
        .update_actor(actor.kind, actor.id, None, Some(&sealed.text))
        .await
    {
        forget(state, sealed.written).await;
        return Err(error.into());
    }
    tracing::info!(kind = actor.kind.as_str(), id = %actor.id, secrets = sealed.written.len(), "moved a configuration's secrets into the secrets manager");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_values_are_found_by_the_spec_and_references_are_not_secrets() {
        let spec = json!({
            "type": "object",
            "properties": {
                "host": {"type": "string"},
                "password": {"type": "string", "airbyte_secret": true},
                "tunnel": {"oneOf": [{"properties": {"key": {"type": "string", "airbyte_secret": true}}}]},
                "tokens": {"type": "array", "items": {"type": "string", "airbyte_secret": true}},
            }
        });
        let configuration = json!({
            "host": "db.internal",
            "password": "hunter2",
            "tunnel": {"key": {"_secret": "airbyte_workspace_w_secret_s_v1"}},
            "tokens": ["a", 7],
        });
        assert_eq!(
            fields::secret_pointers(&configuration, Some(&spec)),
            vec!["/password", "/tokens/0", "/tokens/1"]
        );
        let workspace = Uuid::new_v4();
        let [one, two, three] = [(); 3].map(|()| references::new_coordinate(workspace));
        let others = references::new_coordinate(Uuid::new_v4());
        let before = json!({"password": {"_secret": one}, "key": {"_secret": two}, "cert": {"_secret": others}});
        let after = json!({"password": {"_secret": one}, "key": {"_secret": three}, "cert": "pem"});
        // Another workspace's secret, planted, is never deleted by this one's update.
        assert_eq!(dropped(&before, &after, workspace), vec![two.clone()]);
        let mut owned_before = owned(&before, workspace);
        owned_before.sort();
        let mut expected = vec![one.clone(), two.clone()];
        expected.sort();
        assert_eq!(owned_before, expected);
        assert!(refuse_references(&json!({"a": [{"b": {"_secret": "x"}}]})).is_err());
        assert!(refuse_references(&json!({"a": [{"b": "x"}]})).is_ok());
        let own = references::new_coordinate(workspace);
        let other = references::new_coordinate(Uuid::new_v4());
        let mine = json!({"password": {"_secret": own}, "port": 5432});
        assert!(foreign_references(&mine, workspace).is_empty());
        for foreign in [other.as_str(), "prod-db-password"] {
            let mut planted =
                json!({"password": {"_secret": own}, "tunnel": [{"key": {"_secret": foreign}}]});
            let found = foreign_references(&planted, workspace);
            assert_eq!(found, vec![foreign.to_owned()]);
            blank_references(&mut planted, &found);
            assert_eq!(
                planted,
                json!({"password": {"_secret": own}, "tunnel": [{"key": null}]})
            );
        }
    }
}
