use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::configs::PostgresSourceConfig;
use ferry_protocol::{AirbyteMessage, CopyFormat, RecordMessage, StateMessage, StreamDescriptor};
use futures_util::TryStreamExt;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::mpsc;

use super::schema::{ColumnType, binary_column_type, json_schema_of};
use super::{
    connect, connect_options, copy_binary, copy_text, database_error, quote_identifier,
    quote_literal,
};
use crate::{ConnectorError, ResumeState, emit, now_millis};

/// Airbyte's `source-postgres` (standard replication): discover schemas' tables, read them
/// whole or incrementally by a cursor column, with COPY so that memory stays flat.
pub struct PostgresSource {
    options: PgConnectOptions,
    schemas: Vec<String>,
    copy_rows: bool,
}

/// COPY rows go to the destination in batches of about this many bytes.
const BATCH_BYTES: usize = 1 << 20;

/// A checkpoint is due after this many rows (at the next change of cursor value) or this long.
const CHECKPOINT_ROWS: u64 = 100_000;
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

struct Column {
    name: String,
    /// `pg_type.typname`.
    type_name: String,
    /// With modifiers, as a cast names it: `numeric(12,2)`.
    sql_type: String,
    element: Option<String>,
}

struct Table {
    schema: String,
    name: String,
    columns: Vec<Column>,
    primary_key: Vec<String>,
}

const COLUMNS_SQL: &str = "
SELECT n.nspname::text, c.relname::text, a.attname::text, t.typname::text,
       format_type(a.atttypid, a.atttypmod), et.typname::text
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
    pub fn new(configuration: &Value) -> Result<Self, ConnectorError> {
        let config = PostgresSourceConfig::parse(configuration)?;
        Ok(Self {
            options: connect_options(&config.connection),
            schemas: config.schemas,
            copy_rows: false,
        })
    }

    /// Reads rows as COPY text for a native PostgreSQL destination instead of as JSON
    /// records: each column's text is then valid input for the column the destination made
    /// from its JSON schema (binary as base64, arrays as JSON, as in records).
    pub fn emit_copy_rows(&mut self) {
        self.copy_rows = true;
    }

    /// Connects and checks that every configured schema exists.
    pub async fn check(&self) -> Result<(), ConnectorError> {
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

    pub async fn discover(&self) -> Result<Value, ConnectorError> {
        let mut connection = connect(&self.options).await?;
        let streams: Vec<Value> = self
            .tables(&mut connection)
            .await?
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
        Ok(json!({"streams": streams}))
    }

    async fn tables(&self, connection: &mut PgConnection) -> Result<Vec<Table>, ConnectorError> {
        type ColumnRow = (String, String, String, String, String, Option<String>);
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
        for (schema, name, column, type_name, sql_type, element) in rows {
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
                });
            }
        }
        Ok(tables)
    }

    /// Reads each configured stream in turn; incremental streams from their committed cursor,
    /// in cursor order, with a STATE at each checkpoint and at the end.
    pub async fn read(
        self,
        catalog: &Value,
        state: &[ResumeState],
        output: mpsc::Sender<AirbyteMessage>,
    ) -> Result<(), ConnectorError> {
        let mut connection = connect(&self.options).await?;
        let tables = self.tables(&mut connection).await?;
        for configured in catalog["streams"].as_array().into_iter().flatten() {
            let stream = &configured["stream"];
            let name = stream["name"].as_str().unwrap_or_default();
            let namespace = stream["namespace"]
                .as_str()
                .unwrap_or(self.schemas[0].as_str());
            let table = tables
                .iter()
                .find(|table| table.name == name && table.schema == namespace)
                .ok_or_else(|| {
                    ConnectorError::Failed(format!("table {namespace}.{name} not found"))
                })?;
            let plan = ReadPlan::new(table, configured, state)?;
            plan.run(&mut connection, &output, self.copy_rows).await?;
        }
        Ok(())
    }
}

struct ReadPlan<'a> {
    table: &'a Table,
    descriptor: StreamDescriptor,
    columns: Vec<&'a Column>,
    cursor: Option<&'a Column>,
    resume_from: Option<String>,
    /// The destination column types, when the rows can go to a native destination in COPY
    /// binary.
    binary_types: Option<Arc<[String]>>,
}

