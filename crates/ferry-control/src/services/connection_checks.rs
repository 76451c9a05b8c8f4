//! What a connection's stream configurations must satisfy before they are saved, checked
//! against a discover of the source in its region (not minutes into a job): each named
//! stream exists (in the namespace named) and is named once, with modes it supports and a
//! cursor and primary key that are fields of its schema (`catalog::configure`); and no two
//! streams land in the same table of the destination (its naming rules, from the registry).

use ferry_api::{ConnectorRole, DestinationNaming, StreamConfigurations};
use ferry_connectors::registry;
use ferry_protocol::catalog::{self, AirbyteCatalog, ConfiguredCatalog, ConfiguredStream};
use ferry_store::Actor;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::services::connector_tasks;

/// Checks `configurations` of a connection from `source` to `destination` placed by
/// `naming`: 400 naming the field at fault, 409 for two streams that would share a table.
/// A connection that names no streams syncs all of them with the source's defaults and
/// needs no discover.
pub async fn check(
    state: &AppState,
    source: &Actor,
    destination: &Actor,
    configurations: &StreamConfigurations,
    naming: &DestinationNaming,
) -> ApiResult<()> {
    if configurations.streams.is_empty() {
        return Ok(());
    }
    let discovered = connector_tasks::discover(state, source).await?;
    let discovered: AirbyteCatalog = serde_json::from_value(discovered).map_err(|error| {
        ApiError::unprocessable_field(
            "sourceId",
            format!("discover returned an unreadable catalog: {error}"),
        )
    })?;
    let wanted = serde_json::to_value(configurations)
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let catalog = catalog::configure(&discovered, &wanted)
        .map_err(|error| ApiError::field(error.field, error.message))?;
    let configuration = crate::secrets::managed::without_secrets(state, destination)?;
    distinct_tables(
        &destination.connector_type,
        &configuration,
        naming,
        &catalog,
    )
}

/// 409 when two streams of `catalog` would be written into one table (or file) of a
/// destination of type `connector_type`; destinations without naming rules in the registry
/// (custom ones) are not checked.
fn distinct_tables(
    connector_type: &str,
    configuration: &serde_json::Value,
    naming: &DestinationNaming,
    catalog: &ConfiguredCatalog,
) -> ApiResult<()> {
    let Some(table_name) = registry::native(ConnectorRole::Destination, connector_type)
        .and_then(|registration| registration.table_name)
    else {
        return Ok(());
    };
    let mut placed: Vec<(String, &ConfiguredStream)> = Vec::new();
    for configured in &catalog.streams {
        // A configuration the destination cannot read was refused when it was saved; should
        // one be stored anyway, its sync reports it.
        let Ok(table) = table_name(configuration, naming, &configured.stream.descriptor()) else {
            return Ok(());
        };
        if let Some((_, earlier)) = placed.iter().find(|(other, _)| *other == table) {
            return Err(ApiError::Conflict(format!(
                "streams {} and {} would both be written to {table} of the destination; \
                 sync them in separate connections or place them apart (namespaceDefinition, \
                 namespaceFormat, prefix)",
                label(earlier),
                label(configured)
            )));
        }
        placed.push((table, configured));
    }
    Ok(())
}

/// `'name'`, or `'name' (namespace 'ns')`.
fn label(configured: &ConfiguredStream) -> String {
    let stream = &configured.stream;
    match &stream.namespace {
        Some(namespace) => format!("'{}' (namespace '{namespace}')", stream.name),
        None => format!("'{}'", stream.name),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::{Value, json};

    use super::*;

    fn catalog(streams: &[(&str, Option<&str>)]) -> ConfiguredCatalog {
        let discovered: AirbyteCatalog = serde_json::from_value(json!({"streams": streams
            .iter()
            .map(|(name, namespace)| json!({"name": name, "namespace": namespace,
                "json_schema": {}, "supported_sync_modes": ["full_refresh"]}))
            .collect::<Vec<Value>>()}))
        .unwrap();
        catalog::configure(&discovered, &json!({"streams": []})).unwrap()
    }

    fn conflict(result: ApiResult<()>) -> String {
        match result {
            Err(ApiError::Conflict(message)) => message,
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn streams_that_share_a_table_are_refused() {
        let files = json!({"destination_path": "/local/out"});
        let naming = DestinationNaming::default();
        let message = conflict(distinct_tables(
            "local-json",
            &files,
            &naming,
            &catalog(&[("a.b", None), ("c", None), ("a_b", None)]),
        ));
        assert!(
            message.contains("'a.b' and 'a_b'")
                && message.contains("/local/out/_airbyte_raw_a_b.jsonl"),
            "{message}"
        );
        // Two source namespaces into the destination's one schema.
        let postgres = json!({"host": "h", "database": "d", "username": "u", "schema": "raw"});
        let two_schemas = catalog(&[("orders", Some("eu")), ("orders", Some("us"))]);
        let message = conflict(distinct_tables(
            "postgres",
            &postgres,
            &naming,
            &two_schemas,
        ));
        assert!(
            message.contains("'orders' (namespace 'eu') and 'orders' (namespace 'us')")
                && message.contains("\"raw\".\"orders\""),
            "{message}"
        );
        // Kept in their own schemas, they are apart.
        let by_source = DestinationNaming {
            namespace_definition: "source".to_owned(),
            ..DestinationNaming::default()
        };
        distinct_tables("postgres", &postgres, &by_source, &two_schemas).unwrap();
        // Long names that differ only past PostgreSQL's 63 bytes stay apart (hashed).
        let prefix = DestinationNaming {
            prefix: Some("p".repeat(70)),
            ..DestinationNaming::default()
        };
        distinct_tables(
            "postgres",
            &postgres,
            &prefix,
            &catalog(&[("customers", None), ("orders", None), ("items", None)]),
        )
        .unwrap();
        // Destinations without naming rules are not checked.
        distinct_tables("dev-null", &json!({}), &naming, &two_schemas).unwrap();
        distinct_tables("custom", &json!({}), &naming, &two_schemas).unwrap();
    }
}
