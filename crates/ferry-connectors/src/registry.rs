//! Every native connector, one row each: what the control plane needs to name, describe and
//! check it (definition id, SPEC, validation) and, in the runtime build, how the data plane
//! makes it. Adding a connector is one folder and one row here.

use ferry_protocol::ConnectorRole;
use serde::Serialize;
use serde_json::Value;
use uuid::{Uuid, uuid};

use crate::config::{self, ConfigError, ConnectorConfig};
use crate::{dev_null, faker, file, local_file, postgres};

/// One native connector.
pub struct Registration {
    pub role: ConnectorRole,
    /// `sourceType` / `destinationType` value.
    pub connector_type: &'static str,
    /// Airbyte's definition id of the connector of the same name, so that configurations
    /// written for Airbyte name the same connectors.
    pub definition_id: Uuid,
    pub display_name: &'static str,
    /// The SPEC's `connectionSpecification`, generated from the configuration struct.
    pub spec: fn() -> Value,
    /// Parses a configuration (shape only: nothing is contacted) and gives it back as the
    /// struct reads it, defaults filled in.
    pub parse: fn(&Value) -> Result<Value, ConfigError>,
    #[cfg(feature = "runtime")]
    pub build: crate::connector::Build,
}

impl Registration {
    pub fn validate(&self, configuration: &Value) -> Result<(), ConfigError> {
        (self.parse)(configuration).map(drop)
    }
}

/// A configuration as `T` reads it.
fn parsed<T: ConnectorConfig + Serialize>(configuration: &Value) -> Result<Value, ConfigError> {
    let parsed: T = config::parse(configuration)?;
    serde_json::to_value(parsed).map_err(|error| ConfigError::new("", error.to_string()))
}

#[cfg(feature = "runtime")]
use crate::connector::Build;

pub const CONNECTORS: &[Registration] = &[
    Registration {
        role: ConnectorRole::Source,
        connector_type: "faker",
        definition_id: uuid!("dfd88b22-b603-4c3d-aad7-3701784586b1"),
        display_name: "Sample Data (Faker)",
        spec: config::specification::<faker::FakerConfig>,
        parse: parsed::<faker::FakerConfig>,
        #[cfg(feature = "runtime")]
        build: Build::Source(faker::FakerSource::build),
    },
    Registration {
        role: ConnectorRole::Source,
        connector_type: "postgres",
        definition_id: uuid!("decd338e-5647-4c0b-adf4-da0e75f5a750"),
        display_name: "Postgres",
        spec: config::specification::<postgres::PostgresSourceConfig>,
        parse: parsed::<postgres::PostgresSourceConfig>,
        #[cfg(feature = "runtime")]
        build: Build::Source(postgres::PostgresSource::build),
    },
    Registration {
        role: ConnectorRole::Destination,
        connector_type: "postgres",
        definition_id: uuid!("25c5221d-dce2-4163-ade9-739ef790f503"),
        display_name: "Postgres",
        spec: config::specification::<postgres::PostgresDestinationConfig>,
        parse: parsed::<postgres::PostgresDestinationConfig>,
        #[cfg(feature = "runtime")]
        build: Build::Destination(postgres::PostgresDestination::build),
    },
    Registration {
        role: ConnectorRole::Source,
        connector_type: "file",
        definition_id: uuid!("778daa7c-feaf-4db6-96f3-70fd645acc77"),
        display_name: "File (CSV, JSON, Excel, Feather, Parquet)",
        spec: config::specification::<file::FileSourceConfig>,
        parse: parsed::<file::FileSourceConfig>,
        #[cfg(feature = "runtime")]
        build: Build::Source(file::FileSource::build),
    },
    Registration {
        role: ConnectorRole::Destination,
        connector_type: "local-json",
        definition_id: uuid!("a625d593-bba5-4a1c-a53d-2d246268a816"),
        display_name: "Local JSON",
        spec: config::specification::<local_file::LocalFileConfig>,
        parse: parsed::<local_file::LocalFileConfig>,
        #[cfg(feature = "runtime")]
        build: Build::Destination(local_file::LocalFileDestination::build_json_lines),
    },
    Registration {
        role: ConnectorRole::Destination,
        connector_type: "csv",
        definition_id: uuid!("8be1cf83-fde1-477f-a4ad-318d23c9f3c6"),
        display_name: "Local CSV",
        spec: config::specification::<local_file::LocalFileConfig>,
        parse: parsed::<local_file::LocalFileConfig>,
        #[cfg(feature = "runtime")]
        build: Build::Destination(local_file::LocalFileDestination::build_csv),
    },
    Registration {
        role: ConnectorRole::Destination,
        connector_type: "dev-null",
        definition_id: uuid!("a7bcc9d8-13b3-4e49-b80d-d020b90045e3"),
        display_name: "End-to-End Testing (/dev/null)",
        spec: config::specification::<dev_null::DevNullConfig>,
        parse: parsed::<dev_null::DevNullConfig>,
        #[cfg(feature = "runtime")]
        build: Build::Destination(dev_null::DevNullWriter::build),
    },
];

