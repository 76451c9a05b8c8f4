//! Airbyte's `source-postgres`, standard replication: `read_plan.rs` turns a configured
//! stream into the COPY that reads it, `row_reader.rs` turns COPY output into records, COPY
//! batches and checkpoints.

mod initial_load;
mod parallel;
mod read_plan;
mod row_reader;
#[cfg(test)]
mod tests;

use ferry_protocol::catalog::ConfiguredCatalog;
use std::sync::Arc;

use ferry_protocol::{PipeMessage, RangeMark, StreamDescriptor};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::mpsc;

use super::PostgresSourceConfig;
use super::schema::json_schema_of;
use super::{connect, connect_options, database_error};
use crate::connector::{BoxFuture, ResumeState, Source, SourceState};
use crate::emitter::Emitter;
use crate::{ConnectorError, config};
use read_plan::ReadPlan;

/// Airbyte's `source-postgres` (standard replication): discover schemas' tables, read them
/// whole or incrementally by a cursor column, with COPY so that memory stays flat.
pub struct PostgresSource {
    options: PgConnectOptions,
    schemas: Vec<String>,
    copy_rows: bool,
    /// Connections that read one large table at once in a whole-table read.
    parallel_readers: u16,
    /// Tables read whole at once.
    parallel_tables: u16,
    log: Option<crate::LogSink>,
    /// The connection and the tables of the last discover, which a read right after it
    /// (the data plane discovers, configures the catalog, then reads) takes over: the rows
    /// come from the tables the catalog was made from, with one connection and one pass of
    /// the catalog queries fewer (a few milliseconds of a small sync's setup, one backend
    /// less on the server).
    discovered: std::sync::Mutex<Option<(PgConnection, Vec<Table>)>>,
}

pub(super) struct Column {
    pub(super) name: String,
    /// `pg_type.typname`.
    pub(super) type_name: String,
    /// With modifiers, as a cast names it: `numeric(12,2)`.
    pub(super) sql_type: String,
    pub(super) element: Option<String>,
    /// Declared NOT NULL.
    pub(super) not_null: bool,
}

pub(super) struct Table {
    pub(super) schema: String,
    pub(super) name: String,
    pub(super) columns: Vec<Column>,
    pub(super) primary_key: Vec<String>,
}

const COLUMNS_SQL: &str = "
SELECT n.nspname::text, c.relname::text, a.attname::text, t.typname::text,
       format_type(a.atttypid, a.atttypmod), et.typname::text, a.attnotnull
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND a.attnum > 0 AND NOT a.attisdropped AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname, a.attnum";

const PRIMARY_KEYS_SQL: &str = "
SELECT n.nspname::text, c.relname::text, a.attname::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
WHERE i.indisprimary AND n.nspname = ANY($1)
ORDER BY n.nspname, c.relname, array_position(i.indkey::int2[], a.attnum)";

impl PostgresSource {
    pub fn build(configuration: &Value) -> Result<Box<dyn Source>, ConnectorError> {
        Ok(Box::new(Self::new(configuration)?))
    }

    fn new(configuration: &Value) -> Result<Self, ConnectorError> {
        let config: PostgresSourceConfig = config::parse(configuration)?;
        Ok(Self {
            options: connect_options(&config.connection),
            parallel_readers: config.parallel_readers(),
            parallel_tables: config.parallel_tables(),
            schemas: config.schemas,
            copy_rows: false,
            log: None,
            discovered: std::sync::Mutex::new(None),
        })
    }

    /// Connects and checks that every configured schema exists.
    async fn check_schemas(&self) -> Result<(), ConnectorError> {
        let mut connection = connect(&self.options).await?;
        let found: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
                .bind(&self.schemas)
                .fetch_all(&mut connection)
                .await
                .map_err(|error| database_error("check", error))?;
        match self.schemas.iter().find(|schema| !found.contains(schema)) {
            Some(missing) => Err(ConnectorError::invalid(
                "schemas",
                format!("schema '{missing}' does not exist"),
            )),
            None => Ok(()),
        }
    }

