//! The configurations of Ferry's native connectors, with Airbyte's keys: parsed into typed
//! settings, and their SPECs. Apart from the connectors so that the control plane can refuse
//! a bad configuration at once, naming the field, without linking any connector code.

use std::path::PathBuf;

use serde_json::{Value, json};

/// A configuration key at fault (a dotted path below `configuration`), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Checks the configuration of a native connector (`role`: `source` or `destination`);
/// other connector types are not Ferry's to check.
pub fn validate(
    role: &str,
    connector_type: &str,
    configuration: &Value,
) -> Result<(), ConfigError> {
    match (role, connector_type) {
        ("source", "faker") => FakerConfig::parse(configuration).map(drop),
        ("source", "postgres") => PostgresSourceConfig::parse(configuration).map(drop),
        ("source", "file") => FileSourceConfig::parse(configuration).map(drop),
        ("destination", "postgres") => PostgresDestinationConfig::parse(configuration).map(drop),
        ("destination", "local-json" | "csv") => LocalFileConfig::parse(configuration).map(drop),
        _ => Ok(()),
    }
}

fn integer(
    configuration: &Value,
    key: &str,
    default: i64,
    minimum: i64,
) -> Result<i64, ConfigError> {
    match configuration.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_i64()
            .filter(|number| *number >= minimum)
            .ok_or_else(|| {
                ConfigError::new(key, format!("must be an integer of at least {minimum}"))
            }),
    }
}

fn required_text<'a>(configuration: &'a Value, key: &str) -> Result<&'a str, ConfigError> {
    match configuration.get(key) {
        None | Some(Value::Null) => Err(ConfigError::new(key, "is required")),
        Some(Value::String(text)) if text.trim().is_empty() => {
            Err(ConfigError::new(key, "must not be empty"))
        }
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(ConfigError::new(key, "must be a string")),
    }
}

/// `source-faker`: `count`, `seed`, `records_per_slice`, and Ferry's `slice_delay_ms`.
#[derive(Debug, Clone)]
pub struct FakerConfig {
    pub count: u64,
    pub seed: u64,
    pub records_per_slice: u64,
    pub slice_delay_ms: u64,
}

impl FakerConfig {
    pub fn parse(configuration: &Value) -> Result<Self, ConfigError> {
        let seed = integer(configuration, "seed", -1, i64::MIN)?;
        Ok(Self {
            count: integer(configuration, "count", 1000, 0)?.unsigned_abs(),
            // Airbyte: -1 means a random seed; Ferry keeps runs reproducible with a fixed one.
            seed: if seed < 0 {
                0x5EED
            } else {
                seed.unsigned_abs()
            },
            records_per_slice: integer(configuration, "records_per_slice", 1000, 1)?.unsigned_abs(),
            slice_delay_ms: integer(configuration, "slice_delay_ms", 0, 0)?.unsigned_abs(),
        })
    }
}

/// Where a PostgreSQL connector connects: `host`, `port`, `database`, `username`,
/// `password`, `ssl_mode` (`{"mode": ...}` or a bare string). Without TLS compiled in,
/// `disable`, `allow` and `prefer` connect in plain text, as libpq's do.
#[derive(Debug, Clone)]
pub struct PostgresConnection {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: Option<String>,
}

