//! Native PostgreSQL source and destination. They take the configuration keys of Airbyte's
//! connectors of the same name, and move rows with COPY (text format) on both ends.

pub mod copy_text;
mod destination;
mod schema;
mod source;

pub use destination::PostgresDestination;
pub use source::PostgresSource;

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection};

use crate::ConnectorError;

/// Where to connect, from Airbyte's keys: `host`, `port`, `database`, `username`,
/// `password`, `ssl_mode` (`{"mode": ...}` or a bare string).
pub(crate) fn connect_options(configuration: &Value) -> Result<PgConnectOptions, ConnectorError> {
    let text = |key: &str, required: bool| -> Result<Option<String>, ConnectorError> {
        match configuration.get(key) {
            None | Some(Value::Null) if required => {
                Err(ConnectorError::invalid(key, "is required"))
            }
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) if required && value.trim().is_empty() => {
                Err(ConnectorError::invalid(key, "must not be empty"))
            }
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(ConnectorError::invalid(key, "must be a string")),
        }
    };
    let host = text("host", true)?.unwrap_or_default();
    let database = text("database", true)?.unwrap_or_default();
    let username = text("username", true)?.unwrap_or_default();
    let port = match configuration.get("port") {
        None | Some(Value::Null) => 5432,
        Some(value) => value
            .as_u64()
            .or_else(|| value.as_str().and_then(|port| port.parse().ok()))
            .and_then(|port| u16::try_from(port).ok())
            .filter(|port| *port > 0)
            .ok_or_else(|| ConnectorError::invalid("port", "must be a port number (1-65535)"))?,
    };
    let ssl_mode = match configuration.get("ssl_mode") {
        None | Some(Value::Null) => "disable",
        Some(Value::String(mode)) => mode.as_str(),
        Some(Value::Object(fields)) => fields
            .get("mode")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::invalid("ssl_mode.mode", "is required"))?,
        Some(_) => return Err(ConnectorError::invalid("ssl_mode", "must be an object")),
    };
    let ssl_mode = match ssl_mode {
        "disable" => PgSslMode::Disable,
        // Without TLS compiled in, these fall back to plain connections, as libpq's do.
        "allow" | "prefer" => PgSslMode::Disable,
        "require" | "verify-ca" | "verify-full" => {
            return Err(ConnectorError::invalid(
                "ssl_mode.mode",
                format!(
                    "'{ssl_mode}' needs TLS, which this Ferry build does not include; use disable, allow or prefer (or a TLS-terminating proxy)"
                ),
            ));
        }
        other => {
            return Err(ConnectorError::invalid(
                "ssl_mode.mode",
                format!(
                    "unknown mode '{other}' (disable, allow, prefer, require, verify-ca, verify-full)"
                ),
            ));
        }
    };
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&host)
        .port(port)
        .database(&database)
        .username(&username)
        .ssl_mode(ssl_mode)
        .application_name("ferry")
        .options([("TimeZone", "UTC"), ("DateStyle", "ISO")])
        .disable_statement_logging();
    if let Some(password) = text("password", false)? {
        options = options.password(&password);
    }
    Ok(options)
}

pub(crate) async fn connect(options: &PgConnectOptions) -> Result<PgConnection, ConnectorError> {
    PgConnection::connect_with(options).await.map_err(|error| {
        ConnectorError::Failed(format!("could not connect to PostgreSQL: {error}"))
    })
}

/// Runs one or more statements. Through `Executor::execute`'s boxed future: sqlx's
/// `raw_sql(..).execute(..)` future is not `Send` for every lifetime, which `tokio::spawn`
/// needs.
pub(crate) async fn run_sql(connection: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(connection, sqlx::raw_sql(sql))
        .await
        .map(drop)
}

/// `"name"`, with quotes doubled: an identifier that is safe in any SQL text.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with quotes doubled (standard_conforming_strings is on since PostgreSQL 9.1).
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub(crate) fn database_error(context: &str, error: sqlx::Error) -> ConnectorError {
    ConnectorError::Failed(format!("{context}: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn configurations_name_the_field_at_fault() {
        let good = json!({"host": "localhost", "port": 5432, "database": "d", "username": "u"});
        assert!(connect_options(&good).is_ok());
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
        ] {
            match connect_options(&bad) {
                Err(ConnectorError::InvalidConfiguration { field: named, .. }) => {
                    assert_eq!(named, field, "{bad}")
                }
                other => panic!("{bad}: {:?}", other.map(drop)),
            }
        }
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_identifier("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