    async fn discover_tables(&self) -> Result<Value, ConnectorError> {
        let mut connection = connect(&self.options).await?;
        let tables = self.tables(&mut connection).await?;
        let streams: Vec<Value> = tables
            .iter()
            .map(|table| {
                let properties: serde_json::Map<String, Value> = table
                    .columns
                    .iter()
                    .map(|column| {
                        (
                            column.name.clone(),
                            json_schema_of(&column.type_name, column.element.as_deref()),
                        )
                    })
                    .collect();
                let primary_key: Vec<Value> =
                    table.primary_key.iter().map(|key| json!([key])).collect();
                json!({
                    "name": table.name,
                    "namespace": table.schema,
                    "json_schema": {"type": "object", "properties": properties},
                    "supported_sync_modes": ["full_refresh", "incremental"],
                    "source_defined_cursor": false,
                    "default_cursor_field": [],
                    "source_defined_primary_key": primary_key,
                    "is_resumable": true
                })
            })
            .collect();
        if let Ok(mut discovered) = self.discovered.lock() {
            *discovered = Some((connection, tables));
        }
        Ok(json!({"streams": streams}))
    }

    async fn tables(&self, connection: &mut PgConnection) -> Result<Vec<Table>, ConnectorError> {
        type ColumnRow = (String, String, String, String, String, Option<String>, bool);
        let rows: Vec<ColumnRow> = sqlx::query_as(COLUMNS_SQL)
            .bind(&self.schemas)
            .fetch_all(&mut *connection)
            .await
            .map_err(|error| database_error("discover", error))?;
        let keys: Vec<(String, String, String)> = sqlx::query_as(PRIMARY_KEYS_SQL)
            .bind(&self.schemas)
            .fetch_all(&mut *connection)
            .await
            .map_err(|error| database_error("discover", error))?;
        let mut tables: Vec<Table> = Vec::new();
        for (schema, name, column, type_name, sql_type, element, not_null) in rows {
            let same = tables
                .last()
                .is_some_and(|table| table.schema == schema && table.name == name);
            if !same {
                let primary_key = keys
                    .iter()
                    .filter(|(key_schema, table, _)| *key_schema == schema && *table == name)
                    .map(|(_, _, column)| column.clone())
                    .collect();
                tables.push(Table {
                    schema,
                    name,
                    columns: Vec::new(),
                    primary_key,
                });
            }
            if let Some(table) = tables.last_mut() {
                table.columns.push(Column {
                    name: column,
                    type_name,
                    sql_type,
                    element,
                    not_null,
                });
            }
        }
        Ok(tables)
    }

    /// Reads the configured streams: those read whole (full refresh) first, up to
    /// `parallel_tables` at once, each reader on a connection of its own; then the
    /// incremental ones one after the other, so that each state covers only its rows.
    async fn read_tables(
        self,
        catalog: &ConfiguredCatalog,
        state: &[ResumeState],
        output: mpsc::Sender<PipeMessage>,
    ) -> Result<(), ConnectorError> {
        let discovered = self
            .discovered
            .lock()
            .ok()
            .and_then(|mut discovered| discovered.take());
        let (kept, tables) = discovered.unzip();
        let mut connection = super::reuse_or_connect(kept, &self.options).await?;
        let tables = match tables {
            Some(tables) => tables,
            None => self.tables(&mut connection).await?,
        };
        let emitter = Emitter::new(output);
        let mut plans = Vec::with_capacity(catalog.streams.len());
        for configured in &catalog.streams {
            let name = &configured.stream.name;
            let namespace = configured
                .stream
                .namespace
                .as_deref()
                .unwrap_or(self.schemas[0].as_str());
            let table = tables
                .iter()
                .find(|table| table.name == *name && table.schema == namespace)
                .ok_or_else(|| {
                    ConnectorError::Config(format!("table {namespace}.{name} not found"))
                })?;
            plans.push(ReadPlan::new(table, configured, state)?);
        }
        let (whole, incremental): (Vec<_>, Vec<_>) =
            plans.into_iter().partition(|plan| plan.cursor.is_none());
        // Tables read whole go to readers of as many connections as can be opened, up to
        // `parallel_tables`: a server (or role) with fewer to spare reads them with fewer.
        let mut connections = vec![connection];
        let at_once = usize::from(self.parallel_tables).min(whole.len());
        for _ in 1..at_once {
            match connect(&self.options).await {
                Ok(more) => connections.push(more),
                Err(error) => {
                    tracing::info!(%error, "no more connections: fewer tables at once");
                    break;
                }
            }
        }
        if connections.len() > 1 {
            let said = format!(
                "source: reading {} whole tables, {} at a time",
                whole.len(),
                connections.len()
            );
            say(self.log.as_ref(), said);
        }
        let waiting = std::sync::Mutex::new(whole.into_iter());
        let readers = connections
            .iter_mut()
            .map(|connection| self.read_whole_tables(&waiting, connection, &emitter));
        futures_util::future::try_join_all(readers).await?;
        let mut connections = connections.into_iter();
        let Some(mut connection) = connections.next() else {
            return Ok(());
        };
        for other in connections {
            let _ = sqlx::Connection::close(other).await;
        }
        for plan in incremental {
            self.read_stream(plan, &mut connection, &emitter).await?;
        }
        Ok(())
    }

