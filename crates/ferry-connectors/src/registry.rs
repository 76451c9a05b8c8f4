//! Every native connector, one row each: what the control plane needs to name, describe and
//! check it (definition id, SPEC, validation) and, in the runtime build, how the data plane
//! makes it. Adding a connector is one folder and one row here.

use ferry_protocol::catalog::DestinationNaming;
use ferry_protocol::{ConnectorRole, StreamDescriptor};
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
    /// A destination's naming rules, where it has them: where a stream lands.
    pub table_name: Option<TableName>,
    #[cfg(feature = "runtime")]
    pub build: crate::connector::Build,
}

/// Where a destination with this `configuration` puts the source's `stream` (its name and
/// namespace in the source) under the connection's `naming`: the name of its table (or
/// file), as the destination makes it. Two streams given the same name would be written
/// into one table, so the control plane refuses a connection where they are.
pub type TableName = fn(
    configuration: &Value,
    naming: &DestinationNaming,
    stream: &StreamDescriptor,
) -> Result<String, ConfigError>;

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
        table_name: None,
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
        table_name: None,
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
        table_name: Some(postgres::naming::qualified_table_name),
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
        table_name: None,
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
        table_name: Some(local_file::json_lines_file_name),
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
        table_name: Some(local_file::csv_file_name),
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
        table_name: None,
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
                "ssl_mode.ca_certificate",
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
        // Local files stay under the data plane's local root.
        for outside in ["/etc/passwd", "../x", "/local/../x", "file:///etc/passwd"] {
            let file = json!({"dataset_name": "d", "url": outside});
            assert_eq!(field_at_fault(Source, "file", file), "url", "{outside}");
            let directory = json!({"destination_path": outside});
            assert_eq!(
                field_at_fault(Destination, "local-json", directory),
                "destination_path",
                "{outside}"
            );
        }
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

    #[test]
    fn airbyte_replication_and_tunnel_methods_are_read_and_unsupported_ones_refused() {
        use ConnectorRole::{Destination, Source};
        let with = |extra: Value| {
            let mut configuration = json!({"host": "h", "database": "d", "username": "u"});
            for (key, value) in extra.as_object().unwrap() {
                configuration[key] = value.clone();
            }
            configuration
        };
        let postgres = |role| native(role, "postgres").unwrap();
        for accepted in [
            json!({"replication_method": {"method": "Standard"}}),
            json!({"tunnel_method": {"tunnel_method": "NO_TUNNEL"}}),
            json!({"replication_method": {"method": "Standard"}, "tunnel_method": {"tunnel_method": "NO_TUNNEL"}}),
        ] {
            postgres(Source)
                .validate(&with(accepted.clone()))
                .unwrap_or_else(|error| panic!("{accepted}: {error}"));
        }
        let parsed = (postgres(Source).parse)(&with(json!({}))).unwrap();
        assert_eq!(parsed["replication_method"], json!({"method": "Standard"}));
        for (refused, field, says) in [
            (
                json!({"replication_method": {"method": "CDC", "replication_slot": "s", "publication": "p", "plugin": "pgoutput"}}),
                "replication_method.method",
                "CDC is not supported by Ferry's native source-postgres; use Standard (cursor-based) replication",
            ),
            (
                json!({"replication_method": {"method": "Xmin"}}),
                "replication_method.method",
                "Xmin is not supported",
            ),
            (
                json!({"replication_method": {"method": "Sometimes"}}),
                "replication_method.method",
                "unknown variant",
            ),
            (
                json!({"tunnel_method": {"tunnel_method": "SSH_KEY_AUTH", "tunnel_host": "bastion", "tunnel_port": 22, "tunnel_user": "me", "ssh_key": "-----BEGIN"}}),
                "tunnel_method.tunnel_method",
                "SSH_KEY_AUTH: SSH tunnels are not supported",
            ),
            (
                json!({"tunnel_method": {"tunnel_method": "SSH_PASSWORD_AUTH", "tunnel_host": "bastion", "tunnel_port": 22, "tunnel_user": "me", "tunnel_user_password": "pw"}}),
                "tunnel_method.tunnel_method",
                "SSH_PASSWORD_AUTH: SSH tunnels are not supported",
            ),
        ] {
            let error = postgres(Source)
                .validate(&with(refused.clone()))
                .unwrap_err();
            assert_eq!(error.field, field, "{refused}: {error}");
            assert!(error.message.contains(says), "{refused}: {error}");
        }
        // Destinations take Airbyte's tunnel too, and have no replication method.
        let error = postgres(Destination)
            .validate(&with(
                json!({"tunnel_method": {"tunnel_method": "SSH_KEY_AUTH"}}),
            ))
            .unwrap_err();
        assert_eq!(error.field, "tunnel_method.tunnel_method");
        // The SPEC offers Airbyte's choices, secrets marked.
        let spec = (postgres(Source).spec)();
        let tunnel = serde_json::to_string(&spec["properties"]["tunnel_method"]).unwrap();
        for choice in ["NO_TUNNEL", "SSH_KEY_AUTH", "SSH_PASSWORD_AUTH"] {
            assert!(tunnel.contains(choice), "{tunnel}");
        }
        assert!(tunnel.contains("\"airbyte_secret\":true"), "{tunnel}");
        let replication = serde_json::to_string(&spec["properties"]["replication_method"]).unwrap();
        for choice in ["Standard", "Xmin", "CDC"] {
            assert!(replication.contains(choice), "{replication}");
        }
        let destination = (postgres(Destination).spec)();
        assert!(
            destination["properties"]
                .get("replication_method")
                .is_none()
        );
        assert!(destination["properties"].get("tunnel_method").is_some());
    }

    #[test]
    fn destinations_with_naming_rules_say_where_streams_land() {
        let stream = StreamDescriptor {
            name: "orders".to_owned(),
            namespace: Some("public".to_owned()),
        };
        let named = |connector_type: &str, configuration: Value| {
            let hook = native(ConnectorRole::Destination, connector_type)
                .unwrap()
                .table_name
                .unwrap();
            hook(&configuration, &DestinationNaming::default(), &stream).unwrap()
        };
        assert_eq!(
            named(
                "postgres",
                json!({"host": "h", "database": "d", "username": "u", "schema": "raw"})
            ),
            "\"raw\".\"orders\""
        );
        assert_eq!(
            named("local-json", json!({"destination_path": "/local/out"})),
            "/local/out/_airbyte_raw_orders.jsonl"
        );
        assert_eq!(
            named("csv", json!({"destination_path": "out"})),
            "out/_airbyte_raw_orders.csv"
        );
        for registration in CONNECTORS {
            if registration.role == ConnectorRole::Source {
                assert!(registration.table_name.is_none());
            }
        }
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