impl PostgresConnection {
    pub fn parse(configuration: &Value) -> Result<Self, ConfigError> {
        let host = required_text(configuration, "host")?.to_owned();
        let database = required_text(configuration, "database")?.to_owned();
        let username = required_text(configuration, "username")?.to_owned();
        let port = match configuration.get("port") {
            None | Some(Value::Null) => 5432,
            Some(value) => value
                .as_u64()
                .or_else(|| value.as_str().and_then(|port| port.parse().ok()))
                .and_then(|port| u16::try_from(port).ok())
                .filter(|port| *port > 0)
                .ok_or_else(|| ConfigError::new("port", "must be a port number (1-65535)"))?,
        };
        let password = match configuration.get("password") {
            None | Some(Value::Null) => None,
            Some(Value::String(password)) => Some(password.clone()),
            Some(_) => return Err(ConfigError::new("password", "must be a string")),
        };
        let ssl_mode = match configuration.get("ssl_mode") {
            None | Some(Value::Null) => "disable",
            Some(Value::String(mode)) => mode.as_str(),
            Some(Value::Object(fields)) => fields
                .get("mode")
                .and_then(Value::as_str)
                .ok_or_else(|| ConfigError::new("ssl_mode.mode", "is required"))?,
            Some(_) => return Err(ConfigError::new("ssl_mode", "must be an object")),
        };
        match ssl_mode {
            "disable" | "allow" | "prefer" => {}
            "require" | "verify-ca" | "verify-full" => {
                return Err(ConfigError::new(
                    "ssl_mode.mode",
                    format!(
                        "'{ssl_mode}' needs TLS, which this Ferry build does not include; use disable, allow or prefer (or a TLS-terminating proxy)"
                    ),
                ));
            }
            other => {
                return Err(ConfigError::new(
                    "ssl_mode.mode",
                    format!(
                        "unknown mode '{other}' (disable, allow, prefer, require, verify-ca, verify-full)"
                    ),
                ));
            }
        }
        Ok(Self {
            host,
            port,
            database,
            username,
            password,
        })
    }
}

/// `source-postgres`: the connection and `schemas` (default `["public"]`).
#[derive(Debug, Clone)]
pub struct PostgresSourceConfig {
    pub connection: PostgresConnection,
    pub schemas: Vec<String>,
}

impl PostgresSourceConfig {
    pub fn parse(configuration: &Value) -> Result<Self, ConfigError> {
        let schemas = match configuration.get("schemas") {
            None | Some(Value::Null) => vec!["public".to_owned()],
            Some(Value::Array(schemas)) if !schemas.is_empty() => schemas
                .iter()
                .map(|schema| {
                    schema
                        .as_str()
                        .filter(|schema| !schema.is_empty())
                        .map(str::to_owned)
                        .ok_or_else(|| ConfigError::new("schemas", "must be non-empty strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ConfigError::new(
                    "schemas",
                    "must be a non-empty array of schema names",
                ));
            }
        };
        Ok(Self {
            connection: PostgresConnection::parse(configuration)?,
            schemas,
        })
    }
}

/// `destination-postgres`: the connection and the default `schema` (`public`).
#[derive(Debug, Clone)]
pub struct PostgresDestinationConfig {
    pub connection: PostgresConnection,
    pub schema: String,
}

impl PostgresDestinationConfig {
    pub fn parse(configuration: &Value) -> Result<Self, ConfigError> {
        let schema = match configuration.get("schema") {
            None | Some(Value::Null) => "public".to_owned(),
            Some(Value::String(schema)) if !schema.is_empty() => schema.clone(),
            Some(_) => return Err(ConfigError::new("schema", "must be a schema name")),
        };
        Ok(Self {
            connection: PostgresConnection::parse(configuration)?,
            schema,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    JsonLines,
    Json,
}

/// `source-file` on a local path: `dataset_name`, `format`, `url`, `provider.storage`,
/// `reader_options` (JSON text; `sep` is read).
#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    pub dataset_name: String,
    pub format: FileFormat,
    pub path: PathBuf,
    pub delimiter: u8,
}

impl FileSourceConfig {
    pub fn parse(configuration: &Value) -> Result<Self, ConfigError> {
        let dataset_name = required_text(configuration, "dataset_name")?.to_owned();
        let format = match configuration
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("csv")
        {
            "csv" => FileFormat::Csv,
            "jsonl" => FileFormat::JsonLines,
            "json" => FileFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "format",
                    format!("'{other}' is not read by Ferry (csv, jsonl or json)"),
                ));
            }
        };
        let storage = configuration
            .pointer("/provider/storage")
            .and_then(Value::as_str)
            .unwrap_or("local");
        if !storage.eq_ignore_ascii_case("local") {
            return Err(ConfigError::new(
                "provider.storage",
                format!("'{storage}' is not supported: Ferry reads local files"),
            ));
        }
        let url = required_text(configuration, "url")?;
        let options: Value = match configuration.get("reader_options") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) if text.trim().is_empty() => json!({}),
            Some(Value::String(text)) => serde_json::from_str(text).map_err(|error| {
                ConfigError::new("reader_options", format!("is not JSON: {error}"))
            })?,
            Some(_) => {
                return Err(ConfigError::new(
                    "reader_options",
                    "must be a string holding JSON",
                ));
            }
        };
        let delimiter = match options.get("sep").or_else(|| options.get("delimiter")) {
            None => b',',
            Some(Value::String(separator)) if separator.len() == 1 => separator.as_bytes()[0],
            Some(_) => {
                return Err(ConfigError::new(
                    "reader_options",
                    "sep must be a single character",
                ));
            }
        };
        Ok(Self {
            dataset_name,
            format,
            path: PathBuf::from(url.strip_prefix("file://").unwrap_or(url)),
            delimiter,
        })
    }
}

