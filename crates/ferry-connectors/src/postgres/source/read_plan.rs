use std::sync::Arc;

use ferry_protocol::catalog::{ConfiguredStream, DestinationSyncMode, SyncMode};
use ferry_protocol::{AirbyteMessage, StateMessage, StreamDescriptor};
use serde_json::json;

use super::super::schema::{ColumnType, binary_column_type};
use sqlx::postgres::PgConnection;

use super::super::{database_error, quote_identifier, quote_literal};
use super::{Column, Table};
use crate::ConnectorError;
use crate::connector::ResumeState;

/// Cursor types whose values PostgreSQL orders as their users expect (`json`, `xml`,
/// geometric types and the like have no such order, or none at all).
const ORDERABLE: &[&str] = &[
    "int2",
    "int4",
    "int8",
    "numeric",
    "float4",
    "float8",
    "money",
    "oid",
    "text",
    "varchar",
    "bpchar",
    "name",
    "citext",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "bool",
];

/// The committed cursor a read resumes from, as Airbyte's source-postgres keeps it: the
/// value, and how many rows with that value the last read emitted. Rows that came later
/// with the same value are read again (`>=`) unless the table still holds exactly that many
/// (`>`): so none is lost, and only those few repeat (a deduplicated stream shows none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resume {
    pub(super) value: String,
    /// `cursor_record_count`; absent in states Ferry wrote before it kept one.
    pub(super) count: Option<u64>,
    pub(super) inclusive: bool,
}

/// Heap pages of a table, from `start` up to `end` (to the last page when there is none), as
/// a parallel read splits it: each row is in exactly one range of a split, whatever its
/// table's size when it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageRange {
    pub(super) start: u32,
    pub(super) end: Option<u32>,
}

impl PageRange {
    /// The `ctid` condition, which PostgreSQL 14 and later answer by a TID range scan of
    /// those pages only.
    fn condition(&self) -> String {
        match self.end {
            Some(end) => format!(
                "t.ctid >= '({},0)'::tid AND t.ctid < '({end},0)'::tid",
                self.start
            ),
            None => format!("t.ctid >= '({},0)'::tid", self.start),
        }
    }
}

/// How one configured stream is read: its columns, cursor and where to resume.
pub(super) struct ReadPlan<'a> {
    pub(super) table: &'a Table,
    pub(super) descriptor: StreamDescriptor,
    pub(super) columns: Vec<&'a Column>,
    pub(super) cursor: Option<&'a Column>,
    /// Where an incremental read starts: after (or at) the committed cursor value.
    pub(super) resume: Option<Resume>,
    /// The destination column types, when the rows can go to a native destination in COPY
    /// binary.
    pub(super) binary_types: Option<Arc<[String]>>,
}

