//! The table model: which table a configured stream lands in, with which columns, and
//! where its rows are loaded first.

use ferry_protocol::catalog::{ConfiguredStream, DestinationNaming, DestinationSyncMode};

use super::super::naming::{TEMPORARY_SUFFIX, destination_table};
use super::super::quote_identifier;
use super::super::schema::ColumnType;
use super::FLUSH_BYTES;
use crate::ConnectorError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Overwrite,
    Append,
    AppendDedup,
}

pub(super) struct Column {
    pub(super) name: String,
    pub(super) kind: ColumnType,
}

/// A configured stream and the table it lands in.
pub(super) struct StreamTable {
    /// The stream as the source names it.
    pub(super) source_name: String,
    pub(super) schema: String,
    pub(super) name: String,
    pub(super) mode: Mode,
    pub(super) columns: Vec<Column>,
    pub(super) primary_key: Vec<String>,
    pub(super) cursor: Option<String>,
    pub(super) generation_id: i64,
    pub(super) sync_id: i64,
    /// Temporary table (session) receiving a deduplicated stream's rows before the merge.
    pub(super) stage: String,
    pub(super) buffer: Vec<u8>,
    /// Rows staged since the last merge.
    pub(super) staged: bool,
    /// A deduplicated table with a unique index on its primary key merges with one upsert;
    /// one whose rows already repeat a key (appended before) falls back to delete + insert.
    pub(super) unique_key: bool,
    /// The server has MERGE (PostgreSQL 15 and later).
    pub(super) server_merges: bool,
    /// A deduplicated stream whose table held no row when the write began: its rows go
    /// straight into the table, as a full refresh's do, and its key index is built at the
    /// end (a first load cut short is finished by the merge of the next attempt).
    pub(super) first_load: bool,
    /// An overwrite resumed in the same job: the split of the source's table, and those of
    /// its ranges that the fresh table, kept, already holds.
    pub(super) resumed_split: Option<(String, Vec<u32>)>,
    /// What an overwrite's lanes record with each range they commit.
    pub(super) lane_marks: Option<super::ranges::LaneMarks>,
    /// The source reads the stream's table in ranges (it said where they begin).
    pub(super) ranged: bool,
    /// An overwrite's one lane loads its fresh table frozen.
    pub(super) freezing: bool,
}

/// PostgreSQL cuts identifiers at 63 bytes: every name made here is shortened first, with a
/// hash where it is too long (`naming`), so that distinct names stay distinct.
pub(super) use super::super::naming::{derived_identifier, identifier};

pub(super) const AIRBYTE_COLUMNS: &str = "\"_airbyte_raw_id\" varchar(36) NOT NULL, \
     \"_airbyte_extracted_at\" timestamptz NOT NULL, \
     \"_airbyte_meta\" jsonb NOT NULL, \"_airbyte_generation_id\" bigint";

/// Rows that come as COPY rows carry only the stream's columns and a raw id; these defaults
/// fill the other Airbyte columns in PostgreSQL itself.
pub(super) fn airbyte_defaults(table: &str, sync_id: i64, generation_id: i64) -> String {
    format!(
        "ALTER TABLE {table} ALTER COLUMN \"_airbyte_extracted_at\" SET DEFAULT now(), \
         ALTER COLUMN \"_airbyte_meta\" SET DEFAULT '{{\"changes\": [], \"sync_id\": {sync_id}}}'::jsonb, \
         ALTER COLUMN \"_airbyte_generation_id\" SET DEFAULT {generation_id};"
    )
}

impl StreamTable {
    pub(super) fn new(
        configured: &ConfiguredStream,
        naming: &DestinationNaming,
        default_schema: &str,
        index: usize,
    ) -> Result<Self, ConnectorError> {
        let stream = &configured.stream;
        let source_name = stream.name.clone();
        let mode = match configured.destination_sync_mode {
            DestinationSyncMode::Overwrite => Mode::Overwrite,
            DestinationSyncMode::Append => Mode::Append,
            DestinationSyncMode::AppendDedup => Mode::AppendDedup,
            other => {
                return Err(ConnectorError::Config(format!(
                    "stream '{source_name}': destination sync mode '{}' is not supported by destination-postgres (overwrite, append, append_dedup)",
                    other.as_str()
                )));
            }
        };
        let columns: Vec<Column> = stream
            .properties()
            .filter(|(name, _)| !name.starts_with("_airbyte_"))
            .map(|(name, schema)| Column {
                name: name.clone(),
                kind: ColumnType::of(schema),
            })
            .collect();
        let primary_key: Vec<String> = configured
            .primary_key_columns()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if mode == Mode::AppendDedup && primary_key.is_empty() {
            return Err(ConnectorError::Config(format!(
                "stream '{source_name}' is deduplicated but has no primary key"
            )));
        }
        let (schema, name) = destination_table(naming, &stream.descriptor(), default_schema);
        Ok(Self {
            schema,
            name,
            source_name,
            mode,
            columns,
            primary_key,
            cursor: configured.cursor().map(str::to_owned),
            generation_id: configured.generation_id.unwrap_or(0),
            sync_id: configured.sync_id.unwrap_or(0),
            stage: identifier(&format!("ferry_stage_{index}")),
            buffer: Vec::with_capacity(FLUSH_BYTES + 64 * 1024),
            staged: false,
            unique_key: false,
            server_merges: false,
            first_load: false,
            resumed_split: None,
            lane_marks: None,
            ranged: false,
            freezing: false,
        })
    }