impl<'a> ReadPlan<'a> {
    fn new(
        table: &'a Table,
        configured: &Value,
        state: &[ResumeState],
    ) -> Result<Self, ConnectorError> {
        let descriptor = StreamDescriptor {
            name: table.name.clone(),
            namespace: Some(table.schema.clone()),
        };
        // The columns the catalog selects, in table order; all of them when it names none.
        let selected = configured["stream"]["json_schema"]["properties"].as_object();
        let columns: Vec<&Column> = table
            .columns
            .iter()
            .filter(|column| selected.is_none_or(|selected| selected.contains_key(&column.name)))
            .collect();
        let incremental = configured["sync_mode"] == "incremental";
        let cursor = if incremental {
            let field = configured["cursor_field"][0].as_str().ok_or_else(|| {
                ConnectorError::Failed(format!(
                    "stream {}: incremental without a cursor field",
                    descriptor.key()
                ))
            })?;
            Some(
                table
                    .columns
                    .iter()
                    .find(|column| column.name == field)
                    .ok_or_else(|| {
                        ConnectorError::Failed(format!(
                            "stream {}: cursor field '{field}' is not a column",
                            descriptor.key()
                        ))
                    })?,
            )
        } else {
            None
        };
        // Committed state counts only if it was kept for the same cursor column.
        let resume_from = cursor.and_then(|cursor| {
            let stored = &state
                .iter()
                .find(|resume| resume.stream.name == descriptor.name)?
                .state;
            (stored["cursor_field"][0] == cursor.name.as_str())
                .then(|| stored["cursor"].as_str().map(str::to_owned))
                .flatten()
        });
        // A full refresh into a table made afresh (overwrite) takes the rows in COPY binary
        // when every column's binary form is that of the column the destination makes for it
        // from the catalog (an append could meet a table of other types).
        let binary_types = (cursor.is_none()
            && configured["destination_sync_mode"] == "overwrite"
            && !columns.is_empty())
        .then(|| {
            columns
                .iter()
                .map(|column| {
                    let kind = binary_column_type(&column.type_name)?;
                    let property = &configured["stream"]["json_schema"]["properties"][&column.name];
                    (ColumnType::of(property) == kind).then(|| kind.sql().to_owned())
                })
                .collect::<Option<Vec<String>>>()
        })
        .flatten()
        .map(Arc::from);
        Ok(Self {
            table,
            descriptor,
            columns,
            cursor,
            resume_from,
            binary_types,
        })
    }

    fn query(&self, copy_rows: bool) -> String {
        let expressions: Vec<String> = self
            .columns
            .iter()
            .map(|column| {
                let name = quote_identifier(&column.name);
                match column.type_name.as_str() {
                    // Airbyte sends binary as base64 (encode() wraps lines; they are removed).
                    "bytea" => {
                        format!("translate(encode({name}, 'base64'), E'\\n', '') AS {name}")
                    }
                    // Arrays are JSON arrays in records, jsonb in the destination.
                    _ if copy_rows && column.element.is_some() => {
                        format!("to_jsonb({name}) AS {name}")
                    }
                    _ => name,
                }
            })
            .collect();
        let from = format!(
            "{}.{}",
            quote_identifier(&self.table.schema),
            quote_identifier(&self.table.name)
        );
        if copy_rows {
            let filter = match (self.cursor, &self.resume_from) {
                (Some(cursor), Some(value)) => format!(
                    " WHERE t.{0} > {1}::{2} ORDER BY t.{0}",
                    quote_identifier(&cursor.name),
                    quote_literal(value),
                    cursor.sql_type
                ),
                (Some(cursor), None) => format!(
                    " WHERE t.{0} IS NOT NULL ORDER BY t.{0}",
                    quote_identifier(&cursor.name)
                ),
                (None, _) => String::new(),
            };
            let format = if self.binary_types.is_some() {
                " (FORMAT binary)"
            } else {
                ""
            };
            return format!(
                "COPY (SELECT {} FROM {from} t{filter}) TO STDOUT{format}",
                expressions.join(", ")
            );
        }
        match self.cursor {
            None => format!(
                "COPY (SELECT to_jsonb(r)::text FROM (SELECT {} FROM {from}) r) TO STDOUT",
                expressions.join(", ")
            ),
            Some(cursor) => {
                let name = quote_identifier(&cursor.name);
                let filter = match &self.resume_from {
                    Some(value) => format!(
                        "WHERE t.{name} > {}::{}",
                        quote_literal(value),
                        cursor.sql_type
                    ),
                    None => format!("WHERE t.{name} IS NOT NULL"),
                };
                format!(
                    "COPY (SELECT t.{name}::text, to_jsonb(r)::text FROM {from} t, LATERAL (SELECT {}) r {filter} ORDER BY t.{name}) TO STDOUT",
                    expressions.join(", ")
                )
            }
        }
    }