    /// Reads the tables read whole that are still waiting, one after the other, on
    /// `connection`. A named async fn: a closure's future here trips the compiler's proof
    /// that the whole read is `Send`.
    async fn read_whole_tables<'a>(
        &self,
        waiting: &std::sync::Mutex<std::vec::IntoIter<ReadPlan<'a>>>,
        connection: &mut PgConnection,
        emitter: &Emitter,
    ) -> Result<(), ConnectorError> {
        loop {
            let next = match waiting.lock() {
                Ok(mut waiting) => waiting.next(),
                Err(_) => None,
            };
            let Some(plan) = next else {
                return Ok(());
            };
            self.read_stream(plan, connection, emitter).await?;
        }
    }

    /// Reads one stream: a first read in page order, a large table read whole by several
    /// connections, or one COPY (incremental streams from their committed cursor, in cursor
    /// order, with a STATE at each checkpoint and at the end).
    async fn read_stream(
        &self,
        mut plan: ReadPlan<'_>,
        connection: &mut PgConnection,
        emitter: &Emitter,
    ) -> Result<(), ConnectorError> {
        plan.settle_cursor(connection).await?;
        if plan.resume.is_none() {
            estimate(connection, &plan.descriptor, emitter).await?;
        }
        if let Some(initial) = &plan.initial {
            let log = self.log.as_ref();
            return initial_load::read(&plan, initial, connection, emitter, self.copy_rows, log)
                .await;
        }
        let parallel = plan.resume.is_none()
            && parallel::read(
                &plan,
                &self.options,
                connection,
                emitter,
                self.copy_rows,
                self.parallel_readers,
                self.log.as_ref(),
            )
            .await?;
        if !parallel {
            if self.copy_rows && plan.ranges_loaded.is_some() {
                // Read by one COPY now: the ranges an earlier attempt loaded go.
                let whole = RangeMark::Begins {
                    split: Arc::from("whole"),
                    skipped: Vec::new(),
                };
                emitter.send_pipe(plan.mark(0, whole)).await?;
            }
            plan.run(connection, emitter, self.copy_rows).await?;
        }
        Ok(())
    }
}

/// A line for the attempt's log (where the read has one) and the data plane's.
fn say(log: Option<&crate::LogSink>, line: String) {
    tracing::info!("{line}");
    if let Some(log) = log {
        let _ = log.send(line);
    }
}

/// The planner's figures for a table read whole (`reltuples`, the heap's size; as Airbyte's
/// source-postgres estimates), sent as an ESTIMATE. A table never analysed has no row
/// estimate (`reltuples` is -1) and gets none.
async fn estimate(
    connection: &mut sqlx::PgConnection,
    stream: &StreamDescriptor,
    emitter: &Emitter,
) -> Result<(), ConnectorError> {
    let namespace = stream.namespace.as_deref().unwrap_or("public");
    let figures: Option<(f32, i64)> = sqlx::query_as(
        "SELECT c.reltuples, pg_relation_size(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(namespace)
    .bind(&stream.name)
    .fetch_optional(&mut *connection)
    .await
    .map_err(|error| database_error(&format!("estimating {}", stream.key()), error))?;
    if let Some((rows, bytes)) = figures
        && rows >= 0.0
    {
        emitter
            .estimate(stream, rows as u64, u64::try_from(bytes).unwrap_or(0))
            .await?;
    }
    Ok(())
}

impl Source for PostgresSource {
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        Box::pin(self.check_schemas())
    }

    fn discover(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        Box::pin(self.discover_tables())
    }

    /// Reads rows as COPY rows for a native PostgreSQL destination instead of as JSON
    /// records: each column's text is then valid input for the column the destination made
    /// from its JSON schema (binary as base64, arrays as JSON, as in records).
    fn emit_copy_rows(&mut self) -> bool {
        self.copy_rows = true;
        true
    }

    fn log_to(&mut self, sink: crate::LogSink) {
        self.log = Some(sink);
    }

    fn read<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        state: &'a SourceState,
        output: mpsc::Sender<PipeMessage>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(self.read_tables(catalog, &state.streams, output))
    }
}
