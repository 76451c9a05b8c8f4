//! The configurations of `source-postgres` and `destination-postgres`, with Airbyte's keys.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::SslMode;
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
    /// JDBC and ignore them. Masked in replies: Airbyte's take `password=…` there too.
    #[serde(default)]
    #[schemars(
        title = "JDBC URL Parameters (ignored by Ferry)",
        extend("order" = 6, "airbyte_secret" = true)
    )]
    pub jdbc_url_params: Option<String>,
    /// How to encrypt the connection (TLS), as libpq's `sslmode`: `disable`, `allow`,
    /// `prefer` (the default), `require`, or `verify-ca`/`verify-full` with the CA
    /// certificate the server's certificate must be signed by.
    #[serde(default)]
    #[schemars(title = "SSL Modes", extend("order" = 7))]
    pub ssl_mode: Option<SslMode>,
    /// Whether to reach the database through an SSH tunnel, as Airbyte's `tunnel_method`
    /// object (`{"tunnel_method": "NO_TUNNEL"}`). Ferry connects directly: only `NO_TUNNEL`
    /// is accepted (for a bastion, run the tunnel outside Ferry and point host and port at
    /// it).
    #[serde(default)]
    #[schemars(title = "SSH Tunnel Method", extend("order" = 8))]
    pub tunnel_method: Option<TunnelMethod>,
}

/// Airbyte's `tunnel_method` choices; the key of each is its `tunnel_method`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "tunnel_method")]
pub enum TunnelMethod {
    /// No SSH tunnel: the connector connects to host and port directly.
    #[serde(rename = "NO_TUNNEL")]
    #[schemars(title = "No Tunnel")]
    NoTunnel,
    /// An SSH tunnel authenticated with a private key (not supported by Ferry).
    #[serde(rename = "SSH_KEY_AUTH")]
    #[schemars(title = "SSH Key Authentication")]
    SshKeyAuth {
        /// Hostname of the jump server that allows inbound SSH tunnels.
        #[serde(default)]
        #[schemars(title = "SSH Tunnel Jump Server Host")]
        tunnel_host: Option<String>,
        /// Port of the jump server that accepts inbound SSH connections.
        #[serde(default)]
        #[schemars(title = "SSH Connection Port", range(min = 0, max = 65536))]
        tunnel_port: Option<u32>,
        /// OS-level username for logging into the jump server host.
        #[serde(default)]
        #[schemars(title = "SSH Login Username")]
        tunnel_user: Option<String>,
        /// OS-level user account SSH key credentials in RSA PEM format.
        #[serde(default)]
        #[schemars(
            title = "SSH Private Key",
            extend("airbyte_secret" = true, "multiline" = true)
        )]
        ssh_key: Option<String>,
    },
    /// An SSH tunnel authenticated with a password (not supported by Ferry).
    #[serde(rename = "SSH_PASSWORD_AUTH")]
    #[schemars(title = "Password Authentication")]
    SshPasswordAuth {
        /// Hostname of the jump server that allows inbound SSH tunnels.
        #[serde(default)]
        #[schemars(title = "SSH Tunnel Jump Server Host")]
        tunnel_host: Option<String>,
        /// Port of the jump server that accepts inbound SSH connections.
        #[serde(default)]
        #[schemars(title = "SSH Connection Port", range(min = 0, max = 65536))]
        tunnel_port: Option<u32>,
        /// OS-level username for logging into the jump server host.
        #[serde(default)]
        #[schemars(title = "SSH Login Username")]
        tunnel_user: Option<String>,
        /// OS-level password for logging into the jump server host.
        #[serde(default)]
        #[schemars(title = "Password", extend("airbyte_secret" = true))]
        tunnel_user_password: Option<String>,
    },
}

/// How `source-postgres` finds what changed, as Airbyte's `replication_method` object
/// (`{"method": "Standard"}`); the key of each is its `method`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method")]
pub enum ReplicationMethod {
    /// An incremental stream reads the rows whose cursor field is past the last value
    /// synced (Airbyte's "Scan Changes with User Defined Cursor"). The one Ferry supports.
    #[default]
    #[schemars(title = "Scan Changes with User Defined Cursor")]
    Standard,
    /// Changes found through the `xmin` system column (not supported by Ferry).
    #[schemars(title = "Detect Changes with Xmin System Column")]
    Xmin,
    /// Changes read from the write-ahead log by logical replication (not supported by
    /// Ferry).
    #[serde(rename = "CDC")]
    #[schemars(title = "Read Changes using Write-Ahead Log (CDC)")]
    Cdc {
        /// The logical replication slot to read from.
        #[serde(default)]
        #[schemars(title = "Replication Slot")]
        replication_slot: Option<String>,
        /// The publication naming the tables to replicate.
        #[serde(default)]
        #[schemars(title = "Publication")]
        publication: Option<String>,
    },
}

