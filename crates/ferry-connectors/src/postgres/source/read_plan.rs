use std::sync::Arc;

use ferry_protocol::catalog::{ConfiguredStream, DestinationSyncMode, SyncMode};
use ferry_protocol::{
    AirbyteMessage, CopyFormat, CopyRows, PipeMessage, RangeMark, StateMessage, StreamDescriptor,
};
use serde_json::json;

use super::super::schema::{ColumnType, binary_column_type};
use sqlx::postgres::PgConnection;

use super::super::range_state::{self, Split};
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

/// The page of a `ctid` as text: `(12,3)` is on page 12.
fn page_of_ctid(ctid: &str) -> Option<u32> {
    ctid.strip_prefix('(')?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
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
    pub(super) fn condition(&self) -> String {
        match self.end {
            Some(end) => format!(
                "t.ctid >= '({},0)'::tid AND t.ctid < '({end},0)'::tid",
                self.start
            ),
            None => format!("t.ctid >= '({},0)'::tid", self.start),
        }
    }
}

/// TID range scans (a `ctid` condition reading only those pages) came with PostgreSQL 14;
/// before, each range would scan the whole table.
const TID_RANGE_SCAN_VERSION: i32 = 140_000;

/// A table's heap as a read by pages sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct TableLayout {
    /// The table's file: a table rewritten (VACUUM FULL, CLUSTER, TRUNCATE) gets another.
    pub(super) filenode: Option<i64>,
    pub(super) pages: u64,
    /// Whether it can be read in ranges of pages: a plain table or materialized view (a
    /// view has no `ctid`), on a server with TID range scans.
    pub(super) by_pages: bool,
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
    /// Set for an incremental stream's first read (no committed cursor yet), or one resumed
    /// from the page it had reached: the table read whole in page order, not cursor order.
    pub(super) initial: Option<InitialLoad>,
    /// A full refresh read in ranges and cut short: how its table was cut, and the ranges
    /// the destination already holds (`range_state.rs`).
    pub(super) ranges_loaded: Option<(Split, Vec<u32>)>,
}

