//! Native PostgreSQL source and destination. They take the configuration keys of Airbyte's
//! connectors of the same name, and move rows with COPY (text format) on both ends.

pub mod copy_binary;
pub mod copy_text;
mod destination;
mod schema;
mod source;

pub use destination::PostgresDestination;
pub use source::PostgresSource;

use ferry_protocol::configs::PostgresConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection};

use crate::ConnectorError;

/// Connection options for a parsed configuration (TLS is not compiled in: plain text).
pub(crate) fn connect_options(connection: &PostgresConnection) -> PgConnectOptions {
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&connection.host)
        .port(connection.port)
        .database(&connection.database)
        .username(&connection.username)
        .ssl_mode(PgSslMode::Disable)
        .application_name("ferry")
        .options([("TimeZone", "UTC"), ("DateStyle", "ISO")])
        .disable_statement_logging();
    if let Some(password) = &connection.password {
        options = options.password(password);
    }
    options
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
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_identifier("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