    fn state(&self, cursor: &str) -> AirbyteMessage {
        let value = match self.cursor {
            Some(column) => json!({
                "state_type": "cursor_based",
                "version": 2,
                "stream_name": self.descriptor.name,
                "stream_namespace": self.descriptor.namespace,
                "cursor_field": [column.name],
                "cursor": cursor,
            }),
            None => json!({
                "state_type": "full_refresh",
                "version": 2,
                "stream_name": self.descriptor.name,
                "stream_namespace": self.descriptor.namespace,
            }),
        };
        AirbyteMessage::State {
            state: StateMessage::for_stream(self.descriptor.clone(), value),
        }
    }

    async fn run(
        &self,
        connection: &mut PgConnection,
        output: &mpsc::Sender<AirbyteMessage>,
        copy_rows: bool,
    ) -> Result<(), ConnectorError> {
        let query = self.query(copy_rows);
        let key = self.descriptor.key();
        let mut rows = connection
            .copy_out_raw(&query)
            .await
            .map_err(|error| database_error(&format!("reading {key}"), error))?;
        let mut reader = RowReader {
            plan: self,
            output,
            pending: Vec::new(),
            last_cursor: self.resume_from.clone(),
            since_checkpoint: 0,
            checkpoint_at: Instant::now() + CHECKPOINT_INTERVAL,
            emitted_at: 0,
            binary: (copy_rows && self.binary_types.is_some()).then(BinaryFraming::default),
            copy: copy_rows.then(|| CopyBatch {
                format: match &self.binary_types {
                    Some(types) => CopyFormat::Binary {
                        types: types.clone(),
                    },
                    None => CopyFormat::Text,
                },
                columns: self
                    .columns
                    .iter()
                    .map(|column| column.name.clone())
                    .collect(),
                cursor_index: self.cursor.and_then(|cursor| {
                    self.columns
                        .iter()
                        .position(|column| column.name == cursor.name)
                }),
                data: Vec::with_capacity(BATCH_BYTES + 4096),
                rows: 0,
                seeking: false,
            }),
        };
        while let Some(chunk) = rows
            .try_next()
            .await
            .map_err(|error| database_error(&format!("reading {key}"), error))?
        {
            reader.emitted_at = now_millis();
            reader.take(&chunk).await?;
        }
        drop(rows);
        reader.send_batch().await?;
        if !reader.pending.is_empty() || reader.binary.is_some_and(|framing| !framing.ended) {
            return Err(ConnectorError::Failed(format!(
                "reading {key}: the last row was cut short"
            )));
        }
        let end = match (&self.cursor, reader.last_cursor.as_deref()) {
            (Some(_), Some(cursor)) => Some(self.state(cursor)),
            (Some(_), None) => None,
            (None, _) => Some(self.state("")),
        };
        if let Some(state) = end {
            emit(output, state).await?;
        }
        Ok(())
    }
}

/// Turns COPY output (chunks that split rows anywhere) into records and checkpoints.
struct RowReader<'p, 'a> {
    plan: &'p ReadPlan<'a>,
    output: &'p mpsc::Sender<AirbyteMessage>,
    pending: Vec<u8>,
    last_cursor: Option<String>,
    since_checkpoint: u64,
    checkpoint_at: Instant,
    emitted_at: i64,
    /// Set when rows go as COPY rows.
    copy: Option<CopyBatch>,
    /// Set when they come (and go) as COPY binary.
    binary: Option<BinaryFraming>,
}

/// Where COPY binary output has got to.
#[derive(Default, Clone, Copy)]
struct BinaryFraming {
    header_read: bool,
    ended: bool,
}

struct CopyBatch {
    format: CopyFormat,
    columns: Arc<[String]>,
    /// Where the cursor is among the columns, for incremental streams.
    cursor_index: Option<usize>,
    data: Vec<u8>,
    rows: u64,
    /// A checkpoint is due: looking for the first change of cursor value.
    seeking: bool,
}

/// Field `index` of a COPY text row, unescaped.
fn copy_field(row: &[u8], index: usize) -> Option<String> {
    let field = copy_text::fields(row).nth(index)?;
    copy_text::unescape(field).map(|text| String::from_utf8_lossy(&text).into_owned())
}