/// Where an incremental stream's first read is: as Airbyte's source-postgres reads a table
/// before its cursor takes over, in page (`ctid`) order, which needs no sort and no index,
/// with a `ctid` state after each range of pages, so a read cut short resumes at its page.
/// It ends on the cursor's maximum as of its start: rows changed since carry a later
/// value, and the next sync reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InitialLoad {
    /// The page the read resumes at (0 for a new one).
    pub(super) from_page: u32,
    /// The table's file when the read began: a table rewritten since (VACUUM FULL,
    /// CLUSTER, TRUNCATE) has other pages, and its read starts over.
    pub(super) filenode: Option<i64>,
    /// The cursor's maximum and how many rows held it, once measured.
    pub(super) target: Option<(String, u64)>,
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
        // Committed state counts only if it was kept for the same cursor column (a first
        // read's, Airbyte's `ctid` state, keeps it as the incremental state it ends on).
        let stored = cursor.and_then(|cursor| {
            let stored = &state
                .iter()
                .find(|resume| resume.stream.name == descriptor.name)?
                .state;
            let cursor_state = match stored["state_type"] == "ctid" {
                true => &stored["incremental_state"],
                false => stored,
            };
            (cursor_state["cursor_field"][0] == cursor.name.as_str()).then_some(stored)
        });
        let initial_state = stored.filter(|stored| stored["state_type"] == "ctid");
        let resume = stored
            .filter(|stored| stored["state_type"] != "ctid")
            .and_then(|stored| {
                Some(Resume {
                    value: stored["cursor"].as_str()?.to_owned(),
                    count: stored["cursor_record_count"].as_u64(),
                    inclusive: false,
                })
            });
        let initial = (cursor.is_some() && resume.is_none()).then(|| match initial_state {
            Some(stored) => InitialLoad {
                from_page: stored["ctid"].as_str().and_then(page_of_ctid).unwrap_or(0),
                filenode: stored["relation_filenode"].as_i64(),
                target: stored["incremental_state"]["cursor"].as_str().map(|value| {
                    let count = &stored["incremental_state"]["cursor_record_count"];
                    (value.to_owned(), count.as_u64().unwrap_or(0))
                }),
            },
            None => InitialLoad {
                from_page: 0,
                filenode: None,
                target: None,
            },
        });
        // A full refresh into a table made afresh (overwrite) takes the rows in COPY binary
        // when every column's binary form is that of the column the destination makes for it
        // from the catalog (an append could meet a table of other types).
        // So does a deduplicated stream's first read: its rows go into a table the
        // destination makes of those types (or a stage that is), in page order.
        // And every later read of a deduplicated stream: its rows go into a stage made
        // afresh of those types (the cursor's text beside each row, for the states).
        let fresh_table = match configured.destination_sync_mode {
            DestinationSyncMode::Overwrite => cursor.is_none(),
            DestinationSyncMode::AppendDedup => true,
            _ => false,
        };
        let binary_types = (fresh_table && !columns.is_empty())
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
        let ranges_loaded = cursor
            .is_none()
            .then(|| {
                state
                    .iter()
                    .find(|resume| resume.stream == descriptor)
                    .and_then(|resume| range_state::parse(&resume.state))
            })
            .flatten();
        Ok(Self {
            table,
            descriptor,
            columns,
            cursor,
            resume,
            binary_types,
            initial,
            ranges_loaded,
        })
    }

    /// The cursor rows are read in the order of, and checkpointed at the changes of: none
    /// for a first read, which goes in page order.
    pub(super) fn ordered_by(&self) -> Option<&'a Column> {
        self.cursor.filter(|_| self.initial.is_none())
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

    /// The table's heap as it is now, or `None` when the catalog no longer has it.
    pub(super) async fn layout(
        &self,
        connection: &mut PgConnection,
    ) -> Result<Option<TableLayout>, ConnectorError> {
        let measured: Option<(String, Option<i64>, i64, i32)> = sqlx::query_as(
            "SELECT c.relkind::text, pg_relation_filenode(c.oid)::bigint, \
             pg_relation_size(c.oid) / current_setting('block_size')::bigint, \
             current_setting('server_version_num')::int FROM pg_class c \
             WHERE c.oid = to_regclass($1)",
        )
        .bind(self.from())
        .fetch_optional(&mut *connection)
        .await
        .map_err(|error| database_error(&format!("reading {}", self.descriptor.key()), error))?;
        Ok(
            measured.map(|(kind, filenode, pages, version)| TableLayout {
                filenode,
                pages: u64::try_from(pages).unwrap_or(0),
                by_pages: matches!(kind.as_str(), "r" | "m") && version >= TID_RANGE_SCAN_VERSION,
            }),
        )
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
        let conditions = pages.iter().map(PageRange::condition).collect();
        self.copy_query(copy_rows, conditions)
    }

    /// The COPY of a first read's `pages` (or all pages): the rows whose cursor is set and
    /// not past `target`, the maximum the read ends on (a read resumed under another
    /// snapshot leaves later rows to the next sync).
    pub(super) fn initial_query(
        &self,
        copy_rows: bool,
        pages: Option<PageRange>,
        target: &str,
    ) -> String {
        let mut conditions: Vec<String> = pages.iter().map(PageRange::condition).collect();
        if let Some(cursor) = self.cursor {
            let name = quote_identifier(&cursor.name);
            conditions.push(format!(
                "t.{name} IS NOT NULL AND t.{name} <= {}::{}",
                quote_literal(target),
                cursor.sql_type
            ));
        }
        self.copy_query(copy_rows, conditions)
    }

    fn copy_query(&self, copy_rows: bool, conditions: Vec<String>) -> String {
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
        let pages = match conditions.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", conditions.join(" AND ")),
        };
        if copy_rows {
            let filter = match self.ordered_by() {
                Some(cursor) => format!(" {}", self.cursor_filter(cursor)),
                None => pages,
            };
            let format = if self.binary_types.is_some() {
                " (FORMAT binary)"
            } else {
                ""
            };
            // In binary, a read by cursor carries the cursor's text first: the source keeps
            // it for its states and sends the row on without it.
            let cursor_text = match (self.ordered_by(), &self.binary_types) {
                (Some(cursor), Some(_)) => format!("t.{}::text, ", quote_identifier(&cursor.name)),
                _ => String::new(),
            };
            return format!(
                "COPY (SELECT {cursor_text}{} FROM {from} t{filter}) TO STDOUT{format}",
                expressions.join(", ")
            );
        }
        match self.ordered_by() {
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

    /// The columns and format of the stream's COPY rows.
    pub(super) fn copy_shape(&self) -> (Arc<[String]>, CopyFormat) {
        let format = match &self.binary_types {
            Some(types) => CopyFormat::Binary {
                types: types.clone(),
            },
            None => CopyFormat::Text,
        };
        let columns = self
            .columns
            .iter()
            .map(|column| column.name.clone())
            .collect();
        (columns, format)
    }

    /// No row, only `mark`, on `lane`.
    pub(super) fn mark(&self, lane: u16, mark: RangeMark) -> PipeMessage {
        let (columns, format) = self.copy_shape();
        PipeMessage::CopyRows(CopyRows {
            stream: self.descriptor.clone(),
            columns,
            format,
            count: 0,
            data: Vec::new(),
            lane,
            mark: Some(mark),
        })
    }

    /// The state of a first read that has read every page before `page` of the table's
    /// file `filenode`, and ends on the cursor `target`: Airbyte's `ctid` state.
    pub(super) fn initial_state(
        &self,
        page: u32,
        filenode: i64,
        target: &(String, u64),
    ) -> AirbyteMessage {
        let value = json!({
            "state_type": "ctid",
            "version": 2,
            "ctid": format!("({page},0)"),
            "relation_filenode": filenode,
            "incremental_state": self.state_value(&target.0, Some(target.1)),
        });
        AirbyteMessage::State {
            state: StateMessage::for_stream(self.descriptor.clone(), value),
        }
    }

    /// The state after the rows up to `cursor`, of which `count` carry that value (where
    /// known: a state from before Ferry counted them does not say).
    pub(super) fn state(&self, cursor: &str, count: Option<u64>) -> AirbyteMessage {
        AirbyteMessage::State {
            state: StateMessage::for_stream(
                self.descriptor.clone(),
                self.state_value(cursor, count),
            ),
        }
    }

    fn state_value(&self, cursor: &str, count: Option<u64>) -> serde_json::Value {
        match self.cursor {
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
        }
    }
}