impl ReplicationMethod {
    fn check(&self) -> Result<(), ConfigError> {
        let name = match self {
            Self::Standard => return Ok(()),
            Self::Xmin => "Xmin",
            Self::Cdc { .. } => "CDC",
        };
        Err(ConfigError::new(
            "replication_method.method",
            format!(
                "{name} is not supported by Ferry's native source-postgres; use Standard (cursor-based) replication"
            ),
        ))
    }
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

impl PostgresConnection {
    fn check(&self) -> Result<(), ConfigError> {
        require_text("host", &self.host)?;
        require_text("database", &self.database)?;
        require_text("username", &self.username)?;
        let tunnel = match self.tunnel_method {
            None | Some(TunnelMethod::NoTunnel) => None,
            Some(TunnelMethod::SshKeyAuth { .. }) => Some("SSH_KEY_AUTH"),
            Some(TunnelMethod::SshPasswordAuth { .. }) => Some("SSH_PASSWORD_AUTH"),
        };
        if let Some(tunnel) = tunnel {
            return Err(ConfigError::new(
                "tunnel_method.tunnel_method",
                format!(
                    "{tunnel}: SSH tunnels are not supported by Ferry's native PostgreSQL connectors; use NO_TUNNEL (run the tunnel outside Ferry and point host and port at it)"
                ),
            ));
        }
        self.ssl_mode.as_ref().map_or(Ok(()), SslMode::check)
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
    /// How incremental streams find what changed. Ferry reads with a cursor (Standard);
    /// Xmin and CDC are refused.
    #[serde(default)]
    #[schemars(title = "Update Method", extend("order" = 9))]
    pub replication_method: ReplicationMethod,
    /// How many connections read one large table (over 8 MiB) at once when it is read whole
    /// (a full refresh), each a range of its pages, all under one snapshot, and (into
    /// PostgreSQL) as many write it; 1 reads every table with one query. Unset: one for
    /// every two cores of the data plane, from 1 to 4.
    #[serde(default)]
    #[schemars(
        title = "Parallel Readers per Table",
        range(min = 1, max = 16),
        extend("order" = 10)
    )]
    pub parallel_readers: Option<u16>,
    /// How many tables read whole (full refresh) are read at once, each on connections of
    /// its own; incremental streams are read one after the other. Unset: 2.
    #[serde(default)]
    #[schemars(
        title = "Tables Read at Once",
        range(min = 1, max = 16),
        extend("order" = 11)
    )]
    pub parallel_tables: Option<u16>,
}

/// The most connections one table is read with, and the most tables read at once.
const MAX_PARALLEL_READERS: u16 = 16;

/// Tables read whole at once unless configured: a small table's read is mostly round trips
/// and DDL at both ends, which another table's read fills.
const DEFAULT_PARALLEL_TABLES: u16 = 2;

impl PostgresSourceConfig {
    /// The tables read whole at once.
    pub fn parallel_tables(&self) -> u16 {
        self.parallel_tables.unwrap_or(DEFAULT_PARALLEL_TABLES)
    }

    /// The readers of one table: as configured, else one for every two cores, up to 4.
    /// Each reader (and its writer) is a busy backend, which pays only where there are cores
    /// to run them. Measured on 2 cores (bench `sync`, 2 M rows, the databases on the same
    /// machine, medians of three rounds): 1, 2 and 4 readers came within the machine's noise
    /// of each other (0.82 / 0.81 / 0.78 of the raw binary pipe in one run, 1.12 / 1.22 /
    /// 1.28 in another), so two cores keep one.
    pub fn parallel_readers(&self) -> u16 {
        self.parallel_readers.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            u16::try_from(cores / 2).unwrap_or(4).clamp(1, 4)
        })
    }
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
        self.replication_method.check()?;
        for (field, value) in [
            ("parallel_readers", self.parallel_readers),
            ("parallel_tables", self.parallel_tables),
        ] {
            if value.is_some_and(|value| !(1..=MAX_PARALLEL_READERS).contains(&value)) {
                return Err(ConfigError::new(
                    field,
                    format!("must be a number from 1 to {MAX_PARALLEL_READERS}"),
                ));
            }
        }
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