impl<'a> ReadPlan<'a> {
    pub(super) fn new(
        table: &'a Table,
        configured: &ConfiguredStream,
        state: &[ResumeState],
    ) -> Result<Self, ConnectorError> {
        let descriptor = StreamDescriptor {
            name: table.name.clone(),
            namespace: Some(table.schema.clone()),
        };
        // The columns the catalog selects, in table order; all of them when it names none.
        let selected = configured.stream.json_schema["properties"].as_object();
        let columns: Vec<&Column> = table
            .columns
            .iter()
            .filter(|column| selected.is_none_or(|selected| selected.contains_key(&column.name)))
            .collect();
        let incremental = configured.sync_mode == SyncMode::Incremental;
        let cursor = if incremental {
            let field = configured.cursor().ok_or_else(|| {
                ConnectorError::Config(format!(
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
                        ConnectorError::Config(format!(
                            "stream {}: cursor field '{field}' is not a column",
                            descriptor.key()
                        ))
                    })?,
            )
        } else {
            None
        };
        if let Some(cursor) = cursor
            && !ORDERABLE.contains(&cursor.type_name.as_str())
        {
            return Err(ConnectorError::Config(format!(
                "stream {}: cursor field '{}' is of type {}, whose values have no order; choose a column of a number, text, date or time type",
                descriptor.key(),
                cursor.name,
                cursor.sql_type
            )));
        }
        // Committed state counts only if it was kept for the same cursor column.
        let resume = cursor.and_then(|cursor| {
            let stored = &state
                .iter()
                .find(|resume| resume.stream.name == descriptor.name)?
                .state;
            if stored["cursor_field"][0] != cursor.name.as_str() {
                return None;
            }
            Some(Resume {
                value: stored["cursor"].as_str()?.to_owned(),
                count: stored["cursor_record_count"].as_u64(),
                inclusive: false,
            })
        });
        // A full refresh into a table made afresh (overwrite) takes the rows in COPY binary
        // when every column's binary form is that of the column the destination makes for it
        // from the catalog (an append could meet a table of other types).
        let binary_types = (cursor.is_none()
            && configured.destination_sync_mode == DestinationSyncMode::Overwrite
            && !columns.is_empty())
        .then(|| {
            columns
                .iter()
                .map(|column| {
                    let kind = binary_column_type(&column.type_name)?;
                    let property = &configured.stream.json_schema["properties"][&column.name];
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
            resume,
            binary_types,
        })
    }

    /// Checks the cursor column before a read and decides where it resumes. Airbyte's JDBC
    /// sources refuse a cursor column that holds NULLs (such rows could never be read
    /// incrementally): so does this, naming the table, the column and the count. A resumed
    /// read includes the committed value again (`>=`) unless the table holds exactly as
    /// many rows of it as the last read emitted.
    pub(super) async fn settle_cursor(
        &mut self,
        connection: &mut PgConnection,
    ) -> Result<(), ConnectorError> {
        let Some(cursor) = self.cursor else {
            return Ok(());
        };
        let from = self.from();
        let name = quote_identifier(&cursor.name);
        let context = format!("checking the cursor of {}", self.descriptor.key());
        if !cursor.not_null {
            let nulls: i64 =
                sqlx::query_scalar(&format!("SELECT count(*) FROM {from} WHERE {name} IS NULL"))
                    .fetch_one(&mut *connection)
                    .await
                    .map_err(|error| database_error(&context, error))?;
            if nulls > 0 {
                return Err(ConnectorError::Config(format!(
                    "invalid cursor: column '{}' of table {} holds NULL in {nulls} rows; a cursor column must hold no NULL values (fill them, or choose another cursor)",
                    cursor.name,
                    self.descriptor.key()
                )));
            }
        }
        let Some(resume) = &mut self.resume else {
            return Ok(());
        };
        let Some(emitted) = resume.count else {
            return Ok(());
        };
        let held: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {from} WHERE {name} = {}::{}",
            quote_literal(&resume.value),
            cursor.sql_type
        ))
        .fetch_one(&mut *connection)
        .await
        .map_err(|error| database_error(&context, error))?;
        resume.inclusive = u64::try_from(held).ok() != Some(emitted);
        Ok(())
    }

    pub(super) fn from(&self) -> String {
        format!(
            "{}.{}",
            quote_identifier(&self.table.schema),
            quote_identifier(&self.table.name)
        )
    }

    /// The filter that resumes an incremental read, in cursor order.
    fn cursor_filter(&self, cursor: &Column) -> String {
        let name = quote_identifier(&cursor.name);
        match &self.resume {
            Some(resume) => format!(
                "WHERE t.{name} {} {}::{} ORDER BY t.{name}",
                if resume.inclusive { ">=" } else { ">" },
                quote_literal(&resume.value),
                cursor.sql_type
            ),
            None => format!("WHERE t.{name} IS NOT NULL ORDER BY t.{name}"),
        }
    }

    pub(super) fn query(&self, copy_rows: bool) -> String {
        self.query_of_pages(copy_rows, None)
    }

    /// The COPY that reads the rows of `pages` (heap pages from the first, up to the
    /// second when there is one), or all rows; a range is only for a read without a cursor.
    pub(super) fn query_of_pages(&self, copy_rows: bool, pages: Option<PageRange>) -> String {
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
        let from = self.from();
        let pages = match pages {
            Some(pages) if self.cursor.is_none() => format!(" WHERE {}", pages.condition()),
            _ => String::new(),
        };
        if copy_rows {
            let filter = match self.cursor {
                Some(cursor) => format!(" {}", self.cursor_filter(cursor)),
                None => pages,
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
                "COPY (SELECT to_jsonb(r)::text FROM (SELECT {} FROM {from} t{pages}) r) TO STDOUT",
                expressions.join(", ")
            ),
            Some(cursor) => {
                let name = quote_identifier(&cursor.name);
                let filter = self.cursor_filter(cursor);
                format!(
                    "COPY (SELECT t.{name}::text, to_jsonb(r)::text FROM {from} t, LATERAL (SELECT {}) r {filter}) TO STDOUT",
                    expressions.join(", ")
                )
            }
        }
    }

    /// The state after the rows up to `cursor`, of which `count` carry that value (where
    /// known: a state from before Ferry counted them does not say).
    pub(super) fn state(&self, cursor: &str, count: Option<u64>) -> AirbyteMessage {
        let value = match self.cursor {
            Some(column) => {
                let mut value = json!({
                    "state_type": "cursor_based",
                    "version": 2,
                    "stream_name": self.descriptor.name,
                    "stream_namespace": self.descriptor.namespace,
                    "cursor_field": [column.name],
                    "cursor": cursor,
                });
                if let Some(count) = count {
                    value["cursor_record_count"] = json!(count);
                }
                value
            }
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
}
