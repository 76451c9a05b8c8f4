//! Airbyte's `destination-postgres` with Destinations V2 typing: one typed table per stream
//! (namespace → schema) with `_airbyte_raw_id`, `_airbyte_extracted_at`, `_airbyte_meta` and
//! `_airbyte_generation_id`, loaded with COPY. By concern: `table.rs` (which table, which
//! columns), `ddl.rs` (making tables, the overwrite's swap), `load.rs` (COPY),
//! `record_row.rs` (a record as a COPY row), `merge.rs` (deduplication as SQL).

mod checkpoints;
#[cfg(test)]
mod database_tests;
mod ddl;
mod lanes;
mod load;
mod merge;
mod ranges;
mod record_row;
mod table;
#[cfg(test)]
mod tests;

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::{RecordMessage, StateMessage};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::{PostgresDestinationConfig, connect, connect_options, database_error, run_sql};
use crate::connector::{Destination, ResumeState};
use crate::driver::{CopyRun, StreamWriter, WriterFactory};
use crate::{ConnectorError, config};
use checkpoints::Checkpoints;
use lanes::Lanes;
use load::RawIds;
use ranges::RangeMarks;
use record_row::ExtractedAt;
use table::{Mode, StreamTable};

/// MERGE came with PostgreSQL 15.
const MERGE_VERSION: i32 = 150_000;

/// A stream's buffered COPY rows are sent to PostgreSQL once they reach this size.
const FLUSH_BYTES: usize = 4 * 1024 * 1024;

pub struct PostgresDestination {
    options: PgConnectOptions,
    schema: String,
    checkpoints: Option<Checkpoints>,
    ranges: Option<RangeMarks>,
    /// The connection `committed_states` read on, which `open` right after it takes over.
    kept: std::sync::Mutex<Option<PgConnection>>,
}

impl PostgresDestination {
    pub fn build(configuration: &Value) -> Result<Box<dyn Destination>, ConnectorError> {
        Ok(Box::new(Self::new(configuration)?))
    }

    fn new(configuration: &Value) -> Result<Self, ConnectorError> {
        let config: PostgresDestinationConfig = config::parse(configuration)?;
        Ok(Self {
            options: connect_options(&config.connection),
            schema: config.schema,
            checkpoints: None,
            ranges: None,
            kept: std::sync::Mutex::new(None),
        })
    }
}

impl WriterFactory for PostgresDestination {
    type Writer = PostgresWriter;

    fn accepts_copy_rows(&self) -> bool {
        true
    }

    fn record_checkpoints_as(&mut self, connection: &str, job: i64) {
        self.checkpoints = Some(Checkpoints::new(&self.schema, connection));
        self.ranges = Some(RangeMarks::new(&self.schema, connection, job));
    }

    /// The states recorded with the rows they cover, and the ranges an overwrite cut short
    /// in this job holds.
    async fn committed_states(
        &self,
        catalog: &ConfiguredCatalog,
        naming: &DestinationNaming,
    ) -> Result<Vec<ResumeState>, ConnectorError> {
        let (Some(checkpoints), Some(ranges)) = (&self.checkpoints, &self.ranges) else {
            return Ok(Vec::new());
        };
        let mut connection = connect(&self.options).await?;
        let mut states = checkpoints.read(&mut connection, catalog).await?;
        states.extend(
            ranges
                .states(&mut connection, catalog, naming, &self.schema)
                .await?,
        );
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some(connection);
        }
        Ok(states)
    }

    /// Connects and checks that tables can be made in the default schema.
    async fn check_settings(&self) -> Result<(), ConnectorError> {
        let mut connection = connect(&self.options).await?;
        let allowed: Option<bool> = sqlx::query_scalar(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
                 THEN has_schema_privilege($1, 'CREATE')
                 ELSE has_database_privilege(current_database(), 'CREATE') END",
        )
        .bind(&self.schema)
        .fetch_one(&mut connection)
        .await
        .map_err(|error| database_error("check", error))?;
        match allowed {
            Some(true) => Ok(()),
            _ => Err(ConnectorError::invalid(
                "schema",
                format!("user may not create tables in schema '{}'", self.schema),
            )),
        }
    }

    /// Connects and makes every stream's tables.
    async fn open(
        self,
        catalog: &ConfiguredCatalog,
        naming: &DestinationNaming,
    ) -> Result<PostgresWriter, ConnectorError> {
        let kept = self.kept.lock().ok().and_then(|mut kept| kept.take());
        let mut connection = super::reuse_or_connect(kept, &self.options).await?;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.prepare(&mut connection).await?;
        }
        if let Some(ranges) = &self.ranges {
            ranges.prepare(&mut connection).await?;
        }
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&mut connection)
            .await
            .map_err(|error| database_error("destination", error))?;
        let mut streams = Vec::new();
        for (index, configured) in catalog.streams.iter().enumerate() {
            let mut stream = StreamTable::new(configured, naming, &self.schema, index)?;
            stream.server_merges = version >= MERGE_VERSION;
            let key = configured.stream.descriptor().key();
            // An overwrite cut short in this job keeps its fresh table and the ranges in it,
            // as `committed_states` told the source; any other starts it anew.
            if let Some(ranges) = &self.ranges
                && stream.mode == Mode::Overwrite
            {
                let lane = ranges.for_lane(&key, &stream);
                stream.resumed_split = ranges.held(&mut connection, &lane).await?;
                if stream.resumed_split.is_none() {
                    ranges.forget(&mut connection, &key).await?;
                }
                stream.lane_marks = Some(lane);
            }
            stream.prepare(&mut connection).await?;
            streams.push(stream);
        }
        Ok(PostgresWriter {
            connection,
            lanes: Lanes::new(self.options.clone()),
            checkpoints: self.checkpoints,
            ranges: self.ranges,
            keys: catalog
                .streams
                .iter()
                .map(|configured| configured.stream.descriptor().key())
                .collect(),
            recorded: catalog
                .streams
                .iter()
                .map(|configured| {
                    checkpoints::is_recorded(configured.sync_mode, configured.destination_sync_mode)
                        .then(|| configured.clone())
                })
                .collect(),
            streams,
            ids: RawIds::new(),
            extracted_at: ExtractedAt::default(),
            in_transaction: false,
        })
    }
}