    pub(super) fn qualified(&self, table: &str) -> String {
        format!(
            "{}.{}",
            quote_identifier(&self.schema),
            quote_identifier(table)
        )
    }

    pub(super) fn final_table(&self) -> String {
        self.qualified(&self.name)
    }

    /// The overwrite's table, never the final table's name whatever its length.
    pub(super) fn temporary_name(&self) -> String {
        derived_identifier(&self.name, TEMPORARY_SUFFIX)
    }

    /// The table rows are copied into.
    pub(super) fn load_table(&self) -> String {
        match self.mode {
            Mode::Append => self.final_table(),
            Mode::AppendDedup if self.first_load => self.final_table(),
            Mode::AppendDedup => quote_identifier(&self.stage),
            Mode::Overwrite => self.qualified(&self.temporary_name()),
        }
    }

    pub(super) fn column_definitions(&self) -> String {
        let mut definitions = AIRBYTE_COLUMNS.to_owned();
        for column in &self.columns {
            definitions.push_str(&format!(
                ", {} {}",
                quote_identifier(&column.name),
                column.kind.sql()
            ));
        }
        definitions
    }

    /// Binary rows are only for a table whose columns are of the types the rows are in: an
    /// overwrite's, made afresh; a deduplicated stream's stage, made afresh, or its empty
    /// table at a first load, whose columns `prepare` gave those types.
    pub(super) fn check_binary_rows(
        &self,
        columns: &[String],
        types: &[String],
    ) -> Result<(), ConnectorError> {
        let stream = &self.source_name;
        if self.mode == Mode::Append {
            return Err(ConnectorError::Failed(format!(
                "stream '{stream}': COPY binary rows for a table that is not made afresh"
            )));
        }
        if columns.len() != types.len() {
            return Err(ConnectorError::Failed(format!(
                "stream '{stream}': COPY binary rows name {} columns and {} types",
                columns.len(),
                types.len()
            )));
        }
        for (name, kind) in columns.iter().zip(types) {
            let ours = self.columns.iter().find(|column| &column.name == name);
            if ours.is_none_or(|column| column.kind.sql() != kind) {
                return Err(ConnectorError::Failed(format!(
                    "stream '{stream}': COPY binary rows hold column '{name}' as {kind}, \
                     which its table does not"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn stream_table(name: &str, naming: &DestinationNaming) -> StreamTable {
        let configured: ConfiguredStream = serde_json::from_value(json!({
            "stream": {"name": name, "namespace": "public", "json_schema": {"properties": {"id": {"type": "integer"}}}},
            "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
        }))
        .unwrap();
        StreamTable::new(&configured, naming, "raw", 0).unwrap()
    }

    #[test]
    fn every_table_has_a_name_of_its_own_within_63_bytes() {
        // A 63-byte name is kept; its overwrite's table is another.
        let exact = stream_table(&"s".repeat(63), &DestinationNaming::default());
        assert_eq!(exact.name, "s".repeat(63));
        assert_eq!(exact.schema, "raw");
        let temporary = exact.temporary_name();
        assert!(
            temporary.len() <= 63 && temporary != exact.name,
            "{temporary}"
        );
        assert_eq!(
            stream_table("orders", &DestinationNaming::default()).temporary_name(),
            "orders_ferry_tmp"
        );
        // A long prefix: names that differ past the 63rd byte stay apart.
        let prefixed = DestinationNaming {
            prefix: Some("p".repeat(70)),
            ..DestinationNaming::default()
        };
        let tables: Vec<StreamTable> = ["customers", "orders", "items"]
            .iter()
            .map(|name| stream_table(name, &prefixed))
            .collect();
        for (index, table) in tables.iter().enumerate() {
            assert!(table.name.len() <= 63, "{}", table.name);
            assert!(table.temporary_name().len() <= 63);
            assert_ne!(table.temporary_name(), table.name);
            for other in &tables[index + 1..] {
                assert_ne!(table.name, other.name);
                assert_ne!(table.temporary_name(), other.temporary_name());
            }
        }
        // A long namespace is shortened the same way.
        let by_format = DestinationNaming {
            namespace_definition: "custom_format".to_owned(),
            namespace_format: Some(format!("{}${{SOURCE_NAMESPACE}}", "n".repeat(70))),
            prefix: None,
        };
        let schema = stream_table("orders", &by_format).schema;
        assert!(schema.len() <= 63 && schema.starts_with("nnnn"), "{schema}");
        assert_ne!(schema, format!("{}publ", "n".repeat(59)));
    }
}