/// The native connector of `role` named by type and/or definition id.
pub fn find(
    role: ConnectorRole,
    connector_type: Option<&str>,
    definition_id: Option<Uuid>,
) -> Option<&'static Registration> {
    CONNECTORS.iter().find(|registration| {
        registration.role == role
            && connector_type.is_none_or(|kind| registration.connector_type == kind)
            && definition_id.is_none_or(|id| registration.definition_id == id)
    })
}

/// The native connector of `role` and type `connector_type`.
pub fn native(role: ConnectorRole, connector_type: &str) -> Option<&'static Registration> {
    find(role, Some(connector_type), None)
}

/// The native connectors' type names of `role`, for help texts and errors.
pub fn type_names(role: ConnectorRole) -> Vec<&'static str> {
    CONNECTORS
        .iter()
        .filter(|registration| registration.role == role)
        .map(|registration| registration.connector_type)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::{Map, json};

    use super::*;

    /// The least configuration a SPEC allows: each required key with its default, its first
    /// choice, or a value of its type.
    fn least_configuration(schema: &Value) -> Value {
        if let Some(default) = schema.get("default") {
            return default.clone();
        }
        if let Some(first) = schema["enum"].get(0) {
            return first.clone();
        }
        match schema["type"].as_str() {
            Some("string") => json!("x"),
            Some("integer") | Some("number") => json!(1),
            Some("boolean") => json!(false),
            Some("array") => json!([least_configuration(&schema["items"])]),
            _ => {
                let mut object = Map::new();
                for key in schema["required"].as_array().into_iter().flatten() {
                    let key = key.as_str().unwrap();
                    object.insert(
                        key.to_owned(),
                        least_configuration(&schema["properties"][key]),
                    );
                }
                Value::Object(object)
            }
        }
    }

    #[test]
    fn every_spec_lists_exactly_its_config_structs_fields() {
        for registration in CONNECTORS {
            let name = format!("{} {}", registration.role, registration.connector_type);
            let spec = (registration.spec)();
            assert_eq!(spec["type"], "object", "{name}");
            assert_eq!(
                spec["$schema"], "http://json-schema.org/draft-07/schema#",
                "{name}"
            );
            let configuration = least_configuration(&spec);
            let parsed = (registration.parse)(&configuration)
                .unwrap_or_else(|error| panic!("{name}: {configuration}: {error}"));
            let mut read: Vec<String> = parsed.as_object().unwrap().keys().cloned().collect();
            let mut listed = config::spec_properties(&spec);
            read.sort();
            listed.sort();
            assert_eq!(read, listed, "{name}");
            for (key, property) in spec["properties"].as_object().unwrap() {
                assert!(
                    property.get("title").is_some(),
                    "{name}: {key} has no title"
                );
                assert!(
                    property.get("description").is_some(),
                    "{name}: {key} has no description"
                );
            }
        }
    }

    #[test]
    fn rows_are_unique_and_secrets_are_marked() {
        for (index, registration) in CONNECTORS.iter().enumerate() {
            for other in &CONNECTORS[index + 1..] {
                assert!(
                    registration.definition_id != other.definition_id
                        && (registration.role, registration.connector_type)
                            != (other.role, other.connector_type)
                );
            }
        }
        let spec = (native(ConnectorRole::Source, "postgres").unwrap().spec)();
        assert_eq!(spec["properties"]["password"]["airbyte_secret"], true);
        assert_eq!(spec["properties"]["port"]["default"], 5432);
        assert!(
            spec["required"]
                .as_array()
                .unwrap()
                .contains(&json!("host"))
        );
    }

    fn field_at_fault(role: ConnectorRole, connector_type: &str, configuration: Value) -> String {
        native(role, connector_type)
            .unwrap()
            .validate(&configuration)
            .unwrap_err()
            .field
    }

    #[test]
    fn configurations_name_the_field_at_fault() {
        use ConnectorRole::{Destination, Source};
        let good = json!({"host": "localhost", "port": 5432, "database": "d", "username": "u"});
        for role in [Source, Destination] {
            native(role, "postgres").unwrap().validate(&good).unwrap();
        }
        for (bad, field) in [
            (
                json!({"port": 5432, "database": "d", "username": "u"}),
                "host",
            ),
            (
                json!({"host": "h", "port": 70000, "database": "d", "username": "u"}),
                "port",
            ),
            (
                json!({"host": "h", "port": "eighty", "database": "d", "username": "u"}),
                "port",
            ),
            (
                json!({"host": "h", "database": 3, "username": "u"}),
                "database",
            ),
            (
                json!({"host": " ", "database": "d", "username": "u"}),
                "host",
            ),
            (
                json!({"host": "h", "database": "d", "username": "u", "ssl_mode": {"mode": "verify-full"}}),
                "ssl_mode.mode",
            ),
            (
                json!({"host": "h", "database": "d", "username": "u", "ssl_mode": {"mode": "sometimes"}}),
                "ssl_mode.mode",
            ),
            (
                json!({"host": "h", "database": "d", "username": "u", "schemas": "public"}),
                "schemas",
            ),
            (
                json!({"host": "h", "database": "d", "username": "u", "schemas": []}),
                "schemas",
            ),
        ] {
            assert_eq!(
                field_at_fault(Source, "postgres", bad.clone()),
                field,
                "{bad}"
            );
        }
        // A string port and a bare ssl mode are taken, as Airbyte's clients send them.
        native(Source, "postgres")
            .unwrap()
            .validate(&json!({"host": "h", "port": "5433", "database": "d", "username": "u", "ssl_mode": "prefer"}))
            .unwrap();
        assert_eq!(
            field_at_fault(Source, "faker", json!({"count": -1})),
            "count"
        );
        assert_eq!(
            field_at_fault(Source, "faker", json!({"records_per_slice": 0})),
            "records_per_slice"
        );
        assert_eq!(
            field_at_fault(Source, "file", json!({"format": "csv", "url": "x.csv"})),
            "dataset_name"
        );
        assert_eq!(
            field_at_fault(
                Source,
                "file",
                json!({"dataset_name": "d", "format": "parquet", "url": "x"})
            ),
            "format"
        );
        assert_eq!(
            field_at_fault(
                Source,
                "file",
                json!({"dataset_name": "d", "url": "s3://b/x", "provider": {"storage": "S3"}})
            ),
            "provider.storage"
        );
        assert_eq!(
            field_at_fault(
                Source,
                "file",
                json!({"dataset_name": "d", "url": "x", "reader_options": "{nope"})
            ),
            "reader_options"
        );
        assert_eq!(
            field_at_fault(Destination, "csv", json!({})),
            "destination_path"
        );
        assert_eq!(
            field_at_fault(
                Destination,
                "postgres",
                json!({"host": "h", "database": "d"})
            ),
            "username"
        );
        assert_eq!(field_at_fault(Destination, "dev-null", json!([])), "");
    }

    #[cfg(feature = "runtime")]
    #[test]
    fn each_row_builds_a_connector_of_its_role() {
        for registration in CONNECTORS {
            let built_role = match registration.build {
                Build::Source(_) => ConnectorRole::Source,
                Build::Destination(_) => ConnectorRole::Destination,
            };
            assert_eq!(
                built_role, registration.role,
                "{}",
                registration.connector_type
            );
        }
    }
}