/// One connection and one transaction for everything between two STATEs: a STATE commits
/// it, so a state is acknowledged only once every row before it is in.
pub struct PostgresWriter {
    connection: PgConnection,
    /// Connections of their own for an overwrite's COPY rows.
    lanes: Lanes,
    checkpoints: Option<Checkpoints>,
    ranges: Option<RangeMarks>,
    /// Per stream, the key its checkpoints are recorded under.
    keys: Vec<String>,
    /// Per stream, the configured stream when its checkpoints are recorded.
    recorded: Vec<Option<ferry_protocol::catalog::ConfiguredStream>>,
    streams: Vec<StreamTable>,
    ids: RawIds,
    extracted_at: ExtractedAt,
    in_transaction: bool,
}

impl PostgresWriter {
    async fn begin(&mut self) -> Result<(), ConnectorError> {
        if !self.in_transaction {
            execute(&mut self.connection, "BEGIN").await?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Flushes every stream's buffer and merges the deduplicated ones, in the transaction.
    async fn flush_and_merge(&mut self) -> Result<(), ConnectorError> {
        self.begin().await?;
        for stream in &mut self.streams {
            stream.flush(&mut self.connection).await?;
            stream.merge(&mut self.connection).await?;
        }
        Ok(())
    }
}

async fn execute(connection: &mut PgConnection, sql: &str) -> Result<(), ConnectorError> {
    run_sql(connection, sql)
        .await
        .map_err(|error| database_error("destination", error))
}

impl StreamWriter for PostgresWriter {
    async fn write_record(
        &mut self,
        index: usize,
        record: &RecordMessage,
    ) -> Result<(), ConnectorError> {
        let Self {
            streams,
            ids,
            extracted_at,
            ..
        } = self;
        let stream = streams
            .get_mut(index)
            .ok_or_else(|| ConnectorError::Failed(format!("no table for stream {index}")))?;
        stream.push(record, ids, extracted_at)?;
        if stream.buffer.len() >= FLUSH_BYTES {
            self.begin().await?;
            let Self {
                streams,
                connection,
                ..
            } = self;
            if let Some(stream) = streams.get_mut(index) {
                stream.flush(connection).await?;
            }
        }
        Ok(())
    }

    async fn write_copy_rows(
        &mut self,
        index: usize,
        run: &mut CopyRun<'_>,
    ) -> Result<(), ConnectorError> {
        self.begin().await?;
        let Self {
            streams,
            connection,
            ids,
            lanes,
            ..
        } = self;
        let stream = streams
            .get_mut(index)
            .ok_or_else(|| ConnectorError::Failed(format!("no table for stream {index}")))?;
        stream.flush(connection).await?;
        stream.copy_rows(index, run, ids, connection, lanes).await
    }

    async fn make_durable(&mut self, states: &[StateMessage]) -> Result<(), ConnectorError> {
        self.flush_and_merge().await?;
        for state in states {
            let (Some(checkpoints), Some(stream)) = (&self.checkpoints, &state.stream) else {
                continue;
            };
            let descriptor = &stream.stream_descriptor;
            let recorded = self.recorded.iter().flatten().any(|configured| {
                configured.takes(&descriptor.name, descriptor.namespace.as_deref())
            });
            if recorded {
                checkpoints.record(&mut self.connection, state).await?;
            }
        }
        execute(&mut self.connection, "COMMIT").await?;
        self.in_transaction = false;
        Ok(())
    }

    /// The rest committed, and each overwrite stream that completed swapped in, in the same
    /// transaction.
    async fn finish(&mut self, complete: &[bool]) -> Result<(), ConnectorError> {
        // Every lane's rows committed first: the swap below makes them visible.
        self.lanes.finish().await?;
        self.flush_and_merge().await?;
        // A first load's key index, once its rows are in: built once, in the transaction
        // that commits the last of them.
        for stream in &mut self.streams {
            if stream.first_load {
                stream.build_key_index(&mut self.connection).await?;
                stream.first_load = false;
            }
        }
        for (index, stream) in self.streams.iter().enumerate() {
            if stream.mode == Mode::Overwrite && complete.get(index).copied().unwrap_or(false) {
                stream.swap(&mut self.connection).await?;
                // The table starts over: no state of the old one applies to it, and its
                // ranges are all in place.
                if let (Some(checkpoints), Some(key)) = (&self.checkpoints, self.keys.get(index)) {
                    checkpoints.forget(&mut self.connection, key).await?;
                }
                if let (Some(ranges), Some(key)) = (&self.ranges, self.keys.get(index)) {
                    ranges.forget(&mut self.connection, key).await?;
                }
            }
        }
        execute(&mut self.connection, "COMMIT").await?;
        self.in_transaction = false;
        Ok(())
    }
}
