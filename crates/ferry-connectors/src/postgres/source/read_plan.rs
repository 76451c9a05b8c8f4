use std::sync::Arc;

use ferry_protocol::catalog::{ConfiguredStream, DestinationSyncMode, SyncMode};
use ferry_protocol::{AirbyteMessage, StateMessage, StreamDescriptor};
use serde_json::json;

use super::super::schema::{ColumnType, binary_column_type};
use super::super::{quote_identifier, quote_literal};
use super::{Column, Table};
use crate::ConnectorError;
use crate::connector::ResumeState;

/// How one configured stream is read: its columns, cursor and where to resume.
pub(super) struct ReadPlan<'a> {
    pub(super) table: &'a Table,
    pub(super) descriptor: StreamDescriptor,
    pub(super) columns: Vec<&'a Column>,
    pub(super) cursor: Option<&'a Column>,
    pub(super) resume_from: Option<String>,
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
            resume_from,
            binary_types,
        })
    }

    pub(super) fn query(&self, copy_rows: bool) -> String {
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

    pub(super) fn state(&self, cursor: &str) -> AirbyteMessage {
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
}
