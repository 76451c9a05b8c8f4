//! Native PostgreSQL source and destination. They take the configuration keys of Airbyte's
//! connectors of the same name, and move rows with COPY on both ends.

mod config;
pub mod naming;
mod ssl_mode;
pub use config::{
    PostgresConnection, PostgresDestinationConfig, PostgresSourceConfig, ReplicationMethod,
    TunnelMethod,
};
pub use ssl_mode::{SslCertificates, SslMode};

#[cfg(feature = "runtime")]
pub mod copy_binary;
#[cfg(feature = "runtime")]
pub mod copy_text;
#[cfg(feature = "runtime")]
mod destination;
#[cfg(feature = "runtime")]
mod range_state;
#[cfg(feature = "runtime")]
mod schema;
#[cfg(feature = "runtime")]
mod source;
#[cfg(feature = "runtime")]
mod tls;

#[cfg(feature = "runtime")]
pub use runtime::*;

#[cfg(feature = "runtime")]
mod runtime {
    pub use super::destination::PostgresDestination;
    pub use super::source::PostgresSource;

    use std::time::Duration;

    use sqlx::ConnectOptions;
    use sqlx::postgres::{PgConnectOptions, PgConnection};

    use super::PostgresConnection;
    use crate::ConnectorError;

    /// Connection options for a parsed configuration, its `ssl_mode` applied.
    pub(crate) fn connect_options(connection: &PostgresConnection) -> PgConnectOptions {
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&connection.host)
            .port(connection.port)
            .database(&connection.database)
            .username(&connection.username)
            .application_name("ferry")
            // Every lock wait bounded (a sync that waits on another session's lock reports
            // it, and is retried, rather than hanging), and the notices of statements that
            // find their object in place ("already exists, skipping") left out of the logs.
            .options([
                ("TimeZone", "UTC".to_owned()),
                ("DateStyle", "ISO".to_owned()),
                ("lock_timeout", format!("{}s", LOCK_WAIT.as_secs())),
                ("client_min_messages", "warning".to_owned()),
            ])
            .disable_statement_logging();
        if let Some(password) = &connection.password {
            options = options.password(password);
        }
        super::tls::with_ssl_mode(options, connection.ssl_mode.as_ref())
    }

    /// Longest any statement waits for a lock another session holds: a reader's query on an
    /// overwritten table (the swap drops it), a migration on a source's table.
    pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(10 * 60);

    /// Longest a connection may take to open (TCP, startup, authentication): a host that
    /// accepts TCP and never answers would otherwise hold a data-plane slot until the peer
    /// closes. Airbyte's connectors take `connect_timeout` in `jdbc_url_params` (the JDBC
    /// driver's default is 10 s); 30 s leaves room for a slow network or a busy server.
    pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Longest a COPY stream (rows read from the source, rows sent to the destination) may
    /// go without a byte moving before the connection is deemed dead: sqlx sets no TCP
    /// keepalive, so a peer that vanished without a reset (a partition, a dropped NAT entry)
    /// would hold the attempt for ever. Generous, since a query sorting a large table may
    /// send its first row only after minutes.
    pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

    pub(crate) async fn connect(
        options: &PgConnectOptions,
    ) -> Result<PgConnection, ConnectorError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, super::tls::connect(options)).await {
            Ok(connected) => {
                connected.map_err(|error| database_error("could not connect to PostgreSQL", error))
            }
            Err(_) => Err(ConnectorError::Transient(format!(
                "could not connect to PostgreSQL at {}:{} within {} s: no answer (a wrong host \
                 or port, or a firewall or proxy holding the connection?)",
                options.get_host(),
                options.get_port(),
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// How long a connection kept from an earlier step (a discover, the checkpoints read)
    /// has to answer before the next step opens another.
    const KEPT_PING: Duration = Duration::from_secs(5);

    /// The connection kept from an earlier step of the same sync, if there is one and it
    /// still answers (the server may have closed it on an idle timeout meanwhile), or a new
    /// one.
    pub(crate) async fn reuse_or_connect(
        kept: Option<PgConnection>,
        options: &PgConnectOptions,
    ) -> Result<PgConnection, ConnectorError> {
        if let Some(mut kept) = kept {
            let ping = sqlx::Connection::ping(&mut kept);
            if let Ok(Ok(())) = tokio::time::timeout(KEPT_PING, ping).await {
                return Ok(kept);
            }
            tracing::debug!("a kept connection no longer answers: reconnecting");
        }
        connect(options).await
    }

    /// Has the server end `connection` (as an idle timeout or a restart would), through
    /// `admin`, a connection of its own.
    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    pub(crate) async fn terminate_from_the_server(
        connection: &mut PgConnection,
        admin: &mut PgConnection,
    ) {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(admin)
            .await
            .unwrap();
        assert!(ended, "backend {pid} ended");
    }

    /// One step of a COPY stream, which fails as a lost connection (transient) when nothing
    /// moved for [`IDLE_TIMEOUT`]. A step that is ready at once (rows already buffered: most
    /// of them) arms no timer.
    pub(crate) async fn idle_bounded<T>(
        step: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let mut step = std::pin::pin!(step);
        let ready = std::future::poll_fn(|context| {
            std::task::Poll::Ready(match step.as_mut().poll(context) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await;
        if let Some(output) = ready {
            return output;
        }
        tokio::time::timeout(IDLE_TIMEOUT, step)
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "nothing received or sent for {} min; the connection is deemed lost",
                        IDLE_TIMEOUT.as_secs() / 60
                    ),
                )))
            })
    }

    /// Runs one or more statements. Through `Executor::execute`'s boxed future: sqlx's
    /// `raw_sql(..).execute(..)` future is not `Send` for every lifetime, which
    /// `tokio::spawn` needs.
    pub(crate) async fn run_sql(
        connection: &mut PgConnection,
        sql: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::Executor::execute(connection, sqlx::raw_sql(sql))
            .await
            .map(drop)
    }

    /// `"name"`, with quotes doubled: an identifier that is safe in any SQL text.
    pub(crate) fn quote_identifier(name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// `'text'`, with quotes doubled (standard_conforming_strings is on since 9.1).
    pub(crate) fn quote_literal(text: &str) -> String {
        format!("'{}'", text.replace('\'', "''"))
    }

    /// A database error as a connector failure of the kind its SQLSTATE says: the database,
    /// schema, table, column or credentials being wrong is the user's to fix and is not
    /// retried; a lost or refused connection is.
    pub(crate) fn database_error(context: &str, error: sqlx::Error) -> ConnectorError {
        let message = format!("{context}: {error}");
        match &error {
            sqlx::Error::Database(database) => match database.code().as_deref() {
                Some(code) if is_config_state(code) => ConnectorError::Config(message),
                Some(code) if is_transient_state(code) => ConnectorError::Transient(message),
                _ => ConnectorError::Failed(message),
            },
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => {
                ConnectorError::Transient(message)
            }
            sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => ConnectorError::Config(message),
            _ => ConnectorError::Failed(message),
        }
    }

    /// SQLSTATEs of a configuration the user must change: invalid authorization (28),
    /// invalid catalog (3D: no such database) or schema (3F), and syntax errors or access
    /// rule violations (42: undefined table or column, insufficient privilege).
    pub(crate) fn is_config_state(code: &str) -> bool {
        ["28", "3D", "3F", "42"]
            .iter()
            .any(|class| code.starts_with(class))
    }

    /// SQLSTATEs worth another attempt: connection exceptions (08), transaction rollbacks
    /// (40: serialization failures, deadlocks), insufficient resources (53), operator
    /// intervention (57: shutdown, cancel), system errors (58), and a lock another session
    /// held past [`LOCK_WAIT`] (55P03).
    pub(crate) fn is_transient_state(code: &str) -> bool {
        code == "55P03"
            || ["08", "40", "53", "57", "58"]
                .iter()
                .any(|class| code.starts_with(class))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn identifiers_and_literals_are_quoted() {
            assert_eq!(quote_identifier("we\"ird"), "\"we\"\"ird\"");
            assert_eq!(quote_literal("it's"), "'it''s'");
        }

        #[test]
        fn sqlstates_are_sorted_into_config_and_transient() {
            for code in ["28P01", "3D000", "42703", "42P01", "42501", "3F000"] {
                assert!(is_config_state(code) && !is_transient_state(code), "{code}");
            }
            for code in ["08006", "40001", "40P01", "53300", "57P01", "55P03"] {
                assert!(is_transient_state(code) && !is_config_state(code), "{code}");
            }
            assert!(!is_config_state("22P02") && !is_transient_state("22P02"));
        }
    }
}
