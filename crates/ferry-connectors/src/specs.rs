//! The SPEC of each native connector: its configuration's JSON schema, with Airbyte's keys.

use serde_json::{Value, json};

fn postgres_connection(extra: Value) -> Value {
    let mut properties = json!({
        "host": {"type": "string", "title": "Host", "order": 0},
        "port": {"type": "integer", "title": "Port", "minimum": 1, "maximum": 65535, "default": 5432, "order": 1},
        "database": {"type": "string", "title": "Database Name", "order": 2},
        "username": {"type": "string", "title": "Username", "order": 4},
        "password": {"type": "string", "title": "Password", "airbyte_secret": true, "order": 5},
        "jdbc_url_params": {"type": "string", "title": "JDBC URL Parameters (ignored by Ferry)", "order": 6},
        "ssl_mode": {
            "type": "object", "title": "SSL Modes", "order": 7,
            "description": "Ferry connects without TLS: disable, allow and prefer are accepted.",
            "properties": {"mode": {"type": "string", "enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]}}
        }
    });
    if let (Some(properties), Some(extra)) = (properties.as_object_mut(), extra.as_object()) {
        properties.extend(extra.clone());
    }
    properties
}

/// The `connectionSpecification` of a native connector, by role and type.
pub fn specification(role: &str, connector_type: &str) -> Option<Value> {
    let (title, required, properties) = match (role, connector_type) {
        ("source", "faker") => (
            "Faker Source Spec",
            json!([]),
            json!({
                "count": {"type": "integer", "title": "Count", "minimum": 0, "default": 1000},
                "seed": {"type": "integer", "title": "Seed", "default": -1},
                "records_per_slice": {"type": "integer", "title": "Records Per Stream Slice", "minimum": 1, "default": 1000},
                "slice_delay_ms": {"type": "integer", "title": "Pause after each slice (ms, Ferry)", "minimum": 0, "default": 0}
            }),
        ),
        ("source", "postgres") => (
            "Postgres Source Spec",
            json!(["host", "port", "database", "username"]),
            postgres_connection(json!({
                "schemas": {"type": "array", "title": "Schemas", "items": {"type": "string"}, "minItems": 1, "default": ["public"], "order": 3}
            })),
        ),
        ("destination", "postgres") => (
            "Postgres Destination Spec",
            json!(["host", "port", "database", "username", "schema"]),
            postgres_connection(json!({
                "schema": {"type": "string", "title": "Default Schema", "default": "public", "order": 3}
            })),
        ),
        ("destination", "dev-null") => ("E2E Test Destination Spec", json!([]), json!({})),
        ("source", "file") => (
            "File Source Spec",
            json!(["dataset_name", "format", "url", "provider"]),
            json!({
                "dataset_name": {"type": "string", "title": "Dataset Name"},
                "format": {"type": "string", "title": "File Format", "enum": ["csv", "jsonl", "json"], "default": "csv"},
                "reader_options": {"type": "string", "title": "Reader Options", "description": "JSON; Ferry reads `sep`."},
                "url": {"type": "string", "title": "URL", "description": "A local path (or file:// URL) on the data plane's machine."},
                "provider": {"type": "object", "title": "Storage Provider", "properties": {"storage": {"type": "string", "enum": ["local"]}}}
            }),
        ),
        ("destination", "local-json") | ("destination", "csv") => (
            "Local File Destination Spec",
            json!(["destination_path"]),
            json!({
                "destination_path": {"type": "string", "title": "Destination Path", "description": "A directory on the data plane's machine; each stream goes to _airbyte_raw_<stream>.*"}
            }),
        ),
        _ => return None,
    };
    Some(json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": title,
        "type": "object",
        "required": required,
        "additionalProperties": true,
        "properties": properties
    }))
}