impl RowReader<'_, '_> {
    async fn take(&mut self, chunk: &[u8]) -> Result<(), ConnectorError> {
        if self.binary.is_some() {
            return self.take_binary(chunk).await;
        }
        let mut rest = chunk;
        if !self.pending.is_empty() {
            let Some(end) = memchr::memchr(b'\n', rest) else {
                self.pending.extend_from_slice(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&rest[..end]);
            self.row(&line).await?;
            rest = &rest[end + 1..];
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.row(&rest[..end]).await?;
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// COPY binary output: whole tuples into the batch as they are. PostgreSQL sends a tuple
    /// a chunk; one cut across chunks is put together.
    async fn take_binary(&mut self, chunk: &[u8]) -> Result<(), ConnectorError> {
        let plan = self.plan;
        let malformed = || {
            ConnectorError::Failed(format!(
                "reading {}: PostgreSQL sent malformed COPY binary data",
                plan.descriptor.key()
            ))
        };
        let joined;
        let mut data = chunk;
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.pending);
            data = &joined;
        }
        let mut framing = self.binary.unwrap_or_default();
        if !framing.header_read {
            match copy_binary::header_len(data).map_err(|_| malformed())? {
                Some(length) => {
                    data = &data[length..];
                    framing.header_read = true;
                }
                None => {
                    self.pending.extend_from_slice(data);
                    return Ok(());
                }
            }
        }
        while !framing.ended {
            match copy_binary::next(data).map_err(|_| malformed())? {
                copy_binary::Next::Tuple(length) => {
                    let Some(batch) = &mut self.copy else {
                        return Ok(());
                    };
                    batch.data.extend_from_slice(&data[..length]);
                    batch.rows += 1;
                    data = &data[length..];
                    if batch.data.len() >= BATCH_BYTES {
                        self.send_batch().await?;
                    }
                }
                copy_binary::Next::End => {
                    framing.ended = true;
                    data = &[];
                }
                copy_binary::Next::Incomplete => break,
            }
        }
        self.binary = Some(framing);
        self.pending.extend_from_slice(data);
        Ok(())
    }

    /// A row as COPY text: into the batch, with checkpoints found between cursor values.
    async fn copy_row(&mut self, line: &[u8]) -> Result<(), ConnectorError> {
        let Some(batch) = &mut self.copy else {
            return Ok(());
        };
        if let Some(index) = batch.cursor_index
            && batch.seeking
        {
            let cursor = copy_field(line, index);
            if cursor != self.last_cursor {
                self.send_batch().await?;
                if let Some(previous) = &self.last_cursor {
                    emit(self.output, self.plan.state(previous)).await?;
                }
                self.since_checkpoint = 0;
                self.checkpoint_at = Instant::now() + CHECKPOINT_INTERVAL;
                if let Some(batch) = &mut self.copy {
                    batch.seeking = false;
                }
            }
            self.last_cursor = cursor;
        }
        let Some(batch) = &mut self.copy else {
            return Ok(());
        };
        batch.data.extend_from_slice(line);
        batch.data.push(b'\n');
        batch.rows += 1;
        self.since_checkpoint += 1;
        if let Some(index) = batch.cursor_index
            && !batch.seeking
            && (self.since_checkpoint >= CHECKPOINT_ROWS
                || (self.since_checkpoint.is_multiple_of(4096)
                    && Instant::now() >= self.checkpoint_at))
        {
            batch.seeking = true;
            self.last_cursor = copy_field(line, index);
        }
        if batch.data.len() >= BATCH_BYTES {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Sends the batch of COPY rows, noting the cursor of its last row (the state to end on).
    async fn send_batch(&mut self) -> Result<(), ConnectorError> {
        let Some(batch) = &mut self.copy else {
            return Ok(());
        };
        if batch.rows == 0 {
            return Ok(());
        }
        if let Some(index) = batch.cursor_index {
            let body = &batch.data[..batch.data.len() - 1];
            let start = memchr::memrchr(b'\n', body).map_or(0, |end| end + 1);
            self.last_cursor = copy_field(&body[start..], index);
        }
        let rows = ferry_protocol::CopyRows {
            stream: self.plan.descriptor.clone(),
            columns: batch.columns.clone(),
            format: batch.format.clone(),
            count: batch.rows,
            data: std::mem::replace(&mut batch.data, Vec::with_capacity(BATCH_BYTES + 4096)),
        };
        batch.rows = 0;
        emit(self.output, AirbyteMessage::CopyRows { rows }).await
    }

    async fn row(&mut self, line: &[u8]) -> Result<(), ConnectorError> {
        if self.copy.is_some() {
            return self.copy_row(line).await;
        }
        let malformed = || ConnectorError::Failed("PostgreSQL sent a malformed row".to_owned());
        let data = if self.plan.cursor.is_some() {
            let tab = memchr::memchr(b'\t', line).ok_or_else(malformed)?;
            let cursor = copy_text::unescape(&line[..tab]).ok_or_else(malformed)?;
            let cursor = String::from_utf8_lossy(&cursor);
            if self.last_cursor.as_deref() != Some(cursor.as_ref()) {
                self.checkpoint_if_due().await?;
                self.last_cursor = Some(cursor.into_owned());
            }
            &line[tab + 1..]
        } else {
            line
        };
        let json = copy_text::unescape(data)
            .ok_or_else(malformed)?
            .into_owned();
        let json = String::from_utf8(json).map_err(|_| malformed())?;
        let data = RawValue::from_string(json).map_err(|_| malformed())?;
        self.since_checkpoint += 1;
        let record = RecordMessage {
            stream: self.plan.descriptor.name.clone(),
            namespace: self.plan.descriptor.namespace.clone(),
            data,
            emitted_at: self.emitted_at,
            meta: None,
            file: None,
        };
        emit(self.output, AirbyteMessage::Record { record }).await
    }

    /// Called between two cursor values, where a checkpoint loses nothing on resume.
    async fn checkpoint_if_due(&mut self) -> Result<(), ConnectorError> {
        let Some(cursor) = &self.last_cursor else {
            return Ok(());
        };
        if self.since_checkpoint == 0 {
            return Ok(());
        }
        let due = self.since_checkpoint >= CHECKPOINT_ROWS || Instant::now() >= self.checkpoint_at;
        if !due {
            return Ok(());
        }
        emit(self.output, self.plan.state(cursor)).await?;
        self.since_checkpoint = 0;
        self.checkpoint_at = Instant::now() + CHECKPOINT_INTERVAL;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn table(types: &[&str]) -> Table {
        Table {
            schema: "public".to_owned(),
            name: "t".to_owned(),
            columns: types
                .iter()
                .enumerate()
                .map(|(index, type_name)| Column {
                    name: format!("c{index}"),
                    type_name: (*type_name).to_owned(),
                    sql_type: (*type_name).to_owned(),
                    element: None,
                })
                .collect(),
            primary_key: Vec::new(),
        }
    }

    /// The configured stream, with each column's schema as discover describes it.
    fn configured(table: &Table, sync_mode: &str, destination_sync_mode: &str) -> Value {
        let properties: serde_json::Map<String, Value> = table
            .columns
            .iter()
            .map(|column| (column.name.clone(), json_schema_of(&column.type_name, None)))
            .collect();
        json!({
            "stream": {"name": "t", "json_schema": {"type": "object", "properties": properties}},
            "sync_mode": sync_mode, "cursor_field": ["c0"],
            "destination_sync_mode": destination_sync_mode,
        })
    }

    fn reads_binary(types: &[&str], sync_mode: &str, destination_sync_mode: &str) -> bool {
        let table = table(types);
        let configured = configured(&table, sync_mode, destination_sync_mode);
        let plan = ReadPlan::new(&table, &configured, &[]).unwrap();
        let query = plan.query(true);
        assert_eq!(
            query.ends_with("(FORMAT binary)"),
            plan.binary_types.is_some()
        );
        assert!(!plan.query(false).contains("binary"));
        plan.binary_types.is_some()
    }

    #[test]
    fn only_a_full_refresh_into_a_new_table_of_matching_types_reads_binary() {
        let matching = ["int8", "numeric", "text", "timestamptz", "jsonb", "bpchar"];
        assert!(reads_binary(&matching, "full_refresh", "overwrite"));
        assert!(!reads_binary(&matching, "full_refresh", "append"));
        assert!(!reads_binary(&matching, "incremental", "append_dedup"));
        assert!(!reads_binary(
            &["int8", "int4"],
            "full_refresh",
            "overwrite"
        ));
        assert!(!reads_binary(
            &["int8", "json"],
            "full_refresh",
            "overwrite"
        ));

        // A catalog that types a column otherwise than discover did gets text.
        let table = table(&["int8", "text"]);
        let mut configured = configured(&table, "full_refresh", "overwrite");
        configured["stream"]["json_schema"]["properties"]["c1"] = json!({"type": "integer"});
        let plan = ReadPlan::new(&table, &configured, &[]).unwrap();
        assert!(plan.binary_types.is_none());
    }
}
