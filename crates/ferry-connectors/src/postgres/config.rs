//! The configurations of `source-postgres` and `destination-postgres`, with Airbyte's keys.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{ConfigError, ConnectorConfig, require_text, shaped};

/// Where a PostgreSQL connector connects; both connectors share these keys.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PostgresConnection {
    /// Hostname of the database.
    #[schemars(title = "Host", extend("order" = 0))]
    pub host: String,
    /// Port of the database.
    #[serde(default = "default_port", deserialize_with = "port_number")]
    #[schemars(title = "Port", range(min = 1, max = 65535), extend("order" = 1))]
    pub port: u16,
    /// Name of the database.
    #[schemars(title = "Database Name", extend("order" = 2))]
    pub database: String,
    /// Username to access the database.
    #[schemars(title = "Username", extend("order" = 4))]
    pub username: String,
    /// Password associated with the username.
    #[serde(default)]
    #[schemars(title = "Password", extend("airbyte_secret" = true, "order" = 5))]
    pub password: Option<String>,
    /// Additional properties to pass to the JDBC URL string; Ferry's connectors do not use
    /// JDBC and ignore them.
    #[serde(default)]
    #[schemars(title = "JDBC URL Parameters (ignored by Ferry)", extend("order" = 6))]
    pub jdbc_url_params: Option<String>,
    /// How to encrypt the connection. Ferry connects without TLS: disable, allow and prefer
    /// are accepted.
    #[serde(default)]
    #[schemars(title = "SSL Modes", extend("order" = 7))]
    pub ssl_mode: Option<SslMode>,
}

fn default_port() -> u16 {
    5432
}

/// A port as a number or, as some clients send it, a string of digits.
fn port_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u64),
        Text(String),
    }
    let invalid = || serde::de::Error::custom("must be a port number (1-65535)");
    let number = match Port::deserialize(deserializer).map_err(|_| invalid())? {
        Port::Number(number) => number,
        Port::Text(text) => text.trim().parse().map_err(|_| invalid())?,
    };
    u16::try_from(number)
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(invalid)
}

/// Airbyte's `ssl_mode` object (`{"mode": "disable"}`); a bare mode name is taken too.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SslMode {
    pub mode: SslModeName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslModeName {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl<'de> Deserialize<'de> for SslMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SslModeVisitor;
        impl<'de> serde::de::Visitor<'de> for SslModeVisitor {
            type Value = SslMode;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an object with a `mode`, or a mode's name")
            }

            fn visit_str<E: serde::de::Error>(self, mode: &str) -> Result<SslMode, E> {
                let mode = SslModeName::deserialize(serde::de::value::StrDeserializer::new(mode))?;
                Ok(SslMode { mode })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SslMode, A::Error> {
                #[derive(Deserialize)]
                struct Fields {
                    mode: SslModeName,
                }
                let fields =
                    Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(SslMode { mode: fields.mode })
            }
        }
        deserializer.deserialize_any(SslModeVisitor)
    }
}

impl PostgresConnection {
    fn check(&self) -> Result<(), ConfigError> {
        require_text("host", &self.host)?;
        require_text("database", &self.database)?;
        require_text("username", &self.username)?;
        let mode = self
            .ssl_mode
            .as_ref()
            .map_or(SslModeName::Disable, |ssl| ssl.mode);
        if matches!(
            mode,
            SslModeName::Require | SslModeName::VerifyCa | SslModeName::VerifyFull
        ) {
            return Err(ConfigError::new(
                "ssl_mode.mode",
                format!(
                    "'{}' needs TLS, which this Ferry build does not include; use disable, allow or prefer (or a TLS-terminating proxy)",
                    serde_json::to_value(mode)
                        .ok()
                        .and_then(|name| name.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }
}

/// `source-postgres`: the connection and the schemas to read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PostgresSourceConfig {
    #[serde(flatten)]
    pub connection: PostgresConnection,
    /// The schemas whose tables are offered as streams.
    #[serde(default = "default_schemas")]
    #[schemars(title = "Schemas", length(min = 1), extend("order" = 3))]
    pub schemas: Vec<String>,
}

fn default_schemas() -> Vec<String> {
    vec!["public".to_owned()]
}

impl ConnectorConfig for PostgresSourceConfig {
    const TITLE: &'static str = "Postgres Source Spec";

    fn flattened_error(configuration: &serde_json::Value) -> Option<ConfigError> {
        shaped::<PostgresConnection>(configuration).err()
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.connection.check()?;
        if self.schemas.is_empty() || self.schemas.iter().any(|schema| schema.is_empty()) {
            return Err(ConfigError::new(
                "schemas",
                "must be a non-empty array of schema names",
            ));
        }
        Ok(())
    }
}

/// `destination-postgres`: the connection and the schema streams without a namespace go to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PostgresDestinationConfig {
    #[serde(flatten)]
    pub connection: PostgresConnection,
    /// The schema tables are written to when the connection gives a stream no namespace.
    #[serde(default = "default_schema")]
    #[schemars(title = "Default Schema", extend("order" = 3))]
    pub schema: String,
}

fn default_schema() -> String {
    "public".to_owned()
}

impl ConnectorConfig for PostgresDestinationConfig {
    const TITLE: &'static str = "Postgres Destination Spec";

    fn flattened_error(configuration: &serde_json::Value) -> Option<ConfigError> {
        shaped::<PostgresConnection>(configuration).err()
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.connection.check()?;
        require_text("schema", &self.schema)
    }
}
