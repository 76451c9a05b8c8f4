//! The connector definitions every Ferry knows (built-in connectors), with Airbyte's
//! definition ids so that configurations written for Airbyte name the same connectors.

use uuid::{Uuid, uuid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorRole {
    Source,
    Destination,
}

#[derive(Debug, Clone, Copy)]
pub struct BuiltinDefinition {
    pub role: ConnectorRole,
    /// `sourceType` / `destinationType` value.
    pub connector_type: &'static str,
    pub name: &'static str,
    pub definition_id: Uuid,
}

pub const BUILTIN_DEFINITIONS: &[BuiltinDefinition] = &[
    BuiltinDefinition {
        role: ConnectorRole::Source,
        connector_type: "faker",
        name: "Sample Data (Faker)",
        definition_id: uuid!("dfd88b22-b603-4c3d-aad7-3701784586b1"),
    },
    BuiltinDefinition {
        role: ConnectorRole::Source,
        connector_type: "postgres",
        name: "Postgres",
        definition_id: uuid!("decd338e-5647-4c0b-adf4-da0e75f5a750"),
    },
    BuiltinDefinition {
        role: ConnectorRole::Destination,
        connector_type: "postgres",
        name: "Postgres",
        definition_id: uuid!("25c5221d-dce2-4163-ade9-739ef790f503"),
    },
    BuiltinDefinition {
        role: ConnectorRole::Source,
        connector_type: "file",
        name: "File (CSV, JSON, Excel, Feather, Parquet)",
        definition_id: uuid!("778daa7c-feaf-4db6-96f3-70fd645acc77"),
    },
    BuiltinDefinition {
        role: ConnectorRole::Destination,
        connector_type: "local-json",
        name: "Local JSON",
        definition_id: uuid!("a625d593-bba5-4a1c-a53d-2d246268a816"),
    },
    BuiltinDefinition {
        role: ConnectorRole::Destination,
        connector_type: "csv",
        name: "Local CSV",
        definition_id: uuid!("8be1cf83-fde1-477f-a4ad-318d23c9f3c6"),
    },
    BuiltinDefinition {
        role: ConnectorRole::Destination,
        connector_type: "dev-null",
        name: "End-to-End Testing (/dev/null)",
        definition_id: uuid!("a7bcc9d8-13b3-4e49-b80d-d020b90045e3"),
    },
];

/// The built-in definition of that role named by type or by id.
pub fn find_definition(
    role: ConnectorRole,
    connector_type: Option<&str>,
    definition_id: Option<Uuid>,
) -> Option<&'static BuiltinDefinition> {
    BUILTIN_DEFINITIONS.iter().find(|definition| {
        definition.role == role
            && connector_type.is_none_or(|kind| definition.connector_type == kind)
            && definition_id.is_none_or(|id| definition.definition_id == id)
    })
}