/// `local-json` and `csv`: the `destination_path` directory.
#[derive(Debug, Clone)]
pub struct LocalFileConfig {
    pub destination_path: PathBuf,
}

impl LocalFileConfig {
    pub fn parse(configuration: &Value) -> Result<Self, ConfigError> {
        Ok(Self {
            destination_path: PathBuf::from(required_text(configuration, "destination_path")?),
        })
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn field_of(role: &str, connector_type: &str, configuration: Value) -> String {
        validate(role, connector_type, &configuration)
            .unwrap_err()
            .field
    }

    #[test]
    fn configurations_name_the_field_at_fault() {
        let good = json!({"host": "localhost", "port": 5432, "database": "d", "username": "u"});
        assert!(validate("source", "postgres", &good).is_ok());
        assert!(validate("destination", "postgres", &good).is_ok());
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
                json!({"host": "h", "database": 3, "username": "u"}),
                "database",
            ),
            (
                json!({"host": "h", "database": "d", "username": "u", "ssl_mode": {"mode": "verify-full"}}),
                "ssl_mode.mode",
            ),
            (
                json!({"host": "h", "database": "d", "username": "u", "schemas": "public"}),
                "schemas",
            ),
        ] {
            assert_eq!(field_of("source", "postgres", bad.clone()), field, "{bad}");
        }
        assert_eq!(field_of("source", "faker", json!({"count": -1})), "count");
        assert_eq!(
            field_of("source", "file", json!({"format": "csv", "url": "x.csv"})),
            "dataset_name"
        );
        assert_eq!(
            field_of(
                "source",
                "file",
                json!({"dataset_name": "d", "format": "parquet", "url": "x"})
            ),
            "format"
        );
        assert_eq!(
            field_of(
                "source",
                "file",
                json!({"dataset_name": "d", "url": "s3://b/x", "provider": {"storage": "S3"}})
            ),
            "provider.storage"
        );
        assert_eq!(
            field_of(
                "source",
                "file",
                json!({"dataset_name": "d", "url": "x", "reader_options": "{nope"})
            ),
            "reader_options"
        );
        assert_eq!(
            field_of("destination", "csv", json!({})),
            "destination_path"
        );
        assert!(validate("source", "custom", &json!({"anything": 1})).is_ok());
    }

    #[test]
    fn every_native_connector_has_a_spec() {
        for (role, connector_type) in [
            ("source", "faker"),
            ("source", "postgres"),
            ("source", "file"),
            ("destination", "postgres"),
            ("destination", "dev-null"),
            ("destination", "local-json"),
            ("destination", "csv"),
        ] {
            let spec = specification(role, connector_type).unwrap();
            assert_eq!(spec["type"], "object", "{role}-{connector_type}");
        }
    }
}
